/**
 * One measured run of the replay bench, the same for every engine and mode: warm-up, the
 * lockstep feed at the requested pace, the wait for the engine's output, then the figures.
 * Engines plug in as a BenchRig (bench-inprocess.ts, bench-sockets.ts, bench-qemu.ts); the
 * plan, feeder, pacing, yield points, warm-up and measurement are this module's, so the rows
 * differ only in the engine.
 *
 * Timing, all on this process's performance.now():
 * - the feed starts at the first write (FeedResult.startMs); the run's frames/s is the frames
 *   of both inputs over [first write, max(end of feed, end of the release burst)], Gbit/s the
 *   bytes of those frames (Ethernet frames as captured, without the 4-byte framing) over it;
 * - the release burst ends at the last release before the output went idle for `idleMs` after
 *   the feed (or at the last release, when every primary frame came out). Frames an engine
 *   releases later (held until a compare_timeout or the shutdown flush) are *stragglers*:
 *   counted and included in the hold percentiles, not in the throughput window;
 * - hold latency per released primary frame: see bench-workload.ts (`partner`).
 */
import { ColoError } from '../errors.js';
import { runFeed } from './feed.js';
import type { FeedResult, FeedTarget, PaceOptions } from './feed.js';
import type { FeedFrame, LockstepPlan } from './lockstep.js';
import { planLockstep } from './lockstep.js';
import { pairedWarmup, warmupFrames } from './bench-workload.js';
import type { BenchWorkload, FrameMatcher } from './bench-workload.js';
import type { PacketPool } from '../packet/pool.js';
import type { CheckpointEvent } from './bench-score.js';
import { percentile } from './bench-stats.js';

export type BenchEngine = 'colo-proxy' | 'qemu';
export type BenchMode = 'in-process' | 'sockets';

/** Where an engine reports released frames: by primary index (in-process) or by bytes (sockets). */
export class ReleaseRecorder {
  /** performance.now() of each primary frame's release (NaN: not released). */
  readonly releaseMs: Float64Array;
  /** Releases that were not a measured primary frame (warm-up traffic, unknown bytes). */
  other = 0;
  /** Measured primary frames released. */
  released = 0;
  /** Released frames whose bytes matched no primary frame during the measured run. */
  unmatched = 0;
  lastMs = 0;
  measuring = false;
  #waiters: Array<() => void> = [];

  constructor(nPrimary: number) {
    this.releaseMs = new Float64Array(nPrimary).fill(NaN);
  }

  /** A release of primary frame `i` (-1: not a measured frame). */
  onIndex(i: number, tMs: number): void {
    if (i >= 0 && this.measuring && Number.isNaN(this.releaseMs[i]!)) {
      this.releaseMs[i] = tMs;
      this.released++;
      this.lastMs = tMs;
    } else this.other++;
    if (this.#waiters.length > 0) for (const w of this.#waiters.splice(0)) w();
  }

  /**
   * A released frame read back from a socket, which carries no index: while `measuring`
   * (the rig's own flag) it is identified by its bytes (`matcher`; no match counts as
   * `unmatched`), else it is warm-up traffic. `tMs`: its arrival, stamped before matching so
   * the matcher's cost is not the engine's hold time. The caller still owns `h`.
   */
  onBytes(matcher: FrameMatcher, measuring: boolean, pool: PacketPool, h: number, tMs: number): void {
    const i = measuring ? matcher.match(pool.buffer(h), pool.offset(h), pool.length(h)) : -1;
    if (measuring && i < 0) this.unmatched++;
    this.onIndex(i, tMs);
  }

  /** Resolves on the next release (or after `ms`). */
  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const w = (): void => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve();
      }, ms);
      this.#waiters.push(w);
    });
  }
}

/** What an engine reports when stopped. */
export interface RigFinal {
  /**
   * Divergence records of the measured run (warm-up excluded), in order: each checkpoint's
   * requesting record and those that joined it; QEMU: one per DO_CHECKPOINT.
   */
  events: CheckpointEvent[];
  /** True when each record carries cause, flow and offset. */
  causesKnown: boolean;
  /** Peak RSS of the engine's process (KiB), null when unknown. */
  peakRssKiB: number | null;
  /** Pool high water (slots) of the engine, null when it has no pool / unknown. */
  poolHighWater: number | null;
  /** Frames the engine dropped silently (QEMU's queue overflow), null when not observable. */
  drops: number | null;
  /** Empty when the run was clean; else what went wrong (the row is then marked). */
  problem: string;
}

/** An engine under test, set up for one run. */
export interface BenchRig {
  readonly engine: BenchEngine;
  readonly mode: BenchMode;
  readonly targets: { primary: FeedTarget; secondary: FeedTarget };
  /** The warm-up is over: from now on releases are measured frames and checkpoints count. `t0` = the clock origin for checkpoint times. */
  beginMeasured(t0: number): void;
  stop(): Promise<RigFinal>;
}

export interface RunSettings extends PaceOptions {
  /** Warm-up primary frames, at least (0: none; see `warmUp`). */
  warmup: number;
  /** Lockstep bound per connection and side. */
  maxAhead: number;
  /** Feeder yield interval (frames). */
  yieldEvery: number;
  /** Output idle time that ends the release burst; default 250 ms. */
  idleMs?: number;
  /** Longest wait for stragglers after the feed (ms). */
  drainMs: number;
  onProgress?(written: number, total: number): void;
}

/** Raw result of one run (aggregated over runs by bench-report.ts). */
export interface RunResult {
  engine: BenchEngine;
  mode: BenchMode;
  framesPerSec: number;
  gbitPerSec: number;
  holdMs: Float64Array;
  p50HoldMs: number;
  p99HoldMs: number;
  p999HoldMs: number;
  /** Primary frames never released by the end of the run. */
  unreleased: number;
  stragglers: number;
  wallMs: number;
  feedMs: number;
  final: RigFinal;
  /** The plan's overruns (writes past maxAhead). */
  overruns: number;
}

