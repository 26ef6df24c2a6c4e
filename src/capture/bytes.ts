/**
 * Unsigned integer reads in either byte order (capture files come in both; packets are always
 * big-endian, see packet/bytes.ts). No bounds checks: callers ensure them.
 */
import { u16 as be16, u32 as be32 } from '../packet/bytes.js';

export function u16(b: Uint8Array, o: number, le: boolean): number {
  return le ? b[o]! | (b[o + 1]! << 8) : be16(b, o);
}

export function u32(b: Uint8Array, o: number, le: boolean): number {
  return le ? (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0 : be32(b, o);
}

/** Signed 64-bit read as a double (exact up to ±2^53; used for if_tsoffset seconds). */
export function i64(b: Uint8Array, o: number, le: boolean): number {
  const hi = le ? u32(b, o + 4, le) | 0 : u32(b, o, le) | 0;
  const lo = le ? u32(b, o, le) : u32(b, o + 4, le);
  return hi * 4294967296 + lo;
}

/** Round up to a multiple of 4 (pcapng padding). */
export function pad4(n: number): number {
  return (n + 3) & ~3;
}
