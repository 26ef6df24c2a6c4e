/**
 * Small statistics for the replay bench: percentiles of latency samples and the median and
 * spread (min–max) of repeated runs. Setup/report time only.
 */

/** The value at quantile `q` (0..1) of ascending `sorted` (nearest rank, lower); NaN when empty. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const k = Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
  return sorted[k]!;
}

/** Median and spread of one figure over several runs. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/**
 * Median (the upper of the middle two for an even count, like bench/harness.ts) and min–max of
 * the finite values in `xs`; every field NaN when there are none.
 */
export function spread(xs: readonly number[]): Spread {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN };
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
}
