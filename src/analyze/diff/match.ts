/**
 * Cross-capture flow matching: by protocol, VLAN and the pair of endpoints (the client side
 * is the same in both captures; the server's ISN may differ, it is not part of the key), then
 * in start-time order within one key (the k-th connection of a 4-tuple in the primary pairs
 * with the k-th in the secondary, so port reuse and a late secondary both pair correctly).
 * A secondary flow seen the other way round (mid-stream pick-up from the other end) is
 * matched too and reported `swapped`, so its directions are exchanged.
 */
import type { FlowRec } from './load.js';
import type { DiffProtocol } from './types.js';

export interface FlowPair {
  primary: FlowRec | null;
  secondary: FlowRec | null;
  /** The secondary's client is the primary's server (directions exchanged). */
  swapped: boolean;
}

function pairKey(f: FlowRec): string {
  return flowPairKey(f.protocol, f.vlan, f.client, f.server);
}

/** The matching key of a flow: protocol, VLAN and its two endpoints in either order. */
export function flowPairKey(protocol: DiffProtocol, vlan: number, client: string, server: string): string {
  const [a, b] = client < server ? [client, server] : [server, client];
  return `${protocol === 'nd' ? 'icmpv6' : protocol}|${vlan}|${a}|${b}`;
}

/** Start order used for matching (start time, then order in the capture). */
export function byStart(a: FlowRec, b: FlowRec): number {
  return a.startMs - b.startMs || a.serial - b.serial;
}

/**
 * Pair the flows of two captures (oriented beforehand: see analyze.ts). Result in start order:
 * primary flows by their start, secondary-only flows placed by their own start.
 */
export function matchFlows(primary: readonly FlowRec[], secondary: readonly FlowRec[]): FlowPair[] {
  const sByKey = new Map<string, FlowRec[]>();
  for (const f of secondary) {
    const k = pairKey(f);
    const l = sByKey.get(k);
    if (l === undefined) sByKey.set(k, [f]);
    else l.push(f);
  }
  for (const l of sByKey.values()) l.sort(byStart);
  const used = new Map<string, number>();
  const pairs: { p: FlowPair; at: number }[] = [];
  const pSorted = [...primary].sort(byStart);
  for (const f of pSorted) {
    const k = pairKey(f);
    const l = sByKey.get(k);
    const i = used.get(k) ?? 0;
    const s = l?.[i] ?? null;
    if (s !== null) used.set(k, i + 1);
    pairs.push({ p: { primary: f, secondary: s, swapped: s !== null && s.client !== f.client }, at: f.startMs });
  }
  for (const [k, l] of sByKey) {
    for (let i = used.get(k) ?? 0; i < l.length; i++) pairs.push({ p: { primary: null, secondary: l[i]!, swapped: false }, at: l[i]!.startMs });
  }
  pairs.sort((a, b) => a.at - b.at);
  return pairs.map((x) => x.p);
}
