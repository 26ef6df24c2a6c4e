/**
 * Internet checksum (RFC 1071) over byte ranges, IPv4 header / TCP / UDP / ICMP checksums from
 * a decoded PacketView, and RFC 1624 incremental updates for rewriters.
 *
 * Within a range words are accumulated unfolded and folded once at its end (ones' complement
 * addition is associative, so the fold can wait); ranges chain through 16-bit partial sums.
 * Nothing here allocates per packet (see onesSum and viewOf for how).
 */
import { put16, u16 } from './bytes.js';
import { LAYER_ICMP4, LAYER_ICMP6, LAYER_IPV4, LAYER_IPV6, LAYER_FRAG, LAYER_TCP, LAYER_UDP } from './layer.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from './proto.js';
import { NOTE_TRUNCATED_PAYLOAD } from './reasons.js';
import type { PacketView } from './view.js';

/**
 * Checksum verdicts, numbered like tshark's `*.checksum.status` so the two compare directly:
 * bad, good, not verifiable from this frame, absent (UDP/IPv4 checksum 0), illegal (UDP/IPv6
 * checksum 0, which RFC 8200 §8.1 forbids).
 */
export const CHECKSUM_BAD = 0;
export const CHECKSUM_GOOD = 1;
export const CHECKSUM_UNVERIFIED = 2;
export const CHECKSUM_NOT_PRESENT = 3;
export const CHECKSUM_ILLEGAL = 4;

/**
 * DataViews over the last few ArrayBuffers summed, so long ranges can be read 32 bits at a
 * time without allocating a view per call (the pool has a handful of slabs, the capture
 * reader one chunk). A buffer gets a view only when it is seen on two consecutive cache
 * misses, so callers with one buffer per packet take the byte path and allocate nothing.
 * Strong references to at most DV_CACHE + 1 buffers are kept on purpose.
 */
const DV_CACHE = 4;
const dvKeys: Array<ArrayBufferLike | null> = [null, null, null, null];
const dvVals: DataView[] = [];
for (let k = 0; k < DV_CACHE; k++) dvVals.push(new DataView(new ArrayBuffer(0)));
let dvNext = 0;
let dvLastMiss: ArrayBufferLike | null = null;

function viewOf(ab: ArrayBufferLike): DataView | null {
  for (let k = 0; k < DV_CACHE; k++) if (dvKeys[k] === ab) return dvVals[k]!;
  if (ab !== dvLastMiss) {
    dvLastMiss = ab;
    return null;
  }
  const dv = new DataView(ab);
  dvKeys[dvNext] = ab;
  dvVals[dvNext] = dv;
  dvNext = (dvNext + 1) % DV_CACHE;
  return dv;
}

/** Below this many bytes the DataView lookup costs more than it saves. */
const WIDE_MIN = 48;

/**
 * Ones' complement sum of the 16-bit big-endian words of `buf[off .. off + len)` plus `acc`,
 * folded to 16 bits (0..0xffff; 0 only when everything summed is zero). Partial sums chain
 * through `acc` (a previous result or any other non-negative sum below 2^31); an odd trailing
 * byte counts as its word's high byte (RFC 1071 padding), so only the last range of a
 * multi-range sum may have odd length.
 *
 * Long ranges are read as 32-bit words (each ≡ the sum of its two 16-bit halves modulo
 * 0xffff, which is all a ones' complement sum keeps). The result is folded before returning
 * so it is always a small integer: V8 then never boxes it, and callers allocate nothing.
 */
export function onesSum(buf: Uint8Array, off: number, len: number, acc = 0): number {
  // `s` starts as a number literal (not `acc`, typed "any") so TurboFan keeps it an unboxed
  // float64 through the loop instead of boxing every partial sum.
  let s = 0;
  let i = off;
  const end = off + len;
  const dv = len >= WIDE_MIN ? viewOf(buf.buffer) : null;
  if (dv !== null) {
    const base = buf.byteOffset;
    let j = base + off;
    const e16 = base + end - 15;
    for (; j < e16; j += 16) s += dv.getUint32(j) + dv.getUint32(j + 4) + dv.getUint32(j + 8) + dv.getUint32(j + 12);
    i = j - base;
  }
  // High and low bytes summed apart: small integers, combined once.
  let hi = 0;
  let lo = 0;
  const end2 = end - 1;
  for (; i < end2; i += 2) {
    hi += buf[i];
    lo += buf[i + 1];
  }
  if (i < end) hi += buf[i];
  s += hi * 256 + lo + (acc | 0);
  // Folded here rather than via foldSum(): a non-inlined call would box the double argument.
  while (s > 0xffff) s = (s % 65536) + Math.floor(s / 65536);
  return s;
}

