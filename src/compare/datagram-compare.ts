/**
 * Datagram comparison (UDP, ICMP, ICMPv6 incl. neighbour discovery, other IP protocols, ARP):
 * FIFO pairing per flow direction. The i-th primary datagram of a flow direction is paired
 * with the i-th secondary one, in arrival order. QEMU pairs the NEWEST primary with any queued
 * secondary (reference §9 B2), so a burst of two different datagrams before the first
 * secondary one is a false mismatch there; here it is two matches.
 *
 * What is compared: IP protocols from the transport header to the end of the IP datagram
 * (Ethernet padding, the IP header and IPv6 extension headers excluded: IP ID, TTL, checksum,
 * flow label… never cause a divergence); ARP from the ARP header to its last address (padding
 * excluded). Equal lengths and equal bytes match.
 *
 * Outcome of a pair: equal → the primary is released (in its flow's order) and the secondary
 * dropped; different → a 'payload' divergence, the primary waits for the checkpoint, the
 * secondary is dropped. Either way both leave the FIFOs, so the pairing stays aligned.
 */
import type { CompareContext } from './context.js';
import { auxPush, auxShift, EF_MATCHED, EF_MISMATCH, K_S_DGRAM, newAuxFifo, NIL, type AuxFifo } from './entries.js';
import type { FlowCompare } from './flow-compare.js';

const bufCompare = Buffer.prototype.compare;

/** -1 when `a[ao, ao+al)` equals `b[bo, bo+bl)`, else the index of the first difference (the shorter length if one is a prefix). */
export function firstDifference(a: Uint8Array, ao: number, al: number, b: Uint8Array, bo: number, bl: number): number {
  if (al === bl && bufCompare.call(a, b, bo, bo + bl, ao, ao + al) === 0) return -1;
  const n = al < bl ? al : bl;
  for (let i = 0; i < n; i++) if (a[ao + i] !== b[bo + i]) return i;
  return n;
}

/** One direction of a datagram flow. */
export class DgramDir {
  /** Primary entries waiting for a secondary partner (via EntryStore.aux). */
  readonly pWait: AuxFifo = newAuxFifo();
  /** Secondary entries waiting for a primary partner. */
  readonly sWait: AuxFifo = newAuxFifo();
  /** Datagrams seen per side (the next one's index). */
  pIndex = 0;
  sIndex = 0;
  /**
   * Shadow mode only: primary datagrams released by a checkpoint before their partner came.
   * The next that many secondary datagrams are their partners (consumed uncompared) so the
   * FIFO stays aligned; forgotten at the following checkpoint.
   */
  ghosts = 0;
}

/** Bytes a store entry compares: its compare handle's slab (or its own handle's). */
function entryBuf(ctx: CompareContext, e: number): Uint8Array {
  const st = ctx.store;
  const ch = st.cmpHandle[e]!;
  return ctx.pool.buffer(ch >= 0 ? ch : st.handle[e]!);
}

/** Decide a pair: primary entry `p` against secondary bytes `sBuf[sOff, sOff + sLen)`. */
function pair(ctx: CompareContext, fc: FlowCompare, dir: number, p: number, sBuf: Uint8Array, sOff: number, sLen: number): void {
  const st = ctx.store;
  const pBuf = entryBuf(ctx, p);
  const pOff = st.cmpOff[p]!;
  const pLen = st.cmpLen[p]!;
  const d = firstDifference(pBuf, pOff, pLen, sBuf, sOff, sLen);
  if (d < 0) {
    st.flags[p] |= EF_MATCHED;
    return;
  }
  st.flags[p] |= EF_MISMATCH;
  ctx.divergence(fc, dir, 'payload', 'both', st.index[p]!, 'datagram', pBuf, pOff + d, pLen - d, sBuf, sOff + d, sLen - d);
}

/** A primary datagram entry `e` (cmp range and index set) arrived: pair it or let it wait. */
export function primaryDatagram(ctx: CompareContext, fc: FlowCompare, dir: number, dd: DgramDir, e: number): void {
  const st = ctx.store;
  const s = auxShift(st, dd.sWait);
  if (s === NIL) {
    auxPush(st, dd.pWait, e);
    return;
  }
  const sBuf = entryBuf(ctx, s);
  pair(ctx, fc, dir, e, sBuf, st.cmpOff[s]!, st.cmpLen[s]!);
  const h = ctx.unholdSecondary(fc, s);
  ctx.consumedSecondary();
  ctx.pool.release(h);
}

/**
 * A secondary datagram (bytes `[off, off + len)` of handle `h`'s slab) arrived. Returns true
 * when the caller may release `h` now, false when the engine keeps it (waiting for a partner).
 */
export function secondaryDatagram(ctx: CompareContext, fc: FlowCompare, dir: number, dd: DgramDir, h: number, off: number, len: number): boolean {
  dd.sIndex++;
  if (dd.ghosts > 0) {
    dd.ghosts--;
    ctx.stats.sDrop('ghost-partner');
    return true;
  }
  const st = ctx.store;
  const p = auxShift(st, dd.pWait);
  if (p !== NIL) {
    pair(ctx, fc, dir, p, ctx.pool.buffer(h), off, len);
    ctx.consumedSecondary();
    return true;
  }
  const e = ctx.holdSecondary(fc, K_S_DGRAM, h, dir, 0, ctx.pool.length(h));
  st.cmpOff[e] = off;
  st.cmpLen[e] = len;
  auxPush(st, dd.sWait, e);
  return false;
}

/** Drop every secondary datagram waiting in `dd` (a real checkpoint, the flow's removal, close). */
export function dropWaitingSecondaries(ctx: CompareContext, fc: FlowCompare, dd: DgramDir, reason: string): void {
  const st = ctx.store;
  for (let s = auxShift(st, dd.sWait); s !== NIL; s = auxShift(st, dd.sWait)) ctx.dropSecondary(ctx.unholdSecondary(fc, s), reason);
}
