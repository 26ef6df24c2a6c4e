/**
 * Fragment reassembly keys: which fragments belong to one datagram. RFC 791 §3.2: source,
 * destination, protocol and identification; RFC 8200 §4.5: source, destination and the
 * fragment header's identification. The outer/inner VLAN ids are added (datagrams on
 * different VLANs are on different networks even when their addresses match).
 *
 * Layout (FRAG_KEY_WORDS = 11 Int32 words):
 *   w0  IP version << 24 | IPv4 protocol << 16 (0 for IPv6)
 *   w1  outer VLAN id << 16 | inner VLAN id (0 = untagged)
 *   w2  identification (IPv4: 16 bits, IPv6: 32 bits)
 *   w3..6 source address, w7..10 destination address (IPv4: w3 / w7 only)
 */
import type { PacketView } from '../packet/view.js';

export const FRAG_KEY_WORDS = 11;

function word(b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}

/** Fill `out` with the reassembly key of fragment `v` (an IPv4 or IPv6 fragment). */
export function fragKey(v: PacketView, out: Int32Array): void {
  const v6 = v.ipVersion === 6;
  out[0] = v6 ? 6 << 24 : (4 << 24) | (v.ipProto << 16);
  out[1] = ((v.vlanCount > 0 ? v.vlanId0 : 0) << 16) | (v.vlanCount > 1 ? v.vlanId1 : 0);
  out[2] = v.fragId | 0;
  const b = v.buf;
  const s = v.ipSrcOff;
  const d = v.ipDstOff;
  if (v6) {
    for (let i = 0; i < 4; i++) {
      out[3 + i] = word(b, s + 4 * i);
      out[7 + i] = word(b, d + 4 * i);
    }
  } else {
    out[3] = word(b, s);
    out[4] = out[5] = out[6] = 0;
    out[7] = word(b, d);
    out[8] = out[9] = out[10] = 0;
  }
}
