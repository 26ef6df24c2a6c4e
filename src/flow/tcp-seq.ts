/**
 * TCP sequence-number arithmetic (RFC 1982 serial numbers, RFC 9293 §3.4) and the mapping to
 * 0-based stream offsets.
 *
 * Sequence numbers are unsigned 32-bit and wrap; stream offsets are plain JS numbers (exact to
 * 2^53), so everything after the conversion is wrap-free and a stream crossing 2^32 sequence
 * numbers — or 2^32 bytes — needs no special case. The conversion is always relative to a
 * reference point (the delivered offset and its sequence number), which is valid while the
 * segment lies within ±2^31 of it; the reassembler's window check keeps it far inside that.
 */

/** 2^32, the sequence space. */
export const SEQ_MOD = 4_294_967_296;

/** Signed distance `a - b` in sequence space, in [-2^31, 2^31). Wrap-safe. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** `a` is strictly before `b` in sequence space (RFC 1982). */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** `a` is before or equal to `b` in sequence space. */
export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

/** `seq + n` wrapped to 32 bits, for any integer `n` in ±2^53 (reduced first so the sum stays exact). */
export function seqAdd(seq: number, n: number): number {
  // The common small `n` skips the floating-point modulo (a library call, on every delivery).
  if (n >= 0 && n < SEQ_MOD) return (seq + n) >>> 0;
  return (seq + (n % SEQ_MOD)) >>> 0;
}

/**
 * The stream offset of `seq`, given that `refSeq` is at stream offset `refOff`.
 * Exact while `seq` is within ±2^31 of `refSeq`; the result may be negative (before the
 * stream start) and callers must treat that as "already seen".
 */
export function seqToOffset(seq: number, refSeq: number, refOff: number): number {
  return refOff + ((seq - refSeq) | 0);
}

/** The sequence number at stream offset `off`, for a stream whose offset 0 is `baseSeq`. */
export function offsetToSeq(baseSeq: number, off: number): number {
  return (baseSeq + (off % SEQ_MOD)) >>> 0;
}
