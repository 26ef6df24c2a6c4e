/** Unsigned integer reads in either byte order (capture files come in both). No bounds checks: callers ensure them. */

export function u16(b: Buffer, o: number, le: boolean): number {
  return le ? b[o]! | (b[o + 1]! << 8) : (b[o]! << 8) | b[o + 1]!;
}

export function u32(b: Buffer, o: number, le: boolean): number {
  return le
    ? (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0
    : ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** Signed 64-bit read as a double (exact up to ±2^53; used for if_tsoffset seconds). */
export function i64(b: Buffer, o: number, le: boolean): number {
  const hi = le ? u32(b, o + 4, le) | 0 : u32(b, o, le) | 0;
  const lo = le ? u32(b, o, le) : u32(b, o + 4, le);
  return hi * 4294967296 + lo;
}

/** Round up to a multiple of 4 (pcapng padding). */
export function pad4(n: number): number {
  return (n + 3) & ~3;
}
