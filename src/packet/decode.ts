/**
 * decodeFrame: decode one frame in place into a reusable PacketView. Never throws, never
 * allocates, never reads outside [off, off + len).
 */
import { decodeArp } from './decoders/arp.js';
import { decodeEthernet } from './decoders/ethernet.js';
import { fail } from './decoders/fail.js';
import { decodeIPv4 } from './decoders/ipv4.js';
import { decodeIPv6 } from './decoders/ipv6.js';
import { LAYER_VNET } from './layer.js';
import { ETH_MAX_8023_LENGTH, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './proto.js';
import { NOTE_UNKNOWN_ETHERTYPE, OK, TRUNCATED_VNET } from './reasons.js';
import type { PacketView } from './view.js';

/**
 * Decode the frame `buf[off .. off + len)` into `v` and return its status (0 = OK, else a
 * reason code from reasons.ts; also stored in `v.status`, with `v.stopLayer` naming the bad
 * layer).
 *
 * @param vnetHdrLen bytes of virtio-net header before the Ethernet header (skipped; its
 *   offset is kept in `v.vnetOff`).
 * @param wireLen the frame's length on the wire, vnet header included, when it was captured
 *   with a snaplen (`origLen`); defaults to `len`. Only a `wireLen` > `len` lets an IP length
 *   past the captured bytes decode (NOTE_TRUNCATED_PAYLOAD) instead of failing with
 *   IP_LENGTH_BEYOND_FRAME.
 *
 * Out-of-range `off`/`len` are clamped to the buffer rather than trusted.
 */
export function decodeFrame(v: PacketView, buf: Uint8Array, off: number, len: number, vnetHdrLen = 0, wireLen = len): number {
  v.reset();
  // Clamp so a bad caller can only make the frame shorter, never make us read past `buf`.
  if (!(off >= 0)) off = 0;
  if (off > buf.length) off = buf.length;
  if (!(len >= 0)) len = 0;
  if (len > buf.length - off) len = buf.length - off;
  v.buf = buf;
  v.frameOff = off;
  v.frameLen = len;
  v.wireLen = wireLen > len ? wireLen : len;
  const end = off + len;
  let o = off;
  if (vnetHdrLen !== 0) {
    if (!(vnetHdrLen > 0) || vnetHdrLen > len) return fail(v, TRUNCATED_VNET, LAYER_VNET);
    v.vnetOff = off;
    v.vnetLen = vnetHdrLen;
    v.layers |= LAYER_VNET;
    o += vnetHdrLen;
  }
  let st = decodeEthernet(v, buf, o, end);
  if (st !== OK) return st;
  const l3 = v.l3Off;
  switch (v.etherType) {
    case ETHERTYPE_IPV4:
      st = decodeIPv4(v, buf, l3, end);
      break;
    case ETHERTYPE_IPV6:
      st = decodeIPv6(v, buf, l3, end);
      break;
    case ETHERTYPE_ARP:
      st = decodeArp(v, buf, l3, end);
      break;
    default:
      // Not an error: such frames are forwarded untouched (see reasons.ts).
      if (v.etherType > ETH_MAX_8023_LENGTH) v.notes |= NOTE_UNKNOWN_ETHERTYPE;
      break;
  }
  return st;
}
