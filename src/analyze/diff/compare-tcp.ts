/**
 * TCP comparison of one direction in stream (sequence) space: the first place where the two
 * sides' streams differ, and why. Segment boundaries never matter here — bytes are compared
 * as streams — so segmentation, retransmissions and header fields can only show up in the
 * benign counts (`tcpBenign`).
 *
 * Order of checks, each only before the previous one's offset: bytes (payload / a hole / a
 * shifted stream = missing or extra bytes / one stream longer), then timing of the equal
 * bytes, then how each stream ended.
 */
import type { BenignCounts, DiffBytes, DiffDirection, Divergence } from './types.js';
import { BORROWED, DELIVERY_STRIDE, type StreamStore } from './store.js';
import { contextBytes, noBytes } from './bytes-context.js';

export interface CompareOpts {
  timeoutMs: number;
  context: number;
}

/** Bytes compared per block before looking for the exact byte. */
const BLOCK = 65536;
/** Bytes compared per copied range when the delivered pieces cannot be compared in place. */
const RANGE_STEP = 1 << 20;
/** Longest insertion / deletion looked for when the streams differ (bytes). */
const MAX_SHIFT = 65536;
/** Bytes that must match after a shift for it to count as missing/extra (or all that is left). */
const SHIFT_PROBE = 32;

/** First index in [from, to) where a and b differ, or -1. */
export function firstDiff(a: Uint8Array, b: Uint8Array, from: number, to: number): number {
  for (let o = from; o < to; o += BLOCK) {
    const e = Math.min(to, o + BLOCK);
    if (Buffer.compare(a.subarray(o, e), b.subarray(o, e)) !== 0) {
      for (let i = o; i < e; i++) if (a[i] !== b[i]) return i;
    }
  }
  return -1;
}

/** Are a[ao, ao+n) and b[bo, bo+n) equal? */
function sameRange(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number): boolean {
  if (n <= 64) {
    for (let k = 0; k < n; k++) if (a[ao + k] !== b[bo + k]) return false;
    return true;
  }
  return Buffer.compare(a.subarray(ao, ao + n), b.subarray(bo, bo + n)) === 0;
}

/** Delivery cursors of a walk over both streams (advance only). */
interface Cursor {
  i: number;
  j: number;
}

/**
 * First differing offset in [from, to) — a range where neither side has a gap — comparing the
 * delivered pieces where they lie in the capture slabs (no contiguous copy on the common,
 * identical path). Returns -1 when equal, -2 when the pieces do not tile the range (then the
 * caller compares copied ranges).
 */
function firstDiffPieces(p: StreamStore, s: StreamStore, from: number, to: number, cur: Cursor): number {
  const S = DELIVERY_STRIDE;
  const pd = p.deliveries.data;
  const sd = s.deliveries.data;
  const np = p.deliveries.count;
  const ns = s.deliveries.count;
  const ps = p.slab.slabs;
  const ss = s.slab.slabs;
  let i = cur.i;
  let j = cur.j;
  let pos = from;
  while (pos < to) {
    while (i + 1 < np && pd[(i + 1) * S]! <= pos) i++;
    while (j + 1 < ns && sd[(j + 1) * S]! <= pos) j++;
    const a = i * S;
    const b = j * S;
    const pStart = pd[a]!;
    const sStart = sd[b]!;
    const end = Math.min(pStart + pd[a + 9]!, sStart + sd[b + 9]!, to);
    if (i >= np || j >= ns || pStart > pos || sStart > pos || end <= pos) return -2;
    // Bytes borrowed from a twin other than the store compared with: read them as copies.
    if (pd[a + 7]! === BORROWED || sd[b + 7]! === BORROWED) return -2;
    const pa = ps[pd[a + 7]!]!;
    const po = pd[a + 8]! + (pos - pStart);
    const sa = ss[sd[b + 7]!]!;
    const so = sd[b + 8]! + (pos - sStart);
    const n = end - pos;
    if (!sameRange(pa, po, sa, so, n)) {
      for (let k = 0; k < n; k++) if (pa[po + k] !== sa[so + k]) return pos + k;
    }
    pos = end;
  }
  cur.i = i;
  cur.j = j;
  return -1;
}

