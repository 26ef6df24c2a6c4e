/** Upper-layer dispatch after the IP header(s). */
import { LAYER_PAYLOAD } from '../layer.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_NONE, IPPROTO_TCP, IPPROTO_UDP } from '../proto.js';
import { OK } from '../reasons.js';
import type { PacketView } from '../view.js';
import { decodeIcmp } from './icmp.js';
import { decodeTcp } from './tcp.js';
import { decodeUdp } from './udp.js';

/**
 * Decode the upper layer `proto` at `o`. `ipEnd` is where the datagram's captured bytes end,
 * `claimEnd` where its header says it ends (they differ only in a snaplen-truncated capture).
 * Protocols we do not parse (ESP, GRE, tunnels…) become opaque payload from `o`.
 */
export function decodeL4(v: PacketView, b: Uint8Array, proto: number, o: number, ipEnd: number, claimEnd: number): number {
  switch (proto) {
    case IPPROTO_TCP:
      return decodeTcp(v, b, o, ipEnd, claimEnd);
    case IPPROTO_UDP:
      return decodeUdp(v, b, o, ipEnd, claimEnd);
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      return decodeIcmp(v, b, proto, o, ipEnd, claimEnd);
    case IPPROTO_NONE:
      // RFC 8200 §4.7: bytes after "no next header" are ignored.
      v.payloadOff = o;
      v.layers |= LAYER_PAYLOAD;
      return OK;
    default:
      v.payloadOff = o;
      v.payloadLen = ipEnd - o;
      v.payloadFullLen = claimEnd - o;
      v.layers |= LAYER_PAYLOAD;
      return OK;
  }
}
