/**
 * Sequence-space alignment of the secondary's server→client TCP streams.
 *
 * A capture taken behind QEMU's filter-rewriter carries the secondary's SYN-ACK with the
 * secondary's own ISN, but its data already in the primary's sequence space; a capture taken
 * on the secondary's own tap is wholly in its own space. Which one a connection is shows in
 * its first data (or FIN) segment after the SYN-ACK: is it next to the secondary's ISN + 1 or
 * to the primary's ISN + 1? A cheap pre-scan of the secondary answers that per SYN-ACK; the
 * main pass then hands the tracker a SYN-ACK whose sequence number is the primary's ISN for
 * `primary-space` connections, so stream offsets come out in the primary's terms either way.
 */
import { openCapture } from '../../capture/reader.js';
import { toEthernet } from '../../capture/linktype.js';
import { decodeFrame } from '../../packet/decode.js';
import { formatEndpoint } from '../../packet/addr.js';
import { LAYER_PAYLOAD, LAYER_TCP } from '../../packet/layer.js';
import { PacketView } from '../../packet/view.js';
import { seqAdd, seqDiff } from '../../flow/tcp-seq.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../flow/tcp-types.js';
import type { DiffAlignment } from './types.js';

/** `"SRC:PORT>DST:PORT"` of a SYN-ACK (server > client). Allocates: SYN-ACKs only. */
export function synAckKey(v: PacketView): string {
  return `${formatEndpoint(v.buf, v.ipSrcOff, v.ipAddrLen, v.srcPort)}>${formatEndpoint(v.buf, v.ipDstOff, v.ipAddrLen, v.dstPort)}`;
}

/** True when `v` is a SYN-ACK. */
export function isSynAck(v: PacketView): boolean {
  return (v.layers & LAYER_TCP) !== 0 && (v.tcpFlags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK);
}

/** Decision for one secondary SYN-ACK: how its connection is aligned and the ISN to feed. */
export interface AlignDecision {
  alignment: DiffAlignment;
  /** Sequence number to give the SYN-ACK (the primary's ISN for `primary-space`). */
  feedIsn: number;
}

interface Pending {
  key: string;
  isnS: number;
  isnP: number | undefined;
  src: Uint8Array;
  dst: Uint8Array;
  sport: number;
  dport: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array, off: number): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[off + i]) return false;
  return true;
}

/** Map key of a decision: SYN-ACK key + its own ISN. */
export function decisionKey(key: string, isn: number): string {
  return `${key}#${isn}`;
}

/**
 * Pre-scan the secondary capture `path` and decide, per SYN-ACK, the alignment of its
 * connection. `primaryIsns` lists the primary's SYN-ACK ISNs per SYN-ACK key, in capture
 * order (the k-th secondary SYN-ACK of a key pairs with the primary's k-th; retransmitted
 * SYN-ACKs with the same ISN count once). Records that fail to read end the scan quietly:
 * the main pass reports them.
 */
export function scanAlignment(path: string, primaryIsns: ReadonlyMap<string, readonly number[]>): Map<string, AlignDecision> {
  const out = new Map<string, AlignDecision>();
  const pendingByPorts = new Map<number, Pending[]>();
  const seen = new Set<string>();
  const perKey = new Map<string, number>();
  let pendingCount = 0;
  const v = new PacketView();
  const reader = openCapture(path);
  const decide = (p: Pending, dataSeq: number | null): void => {
    let a: DiffAlignment;
    let feed = p.isnS;
    if (p.isnP === undefined) a = 'own-space';
    else if (p.isnP === p.isnS) a = 'same-isn';
    else if (dataSeq === null) a = 'own-space';
    else {
      const dOwn = Math.abs(seqDiff(dataSeq, seqAdd(p.isnS, 1)));
      const dPrim = Math.abs(seqDiff(dataSeq, seqAdd(p.isnP, 1)));
      a = dPrim < dOwn ? 'primary-space' : 'own-space';
      if (a === 'primary-space') feed = p.isnP;
    }
    out.set(decisionKey(p.key, p.isnS), { alignment: a, feedIsn: feed });
  };
  try {
    for (;;) {
      let rec;
      try {
        rec = reader.next();
      } catch {
        break;
      }
      if (rec === null) break;
      if (!toEthernet(rec)) continue;
      decodeFrame(v, rec.buf, rec.off, rec.capLen, 0, rec.origLen);
      if ((v.layers & LAYER_TCP) === 0) continue;
      const f = v.tcpFlags;
      if ((f & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) {
        const key = synAckKey(v);
        const dk = decisionKey(key, v.tcpSeq);
        if (out.has(dk) || seen.has(dk)) continue;
        const k = perKey.get(key) ?? 0;
        perKey.set(key, k + 1);
        seen.add(dk);
        const list = primaryIsns.get(key);
        const p: Pending = {
          key, isnS: v.tcpSeq, isnP: list?.[k] ?? list?.[list.length - 1],
          src: Uint8Array.from(v.buf.subarray(v.ipSrcOff, v.ipSrcOff + v.ipAddrLen)),
          dst: Uint8Array.from(v.buf.subarray(v.ipDstOff, v.ipDstOff + v.ipAddrLen)),
          sport: v.srcPort, dport: v.dstPort,
        };
        const pk = v.srcPort * 65536 + v.dstPort;
        const arr = pendingByPorts.get(pk);
        if (arr === undefined) pendingByPorts.set(pk, [p]);
        else arr.push(p);
        pendingCount++;
        continue;
      }
      if (pendingCount === 0 || (f & TCP_SYN) !== 0) continue;
      const hasData = (v.layers & LAYER_PAYLOAD) !== 0 && v.payloadFullLen > 0;
      if (!hasData && (f & (TCP_FIN | TCP_RST)) === 0) continue;
      const arr = pendingByPorts.get(v.srcPort * 65536 + v.dstPort);
      if (arr === undefined) continue;
      for (let i = 0; i < arr.length; i++) {
        const p = arr[i]!;
        if (p.src.length !== v.ipAddrLen || !sameBytes(p.src, v.buf, v.ipSrcOff) || !sameBytes(p.dst, v.buf, v.ipDstOff)) continue;
        decide(p, v.tcpSeq);
        arr.splice(i, 1);
        if (arr.length === 0) pendingByPorts.delete(v.srcPort * 65536 + v.dstPort);
        pendingCount--;
        break;
      }
    }
  } finally {
    reader.close();
  }
  for (const arr of pendingByPorts.values()) for (const p of arr) decide(p, null);
  return out;
}