type ByteFinding =
  | { kind: 'payload'; at: number }
  | { kind: 'hole'; at: number; side: 'primary' | 'secondary'; len: number }
  | { kind: 'shift'; at: number; side: 'primary' | 'secondary'; len: number }
  | { kind: 'longer'; at: number; side: 'primary' | 'secondary' };

/** Gap covering or after `pos` in a [offset, len] list, from index `i` (advanced in place). */
function gapIndex(g: readonly number[], i: number, pos: number): number {
  while (i < g.length && g[i]! + g[i + 1]! <= pos) i += 2;
  return i;
}

/** Is every byte of [from, to) inside the store's gaps? */
function allGap(s: StreamStore, from: number, to: number): boolean {
  let pos = from;
  const g = s.gaps;
  for (let i = 0; i < g.length && pos < to; i += 2) {
    const a = g[i]!;
    const e = a + g[i + 1]!;
    if (e <= pos) continue;
    if (a > pos) return false;
    pos = e;
  }
  return pos >= to;
}

/** Does b[at + k …] repeat a[at …] (the side of b has k bytes inserted at `at`)? Returns k or -1. */
function findShift(a: Uint8Array, aLen: number, b: Uint8Array, bLen: number, at: number): number {
  const probe = Math.min(SHIFT_PROBE, aLen - at);
  if (probe < 8 && aLen - at >= 8) return -1;
  if (probe <= 0) return -1;
  const needle = a.subarray(at, at + probe);
  const hay = b.subarray(at + 1, Math.min(bLen, at + 1 + MAX_SHIFT + probe));
  let from = 0;
  for (;;) {
    const i = Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(needle, from);
    if (i < 0) return -1;
    const k = i + 1;
    // Confirm on a longer stretch (up to 4 KiB or the end of either stream).
    const n = Math.min(4096, aLen - at, bLen - at - k);
    if (n >= probe && Buffer.compare(a.subarray(at, at + n), b.subarray(at + k, at + k + n)) === 0) return k;
    from = i + 1;
  }
}

/**
 * Smallest e > d from which both streams agree unshifted for SHIFT_PROBE bytes (or up to the
 * end of both, when `bothEnd`: the arrays end where both streams end), looked for within
 * MAX_SHIFT bytes; -1 if none.
 */
function unshiftedResync(a: Uint8Array, aLen: number, b: Uint8Array, bLen: number, d: number, bothEnd: boolean): number {
  const end = Math.min(aLen, bLen, d + 1 + MAX_SHIFT + SHIFT_PROBE);
  let run = 0;
  for (let i = d + 1; i < end; i++) {
    if (a[i] === b[i]) {
      if (++run >= SHIFT_PROBE) return i - run + 1;
    } else run = 0;
  }
  if (run > 0 && bothEnd && aLen === bLen && end === aLen) return end - run;
  return -1;
}

