/**
 * The workload maker's secondary model: how an independent second stack would send the same
 * server payload (see workload.ts for the model), plus the labelled TCP edits (changed byte,
 * missing bytes, extra bytes, late or silent from an offset) applied while it is built.
 * Cold path: runs once per workload, allocates freely.
 */
import type { PacketView } from '../packet/view.js';
import { formatEndpoint } from '../packet/addr.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, tcpFrame, udpFrame } from './frame-builder.js';
import type { TcpOptionsSpec } from './frame-builder.js';

export interface Frame {
  bytes: Buffer;
  sec: number;
  nsec: number;
  /** Capture order, to keep sorting stable. */
  order: number;
}

/** What the secondary needs from one server frame (copied out of the reused view). */
export interface ServerPkt {
  frame: Frame;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  payload: Buffer;
  tsVal: number;
  tsEcr: number;
  hasTs: boolean;
  ipId: number;
  ttl: number;
  /**
   * Ethernet padding of the primary frame, when it tells: for a frame whose headers and IP
   * datagram take less than 60 bytes, true when it is padded and false when not; undefined
   * when they take 60 bytes or more.
   */
  pad: boolean | undefined;
  /** SACK blocks of the primary frame (client sequence space, the same for both VMs). */
  sack: [number, number][] | undefined;
}

export interface L2L3 {
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  vlan: number | undefined;
  src: Uint8Array;
  dst: Uint8Array;
  tos: number;
  df: boolean;
  sport: number;
  dport: number;
}

export interface TcpConn {
  /** Server→client flow text. */
  flow: string;
  serverKey: string;
  midStream: boolean;
  l: L2L3 | null;
  pkts: ServerPkt[];
  synAck: { mss: number; wscale: number | undefined; sackPerm: boolean } | null;
  /** MSS option of the client's SYN, when captured: no stack sends segments larger than its peer's MSS. */
  clientMss: number | undefined;
  /** Sequence number that acknowledges the client's FIN (its seq + length + 1), once the client sent one. */
  clientFinAck: number | undefined;
  /** Pad the secondary's short frames to 60 bytes (the primary's own habit; workload.ts decides). */
  pad: boolean;
}

export interface UdpFlow {
  flow: string;
  serverKey: string;
  l: L2L3 | null;
  /** `csum`: the primary's UDP checksum field, as captured (possibly a partial, offloaded one); `pad` as in ServerPkt. */
  pkts: { frame: Frame; payload: Buffer; ipId: number; ttl: number; csum: number; pad: boolean | undefined }[];
  /** As TcpConn.pad. */
  pad: boolean;
}

/**
 * Labelled changes to one connection's secondary (offsets in the primary's stream). At most
 * one of missing / extra / late / silent per connection (workload.ts enforces it), so only
 * `extra` shifts offsets.
 */
export interface TcpEdits {
  flips: number[];
  missing?: { offset: number; length: number };
  extra?: { offset: number; bytes: Buffer };
  late?: { offset: number; delayMs: number };
  silent?: { offset: number };
}

export function endpointKey(v: PacketView, src: boolean): string {
  return src ? formatEndpoint(v.buf, v.ipSrcOff, v.ipAddrLen, v.srcPort) : formatEndpoint(v.buf, v.ipDstOff, v.ipAddrLen, v.dstPort);
}

export function l2l3(v: PacketView): L2L3 {
  const b = v.buf;
  return {
    dstMac: Uint8Array.from(b.subarray(v.ethOff, v.ethOff + 6)),
    srcMac: Uint8Array.from(b.subarray(v.ethOff + 6, v.ethOff + 12)),
    vlan: v.vlanCount > 0 ? v.vlanId0 : undefined,
    src: Uint8Array.from(b.subarray(v.ipSrcOff, v.ipSrcOff + v.ipAddrLen)),
    dst: Uint8Array.from(b.subarray(v.ipDstOff, v.ipDstOff + v.ipAddrLen)),
    tos: v.ipTos,
    df: v.ipVersion === 4 ? v.ipDf : true,
    sport: v.srcPort,
    dport: v.dstPort,
  };
}

