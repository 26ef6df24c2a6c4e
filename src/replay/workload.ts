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
 * - 4-tuple reuse: a SYN or SYN-ACK that is new on its 4-tuple (another ISN than that side's
 *   earlier SYN, or after a FIN/RST, or from a side that already sent data) starts a new
 *   incarnation with a secondary of its own, as the flow tracker and the compare engine see it.
 * - PRIMARY = the server's frames from the capture, byte for byte, timestamps kept.
 * - SECONDARY = the same server payload per direction, re-segmented as a second stack would:
 *   its own MSS and coalescing (seeded), IP IDs, TTL, window, TCP timestamp values and ISN
 *   (`rewriteIsn` maps data into the primary's sequence space like QEMU's filter-rewriter,
 *   leaving the SYN-ACK's own ISN), some pure ACKs skipped (delayed ACK; never the ACK of the
 *   client's FIN nor the connection's last packet), the ACK numbers and SACK blocks of the
 *   primary frame at that point (the client's sequence space, the same for both VMs), segments
 *   no larger than the client's MSS, bounded seeded jitter and the same FIN/RST ending. UDP
 *   server datagrams are rebuilt with different IP ID/TTL and the primary's UDP checksum field
 *   (the same guest computes the same, possibly offloaded, sum).
 * - Ethernet padding: the same virtual NIC pads the same way. A secondary frame shorter than 60
 *   bytes is zero-padded to 60 when the primary frame it answers to is a padded short frame;
 *   when that one tells nothing (60 bytes or more), as the connection's short frames mostly
 *   are, else as the server MAC's short frames over the whole capture, else not.
 * - Labelled divergences (workload-spec.ts: changed byte, missing or extra bytes, late or
 *   silent secondary, changed UDP datagram) are applied to the secondary only; their ground
 *   truth goes in the manifest in the compare engine's vocabulary (flow text server→client,
 *   stream offset, the cause the engine should report).
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
import type { DivergenceCause } from '../compare/divergence.js';
import { decodeFrame } from '../packet/decode.js';
import { PacketView } from '../packet/view.js';
import { TCP_OPT_MSS, TCP_OPT_SACK_PERM, TCP_OPT_TIMESTAMP, TCP_OPT_WSCALE } from '../packet/view.js';
import { LAYER_TCP, LAYER_UDP } from '../packet/layer.js';
import { ETH_MIN_FRAME, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from './frame-builder.js';
import { endpointKey, l2l3, relOffset, secondaryTcp, secondaryUdp, serverStream, streamBase } from './workload-secondary.js';
import { mulberry32 as rng } from '../util/prng.js';
import type { Frame, L2L3, Stream, TcpConn, TcpEdits, UdpFlow } from './workload-secondary.js';
import { LATE_DEFAULT_MS } from './workload-spec.js';
import type { DivergeSpec } from './workload-spec.js';

export type { DivergeSpec, DivergeKind } from './workload-spec.js';
export { parseDivergeSpec, formatDivergeSpec, DIVERGE_GRAMMAR, LATE_DEFAULT_MS } from './workload-spec.js';

export interface WorkloadOptions {
  /** PRNG seed (default 1). Same capture + options + seed → same files. */
  seed?: number;
  /** Map the secondary's data into the primary's sequence space (filter-rewriter style). */
  rewriteIsn?: boolean;
  /** Upper bound of the secondary's extra delay per frame, in microseconds (default 200). */
  jitterUs?: number;
  /**
   * Percentage of the secondary's data segments it sends twice (its own spurious
   * retransmissions: an RTO or fast retransmit a second stack takes on its own), default 1.
   * Drawn from a PRNG stream of its own, so the rest of the secondary does not change with it.
   */
  retransmitPct?: number;
  diverge?: readonly DivergeSpec[];
  /** How to pick the server of a connection seen without its handshake (default 'first-receiver'). */
  midStreamServer?: 'first-receiver' | 'lower-port';
}

/** One divergence's ground truth, in the compare engine's terms. */
export interface GroundTruth {
  kind: DivergeSpec['kind'];
  /** `"SRC:SPORT-DST:DPORT/TCP|UDP"`, server → client. */
  flow: string;
  /** TCP: which connection on a reused 4-tuple (1-based); present only when > 1. */
  incarnation?: number;
  /** TCP: stream byte offset (0 = first byte after the SYN). UDP: datagram index. */
  offset: number;
  offsetUnit: 'byte' | 'datagram';
  /**
   * Capture time (ms since the epoch) of the primary frame carrying the divergence (TCP: the
   * first frame with stream byte `offset`, or the FIN when bytes are appended; UDP: the
   * datagram). A checkpoint releases everything held, so a divergence whose primary frames are
   * still held when another checkpoint completes is resolved by that one (docs/workload.md).
   */
  primaryTimeMs: number;
  /** missing / extra: how many bytes; late: the delay (ms). */
  length?: number;
  delayMs?: number;
  /** The checkpoint cause the compare engine should report first for this divergence (see docs/workload.md). */
  cause: DivergenceCause;
}

export interface WorkloadManifest {
  capture: string;
  seed: number;
  rewriteIsn: boolean;
  jitterUs: number;
  retransmitPct: number;
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

/**
 * Build a workload from `capturePath` into `outDir` (created): `primary.pcap`,
 * `secondary.pcap` (nanosecond pcap, Ethernet) and `manifest.json`. Throws ColoError
 * ERR_INVALID_ARGUMENT when a divergence cannot be placed (unknown flow, offset past the data).
 */
export function makeWorkload(capturePath: string, outDir: string, opts: WorkloadOptions = {}): WorkloadResult {
  const seed = opts.seed ?? 1;
  const jitterUs = opts.jitterUs ?? 200;
  const retransmitPct = opts.retransmitPct ?? 1;
  if (!(retransmitPct >= 0 && retransmitPct <= 100)) throw new ColoError('ERR_INVALID_ARGUMENT', `workload: retransmitPct ${retransmitPct}: expected 0 to 100`);
  const retxRand = rng((seed ^ 0x5eed_1e55) >>> 0);
  const rewriteIsn = opts.rewriteIsn ?? false;
  const diverge = opts.diverge ?? [];
  const rand = rng(seed);
  const lowerPort = opts.midStreamServer === 'lower-port';

  const tcp = new Map<string, Incarnation>();
  const padHabit = new PadHabit();
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
      const pad = padOf(v, rec.off, rec.capLen);
      if (isUdp) {
        let f = udp.get(key);
        if (f === undefined) {
          // The responder is the receiver of the first datagram.
          f = { flow: `${dst}-${src}/UDP`, serverKey: dst, l: null, pkts: [], pad: false };
          udp.set(key, f);
          udpOrder.push(f);
        }
        if (src !== f.serverKey) continue;
        f.l ??= l2l3(v);
        primary.push(frame);
        padHabit.note(f, f.l, pad);
        f.pkts.push({ frame, payload: Buffer.from(v.buf.subarray(v.payloadOff, v.payloadOff + v.payloadLen)), ipId: v.ipId, ttl: v.ipTtl, csum: (v.buf[v.l4Off + 6]! << 8) | v.buf[v.l4Off + 7]!, pad });
        continue;
      }
      const syn = (v.tcpFlags & TCP_SYN) !== 0;
      const ackf = (v.tcpFlags & TCP_ACK) !== 0;
      let t = tcp.get(key);
      // 4-tuple reuse: a new SYN (or SYN-ACK) starts a new incarnation with its own secondary,
      // as the project's flow tracker and the compare engine see it.
      if (t !== undefined && syn && t.isNewSyn(src, v.tcpSeq)) t = undefined;
      if (t === undefined) {
        let server: string;
        let client: string;
        let mid = false;
        if (syn) {
          [server, client] = ackf ? [src, dst] : [dst, src];
        } else {
          mid = true;
          [server, client] = lowerPort && v.srcPort < v.dstPort ? [src, dst] : [dst, src];
        }
        const conn: TcpConn = { flow: `${server}-${client}/TCP`, serverKey: server, midStream: mid, l: null, pkts: [], synAck: null, clientMss: undefined, clientFinAck: undefined, pad: false };
        t = new Incarnation(conn);
        tcp.set(key, t);
        tcpOrder.push(conn);
      }
      t.note(src, v.tcpFlags, v.tcpSeq, v.payloadLen);
      const c = t.conn;
      if (src !== c.serverKey) {
        if ((v.tcpFlags & TCP_FIN) !== 0 && c.clientFinAck === undefined) c.clientFinAck = (v.tcpSeq + (syn ? 1 : 0) + v.payloadLen + 1) >>> 0;
        if (syn && (v.tcpOpts & TCP_OPT_MSS) !== 0) c.clientMss ??= v.tcpMss;
        continue;
      }
      c.l ??= l2l3(v);
      primary.push(frame);
      padHabit.note(c, c.l, pad);
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
        tsVal: hasTs ? v.tcpTsVal : 0, tsEcr: hasTs ? v.tcpTsEcr : 0, hasTs, ipId: v.ipId, ttl: v.ipTtl, pad, sack: sackBlocks(v),
      });
    }
  } finally {
    reader.close();
  }
  padHabit.resolve();

  // ---- resolve divergences to concrete places ----
  const streams = new Map<TcpConn, Stream>();
  for (const c of tcpOrder) streams.set(c, serverStream(c));
  const { truth, edits, udpFlips } = resolveDivergences(diverge, tcpOrder, udpOrder, streams);

  // ---- build the secondary ----
  const secondary: Frame[] = [];
  const connections: WorkloadManifest['connections'] = [];
  for (const c of tcpOrder) {
    const before = secondary.length;
    secondaryTcp(c, streams.get(c)!, edits.get(c) ?? { flips: [] }, rand, rewriteIsn, jitterUs, secondary, { rand: retxRand, pct: retransmitPct });
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
    retransmitPct,
    diverge,
    counts: { primaryFrames: primary.length, secondaryFrames: secondary.length, tcpConnections: tcpOrder.length, udpFlows: udpOrder.length, skipped },
    connections,
    groundTruth: truth,
  };
  writeFileSync(join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return { primary: pPath, secondary: sPath, manifest };
}

