/**
 * Workload maker (issue 5): from one real capture, derive the frames a COLO primary VM and an
 * independent secondary VM would send for the same client traffic.
 *
 * - Server side per TCP connection: the responder (receiver of the SYN, or sender of the
 *   SYN-ACK). For a connection picked up mid-stream: by default the receiver of the first
 *   packet seen (the project's tracker calls the first sender the client); `midStreamServer:
 *   'lower-port'` picks the lower port instead (ties: first receiver). The default is not the
 *   lower port because real captures break that rule: in PcapPlusPlus' http-packets.pcap
 *   the HTTP client uses port 8868 and the server 31600. UDP: the receiver of the first datagram.
 * - PRIMARY = the server's frames from the capture, byte for byte, timestamps kept.
 * - SECONDARY = the same server payload per direction, re-segmented as a second stack would:
 *   its own MSS and coalescing (seeded), IP IDs, TTL, window, TCP timestamp values and ISN
 *   (`rewriteIsn` maps data into the primary's sequence space like QEMU's filter-rewriter,
 *   leaving the SYN-ACK's own ISN), some pure ACKs skipped (delayed ACK), the ACK numbers of
 *   the primary frame at that point (the capture's client side), bounded seeded jitter and the
 *   same FIN/RST ending. UDP server datagrams are rebuilt with different IP ID/TTL.
 * - Labelled divergences are applied to the secondary only; their ground truth goes in the
 *   manifest in the compare engine's vocabulary (flow text server→client, stream offset).
 *
 * Cold path: the whole capture's server frames are held in memory. Skipped: frames that are
 * not IP TCP/UDP (ARP, ICMP…), IP fragments, and frames that fail to decode.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ColoError } from '../errors.js';
import { openCapture } from '../capture/reader.js';
import { toEthernet } from '../capture/linktype.js';
import { PcapWriter } from '../capture/writer.js';
import { decodeFrame } from '../packet/decode.js';
import { PacketView } from '../packet/view.js';
import { TCP_OPT_MSS, TCP_OPT_SACK_PERM, TCP_OPT_TIMESTAMP, TCP_OPT_WSCALE } from '../packet/view.js';
import { LAYER_TCP, LAYER_UDP } from '../packet/layer.js';
import { formatEndpoint } from '../packet/addr.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, tcpFrame, udpFrame } from './frame-builder.js';
import type { TcpOptionsSpec } from './frame-builder.js';

/** A labelled divergence to inject into the secondary. */
export type DivergeSpec =
  /** Flip one byte (XOR 0xff) of the server→client stream at `offset`; `flow` = server→client flow text (default: first TCP connection with enough server data). */
  | { kind: 'byte'; flow?: string; offset: number }
  /** Flip the last byte of server→client datagram number `index` (default 0) of `flow` (default: first UDP flow). */
  | { kind: 'udp'; flow?: string; index?: number };

export interface WorkloadOptions {
  /** PRNG seed (default 1). Same capture + options + seed → same files. */
  seed?: number;
  /** Map the secondary's data into the primary's sequence space (filter-rewriter style). */
  rewriteIsn?: boolean;
  /** Upper bound of the secondary's extra delay per frame, in microseconds (default 200). */
  jitterUs?: number;
  diverge?: readonly DivergeSpec[];
  /** How to pick the server of a connection seen without its handshake (default 'first-receiver'). */
  midStreamServer?: 'first-receiver' | 'lower-port';
}

/** One divergence's ground truth, in the compare engine's terms. */
export interface GroundTruth {
  kind: DivergeSpec['kind'];
  /** `"SRC:SPORT-DST:DPORT/TCP|UDP"`, server → client. */
  flow: string;
  /** TCP: stream byte offset (0 = first byte after the SYN). UDP: datagram index. */
  offset: number;
  offsetUnit: 'byte' | 'datagram';
  /** The checkpoint cause the engine should report. */
  cause: 'payload';
}