function compareBytes(p: StreamStore, s: StreamStore): ByteFinding | null {
  const pl = p.length;
  const sl = s.length;
  const end = Math.min(pl, sl);
  // What the secondary's pass already found equal to this very primary stream (no gap on
  // either side there): compare from where that stopped.
  let pos = s.twin === p ? Math.min(s.matchedTo, end) : 0;
  let gi = 0;
  let hi = 0;
  const cur: Cursor = { i: Math.max(0, p.deliveryAt(pos)), j: Math.max(0, s.deliveryAt(pos)) };
  while (pos < end) {
    gi = gapIndex(p.gaps, gi, pos);
    hi = gapIndex(s.gaps, hi, pos);
    const pg = gi < p.gaps.length ? p.gaps[gi]! : Infinity;
    const sg = hi < s.gaps.length ? s.gaps[hi]! : Infinity;
    const inP = pg <= pos;
    const inS = sg <= pos;
    if (inP && inS) {
      pos = Math.min(pg + p.gaps[gi + 1]!, sg + s.gaps[hi + 1]!);
      continue;
    }
    if (inS) return { kind: 'hole', at: pos, side: 'secondary', len: sg + s.gaps[hi + 1]! - pos };
    if (inP) return { kind: 'hole', at: pos, side: 'primary', len: pg + p.gaps[gi + 1]! - pos };
    const next = Math.min(pg, sg, end);
    let d = firstDiffPieces(p, s, pos, next, cur);
    for (let o = pos; d === -2 && o < next; o += RANGE_STEP) {
      const e = Math.min(next, o + RANGE_STEP);
      const k = firstDiff(p.range(o, e), s.range(o, e), 0, e - o);
      if (k >= 0) d = o + k;
    }
    if (d >= 0) {
      // Copies of both streams from d, long enough for every shift the checks look for.
      const w = MAX_SHIFT + SHIFT_PROBE + 4096 + 1;
      const pb = p.range(d, Math.min(pl, d + w));
      const sb = s.range(d, Math.min(sl, d + w));
      const bothEnd = d + pb.length === pl && d + sb.length === sl;
      // A substitution (streams agree again, unshifted, soon after) beats a shift explanation:
      // periodic data would otherwise "match" shifted by its period.
      const resync = unshiftedResync(pb, pb.length, sb, sb.length, 0, bothEnd);
      const extraK = findShift(pb, pb.length, sb, sb.length, 0);
      const missingK = findShift(sb, sb.length, pb, pb.length, 0);
      const shiftK = Math.min(extraK > 0 ? extraK : Infinity, missingK > 0 ? missingK : Infinity);
      if (resync >= 0 && resync <= shiftK) return { kind: 'payload', at: d };
      if (extraK > 0) return { kind: 'shift', at: d, side: 'secondary', len: extraK };
      if (missingK > 0) return { kind: 'shift', at: d, side: 'primary', len: missingK };
      return { kind: 'payload', at: d };
    }
    pos = next;
  }
  if (pl > sl && !allGap(p, sl, pl)) return { kind: 'longer', at: sl, side: 'primary' };
  if (sl > pl && !allGap(s, pl, sl)) return { kind: 'longer', at: pl, side: 'secondary' };
  return null;
}

/** First offset in [0, limit) where the same bytes were delivered more than `timeoutMs` apart, or -1. */
function timingAt(p: StreamStore, s: StreamStore, limit: number, timeoutMs: number): number {
  const pd = p.deliveries.data;
  const sd = s.deliveries.data;
  const np = p.deliveries.count;
  const ns = s.deliveries.count;
  if (np === 0 || ns === 0) return -1;
  let i = 0;
  let j = 0;
  let o = Math.max(pd[0]!, sd[0]!);
  if (s.twin === p && s.timingTimeoutMs === timeoutMs && s.matchedTo > 0) {
    // The secondary's pass checked [0, matchedTo) already (same boundaries, same rule).
    if (s.timingFrom >= 0) return s.timingFrom < limit ? s.timingFrom : -1;
    o = s.matchedTo;
    i = Math.max(0, p.deliveryAt(o));
    j = Math.max(0, s.deliveryAt(o));
  }
  while (o < limit) {
    while (i + 1 < np && pd[(i + 1) * DELIVERY_STRIDE]! <= o) i++;
    while (j + 1 < ns && sd[(j + 1) * DELIVERY_STRIDE]! <= o) j++;
    if (Math.abs(sd[j * DELIVERY_STRIDE + 1]! - pd[i * DELIVERY_STRIDE + 1]!) > timeoutMs) return o;
    const a = i + 1 < np ? pd[(i + 1) * DELIVERY_STRIDE]! : Infinity;
    const b = j + 1 < ns ? sd[(j + 1) * DELIVERY_STRIDE]! : Infinity;
    const next = Math.min(a, b);
    if (next === Infinity) break;
    o = next;
  }
  return -1;
}

