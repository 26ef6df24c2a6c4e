/**
 * TcpConn: comparison of ONE direction of ONE TCP connection (one incarnation of a 4-tuple):
 * the primary's and the secondary's byte streams, each reassembled by its own TcpReassembler,
 * compared at equal stream offsets.
 *
 * Stream origins (offset 0 = the first byte after the SYN):
 * - Primary: its SYN / SYN-ACK (ISN + 1); without one (flow picked up mid-stream) the first
 *   data/FIN segment seen. Pure ACKs never fix an origin.
 * - Secondary, decided at its first data/FIN segment (counted in stats.alignment):
 *   'primary-space': the data is in the primary's sequence space with the primary's origin.
 *     QEMU's filter-rewriter maps the secondary's data of a passively opened connection into
 *     the primary's space but leaves its SYN-ACK with its own ISN.
 *   'own-space': the data is in the secondary's own space, origin = its own SYN / SYN-ACK
 *     (guest-initiated connections, which the rewriter does not touch; captures taken on the
 *     secondary's own tap).
 *   The rule whose origin puts that first byte nearest at or after offset 0 wins (random
 *   ISNs are far apart, so this is unambiguous in practice); neither plausible →
 *   'unresolved' (primary space; a mismatch then resynchronises via a checkpoint).
 *   No secondary SYN seen → 'midstream' (primary space).
 *   Until the primary's origin is known the secondary's segments wait (held, counted).
 * - After a real checkpoint: 'restarted' — both sides start at the primary's next sequence
 *   number (the secondary's TCP state now IS the primary's); anything before is pre-origin.
 *
 * Comparison: the in-order bytes of whichever side is ahead wait in a ChunkQueue (zero copy:
 * the slots they were delivered from are retained); the other
 * side's bytes at the same offsets are compared against them and consumed. `matched` counts
 * the bytes verified since the anchor (normally offset 0 of both). A difference, a gap or a
 * FIN/length disagreement freezes the connection
 * (`diverged`): nothing more is matched until a checkpoint (real: the connection restarts;
 * shadow: it is re-anchored where the bytes that follow the divergence line up again, see
 * resync.ts; a gap or a budget freeze re-anchors at both sides' current ends).
 */
import { TcpReassembler } from '../flow/tcp-reassembler.js';
import { TCP_FIN, TCP_RST, TCP_SYN, type Dir, type EndReason, type GapReason, type StreamSink } from '../flow/tcp-types.js';
import { decodeFrame } from '../packet/decode.js';
import { LAYER_PAYLOAD } from '../packet/layer.js';
import { NO_HANDLE } from '../packet/pool.js';
import type { PacketView } from '../packet/view.js';
import { ChunkQueue } from './chunk-queue.js';
import { Resync, RS_BROKEN, RS_END, RS_FORCED, RS_PROOF, RS_TAIL, RS_WAIT } from './resync.js';
import type { CompareContext } from './context.js';
import type { AlignmentRule, DivergenceCause, DivergenceSide } from './divergence.js';
import { auxPush, auxShift, EF_FIN, EF_NO_ORIGIN, EF_PURE, EF_RST, EF_SYN, K_S_PENDING, newAuxFifo, NIL, type AuxFifo } from './entries.js';
import type { FlowCompare } from './flow-compare.js';

export const SIDE_P = 0;
export const SIDE_S = 1;
const AHEAD_NONE = -1;

/** Secondary alignment modes. */
export const S_UNKNOWN = 0;
export const S_PRIMARY_SPACE = 1;
export const S_OWN_SPACE = 2;
export const S_MIDSTREAM = 3;
export const S_UNRESOLVED = 4;
export const S_RESTARTED = 5;

/** Scratch result of ChunkQueue.locate (records only). */
const LOCATE: { buf: Uint8Array | null; off: number; avail: number } = { buf: null, off: 0, avail: 0 };

const RULE_NAMES: readonly (AlignmentRule | undefined)[] = [undefined, 'primary-space', 'own-space', 'midstream', 'unresolved', 'restarted'];

/** Kept bytes are compared again after a shadow re-anchor in slices of this size, alternating sides. */
const REPLAY_SLICE = 1024;

/** Farthest a first data byte may sit from a candidate origin to be plausible (1 GiB, the largest scaled window). */
const ALIGN_WINDOW = 1 << 30;

