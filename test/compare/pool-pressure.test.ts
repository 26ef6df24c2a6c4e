/**
 * Pool memory the engine keeps for comparison must never starve the readers:
 * - bytes still to compare after a shadow checkpoint released their frames are kept as copies,
 *   not as pins on the frames' pool slots (ChunkQueue.unpin);
 * - a frame whose slot class (the big slots of GSO-sized frames) is over half in use is a
 *   `budget` divergence: input pauses and a checkpoint is requested, instead of the readers
 *   waiting for a slot that only a timeout would free.
 * Found by `bench replay` (a compare child stalled for good on http-identical's 3 KB frames).
 * Oracles: the pool's own counters, and the construction (same bytes on both sides, or one
 * byte changed at a known offset).
 */
import { describe, expect, it } from 'vitest';
import { ChunkQueue } from '../../src/compare/chunk-queue.js';
import { PacketPool } from '../../src/packet/pool.js';
import { streamBytes } from './frames.js';
import { Harness } from './harness.js';
import { senderPair } from './sender.js';

/** The harness's pool has 8 slots of 69 632 bytes for frames over 2048 bytes. */
const BIG = 3000;

describe('ChunkQueue.unpin', () => {
  it('turns pinned chunks into copies: same bytes in the same order, slots released', () => {
    const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 16 }] });
    const data = streamBytes(3000, 7);
    const a = pool.copyIn(data, 0, 1000);
    const b = pool.copyIn(data, 1000, 1000);
    const q = new ChunkQueue(pool);
    q.append(pool.buffer(a), pool.offset(a) + 100, 900, a); // pinned: data[100, 1000)
    q.append(data, 1000, 500, -1); // a copy: data[1000, 1500)
    q.append(pool.buffer(b), pool.offset(b) + 500, 500, b); // pinned: data[1500, 2000)
    pool.release(a);
    pool.release(b);
    expect([q.pinned, pool.inUse]).toEqual([2, 2]);
    q.consume(50); // start mid-chunk
    expect(q.unpin()).toBe(2);
    expect([q.pinned, pool.inUse, q.length]).toEqual([0, 0, 1850]);
    expect(q.compare(data, 150, 1850)).toBe(-1);
    const other = Uint8Array.from(data);
    other[1700] ^= 1;
    expect(q.compare(other, 150, 1850)).toBe(1700 - 150);
    // Still a working queue: append (pinned again), consume across the boundary.
    const c = pool.copyIn(data, 2000, 100);
    q.append(pool.buffer(c), pool.offset(c), 100, c);
    pool.release(c);
    expect(q.compare(data, 150, 1950)).toBe(-1);
    q.consume(1900);
    expect(q.compare(data, 2050, 50)).toBe(-1);
    q.clear();
    expect(pool.inUse).toBe(0);
    expect(q.unpin()).toBe(0);
  });
});

describe('engine: pool memory for comparison never starves input', () => {
  it('shadow mode: after a timeout checkpoint released big frames, their bytes wait as copies; the late secondary still matches them', () => {
    const h = new Harness({ shadow: true });
    const { P, S } = senderPair(4 * BIG, 3, [10, 11], [500, 11]);
    h.open(P, S, 0);
    for (let i = 0; i < 4; i++) h.p(P.data(i * BIG, BIG), 1);
    expect(h.pool.stats().classes[1]!.inUse).toBe(4);
    for (let t = 100; t <= 4400; t += 100) h.engine.tick(t);
    expect(h.records.map((r) => r.cause)).toEqual(['timeout']);
    expect(h.released.length).toBe(5);
    // Nothing of the released frames stays pinned (they were the only users of those slots).
    expect(h.pool.inUse).toBe(0);
    // The secondary's bytes arrive late, in other segment sizes: compared against the copies.
    for (let off = 0; off < 4 * BIG; off += 1000) h.s(S.data(off, 1000), 4500);
    expect(h.records.map((r) => r.cause)).toEqual(['timeout']);
    h.finish();
  });

  it('shadow mode: a changed byte in the late secondary is still found at its offset', () => {
    const h = new Harness({ shadow: true });
    const { P, S } = senderPair(4 * BIG, 4, [10, 11], [500, 11], (b) => (b[7777] ^= 0x10));
    h.open(P, S, 0);
    for (let i = 0; i < 4; i++) h.p(P.data(i * BIG, BIG), 1);
    for (let t = 100; t <= 4400; t += 100) h.engine.tick(t);
    expect(h.pool.inUse).toBe(0);
    for (let off = 0; off < 4 * BIG; off += 1000) h.s(S.data(off, 1000), 4500);
    expect(h.records.map((r) => [r.cause, r.offset])).toEqual([['timeout', 0], ['payload', 7777]]);
    h.finish();
  });

  it('big frames held past half their slot class: a budget divergence, input paused, checkpoint requested; the checkpoint frees them', () => {
    const paused: boolean[] = [];
    const h = new Harness({ onBackpressure: (p) => paused.push(p) });
    const { P, S } = senderPair(6 * BIG, 5, [10, 11], [500, 11]);
    h.open(P, S, 0);
    for (let i = 0; i < 4; i++) h.p(P.data(i * BIG, BIG), 1);
    expect(h.records).toEqual([]);
    h.p(P.data(4 * BIG, BIG), 2); // 5 of 8 big slots in use
    expect(h.records.map((r) => [r.cause, r.side])).toEqual([['budget', 'primary']]);
    expect(h.engine.statsSnapshot().budget.poolClassHits).toBe(1);
    expect(h.engine.wantsInput()).toBe(false);
    expect(paused).toEqual([true]);
    expect(h.port.requests.length).toBe(1);
    h.engine.onCheckpointCompleted(3);
    expect(h.engine.wantsInput()).toBe(true);
    expect(h.pool.stats().classes[1]!.inUse).toBe(0);
    expect(h.released.length).toBe(6);
    h.finish();
  });
});
