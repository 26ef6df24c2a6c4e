/**
 * TcpReassembler: both directions of one TCP connection. A per-connection object that the
 * flow table's owner creates and keeps in the flow's data slot; it knows nothing about the
 * table. It routes segments to the two TcpHalfStreams, applies RST (ends both directions)
 * and close, and guards against re-entrant calls from the sink.
 *
 * Behaviour and limits: see tcp-stream.ts. Times are `nowMs` values passed in by the caller
 * (never read from a clock), so a capture replays deterministically.
 *
 * Lifecycle contract for the owner: call `close(how)` when the flow leaves the table
 * ('timeout', 'evicted', 'eof' when the input ended, 'closed' for an explicit close). That is
 * what reports the last gaps, calls `end` for directions still open, and returns every pool
 * reference and budget byte the connection holds (out-of-order pieces and retransmission
 * windows). Both directions ending by FIN, or an RST, frees everything without it.
 */
import { ColoError } from '../errors.js';
import { LAYER_TCP } from '../packet/layer.js';
import type { PacketPool } from '../packet/pool.js';
import type { PacketView } from '../packet/view.js';
import { ReassemblyBudget } from './tcp-budget.js';
import type { TcpStreamStats } from './tcp-stats.js';
import { TcpHalfStream } from './tcp-stream.js';
import { EndReason, SegmentResult, TCP_RST, frozenLimits, type Dir, type ReassemblyLimits, type StreamSink } from './tcp-types.js';

export class TcpReassembler {
  readonly limits: Readonly<ReassemblyLimits>;
  readonly budget: ReassemblyBudget;
  /** Per-direction counters: `stats[0]` initiator → responder, `stats[1]` back. */
  readonly stats: readonly [TcpStreamStats, TcpStreamStats];
  readonly #halves: readonly [TcpHalfStream, TcpHalfStream];
  #closed = false;
  #busy = false;
  /** A close requested by the sink while a segment was being processed. */
  #pendingClose: EndReason | null = null;

  /**
   * @param pool the engine's packet pool (out-of-order bytes are held in it).
   * @param sink receives the streams; must not call `segment` re-entrantly (throws) — a
   *   `close` from inside a callback is deferred until the current segment is done.
   * @param limits per-direction limits (defaults: DEFAULT_REASSEMBLY_LIMITS); pass a
   *   `frozenLimits` result to share one resolved object between reassemblers. Cold path:
   *   throws ERR_INVALID_ARGUMENT on a bad value.
   * @param budget the global memory cap shared by all reassemblers of an engine; without one,
   *   a private unlimited budget is used (the per-direction caps still bound memory).
   */
  constructor(pool: PacketPool, sink: StreamSink, limits?: Partial<ReassemblyLimits>, budget?: ReassemblyBudget) {
    // A frozenLimits object (the tracker's, shared by its connections) is taken as is.
    const l = frozenLimits(limits);
    this.limits = l;
    this.budget = budget ?? new ReassemblyBudget(Number.POSITIVE_INFINITY);
    const h0 = new TcpHalfStream(0, pool, sink, l, this.budget);
    const h1 = new TcpHalfStream(1, pool, sink, l, this.budget);
    this.#halves = [h0, h1];
    this.stats = [h0.stats, h1.stats];
  }

