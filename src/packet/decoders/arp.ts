/** ARP (RFC 826): fixed 8 bytes, then sender/target hardware and protocol addresses. */
import { u16 } from '../bytes.js';
import { LAYER_ARP } from '../layer.js';
import { NOTE_ETH_PADDING, OK, TRUNCATED_ARP } from '../reasons.js';
import type { PacketView } from '../view.js';
import { fail } from './fail.js';

/** Decode the ARP packet at `o` (frame ends at `end`). */
export function decodeArp(v: PacketView, b: Uint8Array, o: number, end: number): number {
  if (end - o < 8) return fail(v, TRUNCATED_ARP, LAYER_ARP);
  const hl = b[o + 4];
  const pl = b[o + 5];
  const arpEnd = o + 8 + 2 * (hl + pl);
  if (arpEnd > end) return fail(v, TRUNCATED_ARP, LAYER_ARP);
  v.arpHwType = u16(b, o);
  v.arpProtoType = u16(b, o + 2);
  v.arpHwLen = hl;
  v.arpProtoLen = pl;
  v.arpOp = u16(b, o + 6);
  v.arpSenderHwOff = o + 8;
  v.arpSenderProtoOff = o + 8 + hl;
  v.arpTargetHwOff = o + 8 + hl + pl;
  v.arpTargetProtoOff = o + 8 + 2 * hl + pl;
  v.layers |= LAYER_ARP;
  if (arpEnd < end) v.notes |= NOTE_ETH_PADDING;
  return OK;
}
