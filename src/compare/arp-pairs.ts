/**
 * ArpPairs: the ARP "flows" of the compare engine. ARP has no flow table entry, so frames are
 * paired per (sender protocol address, target protocol address, VLAN), each pair a FlowCompare
 * with its own reference number (after the flow table's ids). A pair is forgotten as soon as
 * nothing is held for it. ARP is rare: its key is a string (cold path, allocates).
 *
 * Limit: `max` pairs at once; past it `get` returns undefined and the caller treats the frame
 * as uncomparable (counted 'ARP_TABLE_FULL').
 */
import { formatIPv4 } from '../packet/addr.js';
import type { PacketView } from '../packet/view.js';
import { hex } from './divergence.js';
import { FLOW_ARP, FlowCompare } from './flow-compare.js';

export class ArpPairs {
  readonly #map = new Map<string, FlowCompare>();
  readonly #free: number[] = [];

  /** References `firstRef .. firstRef + max - 1` are ARP pairs. */
  constructor(firstRef: number, max: number) {
    for (let i = max - 1; i >= 0; i--) this.#free.push(firstRef + i);
  }

  get size(): number {
    return this.#map.size;
  }

  /** The pair of decoded ARP frame `v`, created if needed (`created` is called with it); undefined when full. */
  get(v: PacketView, created: (fc: FlowCompare) => void): FlowCompare | undefined {
    const b = v.buf;
    const pl = v.arpProtoLen;
    const vlan = v.vlanCount > 0 ? v.vlanId0 : 0;
    const key = `${vlan}/${hex(b, v.arpSenderProtoOff, pl)}/${hex(b, v.arpTargetProtoOff, pl)}`;
    let fc = this.#map.get(key);
    if (fc !== undefined) return fc;
    const ref = this.#free.pop();
    if (ref === undefined) return undefined;
    fc = new FlowCompare(ref, FLOW_ARP, 0);
    fc.arpKey = key;
    fc.vlan = vlan;
    const text = (off: number) => (pl === 4 ? formatIPv4(b, off) : hex(b, off, pl));
    fc.name = `${text(v.arpSenderProtoOff)}-${text(v.arpTargetProtoOff)}/ARP`;
    this.#map.set(key, fc);
    created(fc);
    return fc;
  }

  /** Forget `fc` if nothing is held for it (nor owed to it: shadow-mode ghosts); true if forgotten. */
  forgetIfIdle(fc: FlowCompare): boolean {
    if (!fc.idle || (fc.dgram[0]?.ghosts ?? 0) > 0) return false;
    this.forget(fc);
    return true;
  }

  forget(fc: FlowCompare): void {
    if (!fc.live) return;
    fc.live = false;
    this.#map.delete(fc.arpKey!);
    this.#free.push(fc.ref);
  }

  /** A snapshot of the pairs (cold path: for iteration that may forget some). */
  all(): FlowCompare[] {
    return [...this.#map.values()];
  }
}
