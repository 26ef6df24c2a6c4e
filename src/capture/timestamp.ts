/**
 * Exact conversion of 64-bit timestamp counts (as two uint32 halves) into integer seconds and
 * nanoseconds, without BigInt: pcapng stores `units since the epoch` where a unit is 10^-k or
 * 2^-k seconds, and nanosecond counts already exceed 2^53.
 */
import { ColoError } from '../errors.js';

const TWO32 = 4294967296;

/** Output of a conversion (the reader passes its reused record). */
export interface TsOut {
  tsSec: number;
  tsNsec: number;
}

/** Converts unit counts of one resolution. Build once per interface; `apply` allocates nothing. */
export class TsScale {
  /** Units per second. */
  readonly unitsPerSec: number;
  /** Multiplier from units to ns when exact (decimal resolutions down to 1 ns), else 0. */
  private readonly nsMul: number;
  /** Divisor from units to ns for finer decimal resolutions, else 0. */
  private readonly nsDiv: number;
  /** Binary exponent for 2^-k resolutions, else -1. */
  private readonly binExp: number;
  /** Digit width for the long division (largest power of two with p·2^b < 2^53). */
  private readonly digitBits: number;

  /**
   * @param base 10 or 2
   * @param exp resolution exponent: one unit is base^-exp seconds (decimal ≤ 15, binary ≤ 52)
   */
  constructor(base: 10 | 2, exp: number) {
    if (!Number.isInteger(exp) || exp < 0 || (base === 10 ? exp > 15 : exp > 52)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `unsupported timestamp resolution ${base}^-${exp}`);
    }
    this.unitsPerSec = base ** exp;
    this.nsMul = base === 10 && exp <= 9 ? 10 ** (9 - exp) : 0;
    this.nsDiv = base === 10 && exp > 9 ? 10 ** (exp - 9) : 0;
    this.binExp = base === 2 ? exp : -1;
    let b = 16;
    while (b > 1 && this.unitsPerSec * 2 ** b >= 2 ** 53) b >>= 1;
    this.digitBits = b;
  }

  /** Convert `hi·2^32 + lo` units into `out.tsSec` / `out.tsNsec`. */
  apply(hi: number, lo: number, out: TsOut): void {
    const p = this.unitsPerSec;
    let sec: number;
    let rem: number;
    if (hi < 0x200000) {
      // Fast path: the count is below 2^53, so it is an exact double.
      const t = hi * TWO32 + lo;
      sec = Math.floor(t / p);
      rem = t - sec * p;
      if (rem < 0) {
        sec--;
        rem += p;
      } else if (rem >= p) {
        sec++;
        rem -= p;
      }
    } else {
      // Long division in base 2^b, most significant digit first; every step stays < 2^53.
      const b = this.digitBits;
      const radix = 2 ** b;
      const mask = radix - 1;
      let r = 0;
      let q = 0;
      for (let half = 0; half < 2; half++) {
        const word = half === 0 ? hi : lo;
        for (let s = 32 - b; s >= 0; s -= b) {
          const x = r * radix + ((word >>> s) & mask);
          let qd = Math.floor(x / p);
          r = x - qd * p;
          if (r < 0) {
            qd--;
            r += p;
          }
          q = q * radix + qd;
        }
      }
      sec = q;
      rem = r;
    }
    out.tsSec = sec;
    out.tsNsec = this.toNs(rem);
  }

  /** Sub-second units → nanoseconds, truncating (as Wireshark does). */
  private toNs(rem: number): number {
    if (this.nsMul !== 0) return rem * this.nsMul;
    if (this.nsDiv !== 0) {
      let q = Math.floor(rem / this.nsDiv);
      if (q * this.nsDiv > rem) q--;
      return q;
    }
    const k = this.binExp;
    // rem·10^9 / 2^k = rem·1953125 / 2^(k-9); exact while rem·1953125 < 2^53 (k ≤ 32).
    if (k <= 9) return rem * 1953125 * 2 ** (9 - k);
    if (k <= 32) return Math.floor((rem * 1953125) / 2 ** (k - 9));
    return Math.min(999_999_999, Math.floor((rem / this.unitsPerSec) * 1e9));
  }
}

/** Shared scales for classic pcap. */
export const MICRO = new TsScale(10, 6);
export const NANO = new TsScale(10, 9);
