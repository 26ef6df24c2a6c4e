/**
 * `bench replay` core: run one workload through every requested engine × mode, `runs` times,
 * interleaved (in-process, sockets, QEMU, then again) so slow drift of the machine affects
 * every row alike, with one plan, one feeder, one pacing and one warm-up for all. Used by the
 * CLI (src/cli/bench.ts) and by bench/workload.bench.ts.
 */
import { ColoError } from '../errors.js';
import type { PaceOptions } from './feed.js';
import { aggregate, ratios, type BenchReport, type BenchRowReport, type RowDetail } from './bench-report.js';
import { planFor, ReleaseRecorder, runOnce, type BenchMode, type BenchRig, type RunResult } from './bench-run.js';
import { FrameMatcher, type BenchWorkload } from './bench-workload.js';
import { startInProcess, type EngineSettings } from './bench-inprocess.js';
import { startSocketsRig } from './bench-sockets.js';
import { startQemuRig } from './bench-qemu.js';
import { qemuAvailable } from './qemu-process.js';
import { QEMU_COMPARE_DEFAULTS } from './qemu-compare.js';

export interface ReplayBenchOptions {
  workload: BenchWorkload;
  /** colo-proxy modes to run. */
  modes: readonly BenchMode[];
  /** Also run QEMU's colo-compare (over sockets). */
  againstQemu: boolean;
  /** Repetitions per row; default 3. */
  runs?: number;
  /** Warm-up frames per side before each run; default 20 000 (V8 needs that many to optimise the engine). */
  warmup?: number;
  pace?: PaceOptions;
  /** Default QEMU's: compare_timeout 3000, expired_scan_cycle 1000, max_queue_size 1024. */
  engine?: Partial<EngineSettings>;
  /** Progress: `done` frames of `total` over the whole bench. */
  onProgress?(done: number, total: number, label: string): void;
}

export interface ReplayBenchResult {
  report: BenchReport;
  /** Per row (same order as report.runs): the representative run's samples, for the HTML page. */
  details: RowDetail[];
}

/** The pace as text: topspeed, capture ×F, N pps. */
export function paceLabel(p: PaceOptions): string {
  if (p.pps !== undefined) return `${p.pps} pps (primary frames)`;
  if (p.speed !== undefined) return p.speed === 1 ? 'capture timing' : `capture timing × ${p.speed}`;
  return 'topspeed';
}

export async function runReplayBench(o: ReplayBenchOptions): Promise<ReplayBenchResult> {
  const w = o.workload;
  const runs = o.runs ?? 3;
  const warmup = o.warmup ?? 20_000;
  if (!(Number.isInteger(runs) && runs >= 1)) throw new ColoError('ERR_INVALID_ARGUMENT', `runs must be an integer >= 1, got ${runs}`);
  if (!(Number.isInteger(warmup) && warmup >= 0)) throw new ColoError('ERR_INVALID_ARGUMENT', `warmup must be an integer >= 0, got ${warmup}`);
  if (o.againstQemu && !qemuAvailable()) throw new ColoError('ERR_QEMU', '--against-qemu: qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86)');
  const es: EngineSettings = {
    compareTimeoutMs: o.engine?.compareTimeoutMs ?? QEMU_COMPARE_DEFAULTS.compareTimeout,
    expiredScanCycleMs: o.engine?.expiredScanCycleMs ?? QEMU_COMPARE_DEFAULTS.expiredScanCycle,
    maxQueueSize: o.engine?.maxQueueSize ?? QEMU_COMPARE_DEFAULTS.maxQueueSize,
  };
  // QEMU drops past max_queue_size: keep the written skew (bound + one burst) under 3/4 of it.
  const maxAhead = Math.max(1, Math.floor(es.maxQueueSize / 2));
  const yieldEvery = Math.max(1, Math.min(256, Math.floor(es.maxQueueSize / 4)));
  const plan = planFor(w, maxAhead);
  type Kind = { label: string; start: (rec: ReleaseRecorder) => Promise<BenchRig> };
  const kinds: Kind[] = [];
  if (o.modes.includes('in-process')) kinds.push({ label: 'colo-proxy in-process', start: async (rec) => startInProcess(rec, es) });
  if (o.modes.includes('sockets')) kinds.push({ label: 'colo-proxy sockets', start: (rec) => startSocketsRig(rec, new FrameMatcher(w.primary), es) });
  if (o.againstQemu) kinds.push({ label: 'QEMU sockets', start: (rec) => startQemuRig(rec, new FrameMatcher(w.primary), es) });
  if (kinds.length === 0) throw new ColoError('ERR_INVALID_ARGUMENT', 'nothing to run: no mode selected');
  const perRun = w.primary.length + w.secondary.length;
  const total = perRun * runs * kinds.length;
  let done = 0;
  const results: RunResult[][] = kinds.map(() => []);
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[k]!;
      const rec = new ReleaseRecorder(w.primary.length);
      const rig = await kind.start(rec);
      const base = done;
      const res = await runOnce(rig, rec, w, plan, {
        ...(o.pace ?? {}),
        warmup,
        maxAhead,
        yieldEvery,
        drainMs: es.compareTimeoutMs + es.expiredScanCycleMs + 500,
        onProgress: (n) => o.onProgress?.(base + n, total, `${kind.label} run ${r + 1}/${runs}`),
      });
      done = base + perRun;
      o.onProgress?.(done, total, `${kind.label} run ${r + 1}/${runs}`);
      results[k]!.push(res);
    }
  }
  const truth = w.manifest?.groundTruth ?? null;
  const agg = results.map((rs) => aggregate(rs, truth));
  const rows: BenchRowReport[] = agg.map((a) => a.row);
  const report: BenchReport = {
    workload: { name: w.name, primaryFrames: w.primary.length, secondaryFrames: w.secondary.length, groundTruth: truth === null ? null : truth.length },
    settings: {
      pace: paceLabel(o.pace ?? {}),
      runs,
      warmup,
      compareTimeoutMs: es.compareTimeoutMs,
      expiredScanCycleMs: es.expiredScanCycleMs,
      maxQueueSize: es.maxQueueSize,
      maxAhead,
      overruns: plan.overruns,
    },
    runs: rows,
    ratio: ratios(rows),
  };
  return { report, details: agg.map((a) => a.detail) };
}