export interface WorkloadManifest {
  capture: string;
  seed: number;
  rewriteIsn: boolean;
  jitterUs: number;
  diverge: readonly DivergeSpec[];
  counts: { primaryFrames: number; secondaryFrames: number; tcpConnections: number; udpFlows: number; skipped: number };
  /** Per TCP connection: server→client flow text, server payload bytes, frame counts. */
  connections: { flow: string; bytes: number; primaryFrames: number; secondaryFrames: number; midStream: boolean }[];
  groundTruth: GroundTruth[];
}

export interface WorkloadResult {
  primary: string;
  secondary: string;
  manifest: WorkloadManifest;
}

/** mulberry32: small seeded PRNG (setup-time only). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Frame {
  bytes: Buffer;
  sec: number;
  nsec: number;
  /** Capture order, to keep sorting stable. */
  order: number;
}

/** What the secondary needs from one server frame (copied out of the reused view). */
interface ServerPkt {
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
}

interface L2L3 {
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

interface TcpConn {
  /** Server→client flow text. */
  flow: string;
  serverKey: string;
  midStream: boolean;
  l: L2L3 | null;
  pkts: ServerPkt[];
  synAck: { mss: number; wscale: number | undefined; sackPerm: boolean } | null;
}

interface UdpFlow {
  flow: string;
  serverKey: string;
  l: L2L3 | null;
  pkts: { frame: Frame; payload: Buffer; ipId: number; ttl: number }[];
}

function endpointKey(v: PacketView, src: boolean): string {
  return src ? formatEndpoint(v.buf, v.ipSrcOff, v.ipAddrLen, v.srcPort) : formatEndpoint(v.buf, v.ipDstOff, v.ipAddrLen, v.dstPort);
}

function l2l3(v: PacketView): L2L3 {
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

/**
 * Build a workload from `capturePath` into `outDir` (created): `primary.pcap`,
 * `secondary.pcap` (nanosecond pcap, Ethernet) and `manifest.json`. Throws ColoError
 * ERR_INVALID_ARGUMENT when a divergence cannot be placed (unknown flow, offset past the data).
 */
export function makeWorkload(capturePath: string, outDir: string, opts: WorkloadOptions = {}): WorkloadResult {
  const seed = opts.seed ?? 1;
  const jitterUs = opts.jitterUs ?? 200;
  const rewriteIsn = opts.rewriteIsn ?? false;
  const diverge = opts.diverge ?? [];
  const rand = rng(seed);
  const lowerPort = opts.midStreamServer === 'lower-port';

  const tcp = new Map<string, TcpConn>();
  const udp = new Map<string, UdpFlow>();
  const tcpOrder: TcpConn[] = [];
  const udpOrder: UdpFlow[] = [];
  const primary: Frame[] = [];
  let skipped = 0;
  let order = 0;

  // ---- pass 1: classify frames, keep the server's ----
  const reader = openCapture(capturePath);
  const v = new PacketView();
  try {
    for (let rec = reader.next(); rec !== null; rec = reader.next()) {
      if (!toEthernet(rec)) {
        skipped++;
        continue;
      }
      const st = decodeFrame(v, rec.buf, rec.off, rec.capLen, 0, rec.origLen);
      const isTcp = (v.layers & LAYER_TCP) !== 0;
      const isUdp = (v.layers & LAYER_UDP) !== 0;
      if (st !== 0 || (!isTcp && !isUdp) || v.fragOffset !== 0 || v.moreFragments || v.payloadLen !== v.payloadFullLen) {
        skipped++;
        continue;
      }
      const src = endpointKey(v, true);
      const dst = endpointKey(v, false);
      const key = (src < dst ? `${src}|${dst}` : `${dst}|${src}`) + (isTcp ? '/T' : '/U');
      const frame: Frame = { bytes: Buffer.from(rec.buf.subarray(rec.off, rec.off + rec.capLen)), sec: rec.tsSec, nsec: rec.tsNsec, order: order++ };
      if (isUdp) {
        let f = udp.get(key);
        if (f === undefined) {
          // The responder is the receiver of the first datagram.
          f = { flow: `${dst}-${src}/UDP`, serverKey: dst, l: null, pkts: [] };
          udp.set(key, f);
          udpOrder.push(f);
        }
        if (src !== f.serverKey) continue;
        f.l ??= l2l3(v);
        primary.push(frame);
        f.pkts.push({ frame, payload: Buffer.from(v.buf.subarray(v.payloadOff, v.payloadOff + v.payloadLen)), ipId: v.ipId, ttl: v.ipTtl });
        continue;
      }
      const syn = (v.tcpFlags & TCP_SYN) !== 0;
      const ackf = (v.tcpFlags & TCP_ACK) !== 0;
      let c = tcp.get(key);
      if (c === undefined) {
        let server: string;
        let client: string;
        let mid = false;
        if (syn) {
          [server, client] = ackf ? [src, dst] : [dst, src];
        } else {
          mid = true;
          [server, client] = lowerPort && v.srcPort < v.dstPort ? [src, dst] : [dst, src];
        }
        c = { flow: `${server}-${client}/TCP`, serverKey: server, midStream: mid, l: null, pkts: [], synAck: null };
        tcp.set(key, c);
        tcpOrder.push(c);
      }
      if (src !== c.serverKey) continue;
      c.l ??= l2l3(v);
      primary.push(frame);
      if (syn && c.synAck === null) {
        c.synAck = {
          mss: (v.tcpOpts & TCP_OPT_MSS) !== 0 ? v.tcpMss : 0,
          wscale: (v.tcpOpts & TCP_OPT_WSCALE) !== 0 ? v.tcpWscale : undefined,
          sackPerm: (v.tcpOpts & TCP_OPT_SACK_PERM) !== 0,
        };
      }
      const hasTs = (v.tcpOpts & TCP_OPT_TIMESTAMP) !== 0;
      c.pkts.push({
        frame, seq: v.tcpSeq, ack: v.tcpAck, flags: v.tcpFlags, window: v.tcpWindow,
        payload: Buffer.from(v.buf.subarray(v.payloadOff, v.payloadOff + v.payloadLen)),
        tsVal: hasTs ? v.tcpTsVal : 0, tsEcr: hasTs ? v.tcpTsEcr : 0, hasTs, ipId: v.ipId, ttl: v.ipTtl,
      });
    }
  } finally {
    reader.close();
  }

  // ---- resolve divergences to concrete places ----
  const truth: GroundTruth[] = [];
  const byteFlips = new Map<TcpConn, number[]>();
  const udpFlips = new Map<UdpFlow, number[]>();
  const streams = new Map<TcpConn, Stream>();
  for (const c of tcpOrder) streams.set(c, serverStream(c));
  for (const d of diverge) {
    if (d.kind === 'byte') {
      const c = d.flow !== undefined ? tcpOrder.find((x) => x.flow === d.flow) : tcpOrder.find((x) => streams.get(x)!.have[d.offset] === 1);
      if (c === undefined) throw new ColoError('ERR_INVALID_ARGUMENT', `workload: no TCP connection ${d.flow ?? `with a captured server byte at offset ${d.offset}`} for a byte divergence`);
      const st = streams.get(c)!;
      if (!(Number.isInteger(d.offset) && st.have[d.offset] === 1)) throw new ColoError('ERR_INVALID_ARGUMENT', `workload: byte divergence offset ${d.offset} is not a captured byte of ${c.flow}'s ${st.data.length}-byte server stream`);
      (byteFlips.get(c) ?? byteFlips.set(c, []).get(c)!).push(d.offset);
      truth.push({ kind: 'byte', flow: c.flow, offset: d.offset, offsetUnit: 'byte', cause: 'payload' });
    } else {
      const f = d.flow !== undefined ? udpOrder.find((x) => x.flow === d.flow) : udpOrder.find((x) => x.pkts.some((p) => p.payload.length > 0));
      const idx = d.index ?? 0;
      if (f === undefined || !(idx >= 0 && idx < f.pkts.length) || f.pkts[idx]!.payload.length === 0) {
        throw new ColoError('ERR_INVALID_ARGUMENT', `workload: no UDP server datagram ${idx} with payload in ${d.flow ?? 'any flow'}`);
      }
      (udpFlips.get(f) ?? udpFlips.set(f, []).get(f)!).push(idx);
      truth.push({ kind: 'udp', flow: f.flow, offset: idx, offsetUnit: 'datagram', cause: 'payload' });
    }
  }

  // ---- build the secondary ----
  const secondary: Frame[] = [];
  const connections: WorkloadManifest['connections'] = [];
  for (const c of tcpOrder) {
    const before = secondary.length;
    secondaryTcp(c, streams.get(c)!, byteFlips.get(c) ?? [], rand, rewriteIsn, jitterUs, secondary);
    connections.push({ flow: c.flow, bytes: streams.get(c)!.known, primaryFrames: c.pkts.length, secondaryFrames: secondary.length - before, midStream: c.midStream });
  }
  for (const f of udpOrder) secondaryUdp(f, udpFlips.get(f) ?? [], rand, jitterUs, secondary);
  secondary.sort((a, b) => a.sec - b.sec || a.nsec - b.nsec || a.order - b.order);

  mkdirSync(outDir, { recursive: true });
  const pPath = join(outDir, 'primary.pcap');
  const sPath = join(outDir, 'secondary.pcap');
  writeFrames(pPath, primary);
  writeFrames(sPath, secondary);
  const manifest: WorkloadManifest = {
    capture: capturePath,
    seed,
    rewriteIsn,
    jitterUs,
    diverge,
    counts: { primaryFrames: primary.length, secondaryFrames: secondary.length, tcpConnections: tcpOrder.length, udpFlows: udpOrder.length, skipped },
    connections,
    groundTruth: truth,
  };
  writeFileSync(join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return { primary: pPath, secondary: sPath, manifest };
}

function writeFrames(path: string, frames: Frame[]): void {
  const w = new PcapWriter(path);
  try {
    for (const f of frames) w.write(f.bytes, 0, f.bytes.length, f.sec, f.nsec);
  } finally {
    w.close();
  }
}

/** Stream base: sequence number of stream offset 0 (after the SYN-ACK, or the first seen). */
function streamBase(c: TcpConn): number {
  const s = c.pkts.find((p) => (p.flags & TCP_SYN) !== 0);
  if (s !== undefined) return (s.seq + 1) >>> 0;
  return c.pkts.length > 0 ? c.pkts[0]!.seq : 0;
}

/** Offset of a packet's payload in the stream (SYN occupies one sequence number). */
function relOffset(p: ServerPkt, base: number): number {
  const seq = (p.flags & TCP_SYN) !== 0 ? (p.seq + 1) >>> 0 : p.seq;
  return (seq - base) | 0;
}

/**
 * The server's byte stream as the capture shows it: `data[k]` is valid where `have[k]` is 1
 * (first copy of each byte wins). Holes are bytes the capture lost; the secondary skips them
 * too, so both outputs show the same gap.
 */
interface Stream {
  data: Buffer;
  have: Uint8Array;
  /** Bytes known (have = 1). */
  known: number;
}

function serverStream(c: TcpConn): Stream {
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

function secondaryTcp(c: TcpConn, stream: Stream, flips: number[], rand: () => number, rewriteIsn: boolean, jitterUs: number, out: Frame[]): void {
  if (c.l === null || c.pkts.length === 0) return;
  const l = c.l;
  const data = Buffer.from(stream.data);
  const have = stream.have;
  for (const o of flips) data[o] = data[o]! ^ 0xff;
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
  const mss = mssChoices[Math.floor(rand() * mssChoices.length)]!;
  let sent = 0; // stream bytes the secondary has sent
  let finSent = false;
  let lastSec = 0;
  let lastNsec = 0;

  const emit = (p: ServerPkt, flags: number, seq: number, payload: Uint8Array | undefined, options: TcpOptionsSpec | undefined): void => {
    let [s, n] = addUs(p.frame.sec, p.frame.nsec, rand() * jitterUs);
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
    });
    out.push({ bytes, sec: s, nsec: n, order: p.frame.order });
  };
  const tsOpt = (p: ServerPkt): TcpOptionsSpec | undefined => (p.hasTs ? { timestamp: { val: (p.tsVal + tsOff) >>> 0, ecr: p.tsEcr } } : undefined);

  /** Send the captured stream bytes in [sent, upTo) in segments of at most `mss`, never across a hole. */
  const flushData = (p: ServerPkt, upTo: number): void => {
    while (sent < upTo) {
      if (have[sent] !== 1) {
        sent++;
        continue;
      }
      let n = 1;
      while (n < mss && sent + n < upTo && have[sent + n] === 1) n++;
      const last = sent + n >= upTo || have[sent + n] !== 1;
      emit(p, last ? TCP_ACK | TCP_PSH : TCP_ACK, dataBase + sent, data.subarray(sent, sent + n), tsOpt(p));
      sent += n;
    }
  };

  let finAt = -1; // stream offset of the primary's FIN, once seen
  let finPkt: ServerPkt | null = null;
  const sendFin = (p: ServerPkt): void => {
    flushData(p, finAt);
    sent = Math.max(sent, finAt);
    const f = finPkt!;
    emit(p, f.flags & (TCP_FIN | TCP_ACK), dataBase + finAt, undefined, tsOpt(p));
    finSent = true;
  };
  let seenEnd = 0; // highest stream byte the primary has sent so far
  for (let i = 0; i < c.pkts.length; i++) {
    const p = c.pkts[i]!;
    const o = relOffset(p, base);
    if ((p.flags & TCP_RST) !== 0) {
      // Every reset is mirrored at the primary's stream position (a stack answers each
      // unwanted segment with one), after the data the primary had sent before it.
      if (!finSent) flushData(p, seenEnd);
      emit(p, p.flags & (TCP_RST | TCP_ACK), dataBase + Math.max(o, 0), undefined, undefined);
      continue;
    }
    if (finSent) continue; // the primary's FIN retransmissions: the secondary's own are not modelled
    if ((p.flags & TCP_SYN) !== 0) {
      const sa = c.synAck;
      const opt: TcpOptionsSpec = { mss, sackPermitted: sa?.sackPerm === true ? true : undefined, wscale: sa?.wscale };
      if (p.hasTs) opt.timestamp = { val: (p.tsVal + tsOff) >>> 0, ecr: p.tsEcr };
      emit(p, p.flags & (TCP_SYN | TCP_ACK), isn, undefined, opt);
      continue;
    }
    if (p.payload.length > 0) seenEnd = Math.min(data.length, Math.max(seenEnd, o + p.payload.length));
    const fin = (p.flags & TCP_FIN) !== 0;
    if (fin && finAt < 0) {
      finAt = o + p.payload.length;
      finPkt = p;
    }
    const lastPkt = i === c.pkts.length - 1;
    if (seenEnd > sent) {
      // Coalescing: a second stack may hold small tails back and send them with the next data,
      // but only briefly (Nagle waits about an RTT), never across an idle gap of the primary.
      const next = lastPkt ? undefined : c.pkts[i + 1]!.frame;
      const soon = next !== undefined && usBetween(p.frame, next) <= HOLD_MAX_US;
      const hold = finAt < 0 && soon && rand() < 0.35;
      if (!hold) flushData(p, seenEnd);
      else if (seenEnd - sent >= mss) flushData(p, sent + Math.floor((seenEnd - sent) / mss) * mss);
    } else if (!fin && p.payload.length === 0 && rand() >= 0.3) {
      // Pure ACK (some skipped: delayed ACK on the second stack).
      emit(p, TCP_ACK, dataBase + sent, undefined, tsOpt(p));
    }
    // The FIN goes out once the data before it has: a capture may show the FIN before a
    // late data segment (out of order), and the secondary's FIN must sit at the same offset.
    if (finAt >= 0 && seenEnd >= finAt) sendFin(p);
  }
  const lastP = c.pkts[c.pkts.length - 1]!;
  if (!finSent && sent < seenEnd) flushData(lastP, seenEnd);
  if (!finSent && finAt >= 0) sendFin(lastP);
}

function secondaryUdp(f: UdpFlow, flips: number[], rand: () => number, jitterUs: number, out: Frame[]): void {
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
    const bytes = udpFrame({ srcMac: l.srcMac, dstMac: l.dstMac, vlan: l.vlan, src: l.src, dst: l.dst, tos: l.tos, df: l.df, ttl, ipId: l.src.length === 4 ? id : 0, sport: l.sport, dport: l.dport, payload });
    out.push({ bytes, sec: s, nsec: n, order: p.frame.order });
  });
}