/** `releasable` results. */
export const REL_NO = 0;
export const REL_MATCHED = 1;
export const REL_CONTROL = 2;
export const REL_PRE_ORIGIN = 3;

/** Routes one reassembler's callbacks to its connection, tagged with the side. */
class SideSink implements StreamSink {
  constructor(
    readonly conn: TcpConn,
    readonly side: number,
  ) {}

  data(_dir: Dir, buf: Uint8Array, off: number, len: number, at: number): void {
    this.conn.onData(this.side, buf, off, len, at);
  }

  gap(_dir: Dir, at: number, len: number, _reason: GapReason): void {
    this.conn.onGap(this.side, at, len);
  }

  overlapConflict(): void {
    this.conn.onConflict(this.side);
  }

  end(_dir: Dir, how: EndReason): void {
    this.conn.onEnd(this.side, how);
  }
}

export class TcpConn {
  readonly ctx: CompareContext;
  readonly fc: FlowCompare;
  readonly dir: Dir;
  /** Incarnation ordinal within its direction. */
  readonly ord: number;

  // ---- primary ----
  /** ISN of the primary's SYN / SYN-ACK, -1 while none seen. */
  pIsn = -1;
  pHasOrigin = false;
  pOrigin = 0;
  /** Reference point for wrap-safe seq → offset conversion (moves forward with the stream). */
  #pRefSeq = 0;
  #pRefOff = 0;
  /** A primary data / FIN segment was seen. */
  pData = false;
  /** Sequence number after the last primary segment with a stream position. */
  lastEndSeq = 0;
  /**
   * Entries whose sequence span ends at or before this offset lie before the origin and are
   * released without comparison: 0 for mid-stream and restarted connections, -1 (the SYN's
   * own offset is -1) for connections that started with a SYN.
   */
  floor = -1;
  /** Stream offset (from the connection's first byte) of this incarnation's offset 0 (for records). */
  baseOff = 0;
  #pReasm: TcpReassembler | null = null;
  pDelivered = 0;
  /** Offset where the primary's stream ended with a FIN (delivered), -1 while open. */
  pFin = -1;
  /**
   * Shadow mode: the primary's in-order stream (its FIN included) up to this offset has left
   * the engine (a completed checkpoint released whatever was held); -1 before any checkpoint.
   */
  flushed = -1;

  // ---- secondary ----
  sIsn = -1;
  /** The secondary's SYN / SYN-ACK was seen (or a checkpoint made its state the primary's). */
  sSyn = false;
  sRst = false;
  sData = false;
  sMode = S_UNKNOWN;
  sOrigin = 0;
  #sReasm: TcpReassembler | null = null;
  sDelivered = 0;
  sFin = -1;
  /** Secondary segments waiting for the primary's origin (EntryStore K_S_PENDING). */
  readonly pending: AuxFifo = newAuxFifo();

  // ---- comparison ----
  anchorP = 0;
  anchorS = 0;
  matched = 0;
  /** Created on first use: a checkpoint restart creates a connection object per direction. */
  #q: ChunkQueue | null = null;
  #ahead = AHEAD_NONE;
  /** Queue bytes / pinned slots currently charged to the flow as the secondary's. */
  #sCharged = 0;
  #sPinned = 0;
  /** The handle of the segment each side is feeding right now (its bytes can be queued zero copy). */
  #pCur = NO_HANDLE;
  #sCur = NO_HANDLE;
  diverged = false;
  finMatched = false;
  /**
   * Shadow mode: the bytes of both sides since the last divergence, kept until the alignment
   * after it is chosen (null otherwise; never set in real-checkpoint mode).
   */
  #rs: Resync | null = null;
  /** The secondary's bytes kept in #rs, charged to the flow like its queued bytes. */
  #rsCharged = 0;
  /** Primary entries referencing this incarnation. */
  held = 0;
  /** Closed: callbacks from closing reassemblers are ignored. */
  dead = false;

  constructor(ctx: CompareContext, fc: FlowCompare, dir: Dir, ord: number) {
    this.ctx = ctx;
    this.fc = fc;
    this.dir = dir;
    this.ord = ord;
  }

  #queue(): ChunkQueue {
    return (this.#q ??= new ChunkQueue(this.ctx.pool));
  }

