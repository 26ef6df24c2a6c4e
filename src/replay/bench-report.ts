/**
 * The replay bench's report: runs of one engine and mode aggregated into a row (median and
 * min–max over the repetitions), colo-proxy/QEMU ratios, the terminal table and the JSON
 * document (schema in docs/bench.md).
 */
import type { BenchEngine, BenchMode, RunResult } from './bench-run.js';
import { causeCounts, checkpointCount, scoreCheckpoints, scoreCounts, type CheckpointEvent } from './bench-score.js';
import { spread } from './bench-stats.js';
import type { GroundTruth } from './workload.js';

/** One engine × mode, aggregated over its runs (the `runs[]` entries of the JSON). */
export interface BenchRowReport {
  engine: BenchEngine;
  mode: BenchMode;
  /** Repetitions measured. */
  runs: number;
  /** Medians over the runs; *Min/*Max the spread. */
  framesPerSec: number;
  framesPerSecMin: number;
  framesPerSecMax: number;
  gbitPerSec: number;
  p50HoldMs: number;
  p99HoldMs: number;
  p99HoldMsMin: number;
  p99HoldMsMax: number;
  p999HoldMs: number;
  /** Checkpoints requested in the measured run (median), and per run. */
  checkpoints: number;
  checkpointsPerRun: number[];
  /** Checkpoints by cause, in the first run whose count is the median ('unknown' for QEMU). */
  causes: Record<string, number>;
  /** False when the engine does not say why it asked (QEMU): missed/spurious come from counts. */
  causesKnown: boolean;
  /** Against the ground truth (median over runs); null without a manifest. */
  missed: number | null;
  spurious: number | null;
  /** Primary frames not released by the end of the run (median). */
  unreleased: number;
  /** Primary frames released only after the release burst (timeouts; median). */
  stragglers: number;
  /** Silent drops (QEMU's queue overflow), null when not observable. */
  drops: number | null;
  /** Peak RSS of the engine's process (KiB, largest over runs), pool high water (slots). */
  peakRssKiB: number | null;
  poolHighWater: number | null;
  /** Problems seen in any run (empty when clean). */
  problems: string[];
}

/** Per mode, colo-proxy's figure divided by QEMU's (QEMU runs over sockets only). */
export interface BenchRatio {
  framesPerSec: number;
  gbitPerSec: number;
  p99HoldMs: number;
  checkpoints: number | null;
}

export interface BenchReport {
  workload: { name: string; primaryFrames: number; secondaryFrames: number; groundTruth: number | null };
  settings: {
    pace: string;
    runs: number;
    warmup: number;
    compareTimeoutMs: number;
    expiredScanCycleMs: number;
    maxQueueSize: number;
    maxAhead: number;
    overruns: number;
  };
  runs: BenchRowReport[];
  /** Keyed by colo-proxy's mode ("sockets": same transport as QEMU; "in-process": the engine alone vs QEMU over sockets). */
  ratio: Partial<Record<BenchMode, BenchRatio>>;
}

/** The representative run of a row (median frames/s) and its detail, for the HTML page. */
export interface RowDetail {
  holdMs: Float64Array;
  /** Divergence records (requesting and joined), see RigFinal.events. */
  events: CheckpointEvent[];
  wallMs: number;
  feedMs: number;
}

function score(truth: readonly GroundTruth[] | null, r: RunResult): { missed: number | null; spurious: number | null } {
  if (truth === null) return { missed: null, spurious: null };
  if (r.final.causesKnown) {
    const s = scoreCheckpoints(truth, r.final.events);
    return { missed: s.missed, spurious: s.spurious };
  }
  return scoreCounts(truth.length, checkpointCount(r.final.events));
}

/** Aggregate the runs of one engine × mode. */
export function aggregate(results: readonly RunResult[], truth: readonly GroundTruth[] | null): { row: BenchRowReport; detail: RowDetail } {
  const first = results[0]!;
  const med = (f: (r: RunResult) => number): number => spread(results.map(f)).median;
  const fps = spread(results.map((r) => r.framesPerSec));
  const p99 = spread(results.map((r) => r.p99HoldMs));
  const scores = results.map((r) => score(truth, r));
  const rep = [...results].sort((a, b) => a.framesPerSec - b.framesPerSec)[Math.floor(results.length / 2)]!;
  const maxOf = (xs: (number | null)[]): number | null => (xs.every((x) => x === null) ? null : Math.max(...xs.filter((x): x is number => x !== null)));
  const problems = [...new Set(results.map((r) => r.final.problem).filter((p) => p !== ''))];
  const row: BenchRowReport = {
    engine: first.engine,
    mode: first.mode,
    runs: results.length,
    framesPerSec: fps.median,
    framesPerSecMin: fps.min,
    framesPerSecMax: fps.max,
    gbitPerSec: med((r) => r.gbitPerSec),
    p50HoldMs: med((r) => r.p50HoldMs),
    p99HoldMs: p99.median,
    p99HoldMsMin: p99.min,
    p99HoldMsMax: p99.max,
    p999HoldMs: med((r) => r.p999HoldMs),
    checkpoints: med((r) => checkpointCount(r.final.events)),
    checkpointsPerRun: results.map((r) => checkpointCount(r.final.events)),
    causes: causeCounts(results.find((r) => checkpointCount(r.final.events) === med((x) => checkpointCount(x.final.events)))?.final.events ?? []),
    causesKnown: first.final.causesKnown,
    missed: truth === null ? null : spread(scores.map((s) => s.missed!)).median,
    spurious: truth === null ? null : spread(scores.map((s) => s.spurious!)).median,
    unreleased: med((r) => r.unreleased),
    stragglers: med((r) => r.stragglers),
    drops: maxOf(results.map((r) => r.final.drops)),
    peakRssKiB: maxOf(results.map((r) => r.final.peakRssKiB)),
    poolHighWater: maxOf(results.map((r) => r.final.poolHighWater)),
    problems,
  };
  return { row, detail: { holdMs: rep.holdMs, events: rep.final.events, wallMs: rep.wallMs, feedMs: rep.feedMs } };
}

