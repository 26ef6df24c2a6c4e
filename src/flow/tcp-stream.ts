/**
 * TcpHalfStream: reassembly of ONE direction of a TCP connection into a byte stream.
 *
 * Offsets. Stream offset 0 is the first byte after the SYN (ISN + 1). Without a SYN the
 * stream is picked up mid-stream: the first segment carrying data or FIN fixes offset 0 at
 * its sequence number (counted in `stats.midstream`); earlier bytes that show up later look
 * like retransmissions and are dropped as such. Pure ACKs never fix offset 0 (keep-alive
 * probes carry SND.NXT − 1). Each segment's sequence number is converted to an offset
 * relative to the delivered point (`seqToOffset`), so everything after that is wrap-free.
 * SYN and FIN each take one sequence number; data on a SYN (TCP Fast Open) is at offset 0.
 *
 * Delivery. Bytes at the delivered point go straight to `sink.data` from the segment's own
 * buffer (zero copy, no allocation). Bytes ahead of it are buffered in a PieceTree (non-
 * overlapping pieces, O(log n) per operation) that references the caller's pool handle
 * (retained) or, for NO_HANDLE input, one pool slot the payload is copied into. When a hole
 * fills, the pieces behind it are delivered from the pool.
 *
 * Overlap policy: FIRST WINS. Bytes already accepted (delivered or buffered) are never
 * replaced; a later segment only fills holes. Where a later segment overlaps BUFFERED bytes,
 * the two are compared and each run of differing bytes is reported via
 * `sink.overlapConflict`. Where it overlaps already DELIVERED bytes (a retransmission), it is
 * compared with the retransmission window (tcp-retx.ts: the last `retxWindowBytes` delivered
 * bytes, kept zero-copy by retaining pooled slots or copied into packed pool slots, charged
 * to the budget's retransmission share) and differing runs are reported the same way. The
 * window starts keeping bytes once the direction has retransmitted `retxArmAfter` times
 * (default 1: directions that never retransmit cost nothing; 0: from the first byte).
 * Retransmitted bytes the window does not hold — older than the window, in a gap, before
 * offset 0, dropped under memory pressure, or arriving after the direction ended — are
 * counted as unverified (`retxUnverifiedBytes`); nothing is ever silently skipped.
 *
 * Limits (each counted; none drops bytes silently):
 * - `maxWindowBytes`: a segment starting farther than this from the delivered point, ahead
 *   or behind, is rejected (OUT_OF_WINDOW) and not buffered.
 * - `maxOooSegments`, `maxOooBytes` (per direction), the shared ReassemblyBudget and pool
 *   exhaustion when copying: when buffering a segment would pass one of them, the LOWEST
 *   hole — below the lowest buffered piece, or below the new segment if that is lower — is
 *   declared a gap with the limit's reason ('segment-cap' / 'byte-cap' / 'memcap'), and the
 *   data after it is delivered, freeing memory; repeat until the segment fits or is in
 *   order. Memory stays bounded by the caps and the stream keeps moving (what COLO needs to
 *   keep comparing), at the price of declaring a hole lost that a retransmission might still
 *   have filled.
 * - `holeTimeoutMs`: a hole whose next piece has waited that long becomes a gap
 *   ('hole-timeout'); likewise a hole before a known FIN. Checked on every segment of the
 *   connection (either direction) and by `tick(nowMs, maxHoles)`, whose work is bounded;
 *   `deadlineMs` says when a completely idle direction next needs a tick.
 * - `retxWindowBytes` and the budget's retransmission share: see tcp-retx.ts. When an
 *   out-of-order piece is refused by the budget and this direction holds a retransmission
 *   window, the window is dropped first (counted in `retxShrinks`) and the piece retried:
 *   buffering, which prevents gaps, beats verification.
 *
 * FIN: `end(dir, 'fin')` once every byte before the FIN was delivered. If holes remain they
 * are resolved by the hole timeout or by `close` (gaps, then end 'fin'). Bytes beyond the FIN
 * are discarded and counted. The first FIN's offset wins.
 *
 * Snaplen-truncated segments (payloadFullLen > payloadLen): the missing tail becomes a
 * 'truncated' gap as soon as delivery reaches it; if the segment had to be buffered, its tail
 * is an ordinary hole, resolved later by a limit, the hole timeout or `close`.
 *
 * Work per segment is O((k + 1) log n + len), where k ≤ len is the number of buffered
 * pieces it overlaps and n ≤ maxOooSegments: endless overlaps and tiny segments cannot make
 * it quadratic.
 */