/** The SACK blocks of TCP segment `v` (undefined without any). */
function sackBlocks(v: PacketView): [number, number][] | undefined {
  if (v.tcpSackCount === 0) return undefined;
  const b: [number, number][] = [];
  for (let i = 0, o = v.tcpSackOff; i < v.tcpSackCount; i++, o += 8) {
    b.push([((v.buf[o]! << 24) | (v.buf[o + 1]! << 16) | (v.buf[o + 2]! << 8) | v.buf[o + 3]!) >>> 0, ((v.buf[o + 4]! << 24) | (v.buf[o + 5]! << 16) | (v.buf[o + 6]! << 8) | v.buf[o + 7]!) >>> 0]);
  }
  return b;
}

/**
 * Ethernet padding a frame shows: true when it is padded up to the 60-byte minimum, false when
 * its data (headers + IP datagram) is shorter than that and it is not padded, undefined when
 * its data is 60 bytes or more (nothing to tell). `off`/`capLen`: the frame in `v.buf`.
 */
function padOf(v: PacketView, off: number, capLen: number): boolean | undefined {
  const dataLen = v.l3Off + v.ipTotalLen - off;
  if (dataLen >= ETH_MIN_FRAME) return undefined;
  return capLen >= ETH_MIN_FRAME;
}

