/**
 * CompareEngine: the colo-compare stage. Holds the primary VM's output until the secondary
 * VM has produced the same output, releases it when it matches, and asks for a checkpoint
 * when it does not. Rules: docs/compare.md. In outline:
 *
 *   primary(h) ─▶ decode ─▶ unparseable? ─▶ released at once (counted by reason)
 *                   │
 *                   ├─ IP fragment ─▶ staged; Defragmenter ─▶ whole datagram compared,
 *                   │                 original fragment frames released after it matched
 *                   ├─ ARP ─▶ FIFO pairing per (sender, target)
 *                   └─ FlowTable ─▶ flow queue (release order) ─┬─ TCP: per-direction
 *                                                               │  stream comparison
 *                                                               └─ other: FIFO pairing
 *   secondary(h) ─▶ same decoding and lookup; compared, never output.
 *
 * Ownership: the engine owns every handle given to it. Primary handles leave through
 * `release(handle)` (the consumer then owns them; their bytes were never modified); secondary
 * handles are released to the pool when done with. Nothing is dropped silently.
 *
 * Checkpoints: every divergence produces a record and requests ONE checkpoint through the
 * CheckpointPort (coalesced while one is pending). `onCheckpointCompleted()` releases every
 * held primary packet in arrival order and, unless the port is a shadow, drops the
 * secondary's held data and restarts every TCP direction from the primary's next sequence
 * number. In shadow mode alignment is kept (diverged directions are re-anchored).
 *
 * Not re-entrant: `release`, `onDivergence`, `onBackpressure` and `CheckpointPort.request`
 * callbacks must not call primary/secondary/tick/close (ERR_COMPARE_REENTRANT).
 * `onCheckpointCompleted` may be called from inside them: it is deferred to the end of the
 * current call.
 *
 * Time is the caller's `nowMs` (capture time when replaying); the engine reads no clock.
 */
import { ColoError } from '../errors.js';
import { Defragmenter, DefragDrop, DEFRAG_OK, DROP_DUPLICATE } from '../flow/defrag.js';
import { FlowTable, type RemoveReason } from '../flow/table.js';
import { ReassemblyBudget } from '../flow/tcp-budget.js';
import { TCP_SYN } from '../flow/tcp-types.js';
import { decodeFrame } from '../packet/decode.js';
import { LAYER_ARP, LAYER_FRAG, LAYER_IPV4, LAYER_IPV6, LAYER_TCP } from '../packet/layer.js';
import { NO_HANDLE, type PacketPool } from '../packet/pool.js';
import { IPPROTO_TCP } from '../packet/proto.js';
import { NOTE_8023_LENGTH, OK, reasonName } from '../packet/reasons.js';
import { PacketView } from '../packet/view.js';
import type { CheckpointPort } from './checkpoint-port.js';
import type { CompareContext } from './context.js';
import { dropWaitingSecondaries, primaryDatagram, secondaryDatagram } from './datagram-compare.js';
import { hex, type AlignmentRule, type DivergenceCause, type DivergenceRecord, type DivergenceSide } from './divergence.js';
import {
  AGE_PRIMARY,
  AGE_SECONDARY,
  auxRemove,
  auxReset,
  auxShift,
  EF_MATCHED,
  EF_MEMBER,
  EntryStore,
  K_DGRAM,
  K_FRAG,
  K_S_DGRAM,
  K_S_PENDING,
  K_TCP,
  NIL,
  type FlowQueue,
} from './entries.js';
import { FLOW_ARP, FLOW_IP, FlowCompare } from './flow-compare.js';
import { ArpPairs } from './arp-pairs.js';
import { FragmentStaging } from './fragment-staging.js';
import { flowName, fragmentFlowName } from './flow-names.js';
import { resolveCompareLimits, type CompareLimits } from './limits.js';
import { CompareStats, type CompareStatsSnapshot } from './stats.js';
import { REL_CONTROL, REL_MATCHED, REL_NO, REL_PRE_ORIGIN, SIDE_P, SIDE_S } from './tcp-conn.js';

export interface CompareEngineOptions {
  /** The pool every handle given to the engine comes from (`pool.tag[h]` = vnet header length). */
  pool: PacketPool;
  /** Where checkpoints are requested. */
  checkpoint: CheckpointPort;
  /** Receives each released primary handle, in per-flow order; the callee owns it. */
  release: (handle: number) => void;
  limits?: Partial<CompareLimits>;
  /**
   * Clock for `onCheckpointCompleted()` called without a time (e.g. from a QMP event
   * handler). Default: the time of the engine's latest call.
   */
  now?: () => number;
  /** Shadow mode; default `checkpoint.shadow ?? false`. */
  shadow?: boolean;
  /** Every divergence record, as it happens. */
  onDivergence?: (record: DivergenceRecord) => void;
  /** Input should pause (true) / may resume (false); see `wantsInput`. */
  onBackpressure?: (paused: boolean) => void;
  /** Flow table hash seed (tests only). */
  seed?: number;
}

export interface CompareAccounting {
  primary: { received: number; released: number; held: number; unparseable: number; balanced: boolean };
  secondary: {
    received: number;
    /** Whole datagrams the defragmenter built from secondary fragments (extra frames). */
    reassembled: number;
    consumed: number;
    held: number;
    dropped: number;
    unparseable: number;
    balanced: boolean;
  };
}

