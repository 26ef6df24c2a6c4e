/** ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) common header; echo id/seq. */
import { u16 } from '../bytes.js';
import { LAYER_ICMP4, LAYER_ICMP6, LAYER_PAYLOAD } from '../layer.js';
import { IPPROTO_ICMP } from '../proto.js';
import { OK, TRUNCATED_ICMP } from '../reasons.js';
import type { PacketView } from '../view.js';
import { fail } from './fail.js';

const ICMP4_ECHO_REPLY = 0;
const ICMP4_ECHO_REQUEST = 8;
const ICMP6_ECHO_REQUEST = 128;
const ICMP6_ECHO_REPLY = 129;

/**
 * Decode the ICMP message at `o` (`proto` 1 or 58). Both RFCs give every message an 8-byte
 * header (type, code, checksum, 4 bytes of type-specific data), so fewer is TRUNCATED_ICMP.
 * The payload is what follows those 8 bytes (e.g. the embedded datagram of an error).
 */
export function decodeIcmp(v: PacketView, b: Uint8Array, proto: number, o: number, ipEnd: number, claimEnd: number): number {
  const layer = proto === IPPROTO_ICMP ? LAYER_ICMP4 : LAYER_ICMP6;
  if (ipEnd - o < 8) return fail(v, TRUNCATED_ICMP, layer);
  const type = b[o];
  v.icmpType = type;
  v.icmpCode = b[o + 1];
  v.icmpChecksum = u16(b, o + 2);
  const echo =
    layer === LAYER_ICMP4
      ? type === ICMP4_ECHO_REQUEST || type === ICMP4_ECHO_REPLY
      : type === ICMP6_ECHO_REQUEST || type === ICMP6_ECHO_REPLY;
  if (echo) {
    v.icmpEcho = true;
    v.icmpEchoId = u16(b, o + 4);
    v.icmpEchoSeq = u16(b, o + 6);
  }
  v.layers |= layer | LAYER_PAYLOAD;
  const po = o + 8;
  v.payloadOff = po;
  v.payloadLen = ipEnd - po;
  v.payloadFullLen = claimEnd - po;
  return OK;
}
