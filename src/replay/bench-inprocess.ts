/**
 * colo-proxy in process (the engine alone): a CompareEngine with a ShadowCheckpointPort (every
 * checkpoint completes at once, flows keep their alignment: "what would COLO do with this
 * traffic"), fed by the same lockstep feeder as the socket modes through FeedTargets that copy
 * each frame into a pool slot and hand it to the engine, as a socket reader would. Released
 * frames are identified by handle (the n-th write on a side is that side's n-th frame), so no
 * hashing is added to the measured path. The engine's timers run on a 100 ms interval (like
 * `colo-proxy compare`) and at every feeder yield.
 */
import { writeFileSync } from 'node:fs';
import { ShadowCheckpointPort } from '../compare/checkpoint-port.js';
import { CompareEngine } from '../compare/engine.js';
import type { DivergenceRecord } from '../compare/divergence.js';
import { NO_HANDLE, PacketPool } from '../packet/pool.js';
import type { FeedTarget } from './feed.js';
import { readProcessStats } from './qemu-process.js';
import type { CheckpointEvent } from './bench-score.js';
import type { BenchRig, ReleaseRecorder, RigFinal } from './bench-run.js';

export interface EngineSettings {
  /** compare_timeout (ms) for both engines. */
  compareTimeoutMs: number;
  /** expired_scan_cycle (ms). */
  expiredScanCycleMs: number;
  /** max_queue_size. */
  maxQueueSize: number;
}

/** Reset this process's peak RSS (VmHWM) where Linux allows it; false otherwise. */
export function resetPeakRss(): boolean {
  try {
    // Linux ≥ 4.0: writing 5 to clear_refs resets VmHWM to the current RSS.
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** A bench event from a divergence record; `atMs` relative to `t0`. */
export function eventOf(r: DivergenceRecord, t0: number): CheckpointEvent {
  return { atMs: r.atMs - t0, checkpoint: r.checkpoint, requested: r.requested, cause: r.cause, flow: r.flow, offset: r.offset, offsetUnit: r.offsetUnit };
}

/** Start the in-process rig; releases are reported to `rec`. */
export function startInProcess(rec: ReleaseRecorder, s: EngineSettings): BenchRig {
  const pool = new PacketPool();
  const port = new ShadowCheckpointPort();
  const index = new Int32Array(pool.capacity).fill(-1);
  const events: CheckpointEvent[] = [];
  let measuring = false;
  let t0 = 0;
  let drainWaiters: Array<() => void> = [];
  const engine = new CompareEngine({
    pool,
    checkpoint: port,
    limits: { compareTimeoutMs: s.compareTimeoutMs, expiredScanCycleMs: s.expiredScanCycleMs, maxFlowHeldPackets: s.maxQueueSize },
    now: () => performance.now(),
    release: (h) => {
      rec.onIndex(index[h]!, performance.now());
      index[h] = -1;
      pool.release(h);
    },
    onDivergence: (r) => {
      if (measuring) events.push(eventOf(r, t0));
    },
    onBackpressure: (paused) => {
      if (!paused) for (const w of drainWaiters.splice(0)) w();
    },
  });
  port.attach(engine);
  const timer = setInterval(() => engine.tick(performance.now()), Math.max(10, Math.min(100, Math.floor(s.expiredScanCycleMs / 4))));
  const target = (side: 0 | 1): FeedTarget & { n: number } => ({
    n: 0,
    writeFrame(buf, off, len, vnet) {
      const i = this.n++;
      const h = pool.copyIn(buf, off, len);
      if (h === NO_HANDLE) return false;
      pool.tag[h] = vnet;
      const now = performance.now();
      if (side === 0) {
        index[h] = measuring ? i : -1;
        engine.primary(h, now);
      } else engine.secondary(h, now);
      return true;
    },
    flush() {
      engine.tick(performance.now());
    },
    get backpressured() {
      return !engine.wantsInput();
    },
    whenDrained() {
      return engine.wantsInput() ? Promise.resolve() : new Promise<void>((r) => drainWaiters.push(r));
    },
  });
  const primary = target(0);
  const secondary = target(1);
  let stopped = false;
  return {
    engine: 'colo-proxy',
    mode: 'in-process',
    targets: { primary, secondary },
    beginMeasured(start) {
      t0 = start;
      measuring = true;
      primary.n = 0;
      secondary.n = 0;
      resetPeakRss();
    },
    async stop(): Promise<RigFinal> {
      const peak = readProcessStats(process.pid)?.peakRssKiB ?? null;
      if (!stopped) {
        stopped = true;
        clearInterval(timer);
        engine.close();
        for (const w of drainWaiters.splice(0)) w();
      }
      const acc = engine.accounting();
      const problem = acc.primary.balanced ? '' : `accounting mismatch: ${JSON.stringify(acc.primary)}`;
      return { events, causesKnown: true, peakRssKiB: peak, poolHighWater: pool.stats().highWater, drops: 0, problem };
    },
  };
}