/**
 * Whether a server pads its short frames: the connection's (flow's) own short frames decide
 * (majority); a connection without any takes the habit of its server's MAC address over the
 * whole capture (the same NIC); none known: no padding.
 */
class PadHabit {
  readonly #flows = new Map<TcpConn | UdpFlow, { mac: string; n: number }>();
  readonly #macs = new Map<string, number>();

  /** One server frame of `f` with padding `pad` (padOf). */
  note(f: TcpConn | UdpFlow, l: L2L3, pad: boolean | undefined): void {
    const mac = Buffer.from(l.srcMac).toString('hex');
    const e = this.#flows.get(f) ?? this.#flows.set(f, { mac, n: 0 }).get(f)!;
    if (pad === undefined) return;
    const d = pad ? 1 : -1;
    e.n += d;
    this.#macs.set(mac, (this.#macs.get(mac) ?? 0) + d);
  }

  /** Set `pad` of every flow noted. */
  resolve(): void {
    for (const [f, e] of this.#flows) f.pad = e.n !== 0 ? e.n > 0 : (this.#macs.get(e.mac) ?? 0) > 0;
  }
}

/**
 * One TCP incarnation on a 4-tuple, with what telling a new SYN from a retransmitted one
 * takes (the rule of the project's flow tracker, src/flow/connection.ts `isNewSyn`, extended
 * to SYN-ACKs).
 */
class Incarnation {
  /** ISN of each endpoint's SYN / SYN-ACK, by endpoint text. */
  readonly #isn = new Map<string, number>();
  /** Endpoints that sent data. */
  readonly #data = new Set<string>();
  /** A FIN or RST was seen either way. */
  #over = false;