  /** The alignment rule in effect (undefined while undecided). */
  get rule(): AlignmentRule | undefined {
    return RULE_NAMES[this.sMode];
  }

  /** Matched point in the primary's offsets. */
  get matchedP(): number {
    return this.anchorP + this.matched;
  }

  /** Primary stream offset of sequence number `seq` (wrap-safe, relative to the moving reference; cold path). */
  offsetP(seq: number): number {
    return this.#pRefOff + ((seq - this.#pRefSeq) | 0);
  }

  /**
   * A primary segment, held as entry `e`: set the entry's offsets and flags, feed the bytes.
   * `h` is the handle holding `v.buf`. Returns true when the segment has a stream position;
   * `lastEndSeq` is then the sequence number after it (SYN/FIN included). (Sequence numbers
   * are ≥ 2^31 half the time: returned or passed through a call V8 did not inline they would
   * be boxed, i.e. allocated per packet, hence the field.)
   */
  primary(v: PacketView, h: number, e: number, nowMs: number): boolean {
    const st = this.ctx.store;
    const flags = v.tcpFlags;
    const seq = v.tcpSeq;
    const len = (v.layers & LAYER_PAYLOAD) !== 0 ? v.payloadFullLen : 0;
    if ((flags & TCP_RST) !== 0) {
      // Not fed to the reassembler: an RST is released once the secondary sent one too.
      st.flags[e] = EF_RST;
      return false;
    }
    const syn = (flags & TCP_SYN) !== 0;
    const fin = (flags & TCP_FIN) !== 0;
    if (syn) {
      if (this.pIsn < 0) this.pIsn = seq;
      if (!this.pHasOrigin) this.#setPrimaryOrigin((seq + 1) >>> 0, -1, nowMs);
    } else if (!this.pHasOrigin && (len > 0 || fin)) {
      this.#setPrimaryOrigin(seq, 0, nowMs);
    }
    let ef = (syn ? EF_SYN : 0) | (fin ? EF_FIN : 0);
    if (ef === 0 && len === 0) ef = EF_PURE;
    if (!this.pHasOrigin) {
      st.flags[e] = ef | EF_NO_ORIGIN;
      return false;
    }
    const start = this.#pRefOff + ((seq - this.#pRefSeq) | 0);
    const dataStart = syn ? start + 1 : start;
    const dataEnd = dataStart + len;
    const end = dataEnd + (fin ? 1 : 0);
    st.flags[e] = ef;
    st.start[e] = start;
    st.dataEnd[e] = dataEnd;
    st.end[e] = end;
    const endSeq = (seq + (end - start)) >>> 0;
    if (end > this.#pRefOff) {
      this.#pRefOff = end;
      this.#pRefSeq = endSeq;
    }
    this.lastEndSeq = endSeq;
    if (len > 0 || fin) {
      this.pData = true;
      this.#feed(SIDE_P, v, h, nowMs);
    }
    return true;
  }

  /**
   * A secondary segment. Returns true when the caller may release `h` now, false when it is
   * kept (waiting for the primary's origin).
   */
  secondary(v: PacketView, h: number, nowMs: number): boolean {
    const flags = v.tcpFlags;
    if ((flags & TCP_RST) !== 0) {
      this.sRst = true;
      return true;
    }
    const seq = v.tcpSeq;
    const syn = (flags & TCP_SYN) !== 0;
    if (syn) {
      if (this.sIsn < 0) this.sIsn = seq;
      this.sSyn = true;
    }
    const len = (v.layers & LAYER_PAYLOAD) !== 0 ? v.payloadFullLen : 0;
    if (len === 0 && (flags & TCP_FIN) === 0) return true;
    if (this.sMode === S_UNKNOWN) {
      if (!this.pHasOrigin) {
        const e = this.ctx.holdSecondary(this.fc, K_S_PENDING, h, this.dir, this.ord, this.ctx.pool.length(h));
        auxPush(this.ctx.store, this.pending, e);
        this.sData = true;
        return false;
      }
      this.#decide(syn ? (seq + 1) >>> 0 : seq);
    }
    if (len > 0) this.sData = true;
    this.#feed(SIDE_S, v, h, nowMs);
    return true;
  }

