/** UDP header (RFC 768). */
import { u16 } from '../bytes.js';
import { LAYER_FRAG, LAYER_PAYLOAD, LAYER_UDP } from '../layer.js';
import { BAD_UDP_LENGTH, NOTE_UDP_SURPLUS, OK, TRUNCATED_UDP } from '../reasons.js';
import type { PacketView } from '../view.js';
import { fail } from './fail.js';

/**
 * Decode the UDP datagram at `o`; see decodeL4 for `ipEnd`/`claimEnd`. The UDP length bounds
 * the payload. In a first fragment it describes the whole reassembled datagram, so it is only
 * checked for ≥ 8 and the payload is what this fragment carries.
 */
export function decodeUdp(v: PacketView, b: Uint8Array, o: number, ipEnd: number, claimEnd: number): number {
  if (ipEnd - o < 8) return fail(v, TRUNCATED_UDP, LAYER_UDP);
  const ulen = u16(b, o + 4);
  const fragment = (v.layers & LAYER_FRAG) !== 0;
  if (ulen < 8 || (!fragment && ulen > claimEnd - o)) return fail(v, BAD_UDP_LENGTH, LAYER_UDP);
  v.srcPort = u16(b, o);
  v.dstPort = u16(b, o + 2);
  v.udpLength = ulen;
  v.udpChecksum = u16(b, o + 6);
  v.layers |= LAYER_UDP | LAYER_PAYLOAD;
  const po = o + 8;
  v.payloadOff = po;
  let fullEnd = claimEnd;
  if (!fragment && o + ulen < claimEnd) {
    fullEnd = o + ulen;
    v.notes |= NOTE_UDP_SURPLUS;
  }
  v.payloadFullLen = fullEnd - po;
  v.payloadLen = (fullEnd < ipEnd ? fullEnd : ipEnd) - po;
  return OK;
}
