/** IPv4 header (RFC 791), options kept opaque. */
import { u16 } from '../bytes.js';
import { LAYER_FRAG, LAYER_IPV4, LAYER_PAYLOAD } from '../layer.js';
import { BAD_IHL, BAD_IP_VERSION, IP_LENGTH_BEYOND_FRAME, IP_LENGTH_TOO_SHORT, OK, TRUNCATED_IP } from '../reasons.js';
import type { PacketView } from '../view.js';
import { fail } from './fail.js';
import { settleIpEnd } from './ip-bounds.js';
import { decodeL4 } from './l4.js';

/** Decode the IPv4 datagram at `o` (frame ends at `end`), then its upper layer. */
export function decodeIPv4(v: PacketView, b: Uint8Array, o: number, end: number): number {
  if (end - o < 1) return fail(v, TRUNCATED_IP, LAYER_IPV4);
  const vihl = b[o];
  if (vihl >> 4 !== 4) return fail(v, BAD_IP_VERSION, LAYER_IPV4);
  if (end - o < 20) return fail(v, TRUNCATED_IP, LAYER_IPV4);
  const ihl = vihl & 0x0f;
  if (ihl < 5) return fail(v, BAD_IHL, LAYER_IPV4);
  const hl = ihl << 2;
  if (end - o < hl) return fail(v, TRUNCATED_IP, LAYER_IPV4);
  const total = u16(b, o + 2);
  if (total < hl) return fail(v, IP_LENGTH_TOO_SHORT, LAYER_IPV4);
  const claimEnd = o + total;
  const ipEnd = settleIpEnd(v, claimEnd, end);
  if (ipEnd < 0) return fail(v, IP_LENGTH_BEYOND_FRAME, LAYER_IPV4);

  v.ipVersion = 4;
  v.ipIhl = ihl;
  v.ipHdrLen = hl;
  v.ipTotalLen = total;
  v.ipTos = b[o + 1];
  const id = u16(b, o + 4);
  v.ipId = id;
  const ff = u16(b, o + 6);
  const flags = ff >>> 13;
  v.ipFlags = flags;
  v.ipDf = (flags & 2) !== 0;
  const mf = (flags & 1) !== 0;
  const fragOff = (ff & 0x1fff) << 3;
  v.moreFragments = mf;
  v.fragOffset = fragOff;
  v.fragId = id;
  v.ipTtl = b[o + 8];
  const proto = b[o + 9];
  v.ipProto = proto;
  v.ipChecksum = u16(b, o + 10);
  v.ipSrcOff = o + 12;
  v.ipDstOff = o + 16;
  v.ipAddrLen = 4;
  if (hl > 20) {
    v.ipOptOff = o + 20;
    v.ipOptLen = hl - 20;
  }
  v.layers |= LAYER_IPV4;
  const l4 = o + hl;
  v.l4Off = l4;
  if (mf || fragOff !== 0) {
    v.layers |= LAYER_FRAG;
    if (fragOff !== 0) {
      // The upper-layer header travels in the first fragment: this is opaque payload.
      v.payloadOff = l4;
      v.payloadLen = ipEnd - l4;
      v.payloadFullLen = claimEnd - l4;
      v.layers |= LAYER_PAYLOAD;
      return OK;
    }
  }
  return decodeL4(v, b, proto, l4, ipEnd, claimEnd);
}