/** Fold a sum (any non-negative integer ≤ 2^53) to 16 bits with end-around carry. */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum % 65536) + Math.floor(sum / 65536);
  return sum;
}

/** The Internet checksum of one range: ~fold(sum) & 0xffff. */
export function internetChecksum(buf: Uint8Array, off: number, len: number): number {
  return ~foldSum(onesSum(buf, off, len)) & 0xffff;
}

/**
 * The IPv4 header checksum the header at `l3Off` (`hdrLen` bytes) should carry, computed as if
 * its checksum field were zero.
 */
export function ipv4HeaderChecksum(buf: Uint8Array, l3Off: number, hdrLen: number): number {
  const s = onesSum(buf, l3Off + 12, hdrLen - 12, onesSum(buf, l3Off, 10));
  return ~foldSum(s) & 0xffff;
}

/** True when the decoded IPv4 header's checksum is right (false when there is no IPv4 header). */
export function verifyIpv4Header(v: PacketView): boolean {
  if ((v.layers & LAYER_IPV4) === 0) return false;
  return foldSum(onesSum(v.buf, v.l3Off, v.ipHdrLen)) === 0xffff;
}

/** Recompute and store the decoded IPv4 header's checksum. Returns false without an IPv4 header. */
export function writeIpv4HeaderChecksum(v: PacketView): boolean {
  if ((v.layers & LAYER_IPV4) === 0) return false;
  const c = ipv4HeaderChecksum(v.buf, v.l3Off, v.ipHdrLen);
  put16(v.buf, v.l3Off + 10, c);
  v.ipChecksum = c;
  return true;
}

/**
 * Ones' complement sum (not yet folded) of the pseudo-header (RFC 793/768 for IPv4, RFC 8200
 * §8.1 for IPv6) for `proto` and upper-layer length `l4Len`. For IPv6 the destination is the header's (a routing
 * header's final destination is not substituted: we never originate routed packets).
 */
export function pseudoHeaderSum(v: PacketView, proto: number, l4Len: number): number {
  let s = onesSum(v.buf, v.ipSrcOff, v.ipAddrLen);
  s = onesSum(v.buf, v.ipDstOff, v.ipAddrLen, s);
  // IPv4: zero, proto, 16-bit length. IPv6: 32-bit length, 3 zero bytes, next header.
  return s + proto + (l4Len & 0xffff) + Math.floor(l4Len / 65536);
}

/** Where a checksum lives and what it covers, for the decoded L4; false when not checksummable. */
interface L4Span {
  /** Absolute offset of the checksum field. */
  csumOff: number;
  /** Bytes covered, from l4Off. */
  len: number;
  /** Pseudo-header protocol, or -1 for ICMPv4 (no pseudo-header). */
  proto: number;
}

const span: L4Span = { csumOff: 0, len: 0, proto: 0 };

/** Fill `span` for the decoded L4; false when it cannot be checksummed from this frame. */
function l4Span(v: PacketView): boolean {
  // A fragment or a snaplen-cut payload does not hold the whole segment.
  if ((v.layers & LAYER_FRAG) !== 0 || (v.notes & NOTE_TRUNCATED_PAYLOAD) !== 0) return false;
  if ((v.layers & (LAYER_IPV4 | LAYER_IPV6)) === 0) return false;
  const l4 = v.l4Off;
  const l4Len = v.ipEnd - l4;
  if ((v.layers & LAYER_TCP) !== 0) {
    span.csumOff = l4 + 16;
    span.len = l4Len;
    span.proto = IPPROTO_TCP;
  } else if ((v.layers & LAYER_UDP) !== 0) {
    span.csumOff = l4 + 6;
    span.len = v.udpLength;
    span.proto = IPPROTO_UDP;
  } else if ((v.layers & LAYER_ICMP6) !== 0 && v.ipVersion === 6) {
    span.csumOff = l4 + 2;
    span.len = l4Len;
    span.proto = IPPROTO_ICMPV6;
  } else if ((v.layers & LAYER_ICMP4) !== 0 && v.ipProto === IPPROTO_ICMP) {
    span.csumOff = l4 + 2;
    span.len = l4Len;
    span.proto = -1;
  } else {
    return false;
  }
  return true;
}

