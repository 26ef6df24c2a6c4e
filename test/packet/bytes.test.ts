/**
 * firstDiff / diffEnd (src/packet/bytes.ts): alternating them must yield exactly the maximal
 * runs of differing bytes. Oracle: the runs read off a per-byte "differs" mask by its
 * transitions (false→true starts a run, true→false ends it), computed independently here.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { diffEnd, firstDiff } from '../../src/packet/bytes.js';

function runsByMask(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number): Array<[number, number]> {
  const mask = Array.from({ length: n }, (_, i) => a[ao + i] !== b[bo + i]);
  const runs: Array<[number, number]> = [];
  mask.forEach((d, i) => {
    const prev = i > 0 && mask[i - 1]!;
    if (d && !prev) runs.push([i, n]);
    if (!d && prev) runs[runs.length - 1]![1] = i;
  });
  return runs;
}

function runsByHelpers(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (let s = firstDiff(a, ao, b, bo, 0, n); s < n; ) {
    const e = diffEnd(a, ao, b, bo, s, n);
    runs.push([s, e]);
    s = firstDiff(a, ao, b, bo, e, n);
  }
  return runs;
}

describe('firstDiff / diffEnd', () => {
  it('walk exactly the maximal runs of differing bytes, at any offsets (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.array(fc.boolean(), { maxLength: 64 }),
        fc.nat(8),
        fc.nat(8),
        (base, flips, ao, bo) => {
          const n = Math.min(base.length, flips.length);
          const a = new Uint8Array(ao + n);
          const b = new Uint8Array(bo + n);
          for (let i = 0; i < n; i++) {
            a[ao + i] = base[i]!;
            b[bo + i] = flips[i] ? base[i]! ^ 0x5a : base[i]!;
          }
          expect(runsByHelpers(a, ao, b, bo, n)).toEqual(runsByMask(a, ao, b, bo, n));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('respect `from` and never read past n', () => {
    const a = Uint8Array.of(1, 2, 3, 4, 5);
    const b = Uint8Array.of(9, 2, 9, 9, 5);
    expect(firstDiff(a, 0, b, 0, 1, 5)).toBe(2);
    expect(diffEnd(a, 0, b, 0, 2, 5)).toBe(4);
    expect(diffEnd(a, 0, b, 0, 2, 3)).toBe(3);
    expect(firstDiff(a, 0, b, 0, 4, 5)).toBe(5);
  });
});