  /**
   * Can primary entry `e` (of this incarnation) be released now? REL_NO, or why it can:
   * see docs/compare.md "What is released when".
   */
  releasable(e: number): number {
    const st = this.ctx.store;
    const f = st.flags[e]!;
    if ((f & EF_RST) !== 0) return this.sRst ? REL_CONTROL : REL_NO;
    if ((f & EF_NO_ORIGIN) !== 0) return REL_CONTROL;
    if (st.end[e]! <= this.floor) return REL_PRE_ORIGIN;
    // Nothing new: a pure ACK, retransmitted FIN or data within output a checkpoint already
    // released (the client has seen it all; the secondary's counterpart may never come).
    if (st.end[e]! <= this.flushed) return REL_CONTROL;
    if ((f & EF_SYN) !== 0 && !this.sSyn) return REL_NO;
    const mP = this.anchorP + this.matched;
    if ((f & EF_PURE) !== 0) return st.start[e]! <= mP + (this.finMatched ? 1 : 0) ? REL_CONTROL : REL_NO;
    const dataEnd = st.dataEnd[e]!;
    if (dataEnd > mP) return REL_NO;
    if ((f & EF_FIN) !== 0 && !this.finMatched) return REL_NO;
    const dataStart = (f & EF_SYN) !== 0 ? st.start[e]! + 1 : st.start[e]!;
    return dataEnd > dataStart ? REL_MATCHED : REL_CONTROL;
  }

  /** Restart as a fresh incarnation after a real checkpoint: both sides at primary seq `seq`, stream offset `abs`. */
  restartAt(seq: number, abs: number, isn: number): void {
    this.pHasOrigin = true;
    this.pOrigin = seq;
    this.#pRefSeq = seq;
    this.#pRefOff = 0;
    this.floor = 0;
    this.baseOff = abs;
    this.pIsn = isn;
    this.sIsn = isn;
    this.sSyn = true;
    this.sMode = S_RESTARTED;
    this.sOrigin = seq;
    this.ctx.stats.alignment.restarted++;
  }

  /**
   * Shadow checkpoint completed: forget the divergence. After a payload / length divergence
   * the new alignment is chosen from the bytes that follow it (now, or as they arrive: until
   * then the primary's later frames stay held); after a gap or a budget freeze, both sides
   * compare on from their current ends.
   */
  reanchor(): void {
    this.diverged = false;
    this.finMatched = false;
    const rs = this.#rs;
    if (rs !== null) {
      rs.settled = true;
      this.#tryResolve(false);
      return;
    }
    this.ctx.stats.reanchorBy.ownEnds++;
    this.#anchorAtEnds();
  }

  /**
   * Shadow checkpoint completed: every primary segment seen so far has been released, so later
   * segments that add nothing beyond them (pure ACKs such as the last ACK of a close,
   * retransmissions) need no counterpart (see `flushed`).
   */
  noteFlushed(): void {
    if (!this.pHasOrigin) return;
    // In-order bytes only: a later retransmission filling a hole is output the client has not seen.
    const end = this.pFin >= 0 ? this.pFin + 1 : this.pDelivered;
    // (Nothing sent yet: no rule; a retransmitted SYN-ACK still waits for the secondary's.)
    if (end > 0 && end > this.flushed) this.flushed = end;
  }

  /**
   * Shadow checkpoint completed: the primary frames whose bytes wait here have left, so their
   * slots are no longer pinned; the bytes are kept as copies (see ChunkQueue.unpin). Returns
   * the slots released.
   */
  unpinQueued(): number {
    const q = this.#q;
    if (q === null || q.pinned === 0) return 0;
    const n = q.unpin();
    this.#chargeQueue();
    return n;
  }

  /** Waiting for the bytes that choose the shadow re-anchor (the checkpoint has completed). */
  get resyncPending(): boolean {
    return this.#rs !== null && this.#rs.settled;
  }

  /** The held primary frames waited long enough: choose the re-anchor with the bytes at hand. */
  forceResync(): void {
    if (this.resyncPending) this.#tryResolve(true);
  }

  /**
   * End this incarnation: close both reassemblers (their callbacks are ignored), drop held
   * secondary segments and copied bytes. Idempotent.
   */
  close(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.#pReasm?.close();
    this.#sReasm?.close();
    this.#pReasm = null;
    this.#sReasm = null;
    this.#dropResync();
    this.#clearQueue();
    this.dropPending(reason);
  }

