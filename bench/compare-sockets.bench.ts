/**
 * Compare engines over sockets (issue 4): matched TCP, 1448-byte segments over 4 connections,
 * 50 000 data frames per side, written with QEMU chardev framing over unix sockets by the
 * lockstep feeder (src/replay: planLockstep + runFeed, the same plan and yield points for
 * every row), released frames read back from outdev:
 *
 * 1. baseline: the feeder into two in-process sinks that only count — the harness's ceiling;
 * 2. colo-proxy: the real `colo-proxy compare` command in a child process (the same build as
 *    this bench: dist/ under `npm run bench`, src/ through tsx when run from source), in the
 *    socket roles of docs/deploy.md: it connects to primary_in and outdev (we listen) and
 *    listens on secondary_in (src/replay/bench-sockets.ts, shared with `bench replay`);
 * 3. QEMU 7.2's colo-compare (guest-less, QemuColoCompare), when qemu-system-x86_64 exists.
 *
 * Both sides send identical frames (each connection opened with a SYN-ACK, then data), so
 * every engine should release every primary frame with no checkpoint; a run that does not is
 * an error, not a figure.
 *
 * Rate: frames of both inputs per second, from the first write to the arrival of the last
 * released frame (what compare.bench.ts counts in process); Gbit/s: the primary's TCP payload.
 * Hold latency, measured here in the bench process: per data frame, from the write of the
 * later of its pair (primary or secondary; both are in the plan) to the arrival on outdev of
 * the released frame (identified by destination port and sequence number). It includes the
 * feeder's batching (up to 64 KiB between yields) and both socket hops; the baseline row
 * shows that floor. "out of order": data frames that arrived before the one sent just ahead of
 * them. QEMU 7.2 writes what it released while outdev was backed up newest first (reference
 * §9 B1); with the reader sharing this process with the feeder that happens throughout a run
 * (a smaller yieldBytes did not avoid it), so its p99 is dominated by frames emitted last.
 * Each figure is the median of 3 runs, each on a fresh engine after a
 * 2000-frame warm-up on other connections.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PacketPool } from '../src/packet/pool.js';
import { FramedChannel } from '../src/wire/connection.js';
import { runFeed } from '../src/replay/feed.js';
import type { FeedResult, FeedTarget } from '../src/replay/feed.js';
import { planLockstep } from '../src/replay/lockstep.js';
import type { FeedFrame } from '../src/replay/lockstep.js';
import { QemuColoCompare } from '../src/replay/qemu-compare.js';
import { qemuAvailable } from '../src/replay/qemu-process.js';
import { TCP_ACK, TCP_PSH, TCP_SYN, tcpFrame } from '../src/replay/frame-builder.js';
import { clientTarget, coloProxyCli, startColoProxyChild } from '../src/replay/bench-sockets.js';
import { median, type BenchRow } from './harness.js';

const SUITE = 'compare-sockets';
const RUNS = 3;
const MSS = 1448;
const CONNS = 4;
const N = 50_000;
const WARMUP = 2000;
const ISN = 0xfff0_0000; // crosses the 2^32 wrap, as in compare-workload.ts
/** Ethernet + IPv4 + TCP without options. */
const HDR = 54;
const DPORT_OFF = 36;
const SEQ_OFF = 38;
const MAX_AHEAD = 512;
const YIELD_EVERY = 256;

/** One SYN-ACK per connection, then `n` data segments round-robin over the connections. */
function workload(n: number, port0: number): FeedFrame[] {
  const data = Buffer.alloc(MSS, 0x5a);
  const out: FeedFrame[] = [];
  const base = { src: '10.0.0.2', dst: '10.0.0.1', sport: 80 } as const;
  for (let c = 0; c < CONNS; c++) out.push({ buf: tcpFrame({ ...base, dport: port0 + c, seq: ISN, ack: 1, flags: TCP_SYN | TCP_ACK }) });
  for (let i = 0; i < n; i++) {
    const c = i % CONNS;
    const k = Math.floor(i / CONNS);
    out.push({ buf: tcpFrame({ ...base, dport: port0 + c, seq: (ISN + 1 + k * MSS) >>> 0, ack: 1, flags: TCP_PSH | TCP_ACK, payload: data }) });
  }
  return out;
}

/** Reads released frames: counts them all, and stamps the arrival of each measured data frame. */
class Receiver {
  released = 0;
  lastMs = 0;
  readonly arrival: Float64Array;
  #port0 = -1;
  #waiters: Array<() => void> = [];

