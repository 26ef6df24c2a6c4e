/**
 * Tiny shared benchmark harness. Figures on these machines are noisy, so every suite reports
 * its result next to a baseline measured in the same process and prints the ratio.
 *
 * `timed` is a plain timed loop (warm-up, then repeated batches until `minMs`); it is the
 * reference because benchmark.js distorts tight JS loops (toolchain notes §1). `viaBenchmarkJs`
 * cross-checks a case with the `benchmark` package.
 */
import Benchmark from 'benchmark';

export interface BenchRow {
  suite: string;
  name: string;
  /** Operations (frames, records, bytes…) per second. */
  opsPerSec: number;
  unit: string;
  /** Optional throughput in bytes per second. */
  bytesPerSec?: number;
  /** Name of the baseline row this one is compared with (same suite). */
  baseline?: string;
  note?: string;
}

export interface TimedResult {
  opsPerSec: number;
  ops: number;
  ms: number;
}

/** Run `batch` (which performs `opsPerBatch` operations) repeatedly for at least `minMs`. */
export function timed(batch: () => void, opsPerBatch: number, minMs = 400, warmupMs = 100): TimedResult {
  const warmEnd = performance.now() + warmupMs;
  while (performance.now() < warmEnd) batch();
  let ops = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    batch();
    ops += opsPerBatch;
    t = performance.now();
  } while (t - t0 < minMs);
  const ms = t - t0;
  return { opsPerSec: (ops * 1000) / ms, ops, ms };
}

/** Median of several `timed` runs, to damp this VM's noise. */
export function timedMedian(batch: () => void, opsPerBatch: number, runs = 3, minMs = 300): TimedResult {
  const rs: TimedResult[] = [];
  for (let i = 0; i < runs; i++) rs.push(timed(batch, opsPerBatch, minMs, i === 0 ? 100 : 20));
  rs.sort((a, b) => a.opsPerSec - b.opsPerSec);
  return rs[Math.floor(rs.length / 2)]!;
}

/**
 * Median of `runs` single timed passes of a long job (file-sized work, no batching; `pass`
 * returns its op count and may be asynchronous, e.g. a stream-based parser), after one
 * untimed warm-up pass when `warmup` is set.
 */
export async function timedPasses(pass: () => number | Promise<number>, runs: number, warmup = false): Promise<TimedResult> {
  if (warmup) await pass();
  const rs: TimedResult[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const ops = await pass();
    const ms = performance.now() - t0;
    rs.push({ opsPerSec: (ops * 1000) / ms, ops, ms });
  }
  rs.sort((a, b) => a.opsPerSec - b.opsPerSec);
  return rs[Math.floor(rs.length / 2)]!;
}

/** Median of `xs` (the upper one of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median of `runs` results of an asynchronous measurement (e.g. a socket round). */
export async function medianOf(measure: () => Promise<number>, runs = 3): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await measure());
  return median(xs);
}

/** Measure one function with benchmark.js; returns ops/s (one op = one call). */
export function viaBenchmarkJs(name: string, fn: () => void, maxTime = 0.5): number {
  const b = new Benchmark(name, fn, { maxTime });
  b.run({ async: false });
  return b.hz;
}

export function fmtRate(v: number): string {
  if (v >= 1e9) return `${(v / 1e9).toFixed(2)} G`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k`;
  return v.toFixed(1);
}

export function fmtBytes(v: number): string {
  return `${fmtRate(v)}B/s`;
}

/** Render rows as a plain-text table with a ratio column against each row's baseline. */
export function renderTable(rows: readonly BenchRow[]): string {
  const byKey = new Map(rows.map((r) => [`${r.suite}\u0000${r.name}`, r]));
  const cells = rows.map((r) => {
    const base = r.baseline ? byKey.get(`${r.suite}\u0000${r.baseline}`) : undefined;
    const ratio = base ? `${(r.opsPerSec / base.opsPerSec).toFixed(2)}× ${r.baseline}` : '';
    return [r.suite, r.name, `${fmtRate(r.opsPerSec)} ${r.unit}/s`, r.bytesPerSec ? fmtBytes(r.bytesPerSec) : '', ratio, r.note ?? ''];
  });
  const head = ['suite', 'case', 'rate', 'throughput', 'ratio', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
