/**
 * Inputs of the replay bench: a workload directory written by `colo-proxy workload make`
 * (primary.pcap, secondary.pcap, manifest.json with the ground truth) or a plain pair of
 * captures, loaded into memory as FeedFrames (capture time kept for `--pace capture`), plus what
 * the measurement needs, computed once at setup:
 *
 * - `partner[i]`: the secondary frame whose arrival lets primary frame i be released — for TCP
 *   data the first secondary frame of the same connection and direction whose stream progress
 *   (new payload bytes, counted the way lockstep.ts counts them) covers frame i's; for
 *   datagrams the secondary datagram with the same ordinal; -1 for TCP frames without new
 *   payload (ACK, SYN-ACK, FIN, retransmission), whose hold is measured from their own arrival.
 *   Hold latency = release − max(arrival of i, arrival of partner[i]) ("from arrival of the
 *   later of the pair"); a partner that arrived after the release did not cause it and is
 *   ignored.
 * - `FrameMatcher`: finds which primary frame a frame read back from an engine's output is
 *   (socket modes see bytes, not indices): a hash of the length and the first 96 bytes
 *   (headers: addresses, ports, IP ID, sequence number), first-in first-out among equal keys.
 * - `pairedWarmup` / `warmupFrames`: port-shifted copies of the workload's own frames (both
 *   sides as they are, or the primary's on both sides), fed to each engine before the measured
 *   run (JIT, socket buffers), never scored.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { openCapture } from '../capture/reader.js';
import { toEthernet } from '../capture/linktype.js';
import { ColoError } from '../errors.js';
import { decodeFrame } from '../packet/decode.js';
import { LAYER_FRAG, LAYER_IPV4, LAYER_IPV6, LAYER_TCP, LAYER_UDP } from '../packet/layer.js';
import { PacketView } from '../packet/view.js';
import { TCP_ACK, TCP_PSH, TCP_SYN, tcpFrame } from './frame-builder.js';
import type { FeedFrame } from './lockstep.js';
import type { WorkloadManifest } from './workload.js';

export interface BenchWorkload {
  /** Directory name, or "PRIMARY + SECONDARY" file names. */
  name: string;
  primary: FeedFrame[];
  secondary: FeedFrame[];
  /** Null for a plain pair of captures (no ground truth: missed/spurious are not scored). */
  manifest: WorkloadManifest | null;
  /** Per primary frame: see the module comment. */
  partner: Int32Array;
  /** Bytes of all primary / secondary frames (Ethernet frames as captured). */
  primaryBytes: number;
  secondaryBytes: number;
  /** Frames skipped while loading (link type not convertible to Ethernet). */
  skipped: number;
}

function loadFrames(path: string): { frames: FeedFrame[]; bytes: number; skipped: number } {
  const frames: FeedFrame[] = [];
  let bytes = 0;
  let skipped = 0;
  const r = openCapture(path);
  try {
    for (let rec = r.next(); rec !== null; rec = r.next()) {
      if (!toEthernet(rec)) {
        skipped++;
        continue;
      }
      const buf = Buffer.from(rec.buf.subarray(rec.off, rec.off + rec.capLen));
      frames.push({ buf, timeMs: rec.tsSec * 1000 + rec.tsNsec / 1e6 });
      bytes += buf.length;
    }
  } finally {
    r.close();
  }
  return { frames, bytes, skipped };
}

/**
 * Load a workload directory (`dir`) or a plain pair (`pair`). Throws ColoError
 * ERR_INVALID_ARGUMENT naming what is missing.
 */
export function loadBenchWorkload(src: { dir: string } | { primary: string; secondary: string }): BenchWorkload {
  let pPath: string;
  let sPath: string;
  let manifest: WorkloadManifest | null = null;
  let name: string;
  if ('dir' in src) {
    const dir = resolve(src.dir);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ColoError('ERR_INVALID_ARGUMENT', `workload ${src.dir}: not a directory (expected primary.pcap, secondary.pcap, manifest.json)`);
    pPath = join(dir, 'primary.pcap');
    sPath = join(dir, 'secondary.pcap');
    for (const p of [pPath, sPath]) if (!existsSync(p)) throw new ColoError('ERR_INVALID_ARGUMENT', `workload ${src.dir}: ${basename(p)} is missing`);
    const mPath = join(dir, 'manifest.json');
    if (existsSync(mPath)) {
      try {
        manifest = JSON.parse(readFileSync(mPath, 'utf8')) as WorkloadManifest;
      } catch (err) {
        throw new ColoError('ERR_INVALID_ARGUMENT', `workload ${src.dir}: manifest.json is not JSON: ${(err as Error).message}`);
      }
      if (!Array.isArray(manifest.groundTruth)) throw new ColoError('ERR_INVALID_ARGUMENT', `workload ${src.dir}: manifest.json has no groundTruth array`);
    }
    name = basename(dir);
  } else {
    pPath = src.primary;
    sPath = src.secondary;
    name = `${basename(pPath)} + ${basename(sPath)}`;
  }
  const p = loadFrames(pPath);
  const s = loadFrames(sPath);
  if (p.frames.length === 0) throw new ColoError('ERR_INVALID_ARGUMENT', `${pPath}: no frames`);
  return { name, primary: p.frames, secondary: s.frames, manifest, partner: partners(p.frames, s.frames), primaryBytes: p.bytes, secondaryBytes: s.bytes, skipped: p.skipped + s.skipped };
}

