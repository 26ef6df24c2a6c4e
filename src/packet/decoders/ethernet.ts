/**
 * Ethernet II / 802.3 header and 802.1Q / 802.1ad tag stack.
 */
import { u16 } from '../bytes.js';
import { LAYER_ETH, LAYER_VLAN } from '../layer.js';
import { ETH_MAX_8023_LENGTH, ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD, ETHERTYPE_VLAN } from '../proto.js';
import { NOTE_8023_LENGTH, OK, TOO_MANY_VLANS, TRUNCATED_ETH, TRUNCATED_VLAN } from '../reasons.js';
import type { PacketView } from '../view.js';
import { fail } from './fail.js';

/** Most stacked tags accepted; real networks use 1 or 2 (QinQ), more smells like an attack. */
export const MAX_VLAN_TAGS = 4;

function isTagTpid(t: number): boolean {
  return t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ || t === ETHERTYPE_QINQ_OLD;
}

/**
 * Decode the Ethernet header at `o` (frame ends at `end`): sets `ethOff`, the VLAN fields,
 * `etherType` (innermost) and `l3Off`. An 802.3 length in the type field sets NOTE_8023_LENGTH.
 */
export function decodeEthernet(v: PacketView, b: Uint8Array, o: number, end: number): number {
  if (end - o < 14) return fail(v, TRUNCATED_ETH, LAYER_ETH);
  v.ethOff = o;
  v.layers |= LAYER_ETH;
  let p = o + 12;
  let type = u16(b, p);
  p += 2;
  if (isTagTpid(type)) {
    v.vlanOff = p - 2;
    let n = 0;
    do {
      if (n === MAX_VLAN_TAGS) return fail(v, TOO_MANY_VLANS, LAYER_VLAN);
      // p points at the TCI; the next type follows it.
      if (end - p < 4) return fail(v, TRUNCATED_VLAN, LAYER_VLAN);
      const tci = u16(b, p);
      if (n === 0) {
        v.vlanTpid0 = type;
        v.vlanTci0 = tci;
        v.vlanId0 = tci & 0x0fff;
      } else if (n === 1) {
        v.vlanTpid1 = type;
        v.vlanTci1 = tci;
        v.vlanId1 = tci & 0x0fff;
      }
      n++;
      v.vlanCount = n;
      type = u16(b, p + 2);
      p += 4;
    } while (isTagTpid(type));
    v.layers |= LAYER_VLAN;
  }
  v.etherType = type;
  v.l3Off = p;
  if (type <= ETH_MAX_8023_LENGTH) v.notes |= NOTE_8023_LENGTH;
  return OK;
}