/** How a direction ended, in outcome terms. */
function ending(s: StreamStore): 'FIN' | 'RST' | 'no FIN/RST' {
  return s.end === 'fin' ? 'FIN' : s.end === 'rst' ? 'RST' : 'no FIN/RST';
}

const frames = (f: number): number[] => (f >= 0 ? [f] : []);

/** Up to `n` bytes of the stream on each side of `at` (clamped to the stream). */
function around(st: StreamStore, at: number, n: number): DiffBytes {
  const from = Math.max(0, at - n);
  const to = Math.min(st.length, at + n);
  if (to <= from) return noBytes(at);
  const b = st.range(from, to);
  return contextBytes(b, 0, b.length, b.length, from, st.gaps);
}

/**
 * First divergence of one TCP direction (`p`, `s` = the two sides' stores of it), or null
 * when the direction is identical.
 */
export function compareTcpDirection(p: StreamStore, s: StreamStore, direction: DiffDirection, o: CompareOpts): Divergence | null {
  // The common matched case, settled by the secondary's pass: every byte of both streams
  // found equal (no gap), none late, same ending — what the checks below would conclude.
  if (s.twin === p && s.matchedTo === p.len && s.len === p.len && s.timingTimeoutMs === o.timeoutMs && s.timingFrom < 0 && ending(p) === ending(s)) return null;
  const n = o.context;
  const pl = p.length;
  const sl = s.length;
  const base = (cause: Divergence['cause'], at: number, side: Divergence['side'], detail: string): Divergence => ({
    cause, direction, offset: at, offsetUnit: 'byte', side,
    primaryMs: at < pl ? p.timeAt(at) : p.endMs >= 0 ? p.endMs : null,
    secondaryMs: at < sl ? s.timeAt(at) : s.endMs >= 0 ? s.endMs : null,
    primaryBytes: around(p, at, n),
    secondaryBytes: around(s, at, n),
    detail,
    primaryFrames: frames(at < pl ? p.frameAt(at) : p.endFrame >= 0 ? p.endFrame : p.frameAt(pl - 1)),
    secondaryFrames: frames(at < sl ? s.frameAt(at) : s.endFrame >= 0 ? s.endFrame : s.frameAt(sl - 1)),
  });

  // One side never sent anything this way while the other did: it never answered.
  if (p.segments > 0 && s.segments === 0 && pl > 0) return base('outcome', 0, 'secondary', `the secondary never sent anything ${direction} (the primary sent ${pl} bytes)`);
  if (s.segments > 0 && p.segments === 0 && sl > 0) return base('outcome', 0, 'primary', `the primary never sent anything ${direction} (the secondary sent ${sl} bytes)`);

  const b = compareBytes(p, s);
  const limit = b === null ? Math.min(pl, sl) : b.at;
  const t = timingAt(p, s, limit, o.timeoutMs);
  if (t >= 0) {
    const d = base('timing', t, 'secondary', '');
    const late = (d.secondaryMs ?? 0) - (d.primaryMs ?? 0);
    d.side = late >= 0 ? 'secondary' : 'primary';
    d.detail = `same bytes, the ${d.side} ${Math.abs(late).toFixed(1)} ms later from ${direction} offset ${t} (timeout ${o.timeoutMs} ms)`;
    return d;
  }
  if (b !== null) {
    const at = b.at;
    switch (b.kind) {
      case 'payload':
        return base('payload', at, 'both', `payload differs at ${direction} offset ${at}: primary 0x${hex1(p.range(at, at + 1)[0]!)} vs secondary 0x${hex1(s.range(at, at + 1)[0]!)}`);
      case 'hole':
        return base('missing', at, b.side, `the ${b.side} never sent ${b.len} bytes at ${direction} offset ${at} (a hole in its stream)`);
      case 'shift':
        return b.side === 'secondary'
          ? base('extra', at, 'secondary', `the secondary has ${b.len} extra bytes at ${direction} offset ${at} (its stream then matches the primary's, shifted by ${b.len})`)
          : base('missing', at, 'secondary', `the secondary lacks ${b.len} bytes at ${direction} offset ${at} (its stream then matches the primary's, shifted back by ${b.len})`);
      case 'longer':
        return b.side === 'primary'
          ? base('missing', at, 'secondary', `the secondary's ${direction} stream stops at offset ${at} (${ending(s)}); the primary sent ${pl - at} more bytes`)
          : base('extra', at, 'secondary', `the secondary sent ${sl - at} bytes past the end of the primary's ${direction} stream at offset ${at}`);
    }
  }
  const ep = ending(p);
  const es = ending(s);
  if (ep !== es) return base('outcome', pl, 'secondary', `same ${pl} bytes ${direction}, but the primary ended with ${ep} and the secondary with ${es}`);
  return null;
}