/** Sum of the L4 span without its checksum field, pseudo-header included. */
function l4SumWithoutField(v: PacketView): number {
  const l4 = v.l4Off;
  const before = span.csumOff - l4; // even: 16, 6 or 2
  let s = span.proto >= 0 ? pseudoHeaderSum(v, span.proto, span.len) : 0;
  s = onesSum(v.buf, l4, before, s);
  return onesSum(v.buf, span.csumOff + 2, span.len - before - 2, s);
}

/**
 * The checksum the decoded TCP/UDP/ICMPv4/ICMPv6 header should carry, or -1 when the frame
 * does not hold the whole segment (fragment, snaplen-truncated) or has no such layer. For UDP
 * a computed 0 is returned as 0xffff (RFC 768: 0 means "no checksum").
 */
export function computeL4Checksum(v: PacketView): number {
  if (!l4Span(v)) return -1;
  const c = ~foldSum(l4SumWithoutField(v)) & 0xffff;
  return c === 0 && span.proto === IPPROTO_UDP ? 0xffff : c;
}

/**
 * Verify the decoded L4 checksum: CHECKSUM_GOOD / CHECKSUM_BAD; CHECKSUM_NOT_PRESENT for UDP
 * over IPv4 with checksum 0, CHECKSUM_ILLEGAL for UDP over IPv6 with checksum 0 (both decided
 * from the header alone, fragment or not); CHECKSUM_UNVERIFIED when the frame does not hold
 * the whole segment (see computeL4Checksum) or there is no checksummed L4.
 */
export function verifyL4Checksum(v: PacketView): number {
  if ((v.layers & LAYER_UDP) !== 0 && v.udpChecksum === 0) return v.ipVersion === 4 ? CHECKSUM_NOT_PRESENT : CHECKSUM_ILLEGAL;
  if (!l4Span(v)) return CHECKSUM_UNVERIFIED;
  const field = u16(v.buf, span.csumOff);
  const s = foldSum(l4SumWithoutField(v) + field);
  return s === 0xffff ? CHECKSUM_GOOD : CHECKSUM_BAD;
}

/** Recompute and store the decoded L4 checksum; false when it cannot be computed. */
export function writeL4Checksum(v: PacketView): boolean {
  const c = computeL4Checksum(v);
  if (c < 0) return false;
  put16(v.buf, span.csumOff, c);
  if ((v.layers & LAYER_TCP) !== 0) v.tcpChecksum = c;
  else if ((v.layers & LAYER_UDP) !== 0) v.udpChecksum = c;
  else v.icmpChecksum = c;
  return true;
}

/**
 * RFC 1624 eqn. 3: the checksum after a 16-bit word covered by it changes from `oldWord` to
 * `newWord`: HC' = ~(~HC + ~m + m'). Works for IPv4 header, TCP, ICMP; for UDP use
 * udpChecksumUpdate16 (0 is special there).
 */
export function checksumUpdate16(oldCsum: number, oldWord: number, newWord: number): number {
  return ~foldSum((~oldCsum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}

/** As checksumUpdate16 for a 32-bit field (TCP seq/ack, an IPv4 address), values unsigned. */
export function checksumUpdate32(oldCsum: number, oldVal: number, newVal: number): number {
  const s =
    (~oldCsum & 0xffff) +
    (~(oldVal >>> 16) & 0xffff) +
    (~oldVal & 0xffff) +
    ((newVal >>> 16) & 0xffff) +
    (newVal & 0xffff);
  return ~foldSum(s) & 0xffff;
}

/** UDP flavour of checksumUpdate16: a 0 ("no checksum", IPv4) stays 0; a result 0 is sent as 0xffff. */
export function udpChecksumUpdate16(oldCsum: number, oldWord: number, newWord: number): number {
  if (oldCsum === 0) return 0;
  const c = checksumUpdate16(oldCsum, oldWord, newWord);
  return c === 0 ? 0xffff : c;
}

/** UDP flavour of checksumUpdate32. */
export function udpChecksumUpdate32(oldCsum: number, oldVal: number, newVal: number): number {
  if (oldCsum === 0) return 0;
  const c = checksumUpdate32(oldCsum, oldVal, newVal);
  return c === 0 ? 0xffff : c;
}
