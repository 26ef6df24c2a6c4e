/**
 * FlowCompare: the compare engine's state for one flow (a flow table entry, or an ARP
 * (sender, target) pair). Allocated once per flow, never per packet. It owns:
 * - the flow's queue of held primary frames, in arrival order (release order);
 * - per direction, a TCP comparator (`TcpDirection`) or a datagram pairer (`DgramDir`),
 *   created on first use;
 * - counters of secondary frames / bytes held for it (budgets);
 * - the epochs in which it last produced a timeout / budget record (one of each per flow per
 *   checkpoint interval: they describe a state, not an event).
 */
import type { CompareContext } from './context.js';
import { DgramDir } from './datagram-compare.js';
import { NIL, type FlowQueue } from './entries.js';
import { TcpDirection } from './tcp-direction.js';

/** Flow kinds. */
export const FLOW_IP = 0;
export const FLOW_ARP = 1;

export class FlowCompare implements FlowQueue {
  /** Engine reference: the flow table id, or past the table's capacity for ARP pairs. */
  readonly ref: number;
  readonly kind: number;
  /** IP protocol (0 for ARP). */
  readonly proto: number;
  qHead = NIL;
  qTail = NIL;
  qCount = 0;
  qBytes = 0;
  /** Secondary frames held for this flow, and their bytes plus copied stream bytes. */
  sCount = 0;
  sBytes = 0;
  /** Pool slots pinned by secondary stream bytes queued zero copy (they count against frame budgets). */
  sPinned = 0;
  readonly tcp: [TcpDirection | null, TcpDirection | null] = [null, null];
  readonly dgram: [DgramDir | null, DgramDir | null] = [null, null];
  timeoutEpoch = -1;
  budgetEpoch = -1;
  /** Flow text for flows not in the flow table (ARP). */
  name: string | null = null;
  /** ARP map key. */
  arpKey: string | null = null;
  vlan = 0;
  live = true;

  constructor(ref: number, kind: number, proto: number) {
    this.ref = ref;
    this.kind = kind;
    this.proto = proto;
  }

  tcpDir(ctx: CompareContext, dir: number): TcpDirection {
    return (this.tcp[dir] ??= new TcpDirection(ctx, this, dir));
  }

  dgramDir(dir: number): DgramDir {
    return (this.dgram[dir] ??= new DgramDir());
  }

  /** True when nothing is held for this flow (an ARP pair can then be forgotten). */
  get idle(): boolean {
    return this.qCount === 0 && this.sCount === 0;
  }
}
