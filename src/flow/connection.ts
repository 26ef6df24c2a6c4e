/**
 * Connection: what the ConnectionTracker keeps in a flow's data slot. One object per flow
 * (allocated when the flow starts, never per packet). For TCP it owns the flow's
 * TcpReassembler and is that reassembler's StreamSink, forwarding every callback to the
 * tracker's listener with itself attached, so consumers see which connection the bytes
 * belong to. For UDP / ICMP / other IP protocols it counts datagrams.
 *
 * Directions follow the flow table: 0 = client (initiator) → server (responder), 1 = back.
 */
import type { RemoveReason } from './table.js';
import type { TcpReassembler } from './tcp-reassembler.js';
import type { TcpStreamStats } from './tcp-stats.js';
import type { Dir, EndReason, GapReason, StreamSink } from './tcp-types.js';

/**
 * Why a connection ended: the flow table's removal reason, or one of the tracker's own:
 * `reused` (a new SYN on the same 4-tuple started a new connection), `finished` (the input
 * ended: `ConnectionTracker.finish`).
 */
export type ConnectionEndReason = RemoveReason | 'reused' | 'finished';

/** Per-connection events. Every callback is optional; none may call the tracker's mutating methods. */
export interface ConnectionListener<U = unknown> {
  /** A new connection / flow (its first packet is being processed). */
  start?(c: Connection<U>): void;
  /**
   * TCP: in-order stream bytes of direction `dir` at `streamOffset`. `buf[off, off + len)` is a
   * zero-copy view valid only during the call.
   */
  data?(c: Connection<U>, dir: Dir, buf: Uint8Array, off: number, len: number, streamOffset: number): void;
  /** TCP: `len` bytes at `streamOffset` will never arrive; delivery continues after them. */
  gap?(c: Connection<U>, dir: Dir, streamOffset: number, len: number, reason: GapReason): void;
  /** TCP: an overlap carried bytes different from those already accepted (first wins). */
  overlapConflict?(c: Connection<U>, dir: Dir, streamOffset: number, len: number): void;
  /** TCP: direction `dir` ended (exactly once per direction, after its last data/gap). */
  directionEnd?(c: Connection<U>, dir: Dir, how: EndReason): void;
  /** Non-TCP flows: one datagram's payload (zero-copy view valid only during the call). */
  datagram?(c: Connection<U>, dir: Dir, buf: Uint8Array, off: number, len: number): void;
  /** The connection left the tracker (after every other event of it; TCP directions have ended). */
  end?(c: Connection<U>, reason: ConnectionEndReason): void;
}

/** Plain-object figures of one connection (cold path). */
export interface ConnectionSummary {
  serial: number;
  proto: number;
  client: string;
  server: string;
  startMs: number;
  lastMs: number;
  endReason: ConnectionEndReason | null;
  /** Indexed by direction: [client → server, server → client]. */
  dirs: [DirectionSummary, DirectionSummary];
}

/** Per-direction figures; the TCP-only ones are 0 / false for other flows. */
export interface DirectionSummary {
  /** TCP: stream bytes delivered (gap bytes excluded); others: datagram payload bytes. */
  bytes: number;
  /** TCP segments (any flags) / datagrams seen in this direction. */
  segments: number;
  /** Segments carrying no new byte (everything already delivered or buffered). */
  retransmitted: number;
  /** Segments whose new bytes arrived ahead of a hole and were buffered. */
  outOfOrder: number;
  /** Segments overlapping bytes already accepted, partly or fully. */
  overlapping: number;
  overlapConflicts: number;
  conflictBytes: number;
  /** Retransmitted bytes compared with what was already delivered. */
  retxVerifiedBytes: number;
  /** Retransmitted bytes that could not be compared (older than the retransmission window, or in a gap). */
  retxUnverifiedBytes: number;
  gaps: number;
  gapBytes: number;
  /** How the direction ended (TCP), null while open or for non-TCP flows. */
  end: EndReason | null;
  /** True when no SYN was seen for this direction (picked up mid-stream). */
  midstream: boolean;
  /** Segments that arrived after the direction had ended (e.g. data crossing a RST). */
  afterEnd: number;
}

/** A direction that saw nothing yet. */
export function emptyDirectionSummary(): DirectionSummary {
  return {
    bytes: 0,
    segments: 0,
    retransmitted: 0,
    outOfOrder: 0,
    overlapping: 0,
    overlapConflicts: 0,
    conflictBytes: 0,
    retxVerifiedBytes: 0,
    retxUnverifiedBytes: 0,
    gaps: 0,
    gapBytes: 0,
    end: null,
    midstream: false,
    afterEnd: 0,
  };
}

const NO_SYN = -1;