import { ColoError } from '../errors.js';
import { diffEnd, firstDiff } from '../packet/bytes.js';
import { LAYER_PAYLOAD } from '../packet/layer.js';
import { NO_HANDLE, type PacketPool } from '../packet/pool.js';
import type { PacketView } from '../packet/view.js';
import { PIECE_OVERHEAD_BYTES, type ReassemblyBudget } from './tcp-budget.js';
import { RetxWindow } from './tcp-retx.js';
import { NIL, PieceTree } from './tcp-segtree.js';
import { seqAdd, seqDiff } from './tcp-seq.js';
import { TcpStreamStats } from './tcp-stats.js';
import {
  EndReason,
  GapReason,
  SegmentResult,
  TCP_FIN,
  TCP_SYN,
  type Dir,
  type ReassemblyLimits,
  type StreamSink,
} from './tcp-types.js';

export class TcpHalfStream {
  readonly dir: Dir;
  readonly stats = new TcpStreamStats();
  readonly #pool: PacketPool;
  readonly #sink: StreamSink;
  readonly #limits: ReassemblyLimits;
  readonly #budget: ReassemblyBudget;
  /** Created on the first out-of-order segment. */
  #tree: PieceTree | null = null;
  #started = false;
  #ended = false;
  #synSeen = false;
  /** Delivered point: every byte below it was delivered or reported as a gap. */
  #nextOff = 0;
  /** Sequence number of the byte at #nextOff. */
  #nextSeq = 0;
  /** Offset of the FIN (= stream length), -1 while unknown. */
  #finOff = -1;
  #finTime = 0;
  /**
   * Upper bound of every buffered piece's end (pieces only leave from the bottom, so it stays
   * a bound; meaningless while the tree is empty). A segment starting at or past it overlaps
   * nothing buffered: planning and committing it need no tree walk.
   */
  #maxEnd = 0;
  /** Set when the segment being processed overlapped buffered bytes. */
  #overlapSeen = false;
  /** `stats.segments` when a segment was last counted in `retxSegments` (once per segment, no per-segment reset). */
  #retxMark = -1;
  /** `limits.retxWindowBytes` (0: no window). */
  readonly #retxLimit: number;
  /** The window keeps delivered bytes (armed per `limits.retxArmAfter`). */
  #retxArmed: boolean;
  /** The retransmission window, created on the first delivery once armed. */
  #retx: RetxWindow | null = null;

  // Results of #plan (no allocation for multi-value returns).
  #planPieces = 0;
  #planBytes = 0;
  #planFirst = 0;
  #planLast = 0;

  constructor(dir: Dir, pool: PacketPool, sink: StreamSink, limits: ReassemblyLimits, budget: ReassemblyBudget) {
    this.dir = dir;
    this.#pool = pool;
    this.#sink = sink;
    this.#limits = limits;
    this.#budget = budget;
    this.#retxLimit = limits.retxWindowBytes;
    this.#retxArmed = limits.retxWindowBytes > 0 && limits.retxArmAfter === 0;
  }

  /** True once offset 0 is fixed (by a SYN or a mid-stream pick-up). */
  get started(): boolean {
    return this.#started;
  }

  /** True after `sink.end` was called for this direction. */
  get ended(): boolean {
    return this.#ended;
  }

  /** True when offset 0 came from a SYN. */
  get synSeen(): boolean {
    return this.#synSeen;
  }