/** Directional connection key (setup time: a string) or null when not IP. */
function connKey(v: PacketView, f: FeedFrame): string | null {
  const off = f.off ?? 0;
  decodeFrame(v, f.buf, off, f.len ?? f.buf.length - off, f.vnetHdrLen ?? 0);
  if ((v.layers & (LAYER_IPV4 | LAYER_IPV6)) === 0) return null;
  const b = v.buf;
  const src = Buffer.from(b.subarray(v.ipSrcOff, v.ipSrcOff + v.ipAddrLen)).toString('hex');
  const dst = Buffer.from(b.subarray(v.ipDstOff, v.ipDstOff + v.ipAddrLen)).toString('hex');
  return `${src}:${v.srcPort}>${dst}:${v.dstPort}/${v.ipProto}`;
}

interface SideInfo {
  conn: (string | null)[];
  /** TCP: cumulative new payload bytes after the frame (-1: no new bytes); else the datagram ordinal. */
  prog: Float64Array;
  tcp: Uint8Array;
}

function sideInfo(frames: readonly FeedFrame[], v: PacketView): SideInfo {
  const n = frames.length;
  const info: SideInfo = { conn: new Array<string | null>(n).fill(null), prog: new Float64Array(n).fill(-1), tcp: new Uint8Array(n) };
  const hi = new Map<string, number>();
  const prog = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = connKey(v, frames[i]!);
    info.conn[i] = k;
    if (k === null) continue;
    if ((v.layers & LAYER_TCP) !== 0 && (v.layers & LAYER_FRAG) === 0) {
      info.tcp[i] = 1;
      if (v.payloadLen <= 0) continue;
      const end = (v.tcpSeq + v.payloadLen) >>> 0;
      const h = hi.get(k);
      const d = h === undefined ? v.payloadLen : (end - h) | 0;
      if (d <= 0) continue;
      const p = (prog.get(k) ?? 0) + d;
      prog.set(k, p);
      hi.set(k, end);
      info.prog[i] = p;
    } else {
      const p = prog.get(k) ?? 0;
      info.prog[i] = p;
      prog.set(k, p + 1);
    }
  }
  return info;
}

/** partner[i] for every primary frame (see the module comment). */
export function partners(primary: readonly FeedFrame[], secondary: readonly FeedFrame[]): Int32Array {
  const v = new PacketView();
  const p = sideInfo(primary, v);
  const s = sideInfo(secondary, v);
  // Per connection: the secondary's frames that advanced, in order, with their progress.
  const byConn = new Map<string, { idx: number[]; prog: number[]; tcp: boolean }>();
  for (let j = 0; j < secondary.length; j++) {
    const k = s.conn[j];
    if (k === null || k === undefined || s.prog[j]! < 0) continue;
    let e = byConn.get(k);
    if (e === undefined) byConn.set(k, (e = { idx: [], prog: [], tcp: s.tcp[j] === 1 }));
    e.idx.push(j);
    e.prog.push(s.prog[j]!);
  }
  const out = new Int32Array(primary.length).fill(-1);
  for (let i = 0; i < primary.length; i++) {
    const k = p.conn[i];
    const want = p.prog[i]!;
    if (k === null || k === undefined || want < 0) continue;
    const e = byConn.get(k);
    if (e === undefined) continue;
    if (p.tcp[i] === 1) {
      // First secondary frame whose progress reaches the primary's (binary search: ascending).
      let lo = 0;
      let hi = e.prog.length;
      while (lo < hi) {
        const m = (lo + hi) >>> 1;
        if (e.prog[m]! >= want) hi = m;
        else lo = m + 1;
      }
      if (lo < e.idx.length) out[i] = e.idx[lo]!;
    } else if (want < e.idx.length) out[i] = e.idx[want]!;
  }
  return out;
}

const KEY_BYTES = 96;