export class Connection<U = unknown> implements StreamSink {
  /** Creation order over the tracker's life (the flow table's serial). */
  readonly serial: number;
  /** IP protocol number. */
  readonly proto: number;
  /** `"IP:PORT"` (IPv6 in brackets) of the initiator and of the responder. */
  readonly client: string;
  readonly server: string;
  /** Time of the first packet (caller's ms). */
  readonly startMs: number;
  /** The flow table id while live (ids are reused after the connection ends). */
  readonly flowId: number;
  /** TCP only. */
  readonly reassembler: TcpReassembler | null;
  /** How each TCP direction ended (null while open). */
  readonly ended: [EndReason | null, EndReason | null] = [null, null];
  /** Set once the connection left the tracker. */
  endReason: ConnectionEndReason | null = null;
  /** Time of the latest packet. */
  lastMs: number;
  /** Non-TCP: datagrams and payload bytes per direction. */
  readonly datagrams: [number, number] = [0, 0];
  readonly datagramBytes: [number, number] = [0, 0];
  /** For the owner's own per-connection state (the tracker never touches it). */
  user: U | undefined = undefined;

  readonly #listener: ConnectionListener<U>;
  /** Sequence number of each direction's first SYN, NO_SYN until one is seen. */
  #syn0 = NO_SYN;
  #syn1 = NO_SYN;

  /** @internal created by ConnectionTracker. */
  constructor(
    flowId: number,
    serial: number,
    proto: number,
    client: string,
    server: string,
    startMs: number,
    listener: ConnectionListener<U>,
    makeReassembler: ((sink: StreamSink) => TcpReassembler) | null,
  ) {
    this.flowId = flowId;
    this.serial = serial;
    this.proto = proto;
    this.client = client;
    this.server = server;
    this.startMs = startMs;
    this.lastMs = startMs;
    this.#listener = listener;
    this.reassembler = makeReassembler === null ? null : makeReassembler(this);
  }

  /** Per-direction TCP counters (null for non-TCP flows). Live object: read, do not keep. */
  tcpStats(dir: Dir): TcpStreamStats | null {
    return this.reassembler === null ? null : this.reassembler.stats[dir];
  }

  /** Remember the ISN of a SYN sent in `dir` (first SYN wins). */
  noteSyn(dir: Dir, seq: number): void {
    if (dir === 0) {
      if (this.#syn0 === NO_SYN) this.#syn0 = seq;
    } else if (this.#syn1 === NO_SYN) this.#syn1 = seq;
  }

  /**
   * Is a SYN (without ACK) with sequence number `seq` sent in `dir` the start of a NEW
   * connection on the same 4-tuple? When that direction already had a SYN: exactly when the
   * ISN differs (a retransmitted SYN is not new, as in Wireshark). Otherwise: when the
   * connection is over (RST, close, a FIN delivered either way) or that direction was picked
   * up mid-stream and already carried data. The responder's first SYN of a simultaneous open
   * is not new.
   */
  isNewSyn(dir: Dir, seq: number): boolean {
    const r = this.reassembler;
    if (r === null) return false;
    const isn = dir === 0 ? this.#syn0 : this.#syn1;
    if (isn !== NO_SYN) return isn !== seq;
    return r.closed || r.half(0).ended || r.half(1).ended || r.half(dir).started;
  }

  /** Figures of this connection as a plain object. Allocates. */
  summary(): ConnectionSummary {
    return {
      serial: this.serial,
      proto: this.proto,
      client: this.client,
      server: this.server,
      startMs: this.startMs,
      lastMs: this.lastMs,
      endReason: this.endReason,
      dirs: [this.directionSummary(0), this.directionSummary(1)],
    };
  }

  /** Figures of direction `dir` as a plain object. Allocates. */
  directionSummary(dir: Dir): DirectionSummary {
    const s = this.tcpStats(dir);
    if (s === null) {
      const d = emptyDirectionSummary();
      d.bytes = this.datagramBytes[dir];
      d.segments = this.datagrams[dir];
      return d;
    }
    return {
      bytes: s.deliveredBytes,
      segments: s.segments,
      retransmitted: s.retransmitted,
      outOfOrder: s.outOfOrder,
      overlapping: s.overlapping,
      overlapConflicts: s.overlapConflicts,
      conflictBytes: s.conflictBytes,
      retxVerifiedBytes: s.retxVerifiedBytes,
      retxUnverifiedBytes: s.retxUnverifiedBytes,
      gaps: s.gaps,
      gapBytes: s.gapBytes,
      end: this.ended[dir],
      midstream: s.midstream === 1,
      afterEnd: s.afterEnd,
    };
  }

  // ---- StreamSink (called by this connection's reassembler) ----

  data(dir: Dir, buf: Uint8Array, off: number, len: number, streamOffset: number): void {
    this.#listener.data?.(this, dir, buf, off, len, streamOffset);
  }

  gap(dir: Dir, streamOffset: number, len: number, reason: GapReason): void {
    this.#listener.gap?.(this, dir, streamOffset, len, reason);
  }

  overlapConflict(dir: Dir, streamOffset: number, len: number): void {
    this.#listener.overlapConflict?.(this, dir, streamOffset, len);
  }

  end(dir: Dir, how: EndReason): void {
    this.ended[dir] = how;
    this.#listener.directionEnd?.(this, dir, how);
  }
}