/** Special flow references for held entries without a flow. */
const REF_STAGING = -2;
const REF_ORPHAN = -3;

const REL_CHECKPOINT = 4;
const REL_CLOSE = 5;

/** Staged fragments already reported as timed out this epoch. */
const EF_REPORTED = 1 << 8;

const DEFRAG_DROP_NAMES: string[] = [];
for (const [name, code] of Object.entries(DefragDrop)) DEFRAG_DROP_NAMES[code] = `DEFRAG_${name}`;

function sumValues(r: Record<string, number>): number {
  let s = 0;
  for (const k in r) s += r[k]!;
  return s;
}

export class CompareEngine implements CompareContext {
  readonly pool: PacketPool;
  readonly store: EntryStore;
  readonly limits: CompareLimits;
  readonly stats = new CompareStats();
  readonly reassemblyBudget: ReassemblyBudget;
  readonly synView = new PacketView();
  readonly replayView = new PacketView();
  /** True when completions do not resynchronise the secondary. */
  readonly shadow: boolean;
  readonly table: FlowTable<FlowCompare>;
  nowMs = 0;

  readonly #port: CheckpointPort;
  readonly #release: (handle: number) => void;
  readonly #clock: (() => number) | undefined;
  readonly #onDivergence: ((r: DivergenceRecord) => void) | undefined;
  readonly #onBackpressure: ((paused: boolean) => void) | undefined;
  readonly #pDefrag: Defragmenter;
  readonly #sDefrag: Defragmenter;
  readonly #staging: FragmentStaging;
  readonly #v = new PacketView();
  /** Decodes datagrams the defragmenters rebuilt. */
  readonly #vd = new PacketView();
  readonly #members: number[] = [];
  /** Flow objects by reference: flow table ids, then ARP pairs. */
  readonly #refs: (FlowCompare | undefined)[];
  readonly #active = new Set<FlowCompare>();
  readonly #arp: ArpPairs;
  readonly #orphans: FlowQueue = { qHead: NIL, qTail: NIL, qCount: 0, qBytes: 0 };
  readonly #records: DivergenceRecord[] = [];
  /** Flows whose shadow re-anchor the current scan forced (scratch, see #forceResyncs). */
  readonly #forced: FlowCompare[] = [];

  #pHeld = 0;
  #pHeldBytes = 0;
  /** Pool slots pinned by queued secondary stream bytes. */
  #sPinned = 0;
  #sReassembled = 0;
  #epoch = 0;
  #pending = false;
  #pendingSince = 0;
  #recordSeq = 0;
  #paused = false;
  #busy = false;
  #deferredCompletion = false;
  #nextScan = -1;
  #closed = false;

