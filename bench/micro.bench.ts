/**
 * Micro-benchmarks with the `benchmark` package, each cross-checked against a plain timed loop
 * of the same operation in the same run (benchmark.js distorted tight JS loops about 3× in the
 * toolchain notes). One op = one call. The "plain loop" row is the baseline; the ratio shows
 * how far benchmark.js's harness moves the figure.
 *
 * - stream compare per KiB: what the compare engine does with 1 KiB of matched TCP payload
 *   when one side is ahead — ChunkQueue.append (zero copy: the pool slot is retained),
 *   ChunkQueue.compare against the other side's equal bytes, ChunkQueue.consume (slot released);
 * - reassembly per segment: TcpReassembler.segment of one in-order 1448-byte segment from a
 *   pool slot, delivered at once to a counting sink (a fresh connection every 4096 segments).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFrame } from '../src/packet/decode.js';
import { PacketView } from '../src/packet/view.js';
import { PacketPool } from '../src/packet/pool.js';
import { FrameDecoder } from '../src/wire/decoder.js';
import { encodeFrameHeader } from '../src/wire/framing.js';
import { ChunkQueue } from '../src/compare/chunk-queue.js';
import { TcpReassembler } from '../src/flow/tcp-reassembler.js';
import { ReassemblyBudget } from '../src/flow/tcp-budget.js';
import type { Dir, StreamSink } from '../src/flow/tcp-types.js';
import { timedMedian, viaBenchmarkJs, type BenchRow } from './harness.js';
import { openStream } from './tcp-stream-setup.js';
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

  // Stream compare: 1 KiB of payload held zero copy in a pool slot, compared with an equal copy.
  const KIB = 1024;
  const cmpPool = new PacketPool({ classes: [{ slotSize: 2048, slots: 16 }] });
  const slot = cmpPool.acquire(KIB + 66);
  const slotOff = cmpPool.offset(slot) + 66;
  for (let i = 0; i < KIB; i++) cmpPool.buffer(slot)[slotOff + i] = (i * 131) & 0xff;
  const other = Buffer.from(cmpPool.buffer(slot).subarray(slotOff, slotOff + KIB));
  const q = new ChunkQueue(cmpPool);
  const streamCompare = (): void => {
    q.append(cmpPool.buffer(slot), slotOff, KIB, slot);
    if (q.compare(other, 0, KIB) !== -1) throw new Error('stream compare: bytes differ');
    q.consume(KIB);
  };

  // Reassembly: in-order 1448-byte segments from pool slots into a counting sink.
  const MSS = 1448;
  const SEGS = 4096;
  const segPool = new PacketPool({ classes: [{ slotSize: 2048, slots: 64 }] });
  const seg = segPool.acquire(66 + MSS);
  const sinkR: StreamSink & { bytes: number } = {
    bytes: 0,
    data(_d: Dir, _b: Uint8Array, _o: number, len: number) {
      this.bytes += len;
    },
    gap() {},
    end() {},
  };
  const budget = new ReassemblyBudget(64 << 20);
  const sv = new PacketView();
  let r: TcpReassembler | null = null;
  let k = SEGS;
  const ISN = 0xffff0000;
  const reassemble = (): void => {
    if (k === SEGS) {
      r?.close();
      r = new TcpReassembler(segPool, sinkR, {}, budget);
      openStream(r, sv, ISN, MSS);
      sv.buf = segPool.buffer(seg);
      sv.payloadOff = segPool.offset(seg) + 66;
      k = 0;
    }
    sv.tcpSeq = (ISN + 1 + k * MSS) >>> 0;
    k++;
    r!.segment(sv, 0, seg, 0);
  };

  const cases: Case[] = [
    { name: 'decodeFrame (1514 B TCP)', op: () => { sink += decodeFrame(v, frame, 0, frameLen); } },
    { name: 'pool acquire+release', op: () => { pool.release(pool.acquire(1514)); } },
    { name: 'FrameDecoder.push (1 frame)', op: () => { dec.push(framed); }, bytesPerOp: framed.length },
    { name: 'encodeFrameHeader', op: () => { sink += encodeFrameHeader(header, 0, frameLen, 12, true); } },
    { name: 'stream compare (1 KiB, zero copy)', op: streamCompare, bytesPerOp: KIB },
    { name: 'reassembly (1448 B in-order segment)', op: reassemble, bytesPerOp: MSS },
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
  (r as TcpReassembler | null)?.close();
  cmpPool.release(slot);
  segPool.release(seg);
  if (sink === -1 || pool.inUse !== 0 || q.length !== 0 || cmpPool.inUse !== 0 || segPool.inUse !== 0) throw new Error('micro bench leaked');
  if (sinkR.bytes === 0) throw new Error('reassembly delivered nothing');
  return rows;
}