  /** The delivered point (stream offset of the next byte `data` will carry). */
  get nextOffset(): number {
    return this.#nextOff;
  }

  /** Stream offset of the FIN (the stream's length), or -1 while unknown. */
  get finOffset(): number {
    return this.#finOff;
  }

  /**
   * The earliest `nowMs` at which `tick` would declare a hole a gap ('hole-timeout'), or
   * Infinity when nothing is waiting (ended, no hole, or hole timeouts disabled). O(log n).
   */
  get deadlineMs(): number {
    const limit = this.#limits.holeTimeoutMs;
    if (this.#ended || limit <= 0) return Infinity;
    const tree = this.#tree;
    const fin = this.#finOff;
    if (tree !== null && tree.count > 0) {
      const m = tree.min();
      if (fin < 0 || tree.start[m]! < fin) return tree.time[m]! + limit;
    }
    if (fin >= 0 && this.#nextOff < fin) return this.#finTime + limit;
    return Infinity;
  }

  /** Cheap test: could `tick` have anything to do (a hole or a pending FIN, timeouts on)? */
  get timerPending(): boolean {
    if (this.#ended || this.#limits.holeTimeoutMs <= 0) return false;
    const tree = this.#tree;
    return (tree !== null && tree.count > 0) || this.#finOff >= 0;
  }

  /** Height of the out-of-order tree (tests and diagnostics only: O(n)). */
  treeHeight(): number {
    return this.#tree === null ? 0 : this.#tree.height();
  }

  /**
   * Would an RST with this sequence number be in window? (Blind RSTs far outside the window
   * must not end the stream.) Always true before the stream started.
   */
  rstInWindow(seq: number): boolean {
    if (!this.#started) return true;
    const d = seqDiff(seq, this.#nextSeq);
    return d <= this.#limits.maxWindowBytes && d >= -this.#limits.maxWindowBytes;
  }

  /** Feed one segment of this direction (RST is handled by the reassembler). See TcpReassembler.segment. */
  segment(v: PacketView, handle: number, nowMs: number): SegmentResult {
    const st = this.stats;
    st.segments++;
    const flags = v.tcpFlags;
    const hasPayload = (v.layers & LAYER_PAYLOAD) !== 0;
    const len = hasPayload ? v.payloadLen : 0;
    const fullLen = hasPayload ? v.payloadFullLen : 0;
    st.bytes += len;
    if (this.#ended) {
      st.afterEnd++;
      if (len > 0 && this.#started) this.#lateRetx(v.tcpSeq, flags, len);
      return SegmentResult.AFTER_END;
    }
    let seq = v.tcpSeq;
    if ((flags & TCP_SYN) !== 0) {
      if (!this.#started) {
        this.#start(seqAdd(seq, 1));
        this.#synSeen = true;
      }
      seq = seqAdd(seq, 1);
    } else if (!this.#started) {
      if (fullLen === 0 && (flags & TCP_FIN) === 0) return SegmentResult.NO_DATA;
      this.#start(seq);
      st.midstream = 1;
    }
    const diff = seqDiff(seq, this.#nextSeq);
    const win = this.#limits.maxWindowBytes;
    if (diff > win || diff < -win) {
      st.outOfWindow++;
      return SegmentResult.OUT_OF_WINDOW;
    }
    const start = this.#nextOff + diff;
    let end = start + len;
    let result: SegmentResult = fullLen > 0 ? SegmentResult.DUPLICATE : SegmentResult.NO_DATA;

    if ((flags & TCP_FIN) !== 0) {
      // The FIN takes the sequence number after the FULL payload, captured or not.
      const fo = start + fullLen;
      if (this.#finOff < 0) {
        if (fo < this.#nextOff) {
          st.badFin++;
        } else {
          this.#finOff = fo;
          this.#finTime = nowMs;
          result = SegmentResult.OK;
        }
      } else if (fo !== this.#finOff) {
        st.finMismatch++;
      }
    }
    const fin = this.#finOff;
    if (fin >= 0 && end > fin) {
      const cut = start > fin ? start : fin;
      st.beyondFinBytes += end - cut;
      end = cut;
    }

    if (end > start) {
      const r = this.#accept(start, end, v.buf, v.payloadOff, handle, nowMs);
      if (r === SegmentResult.OK || result !== SegmentResult.OK) result = r;
    }

    if (fullLen > len) {
      st.truncatedSegments++;
      st.truncatedBytes += fullLen - len;
      // The snaplen cut bytes that no capture record will ever hold: once delivery reaches
      // the cut, declare the missing tail a gap (up to buffered data, which wins).
      if (this.#nextOff === start + len) this.#gapTruncated(start + fullLen);
    }

    const tree = this.#tree;
    if (tree !== null && tree.count > 0 && this.#limits.holeTimeoutMs > 0) this.#expireHoles(nowMs, Infinity);
    this.#checkFinDone(nowMs, true);
    return result;
  }

  /**
   * Resolve holes older than `holeTimeoutMs` at time `nowMs` — at most `maxHoles` of them (the
   * rest wait for the next call) — and end a FIN whose bytes are all accounted for.
   * Returns how many holes became 'hole-timeout' gaps.
   */
  tick(nowMs: number, maxHoles = Infinity): number {
    if (this.#ended) return 0;
    let n = 0;
    const tree = this.#tree;
    if (tree !== null && tree.count > 0 && this.#limits.holeTimeoutMs > 0) n = this.#expireHoles(nowMs, maxHoles);
    if (this.#checkFinDone(nowMs, n < maxHoles)) n++;
    return n;
  }

  /**
   * End this direction: report remaining holes as gaps (reason `how`), deliver what follows
   * them, then `end(dir, 'fin')` if a FIN was seen, else `end(dir, how)`. No-op once ended.
   */
  close(how: EndReason): void {
    if (this.#ended) return;
    const tree = this.#tree;
    const fin = this.#finOff;
    if (tree !== null) {
      while (tree.count > 0) {
        if (fin >= 0 && tree.start[tree.min()]! >= fin) break;
        this.#skipToLowest(how);
      }
    }
    if (fin >= 0 && this.#nextOff < fin) this.#gapTo(fin, how);
    this.#finish(fin >= 0 ? EndReason.FIN : how);
  }

  #start(seq: number): void {
    this.#started = true;
    this.#nextSeq = seq;
    this.#nextOff = 0;
  }

  /**
   * Accept the new bytes of [start, end) (payload at `buf[off]`): deliver or buffer them,
   * applying the limit policy. Returns OK when any byte was new, DUPLICATE otherwise.
   */
  #accept(start: number, end: number, buf: Uint8Array, off: number, handle: number, nowMs: number): SegmentResult {
    const st = this.stats;
    const lim = this.#limits;
    this.#overlapSeen = false;
    let result: SegmentResult;
    for (;;) {
      const next = this.#nextOff;
      if (end <= next) {
        this.#verifyDelivered(buf, off, start, end);
        st.retransmitted++;
        this.#overlapSeen = true;
        result = SegmentResult.DUPLICATE;
        break;
      }
      if (start < next) {
        this.#verifyDelivered(buf, off, start, next);
        this.#overlapSeen = true;
        off += next - start;
        start = next;
      }
      if (start === next) {
        st.inOrder++;
        this.#deliverFrom(buf, off, start, end, handle);
        result = SegmentResult.OK;
        break;
      }
      // Out of order: which bytes are not buffered yet?
      this.#plan(start, end);
      const pieces = this.#planPieces;
      if (pieces === 0) {
        // Fully inside buffered data: compare (first wins), keep nothing.
        this.#commit(start, end, buf, off, NO_HANDLE, 0, 0, nowMs);
        st.retransmitted++;
        this.#overlapSeen = true;
        result = SegmentResult.DUPLICATE;
        break;
      }
      if (handle !== NO_HANDLE) this.#checkPooled(buf, off, end - start, handle);
      const bytes = this.#planBytes;
      let reason: GapReason | null = null;
      if (st.bufferedSegments + pieces > lim.maxOooSegments) {
        reason = GapReason.SEGMENT_CAP;
        st.segmentCapHits++;
      } else if (st.bufferedBytes + bytes > lim.maxOooBytes) {
        reason = GapReason.BYTE_CAP;
        st.byteCapHits++;
      } else if (handle !== NO_HANDLE) {
        if (this.#budget.tryReserve(pieces * this.#pieceCharge(handle))) {
          this.#commit(start, end, buf, off, handle, start, off, nowMs);
        } else if (this.#dropRetxWindow()) {
          continue;
        } else {
          reason = GapReason.MEMCAP;
          st.memcapHits++;
        }
      } else {
        // Unpooled bytes (e.g. a capture chunk): copy the span holding the new pieces once.
        const first = this.#planFirst;
        const n = this.#planLast - first;
        const pool = this.#pool;
        const h = n <= pool.maxSlotSize ? pool.copyIn(buf, off + (first - start), n) : NO_HANDLE;
        if (h !== NO_HANDLE && this.#budget.tryReserve(pieces * this.#pieceCharge(h))) {
          st.copiedBytes += n;
          this.#commit(start, end, buf, off, h, first, pool.offset(h), nowMs);
          pool.release(h); // the pieces hold their own references
        } else {
          if (h !== NO_HANDLE) pool.release(h);
          if (this.#dropRetxWindow()) continue;
          reason = GapReason.MEMCAP;
          st.memcapHits++;
        }
      }
      if (reason === null) {
        st.outOfOrder++;
        result = SegmentResult.OK;
        break;
      }
      // Limit hit: declare the lowest hole lost and deliver past it, then retry.
      const tree = this.#tree;
      if (tree !== null && tree.count > 0 && tree.start[tree.min()]! < start) this.#skipToLowest(reason);
      else this.#gapTo(start, reason);
    }
    if (this.#overlapSeen) st.overlapping++;
    return result;
  }

  /**
   * Deliver [start, end) from `buf[off]`, where start is the delivered point, merging buffered
   * pieces (first wins: where a piece exists its bytes are delivered, ours only compared).
   */
  #deliverFrom(buf: Uint8Array, off: number, start: number, end: number, h: number): void {
    const tree = this.#tree;
    if (tree === null || tree.count === 0) {
      this.#emit(buf, off, end - start, h);
      return;
    }
    let cur = start;
    while (cur < end) {
      const m = tree.count > 0 ? tree.min() : NIL;
      const ms = m === NIL ? Infinity : tree.start[m]!;
      if (ms >= end) {
        this.#emit(buf, off + (cur - start), end - cur, h);
        break;
      }
      if (ms > cur) {
        this.#emit(buf, off + (cur - start), ms - cur, h);
        cur = ms;
      }
      const me = ms + tree.len[m]!;
      this.#overlapSeen = true;
      this.#compare(buf, off + (ms - start), this.#pool.buffer(tree.handle[m]!), tree.bufOff[m]!, (me < end ? me : end) - ms, ms);
      this.#emitMin();
      cur = me;
    }
    this.#drain();
  }

  /** Count the pieces/bytes [start, end) would add to the tree (no side effects). */
  #plan(start: number, end: number): void {
    const tree = this.#tree;
    if (tree === null || tree.count === 0 || start >= this.#maxEnd) {
      // Nothing buffered at or after `start` (the common "next segment after the hole" case).
      this.#planPieces = 1;
      this.#planBytes = end - start;
      this.#planFirst = start;
      this.#planLast = end;
      return;
    }
    let pieces = 0;
    let bytes = 0;
    let first = 0;
    let last = 0;
    let cur = start;
    const p = tree.floor(start);
    if (p !== NIL) {
      const pe = tree.start[p]! + tree.len[p]!;
      if (pe > cur) cur = pe;
    }
    while (cur < end) {
      const q = tree.ceil(cur);
      const qs = q === NIL ? Infinity : tree.start[q]!;
      const holeEnd = qs < end ? qs : end;
      if (holeEnd > cur) {
        if (pieces === 0) first = cur;
        pieces++;
        bytes += holeEnd - cur;
        last = holeEnd;
      }
      if (q === NIL || qs >= end) break;
      cur = qs + tree.len[q]!;
    }
    this.#planPieces = pieces;
    this.#planBytes = bytes;
    this.#planFirst = first;
    this.#planLast = last;
  }

  /**
   * Walk [start, end) as #plan did: compare overlaps with buffered pieces, insert the holes as
   * pieces referencing `h` (byte at stream offset x is at `mapOff + (x - mapStart)` in
   * `pool.buffer(h)`). The budget was already reserved by the caller.
   */
  #commit(start: number, end: number, buf: Uint8Array, off: number, h: number, mapStart: number, mapOff: number, nowMs: number): void {
    const tree = this.#tree ?? (this.#tree = new PieceTree(this.#limits.maxOooSegments));
    if (tree.count === 0 || start >= this.#maxEnd) {
      this.#addPiece(start, end - start, h, mapOff + (start - mapStart), nowMs);
      return;
    }
    const pool = this.#pool;
    let cur = start;
    const p = tree.count > 0 ? tree.floor(start) : NIL;
    if (p !== NIL) {
      const ps = tree.start[p]!;
      const pe = ps + tree.len[p]!;
      if (pe > cur) {
        this.#overlapSeen = true;
        const ovEnd = pe < end ? pe : end;
        this.#compare(buf, off, pool.buffer(tree.handle[p]!), tree.bufOff[p]! + (start - ps), ovEnd - start, start);
        cur = pe;
      }
    }
    while (cur < end) {
      const q = tree.count > 0 ? tree.ceil(cur) : NIL;
      const qs = q === NIL ? Infinity : tree.start[q]!;
      const holeEnd = qs < end ? qs : end;
      if (holeEnd > cur) this.#addPiece(cur, holeEnd - cur, h, mapOff + (cur - mapStart), nowMs);
      if (q === NIL || qs >= end) break;
      const qe = qs + tree.len[q]!;
      this.#overlapSeen = true;
      this.#compare(buf, off + (qs - start), pool.buffer(tree.handle[q]!), tree.bufOff[q]!, (qe < end ? qe : end) - qs, qs);
      cur = qe;
    }
  }

  #addPiece(at: number, len: number, h: number, bufOff: number, nowMs: number): void {
    this.#tree!.insert(at, len, h, bufOff, nowMs);
    if (at + len > this.#maxEnd) this.#maxEnd = at + len;
    this.#pool.retain(h);
    const st = this.stats;
    st.bufferedBytes += len;
    st.bufferedSegments++;
    if (st.bufferedBytes > st.highWaterBytes) st.highWaterBytes = st.bufferedBytes;
    if (st.bufferedSegments > st.highWaterSegments) st.highWaterSegments = st.bufferedSegments;
  }

  /** Remove the lowest piece, deliver its bytes past the delivered point (up to the FIN), free it. */
  #emitMin(): void {
    const tree = this.#tree!;
    const m = tree.min();
    const s = tree.start[m]!;
    const l = tree.len[m]!;
    const h = tree.handle[m]!;
    const bo = tree.bufOff[m]!;
    tree.removeMin();
    this.#unaccount(l, h);
    const skip = this.#nextOff - s;
    const from = skip > 0 ? skip : 0;
    let to = l;
    const fin = this.#finOff;
    if (fin >= 0 && s + to > fin) {
      to = fin - s;
      this.stats.beyondFinBytes += l - (to > from ? to : from);
    }
    if (to > from) this.#emit(this.#pool.buffer(h), bo + from, to - from, h);
    this.#pool.release(h);
  }

  /** Deliver buffered pieces contiguous with the delivered point. */
  #drain(): void {
    const tree = this.#tree;
    if (tree === null) return;
    while (tree.count > 0) {
      if (tree.start[tree.min()]! > this.#nextOff) return;
      if (this.#finOff >= 0 && this.#nextOff >= this.#finOff) return;
      this.#emitMin();
    }
  }

  /** Declare the hole before the lowest buffered piece a gap and deliver from there. */
  #skipToLowest(reason: GapReason): void {
    const tree = this.#tree!;
    this.#gapTo(tree.start[tree.min()]!, reason);
    this.#drain();
  }

  #gapTruncated(cutEnd: number): void {
    let e = cutEnd;
    const fin = this.#finOff;
    if (fin >= 0 && e > fin) e = fin;
    const tree = this.#tree;
    if (tree !== null && tree.count > 0) {
      const ms = tree.start[tree.min()]!;
      if (ms < e) e = ms;
    }
    if (e > this.#nextOff) {
      this.#gapTo(e, GapReason.TRUNCATED);
      this.#drain();
    }
  }

  /** Declare at most `max` timed-out holes gaps; returns how many. */
  #expireHoles(nowMs: number, max: number): number {
    const tree = this.#tree!;
    const limit = this.#limits.holeTimeoutMs;
    let n = 0;
    while (tree.count > 0 && n < max) {
      const m = tree.min();
      if (nowMs - tree.time[m]! < limit) break;
      if (this.#finOff >= 0 && tree.start[m]! >= this.#finOff) break;
      this.stats.holeTimeouts++;
      this.#skipToLowest(GapReason.HOLE_TIMEOUT);
      n++;
    }
    return n;
  }

  /**
   * End with 'fin' once the delivered point reaches the FIN (after a hole timeout, if
   * `mayTimeOut`, when one is pending before it). True when a hole-timeout gap was declared.
   */
  #checkFinDone(nowMs: number, mayTimeOut: boolean): boolean {
    const fin = this.#finOff;
    if (fin < 0 || this.#ended) return false;
    let timedOut = false;
    if (this.#nextOff < fin) {
      const tree = this.#tree;
      const limit = this.#limits.holeTimeoutMs;
      // Only the hole right before the FIN is left (no piece below it): time it from the FIN.
      const noPieceBelow = tree === null || tree.count === 0 || tree.start[tree.min()]! >= fin;
      if (!(mayTimeOut && limit > 0 && noPieceBelow && nowMs - this.#finTime >= limit)) return false;
      this.stats.holeTimeouts++;
      this.#gapTo(fin, GapReason.HOLE_TIMEOUT);
      timedOut = true;
    }
    this.#finish(EndReason.FIN);
    return timedOut;
  }

  /** Deliver `len` bytes at the delivered point; `h` is the pool handle holding them, or NO_HANDLE. */
  #emit(buf: Uint8Array, off: number, len: number, h: number): void {
    const at = this.#nextOff;
    this.#nextOff = at + len;
    this.#nextSeq = seqAdd(this.#nextSeq, len);
    this.stats.deliveredBytes += len;
    if (this.#retxArmed) this.#remember(buf, off, len, at, h);
    this.#sink.data(this.dir, buf, off, len, at);
  }

  /** Keep delivered bytes in the retransmission window (created on first use). */
  #remember(buf: Uint8Array, off: number, len: number, at: number, h: number): void {
    const w = this.#retx ?? (this.#retx = new RetxWindow(this.dir, this.#pool, this.#budget, this.#sink, this.stats, this.#retxLimit));
    w.remember(buf, off, len, at, h);
  }

  /**
   * Bytes [s, e) of the current segment (at `buf[off]`) lie below the delivered point: count
   * them as retransmitted and compare what the window still holds.
   */
  #verifyDelivered(buf: Uint8Array, off: number, s: number, e: number): void {
    const st = this.stats;
    if (this.#retxMark !== st.segments) {
      this.#retxMark = st.segments;
      st.retxSegments++;
    }
    st.retxBytes += e - s;
    const w = this.#retx;
    const ok = w === null ? 0 : w.verify(buf, off, s, e, this.#nextOff - this.#retxLimit);
    st.retxUnverifiedBytes += e - s - ok;
    if (!this.#retxArmed && this.#retxLimit > 0 && st.retxSegments >= this.#limits.retxArmAfter) this.#retxArmed = true;
  }

  /** A payload after the direction ended: its bytes below the end are retransmitted, unverified. */
  #lateRetx(seq: number, flags: number, len: number): void {
    if ((flags & TCP_SYN) !== 0) seq = seqAdd(seq, 1);
    const d = seqDiff(seq, this.#nextSeq);
    const win = this.#limits.maxWindowBytes;
    if (d > win || d < -win) return;
    const s = this.#nextOff + d;
    const e = s + len < this.#nextOff ? s + len : this.#nextOff;
    if (e <= s) return;
    const st = this.stats;
    st.retxSegments++;
    st.retxBytes += e - s;
    st.retxUnverifiedBytes += e - s;
  }

  /** Out-of-order data needs the budget: give up this direction's window first. False if it holds nothing. */
  #dropRetxWindow(): boolean {
    const w = this.#retx;
    if (w === null || !w.holds) return false;
    w.clear();
    this.stats.retxShrinks++;
    return true;
  }

  #gapTo(target: number, reason: GapReason): void {
    const at = this.#nextOff;
    const len = target - at;
    if (len <= 0) return;
    this.#nextOff = target;
    this.#nextSeq = seqAdd(this.#nextSeq, len);
    if (this.#retx !== null) this.#retx.trim(target - this.#retxLimit);
    const st = this.stats;
    st.gaps++;
    st.gapBytes += len;
    this.#sink.gap(this.dir, at, len, reason);
  }

  /** Report each run of differing bytes between our copy and the accepted one. */
  #compare(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number, at: number): void {
    for (let s = firstDiff(a, ao, b, bo, 0, n); s < n; ) {
      const e = diffEnd(a, ao, b, bo, s, n);
      const st = this.stats;
      st.overlapConflicts++;
      st.conflictBytes += e - s;
      this.#sink.overlapConflict?.(this.dir, at + s, e - s);
      s = firstDiff(a, ao, b, bo, e, n);
    }
  }

  /** Budget charge of one piece held in `h`: the slot it pins plus bookkeeping (see tcp-budget.ts). */
  #pieceCharge(h: number): number {
    return this.#pool.slotSize(h) + PIECE_OVERHEAD_BYTES;
  }

  /** Forget a removed piece (its handle reference is released by the caller, after any delivery). */
  #unaccount(len: number, h: number): void {
    const st = this.stats;
    st.bufferedBytes -= len;
    st.bufferedSegments--;
    this.#budget.release(this.#pieceCharge(h));
  }

  /** Zero-copy input must really live in the handle's slot (API misuse otherwise: throws). */
  #checkPooled(buf: Uint8Array, off: number, len: number, h: number): void {
    const pool = this.#pool;
    const so = pool.offset(h);
    if (pool.buffer(h) !== buf || off < so || off + len > so + pool.slotSize(h)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `segment bytes at offset ${off} (+${len}) are not inside pool handle ${h}'s slot; pass NO_HANDLE for unpooled input`);
    }
  }

  #finish(how: EndReason): void {
    // Segments after the end are not compared (counted unverified): free the window now.
    if (this.#retx !== null) this.#retx.clear();
    const tree = this.#tree;
    if (tree !== null) {
      // Whatever is still buffered lies beyond the FIN (or the stream is being torn down
      // after close() delivered everything): release it.
      while (tree.count > 0) {
        const m = tree.min();
        const l = tree.len[m]!;
        const h = tree.handle[m]!;
        tree.removeMin();
        this.#unaccount(l, h);
        this.stats.beyondFinBytes += l;
        this.#pool.release(h);
      }
    }
    this.#ended = true;
    this.#sink.end(this.dir, how);
  }
}