  /**
   * Feed one decoded TCP segment of direction `dir`.
   *
   * @param handle the pool handle holding `v.buf`'s bytes (then out-of-order bytes are held by
   *   retaining it: zero copy), or NO_HANDLE when the bytes are not pooled (e.g. a capture
   *   chunk: out-of-order bytes are then copied into the pool). The caller keeps its own
   *   reference either way and releases it as usual.
   * @param nowMs the segment's time in milliseconds (used for the hole timeout).
   * @returns a SegmentResult code; never throws on bad input.
   */
  segment(v: PacketView, dir: Dir, handle: number, nowMs: number): SegmentResult {
    if (this.#busy) throw new ColoError('ERR_INVALID_ARGUMENT', 'TcpReassembler.segment called re-entrantly from a StreamSink callback');
    const half = this.#halves[dir];
    if (this.#closed) {
      half.stats.segments++;
      half.stats.afterEnd++;
      return SegmentResult.CLOSED;
    }
    if ((v.layers & LAYER_TCP) === 0) {
      half.stats.notTcp++;
      return SegmentResult.NOT_TCP;
    }
    this.#busy = true;
    let r: SegmentResult;
    try {
      if ((v.tcpFlags & TCP_RST) !== 0) {
        half.stats.segments++;
        half.stats.rst++;
        if (half.rstInWindow(v.tcpSeq)) {
          this.#closeNow(EndReason.RST);
          r = SegmentResult.OK;
        } else {
          half.stats.outOfWindow++;
          r = SegmentResult.OUT_OF_WINDOW;
        }
      } else {
        r = half.segment(v, handle, nowMs);
        // The other direction may be idle with a hole waiting: time it out now, not only on
        // its own next segment.
        const other = this.#halves[dir === 0 ? 1 : 0];
        if (other.timerPending) other.tick(nowMs);
      }
    } finally {
      this.#busy = false;
    }
    if (this.#pendingClose !== null) this.#runPendingClose();
    return r;
  }

  /**
   * Resolve timed-out holes in both directions at time `nowMs`: at most `maxHoles` holes in
   * all (bounded work; the rest wait for the next call), and end a direction whose FIN is
   * now complete. Segments of either direction already do this; call it for connections that
   * have gone idle, e.g. when `nowMs >= deadlineMs`. Returns the holes declared gaps.
   */
  tick(nowMs: number, maxHoles = Infinity): number {
    if (this.#closed || this.#busy) return 0;
    this.#busy = true;
    let n = 0;
    try {
      n = this.#halves[0].tick(nowMs, maxHoles);
      n += this.#halves[1].tick(nowMs, maxHoles - n);
    } finally {
      this.#busy = false;
    }
    if (this.#pendingClose !== null) this.#runPendingClose();
    return n;
  }

  /**
   * The earliest `nowMs` at which `tick` would declare a hole a gap, or Infinity when nothing
   * waits (closed, no holes, or hole timeouts disabled). Lets an owner tick only the
   * connections that need it (e.g. from a timer wheel or when expiring idle flows). O(log n).
   */
  get deadlineMs(): number {
    if (this.#closed) return Infinity;
    const a = this.#halves[0].deadlineMs;
    const b = this.#halves[1].deadlineMs;
    return a < b ? a : b;
  }

  /**
   * Flush both directions: report remaining holes as gaps (reason `how`), deliver what follows
   * them, and end each direction not yet ended ('fin' if its FIN was seen, else `how`).
   * Idempotent. Afterwards every pool reference and budget byte of this connection is freed.
   */
  close(how: EndReason = EndReason.CLOSED): void {
    if (this.#closed) return;
    if (this.#busy) {
      if (this.#pendingClose === null) this.#pendingClose = how;
      return;
    }
    this.#busy = true;
    try {
      this.#closeNow(how);
    } finally {
      this.#busy = false;
    }
  }

  /** True after RST or `close`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True when both directions have ended (FIN delivered, RST or close). */
  get ended(): boolean {
    return this.#halves[0].ended && this.#halves[1].ended;
  }

  /** The half-stream of one direction (read-only state: nextOffset, finOffset, started…). */
  half(dir: Dir): TcpHalfStream {
    return this.#halves[dir];
  }

  #closeNow(how: EndReason): void {
    this.#closed = true;
    this.#halves[0].close(how);
    this.#halves[1].close(how);
  }

  #runPendingClose(): void {
    const how = this.#pendingClose!;
    this.#pendingClose = null;
    this.close(how);
  }
}