  constructor(readonly conn: TcpConn) {}

  /** Account one segment from endpoint `src`. */
  note(src: string, flags: number, seq: number, payloadLen: number): void {
    if ((flags & TCP_SYN) !== 0 && !this.#isn.has(src)) this.#isn.set(src, seq);
    if (payloadLen > 0) this.#data.add(src);
    if ((flags & (TCP_FIN | TCP_RST)) !== 0) this.#over = true;
  }

  /**
   * Does a SYN (with or without ACK) from `src` with sequence number `seq` start a new
   * connection? When `src` already sent a SYN: exactly when the ISN differs (a retransmission
   * is not new). Otherwise when this one is over (FIN or RST seen) or `src` already sent data.
   */
  isNewSyn(src: string, seq: number): boolean {
    const isn = this.#isn.get(src);
    if (isn !== undefined) return isn !== seq;
    return this.#over || this.#data.has(src);
  }
}

function writeFrames(path: string, frames: Frame[]): void {
  const w = new PcapWriter(path);
  try {
    for (const f of frames) w.write(f.bytes, 0, f.bytes.length, f.sec, f.nsec);
  } finally {
    w.close();
  }
}

const bad = (msg: string): ColoError => new ColoError('ERR_INVALID_ARGUMENT', `workload: ${msg}`);

function timeMs(f: Frame): number {
  return f.sec * 1000 + f.nsec / 1e6;
}

/** Capture time of the first server frame carrying stream byte `off` (else the FIN, else the last frame). */
function tcpTimeMs(c: TcpConn, off: number): number {
  const base = streamBase(c);
  const p = c.pkts.find((x) => x.payload.length > 0 && relOffset(x, base) <= off && off < relOffset(x, base) + x.payload.length)
    ?? c.pkts.find((x) => (x.flags & TCP_FIN) !== 0) ?? c.pkts[c.pkts.length - 1]!;
  return timeMs(p.frame);
}

/** True when every byte of [from, to) of the stream was captured. */
function captured(st: Stream, from: number, to: number): boolean {
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && to <= st.data.length && from < to)) return false;
  for (let k = from; k < to; k++) if (st.have[k] !== 1) return false;
  return true;
}

/**
 * Place each divergence on a concrete connection / datagram and state its ground truth.
 * Causes (checked against the engine in test/replay/workload-kinds.test.ts):
 * - byte, extra inside the stream: the two sides differ at `offset` → `payload`.
 * - extra appended at the stream end: the primary's FIN sits where the secondary still has
 *   bytes → `length`.
 * - missing, late, silent: the primary's bytes at `offset` find no secondary bytes within
 *   compare_timeout → `timeout`.
 */
