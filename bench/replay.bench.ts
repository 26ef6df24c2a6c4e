/**
 * The guest-less QEMU colo-compare reference engine (src/replay) fed by the lockstep feeder:
 * released frames/s for identical TCP streams over unix sockets (lab step 4's setting:
 * 1400-byte payloads over 4 connections, and 64-byte payloads), next to a baseline that sends
 * the same frames through the same feeder and framing to an in-process sink, i.e. what the
 * harness alone can move. QEMU's CPU time per wall second comes from /proc/PID/stat.
 *
 * Each figure is the median of 3 runs, each on a fresh QEMU after a 2000-frame warm-up on
 * other connections; frame generation and start-up are outside the timed part (first write to
 * last frame out).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PacketPool } from '../src/packet/pool.js';
import { FramedChannel } from '../src/wire/connection.js';
import { runFeed } from '../src/replay/feed.js';
import type { FeedTarget } from '../src/replay/feed.js';
import { planLockstep } from '../src/replay/lockstep.js';
import type { FeedFrame } from '../src/replay/lockstep.js';
import { QemuColoCompare } from '../src/replay/qemu-compare.js';
import { qemuAvailable } from '../src/replay/qemu-process.js';
import { tcpFrame } from '../src/replay/frame-builder.js';
import { median, type BenchRow } from './harness.js';

const SUITE = 'replay';
const RUNS = 3;
const WARMUP = 2000;

/** `n` data segments of `payload` bytes spread over `conns` connections (ports from `port0`). */
function workload(n: number, payload: number, conns: number, port0: number): FeedFrame[] {
  const data = Buffer.alloc(payload, 0x5a);
  const out: FeedFrame[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % conns;
    const k = Math.floor(i / conns);
    out.push({ buf: tcpFrame({ src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: port0 + c, seq: (1000 + k * payload) >>> 0, ack: 1, payload: data }) });
  }
  return out;
}

interface Run {
  fps: number;
  cpuPerWall: number;
}

async function qemuRun(frames: FeedFrame[]): Promise<Run> {
  let last = 0;
  const cmp = await QemuColoCompare.start({
    onRelease: (h) => {
      last = cmp.pool.time[h]!;
      cmp.pool.release(h);
    },
  });
  try {
    const warm = workload(WARMUP, 1400, 4, 30000);
    await cmp.feedLockstep(warm, warm);
    await cmp.waitForReleased(WARMUP, 30_000);
    const cpu0 = cmp.processStats()!.cpuMs;
    const r = await cmp.feedLockstep(frames, frames);
    await cmp.waitForReleased(WARMUP + frames.length, 120_000);
    const wall = last - r.startMs;
    const cpu = cmp.processStats()!.cpuMs - cpu0;
    if (cmp.drops > 0 || cmp.checkpointRequests > 0) throw new Error(`bench workload not clean: ${cmp.drops} drops, ${cmp.checkpointRequests} checkpoints`);
    return { fps: (frames.length * 1000) / wall, cpuPerWall: cpu / wall };
  } finally {
    await cmp.stop();
  }
}

/** The same feeder and framing into two in-process unix-socket sinks; "released" = received on the primary sink. */
async function sinkRun(frames: FeedFrame[]): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'colo-bench-replay-'));
  const pool = new PacketPool();
  let got = 0;
  let last = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const want = frames.length;
  const server = (name: string, count: boolean): FramedChannel =>
    new FramedChannel({
      endpoint: `unix:${join(dir, name)},server`,
      vnetHdr: false,
      pool,
      onFrame: (h) => {
        pool.release(h);
        if (count && ++got === want) {
          last = performance.now();
          done();
        }
      },
    });
  const sp = server('p.sock', true);
  const ss = server('s.sock', false);
  const waiters: Array<() => void> = [];
  const client = (name: string): FramedChannel =>
    new FramedChannel({ endpoint: `unix:${join(dir, name)}`, vnetHdr: false, pool, onFrame: (h) => pool.release(h), onDrain: () => waiters.splice(0).forEach((w) => w()) });
  const cp = client('p.sock');
  const cs = client('s.sock');
  const target = (ch: FramedChannel): FeedTarget => ({
    writeFrame: (b, o, l, v) => ch.writeFrame(b, o, l, v),
    flush: () => ch.flush(),
    get backpressured() {
      return ch.backpressured;
    },
    whenDrained: () => (ch.backpressured ? new Promise<void>((r) => waiters.push(r)) : Promise.resolve()),
  });
  try {
    await sp.start();
    await ss.start();
    await cp.start();
    await cs.start();
    await cp.whenConnected();
    await cs.whenConnected();
    const plan = planLockstep(frames, frames, { maxAhead: 512 });
    const r = await runFeed(plan, frames, frames, { primary: target(cp), secondary: target(cs) }, { yieldEvery: 256 });
    await finished;
    return { fps: (want * 1000) / (last - r.startMs), cpuPerWall: NaN };
  } finally {
    for (const ch of [cp, cs, sp, ss]) await ch.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchRow[]> {
  if (!qemuAvailable()) {
    process.stderr.write('bench replay: qemu-system-x86_64 not found, suite skipped\n');
    return [];
  }
  const rows: BenchRow[] = [];
  for (const [payload, n] of [
    [1400, 50_000],
    [64, 50_000],
  ] as const) {
    const frames = workload(n, payload, 4, 40000);
    const frameBytes = frames[0]!.buf.length;
    const base: Run[] = [];
    const qemu: Run[] = [];
    for (let i = 0; i < RUNS; i++) {
      base.push(await sinkRun(frames));
      qemu.push(await qemuRun(frames));
    }
    const baseName = `feeder → unix sockets → sink, ${payload} B payload`;
    const b = median(base.map((r) => r.fps));
    const q = median(qemu.map((r) => r.fps));
    const spread = (rs: Run[]) => `${Math.round(Math.min(...rs.map((r) => r.fps)) / 1000)}–${Math.round(Math.max(...rs.map((r) => r.fps)) / 1000)}k`;
    rows.push({ suite: SUITE, name: baseName, opsPerSec: b, unit: 'frame', bytesPerSec: b * frameBytes, note: `${n} frames × 2 sides, 4 conns; runs ${spread(base)}` });
    rows.push({
      suite: SUITE,
      name: `QEMU 7.2 colo-compare, ${payload} B payload`,
      opsPerSec: q,
      unit: 'frame',
      bytesPerSec: q * frameBytes,
      baseline: baseName,
      note: `released frames; runs ${spread(qemu)}; QEMU ${median(qemu.map((r) => r.cpuPerWall)).toFixed(2)} CPU-s/s`,
    });
  }
  return rows;
}