  constructor(opts: CompareEngineOptions) {
    const pool = opts.pool;
    this.pool = pool;
    const ps = pool.stats();
    this.limits = resolveCompareLimits(opts.limits, pool.capacity, ps.reservedBytes);
    this.#port = opts.checkpoint;
    this.#release = opts.release;
    this.#clock = opts.now;
    this.#onDivergence = opts.onDivergence;
    this.#onBackpressure = opts.onBackpressure;
    this.shadow = opts.shadow ?? opts.checkpoint.shadow ?? false;
    // Every entry holds a pool reference, so the pool's slot count bounds the entries.
    this.store = new EntryStore(pool.capacity + 8);
    this.reassemblyBudget = new ReassemblyBudget(this.limits.reassemblyBudgetBytes);
    this.table = new FlowTable<FlowCompare>({
      maxFlows: this.limits.maxFlows,
      timeouts: this.limits.flowTimeouts,
      onRemove: (id, reason, fc) => this.#onFlowRemove(id, reason, fc),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    });
    const defragSeed = opts.seed !== undefined ? { seed: opts.seed } : {};
    this.#pDefrag = new Defragmenter({ pool, ...defragSeed });
    this.#sDefrag = new Defragmenter({ pool, ...defragSeed });
    this.#staging = new FragmentStaging(this.store, pool);
    const cap = this.table.capacity;
    this.#refs = new Array<FlowCompare | undefined>(cap + this.limits.maxArpPairs).fill(undefined);
    this.#arp = new ArpPairs(cap, this.limits.maxArpPairs);
    const sv = this.synView;
    sv.layers = LAYER_TCP;
    sv.tcpFlags = TCP_SYN;
  }

  // ================= public API =================

  /** A frame from primary_in. The engine owns `handle` from now on. */
  primary(handle: number, nowMs: number): void {
    if (this.#closed) {
      this.stats.pReceived++;
      this.#unparseable(handle, 'ENGINE_CLOSED');
      return;
    }
    this.#enter(nowMs);
    try {
      this.#primary(handle, nowMs);
    } finally {
      this.#leave();
    }
  }

  /** A frame from secondary_in. The engine owns `handle` from now on (it is never output). */
  secondary(handle: number, nowMs: number): void {
    if (this.#closed) {
      this.stats.sReceived++;
      this.#sUnparseable(handle, 'ENGINE_CLOSED');
      return;
    }
    this.#enter(nowMs);
    try {
      this.#secondary(handle, nowMs);
    } finally {
      this.#leave();
    }
  }

  /**
   * Timers: flow and fragment expiry, and every `expiredScanCycleMs` the compare_timeout scan
   * (held primary packets too old → 'timeout' divergence; secondary frames too old → dropped)
   * and the checkpoint retry. Call it periodically (e.g. every 100 ms, or per capture record).
   */
  tick(nowMs: number): void {
    if (this.#closed) return;
    this.#enter(nowMs);
    try {
      this.table.expire(nowMs);
      this.#pDefrag.expire(nowMs);
      this.#sDefrag.expire(nowMs);
      if (nowMs >= this.#nextScan) {
        this.#nextScan = nowMs + this.limits.expiredScanCycleMs;
        this.#scan(nowMs);
      }
    } finally {
      this.#leave();
    }
  }

  /**
   * A checkpoint completed (requested or not). Releases every held primary packet in arrival
   * order; unless in shadow mode, drops the secondary's held data and restarts every TCP
   * direction's alignment from the primary's state. Deferred when called from inside one of
   * the engine's own callbacks.
   */
  onCheckpointCompleted(nowMs?: number): void {
    if (this.#closed) return;
    if (this.#busy) {
      this.#deferredCompletion = true;
      return;
    }
    this.#enter(nowMs ?? this.#clock?.() ?? this.nowMs);
    try {
      this.#complete();
    } finally {
      this.#leave();
    }
  }

  /**
   * The pending checkpoint failed (controller timeout, COLO exit, lost connection). Held
   * packets stay held; the request is sent again at the next scan (counted as a retry), and
   * timeouts keep being reported per checkpoint interval.
   */
  onCheckpointFailed(): void {
    this.stats.ckptFailed++;
    if (this.#pending) this.#pendingSince = -Infinity;
  }

  /** False while the engine asks its input owner to pause (a held budget was passed; until the checkpoint completes). */
  wantsInput(): boolean {
    return !this.#paused;
  }

  /** True between a checkpoint request and its completion. */
  get checkpointPending(): boolean {
    return this.#pending;
  }

  /** Completed checkpoints so far (the current epoch). */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * End of input / shutdown: release every held primary packet (arrival order), drop all
   * secondary data, free every pool reference the engine holds. Afterwards frames given to the
   * engine are passed through uncompared ('ENGINE_CLOSED').
   */
  close(): void {
    if (this.#closed) return;
    this.#enter(this.nowMs);
    try {
      const st = this.store;
      for (let e = st.ageHead(AGE_PRIMARY); e !== NIL; e = st.ageHead(AGE_PRIMARY)) this.#releaseEntry(e, REL_CLOSE);
      this.#resetQueues();
      for (const fc of this.#active) this.#dropFlowState(fc, 'close');
      this.table.clear();
      this.#pDefrag.clear();
      this.#sDefrag.clear();
      for (const fc of this.#arp.all()) this.#forgetArp(fc);
      this.#active.clear();
      this.#closed = true;
    } finally {
      this.#leave();
    }
  }

  /** Counters (a copy). */
  statsSnapshot(): CompareStatsSnapshot {
    return this.stats.snapshot(this.#pHeld, this.#pHeldBytes, this.#paused);
  }

  /** The accounting invariants: every frame is released, held, or reported (see stats.ts). */
  accounting(): CompareAccounting {
    const s = this.stats;
    const dropped = sumValues(s.sDroppedBy);
    const sUnp = sumValues(s.sUnparseableBy);
    return {
      primary: {
        received: s.pReceived,
        released: s.pReleased,
        held: this.#pHeld,
        unparseable: s.pUnparseable,
        balanced: s.pReceived === s.pReleased + this.#pHeld + s.pUnparseable,
      },
      secondary: {
        received: s.sReceived,
        reassembled: this.#sReassembled,
        consumed: s.sConsumed,
        held: s.sHeld,
        dropped,
        unparseable: sUnp,
        balanced: s.sReceived + this.#sReassembled === s.sConsumed + s.sHeld + dropped + sUnp,
      },
    };
  }

  /** The most recent divergence records (at most `maxRecords`). */
  records(): readonly DivergenceRecord[] {
    return this.#records;
  }

  /** Primary frames held now and their bytes. */
  get held(): { frames: number; bytes: number } {
    return { frames: this.#pHeld, bytes: this.#pHeldBytes };
  }

  // ================= CompareContext =================

  divergence(
    fc: FlowCompare,
    dir: number,
    cause: DivergenceCause,
    side: DivergenceSide,
    offset: number | null,
    unit: 'byte' | 'datagram' | null,
    pBuf: Uint8Array | null,
    pOff: number,
    pLen: number,
    sBuf: Uint8Array | null,
    sOff: number,
    sLen: number,
    alignment?: AlignmentRule,
  ): void {
    const n = this.limits.diffBytes;
    const pHex = pBuf === null ? '' : hex(pBuf, pOff, pLen < n ? pLen : n);
    const sHex = sBuf === null ? '' : hex(sBuf, sOff, sLen < n ? sLen : n);
    const heldMs = fc.qHead !== NIL ? this.nowMs - this.store.arrival[fc.qHead]! : 0;
    const name = flowName(this.table, fc, dir);
    this.#record(cause, side, name.flow, name.vlan, offset, unit, pHex, sHex, heldMs, alignment);
  }

  holdSecondary(fc: FlowCompare, kind: number, h: number, dir: number, gen: number, bytes: number): number {
    const st = this.store;
    const e = st.alloc(kind, h, fc.ref, dir, this.nowMs, bytes);
    st.gen[e] = gen;
    st.agePush(AGE_SECONDARY, e);
    fc.sCount++;
    fc.sBytes += bytes;
    this.stats.sHeld++;
    this.stats.sHeldBytes += bytes;
    return e;
  }

  unholdSecondary(fc: FlowCompare | undefined, e: number): number {
    const st = this.store;
    const h = st.handle[e]!;
    const b = st.bytes[e]!;
    if (fc !== undefined) {
      fc.sCount--;
      fc.sBytes -= b;
    }
    this.stats.sHeld--;
    this.stats.sHeldBytes -= b;
    st.free(e);
    return h;
  }

  secondaryBytes(fc: FlowCompare, delta: number, pinned: number): void {
    fc.sBytes += delta;
    fc.sPinned += pinned;
    this.stats.sHeldBytes += delta;
    this.#sPinned += pinned;
  }

  dropSecondary(h: number, reason: string): void {
    this.pool.release(h);
    this.stats.sDrop(reason);
  }

  consumedSecondary(): void {
    this.stats.sConsumed++;
  }

  // ================= primary path =================

  #primary(h: number, nowMs: number): void {
    const pool = this.pool;
    const v = this.#v;
    this.stats.pReceived++;
    const bytes = pool.length(h);
    const status = decodeFrame(v, pool.buffer(h), pool.offset(h), bytes, pool.tag[h]!);
    const layers = v.layers;
    if ((layers & LAYER_FRAG) !== 0 && (layers & (LAYER_IPV4 | LAYER_IPV6)) !== 0) {
      this.#primaryFragment(h, v, nowMs, bytes);
      return;
    }
    if (status !== OK) {
      this.#unparseable(h, reasonName(status));
      return;
    }
    if ((layers & LAYER_ARP) !== 0) {
      this.#primaryArp(h, v, nowMs, bytes);
      return;
    }
    if ((layers & (LAYER_IPV4 | LAYER_IPV6)) === 0) {
      this.#unparseable(h, (v.notes & NOTE_8023_LENGTH) !== 0 ? 'ETH_8023' : 'UNKNOWN_ETHERTYPE');
      return;
    }
    const id = this.table.lookup(v, nowMs);
    if (id < 0) {
      this.#unparseable(h, 'NO_FLOW');
      return;
    }
    const fc = this.#flowFor(id, v.ipProto);
    const st = this.store;
    const e = st.alloc(v.ipProto === IPPROTO_TCP ? K_TCP : K_DGRAM, h, fc.ref, this.table.dir, nowMs, bytes);
    this.#heldPrimary(e);
    this.#enqueuePrimary(fc, this.table.dir, e, v, h, nowMs);
  }

  /** Count a new held primary entry and put it on the age list. */
  #heldPrimary(e: number): void {
    this.store.agePush(AGE_PRIMARY, e);
    this.#pHeld++;
    this.#pHeldBytes += this.store.bytes[e]!;
  }

  /** Queue primary entry `e` on its flow and compare it; `bufHandle` holds `v.buf`. */
  #enqueuePrimary(fc: FlowCompare, dir: number, e: number, v: PacketView, bufHandle: number, nowMs: number): void {
    const st = this.store;
    st.qPush(fc, e);
    if (st.kind[e] === K_TCP) {
      const td = fc.tcpDir(this, dir);
      const conn = td.connFor(SIDE_P, v);
      st.gen[e] = conn.ord;
      conn.held++;
      if (conn.primary(v, bufHandle, e, nowMs)) td.notePrimaryEnd(conn, conn.baseOff + st.end[e]!);
      td.prune();
    } else {
      const dd = fc.dgramDir(dir);
      if (fc.kind === FLOW_IP) {
        st.cmpOff[e] = v.l4Off;
        st.cmpLen[e] = v.ipEnd - v.l4Off;
      }
      st.index[e] = dd.pIndex++;
      primaryDatagram(this, fc, dir, dd, e);
    }
    this.#checkBudget(fc, dir, 'primary', bufHandle);
    this.#drain(fc);
  }

  #primaryFragment(h: number, v: PacketView, nowMs: number, bytes: number): void {
    const st = this.store;
    const staging = this.#staging;
    const hash = staging.keyOf(v);
    const e = st.alloc(K_FRAG, h, REF_STAGING, 0, nowMs, bytes);
    this.#heldPrimary(e);
    staging.add(e, hash);
    const dh = this.#pDefrag.push(v, nowMs, h);
    const members = this.#members;
    if (dh !== NO_HANDLE) {
      staging.take(hash, members);
      this.#primaryDatagramDone(dh, members, nowMs);
      return;
    }
    const drop = this.#pDefrag.lastDrop;
    if (drop !== DEFRAG_OK && drop !== DROP_DUPLICATE) {
      // The datagram can never be rebuilt: its fragments cannot be compared.
      staging.take(hash, members);
      const reason = DEFRAG_DROP_NAMES[drop] ?? 'DEFRAG_DROP';
      for (const m of members) this.#releaseUncompared(m, reason);
    }
  }

  /** The primary datagram rebuilt in `dh` completed; `members` are its staged fragment entries. */
  #primaryDatagramDone(dh: number, members: number[], nowMs: number): void {
    const pool = this.pool;
    const st = this.store;
    const vd = this.#vd;
    const status = decodeFrame(vd, pool.buffer(dh), pool.offset(dh), pool.length(dh), 0);
    const id = status === OK ? this.table.lookup(vd, nowMs) : -1;
    if (id < 0 || members.length === 0) {
      const reason = status !== OK ? reasonName(status) : 'NO_FLOW';
      for (const m of members) this.#releaseUncompared(m, reason);
      pool.release(dh);
      return;
    }
    const dir = this.table.dir;
    const fc = this.#flowFor(id, vd.ipProto);
    const holder = members[members.length - 1]!;
    for (let i = 0; i < members.length - 1; i++) {
      const m = members[i]!;
      st.flags[m] |= EF_MEMBER;
      st.holder[m] = holder;
      st.flowRef[m] = fc.ref;
      st.dir[m] = dir;
      st.qPush(fc, m);
    }
    st.kind[holder] = vd.ipProto === IPPROTO_TCP ? K_TCP : K_DGRAM;
    st.flowRef[holder] = fc.ref;
    st.dir[holder] = dir;
    st.cmpHandle[holder] = dh;
    this.#enqueuePrimary(fc, dir, holder, vd, dh, nowMs);
  }

  #primaryArp(h: number, v: PacketView, nowMs: number, bytes: number): void {
    const fc = this.#arpFlow(v);
    if (fc === undefined) {
      this.#unparseable(h, 'ARP_TABLE_FULL');
      return;
    }
    const st = this.store;
    const e = st.alloc(K_DGRAM, h, fc.ref, 0, nowMs, bytes);
    st.cmpOff[e] = v.l3Off;
    st.cmpLen[e] = 8 + 2 * (v.arpHwLen + v.arpProtoLen);
    this.#heldPrimary(e);
    this.#enqueuePrimary(fc, 0, e, v, h, nowMs);
  }

  // ================= secondary path =================

  #secondary(h: number, nowMs: number): void {
    const pool = this.pool;
    const v = this.#v;
    this.stats.sReceived++;
    const status = decodeFrame(v, pool.buffer(h), pool.offset(h), pool.length(h), pool.tag[h]!);
    const layers = v.layers;
    if ((layers & LAYER_FRAG) !== 0 && (layers & (LAYER_IPV4 | LAYER_IPV6)) !== 0) {
      this.#secondaryFragment(h, v, nowMs);
      return;
    }
    if (status !== OK) {
      this.#sUnparseable(h, reasonName(status));
      return;
    }
    if ((layers & LAYER_ARP) !== 0) {
      const fc = this.#arpFlow(v);
      if (fc === undefined) {
        this.#sUnparseable(h, 'ARP_TABLE_FULL');
        return;
      }
      if (secondaryDatagram(this, fc, 0, fc.dgramDir(0), h, v.l3Off, 8 + 2 * (v.arpHwLen + v.arpProtoLen))) pool.release(h);
      this.#checkBudget(fc, 0, 'secondary', h);
      this.#drain(fc);
      return;
    }
    if ((layers & (LAYER_IPV4 | LAYER_IPV6)) === 0) {
      this.#sUnparseable(h, (v.notes & NOTE_8023_LENGTH) !== 0 ? 'ETH_8023' : 'UNKNOWN_ETHERTYPE');
      return;
    }
    const id = this.table.lookup(v, nowMs);
    if (id < 0) {
      this.#sUnparseable(h, 'NO_FLOW');
      return;
    }
    this.#secondaryIp(this.#flowFor(id, v.ipProto), this.table.dir, h, v, nowMs);
  }

  #secondaryIp(fc: FlowCompare, dir: number, h: number, v: PacketView, nowMs: number): void {
    if (v.ipProto === IPPROTO_TCP) {
      const td = fc.tcpDir(this, dir);
      const conn = td.connFor(SIDE_S, v);
      if (conn.secondary(v, h, nowMs)) {
        this.stats.sConsumed++;
        this.pool.release(h);
      }
      td.prune();
    } else {
      if (secondaryDatagram(this, fc, dir, fc.dgramDir(dir), h, v.l4Off, v.ipEnd - v.l4Off)) this.pool.release(h);
    }
    this.#checkBudget(fc, dir, 'secondary', h);
    this.#drain(fc);
  }

  #secondaryFragment(h: number, v: PacketView, nowMs: number): void {
    const dh = this.#sDefrag.push(v, nowMs, h);
    const drop = this.#sDefrag.lastDrop;
    this.pool.release(h);
    if (drop !== DEFRAG_OK) {
      this.stats.sDrop(DEFRAG_DROP_NAMES[drop] ?? 'DEFRAG_DROP');
      return;
    }
    this.stats.sConsumed++;
    if (dh === NO_HANDLE) return;
    this.#sReassembled++;
    const vd = this.#vd;
    const status = decodeFrame(vd, this.pool.buffer(dh), this.pool.offset(dh), this.pool.length(dh), 0);
    const id = status === OK ? this.table.lookup(vd, nowMs) : -1;
    if (id < 0) {
      this.#sUnparseable(dh, status !== OK ? reasonName(status) : 'NO_FLOW');
      return;
    }
    this.#secondaryIp(this.#flowFor(id, vd.ipProto), this.table.dir, dh, vd, nowMs);
  }

  // ================= release =================

  /** Release the head entries of `fc` that may go, in order. */
  #drain(fc: FlowCompare): void {
    const st = this.store;
    for (;;) {
      const e = fc.qHead;
      if (e === NIL) break;
      const d = (st.flags[e]! & EF_MEMBER) !== 0 ? st.holder[e]! : e;
      const code = this.#releasable(fc, d);
      if (code === REL_NO) break;
      st.qShift(fc);
      this.#releaseEntry(e, code);
    }
    if (fc.kind === FLOW_ARP) this.#maybeForgetArp(fc);
  }