/** Add `us` microseconds to a (sec, nsec) time. */
function addUs(sec: number, nsec: number, us: number): [number, number] {
  let n = nsec + Math.round(us * 1000);
  let s = sec;
  while (n >= 1e9) {
    n -= 1e9;
    s++;
  }
  return [s, n];
}

function later(aSec: number, aNsec: number, bSec: number, bNsec: number): boolean {
  return aSec > bSec || (aSec === bSec && aNsec > bNsec);
}

/** Stream base: sequence number of stream offset 0 (after the SYN-ACK, or the first seen). */
export function streamBase(c: TcpConn): number {
  const s = c.pkts.find((p) => (p.flags & TCP_SYN) !== 0);
  if (s !== undefined) return (s.seq + 1) >>> 0;
  return c.pkts.length > 0 ? c.pkts[0]!.seq : 0;
}

/** Offset of a packet's payload in the stream (SYN occupies one sequence number). */
export function relOffset(p: ServerPkt, base: number): number {
  const seq = (p.flags & TCP_SYN) !== 0 ? (p.seq + 1) >>> 0 : p.seq;
  return (seq - base) | 0;
}

/**
 * The server's byte stream as the capture shows it: `data[k]` is valid where `have[k]` is 1
 * (first copy of each byte wins). Holes are bytes the capture lost; the secondary skips them
 * too, so both outputs show the same gap.
 */
export interface Stream {
  data: Buffer;
  have: Uint8Array;
  /** Bytes known (have = 1). */
  known: number;
}

export function serverStream(c: TcpConn): Stream {
  const base = streamBase(c);
  let cap = 0;
  for (const p of c.pkts) cap = Math.max(cap, relOffset(p, base) + p.payload.length);
  const data = Buffer.alloc(Math.max(cap, 0));
  const have = new Uint8Array(data.length);
  let known = 0;
  for (const p of c.pkts) {
    const o = relOffset(p, base);
    for (let i = 0; i < p.payload.length; i++) {
      const k = o + i;
      if (k < 0 || have[k] === 1) continue;
      data[k] = p.payload[i]!;
      have[k] = 1;
      known++;
    }
  }
  return { data, have, known };
}

/** Longest the secondary holds back a data tail waiting to coalesce it (µs of capture time). */
const HOLD_MAX_US = 2000;

function usBetween(a: Frame, b: Frame): number {
  return (b.sec - a.sec) * 1e6 + (b.nsec - a.nsec) / 1e3;
}

const SEC_MSS = [536, 1024, 1200, 1348, 1380, 1440, 1448, 1460] as const;

/**
 * Append the secondary's frames of connection `c` to `out`: the captured server stream with
 * `edits` applied, re-segmented and re-numbered as an independent stack would send it.
 */
/** The secondary's own retransmissions: `pct` % of its data segments are sent a second time. */
export interface RetransmitModel {
  rand: () => number;
  pct: number;
}

/** A spurious retransmission follows its original by 0.2–2 ms (a fast retransmit or short RTO on a LAN). */
const RETX_DELAY_US = [200, 2000] as const;

