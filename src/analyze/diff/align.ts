/**
 * Sequence-space alignment of the secondary's server→client TCP streams.
 *
 * A capture taken behind QEMU's filter-rewriter carries the secondary's SYN-ACK with the
 * secondary's own ISN, but its data already in the primary's sequence space; a capture taken
 * on the secondary's own tap is wholly in its own space. Which one a connection is shows in
 * its first data (or FIN) segment after the SYN-ACK: is it next to the secondary's ISN + 1 or
 * to the primary's ISN + 1? The secondary's pass answers that per SYN-ACK as it reads
 * (SecondaryAligner, no pre-scan): the SYN-ACK goes to the tracker with its own ISN, and once a
 * connection shows it is in `primary-space`, its later server→client sequence numbers (and
 * the client's acknowledgements of them) are handed to the tracker moved into the
 * secondary's own space, so stream offsets come out the same either way.
 */
import { LAYER_PAYLOAD, LAYER_TCP } from '../../packet/layer.js';
import type { PacketView } from '../../packet/view.js';
import { seqAdd, seqDiff } from '../../flow/tcp-seq.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../flow/tcp-types.js';
import type { DiffAlignment } from './types.js';

const keyCodes: number[] = [];

/**
 * Map key of the endpoint pair (address `aOff` port `aPort`, address `bOff` port `bPort`) of
 * `buf`, in that order: the raw bytes as a short flat string (one char per byte, ports as
 * one char each). Much cheaper to build and hash than formatted "IP:PORT" text; allocates
 * the string only (per connection or SYN, not per packet).
 */
export function tupleKey(buf: Uint8Array, aOff: number, aPort: number, bOff: number, bPort: number, addrLen: number): string {
  const c = keyCodes;
  c.length = 0;
  for (let i = 0; i < addrLen; i++) c.push(buf[aOff + i]!);
  c.push(aPort);
  for (let i = 0; i < addrLen; i++) c.push(buf[bOff + i]!);
  c.push(bPort);
  return String.fromCharCode.apply(null, c);
}

/**
 * Map key of the unordered endpoint pair and VLAN `vlan` (both directions of a connection
 * give the same key), flat like tupleKey.
 */
export function pairKey(buf: Uint8Array, aOff: number, aPort: number, bOff: number, bPort: number, addrLen: number, vlan: number): string {
  let cmp = 0;
  for (let i = 0; i < addrLen && cmp === 0; i++) cmp = buf[aOff + i]! - buf[bOff + i]!;
  if (cmp === 0) cmp = aPort - bPort;
  const c = keyCodes;
  c.length = 0;
  c.push(vlan);
  const loOff = cmp <= 0 ? aOff : bOff;
  const hiOff = cmp <= 0 ? bOff : aOff;
  for (let i = 0; i < addrLen; i++) c.push(buf[loOff + i]!);
  c.push(cmp <= 0 ? aPort : bPort);
  for (let i = 0; i < addrLen; i++) c.push(buf[hiOff + i]!);
  c.push(cmp <= 0 ? bPort : aPort);
  return String.fromCharCode.apply(null, c);
}

/** tupleKey of a SYN-ACK: server (its sender), then client. Allocates: SYN-ACKs only. */
export function synAckKey(v: PacketView): string {
  return tupleKey(v.buf, v.ipSrcOff, v.srcPort, v.ipDstOff, v.dstPort, v.ipAddrLen);
}

/** True when `v` is a SYN-ACK. */
export function isSynAck(v: PacketView): boolean {
  return (v.layers & LAYER_TCP) !== 0 && (v.tcpFlags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK);
}

/** One distinct secondary SYN-ACK (4-tuple + ISN) and its connection's alignment. */
export interface AlignEntry {
  isnS: number;
  isnP: number | undefined;
  src: Uint8Array;
  dst: Uint8Array;
  decided: boolean;
  alignment: DiffAlignment;
  /** Added to server→client sequence numbers (and client acks) once decided: isnS − isnP or 0. */
  delta: number;
  /** The flow record to label with the alignment (the latest one its SYN-ACK landed on). */
  target: { alignment: DiffAlignment | null } | null;
}

/** A copy of `b[off, off + n)` (Uint8Array.from on a Buffer view is many times slower). */
function copyBytes(b: Uint8Array, off: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = b[off + i]!;
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array, off: number): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[off + i]) return false;
  return true;
}

/**
 * Alignment of the secondary's connections, decided while its capture is read.
 * `primaryIsns` lists the primary's SYN-ACK ISNs per SYN-ACK key, in capture order (the k-th
 * distinct secondary SYN-ACK of a key pairs with the primary's k-th; retransmitted SYN-ACKs
 * with the same ISN count once). A connection is decided by the first server→client segment
 * after its SYN-ACK that carries data, FIN or RST (the oldest undecided SYN-ACK of that
 * 4-tuple), or at `finish` without one. Per packet, nothing is allocated; with no connection
 * waiting or in the primary's space the per-packet cost is one test.
 */
export class SecondaryAligner {
  readonly #primaryIsns: ReadonlyMap<string, readonly number[]>;
  /** Entries per `serverPort << 16 | clientPort`, in SYN-ACK order: undecided ones and the latest decided primary-space one per 4-tuple. */
  readonly #byPorts = new Map<number, AlignEntry[]>();
  /** Every distinct SYN-ACK seen per SYN-ACK key, in order (retransmissions find theirs). */
  readonly #byKey = new Map<string, AlignEntry[]>();
  /** Entries in SYN-ACK order, for `finish`. */
  #pending: AlignEntry[] = [];
  /** Entries held in #byPorts (0: nothing to do per packet). */
  #held = 0;