/** FNV-1a over the length and the first 96 bytes (hot path for socket readers: no allocation). */
export function frameKey(b: Uint8Array, off: number, len: number): number {
  let h = (0x811c9dc5 ^ len) >>> 0;
  const end = off + Math.min(len, KEY_BYTES);
  for (let i = off; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

/** Maps frames read back from an engine's output to primary frame indices (see the module comment). */
export class FrameMatcher {
  readonly #byKey = new Map<number, { idx: number[]; head: number }>();
  readonly #frames: readonly FeedFrame[];

  constructor(primary: readonly FeedFrame[]) {
    this.#frames = primary;
    for (let i = 0; i < primary.length; i++) {
      const f = primary[i]!;
      const off = f.off ?? 0;
      const k = frameKey(f.buf, off, f.len ?? f.buf.length - off);
      const e = this.#byKey.get(k);
      if (e === undefined) this.#byKey.set(k, { idx: [i], head: 0 });
      else e.idx.push(i);
    }
  }

  /** Index of the primary frame equal to `b[off, off + len)` not matched before, or -1. */
  match(b: Uint8Array, off: number, len: number): number {
    const e = this.#byKey.get(frameKey(b, off, len));
    if (e === undefined) return -1;
    for (let j = e.head; j < e.idx.length; j++) {
      const i = e.idx[j]!;
      if (i < 0 || !this.#equal(i, b, off, len)) continue;
      // Claimed: mark, and advance the head past claimed entries.
      e.idx[j] = -1;
      while (e.head < e.idx.length && e.idx[e.head]! < 0) e.head++;
      return i;
    }
    return -1;
  }

  #equal(i: number, b: Uint8Array, off: number, len: number): boolean {
    const f = this.#frames[i]!;
    const fo = f.off ?? 0;
    if ((f.len ?? f.buf.length - fo) !== len) return false;
    return f.buf.compare(b, off, off + len, fo, fo + len) === 0;
  }
}

/** One's complement 16-bit add. */
function csumAdd(a: number, b: number): number {
  const x = a + b;
  return (x & 0xffff) + (x >>> 16);
}

/** A TCP/UDP frame of a workload and where its ports and L4 checksum are (offsets from the frame's start). */
interface L4Frame {
  f: FeedFrame;
  portOff: number;
  csumOff: number;
}

/** The unfragmented TCP and UDP frames of `frames` (only those can be moved to other ports). */
function l4Frames(frames: readonly FeedFrame[], v: PacketView): L4Frame[] {
  const l4: L4Frame[] = [];
  for (const f of frames) {
    const off = f.off ?? 0;
    decodeFrame(v, f.buf, off, f.len ?? f.buf.length - off, f.vnetHdrLen ?? 0);
    if ((v.layers & LAYER_FRAG) !== 0 || v.l4Off < 0) continue;
    // Offsets relative to the frame's start (l4Off is an index into the buffer).
    const at = v.l4Off - off;
    if ((v.layers & LAYER_TCP) !== 0) l4.push({ f, portOff: at, csumOff: at + 16 });
    else if ((v.layers & LAYER_UDP) !== 0) l4.push({ f, portOff: at, csumOff: at + 6 });
  }
  return l4;
}

/**
 * Per-copy port XOR constants (k << 4, k = 1..4095) whose port pairs meet neither the
 * workload's (`sides`, both directions) nor an earlier copy's, calling `take(x)` for each
 * until it returns false: no warm-up flow ever shares state with a measured flow or another copy.
 */
function copyConstants(sides: readonly (readonly L4Frame[])[], take: (x: number) => boolean): void {
  const pairOf = (f: FeedFrame, portOff: number, x: number): number => {
    const b = f.buf;
    const o = (f.off ?? 0) + portOff;
    return ((((b[o]! << 8) | b[o + 1]!) ^ x) * 65536 + (((b[o + 2]! << 8) | b[o + 3]!) ^ x));
  };
  const rev = (p: number): number => (p % 65536) * 65536 + Math.floor(p / 65536);
  const used = new Set<number>();
  for (const l4 of sides) {
    for (const { f, portOff } of l4) {
      const p = pairOf(f, portOff, 0);
      used.add(p);
      used.add(rev(p));
    }
  }
  for (let k = 1; k < 4096; k++) {
    const x = k << 4;
    const mine = new Set<number>();
    for (const l4 of sides) for (const { f, portOff } of l4) mine.add(pairOf(f, portOff, x));
    if ([...mine].some((p) => used.has(p) || used.has(rev(p)))) continue;
    for (const p of mine) {
      used.add(p);
      used.add(rev(p));
    }
    if (!take(x)) return;
  }
}

/** A copy of `e`'s frame with both ports XORed by `x`, L4 checksum patched (RFC 1624). */
function shiftedCopy(e: L4Frame, x: number): FeedFrame {
  const { f, portOff, csumOff } = e;
  const off = f.off ?? 0;
  const b = Buffer.from(f.buf.subarray(off, off + (f.len ?? f.buf.length - off)));
  const old = b.readUInt32BE(portOff);
  const sp = (old >>> 16) ^ x;
  const dp = (old & 0xffff) ^ x;
  b.writeUInt16BE(sp, portOff);
  b.writeUInt16BE(dp, portOff + 2);
  const hc = b.readUInt16BE(csumOff);
  // UDP checksum 0 means "none" and stays so.
  if (!(csumOff === portOff + 6 && hc === 0)) {
    // HC' = ~(~HC + ~m + m') per changed 16-bit word.
    let c = ~hc & 0xffff;
    c = csumAdd(c, ~(old >>> 16) & 0xffff);
    c = csumAdd(c, sp);
    c = csumAdd(c, ~(old & 0xffff) & 0xffff);
    c = csumAdd(c, dp);
    let nc = ~c & 0xffff;
    if (csumOff === portOff + 6 && nc === 0) nc = 0xffff;
    b.writeUInt16BE(nc, csumOff);
  }
  return { buf: b, vnetHdrLen: f.vnetHdrLen ?? 0 };
}

/**
 * Warm-up traffic: `n` frames per side, made of copies of the workload's own TCP and UDP
 * primary frames with both ports XORed by a per-copy constant (new flows: a constant whose
 * port pairs meet the workload's or an earlier copy's is skipped; L4 checksum patched
 * incrementally, RFC 1624), sent identically on both sides,
 * so the engine's code paths for this traffic are warm (the child process and QEMU start cold
 * every run) without divergences. Up to 4095 copies; with no TCP/UDP frame, synthetic
 * 1448-byte TCP segments instead. Returns the frames of one side (feed
 * them as both).
 */
export function warmupFrames(primary: readonly FeedFrame[], n: number): FeedFrame[] {
  const out: FeedFrame[] = [];
  if (n <= 0) return out;
  const l4 = l4Frames(primary, new PacketView());
  if (l4.length === 0) return syntheticWarmup(n);
  copyConstants([l4], (x) => {
    for (const e of l4) {
      // Both sides get the same frames, so cutting a copy short leaves nothing unmatched.
      if (out.length >= n) break;
      out.push(shiftedCopy(e, x));
    }
    return out.length < n;
  });
  return out;
}

/** One port-shifted copy of a workload: its primary and secondary TCP/UDP frames. */
export interface WarmupCopy {
  primary: FeedFrame[];
  secondary: FeedFrame[];
}

/**
 * Paired warm-up: whole copies of BOTH sides of the workload (TCP/UDP frames, ports XORed by
 * a per-copy constant as in `warmupFrames`, the same constant on both sides so each copy's
 * connections pair up), until the copies hold at least `n` primary frames (up to 4095
 * copies). Unlike `warmupFrames` the secondary keeps its own segmentation, timing skew and
 * retransmissions, so every code path the measured run takes (partial segments, a secondary
 * running ahead, …) is warm in an engine with a JIT. Only for workloads whose sides carry the
 * same data: a copy of a divergence is a divergence. Null when the primary has no TCP/UDP
 * frame (use `warmupFrames`).
 */
export function pairedWarmup(primary: readonly FeedFrame[], secondary: readonly FeedFrame[], n: number): WarmupCopy[] | null {
  const v = new PacketView();
  const lp = l4Frames(primary, v);
  const ls = l4Frames(secondary, v);
  if (lp.length === 0) return null;
  const out: WarmupCopy[] = [];
  let frames = 0;
  if (n <= 0) return out;
  copyConstants([lp, ls], (x) => {
    out.push({ primary: lp.map((e) => shiftedCopy(e, x)), secondary: ls.map((e) => shiftedCopy(e, x)) });
    frames += lp.length;
    return frames < n;
  });
  return out;
}

/** `n` identical 1448-byte TCP segments over 4 connections from 10.255.255.2:80 (a SYN-ACK first on each). */
function syntheticWarmup(n: number): FeedFrame[] {
  const mss = 1448;
  const conns = 4;
  const data = Buffer.alloc(mss, 0x77);
  const base = { src: '10.255.255.2', dst: '10.255.255.1', sport: 80 } as const;
  const isn = 0x1000;
  const out: FeedFrame[] = [];
  for (let c = 0; c < conns; c++) out.push({ buf: tcpFrame({ ...base, dport: 61000 + c, seq: isn, ack: 1, flags: TCP_SYN | TCP_ACK }) });
  for (let i = 0; i < n; i++) {
    const c = i % conns;
    const k = Math.floor(i / conns);
    out.push({ buf: tcpFrame({ ...base, dport: 61000 + c, seq: (isn + 1 + k * mss) >>> 0, ack: 1, flags: TCP_PSH | TCP_ACK, payload: data }) });
  }
  return out;
}
