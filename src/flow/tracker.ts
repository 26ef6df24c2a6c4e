/**
 * ConnectionTracker: the engine stage that turns decoded frames into connections.
 *
 *   frame ─▶ Defragmenter (IP fragments) ─▶ FlowTable ─▶ Connection in the flow's data slot
 *                                                        ├─ TCP: TcpReassembler ─▶ listener
 *                                                        └─ other: datagram ─────▶ listener
 *
 * Consumers (the `flows` command, compare, rewriter, divergence analyzer) implement a
 * ConnectionListener and get, per connection: start, zero-copy stream data per direction,
 * gaps, overlap conflicts, the end of each direction (and how), datagrams for non-TCP flows,
 * and the end of the connection. Nothing is allocated per packet; a Connection (and for TCP
 * its reassembler) is allocated per connection.
 *
 * Lifecycle rules:
 * - A connection ends when its flow leaves the table (close linger after FIN/FIN/ACK or RST,
 *   idle timeout, LRU eviction, `remove`, `finish`). The table's onRemove closes the
 *   reassembler FIRST — remaining holes are reported as gaps, open directions end — and only
 *   then tells the listener `end`, before the flow's id can be reused.
 * - 4-tuple reuse: a SYN (without ACK) on a flow the table still holds starts a NEW
 *   connection when `Connection.isNewSyn` says so (old connection over in that direction,
 *   different ISN, or a SYN after mid-stream data): the old one is ended first (reason
 *   'reused') and the packet is looked up again, creating the new flow with its sender as
 *   the client. (The table itself already replaces CLOSED flows on a new SYN.)
 * - Listener callbacks must not call `packet`, `expire`, `remove` or `finish` (throws
 *   ERR_FLOW_REENTRANT): they run in the middle of those.
 *
 * Time is the caller's `nowMs` (capture time when replaying), never read from a clock.
 * Limits are those of the stages (see table.ts, defrag.ts, tcp-stream.ts, tcp-budget.ts);
 * the tracker adds none of its own.
 */
import { ColoError } from '../errors.js';
import { decodeFrame } from '../packet/decode.js';
import { LAYER_FRAG, LAYER_PAYLOAD } from '../packet/layer.js';
import { NO_HANDLE, type PacketPool } from '../packet/pool.js';
import { IPPROTO_TCP } from '../packet/proto.js';
import { PacketView } from '../packet/view.js';
import { Connection, type ConnectionEndReason, type ConnectionListener } from './connection.js';
import { Defragmenter, type DefragOptions, type DefragStats } from './defrag.js';
import { FlowTable, LOOKUP_NOT_IP, type FlowTableOptions, type FlowTableStats, type RemoveReason } from './table.js';
import { ReassemblyBudget } from './tcp-budget.js';
import { TcpReassembler } from './tcp-reassembler.js';
import { EndReason, frozenLimits, SegmentResult, TCP_ACK, TCP_SYN, type Dir, type ReassemblyLimits, type StreamSink } from './tcp-types.js';

export interface TrackerOptions {
  /** The engine's packet pool: fragments and out-of-order TCP bytes are held in it. */
  pool: PacketPool;
  /** Flow table limits and timeouts (its onRemove belongs to the tracker). */
  table?: Omit<FlowTableOptions<Connection>, 'onRemove'>;
  /** Defragmentation limits (the pool is the tracker's). */
  defrag?: Omit<DefragOptions, 'pool'>;
  /** Per-direction TCP reassembly limits. */
  reassembly?: Partial<ReassemblyLimits>;
  /**
   * Global cap on memory pinned by out-of-order TCP data, shared by every connection
   * (ReassemblyBudget). Default: half the pool's reserved bytes, so reassembly cannot take
   * every slot from the readers.
   */
  reassemblyBudgetBytes?: number;
}

/** What `packet` did with a frame. */
export const TrackResult = {
  /** A TCP segment, fed to its connection's reassembler (`lastSegment` holds the result). */
  TCP: 0,
  /** A datagram of a non-TCP flow, passed to `listener.datagram`. */
  DATAGRAM: 1,
  /** An IP fragment, held by the defragmenter or dropped (`defrag.lastDrop` says which). */
  FRAGMENT: 2,
  /** Not IPv4/IPv6 (ARP, unknown ethertype…). */
  NOT_IP: 3,
  /** IP, but a header above it did not decode: no ports, no flow. */
  UNDECODED: 4,
} as const;
export type TrackResult = (typeof TrackResult)[keyof typeof TrackResult];

