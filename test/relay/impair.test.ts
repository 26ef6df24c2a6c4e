/**
 * The relay's impairment model on its own (no kernel): each property follows from the
 * definition in relay-impair.ts (drop / duplicate / hold-for-k), checked on token streams.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../helpers/prng.js';
import { ImpairedLink } from '../helpers/relay-impair.js';
import type { Impairment } from '../helpers/relay-impair.js';

interface Run {
  out: number[];
  dropped: number[];
  refs: Map<number, number>;
  link: ImpairedLink<number>;
}

function run(cfg: Impairment, seed: number, frames: number, impair: (i: number) => boolean = () => true): Run {
  const out: number[] = [];
  const dropped: number[] = [];
  const refs = new Map<number, number>();
  const link = new ImpairedLink<number>(
    cfg,
    seed,
    (t) => out.push(t),
    (t) => refs.set(t, (refs.get(t) ?? 1) + 1),
    (t) => dropped.push(t),
  );
  for (let i = 0; i < frames; i++) link.push(i, impair(i));
  return { out, dropped, refs, link };
}

describe('ImpairedLink', () => {
  it('with no impairment every frame goes out once, in order', () => {
    const r = run({}, 1, 1000);
    expect(r.out).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(r.link.stats).toMatchObject({ in: 1000, out: 1000, dropped: 0, duplicated: 0, reordered: 0 });
  });

  it('conserves frames: out = in − dropped + duplicated − held, each frame accounted for', () => {
    const r = run({ loss: 0.1, dup: 0.1, reorder: 0.1, reorderK: 4 }, 42, 20_000);
    r.link.discardHeld();
    const s = r.link.stats;
    expect(s.out).toBe(s.in - s.dropped + s.duplicated - s.heldAtExit);
    expect(r.out.length).toBe(s.out);
    // Every input frame is either dropped (exactly once, never emitted) or emitted ≥ 1 time.
    const emitted = new Map<number, number>();
    for (const t of r.out) emitted.set(t, (emitted.get(t) ?? 0) + 1);
    const droppedSet = new Set(r.dropped);
    expect(droppedSet.size).toBe(r.dropped.length);
    for (let i = 0; i < 20_000; i++) {
      const e = emitted.get(i) ?? 0;
      expect(droppedSet.has(i) ? e === 0 : e === 1 || e === 2).toBe(true);
      // A duplicate was retained once before its second emit.
      if (e === 2) expect(r.refs.get(i)).toBe(2);
    }
    expect(s.duplicated).toBe([...emitted.values()].filter((e) => e === 2).length);
  });

  it('rates follow the probabilities (binomial, 5 sigma)', () => {
    const n = 50_000;
    const r = run({ loss: 0.05, dup: 0.02 }, 7, n);
    const within = (count: number, trials: number, p: number) => Math.abs(count - trials * p) < 5 * Math.sqrt(trials * p * (1 - p));
    expect(within(r.link.stats.dropped, n, 0.05)).toBe(true);
    expect(within(r.link.stats.duplicated, n - r.link.stats.dropped, 0.02)).toBe(true);
  });

  it('a held frame comes out right after the next k forwarded frames', () => {
    const k = 3;
    const r = run({ reorder: 0.2, reorderK: k }, 3, 5000);
    expect(r.link.stats.reordered).toBeGreaterThan(100);
    // Without loss/dup the output is a permutation where each late frame t appears right
    // after the k frames that followed it in the input.
    let late = 0;
    for (let pos = 0; pos < r.out.length; pos++) {
      const t = r.out[pos]!;
      if (pos > 0 && t < r.out[pos - 1]!) {
        late++;
        expect(r.out.slice(pos - k, pos)).toEqual(Array.from({ length: k }, (_, j) => t + 1 + j));
      }
    }
    expect(late).toBe(r.link.stats.reordered - (r.link.holding ? 1 : 0));
  });

  it('frames marked not impairable pass untouched and do not consume randomness', () => {
    // (No reordering here: a hold's release depends on every frame, impairable or not.)
    const cfg = { loss: 0.3, dup: 0.3 };
    const plain = run(cfg, 9, 2000);
    // The same impairable frames interleaved with passthrough ones (odd tokens): the fate of
    // the n-th impairable frame must not change.
    const mixed = run(cfg, 9, 4000, (i) => i % 2 === 0);
    const impairedOnly = mixed.dropped.map((t) => t / 2);
    expect(impairedOnly).toEqual(plain.dropped);
    expect(mixed.link.stats.passed).toBe(2000);
    expect(mixed.link.stats.dropped).toBe(plain.link.stats.dropped);
    expect(mixed.link.stats.duplicated).toBe(plain.link.stats.duplicated);
  });

  it('is deterministic per seed and differs across seeds', () => {
    const cfg = { loss: 0.1, dup: 0.1, reorder: 0.1 };
    expect(run(cfg, 5, 3000).out).toEqual(run(cfg, 5, 3000).out);
    expect(run(cfg, 5, 3000).out).not.toEqual(run(cfg, 6, 3000).out);
    const a = mulberry32(123);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('releaseHeld flushes a held frame (timer path) and discardHeld returns it', () => {
    const r = run({ reorder: 1, reorderK: 5 }, 1, 1);
    expect(r.out).toEqual([]);
    expect(r.link.holding).toBe(true);
    r.link.releaseHeld(true);
    expect(r.out).toEqual([0]);
    expect(r.link.stats.releasedByTimer).toBe(1);
    const r2 = run({ reorder: 1 }, 1, 1);
    r2.link.discardHeld();
    expect(r2.dropped).toEqual([0]);
    expect(r2.link.stats.heldAtExit).toBe(1);
  });

  it('refuses probabilities outside [0, 1] and a bad reorderK', () => {
    expect(() => run({ loss: 1.5 }, 1, 0)).toThrow(/loss/);
    expect(() => run({ dup: -0.1 }, 1, 0)).toThrow(/dup/);
    expect(() => run({ reorderK: 0 }, 1, 0)).toThrow(/reorderK/);
  });
});
