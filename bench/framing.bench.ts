/**
 * QEMU chardev framing: decode and encode rates of src/wire against the naive code most
 * projects write (Buffer.concat of leftovers, one Buffer per frame, one write per frame),
 * measured in the same run, plus a loopback TCP round trip (writer → socket → decoder).
 */
import { createServer, connect } from 'node:net';
import type { Socket } from 'node:net';
import { PacketPool } from '../src/packet/pool.js';
import { FrameDecoder } from '../src/wire/decoder.js';
import { FramedChannel } from '../src/wire/connection.js';
import { FrameWriter } from '../src/wire/writer.js';
import { medianOf, timedMedian, type BenchRow } from './harness.js';

const CHUNK = 65_536;

/** The usual hand-rolled decoder: concat leftovers, one view object per frame. */
class NaiveDecoder {
  #left: Buffer | null = null;
  constructor(private readonly onFrame: (frame: Buffer) => void) {}
  push(chunk: Buffer): void {
    const buf = this.#left === null ? chunk : Buffer.concat([this.#left, chunk]);
    let p = 0;
    while (buf.length - p >= 4) {
      const len = buf.readUInt32BE(p);
      if (buf.length - p - 4 < len) break;
      this.onFrame(buf.subarray(p + 4, p + 4 + len));
      p += 4 + len;
    }
    this.#left = p < buf.length ? buf.subarray(p) : null;
  }
}

/** The usual encoder: a fresh Buffer per frame. */
function naiveEncode(data: Buffer, off: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(4 + len);
  b.writeUInt32BE(len, 0);
  data.copy(b, 4, off, off + len);
  return b;
}

function encodeStream(frameLen: number, totalBytes: number): { chunks: Buffer[]; frames: number; bytes: number } {
  const per = 4 + frameLen;
  const frames = Math.floor(totalBytes / per);
  const s = Buffer.allocUnsafe(frames * per);
  for (let i = 0; i < frames; i++) {
    s.writeUInt32BE(frameLen, i * per);
    s.fill(i & 0xff, i * per + 4, (i + 1) * per);
  }
  const chunks: Buffer[] = [];
  for (let o = 0; o < s.length; o += CHUNK) chunks.push(s.subarray(o, Math.min(o + CHUNK, s.length)));
  return { chunks, frames, bytes: s.length };
}

function decodeRows(frameLen: number): BenchRow[] {
  const pool = new PacketPool();
  const { chunks, frames, bytes } = encodeStream(frameLen, 8 << 20);
  let seen = 0;
  const dec = new FrameDecoder({
    vnetHdr: false,
    pool,
    onFrame: (h) => {
      seen++;
      pool.release(h);
    },
    onError: (e) => {
      throw e;
    },
  });
  const ours = timedMedian(() => {
    dec.reset();
    for (const c of chunks) dec.push(c);
  }, frames);
  let naiveSeen = 0;
  const naive = timedMedian(() => {
    const d = new NaiveDecoder((f) => {
      naiveSeen += f.length > 0 ? 1 : 0;
    });
    for (const c of chunks) d.push(c);
  }, frames);
  // The same, but copying each frame out (as code must when frames outlive the chunk's owner).
  let keep = 0;
  const naiveCopy = timedMedian(() => {
    const d = new NaiveDecoder((f) => {
      keep += Buffer.from(f)[0]! >= 0 ? 1 : 0;
    });
    for (const c of chunks) d.push(c);
  }, frames);
  if (seen % frames !== 0 || naiveSeen % frames !== 0 || keep % frames !== 0 || pool.inUse !== 0) {
    throw new Error('framing decode bench miscounted');
  }
  const s = 'framing';
  const base = `naive decode ${frameLen} B`;
  return [
    { suite: s, name: base, opsPerSec: naive.opsPerSec, unit: 'frame', bytesPerSec: (naive.opsPerSec * bytes) / frames, note: 'concat leftovers + subarray view/frame, no copy' },
    {
      suite: s,
      name: `naive decode+copy ${frameLen} B`,
      opsPerSec: naiveCopy.opsPerSec,
      unit: 'frame',
      bytesPerSec: (naiveCopy.opsPerSec * bytes) / frames,
      baseline: base,
      note: 'as above + Buffer.from per frame',
    },
    {
      suite: s,
      name: `FrameDecoder ${frameLen} B`,
      opsPerSec: ours.opsPerSec,
      unit: 'frame',
      bytesPerSec: (ours.opsPerSec * bytes) / frames,
      baseline: base,
      note: '64 KiB chunks, copy into pool',
    },
  ];
}

