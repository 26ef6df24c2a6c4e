/**
 * Decode rate of `decodeFrame` over every frame of http-packets.pcap and many-protocols.pcap,
 * preloaded into one buffer with an offsets array so only decoding is timed. Baselines in the
 * same run:
 * - "read ethertype only": touches 2 bytes per frame; the floor for any per-frame loop.
 * - "allocating decoder": the usual JS way (per frame a subarray, a DataView and a result
 *   object; Ethernet/VLAN/IPv4/IPv6/TCP/UDP fixed headers only, no options, no validation
 *   beyond lengths). It does strictly less work than decodeFrame.
 * Checksum throughput: `internetChecksum` over the same frames against a plain byte-at-a-time
 * sum loop and a textbook RFC 1071 loop (one 16-bit word at a time, fold every step).
 */
import { join } from 'node:path';
import { decodeFrame } from '../src/packet/decode.js';
import { internetChecksum, verifyIpv4Header, verifyL4Checksum } from '../src/packet/checksum.js';
import { LAYER_IPV4 } from '../src/packet/layer.js';
import { PacketView } from '../src/packet/view.js';
import { timedMedian, type BenchRow } from './harness.js';
import { sharedCapturesDir } from './paths.js';
import { loadCorpus } from './corpus.js';




interface NaiveResult {
  etherType: number;
  src: Uint8Array | null;
  dst: Uint8Array | null;
  proto: number;
  sport: number;
  dport: number;
  payload: Uint8Array | null;
}

/** The allocating baseline: what a straightforward decoder written with DataView looks like. */
function naiveDecode(buf: Uint8Array, off: number, len: number): NaiveResult | null {
  const f = buf.subarray(off, off + len);
  const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  if (f.length < 14) return null;
  let p = 12;
  let type = dv.getUint16(p);
  p += 2;
  while ((type === 0x8100 || type === 0x88a8) && p + 4 <= f.length) {
    type = dv.getUint16(p + 2);
    p += 4;
  }
  const r: NaiveResult = { etherType: type, src: null, dst: null, proto: 0, sport: 0, dport: 0, payload: null };
  let l4 = -1;
  let end = f.length;
  if (type === 0x0800 && p + 20 <= f.length) {
    const hl = (f[p]! & 15) * 4;
    end = Math.min(end, p + dv.getUint16(p + 2));
    r.proto = f[p + 9]!;
    r.src = f.subarray(p + 12, p + 16);
    r.dst = f.subarray(p + 16, p + 20);
    l4 = p + hl;
  } else if (type === 0x86dd && p + 40 <= f.length) {
    end = Math.min(end, p + 40 + dv.getUint16(p + 4));
    r.proto = f[p + 6]!;
    r.src = f.subarray(p + 8, p + 24);
    r.dst = f.subarray(p + 24, p + 40);
    l4 = p + 40;
  }
  if (l4 >= 0 && (r.proto === 6 || r.proto === 17) && l4 + 8 <= end) {
    r.sport = dv.getUint16(l4);
    r.dport = dv.getUint16(l4 + 2);
    const hl = r.proto === 6 && l4 + 20 <= end ? (f[l4 + 12]! >> 4) * 4 : 8;
    r.payload = f.subarray(Math.min(l4 + hl, end), end);
  }
  return r;
}

/** Plain byte-at-a-time sum: what a first attempt at "sum the bytes" costs in JS. */
function sumBytes(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  const end = off + len;
  for (let i = off; i < end; i++) s += b[i]!;
  return s;
}

/** RFC 1071 the textbook way: one 16-bit word at a time, folding as it goes. */
function textbookChecksum(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  const end = off + len;
  let i = off;
  for (; i + 1 < end; i += 2) {
    s += (b[i]! << 8) | b[i + 1]!;
    s = (s & 0xffff) + (s >>> 16);
  }
  if (i < end) {
    s += b[i]! << 8;
    s = (s & 0xffff) + (s >>> 16);
  }
  return ~s & 0xffff;
}

export async function run(): Promise<BenchRow[]> {
  const pp = sharedCapturesDir();
  const c = loadCorpus([join(pp, 'http-packets.pcap'), join(pp, 'many-protocols.pcap')]);
  const { buf, offs, lens } = c;
  const n = offs.length;
  const v = new PacketView();
  let sink = 0;

  const floor = timedMedian(() => {
    for (let i = 0; i < n; i++) {
      const o = offs[i]! + 12;
      sink += (buf[o]! << 8) | buf[o + 1]!;
    }
  }, n);
  const naive = timedMedian(() => {
    for (let i = 0; i < n; i++) {
      const r = naiveDecode(buf, offs[i]!, lens[i]!);
      if (r !== null) sink += r.sport + r.etherType;
    }
  }, n);
  const ours = timedMedian(() => {
    for (let i = 0; i < n; i++) {
      decodeFrame(v, buf, offs[i]!, lens[i]!);
      sink += v.srcPort + v.etherType + v.status;
    }
  }, n);
  const verified = timedMedian(() => {
    for (let i = 0; i < n; i++) {
      decodeFrame(v, buf, offs[i]!, lens[i]!);
      if ((v.layers & LAYER_IPV4) !== 0 && verifyIpv4Header(v)) sink++;
      sink += verifyL4Checksum(v);
    }
  }, n);

  const byteSum = timedMedian(() => {
    for (let i = 0; i < n; i++) sink += sumBytes(buf, offs[i]!, lens[i]!);
  }, n);
  const textbook = timedMedian(() => {
    for (let i = 0; i < n; i++) sink += textbookChecksum(buf, offs[i]!, lens[i]!);
  }, n);
  const fast = timedMedian(() => {
    for (let i = 0; i < n; i++) sink += internetChecksum(buf, offs[i]!, lens[i]!);
  }, n);
  if (sink === -1) throw new Error('unreachable');

  const perFrame = c.bytes / n;
  const s = 'decode';
  const k = 'checksum';
  const note = `${n} frames, ${(c.bytes / 1e6).toFixed(1)} MB (http-packets + many-protocols)`;
  return [
    { suite: s, name: 'read ethertype only (floor)', opsPerSec: floor.opsPerSec, unit: 'frame', note },
    { suite: s, name: 'allocating decoder', opsPerSec: naive.opsPerSec, unit: 'frame', baseline: 'read ethertype only (floor)', note: 'subarray+DataView+object per frame, fixed headers only' },
    { suite: s, name: 'decodeFrame', opsPerSec: ours.opsPerSec, unit: 'frame', baseline: 'allocating decoder', note: 'all layers, TCP options, no allocation' },
    { suite: s, name: 'decodeFrame + verify IPv4/L4 checksums', opsPerSec: verified.opsPerSec, unit: 'frame', bytesPerSec: verified.opsPerSec * perFrame, baseline: 'decodeFrame' },
    { suite: k, name: 'byte-at-a-time sum loop', opsPerSec: byteSum.opsPerSec, unit: 'frame', bytesPerSec: byteSum.opsPerSec * perFrame },
    { suite: k, name: 'textbook RFC 1071 loop', opsPerSec: textbook.opsPerSec, unit: 'frame', bytesPerSec: textbook.opsPerSec * perFrame, baseline: 'byte-at-a-time sum loop' },
    { suite: k, name: 'internetChecksum', opsPerSec: fast.opsPerSec, unit: 'frame', bytesPerSec: fast.opsPerSec * perFrame, baseline: 'textbook RFC 1071 loop' },
  ];
}