  /** Drop the secondary segments waiting for an origin. */
  dropPending(reason: string): void {
    const st = this.ctx.store;
    for (let e = auxShift(st, this.pending); e !== NIL; e = auxShift(st, this.pending)) {
      this.ctx.dropSecondary(this.ctx.unholdSecondary(this.fc, e), reason);
    }
  }

  /** Drop the oldest waiting secondary segment if it is entry `e` (expiry); false if it is not the head. */
  expirePending(e: number): boolean {
    if (this.pending.head !== e) return false;
    auxShift(this.ctx.store, this.pending);
    return true;
  }

  // ---- reassembler callbacks ----

  onData(side: number, buf: Uint8Array, off: number, len: number, at: number): void {
    if (this.dead) return;
    if (side === SIDE_P) this.pDelivered = at + len;
    else this.sDelivered = at + len;
    this.#take(side, buf, off, len, at, true);
  }

  onGap(side: number, at: number, len: number): void {
    if (this.dead) return;
    // Bytes after a hole cannot be lined up: re-anchor at the ends before it (if the checkpoint
    // completed; else the completion does), then the hole is a divergence of its own.
    if (this.#rs !== null) this.#abandonResync();
    if (side === SIDE_P) this.pDelivered = at + len;
    else this.sDelivered = at + len;
    if (this.diverged) return;
    const rel = at - (side === SIDE_P ? this.anchorP : this.anchorS);
    this.#diverge('gap', side === SIDE_P ? 'primary' : 'secondary', rel > 0 ? rel : 0, side, null, 0, 0);
  }

  /**
   * A side retransmitted different bytes for offsets it had already sent (e.g. a keep-alive
   * probe's garbage byte at SND.NXT − 1). Not a divergence: the first copy is what was
   * compared, and the client's TCP also keeps the first copy (released frames keep their
   * arrival order; bytes it already has are discarded). Counted.
   */
  onConflict(side: number): void {
    if (this.dead) return;
    if (side === SIDE_P) this.ctx.stats.pConflicts++;
    else this.ctx.stats.sConflicts++;
  }

  onEnd(side: number, how: EndReason): void {
    if (this.dead || how !== 'fin') return;
    if (side === SIDE_P) this.pFin = this.pDelivered;
    else this.sFin = this.sDelivered;
    const rs = this.#rs;
    if (rs !== null) {
      if (rs.settled) this.#tryResolve(false);
      return;
    }
    if (!this.diverged) this.#checkFin();
  }

  // ---- internals ----

  #setPrimaryOrigin(seq: number, floor: number, nowMs: number): void {
    this.pHasOrigin = true;
    this.pOrigin = seq;
    this.#pRefSeq = seq;
    this.#pRefOff = 0;
    this.floor = floor;
    if (this.pending.count > 0) this.#replayPending(nowMs);
  }