  constructor(primaryIsns: ReadonlyMap<string, readonly number[]>) {
    this.#primaryIsns = primaryIsns;
  }

  /**
   * A SYN-ACK `v` with SYN-ACK key `key` (synAckKey), before the tracker sees it (it goes
   * with its own ISN). Returns its entry: hand the flow record to `label` after the tracker.
   */
  synAck(v: PacketView, key: string): AlignEntry {
    const seen = this.#byKey.get(key);
    if (seen !== undefined) for (const e of seen) if (e.isnS === v.tcpSeq) return e;
    const k = seen === undefined ? 0 : seen.length;
    const list = this.#primaryIsns.get(key);
    const e: AlignEntry = {
      isnS: v.tcpSeq, isnP: list?.[k] ?? list?.[list.length - 1],
      src: copyBytes(v.buf, v.ipSrcOff, v.ipAddrLen),
      dst: copyBytes(v.buf, v.ipDstOff, v.ipAddrLen),
      decided: false, alignment: 'own-space', delta: 0, target: null,
    };
    if (seen === undefined) this.#byKey.set(key, [e]);
    else seen.push(e);
    this.#pending.push(e);
    const pk = v.srcPort * 65536 + v.dstPort;
    const arr = this.#byPorts.get(pk);
    if (arr === undefined) this.#byPorts.set(pk, [e]);
    else {
      arr.push(e);
      this.#prune(pk, arr);
    }
    this.#held++;
    return e;
  }

  /** Label `rec` with `e`'s alignment (now, and again when it is decided). */
  label(e: AlignEntry, rec: { alignment: DiffAlignment | null }): void {
    e.target = rec;
    rec.alignment = e.alignment;
  }

  /**
   * A TCP segment other than a SYN-ACK, before the tracker sees it: decide a waiting
   * connection, and move a primary-space connection's numbers into the secondary's space.
   */
  segment(v: PacketView): void {
    if (this.#held === 0) return;
    const f = v.tcpFlags;
    if ((f & TCP_SYN) !== 0) return;
    // Server → client (the SYN-ACK's own direction).
    const arr = this.#byPorts.get(v.srcPort * 65536 + v.dstPort);
    if (arr !== undefined) {
      const decides = ((v.layers & LAYER_PAYLOAD) !== 0 && v.payloadFullLen > 0) || (f & (TCP_FIN | TCP_RST)) !== 0;
      let last: AlignEntry | null = null;
      let decided = false;
      for (let i = 0; i < arr.length; i++) {
        const e = arr[i]!;
        if (e.src.length !== v.ipAddrLen || !sameBytes(e.src, v.buf, v.ipSrcOff) || !sameBytes(e.dst, v.buf, v.ipDstOff)) continue;
        if (decides && !decided && !e.decided) {
          this.#decide(e, v.tcpSeq);
          decided = true;
        }
        last = e;
      }
      if (last !== null && last.decided && last.delta !== 0) v.tcpSeq = (v.tcpSeq + last.delta) >>> 0;
      if (decided) this.#prune(v.srcPort * 65536 + v.dstPort, arr);
    }
    // Client → server: its acknowledgements of a translated stream.
    const back = this.#byPorts.get(v.dstPort * 65536 + v.srcPort);
    if (back !== undefined) {
      let last: AlignEntry | null = null;
      for (let i = 0; i < back.length; i++) {
        const e = back[i]!;
        if (e.src.length === v.ipAddrLen && sameBytes(e.src, v.buf, v.ipDstOff) && sameBytes(e.dst, v.buf, v.ipSrcOff)) last = e;
      }
      if (last !== null && last.decided && last.delta !== 0) v.tcpAck = (v.tcpAck + last.delta) >>> 0;
    }
  }

  /** The capture ended: connections never decided are decided without data. */
  finish(): void {
    for (const e of this.#pending) if (!e.decided) this.#decide(e, null);
    this.#pending = [];
  }

  #decide(e: AlignEntry, dataSeq: number | null): void {
    let a: DiffAlignment;
    if (e.isnP === undefined) a = 'own-space';
    else if (e.isnP === e.isnS) a = 'same-isn';
    else if (dataSeq === null) a = 'own-space';
    else {
      const dOwn = Math.abs(seqDiff(dataSeq, seqAdd(e.isnS, 1)));
      const dPrim = Math.abs(seqDiff(dataSeq, seqAdd(e.isnP, 1)));
      a = dPrim < dOwn ? 'primary-space' : 'own-space';
    }
    e.decided = true;
    e.alignment = a;
    if (a === 'primary-space') e.delta = (e.isnS - e.isnP!) >>> 0;
    if (e.target !== null) e.target.alignment = a;
  }

  /**
   * Keep in a ports list only what later packets need: undecided entries (oldest decides
   * first) and, per 4-tuple, the latest entry when it translates (a later SYN-ACK of the
   * 4-tuple supersedes it).
   */
  #prune(pk: number, arr: AlignEntry[]): void {
    let w = 0;
    for (let i = 0; i < arr.length; i++) {
      const e = arr[i]!;
      let keep = !e.decided;
      if (!keep && e.delta !== 0) {
        // Translating: kept while no later entry of its 4-tuple exists.
        keep = true;
        for (let j = i + 1; j < arr.length; j++) {
          const l = arr[j]!;
          if (l.src.length === e.src.length && sameBytes(l.src, e.src, 0) && sameBytes(l.dst, e.dst, 0)) {
            keep = false;
            break;
          }
        }
      }
      if (keep) arr[w++] = e;
    }
    this.#held -= arr.length - w;
    arr.length = w;
    if (w === 0) this.#byPorts.delete(pk);
  }
}
