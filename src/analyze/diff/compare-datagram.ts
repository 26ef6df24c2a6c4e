/**
 * Datagram flows (UDP, ICMP, other IP, ARP, neighbour discovery): one direction compared as a
 * sequence — the i-th datagram of one side against the i-th of the other, by payload, then by
 * time; then by count.
 */
import type { BenignCounts, DiffDirection, Divergence } from './types.js';
import { DATAGRAM_STRIDE, type DatagramStore } from './store.js';
import { contextBytes, noBytes } from './bytes-context.js';
import { firstDiff, type CompareOpts } from './compare-tcp.js';

/** First divergence of one datagram direction, or null. */
export function compareDatagramDirection(p: DatagramStore, s: DatagramStore, direction: DiffDirection, o: CompareOpts): Divergence | null {
  const np = p.count;
  const ns = s.count;
  const n = Math.min(np, ns);
  const c = o.context;
  const make = (cause: Divergence['cause'], i: number, side: Divergence['side'], byteAt: number, detail: string): Divergence => {
    const pp = i < np ? p.payload(i) : null;
    const sp = i < ns ? s.payload(i) : null;
    return {
      cause, direction, offset: i, offsetUnit: 'datagram', side,
      primaryMs: i < np ? p.timeOf(i) : null,
      secondaryMs: i < ns ? s.timeOf(i) : null,
      primaryBytes: pp !== null ? contextBytes(pp, byteAt - c, byteAt + c, pp.length, byteAt - c) : noBytes(byteAt),
      secondaryBytes: sp !== null ? contextBytes(sp, byteAt - c, byteAt + c, sp.length, byteAt - c) : noBytes(byteAt),
      detail,
      primaryFrames: i < np ? [p.frameOf(i)] : [],
      secondaryFrames: i < ns ? [s.frameOf(i)] : [],
    };
  };
  if (np > 0 && ns === 0) return make('outcome', 0, 'secondary', 0, `the secondary never sent a datagram ${direction} (the primary sent ${np})`);
  if (ns > 0 && np === 0) return make('outcome', 0, 'primary', 0, `the primary never sent a datagram ${direction} (the secondary sent ${ns})`);
  for (let i = 0; i < n; i++) {
    const a = p.payload(i);
    const b = s.payload(i);
    const m = Math.min(a.length, b.length);
    let d = firstDiff(a, b, 0, m);
    if (d < 0 && a.length !== b.length) d = m;
    if (d >= 0) return make('payload', i, 'both', d, `datagram ${i} ${direction} differs at byte ${d} (lengths ${a.length} and ${b.length})`);
    const late = s.timeOf(i) - p.timeOf(i);
    if (Math.abs(late) > o.timeoutMs) {
      const side = late >= 0 ? 'secondary' : 'primary';
      return make('timing', i, side, 0, `same datagram ${i} ${direction}, the ${side} ${Math.abs(late).toFixed(1)} ms later (timeout ${o.timeoutMs} ms)`);
    }
  }
  if (np > ns) return make('missing', ns, 'secondary', 0, `the secondary sent ${ns} datagrams ${direction}, the primary ${np}`);
  if (ns > np) return make('extra', np, 'secondary', 0, `the secondary sent ${ns - np} datagrams more ${direction} than the primary (${np})`);
  return null;
}

/** Benign header differences of aligned datagrams (IP ID, TTL). */
export function datagramBenign(p: DatagramStore, s: DatagramStore, b: BenignCounts): void {
  const n = Math.min(p.count, s.count);
  const pd = p.items.data;
  const sd = s.items.data;
  for (let i = 0; i < n; i++) {
    const x = i * DATAGRAM_STRIDE;
    if (pd[x + 4] !== sd[x + 4]) b.ipId++;
    if (pd[x + 5] !== sd[x + 5]) b.ttl++;
  }
}