  constructor(n: number) {
    this.arrival = new Float64Array(n);
  }

  /** Start stamping data frames of the connections from `port0`. */
  measure(port0: number): void {
    this.#port0 = port0;
    this.arrival.fill(NaN);
  }

  onFrame(pool: PacketPool, h: number): void {
    const t = performance.now();
    const b = pool.buffer(h);
    const o = pool.offset(h);
    if (this.#port0 >= 0 && pool.length(h) >= HDR + MSS) {
      const c = ((b[o + DPORT_OFF]! << 8) | b[o + DPORT_OFF + 1]!) - this.#port0;
      if (c >= 0 && c < CONNS) {
        const seq = ((b[o + SEQ_OFF]! << 24) | (b[o + SEQ_OFF + 1]! << 16) | (b[o + SEQ_OFF + 2]! << 8) | b[o + SEQ_OFF + 3]!) >>> 0;
        const i = (((seq - ISN - 1) >>> 0) / MSS) * CONNS + c;
        if (Number.isInteger(i) && i < this.arrival.length) this.arrival[i] = t;
      }
    }
    pool.release(h);
    this.released++;
    this.lastMs = t;
    if (this.#waiters.length > 0) for (const w of this.#waiters.splice(0)) w();
  }

  waitFor(n: number, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: ${this.released} of ${n} frames released within ${timeoutMs} ms`)), timeoutMs);
      const check = (): void => {
        if (this.released >= n) {
          clearTimeout(timer);
          resolve();
        } else this.#waiters.push(check);
      };
      check();
    });
  }
}

/** An engine under test: two input targets, released frames go to `recv`. */
interface Rig {
  targets: { primary: FeedTarget; secondary: FeedTarget };
  /** Stop it; returns a problem description, or '' when the run was clean. */
  stop(): Promise<string>;
}

async function sinkRig(recv: Receiver): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'colo-bench-csock-'));
  const pool = new PacketPool();
  const server = (name: string, count: boolean): FramedChannel =>
    new FramedChannel({
      endpoint: `unix:${join(dir, name)},server`,
      vnetHdr: false,
      pool,
      onFrame: (h) => (count ? recv.onFrame(pool, h) : pool.release(h)),
    });
  const sp = server('p.sock', true);
  const ss = server('s.sock', false);
  const cp = clientTarget(join(dir, 'p.sock'), pool, (h) => pool.release(h));
  const cs = clientTarget(join(dir, 's.sock'), pool, (h) => pool.release(h));
  const all = [cp.ch, cs.ch, sp, ss];
  try {
    await sp.start();
    await ss.start();
    await cp.ch.start();
    await cs.ch.start();
    await Promise.all([cp.ch.whenConnected(), cs.ch.whenConnected()]);
  } catch (err) {
    for (const ch of all) await ch.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    targets: { primary: cp.target, secondary: cs.target },
    async stop() {
      for (const ch of all) await ch.close();
      rmSync(dir, { recursive: true, force: true });
      return '';
    },
  };
}

/** The real `colo-proxy compare` in a child process (src/replay/bench-sockets.ts, shared with `bench replay`). */
async function proxyRig(recv: Receiver): Promise<Rig> {
  const child = await startColoProxyChild({ onRelease: (pool, h) => recv.onFrame(pool, h) });
  return {
    targets: child.targets,
    async stop() {
      // SIGTERM while connected: the CLI releases anything held, then prints its statistics.
      const r = await child.stop();
      const s = r.summary;
      if (s === null) return `no JSON statistics from colo-proxy: ${r.stdout.slice(0, 200)} ${r.stderr}`;
      const p = s.accounting?.primary;
      const req = s.checkpoints?.requested;
      if (p === undefined || req === undefined) return 'unexpected JSON statistics shape';
      if (req !== 0 || p.received !== p.released) return `colo-proxy: ${req} checkpoints requested, primary received ${p.received}, released ${p.released}`;
      return '';
    },
  };
}

async function qemuRig(recv: Receiver): Promise<Rig> {
  const cmp: QemuColoCompare = await QemuColoCompare.start({ onRelease: (h) => recv.onFrame(cmp.pool, h) });
  return {
    targets: cmp.targets,
    async stop() {
      const problem = cmp.drops > 0 || cmp.checkpointRequests > 0 ? `QEMU: ${cmp.drops} drops, ${cmp.checkpointRequests} checkpoints` : '';
      await cmp.stop();
      return problem;
    },
  };
}

interface Run {
  fps: number;
  gbps: number;
  p50: number;
  p99: number;
  /** Share of data frames that arrived before the frame sent just ahead of them (output order). */
  reordered: number;
}

async function oneRun(make: (recv: Receiver) => Promise<Rig>, label: string): Promise<Run> {
  const warm = workload(WARMUP, 30000);
  const frames = workload(N, 40000);
  const warmPlan = planLockstep(warm, warm, { maxAhead: MAX_AHEAD });
  const plan = planLockstep(frames, frames, { maxAhead: MAX_AHEAD });
  const recv = new Receiver(N);
  const rig = await make(recv);
  let problem = '';
  let r: FeedResult;
  try {
    await runFeed(warmPlan, warm, warm, rig.targets, { yieldEvery: YIELD_EVERY });
    await recv.waitFor(warm.length, 30_000, `${label} warm-up`);
    recv.measure(40000);
    r = await runFeed(plan, frames, frames, rig.targets, { yieldEvery: YIELD_EVERY });
    await recv.waitFor(warm.length + frames.length, 60_000, label);
  } finally {
    problem = await rig.stop();
  }
  if (problem !== '') throw new Error(`${label}: run not clean: ${problem}`);
  const wall = recv.lastMs - r.startMs;
  const lat = new Float64Array(N);
  let descents = 0;
  for (let i = 0; i < N; i++) {
    const j = CONNS + i;
    const a = recv.arrival[i]!;
    if (Number.isNaN(a)) throw new Error(`${label}: data frame ${i} never released`);
    if (i > 0 && a < recv.arrival[i - 1]!) descents++;
    lat[i] = a - Math.max(r.primaryWriteMs[j]!, r.secondaryWriteMs[j]!);
  }
  lat.sort();
  return {
    fps: (2 * frames.length * 1000) / wall,
    gbps: (N * MSS * 8) / (wall * 1e6),
    p50: lat[Math.floor(0.5 * N)]! * 1000,
    p99: lat[Math.floor(0.99 * N)]! * 1000,
    reordered: descents / N,
  };
}

function row(name: string, runs: Run[], extra: string, baseline?: string): BenchRow {
  const fps = median(runs.map((r) => r.fps));
  const gbps = median(runs.map((r) => r.gbps));
  const spread = `${Math.round(Math.min(...runs.map((r) => r.fps)) / 1000)}–${Math.round(Math.max(...runs.map((r) => r.fps)) / 1000)}k`;
  return {
    suite: SUITE,
    name,
    opsPerSec: fps,
    unit: 'frame',
    bytesPerSec: (gbps * 1e9) / 8,
    ...(baseline !== undefined ? { baseline } : {}),
    note: `${gbps.toFixed(2)} Gbit/s payload; hold p50 ${median(runs.map((r) => r.p50)).toFixed(0)} µs, p99 ${median(runs.map((r) => r.p99)).toFixed(0)} µs, ${(median(runs.map((r) => r.reordered)) * 100).toFixed(0)}% out of order; median of ${runs.length} (${spread} frames/s)${extra}`,
  };
}

export async function run(): Promise<BenchRow[]> {
  const hasQemu = qemuAvailable();
  if (!hasQemu) process.stderr.write('bench compare-sockets: qemu-system-x86_64 not found, QEMU row skipped\n');
  const base: Run[] = [];
  const proxy: Run[] = [];
  const qemu: Run[] = [];
  // Interleaved, so that slow drift of this VM affects every row alike.
  for (let i = 0; i < RUNS; i++) {
    base.push(await oneRun(sinkRig, 'sink'));
    proxy.push(await oneRun(proxyRig, 'colo-proxy'));
    if (hasQemu) qemu.push(await oneRun(qemuRig, 'QEMU'));
  }
  const baseName = 'feeder → unix sockets → counting sink';
  const rows = [row(baseName, base, `; ${N} × 1448 B × 2 sides, ${CONNS} conns`)];
  rows.push(row('colo-proxy compare (child process)', proxy, `; CLI from ${coloProxyCli().label}`, baseName));
  if (hasQemu) rows.push(row('QEMU 7.2 colo-compare', qemu, '', baseName));
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./harness.js');
  console.log(renderTable(await run()));
}