  /** The primary's origin is now known: align and feed the secondary segments that waited for it. */
  #replayPending(nowMs: number): void {
    const ctx = this.ctx;
    const st = ctx.store;
    const pool = ctx.pool;
    const rv = ctx.replayView;
    for (let e = auxShift(st, this.pending); e !== NIL; e = auxShift(st, this.pending)) {
      const h = ctx.unholdSecondary(this.fc, e);
      decodeFrame(rv, pool.buffer(h), pool.offset(h), pool.length(h), pool.tag[h]!);
      this.secondary(rv, h, nowMs);
      ctx.consumedSecondary();
      pool.release(h);
    }
  }

  #decide(seq: number): void {
    const stats = this.ctx.stats.alignment;
    this.sOrigin = this.pOrigin;
    if (this.sIsn < 0) {
      this.sMode = S_MIDSTREAM;
      stats.midstream++;
      return;
    }
    const ownOrigin = (this.sIsn + 1) >>> 0;
    const dP = (seq - this.pOrigin) | 0;
    const dS = (seq - ownOrigin) | 0;
    const okP = dP >= 0 && dP <= ALIGN_WINDOW;
    const okS = dS >= 0 && dS <= ALIGN_WINDOW;
    if (okP && (!okS || dP <= dS)) {
      this.sMode = S_PRIMARY_SPACE;
      stats['primary-space']++;
    } else if (okS) {
      this.sMode = S_OWN_SPACE;
      this.sOrigin = ownOrigin;
      stats['own-space']++;
    } else {
      this.sMode = S_UNRESOLVED;
      stats.unresolved++;
    }
  }

  #feed(side: number, v: PacketView, h: number, nowMs: number): void {
    let r = side === SIDE_P ? this.#pReasm : this.#sReasm;
    if (r === null) {
      r = new TcpReassembler(this.ctx.pool, new SideSink(this, side), this.ctx.limits.reassembly, this.ctx.reassemblyBudget);
      // Offset 0 is ours to choose (the alignment rule), not the reassembler's: a SYN just
      // before the origin fixes it.
      const sv = this.ctx.synView;
      sv.tcpSeq = ((side === SIDE_P ? this.pOrigin : this.sOrigin) - 1) >>> 0;
      r.segment(sv, this.dir, NO_HANDLE, nowMs);
      if (side === SIDE_P) this.#pReasm = r;
      else this.#sReasm = r;
    }
    const flags = v.tcpFlags;
    if ((flags & TCP_SYN) !== 0) {
      // Data (or FIN) on a SYN: the reassembler must not restart the stream; shift past the SYN.
      v.tcpFlags = flags & ~TCP_SYN;
      v.tcpSeq = (v.tcpSeq + 1) >>> 0;
    }
    if (side === SIDE_P) this.#pCur = h;
    else this.#sCur = h;
    r.segment(v, this.dir, h, nowMs);
    this.#pCur = NO_HANDLE;
    this.#sCur = NO_HANDLE;
  }

  /**
   * Bytes `buf[off, off + len)` of `side` at stream offset `at`, in order: kept for a pending
   * re-anchor, ignored while diverged, else compared. `fins`: apply the FIN/length rules (off
   * while replaying kept bytes: both sides' FINs may already be known, see #tryResolve).
   */
  #take(side: number, buf: Uint8Array, off: number, len: number, at: number, fins: boolean): void {
    const rs = this.#rs;
    if (rs !== null) {
      this.#keep(rs, side, buf, off, len, at);
      if (rs.settled) this.#tryResolve(false);
      return;
    }
    if (this.diverged) return;
    let rel = at - (side === SIDE_P ? this.anchorP : this.anchorS);
    if (rel < 0) {
      // Before a shadow re-anchor point: already dealt with.
      if (rel + len <= 0) return;
      off -= rel;
      len += rel;
      rel = 0;
    }
    if (fins) {
      const otherFin = this.#finRel(side === SIDE_P ? SIDE_S : SIDE_P);
      if (otherFin >= 0 && rel + len > otherFin) {
        const keep = otherFin - rel;
        if (keep > 0) this.#match(side, buf, off, keep, rel);
        if (!this.diverged) this.#diverge('length', side === SIDE_P ? 'primary' : 'secondary', otherFin, side, null, 0, 0, null, 0, 0, buf, off + keep, len - keep);
        else if (this.#rs !== null) this.#keep(this.#rs, side, buf, off + keep, len - keep, (side === SIDE_P ? this.anchorP : this.anchorS) + otherFin);
        return;
      }
    }
    this.#match(side, buf, off, len, rel);
    if (fins && !this.diverged) this.#checkFin();
  }

  /** Start keeping both sides' bytes from anchor-relative offset `rel` (the diverging one); `x…`: side `from`'s bytes there. */
  #startResync(rel: number, from: number, xBuf: Uint8Array | null, xOff: number, xLen: number): void {
    const rs = new Resync(this.anchorP + rel, this.anchorS + rel, this.ctx.limits.maxFlowHeldBytes);
    this.#rs = rs;
    // The queued side's bytes start at the matched point.
    const q = this.#q;
    const ahead = this.#ahead;
    if (q !== null && ahead !== AHEAD_NONE) {
      let pos = (ahead === SIDE_P ? this.anchorP : this.anchorS) + this.matched;
      const at = LOCATE;
      for (let i = 0; i < q.length; ) {
        q.locate(i, at);
        if (at.buf === null || at.avail <= 0) break;
        this.#keep(rs, ahead, at.buf, at.off, at.avail, pos);
        pos += at.avail;
        i += at.avail;
      }
    }
    if (xBuf !== null && xLen > 0) this.#keep(rs, from, xBuf, xOff, xLen, (from === SIDE_P ? this.anchorP : this.anchorS) + rel);
  }

  /** Keep bytes in `rs`; the secondary's are charged to the flow (held budgets). */
  #keep(rs: Resync, side: number, buf: Uint8Array, off: number, len: number, at: number): void {
    rs.add(side, buf, off, len, at);
    if (side === SIDE_S && rs.ns !== this.#rsCharged) {
      this.ctx.secondaryBytes(this.fc, rs.ns - this.#rsCharged, 0);
      this.#rsCharged = rs.ns;
    }
  }

  /** Forget the kept bytes (uncharged). */
  #dropResync(): void {
    this.#rs = null;
    if (this.#rsCharged !== 0) {
      this.ctx.secondaryBytes(this.fc, -this.#rsCharged, 0);
      this.#rsCharged = 0;
    }
  }

  /** Choose the shadow re-anchor if the kept bytes allow (`force`: now), then compare the kept bytes after it. */
  #tryResolve(force: boolean): void {
    const rs = this.#rs!;
    const pDone = this.pFin >= 0 && this.pFin === rs.pStart + rs.np;
    const sDone = this.sFin >= 0 && this.sFin === rs.sStart + rs.ns;
    const how = rs.decide(pDone, sDone, force);
    if (how === RS_WAIT) return;
    this.#dropResync();
    const by = this.ctx.stats.reanchorBy;
    if (how === RS_PROOF) by.shift++;
    else if (how === RS_TAIL) by.tail++;
    else if (how === RS_END) by.end++;
    else if (how === RS_FORCED) by.forced++;
    else by.ownEnds++;
    if (how === RS_BROKEN) {
      this.#anchorAtEnds();
      return;
    }
    this.anchorP = rs.pStart + rs.a;
    this.anchorS = rs.sStart + rs.b;
    this.matched = 0;
    this.#clearQueue();
    this.finMatched = false;
    // Replay the kept bytes after the anchor, alternately in slices so neither side's queue
    // grows past a slice; FINs are checked once both are in. A new divergence starts keeping
    // bytes again (#take routes the rest there).
    const pb = rs.bytes(SIDE_P);
    const sb = rs.bytes(SIDE_S);
    let pi = rs.a;
    let si = rs.b;
    while (pi < rs.np || si < rs.ns) {
      if (pi < rs.np) {
        const n = rs.np - pi < REPLAY_SLICE ? rs.np - pi : REPLAY_SLICE;
        this.#take(SIDE_P, pb, pi, n, rs.pStart + pi, false);
        pi += n;
      }
      if (si < rs.ns) {
        const n = rs.ns - si < REPLAY_SLICE ? rs.ns - si : REPLAY_SLICE;
        this.#take(SIDE_S, sb, si, n, rs.sStart + si, false);
        si += n;
      }
    }
    if (!this.diverged && this.#rs === null) this.#checkFin();
  }

  /** Stop keeping bytes for a re-anchor: once settled, anchor at the current ends now; before, the completion will. */
  #abandonResync(): void {
    const rs = this.#rs!;
    this.#dropResync();
    if (!rs.settled) return;
    this.ctx.stats.reanchorBy.ownEnds++;
    this.#anchorAtEnds();
  }

  /** Compare on from both sides' current delivered ends (the rule when the bytes cannot tell). */
  #anchorAtEnds(): void {
    this.anchorP = this.pDelivered;
    this.anchorS = this.sDelivered;
    this.matched = 0;
    this.#clearQueue();
    this.diverged = false;
    this.finMatched = false;
    this.#checkFin();
  }

  /** Match `len` bytes of `side` at anchor-relative offset `rel` (contiguous with what that side delivered before). */
  #match(side: number, buf: Uint8Array, off: number, len: number, rel: number): void {
    const q = this.#queue();
    if (this.#ahead === AHEAD_NONE || this.#ahead === side) {
      if (q.length + len > this.ctx.limits.maxFlowHeldBytes) {
        // One side is too far ahead: stop copying (the budget bounds this queue); a checkpoint resyncs.
        this.diverged = true;
        this.#clearQueue();
        this.ctx.overBudget(this.fc, this.dir, side === SIDE_P ? 'primary' : 'secondary', this.baseOff + this.anchorP + this.matched, this.rule);
        return;
      }
      this.#ahead = side;
      q.append(buf, off, len, side === SIDE_P ? this.#pCur : this.#sCur);
      this.#chargeQueue();
      return;
    }
    const n = len < q.length ? len : q.length;
    const d = q.compare(buf, off, n);
    if (d >= 0) {
      this.matched += d;
      // The queue then starts at the diverging byte (a shadow re-anchor keeps it from there).
      q.consume(d);
      const at = LOCATE;
      q.locate(0, at);
      if (side === SIDE_P) this.#diverge('payload', 'both', this.matched, SIDE_P, buf, off + d, len - d, at.buf, at.off, at.avail, buf, off + d, len - d);
      else this.#diverge('payload', 'both', this.matched, SIDE_S, at.buf, at.off, at.avail, buf, off + d, len - d, buf, off + d, len - d);
      return;
    }
    this.matched += n;
    q.consume(n);
    if (q.length === 0) this.#ahead = AHEAD_NONE;
    if (len > n) {
      this.#ahead = side;
      q.append(buf, off + n, len - n, side === SIDE_P ? this.#pCur : this.#sCur);
    }
    this.#chargeQueue();
  }

  /** Both FINs known: equal offsets and every byte matched → the FIN matched; unequal → 'length'. */
  #checkFin(): void {
    const pF = this.#finRel(SIDE_P);
    const sF = this.#finRel(SIDE_S);
    if (pF >= 0 && sF >= 0) {
      if (pF !== sF) this.#diverge('length', 'both', pF < sF ? pF : sF, SIDE_P, null, 0, 0);
      else if (this.matched >= pF) this.finMatched = true;
      return;
    }
    if (pF >= 0 && this.sDelivered - this.anchorS > pF) this.#diverge('length', 'secondary', pF, SIDE_S, null, 0, 0);
    else if (sF >= 0 && this.pDelivered - this.anchorP > sF) this.#diverge('length', 'primary', sF, SIDE_P, null, 0, 0);
  }

  #finRel(side: number): number {
    if (side === SIDE_P) return this.pFin >= 0 ? this.pFin - this.anchorP : -1;
    return this.sFin >= 0 ? this.sFin - this.anchorS : -1;
  }

  /**
   * Freeze this connection and report. `rel` is the anchor-relative offset; the bytes are the
   * primary's and the secondary's from there (a side with no bytes at hand: null). `x…`: the
   * bytes side `from` delivered from `rel` on in the current call (the queue holds the other
   * side's); in shadow mode a payload or length divergence keeps them, and what follows, to
   * choose the re-anchor.
   */
  #diverge(
    cause: DivergenceCause,
    side: DivergenceSide,
    rel: number,
    from: number,
    pBuf: Uint8Array | null,
    pOff: number,
    pLen: number,
    sBuf: Uint8Array | null = null,
    sOff = 0,
    sLen = 0,
    xBuf: Uint8Array | null = null,
    xOff = 0,
    xLen = 0,
  ): void {
    this.diverged = true;
    // Report before clearing the queue: its bytes may be one side of the record.
    this.ctx.divergence(this.fc, this.dir, cause, side, this.baseOff + this.anchorP + rel, 'byte', pBuf, pOff, pLen, sBuf, sOff, sLen, this.rule);
    if (this.ctx.shadow && (cause === 'payload' || cause === 'length') && !this.dead) this.#startResync(rel, from, xBuf, xOff, xLen);
    this.#clearQueue();
  }

  #clearQueue(): void {
    this.#q?.clear();
    this.#ahead = AHEAD_NONE;
    this.#chargeQueue();
  }

  /** Keep the flow's secondary charge equal to the queued bytes / pinned slots when the secondary is ahead. */
  #chargeQueue(): void {
    const q = this.#q;
    const sAhead = this.#ahead === SIDE_S && q !== null;
    const want = sAhead ? q.length : 0;
    const pins = sAhead ? q.pinned : 0;
    const d = want - this.#sCharged;
    const dp = pins - this.#sPinned;
    if (d !== 0 || dp !== 0) {
      this.#sCharged = want;
      this.#sPinned = pins;
      this.ctx.secondaryBytes(this.fc, d, dp);
    }
  }
}