  #releasable(fc: FlowCompare, e: number): number {
    const st = this.store;
    const k = st.kind[e];
    if (k === K_TCP) {
      const c = fc.tcp[st.dir[e]!]?.conn(st.gen[e]!);
      return c === undefined ? REL_NO : c.releasable(e);
    }
    if (k === K_DGRAM) return (st.flags[e]! & EF_MATCHED) !== 0 ? REL_MATCHED : REL_NO;
    return REL_NO;
  }

  /** Hand a held primary entry to the consumer (already unlinked from its flow queue). */
  #releaseEntry(e: number, code: number): void {
    const st = this.store;
    const h = st.handle[e]!;
    const cmp = st.cmpHandle[e]!;
    if (st.kind[e] === K_TCP && (st.flags[e]! & EF_MEMBER) === 0) {
      const ref = st.flowRef[e]!;
      const fc = ref >= 0 ? this.#refs[ref] : undefined;
      const c = fc?.tcp[st.dir[e]!]?.conn(st.gen[e]!);
      if (c !== undefined) c.held--;
    }
    this.#pHeld--;
    this.#pHeldBytes -= st.bytes[e]!;
    st.free(e);
    if (cmp !== NO_HANDLE) this.pool.release(cmp);
    const s = this.stats;
    s.pReleased++;
    const by = s.releasedBy;
    if (code === REL_MATCHED) by.matched++;
    else if (code === REL_CONTROL) by.control++;
    else if (code === REL_PRE_ORIGIN) by.preOrigin++;
    else if (code === REL_CHECKPOINT) by.checkpoint++;
    else by.close++;
    this.#release(h);
  }

  /** A held (staged) fragment that can never be compared: released at once, counted unparseable. */
  #releaseUncompared(e: number, reason: string): void {
    const st = this.store;
    const h = st.handle[e]!;
    const cmp = st.cmpHandle[e]!;
    this.#pHeld--;
    this.#pHeldBytes -= st.bytes[e]!;
    st.free(e);
    if (cmp !== NO_HANDLE) this.pool.release(cmp);
    this.stats.pUnparseable++;
    this.stats.pUnparseableBy[reason] = (this.stats.pUnparseableBy[reason] ?? 0) + 1;
    this.#release(h);
  }

  #unparseable(h: number, reason: string): void {
    const s = this.stats;
    s.pUnparseable++;
    s.pUnparseableBy[reason] = (s.pUnparseableBy[reason] ?? 0) + 1;
    this.#release(h);
  }

  #sUnparseable(h: number, reason: string): void {
    const s = this.stats;
    s.sUnparseableBy[reason] = (s.sUnparseableBy[reason] ?? 0) + 1;
    this.pool.release(h);
  }

  // ================= checkpoints =================

  #record(
    cause: DivergenceCause,
    side: DivergenceSide,
    flow: string,
    vlan: number,
    offset: number | null,
    unit: 'byte' | 'datagram' | null,
    pHex: string,
    sHex: string,
    heldMs: number,
    alignment?: AlignmentRule,
  ): void {
    const s = this.stats;
    s.divergences[cause]++;
    const requested = !this.#pending;
    if (requested) {
      this.#pending = true;
      this.#pendingSince = this.nowMs;
      s.ckptRequested++;
    } else {
      s.ckptCoalesced++;
    }
    const rec: DivergenceRecord = {
      id: this.#recordSeq++,
      atMs: this.nowMs,
      checkpoint: s.ckptCompleted + 1,
      requested,
      cause,
      side,
      flow,
      vlan,
      offset,
      offsetUnit: offset === null ? null : unit,
      primaryBytes: pHex,
      secondaryBytes: sHex,
      heldMs,
    };
    if (alignment !== undefined) rec.alignment = alignment;
    const recs = this.#records;
    recs.push(rec);
    if (recs.length > this.limits.maxRecords) {
      recs.shift();
      s.recordsDropped++;
    }
    this.#onDivergence?.(rec);
    if (requested) this.#port.request(rec);
  }

  #complete(): void {
    const s = this.stats;
    s.ckptCompleted++;
    if (!this.#pending) s.ckptUnsolicited++;
    this.#pending = false;
    this.#epoch++;
    const st = this.store;
    // Every held primary packet goes, in arrival order (per-flow order is a sub-order of it).
    for (let e = st.ageHead(AGE_PRIMARY); e !== NIL; e = st.ageHead(AGE_PRIMARY)) this.#releaseEntry(e, REL_CHECKPOINT);
    this.#resetQueues();
    const shadow = this.shadow;
    for (const fc of this.#active) {
      for (let d = 0; d < 2; d++) {
        const dd = fc.dgram[d];
        if (dd !== null) {
          // Shadow: the released datagrams' partners may still come; let them pair with "ghosts".
          dd.ghosts = shadow ? dd.pWait.count : 0;
          auxReset(dd.pWait);
          if (!shadow) dropWaitingSecondaries(this, fc, dd, 'checkpoint');
        }
        const td = fc.tcp[d];
        if (td !== null) {
          if (shadow) td.reanchorDiverged();
          else td.restart();
        }
      }
    }
    for (const fc of this.#arp.all()) this.#maybeForgetArp(fc);
    this.#setPaused(false);
  }

  /** Every flow queue, aux list of primary entries, staging and orphans: emptied (their entries were freed). */
  #resetQueues(): void {
    for (const fc of this.#active) {
      fc.qHead = NIL;
      fc.qTail = NIL;
      fc.qCount = 0;
      fc.qBytes = 0;
    }
    const o = this.#orphans;
    o.qHead = NIL;
    o.qTail = NIL;
    o.qCount = 0;
    o.qBytes = 0;
    auxReset(this.#staging.list);
  }

  #scan(nowMs: number): void {
    const st = this.store;
    const limit = this.limits.compareTimeoutMs;
    const forced = this.#forceResyncs(nowMs);
    for (let e = st.ageHead(AGE_PRIMARY); e !== NIL; e = st.ageNext[e]!) {
      if (nowMs - st.arrival[e]! < limit) break;
      const ref = st.flowRef[e]!;
      if (ref === REF_ORPHAN) continue;
      if (ref === REF_STAGING) {
        if ((st.flags[e]! & EF_REPORTED) === 0) {
          st.flags[e] |= EF_REPORTED;
          this.#record('timeout', 'primary', fragmentFlowName(this.pool, st.handle[e]!, this.#vd), 0, null, null, '', '', nowMs - st.arrival[e]!);
        }
        continue;
      }
      const fc = this.#refs[ref];
      if (fc === undefined || fc.timeoutEpoch === this.#epoch || (forced > 0 && this.#forced.includes(fc))) continue;
      fc.timeoutEpoch = this.#epoch;
      const dir = st.dir[e]!;
      const d = (st.flags[e]! & EF_MEMBER) !== 0 ? st.holder[e]! : e;
      let offset: number | null = null;
      let unit: 'byte' | 'datagram' | null = null;
      let rule: AlignmentRule | undefined;
      if (st.kind[d] === K_TCP) {
        const c = fc.tcp[dir]?.conn(st.gen[d]!);
        if (c !== undefined && c.pHasOrigin) {
          offset = c.baseOff + Math.max(c.matchedP, st.start[d]!);
          unit = 'byte';
        }
        rule = c?.rule;
      } else if (st.kind[d] === K_DGRAM) {
        offset = st.index[d]!;
        unit = 'datagram';
      }
      this.divergence(fc, dir, 'timeout', 'primary', offset, unit, null, 0, 0, null, 0, 0, rule);
    }
    // Secondary frames without a partner for that long are dropped (never a checkpoint).
    for (let e = st.ageHead(AGE_SECONDARY); e !== NIL; e = st.ageHead(AGE_SECONDARY)) {
      if (nowMs - st.arrival[e]! < limit) break;
      this.#expireSecondary(e);
    }
    if (this.#pending && nowMs - this.#pendingSince >= this.limits.checkpointRetryMs) {
      this.#pendingSince = nowMs;
      this.stats.ckptRetried++;
      this.#port.request(null);
    }
  }

  /**
   * Shadow mode: TCP directions still choosing their re-anchor whose held primary frames
   * reached compare_timeout decide now with the bytes at hand (instead of a timeout
   * divergence), and their flows are drained. Returns how many flows (in #forced; this scan only).
   */
  #forceResyncs(nowMs: number): number {
    const out = this.#forced;
    out.length = 0;
    if (!this.shadow) return 0;
    const st = this.store;
    const limit = this.limits.compareTimeoutMs;
    for (let e = st.ageHead(AGE_PRIMARY); e !== NIL; e = st.ageNext[e]!) {
      if (nowMs - st.arrival[e]! < limit) break;
      const ref = st.flowRef[e]!;
      if (ref < 0) continue;
      const fc = this.#refs[ref];
      const d = (st.flags[e]! & EF_MEMBER) !== 0 ? st.holder[e]! : e;
      if (fc === undefined || st.kind[d] !== K_TCP) continue;
      const c = fc.tcp[st.dir[e]!]?.conn(st.gen[d]!);
      if (c === undefined || !c.resyncPending) continue;
      c.forceResync();
      if (!out.includes(fc)) out.push(fc);
    }
    // Drained after the walk: draining frees entries of the age list.
    for (const fc of out) this.#drain(fc);
    return out.length;
  }

  #expireSecondary(e: number): void {
    const st = this.store;
    const fc = this.#refs[st.flowRef[e]!];
    const dir = st.dir[e]!;
    if (fc !== undefined) {
      if (st.kind[e] === K_S_DGRAM) {
        const dd = fc.dgram[dir];
        if (dd !== null && dd.sWait.head === e) auxShift(st, dd.sWait);
        else if (dd !== null) auxRemove(st, dd.sWait, e);
      } else if (st.kind[e] === K_S_PENDING) {
        const c = fc.tcp[dir]?.conn(st.gen[e]!);
        if (c !== undefined && !c.expirePending(e)) auxRemove(st, c.pending, e);
      }
    }
    this.dropSecondary(this.unholdSecondary(fc, e), 'expired');
    if (fc !== undefined && fc.kind === FLOW_ARP) this.#maybeForgetArp(fc);
  }

  /** `h`: the frame just taken (its slot class is checked too). */
  #checkBudget(fc: FlowCompare, dir: number, side: DivergenceSide, h: number): void {
    const L = this.limits;
    const s = this.stats;
    let what = 0;
    if (fc.qBytes + fc.sBytes > L.maxFlowHeldBytes) what = 1;
    else if (fc.qCount + fc.sCount + fc.sPinned > L.maxFlowHeldPackets) what = 2;
    else if (this.#pHeldBytes + s.sHeldBytes > L.maxHeldBytes) what = 3;
    else if (this.#pHeld + s.sHeld + this.#sPinned > L.maxHeldPackets) what = 4;
    // The slot counts above are pool-wide; a class of big slots (GSO frames) can run out
    // first, and then the readers wait for a slot only a checkpoint frees.
    else if (h >= 0 && (this.#pHeld > 0 || s.sHeld > 0) && this.pool.classOverHalf(h)) what = 5;
    if (what === 0) return;
    const td = fc.tcp[dir];
    const c = td?.conn(td.pOrd);
    this.#budget(fc, dir, side, what, c !== undefined && c.pHasOrigin ? c.baseOff + c.matchedP : null, c?.rule);
  }

  overBudget(fc: FlowCompare, dir: number, side: DivergenceSide, offset: number | null, alignment?: AlignmentRule): void {
    this.#budget(fc, dir, side, 1, offset, alignment);
  }

  /** Pause input; record a 'budget' divergence once per flow per checkpoint interval (`what`: which budget). */
  #budget(fc: FlowCompare, dir: number, side: DivergenceSide, what: number, offset: number | null, alignment: AlignmentRule | undefined): void {
    this.#setPaused(true);
    if (fc.budgetEpoch === this.#epoch) return;
    fc.budgetEpoch = this.#epoch;
    const s = this.stats;
    if (what === 1) s.flowBytesHits++;
    else if (what === 2) s.flowPacketsHits++;
    else if (what === 3) s.globalBytesHits++;
    else if (what === 4) s.globalPacketsHits++;
    else s.poolClassHits++;
    this.divergence(fc, dir, 'budget', side, offset, offset === null ? null : 'byte', null, 0, 0, null, 0, 0, alignment);
  }

  #setPaused(p: boolean): void {
    if (this.#paused === p) return;
    this.#paused = p;
    if (p) this.stats.backpressureOn++;
    this.#onBackpressure?.(p);
  }

  // ================= flows =================

  #flowFor(id: number, proto: number): FlowCompare {
    let fc = this.table.data[id];
    if (fc === undefined) {
      fc = new FlowCompare(id, FLOW_IP, proto);
      this.table.data[id] = fc;
      this.#refs[id] = fc;
      this.#active.add(fc);
    }
    return fc;
  }

  /** The ARP pair of `v` (created if needed); undefined when the ARP table is full. */
  #arpFlow(v: PacketView): FlowCompare | undefined {
    return this.#arp.get(v, (fc) => {
      this.#refs[fc.ref] = fc;
      this.#active.add(fc);
    });
  }

  #maybeForgetArp(fc: FlowCompare): void {
    if (fc.live && this.#arp.forgetIfIdle(fc)) this.#unlistArp(fc);
  }

  #forgetArp(fc: FlowCompare): void {
    if (!fc.live) return;
    this.#arp.forget(fc);
    this.#unlistArp(fc);
  }

  #unlistArp(fc: FlowCompare): void {
    this.#refs[fc.ref] = undefined;
    this.#active.delete(fc);
  }

  /**
   * The flow table is removing a flow. Held primary packets cannot be dropped and have no flow
   * to wait in any more: they move to the orphan queue, released at the next checkpoint,
   * which is requested ('flow-removed'). Secondary data of the flow is dropped.
   */
  #onFlowRemove(id: number, _reason: RemoveReason, fc: FlowCompare | undefined): void {
    if (fc === undefined) return;
    const st = this.store;
    if (fc.qCount > 0) {
      const s = this.stats;
      s.orphanedFlows++;
      s.orphanedFrames += fc.qCount;
      const dir = st.dir[fc.qHead]!;
      this.divergence(fc, dir, 'flow-removed', 'primary', null, null, null, 0, 0, null, 0, 0);
      for (let e = st.qShift(fc); e !== NIL; e = st.qShift(fc)) {
        st.flowRef[e] = REF_ORPHAN;
        st.qPush(this.#orphans, e);
      }
    }
    this.#dropFlowState(fc, 'flow-removed');
    fc.live = false;
    this.#refs[id] = undefined;
    this.#active.delete(fc);
  }

  /** Drop a flow's secondary data and close its TCP comparators (its primary queue was dealt with). */
  #dropFlowState(fc: FlowCompare, reason: string): void {
    for (let d = 0; d < 2; d++) {
      const dd = fc.dgram[d];
      if (dd !== null) {
        auxReset(dd.pWait);
        dropWaitingSecondaries(this, fc, dd, reason);
      }
      const td = fc.tcp[d];
      if (td !== null) td.close(reason);
    }
  }

  // ================= re-entrancy =================

  #enter(nowMs: number): void {
    if (this.#busy) throw new ColoError('ERR_COMPARE_REENTRANT', 'CompareEngine: primary/secondary/tick/close called from inside one of its own callbacks');
    this.#busy = true;
    this.nowMs = nowMs;
    if (this.#nextScan < 0) this.#nextScan = nowMs + this.limits.expiredScanCycleMs;
  }

  #leave(): void {
    this.#busy = false;
    while (this.#deferredCompletion && !this.#closed) {
      this.#deferredCompletion = false;
      this.#busy = true;
      try {
        this.#complete();
      } finally {
        this.#busy = false;
      }
    }
  }
}
