/**
 * Micro-benchmarks with the `benchmark` package, each cross-checked against a plain timed loop
 * of the same operation in the same run (benchmark.js distorted tight JS loops about 3× in the
 * toolchain notes). One op = one call. The "plain loop" row is the baseline; the ratio shows
 * how far benchmark.js's harness moves the figure.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFrame } from '../src/packet/decode.js';
import { PacketView } from '../src/packet/view.js';
import { PacketPool } from '../src/packet/pool.js';
import { FrameDecoder } from '../src/wire/decoder.js';
import { encodeFrameHeader } from '../src/wire/framing.js';
import { timedMedian, viaBenchmarkJs, type BenchRow } from './harness.js';
import { sharedCapturesDir } from './paths.js';

interface Case {
  name: string;
  op: () => void;
  bytesPerOp?: number;
}

export async function run(): Promise<BenchRow[]> {
  // A real 1514-byte TCP segment: the first full-size frame of http-packets.pcap.
  const file = readFileSync(join(sharedCapturesDir(), 'http-packets.pcap'));
  let off = 24;
  let frameOff = -1;
  let frameLen = 0;
  while (off + 16 <= file.length) {
    const cap = file.readUInt32LE(off + 8);
    if (cap >= 1500) {
      frameOff = off + 16;
      frameLen = cap;
      break;
    }
    off += 16 + cap;
  }
  if (frameOff < 0) throw new Error('no full-size frame found in http-packets.pcap');
  const frame = new Uint8Array(file.subarray(frameOff, frameOff + frameLen));

  const v = new PacketView();
  const pool = new PacketPool();
  let sink = 0;
  // One framed copy of the frame, decoded again and again.
  const framed = Buffer.alloc(4 + frameLen);
  encodeFrameHeader(framed, 0, frameLen, 0, false);
  framed.set(frame, 4);
  const dec = new FrameDecoder({
    vnetHdr: false,
    pool,
    onFrame: (h) => {
      sink += pool.length(h);
      pool.release(h);
    },
    onError: (e) => {
      throw e;
    },
  });
  const header = Buffer.alloc(8);

  const cases: Case[] = [
    { name: 'decodeFrame (1514 B TCP)', op: () => { sink += decodeFrame(v, frame, 0, frameLen); } },
    { name: 'pool acquire+release', op: () => { pool.release(pool.acquire(1514)); } },
    { name: 'FrameDecoder.push (1 frame)', op: () => { dec.push(framed); }, bytesPerOp: framed.length },
    { name: 'encodeFrameHeader', op: () => { sink += encodeFrameHeader(header, 0, frameLen, 12, true); } },
  ];
  const rows: BenchRow[] = [];
  for (const c of cases) {
    const N = 10_000;
    const plain = timedMedian(() => {
      for (let i = 0; i < N; i++) c.op();
    }, N);
    const bjs = viaBenchmarkJs(c.name, c.op);
    const base = `${c.name} · plain loop`;
    rows.push({ suite: 'micro', name: base, opsPerSec: plain.opsPerSec, unit: 'op', ...(c.bytesPerOp ? { bytesPerSec: plain.opsPerSec * c.bytesPerOp } : {}) });
    rows.push({ suite: 'micro', name: `${c.name} · benchmark.js`, opsPerSec: bjs, unit: 'op', baseline: base });
  }
  if (sink === -1 || pool.inUse !== 0) throw new Error('micro bench leaked');
  return rows;
}
