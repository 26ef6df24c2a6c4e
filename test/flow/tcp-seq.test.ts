/** RFC 1982 serial-number arithmetic, checked against BigInt arithmetic modulo 2^32. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { offsetToSeq, seqAdd, seqDiff, seqLe, seqLt, seqToOffset } from '../../src/flow/tcp-seq.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const M = 4294967296n;
/** Oracle: the representative of (a - b) mod 2^32 in [-2^31, 2^31). */
const diffOracle = (a: number, b: number): number => {
  let d = (BigInt(a) - BigInt(b)) % M;
  if (d < 0n) d += M;
  return Number(d >= M / 2n ? d - M : d);
};

describe('sequence arithmetic', () => {
  it('seqDiff / seqLt / seqLe agree with modular arithmetic', () => {
    fc.assert(
      fc.property(u32, u32, (a, b) => {
        const d = diffOracle(a, b);
        expect(seqDiff(a, b)).toBe(d);
        expect(seqLt(a, b)).toBe(d < 0);
        expect(seqLe(a, b)).toBe(d <= 0);
      }),
    );
    expect(seqDiff(5, 0xfffffffb)).toBe(10);
    expect(seqLt(0xfffffff0, 3)).toBe(true);
  });

  it('seqAdd / offsetToSeq wrap exactly for offsets up to 2^53, and seqToOffset inverts within ±2^31', () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: 2 ** 31, max: Number.MAX_SAFE_INTEGER - 2 ** 31 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (base, off, delta) => {
        const want = Number((BigInt(base) + BigInt(off)) % M);
        expect(seqAdd(base, off)).toBe(want);
        expect(offsetToSeq(base, off)).toBe(want);
        // `want` is the sequence number at offset `off`; any offset within ±2^31 maps back.
        const target = off + delta;
        expect(seqToOffset(offsetToSeq(base, target), want, off)).toBe(target);
      }),
    );
  });
});