async function waitWarm(rec: ReleaseRecorder, n: number, label: string): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (rec.other < n) {
    if (performance.now() > deadline) throw new ColoError('ERR_TIMEOUT', `${label}: warm-up: ${rec.other} of ${n} frames released within 30 s`);
    await rec.next(100);
  }
}

/** The workload's sides are known to carry the same data (a manifest without divergences). */
function identicalSides(w: BenchWorkload): boolean {
  return w.manifest !== null && w.manifest.groundTruth.length === 0;
}

/**
 * Warm the engine up (see docs/bench.md "Fairness"). A workload whose sides carry the same
 * data gets port-shifted copies of both of its sides, one copy at a time, each waited for
 * like the measured run (so no copy meets a busier engine than the measured run will, and
 * an engine's per-flow memory never holds more than one copy); any other workload, copies of
 * its primary frames on both sides (no divergences). Same for every engine.
 */
async function warmUp(rig: BenchRig, rec: ReleaseRecorder, w: BenchWorkload, s: RunSettings, label: string): Promise<void> {
  const copies = identicalSides(w) ? pairedWarmup(w.primary, w.secondary, s.warmup) : null;
  if (copies === null) {
    const warm: FeedFrame[] = warmupFrames(w.primary, s.warmup);
    await runFeed(planLockstep(warm, warm, { maxAhead: s.maxAhead }), warm, warm, rig.targets, { yieldEvery: s.yieldEvery });
    await waitWarm(rec, warm.length, label);
    return;
  }
  let sent = 0;
  for (const c of copies) {
    await runFeed(planLockstep(c.primary, c.secondary, { maxAhead: s.maxAhead }), c.primary, c.secondary, rig.targets, { yieldEvery: s.yieldEvery });
    sent += c.primary.length;
    // Until this copy is out, or the output idles (a frame held for a timeout is not waited
    // for here; waitWarm below waits for everything).
    while (rec.other < sent) {
      const before = rec.other;
      await rec.next(100);
      if (rec.other === before) break;
    }
  }
  await waitWarm(rec, sent, label);
}

/** Plan once per workload (setup time), shared by every engine and run. */
export function planFor(w: BenchWorkload, maxAhead: number): LockstepPlan {
  return planLockstep(w.primary, w.secondary, { maxAhead });
}

/**
 * Run `w` once through `rig` (already started; stopped here, also on failure). `rec` must be
 * the recorder the rig reports to.
 */
export async function runOnce(rig: BenchRig, rec: ReleaseRecorder, w: BenchWorkload, plan: LockstepPlan, s: RunSettings): Promise<RunResult> {
  const label = `${rig.engine} ${rig.mode}`;
  let feed: FeedResult;
  let burstEnd = 0;
  let final: RigFinal | null = null;
  try {
    if (s.warmup > 0) await warmUp(rig, rec, w, s, label);
    const t0 = performance.now();
    rig.beginMeasured(t0);
    rec.measuring = true;
    feed = await runFeed(plan, w.primary, w.secondary, rig.targets, {
      yieldEvery: s.yieldEvery,
      ...(s.pps !== undefined ? { pps: s.pps } : {}),
      ...(s.speed !== undefined ? { speed: s.speed } : {}),
      ...(s.onProgress !== undefined ? { onProgress: s.onProgress } : {}),
    });
    const n = w.primary.length;
    const idleMs = s.idleMs ?? 250;
    // The burst: until everything is out, or the output stays idle for idleMs.
    while (rec.released < n) {
      const before = rec.released;
      const at = performance.now();
      while (rec.released === before && performance.now() - at < idleMs) await rec.next(idleMs);
      if (rec.released === before) break;
    }
    burstEnd = rec.lastMs;
    // Stragglers: held until a timeout (or never); wait up to drainMs after the feed.
    const deadline = feed.endMs + s.drainMs;
    while (rec.released < n && performance.now() < deadline) await rec.next(Math.min(100, Math.max(1, deadline - performance.now())));
  } finally {
    // Frames flushed by the engine's shutdown are not releases of the run: they stay unreleased.
    rec.measuring = false;
    final = await rig.stop();
  }
  const n = w.primary.length;
  const end = Math.max(feed.endMs, burstEnd);
  const wallMs = end - feed.startMs;
  const frames = feed.written[0] + feed.written[1];
  const hold: number[] = [];
  let stragglers = 0;
  for (let i = 0; i < n; i++) {
    const r = rec.releaseMs[i]!;
    if (Number.isNaN(r)) continue;
    if (r > burstEnd) stragglers++;
    let from = feed.primaryWriteMs[i]!;
    const j = w.partner[i]!;
    if (j >= 0) {
      const sw = feed.secondaryWriteMs[j]!;
      if (sw > from && sw <= r) from = sw;
    }
    hold.push(Math.max(0, r - from));
  }
  const holdMs = Float64Array.from(hold).sort();
  return {
    engine: rig.engine,
    mode: rig.mode,
    framesPerSec: wallMs > 0 ? (frames * 1000) / wallMs : NaN,
    gbitPerSec: wallMs > 0 ? ((w.primaryBytes + w.secondaryBytes) * 8) / (wallMs * 1e6) : NaN,
    holdMs,
    p50HoldMs: percentile(holdMs, 0.5),
    p99HoldMs: percentile(holdMs, 0.99),
    p999HoldMs: percentile(holdMs, 0.999),
    unreleased: n - rec.released,
    stragglers,
    wallMs,
    feedMs: feed.endMs - feed.startMs,
    final,
    overruns: plan.overruns,
  };
}