function resolveDivergences(
  diverge: readonly DivergeSpec[], tcpOrder: TcpConn[], udpOrder: UdpFlow[], streams: Map<TcpConn, Stream>,
): { truth: GroundTruth[]; edits: Map<TcpConn, TcpEdits>; udpFlips: Map<UdpFlow, number[]> } {
  const truth: GroundTruth[] = [];
  const edits = new Map<TcpConn, TcpEdits>();
  const udpFlips = new Map<UdpFlow, number[]>();
  const editsOf = (c: TcpConn): TcpEdits => edits.get(c) ?? edits.set(c, { flips: [] }).get(c)!;
  const structural = (e: TcpEdits | undefined): boolean => e !== undefined && (e.missing ?? e.extra ?? e.late ?? e.silent) !== undefined;
  for (const d of diverge) {
    if (d.kind === 'udp') {
      const f = d.flow !== undefined ? udpOrder.find((x) => x.flow === d.flow) : udpOrder.find((x) => x.pkts.some((p) => p.payload.length > 0));
      const idx = d.index ?? 0;
      if (f === undefined || !(Number.isInteger(idx) && idx >= 0 && idx < f.pkts.length) || f.pkts[idx]!.payload.length === 0) {
        throw bad(`no UDP server datagram ${idx} with payload in ${d.flow ?? 'any flow'}`);
      }
      (udpFlips.get(f) ?? udpFlips.set(f, []).get(f)!).push(idx);
      truth.push({ kind: 'udp', flow: f.flow, offset: idx, offsetUnit: 'datagram', primaryTimeMs: timeMs(f.pkts[idx]!.frame), cause: 'payload' });
      continue;
    }
    const len = d.kind === 'missing' || d.kind === 'extra' ? d.length : 1;
    if (!(Number.isInteger(len) && len >= 1)) throw bad(`${d.kind} divergence length ${len} must be a positive integer`);
    // extra may sit right after the last byte (appended); the others need captured bytes there.
    const fits = (st: Stream): boolean => (d.kind === 'extra'
      ? Number.isInteger(d.offset) && d.offset >= 0 && (d.offset === st.data.length ? st.data.length > 0 : captured(st, d.offset, d.offset + 1))
      : captured(st, d.offset, d.offset + len));
    const what = d.kind === 'missing' ? `captured server bytes [${d.offset}, ${d.offset + len})` : `a captured server byte at offset ${d.offset}`;
    const inc = d.incarnation ?? 1;
    if (!(Number.isInteger(inc) && inc >= 1)) throw bad(`incarnation ${inc} must be an integer >= 1`);
    if (d.flow === undefined && inc !== 1) throw bad(`incarnation #${inc} needs a flow`);
    const named = d.flow !== undefined ? tcpOrder.filter((x) => x.flow === d.flow) : [];
    if (d.flow !== undefined && named.length > 0 && inc > named.length) {
      throw bad(`${d.flow} has ${named.length} connection${named.length === 1 ? '' : 's'} on its 4-tuple, no #${inc}`);
    }
    const c = d.flow !== undefined ? named[inc - 1] : tcpOrder.find((x) => fits(streams.get(x)!) && (d.kind === 'byte' ? !structural(edits.get(x)) : edits.get(x) === undefined));
    if (c === undefined) throw bad(`no TCP connection ${d.flow ?? `with ${what}`} for a ${d.kind} divergence`);
    const st = streams.get(c)!;
    if (!fits(st)) throw bad(`${d.kind} divergence at offset ${d.offset}${d.kind === 'missing' ? `+${len}` : ''} does not fit ${c.flow}'s ${st.data.length}-byte server stream (needs ${what})`);
    const e = editsOf(c);
    if (d.kind !== 'byte' && (structural(e) || (e.flips.length > 0))) throw bad(`${c.flow} already has a divergence: a ${d.kind} divergence must be the only one on its connection`);
    if (d.kind === 'byte' && structural(e)) throw bad(`${c.flow} already has a ${Object.keys(e).find((k) => k !== 'flips')} divergence: it must be the only one on its connection`);
    // Which connection on its 4-tuple: the one asked for, or (no flow named) counted here.
    const incarnation = d.flow !== undefined ? inc : tcpOrder.filter((x) => x.flow === c.flow).indexOf(c) + 1;
    const gt = {
      kind: d.kind, flow: c.flow, ...(incarnation > 1 ? { incarnation } : {}), offset: d.offset, offsetUnit: 'byte' as const, primaryTimeMs: tcpTimeMs(c, d.offset),
    };
    switch (d.kind) {
      case 'byte':
        e.flips.push(d.offset);
        truth.push({ ...gt, cause: 'payload' });
        break;
      case 'missing':
        e.missing = { offset: d.offset, length: len };
        truth.push({ ...gt, length: len, cause: 'timeout' });
        break;
      case 'extra': {
        // Every inserted byte differs from the primary's byte it displaces, so the first
        // difference is at `offset` itself.
        const bytes = Buffer.alloc(len);
        for (let i = 0; i < len; i++) bytes[i] = (d.offset + i < st.data.length ? st.data[d.offset + i]! : 0x0a) ^ 0xa5;
        e.extra = { offset: d.offset, bytes };
        truth.push({ ...gt, length: len, cause: d.offset === st.data.length ? 'length' : 'payload' });
        break;
      }
      case 'late': {
        const delayMs = d.delayMs ?? LATE_DEFAULT_MS;
        if (!(Number.isInteger(delayMs) && delayMs >= 1)) throw bad(`late divergence delay ${delayMs} must be a positive integer (ms)`);
        e.late = { offset: d.offset, delayMs };
        truth.push({ ...gt, delayMs, cause: 'timeout' });
        break;
      }
      case 'silent':
        e.silent = { offset: d.offset };
        truth.push({ ...gt, cause: 'timeout' });
        break;
    }
  }
  return { truth, edits, udpFlips };
}
