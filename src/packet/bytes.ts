/**
 * Big-endian reads straight from a byte array. Tiny functions so V8 inlines them; callers
 * must have bounds-checked `o` already (these never check, by design: the checks live once
 * per header in the decoders).
 */

/** Unsigned 16-bit big-endian value at `o`. */
export function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/**
 * Unsigned 32-bit big-endian value at `o` (as a non-negative number, via `>>> 0`). Per-packet
 * hot paths write this expression out instead: results ≥ 2^30 returned from a call that V8 did
 * not inline are boxed, i.e. allocated.
 */
export function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** Write an unsigned 16-bit big-endian value at `o`. */
export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

/** Write an unsigned 32-bit big-endian value at `o`. */
export function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/**
 * First `i` in [from, n) where `a[ao + i]` and `b[bo + i]` differ, or `n`. `diffEnd` then finds
 * where that differing run ends; alternating the two walks the runs of differing bytes of two
 * equally long ranges without allocating.
 */
export function firstDiff(a: Uint8Array, ao: number, b: Uint8Array, bo: number, from: number, n: number): number {
  let i = from;
  while (i < n && a[ao + i] === b[bo + i]) i++;
  return i;
}

/** First `i` in [from, n) where `a[ao + i]` and `b[bo + i]` are equal, or `n` (see firstDiff). */
export function diffEnd(a: Uint8Array, ao: number, b: Uint8Array, bo: number, from: number, n: number): number {
  let i = from;
  while (i < n && a[ao + i] !== b[bo + i]) i++;
  return i;
}
