/**
 * Header surgery for reassembled datagrams: turn the first fragment's headers (already
 * copied in front of the reassembled payload) into the headers of a whole datagram, so
 * `decodeFrame` decodes the transport layer normally.
 */
import { put16, u16 } from '../packet/bytes.js';
import { ipv4HeaderChecksum } from '../packet/checksum.js';
import { IPPROTO_AH } from '../packet/proto.js';

/** Largest IPv4 total length / IPv6 payload length (16-bit fields; no jumbograms). */
export const MAX_IP_LENGTH = 65_535;

/**
 * IPv4 (RFC 791): total length = header + payload, MF and fragment offset cleared (the
 * reserved and DF bits are kept as the first fragment had them), header checksum recomputed.
 * `l3` is the header's offset in `b`, `hdrLen` its length (options included: the first
 * fragment carries every option).
 */
export function finishIpv4(b: Uint8Array, l3: number, hdrLen: number, payloadLen: number): void {
  put16(b, l3 + 2, hdrLen + payloadLen);
  put16(b, l3 + 6, u16(b, l3 + 6) & 0xc000);
  put16(b, l3 + 10, ipv4HeaderChecksum(b, l3, hdrLen));
}

/**
 * IPv6 (RFC 8200 §4.5): the Fragment header is gone (the caller copied only the
 * unfragmentable part), the Next Header field that pointed at it (at `nhPos`) takes the
 * Fragment header's Next Header value `nh`, and the payload length becomes the
 * unfragmentable extension headers plus the reassembled payload.
 */
export function finishIpv6(b: Uint8Array, l3: number, nhPos: number, nh: number, unfragExtLen: number, payloadLen: number): void {
  b[nhPos] = nh;
  put16(b, l3 + 4, unfragExtLen + payloadLen);
}

/**
 * Offset of the Next Header byte that names the extension header at `target` (the Fragment
 * header), walking the chain from the fixed header at `l3`; -1 if the chain does not land on
 * `target` (cannot happen for a chain `decodeFrame` walked, checked anyway).
 */
export function nextHeaderPos(b: Uint8Array, l3: number, target: number): number {
  let nhPos = l3 + 6;
  let p = l3 + 40;
  while (p < target) {
    const len = b[nhPos] === IPPROTO_AH ? (b[p + 1] + 2) << 2 : (b[p + 1] + 1) << 3;
    nhPos = p;
    p += len;
  }
  return p === target ? nhPos : -1;
}
