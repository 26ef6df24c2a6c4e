/**
 * TcpDirection: the TCP comparison state of one flow direction across connection
 * incarnations. A 4-tuple can carry one connection after another (port reuse); each side
 * moves to a new incarnation when it sends a SYN with a new ISN (or a SYN after data without
 * one), independently, so the primary's k-th connection is compared with the secondary's
 * k-th. Old incarnations stay while primary packets of theirs are held or the other side has
 * not moved on yet.
 *
 * Limit: at most MAX_INCARNATIONS per direction. One side racing further ahead drops the
 * oldest; if that one still held primary packets they wait for a checkpoint, which is
 * requested ('flow-removed').
 */
import { TCP_RST, TCP_SYN, type Dir } from '../flow/tcp-types.js';
import type { PacketView } from '../packet/view.js';
import type { CompareContext } from './context.js';
import type { FlowCompare } from './flow-compare.js';
import { S_UNKNOWN, SIDE_P, TcpConn } from './tcp-conn.js';

export const MAX_INCARNATIONS = 4;

export class TcpDirection {
  readonly ctx: CompareContext;
  readonly fc: FlowCompare;
  readonly dir: Dir;
  conns: TcpConn[] = [];
  /** Ordinal of conns[0]. */
  base = 0;
  /** Current incarnation of each side. */
  pOrd = 0;
  sOrd = 0;
  /** The primary's highest sequence end in its current incarnation, and its stream offset. */
  pNextSeq = 0;
  pNextAbs = 0;
  pNextKnown = false;

  constructor(ctx: CompareContext, fc: FlowCompare, dir: number) {
    this.ctx = ctx;
    this.fc = fc;
    this.dir = dir === 0 ? 0 : 1;
  }

  /** The incarnation with ordinal `ord`, or undefined when it is gone. */
  conn(ord: number): TcpConn | undefined {
    return this.conns[ord - this.base];
  }

  /** The incarnation a primary (side 0) or secondary (side 1) segment belongs to. */
  connFor(side: number, v: PacketView): TcpConn {
    let ord = side === SIDE_P ? this.pOrd : this.sOrd;
    let c = this.#get(ord);
    const f = v.tcpFlags;
    if ((f & TCP_SYN) !== 0 && (f & TCP_RST) === 0) {
      const seq = v.tcpSeq;
      const fresh =
        side === SIDE_P
          ? c.pIsn >= 0
            ? c.pIsn !== seq
            : c.pHasOrigin
          : c.sIsn >= 0
            ? c.sIsn !== seq
            : c.sData || c.sMode !== S_UNKNOWN;
      if (fresh) {
        ord++;
        if (side === SIDE_P) {
          this.pOrd = ord;
          this.pNextKnown = false;
        } else {
          this.sOrd = ord;
        }
        c = this.#get(ord);
      }
    }
    return c;
  }

  /** Record where `c`'s last primary segment ended (its sequence number, stream offset `abs`): a restart resumes there. */
  notePrimaryEnd(c: TcpConn, abs: number): void {
    if (!this.pNextKnown || abs > this.pNextAbs) {
      this.pNextKnown = true;
      this.pNextSeq = c.lastEndSeq;
      this.pNextAbs = abs;
    }
  }

  /** Forget incarnations both sides have left that hold nothing. */
  prune(): void {
    const conns = this.conns;
    while (conns.length > 1 && this.pOrd > this.base && this.sOrd > this.base && conns[0]!.held === 0) {
      conns.shift()!.close('superseded');
      this.base++;
    }
  }

  /**
   * A real checkpoint completed: every held primary packet has been released. Both sides
   * continue as one fresh incarnation from the primary's next sequence number.
   */
  restart(): void {
    const cur = this.conns[this.pOrd - this.base];
    const isn = cur !== undefined ? cur.pIsn : -1;
    for (const c of this.conns) c.close('checkpoint');
    this.base = this.pOrd;
    this.sOrd = this.pOrd;
    const n = new TcpConn(this.ctx, this.fc, this.dir, this.pOrd);
    if (this.pNextKnown) n.restartAt(this.pNextSeq, this.pNextAbs, isn);
    this.conns = [n];
  }

  /**
   * Shadow checkpoint (every held primary packet was released): note that on every
   * incarnation, re-anchor those that diverged, keep the others' alignment as it is.
   */
  reanchorDiverged(): void {
    for (const c of this.conns) {
      c.noteFlushed();
      if (c.diverged) c.reanchor();
      // The released frames' slots must not stay pinned by bytes still to compare: input
      // waiting for a slot of that size would wait for the other side, and it for input.
      c.unpinQueued();
    }
  }

  /** Close every incarnation (flow removal, engine close). */
  close(reason: string): void {
    for (const c of this.conns) c.close(reason);
    this.conns = [];
  }

  #get(ord: number): TcpConn {
    const conns = this.conns;
    while (conns.length <= ord - this.base) {
      conns.push(new TcpConn(this.ctx, this.fc, this.dir, this.base + conns.length));
      if (conns.length > MAX_INCARNATIONS) this.#dropOldest();
    }
    return conns[ord - this.base]!;
  }

  #dropOldest(): void {
    const old = this.conns.shift()!;
    this.base++;
    if (this.pOrd < this.base) this.pOrd = this.base;
    if (this.sOrd < this.base) this.sOrd = this.base;
    old.close('superseded');
    if (old.held > 0) {
      this.ctx.divergence(this.fc, this.dir, 'flow-removed', 'primary', null, null, null, 0, 0, null, 0, 0, old.rule);
    }
  }
}