/** colo-proxy / QEMU per colo-proxy mode, when a QEMU row exists. */
export function ratios(rows: readonly BenchRowReport[]): Partial<Record<BenchMode, BenchRatio>> {
  const q = rows.find((r) => r.engine === 'qemu');
  const out: Partial<Record<BenchMode, BenchRatio>> = {};
  if (q === undefined) return out;
  for (const r of rows) {
    if (r.engine !== 'colo-proxy') continue;
    out[r.mode] = {
      framesPerSec: r.framesPerSec / q.framesPerSec,
      gbitPerSec: r.gbitPerSec / q.gbitPerSec,
      p99HoldMs: r.p99HoldMs / q.p99HoldMs,
      checkpoints: q.checkpoints > 0 ? r.checkpoints / q.checkpoints : null,
    };
  }
  return out;
}

function fmt(v: number | null, digits = 2): string {
  if (v === null || Number.isNaN(v)) return '-';
  return v.toFixed(digits);
}

function kfps(v: number): string {
  if (!Number.isFinite(v)) return '-';
  return v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0);
}

/** The terminal table (plain text). */
export function renderReport(rep: BenchReport): string {
  const head = ['engine', 'mode', 'frames/s (min–max)', 'Gbit/s', 'hold p50/p99/p99.9 ms', 'checkpoints', 'missed', 'spurious', 'peak RSS', 'pool hw', 'notes'];
  const cells = rep.runs.map((r) => {
    const notes: string[] = [];
    if (!r.causesKnown) notes.push('scored from counts');
    if (r.stragglers > 0) notes.push(`${r.stragglers} stragglers`);
    if (r.unreleased > 0) notes.push(`${r.unreleased} unreleased`);
    if (r.drops !== null && r.drops > 0) notes.push(`${r.drops} DROPPED`);
    notes.push(...r.problems.map((p) => `PROBLEM: ${p}`));
    const causes = Object.entries(r.causes).map(([k, v]) => `${k} ${v}`).join(', ');
    return [
      r.engine,
      r.mode,
      `${kfps(r.framesPerSec)} (${kfps(r.framesPerSecMin)}–${kfps(r.framesPerSecMax)})`,
      fmt(r.gbitPerSec, 3),
      `${fmt(r.p50HoldMs, 3)} / ${fmt(r.p99HoldMs, 3)} / ${fmt(r.p999HoldMs, 3)}`,
      `${r.checkpoints}${causes !== '' ? ` (${causes})` : ''}`,
      r.missed === null ? '-' : String(r.missed),
      r.spurious === null ? '-' : String(r.spurious),
      r.peakRssKiB === null ? '-' : `${(r.peakRssKiB / 1024).toFixed(0)} MiB`,
      r.poolHighWater === null ? '-' : String(r.poolHighWater),
      notes.join('; '),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string => c.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd();
  const s = rep.settings;
  const w = rep.workload;
  const out = [
    `workload ${w.name}: ${w.primaryFrames} primary + ${w.secondaryFrames} secondary frames, ${w.groundTruth === null ? 'no ground truth' : `${w.groundTruth} labelled divergence(s)`}`,
    `pace ${s.pace}; ${s.runs} run(s) each, median (min–max); warm-up ${s.warmup} frames/side; compare_timeout ${s.compareTimeoutMs} ms; max_queue_size ${s.maxQueueSize}; lockstep bound ${s.maxAhead}${s.overruns > 0 ? ` (${s.overruns} overruns: QEMU may drop)` : ''}`,
    '',
    line(head),
    line(widths.map((x) => '-'.repeat(x))),
    ...cells.map(line),
  ];
  for (const [mode, r] of Object.entries(rep.ratio)) {
    out.push(`ratio colo-proxy ${mode} / QEMU sockets: frames/s ${fmt(r.framesPerSec)}×, p99 hold ${fmt(r.p99HoldMs)}×, checkpoints ${r.checkpoints === null ? '-' : `${fmt(r.checkpoints)}×`}`);
  }
  return out.join('\n');
}