export interface TrackerStats {
  /** Frames passed to `packet`. */
  packets: number;
  tcpSegments: number;
  datagrams: number;
  fragments: number;
  /** Whole datagrams the defragmenter produced (each then counted as a segment/datagram). */
  reassembledDatagrams: number;
  notIp: number;
  undecoded: number;
  /** TCP connections and non-TCP flows started. */
  tcpConnections: number;
  otherFlows: number;
  /** Connections ended because a new SYN reused their 4-tuple while the table still held them. */
  synReuse: number;
  /** Connections ended, by reason. */
  ended: Record<ConnectionEndReason, number>;
  /** Live connections now. */
  live: number;
  table: FlowTableStats;
  defrag: DefragStats;
  reassemblyBudget: { maxBytes: number; used: number; highWater: number; refusals: number };
}

const END_HOW: Record<ConnectionEndReason, EndReason> = {
  closed: EndReason.CLOSED,
  rst: EndReason.RST,
  idle: EndReason.TIMEOUT,
  evicted: EndReason.EVICTED,
  cleared: EndReason.CLOSED,
  reused: EndReason.CLOSED,
  finished: EndReason.CLOSED,
};

export class ConnectionTracker<U = unknown> {
  readonly table: FlowTable<Connection<U>>;
  readonly defrag: Defragmenter;
  readonly budget: ReassemblyBudget;
  /** SegmentResult of the last TCP segment fed (valid after `packet` returned TrackResult.TCP). */
  lastSegment: SegmentResult = SegmentResult.NO_DATA;

  readonly #pool: PacketPool;
  readonly #listener: ConnectionListener<U>;
  /** Resolved once (frozenLimits): every connection's reassembler shares it. */
  readonly #limits: Readonly<ReassemblyLimits>;
  /** Makes a connection's reassembler (one closure for all connections). */
  readonly #makeReassembler = (sink: StreamSink): TcpReassembler => new TcpReassembler(this.#pool, sink, this.#limits, this.budget);
  /** Decodes datagrams the defragmenter rebuilt (the caller's view stays untouched). */
  readonly #dv = new PacketView();
  /** Set while a removal is the tracker's own decision, to name it. */
  #override: ConnectionEndReason | null = null;
  #busy = false;

  #packets = 0;
  #tcpSegments = 0;
  #datagrams = 0;
  #fragments = 0;
  #reassembled = 0;
  #notIp = 0;
  #undecoded = 0;
  #tcpConnections = 0;
  #otherFlows = 0;
  #synReuse = 0;
  readonly #ended: Record<ConnectionEndReason, number> = { closed: 0, rst: 0, idle: 0, evicted: 0, cleared: 0, reused: 0, finished: 0 };