export function secondaryTcp(c: TcpConn, stream: Stream, edits: TcpEdits, rand: () => number, rewriteIsn: boolean, jitterUs: number, out: Frame[], retx: RetransmitModel = { rand, pct: 0 }): void {
  if (c.l === null || c.pkts.length === 0) return;
  const l = c.l;
  // The secondary's own stream (its offsets): the primary's with the edits applied.
  let data = Buffer.from(stream.data);
  let have = Uint8Array.from(stream.have);
  for (const o of edits.flips) data[o] = data[o]! ^ 0xff;
  const miss = edits.missing;
  if (miss !== undefined) have.fill(0, miss.offset, miss.offset + miss.length);
  const ex = edits.extra;
  if (ex !== undefined) {
    data = Buffer.concat([data.subarray(0, ex.offset), ex.bytes, data.subarray(ex.offset)]);
    have = Uint8Array.from([...have.subarray(0, ex.offset), ...new Uint8Array(ex.bytes.length).fill(1), ...have.subarray(ex.offset)]);
  }
  const primLen = stream.data.length;
  /** A primary stream end offset in the secondary's stream (only `extra` shifts; inserted bytes go with the data after them, or with the last data when appended). */
  const sec = (e: number): number => (ex === undefined || e < ex.offset || (e === ex.offset && e < primLen) ? e : e + ex.bytes.length);
  // Late / silent: a segment boundary at `cut`; from the first frame at or past it on, the
  // connection's secondary frames are delayed / not sent.
  const cut = edits.late?.offset ?? edits.silent?.offset ?? -1;
  const delayUs = (edits.late?.delayMs ?? 0) * 1000;
  let cutReached = false;
  const base = streamBase(c);
  const isn = Math.floor(rand() * 0x100000000) >>> 0;
  // Mid-stream there is no handshake to learn a secondary ISN from: both stacks share the
  // primary's sequence state, as after a COLO checkpoint (the compare engine's 'midstream' rule).
  const dataBase = rewriteIsn || c.synAck === null ? base : (isn + 1) >>> 0;
  const ipIdStart = Math.floor(rand() * 0x10000);
  let ipIdDelta = 0;
  const ttl = c.pkts[0]!.ttl === 64 ? 63 : 64;
  const tsOff = 1 + Math.floor(rand() * 0x7fffffff);
  const winDelta = 1 + Math.floor(rand() * 512);
  const primMss = c.synAck?.mss ?? 0;
  const mssChoices = SEC_MSS.filter((m) => m !== primMss);
  // `advMss`: what the secondary announces. `mss`: the most it puts in one segment, which the
  // client's MSS bounds too (less the timestamp option when used), as for the primary.
  const advMss = mssChoices[Math.floor(rand() * mssChoices.length)]!;
  const tsLen = c.pkts.some((x) => x.hasTs) ? 12 : 0;
  const mss = c.clientMss !== undefined && c.clientMss > tsLen ? Math.min(advMss, c.clientMss - tsLen) : advMss;
  let sent = 0; // stream bytes the secondary has sent
  let finSent = false;
  let lastSec = 0;
  let lastNsec = 0;

  /** `at`: the frame's stream offset when it is data, FIN or RST (-1 otherwise: it never reaches `cut`). */
  /** `afterLastUs` > 0: a retransmission, that long after the frame emitted last (its original). */
  const emit = (p: ServerPkt, flags: number, seq: number, payload: Uint8Array | undefined, options: TcpOptionsSpec | undefined, at = -1, afterLastUs = 0): void => {
    const jitter = afterLastUs > 0 ? 0 : rand() * jitterUs;
    if (cut >= 0 && at >= cut) cutReached = true;
    if (cutReached && edits.silent !== undefined) return;
    let [s, n] = afterLastUs > 0 ? addUs(lastSec, lastNsec, afterLastUs) : addUs(p.frame.sec, p.frame.nsec, jitter + (cutReached ? delayUs : 0));
    if (later(lastSec, lastNsec, s, n)) [s, n] = [lastSec, lastNsec];
    lastSec = s;
    lastNsec = n;
    // An independent stack's IP ID counter: its own start, never the primary's value.
    let id = (ipIdStart + ipIdDelta++) & 0xffff;
    if (id === p.ipId) id = (id + 1) & 0xffff;
    const bytes = tcpFrame({
      srcMac: l.srcMac, dstMac: l.dstMac, vlan: l.vlan, src: l.src, dst: l.dst, tos: l.tos, df: l.df, ttl, ipId: l.src.length === 4 ? id : 0,
      sport: l.sport, dport: l.dport, seq: seq >>> 0, ack: (flags & TCP_ACK) !== 0 ? p.ack : 0, flags,
      window: Math.max(1, p.window - winDelta), options, payload,
      // The same virtual NIC pads the same way: short frames as the primary frame they answer to.
      padTo60: p.pad ?? c.pad,
    });
    out.push({ bytes, sec: s, nsec: n, order: p.frame.order });
  };
  const tsOpt = (p: ServerPkt): TcpOptionsSpec | undefined => (p.hasTs ? { timestamp: { val: (p.tsVal + tsOff) >>> 0, ecr: p.tsEcr } } : undefined);
  /** A pure ACK's options: timestamps, and the primary's SACK blocks (both VMs got the same client segments). */
  const ackOpt = (p: ServerPkt): TcpOptionsSpec | undefined => (p.sack === undefined ? tsOpt(p) : { ...tsOpt(p), sack: p.sack.slice(0, p.hasTs ? 3 : 4) });

  /** Send the stream bytes in [sent, upTo) (secondary offsets) in segments of at most `mss`, never across a hole or `cut`. */
  const flushData = (p: ServerPkt, upTo: number): void => {
    while (sent < upTo) {
      if (have[sent] !== 1) {
        sent++;
        continue;
      }
      let n = 1;
      while (n < mss && sent + n < upTo && have[sent + n] === 1 && sent + n !== cut) n++;
      const last = sent + n >= upTo || have[sent + n] !== 1;
      const flags = last ? TCP_ACK | TCP_PSH : TCP_ACK;
      emit(p, flags, dataBase + sent, data.subarray(sent, sent + n), tsOpt(p), sent);
      if (retx.pct > 0 && retx.rand() * 100 < retx.pct) {
        // The same bytes again, a little later (after the original, before what follows it).
        const after = RETX_DELAY_US[0] + retx.rand() * (RETX_DELAY_US[1] - RETX_DELAY_US[0]);
        emit(p, flags, dataBase + sent, data.subarray(sent, sent + n), tsOpt(p), sent, after);
      }
      sent += n;
    }
  };

  let finAt = -1; // stream offset of the primary's FIN, once seen (primary offsets)
  let finPkt: ServerPkt | null = null;
  const sendFin = (p: ServerPkt): void => {
    const at = sec(finAt);
    flushData(p, at);
    sent = Math.max(sent, at);
    const f = finPkt!;
    emit(p, f.flags & (TCP_FIN | TCP_ACK), dataBase + at, undefined, tsOpt(p), at);
    finSent = true;
  };
  let seenEnd = 0; // end of the primary's stream bytes sent so far (primary offsets)
  for (let i = 0; i < c.pkts.length; i++) {
    const p = c.pkts[i]!;
    const o = relOffset(p, base);
    if ((p.flags & TCP_RST) !== 0) {
      // Every reset is mirrored at the primary's stream position (a stack answers each
      // unwanted segment with one), after the data the primary had sent before it.
      if (!finSent) flushData(p, sec(seenEnd));
      const at = sec(Math.max(o, 0));
      emit(p, p.flags & (TCP_RST | TCP_ACK), dataBase + at, undefined, undefined, at);
      continue;
    }
    const pureAck = p.payload.length === 0 && (p.flags & (TCP_SYN | TCP_FIN)) === 0;
    const lastPkt = i === c.pkts.length - 1;
    // Delayed ACK never holds back the ACK of the client's FIN (a stack ACKs a FIN at once)
    // nor the connection's last packet.
    const mustAck = lastPkt || (c.clientFinAck !== undefined && (p.flags & TCP_ACK) !== 0 && ((p.ack - c.clientFinAck) | 0) >= 0);
    if (finSent) {
      // After its FIN the secondary still ACKs (the client's data and FIN), one past the FIN.
      // The primary's FIN and data retransmissions: the secondary's own are not modelled.
      if (pureAck && (mustAck || rand() >= 0.3)) emit(p, TCP_ACK, dataBase + sec(finAt) + 1, undefined, ackOpt(p));
      continue;
    }
    if ((p.flags & TCP_SYN) !== 0) {
      const sa = c.synAck;
      const opt: TcpOptionsSpec = { mss: advMss, sackPermitted: sa?.sackPerm === true ? true : undefined, wscale: sa?.wscale };
      if (p.hasTs) opt.timestamp = { val: (p.tsVal + tsOff) >>> 0, ecr: p.tsEcr };
      emit(p, p.flags & (TCP_SYN | TCP_ACK), isn, undefined, opt);
      continue;
    }
    if (p.payload.length > 0) seenEnd = Math.min(primLen, Math.max(seenEnd, o + p.payload.length));
    const fin = (p.flags & TCP_FIN) !== 0;
    if (fin && finAt < 0) {
      finAt = o + p.payload.length;
      finPkt = p;
    }
    const upTo = sec(seenEnd);
    if (upTo > sent) {
      // Coalescing: a second stack may hold small tails back and send them with the next data,
      // but only briefly (Nagle waits about an RTT), never across an idle gap of the primary.
      const next = lastPkt ? undefined : c.pkts[i + 1]!.frame;
      const soon = next !== undefined && usBetween(p.frame, next) <= HOLD_MAX_US;
      const hold = finAt < 0 && soon && rand() < 0.35;
      if (!hold) flushData(p, upTo);
      else if (upTo - sent >= mss) flushData(p, sent + Math.floor((upTo - sent) / mss) * mss);
    } else if (pureAck && (mustAck || rand() >= 0.3)) {
      // Pure ACK (some skipped: delayed ACK on the second stack).
      emit(p, TCP_ACK, dataBase + sent, undefined, ackOpt(p));
    }
    // The FIN goes out once the data before it has: a capture may show the FIN before a
    // late data segment (out of order), and the secondary's FIN must sit at the same offset.
    if (finAt >= 0 && seenEnd >= finAt) sendFin(p);
  }
  const lastP = c.pkts[c.pkts.length - 1]!;
  if (!finSent && sent < sec(seenEnd)) flushData(lastP, sec(seenEnd));
  if (!finSent && finAt >= 0) sendFin(lastP);
}

