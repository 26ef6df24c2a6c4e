/** IPv6 fixed header (RFC 8200) and its extension-header chain. */
import { u16 } from '../bytes.js';
import { LAYER_FRAG, LAYER_IPV6, LAYER_IPV6_EXT, LAYER_PAYLOAD } from '../layer.js';
import {
  IPPROTO_AH,
  IPPROTO_DSTOPTS,
  IPPROTO_FRAGMENT,
  IPPROTO_HIP,
  IPPROTO_HOPOPTS,
  IPPROTO_MOBILITY,
  IPPROTO_ROUTING,
  IPPROTO_SHIM6,
} from '../proto.js';
import {
  BAD_IP_VERSION,
  BAD_IPV6_EXT,
  IP_LENGTH_BEYOND_FRAME,
  OK,
  TRUNCATED_IP,
  TRUNCATED_IPV6_EXT,
} from '../reasons.js';
import type { PacketView } from '../view.js';
import { fail } from './fail.js';
import { settleIpEnd } from './ip-bounds.js';
import { decodeL4 } from './l4.js';

/** Longest extension chain walked; each header is ≥ 8 bytes so the walk is bounded anyway. */
export const MAX_IPV6_EXT_HEADERS = 16;

/**
 * Decode the IPv6 datagram at `o` (frame ends at `end`), walk hop-by-hop (0), routing (43),
 * fragment (44), destination options (60), AH (51) and the other RFC 7045 extension headers,
 * then the upper layer. ESP (50), no-next-header (59) and unknown values end the chain.
 * Jumbograms (payload length 0 + jumbo option) are not supported: length 0 means empty.
 */
export function decodeIPv6(v: PacketView, b: Uint8Array, o: number, end: number): number {
  if (end - o < 1) return fail(v, TRUNCATED_IP, LAYER_IPV6);
  if (b[o] >> 4 !== 6) return fail(v, BAD_IP_VERSION, LAYER_IPV6);
  if (end - o < 40) return fail(v, TRUNCATED_IP, LAYER_IPV6);
  const plen = u16(b, o + 4);
  const claimEnd = o + 40 + plen;
  const ipEnd = settleIpEnd(v, claimEnd, end);
  if (ipEnd < 0) return fail(v, IP_LENGTH_BEYOND_FRAME, LAYER_IPV6);

  v.ipVersion = 6;
  v.ipTos = ((b[o] & 0x0f) << 4) | (b[o + 1] >> 4);
  v.ip6FlowLabel = ((b[o + 1] & 0x0f) << 16) | (b[o + 2] << 8) | b[o + 3];
  v.ip6PayloadLen = plen;
  v.ipTotalLen = 40 + plen;
  let nh = b[o + 6];
  v.ip6NextHeader = nh;
  v.ipTtl = b[o + 7];
  v.ipSrcOff = o + 8;
  v.ipDstOff = o + 24;
  v.ipAddrLen = 16;
  v.layers |= LAYER_IPV6;

  let p = o + 40;
  let count = 0;
  let nonFirstFragment = false;
  for (;;) {
    let hlen: number;
    if (nh === IPPROTO_HOPOPTS || nh === IPPROTO_ROUTING || nh === IPPROTO_DSTOPTS || nh === IPPROTO_MOBILITY || nh === IPPROTO_HIP || nh === IPPROTO_SHIM6) {
      // RFC 8200 §4.1: hop-by-hop only right after the fixed header.
      if (nh === IPPROTO_HOPOPTS && count !== 0) return extFail(v, BAD_IPV6_EXT);
      if (ipEnd - p < 2) return extFail(v, TRUNCATED_IPV6_EXT);
      hlen = (b[p + 1] + 1) << 3;
      if (ipEnd - p < hlen) return extFail(v, TRUNCATED_IPV6_EXT);
      if (nh === IPPROTO_HOPOPTS) v.ip6HopOff = p;
      else if (nh === IPPROTO_ROUTING) v.ip6RoutingOff = p;
      else if (nh === IPPROTO_DSTOPTS) v.ip6DestOff = p;
    } else if (nh === IPPROTO_FRAGMENT) {
      hlen = 8;
      if (ipEnd - p < 8) return extFail(v, TRUNCATED_IPV6_EXT);
      v.ip6FragHdrOff = p;
      const offm = u16(b, p + 2);
      const fragOff = offm & 0xfff8;
      const mf = (offm & 1) !== 0;
      v.fragOffset = fragOff;
      v.moreFragments = mf;
      // Written out rather than u32(): see tcp.ts (no boxed return value per packet).
      v.fragId = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
      // An atomic fragment (offset 0, M 0: RFC 6946) is a whole datagram, not a fragment.
      if (mf || fragOff !== 0) v.layers |= LAYER_FRAG;
      nonFirstFragment = fragOff !== 0;
    } else if (nh === IPPROTO_AH) {
      if (ipEnd - p < 2) return extFail(v, TRUNCATED_IPV6_EXT);
      hlen = (b[p + 1] + 2) << 2; // RFC 4302: length in 4-octet units, minus 2
      if (ipEnd - p < hlen) return extFail(v, TRUNCATED_IPV6_EXT);
      v.ip6AhOff = p;
    } else {
      break;
    }
    if (count === MAX_IPV6_EXT_HEADERS) return extFail(v, BAD_IPV6_EXT);
    nh = b[p];
    p += hlen;
    count++;
    v.layers |= LAYER_IPV6_EXT;
    // In a non-first fragment everything after the fragment header is fragment data.
    if (nonFirstFragment) break;
  }
  v.ip6ExtCount = count;
  v.ip6ExtLen = p - o - 40;
  v.ipHdrLen = p - o;
  v.ipProto = nh;
  v.l4Off = p;
  if (nonFirstFragment) {
    v.payloadOff = p;
    v.payloadLen = ipEnd - p;
    v.payloadFullLen = claimEnd - p;
    v.layers |= LAYER_PAYLOAD;
    return OK;
  }
  return decodeL4(v, b, nh, p, ipEnd, claimEnd);
}

/**
 * The chain stops at a bad or cut extension header: the extension layer as a whole is where
 * decoding stopped, so it is not also "decoded" (headers before the bad one may have set it).
 */
function extFail(v: PacketView, reason: number): number {
  v.layers &= ~LAYER_IPV6_EXT;
  return fail(v, reason, LAYER_IPV6_EXT);
}