  /**
   * @param listener receives the connections' events (see ConnectionListener).
   * Cold path: throws ERR_INVALID_ARGUMENT for bad limits.
   */
  constructor(opts: TrackerOptions, listener: ConnectionListener<U>) {
    this.#pool = opts.pool;
    this.#listener = listener;
    this.#limits = frozenLimits(opts.reassembly);
    this.budget = new ReassemblyBudget(opts.reassemblyBudgetBytes ?? Math.floor(opts.pool.stats().reservedBytes / 2));
    this.defrag = new Defragmenter({ ...opts.defrag, pool: opts.pool });
    this.table = new FlowTable<Connection<U>>({ ...opts.table, onRemove: (id, reason, c) => this.#onRemove(id, reason, c) });
  }

  /** Live connections. */
  get size(): number {
    return this.table.size;
  }

  /**
   * Process decoded frame `v` seen at `nowMs`.
   *
   * @param handle the pool handle holding `v.buf`'s frame, or NO_HANDLE when the bytes are
   *   not pooled (e.g. a capture reader's chunk: bytes that must outlive the call are then
   *   copied into the pool). The caller keeps its reference either way and releases it.
   * @returns a TrackResult code; never throws on bad input.
   */
  packet(v: PacketView, nowMs: number, handle = NO_HANDLE): TrackResult {
    if (this.#busy) this.#reentrant();
    this.#busy = true;
    try {
      this.#packets++;
      if ((v.layers & LAYER_FRAG) !== 0) {
        this.#fragments++;
        const h = this.defrag.push(v, nowMs, handle);
        if (h === NO_HANDLE) return TrackResult.FRAGMENT;
        this.#reassembled++;
        const pool = this.#pool;
        try {
          const dv = this.#dv;
          decodeFrame(dv, pool.buffer(h), pool.offset(h), pool.length(h));
          return this.#flowPacket(dv, nowMs, h);
        } finally {
          pool.release(h);
        }
      }
      return this.#flowPacket(v, nowMs, handle);
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Retire flows and fragment contexts whose time ran out at `nowMs` (bounded work: at most
   * `maxWork` flows). Call it periodically, e.g. once per second of capture time.
   */
  expire(nowMs: number, maxWork?: number): number {
    if (this.#busy) this.#reentrant();
    this.#busy = true;
    try {
      this.defrag.expire(nowMs);
      return this.table.expire(nowMs, maxWork);
    } finally {
      this.#busy = false;
    }
  }

  /** End one connection now (the owner's decision): reason 'cleared'. */
  remove(c: Connection<U>): void {
    if (this.#busy) this.#reentrant();
    if (c.endReason !== null || this.table.data[c.flowId] !== c) return;
    this.#busy = true;
    try {
      this.table.remove(c.flowId);
    } finally {
      this.#busy = false;
    }
  }

  /**
   * The input ended: end every live connection (reason 'finished': remaining holes become
   * gaps, open directions end 'closed' or 'fin') and drop held fragments.
   */
  finish(): void {
    if (this.#busy) this.#reentrant();
    this.#busy = true;
    this.#override = 'finished';
    try {
      this.table.clear();
      this.defrag.clear();
    } finally {
      this.#override = null;
      this.#busy = false;
    }
  }

  /** The live connection of flow `id`, if any. */
  connection(id: number): Connection<U> | undefined {
    return this.table.isLive(id) ? this.table.data[id] : undefined;
  }

  stats(): TrackerStats {
    const b = this.budget;
    return {
      packets: this.#packets,
      tcpSegments: this.#tcpSegments,
      datagrams: this.#datagrams,
      fragments: this.#fragments,
      reassembledDatagrams: this.#reassembled,
      notIp: this.#notIp,
      undecoded: this.#undecoded,
      tcpConnections: this.#tcpConnections,
      otherFlows: this.#otherFlows,
      synReuse: this.#synReuse,
      ended: { ...this.#ended },
      live: this.table.size,
      table: this.table.stats(),
      defrag: this.defrag.stats(),
      reassemblyBudget: { maxBytes: b.maxBytes, used: b.used, highWater: b.highWater, refusals: b.refusals },
    };
  }

  // ---- internals ----

  #flowPacket(v: PacketView, nowMs: number, handle: number): TrackResult {
    const table = this.table;
    let id = table.lookup(v, nowMs);
    if (id < 0) {
      if (table.miss === LOOKUP_NOT_IP) {
        this.#notIp++;
        return TrackResult.NOT_IP;
      }
      // LOOKUP_FRAGMENT cannot happen (fragments went to the defragmenter above).
      this.#undecoded++;
      return TrackResult.UNDECODED;
    }
    const isTcp = v.ipProto === IPPROTO_TCP;
    const syn = isTcp && (v.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN;
    let c: Connection<U> | undefined;
    if (!table.created) {
      c = table.data[id];
      if (syn && c !== undefined && c.isNewSyn(table.dir, v.tcpSeq)) {
        this.#synReuse++;
        this.#override = 'reused';
        try {
          table.remove(id);
        } finally {
          this.#override = null;
        }
        id = table.lookup(v, nowMs);
        if (id < 0) return TrackResult.UNDECODED; // cannot happen: the same view was a flow a moment ago
        c = undefined;
      }
    }
    if (c === undefined) c = this.#start(id, v, nowMs, isTcp);
    const dir: Dir = table.dir;
    c.lastMs = nowMs;
    if (isTcp) {
      this.#tcpSegments++;
      if ((v.tcpFlags & TCP_SYN) !== 0) c.noteSyn(dir, v.tcpSeq);
      this.lastSegment = c.reassembler!.segment(v, dir, handle, nowMs);
      return TrackResult.TCP;
    }
    this.#datagrams++;
    c.datagrams[dir]++;
    if ((v.layers & LAYER_PAYLOAD) !== 0) {
      c.datagramBytes[dir] += v.payloadLen;
      this.#listener.datagram?.(c, dir, v.buf, v.payloadOff, v.payloadLen);
    } else {
      this.#listener.datagram?.(c, dir, v.buf, 0, 0);
    }
    return TrackResult.DATAGRAM;
  }

  /** A flow was just created (or a stale one replaced): attach its Connection and announce it. */
  #start(id: number, v: PacketView, nowMs: number, isTcp: boolean): Connection<U> {
    const table = this.table;
    const ep = table.endpoints(id);
    const make = isTcp ? this.#makeReassembler : null;
    const c = new Connection<U>(id, table.serial(id), v.ipProto, ep.initiator, ep.responder, nowMs, this.#listener, make);
    table.data[id] = c;
    if (isTcp) this.#tcpConnections++;
    else this.#otherFlows++;
    this.#listener.start?.(c);
    return c;
  }

  #onRemove(_id: number, reason: RemoveReason, c: Connection<U> | undefined): void {
    if (c === undefined) return;
    const why: ConnectionEndReason = this.#override ?? reason;
    c.reassembler?.close(END_HOW[why]);
    c.endReason = why;
    this.#ended[why]++;
    this.#listener.end?.(c, why);
  }

  #reentrant(): never {
    throw new ColoError('ERR_FLOW_REENTRANT', 'connection tracker: a listener must not call packet/expire/remove/finish');
  }
}
