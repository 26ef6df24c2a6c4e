/**
 * Wireshark as the oracle for `colo-proxy flows`: tshark's own stream numbering, its
 * "Follow TCP stream" reassembly (`-z follow,tcp,raw,N`, batched), and its per-segment
 * dissection (relative sequence numbers and payload bytes), which the tests reassemble with
 * a deliberately naive first-wins model to check every captured byte's position.
 */
import { tshark } from '../helpers/tools.js';

/** `"IP:PORT"` with IPv6 in brackets: the text our reports use. */
export function endpoint(ip: string, port: string | number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export const TH_FIN = 0x01;
export const TH_SYN = 0x02;
export const TH_RST = 0x04;

export interface TsharkSegment {
  frame: number;
  src: string;
  dst: string;
  flags: number;
  /** tshark's relative sequence number (relative to the first one it saw in that direction). */
  relSeq: number;
  /** TCP payload length the header claims. */
  len: number;
  /** Captured payload bytes. */
  payload: Buffer;
}

export interface TsharkStream {
  index: number;
  /** Source and destination of the stream's first frame. */
  first: [string, string];
  /** Frames of the stream whose outermost transport is this TCP connection, in capture order. */
  segments: TsharkSegment[];
}

/**
 * tshark's TCP streams of `file`, with their segments. Only frames whose OUTERMOST transport
 * header is TCP count: tshark also dissects TCP headers quoted inside ICMP errors and packets
 * sampled inside sFlow datagrams and gives them stream numbers, but those are not traffic of
 * the connection (our engine, rightly, sees an ICMP or UDP packet there).
 */
export function tsharkStreams(file: string): Map<number, TsharkStream> {
  const out = tshark([
    '-r', file, '-Y', 'tcp', '-T', 'fields', '-E', 'occurrence=f',
    '-e', 'frame.number', '-e', 'frame.protocols', '-e', 'tcp.stream',
    '-e', 'ip.src', '-e', 'ipv6.src', '-e', 'tcp.srcport', '-e', 'ip.dst', '-e', 'ipv6.dst', '-e', 'tcp.dstport',
    '-e', 'tcp.flags', '-e', 'tcp.seq', '-e', 'tcp.len', '-e', 'tcp.payload',
  ]);
  const streams = new Map<number, TsharkStream>();
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const [frame, protos, stream, ip4s, ip6s, sport, ip4d, ip6d, dport, flags, seq, len, payload] = line.split('\t') as string[];
    const firstL4 = protos!.split(':').find((t) => t === 'tcp' || t === 'udp' || t === 'icmp' || t === 'icmpv6');
    if (firstL4 !== 'tcp') continue;
    const src = endpoint(ip4s || ip6s!, sport!);
    const dst = endpoint(ip4d || ip6d!, dport!);
    const idx = Number(stream);
    let s = streams.get(idx);
    if (s === undefined) {
      s = { index: idx, first: [src, dst], segments: [] };
      streams.set(idx, s);
    }
    s.segments.push({ frame: Number(frame), src, dst, flags: Number(flags), relSeq: Number(seq), len: Number(len), payload: Buffer.from(payload ?? '', 'hex') });
  }
  return streams;
}

export interface FollowResult {
  /** Bytes sent by the stream's first frame's source / by the other side, tshark's missing-data markers included. */
  fromFirst: Buffer;
  fromOther: Buffer;
}

