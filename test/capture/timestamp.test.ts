/**
 * TsScale converts 64-bit unit counts without BigInt; BigInt arithmetic (exact by
 * construction) is the oracle here.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TsScale } from '../../src/capture/timestamp.js';

function reference(base: bigint, exp: bigint, t: bigint): [number, number] {
  const p = base ** exp;
  return [Number(t / p), Number(((t % p) * 1_000_000_000n) / p)];
}

function ours(s: TsScale, t: bigint): [number, number] {
  const out = { tsSec: -1, tsNsec: -1 };
  s.apply(Number(t >> 32n), Number(t & 0xffffffffn), out);
  return [out.tsSec, out.tsNsec];
}

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
// Counts near real-world timestamps and at the fast-path boundary (2^53).
const interesting = fc.oneof(
  u64,
  fc.bigInt({ min: 0n, max: 1n << 54n }),
  fc.bigInt({ min: (1n << 53n) - 1000n, max: (1n << 53n) + 1000n }),
  fc.constantFrom(0n, 1n, (1n << 32n) - 1n, 1n << 32n, (1n << 64n) - 1n, 1_700_000_000_123_456_789n),
);

describe('TsScale', () => {
  for (const exp of [0, 1, 3, 6, 9, 10, 12, 15]) {
    it(`base 10, 10^-${exp}: exact seconds and nanoseconds`, () => {
      const s = new TsScale(10, exp);
      fc.assert(
        fc.property(interesting, (t) => {
          const [sec, ns] = reference(10n, BigInt(exp), t);
          // Seconds beyond 2^53 cannot be represented exactly; only compare where they can.
          if (sec > Number.MAX_SAFE_INTEGER) return;
          expect(ours(s, t)).toEqual([sec, ns]);
        }),
        { numRuns: 3000 },
      );
    });
  }
  for (const exp of [0, 1, 9, 10, 20, 23, 24, 30, 32]) {
    it(`base 2, 2^-${exp}: exact`, () => {
      const s = new TsScale(2, exp);
      fc.assert(
        fc.property(interesting, (t) => {
          const [sec, ns] = reference(2n, BigInt(exp), t);
          if (sec > Number.MAX_SAFE_INTEGER) return;
          expect(ours(s, t)).toEqual([sec, ns]);
        }),
        { numRuns: 3000 },
      );
    });
  }
  for (const exp of [33, 40, 52]) {
    it(`base 2, 2^-${exp}: exact seconds, nanoseconds within 1`, () => {
      const s = new TsScale(2, exp);
      fc.assert(
        fc.property(interesting, (t) => {
          const [sec, ns] = reference(2n, BigInt(exp), t);
          const [osec, ons] = ours(s, t);
          expect(osec).toBe(sec);
          expect(Math.abs(ons - ns)).toBeLessThanOrEqual(1);
          expect(ons).toBeLessThan(1e9);
        }),
        { numRuns: 2000 },
      );
    });
  }
  it('refuses resolutions it cannot convert exactly', () => {
    expect(() => new TsScale(10, 16)).toThrow(/unsupported/);
    expect(() => new TsScale(2, 53)).toThrow(/unsupported/);
  });
});