function encodeRows(frameLen: number): BenchRow[] {
  const src = Buffer.alloc(frameLen, 9);
  const N = 20_000;
  let out = 0;
  const w = new FrameWriter({
    vnetHdr: false,
    autoFlush: false,
    sink: (c, done) => {
      out += c.length;
      done();
      return true;
    },
  });
  const ours = timedMedian(() => {
    for (let i = 0; i < N; i++) w.writeFrame(src, 0, frameLen);
    w.flush();
  }, N);
  const naive = timedMedian(() => {
    for (let i = 0; i < N; i++) out += naiveEncode(src, 0, frameLen).length;
  }, N);
  if (out === 0) throw new Error('encode bench produced nothing');
  const s = 'framing';
  const base = `naive encode ${frameLen} B`;
  const per = frameLen + 4;
  return [
    { suite: s, name: base, opsPerSec: naive.opsPerSec, unit: 'frame', bytesPerSec: naive.opsPerSec * per, note: 'allocUnsafe + copy per frame' },
    { suite: s, name: `FrameWriter ${frameLen} B`, opsPerSec: ours.opsPerSec, unit: 'frame', bytesPerSec: ours.opsPerSec * per, baseline: base, note: 'packed 64 KiB chunks' },
  ];
}

/** Frames/s through a loopback TCP socket: FrameWriter → socket → FramedChannel (one process). */
async function socketOurs(frameLen: number, n: number): Promise<number> {
  const pool = new PacketPool();
  let got = 0;
  let finish: () => void = () => {};
  const done = new Promise<void>((r) => (finish = r));
  const rx = new FramedChannel({
    endpoint: 'tcp:127.0.0.1:0,server',
    vnetHdr: false,
    pool,
    onFrame: (h) => {
      pool.release(h);
      if (++got === n) finish();
    },
  });
  await rx.start();
  const ep = rx.address;
  let drained: () => void = () => {};
  const tx = new FramedChannel({
    endpoint: `tcp:127.0.0.1:${ep.kind === 'tcp' ? ep.port : 0}`,
    vnetHdr: false,
    pool,
    onFrame: (h) => pool.release(h),
    onDrain: () => drained(),
  });
  await tx.start();
  await tx.whenConnected();
  await rx.whenConnected();
  const src = Buffer.alloc(frameLen, 5);
  const t0 = performance.now();
  let sent = 0;
  while (sent < n) {
    // Produce a batch per macrotask, and honour backpressure.
    const end = Math.min(n, sent + 2048);
    while (sent < end) {
      if (!tx.writeFrame(src, 0, frameLen)) throw new Error('socket bench: frame refused or dropped');
      sent++;
    }
    if (tx.backpressured) await new Promise<void>((r) => (drained = r));
    else await new Promise<void>((r) => setImmediate(r));
  }
  await done;
  const ms = performance.now() - t0;
  await tx.close();
  await rx.close();
  return (n * 1000) / ms;
}

async function socketNaive(frameLen: number, n: number): Promise<number> {
  let got = 0;
  let finish: () => void = () => {};
  const done = new Promise<void>((r) => (finish = r));
  const srv = createServer((s) => {
    const d = new NaiveDecoder(() => {
      if (++got === n) finish();
    });
    s.on('data', (c: Buffer) => d.push(c));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const sock = await new Promise<Socket>((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
  });
  sock.setNoDelay(true);
  const src = Buffer.alloc(frameLen, 5);
  const t0 = performance.now();
  let sent = 0;
  while (sent < n) {
    const end = Math.min(n, sent + 2048);
    let ok = true;
    while (sent < end) {
      ok = sock.write(naiveEncode(src, 0, frameLen));
      sent++;
    }
    if (!ok) await new Promise<void>((r) => sock.once('drain', () => r()));
    else await new Promise<void>((r) => setImmediate(r));
  }
  await done;
  const ms = performance.now() - t0;
  sock.destroy();
  await new Promise<void>((r) => srv.close(() => r()));
  return (n * 1000) / ms;
}

async function socketRows(frameLen: number, n: number): Promise<BenchRow[]> {
  await socketOurs(frameLen, Math.min(n, 20_000)); // warm-up
  const ours = await medianOf(() => socketOurs(frameLen, n));
  const naive = await medianOf(() => socketNaive(frameLen, n));
  const s = 'framing';
  const base = `naive socket ${frameLen} B`;
  const per = frameLen + 4;
  return [
    { suite: s, name: base, opsPerSec: naive, unit: 'frame', bytesPerSec: naive * per, note: 'write/frame + naive decoder, loopback TCP' },
    { suite: s, name: `socket round trip ${frameLen} B`, opsPerSec: ours, unit: 'frame', bytesPerSec: ours * per, baseline: base, note: 'FrameWriter → TCP → FramedChannel' },
  ];
}

export async function run(): Promise<BenchRow[]> {
  return [
    ...decodeRows(64),
    ...decodeRows(1400),
    ...encodeRows(64),
    ...encodeRows(1400),
    ...(await socketRows(64, 200_000)),
    ...(await socketRows(1400, 100_000)),
  ];
}