export function secondaryUdp(f: UdpFlow, flips: number[], rand: () => number, jitterUs: number, out: Frame[]): void {
  if (f.l === null) return;
  const l = f.l;
  const ipIdStart = Math.floor(rand() * 0x10000);
  const ttl = f.pkts[0]!.ttl === 64 ? 63 : 64;
  f.pkts.forEach((p, i) => {
    let payload: Uint8Array = p.payload;
    if (flips.includes(i)) {
      payload = Buffer.from(p.payload);
      payload[payload.length - 1] = payload[payload.length - 1]! ^ 0xff;
    }
    let id = (ipIdStart + i) & 0xffff;
    if (id === p.ipId) id = (id + 1) & 0xffff;
    const [s, n] = addUs(p.frame.sec, p.frame.nsec, rand() * jitterUs);
    const bytes = udpFrame({ srcMac: l.srcMac, dstMac: l.dstMac, vlan: l.vlan, src: l.src, dst: l.dst, tos: l.tos, df: l.df, ttl, ipId: l.src.length === 4 ? id : 0, sport: l.sport, dport: l.dport, payload, padTo60: p.pad ?? f.pad });
    // The same guest OS computes the same UDP checksum (full, or the partial one of checksum
    // offload that a capture on the host shows): keep the primary's value, as compare sees it.
    // A changed datagram keeps the builder's valid checksum of its own bytes.
    if (payload === p.payload) bytes.writeUInt16BE(p.csum, 14 + (l.vlan !== undefined ? 4 : 0) + (l.src.length === 4 ? 20 : 40) + 6);
    out.push({ bytes, sec: s, nsec: n, order: p.frame.order });
  });
}
