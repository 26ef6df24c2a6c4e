import { describe, it, expect } from 'vitest';
import { Pacer, parsePace, waitUntil } from '../../src/replay/pacer.js';

describe('parsePace', () => {
  it.each([
    ['topspeed', { kind: 'topspeed' }],
    ['realtime', { kind: 'multiplier', factor: 1 }],
    ['x2.5', { kind: 'multiplier', factor: 2.5 }],
    ['multiplier:4', { kind: 'multiplier', factor: 4 }],
    ['pps:10000', { kind: 'pps', rate: 10000 }],
  ])('%s', (spec, mode) => expect(parsePace(spec)).toEqual(mode));

  it.each(['', 'x0', 'pps:0', 'pps:-1', 'fast', 'x', 'multiplier:abc'])('rejects %j with a message naming the forms', (spec) => {
    expect(() => parsePace(spec)).toThrowError(/expected topspeed, realtime/);
  });
});

describe('Pacer', () => {
  it('topspeed: everything is due now', () => {
    const p = new Pacer({ kind: 'topspeed' });
    expect(p.due(1000, 50)).toBe(50);
    expect(p.due(9000, 51)).toBe(51);
  });

  it('multiplier: capture gaps scaled from the first packet', () => {
    const p = new Pacer({ kind: 'multiplier', factor: 2 });
    expect(p.due(10_000, 100)).toBe(100);
    expect(p.due(10_500, 101)).toBe(350);
    expect(p.due(12_000, 102)).toBe(1100);
    // A timestamp earlier than the first never schedules before the start.
    expect(p.due(9_000, 103)).toBe(100);
  });

  it('pps: evenly spaced regardless of timestamps', () => {
    const p = new Pacer({ kind: 'pps', rate: 4 });
    expect([p.due(0, 10), p.due(999, 10), p.due(5, 10), p.due(7, 10)]).toEqual([10, 260, 510, 760]);
  });

  it('anchor: an explicit start replaces the first packet as the origin of both clocks', () => {
    const m = new Pacer({ kind: 'multiplier', factor: 2 });
    m.anchor(1000, 500);
    // The first packet is 100 ms of capture after the anchor: due 50 ms after it, not at once.
    expect(m.due(600, 1200)).toBe(1050);
    expect(m.due(900, 1200)).toBe(1200);
    const p = new Pacer({ kind: 'pps', rate: 10 });
    p.anchor(1000, 0);
    expect([p.due(0, 5000), p.due(0, 5000), p.due(0, 5000)]).toEqual([1000, 1100, 1200]);
  });

  it('waitUntil returns no earlier than the due time', async () => {
    const due = performance.now() + 15;
    await waitUntil(due);
    expect(performance.now()).toBeGreaterThanOrEqual(due);
  });
});