function hex1(x: number): string {
  return x.toString(16).padStart(2, '0');
}

/** Add the benign differences of one TCP direction pair to `b` (packets starting at the same offset compared field by field). */
export function tcpBenign(p: StreamStore, s: StreamStore, b: BenignCounts): void {
  const pd = p.deliveries.data;
  const sd = s.deliveries.data;
  const np = p.deliveries.count;
  const ns = s.deliveries.count;
  const limit = Math.min(p.length, s.length);
  let i = 0;
  let j = 0;
  let seg = 0;
  if (s.twin === p && s.matchedTo === p.length && s.length === p.length && np > 0 && ns > 0) {
    // Whole streams equal: the secondary's pass counted the merge already. The merge below
    // stops when either side runs out, so starts after the other side's last start do not
    // count: take those (they were counted as unpaired) back off.
    const m = s.matchedBenign;
    const lastP = pd[(np - 1) * DELIVERY_STRIDE]!;
    const lastS = sd[(ns - 1) * DELIVERY_STRIDE]!;
    let cut = 0;
    for (let k = ns - 1; k >= 0 && sd[k * DELIVERY_STRIDE]! > lastP; k--) cut++;
    for (let k = np - 1; k >= 0 && pd[k * DELIVERY_STRIDE]! > lastS; k--) cut++;
    b.ipId += m.ipId;
    b.ttl += m.ttl;
    b.window += m.window;
    b.tcpOptions += m.tcpOptions;
    seg = m.segmentation - cut;
    i = np;
  }
  while (i < np && j < ns) {
    const a = pd[i * DELIVERY_STRIDE]!;
    const c = sd[j * DELIVERY_STRIDE]!;
    if (a >= limit && c >= limit) break;
    if (a === c) {
      const x = i * DELIVERY_STRIDE;
      const y = j * DELIVERY_STRIDE;
      if (pd[x + 3] !== sd[y + 3]) b.ipId++;
      if (pd[x + 4] !== sd[y + 4]) b.ttl++;
      if (pd[x + 5] !== sd[y + 5]) b.window++;
      if (pd[x + 6] !== sd[y + 6]) b.tcpOptions++;
      i++;
      j++;
    } else if (a < c) {
      seg++;
      i++;
    } else {
      seg++;
      j++;
    }
  }
  b.segmentation += seg;
  b.retransmissions += p.retransmitted + s.retransmitted;
  const acksP = Math.max(0, p.segments - p.dataPackets - p.retransmitted);
  const acksS = Math.max(0, s.segments - s.dataPackets - s.retransmitted);
  b.ackTiming += Math.abs(acksP - acksS);
}