/** `tshark -z follow,tcp,raw,N` for every stream in `ids`, `batch` follows per tshark run. */
export function tsharkFollow(file: string, ids: number[], batch = 200): Map<number, FollowResult> {
  const res = new Map<number, FollowResult>();
  for (let i = 0; i < ids.length; i += batch) {
    const args = ['-r', file, '-q'];
    for (const id of ids.slice(i, i + batch)) args.push('-z', `follow,tcp,raw,${id}`);
    let cur: { a: Buffer[]; b: Buffer[] } | null = null;
    let curId = -1;
    const flush = () => {
      if (cur !== null) res.set(curId, { fromFirst: Buffer.concat(cur.a), fromOther: Buffer.concat(cur.b) });
    };
    // Each follow block: "Filter: tcp.stream eq N", "Node 0/1" lines, then hex lines (tab-led = node 1 → node 0), "====".
    // tshark prints the blocks in reverse order of the -z options; they are keyed by their Filter line.
    for (const line of tshark(args).split('\n')) {
      const m = /^Filter: tcp\.stream eq (\d+)$/.exec(line);
      if (m) {
        flush();
        cur = { a: [], b: [] };
        curId = Number(m[1]);
        continue;
      }
      if (cur === null || line === '' || line.startsWith('=') || line.startsWith('Follow:') || line.startsWith('Node ')) continue;
      if (line.startsWith('\t')) cur.b.push(Buffer.from(line.slice(1), 'hex'));
      else cur.a.push(Buffer.from(line, 'hex'));
    }
    flush();
  }
  return res;
}

export interface MissingMarker {
  /** Offset in the stripped bytes where tshark reported missing data. */
  fileOffset: number;
  len: number;
}

/**
 * Remove the "[N bytes missing in capture file]" markers (NUL-terminated) tshark writes into
 * a followed stream where the receiver acknowledged bytes that are not in the capture.
 */
export function stripMissingMarkers(b: Buffer): { bytes: Buffer; markers: MissingMarker[] } {
  const s = b.toString('latin1');
  const re = /\[(\d+) bytes missing in capture file\]\x00/g;
  const markers: MissingMarker[] = [];
  let out = '';
  let last = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    out += s.slice(last, m.index);
    markers.push({ fileOffset: out.length, len: Number(m[1]) });
    last = m.index + m[0].length;
  }
  out += s.slice(last);
  return { bytes: Buffer.from(out, 'latin1'), markers };
}

export interface ModelStream {
  /** Bytes at their stream offsets (holes are 0 and marked absent in `have`). */
  bytes: Buffer;
  have: Uint8Array;
  /** Stream length: the FIN's offset when one was seen, else the end of the highest byte. */
  length: number;
}

/**
 * A naive reassembly of one direction from tshark's dissected segments: stream offset 0 is
 * the byte after the SYN (or, without a SYN, the first segment carrying data or FIN), each
 * segment's captured payload lands at (relative seq − base), the FIRST segment (in capture
 * order) to cover a byte decides its value, nothing goes past the first FIN, and segments
 * from frame `stopFrame` on are ignored (the connection was reset there). Quadratic-free:
 * just a byte array, fine for the captures' stream sizes.
 */
export function modelStream(segs: TsharkSegment[], stopFrame = Infinity): ModelStream {
  let base: number | null = null;
  for (const s of segs) {
    if (s.frame >= stopFrame) break;
    if ((s.flags & TH_SYN) !== 0) {
      base = s.relSeq + 1;
      break;
    }
    if (s.len > 0 || (s.flags & TH_FIN) !== 0) {
      base = s.relSeq;
      break;
    }
  }
  if (base === null) return { bytes: Buffer.alloc(0), have: new Uint8Array(0), length: 0 };
  let fin = -1;
  let hi = 0;
  const placed: { off: number; p: Buffer }[] = [];
  for (const s of segs) {
    if (s.frame >= stopFrame) break;
    const syn = (s.flags & TH_SYN) !== 0 ? 1 : 0;
    const off = s.relSeq + syn - base;
    if ((s.flags & TH_FIN) !== 0 && fin < 0) fin = off + s.len;
    if (s.payload.length > 0) {
      placed.push({ off, p: s.payload });
      if (off + s.payload.length > hi) hi = off + s.payload.length;
    }
  }
  const length = fin >= 0 ? fin : hi;
  const bytes = Buffer.alloc(length);
  const have = new Uint8Array(length);
  for (const { off, p } of placed) {
    for (let i = 0; i < p.length; i++) {
      const o = off + i;
      if (o < 0 || o >= length || have[o] === 1) continue;
      have[o] = 1;
      bytes[o] = p[i]!;
    }
  }
  return { bytes, have, length };
}
