/**
 * Replay bench on the bundled workloads (captures/workloads/: http-identical, bulk,
 * http-diverge), through the same core as `colo-proxy bench replay` (src/replay/bench-*.ts):
 * colo-proxy in process and over sockets (the compare command in a child process), and QEMU's
 * colo-compare over the same sockets when qemu-system-x86_64 exists. Same plan, feeder,
 * framing, pacing and warm-up for every row: topspeed, median of 3 runs, for the identical
 * workloads; the capture's own timing, one run, for a workload with labelled divergences.
 *
 * QEMU needs the secondary's TCP data in the primary's sequence space (filter-rewriter's job
 * in a deployment; without it nearly every segment is a checkpoint, docs/bench.md): a bundled
 * workload made without `--rewrite-isn` is regenerated for this suite, from its manifest
 * (capture, seed, jitter, divergences), with rewriteIsn into a temp dir; the row says so.
 *
 * Rows: frames/s of both inputs; QEMU's row is the baseline of its workload, so the ratio
 * column reads "colo-proxy / QEMU". The note carries hold latency, checkpoints and the
 * missed/spurious score against the workload's ground truth (QEMU's from counts).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { makeWorkload, type WorkloadManifest } from '../src/replay/workload.js';
import { loadBenchWorkload } from '../src/replay/bench-workload.js';
import { runReplayBench } from '../src/replay/bench-replay.js';
import type { BenchRowReport } from '../src/replay/bench-report.js';
import { qemuAvailable } from '../src/replay/qemu-process.js';
import type { BenchRow } from './harness.js';
import { projectRoot } from './paths.js';

const SUITE = 'workload';
const RUNS = 3;
/** The bundled workloads, in this order when present. */
const PREFERRED = ['http-identical', 'bulk', 'http-diverge'];

function rowName(workload: string, r: BenchRowReport): string {
  return `${workload}: ${r.engine === 'qemu' ? 'QEMU colo-compare' : 'colo-proxy'} ${r.mode}`;
}

function note(r: BenchRowReport): string {
  const score = r.missed === null ? '' : `, missed ${r.missed} spurious ${r.spurious}${r.causesKnown ? '' : ' (from counts)'}`;
  const extra = [r.stragglers > 0 ? `${r.stragglers} stragglers` : '', r.drops ? `${r.drops} DROPPED` : '', ...r.problems.map((p) => `PROBLEM ${p}`)].filter((x) => x !== '');
  return (
    `hold p50 ${r.p50HoldMs.toFixed(3)} / p99 ${r.p99HoldMs.toFixed(3)} ms; ${r.checkpoints} checkpoints${score}; ` +
    `median of ${r.runs} (${Math.round(r.framesPerSecMin / 1000)}–${Math.round(r.framesPerSecMax / 1000)}k frames/s)${extra.length > 0 ? `; ${extra.join('; ')}` : ''}`
  );
}

export async function run(): Promise<BenchRow[]> {
  const root = join(projectRoot(), 'captures', 'workloads');
  if (!existsSync(root)) throw new Error(`bench workload: ${root} is missing (scripts/make-bundled-workloads.sh makes it)`);
  const present = readdirSync(root).filter((d) => existsSync(join(root, d, 'primary.pcap')));
  const names = [...PREFERRED.filter((n) => present.includes(n)), ...present.filter((n) => !PREFERRED.includes(n)).sort()];
  const hasQemu = qemuAvailable();
  if (!hasQemu) process.stderr.write('bench workload: qemu-system-x86_64 not found, QEMU rows skipped\n');
  const rows: BenchRow[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'colo-bench-wl-'));
  try {
    for (const bundled of names) {
      let dir = join(root, bundled);
      let name = bundled;
      const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as WorkloadManifest;
      if (!m.rewriteIsn) {
        const capture = isAbsolute(m.capture) ? m.capture : join(projectRoot(), m.capture);
        dir = join(tmp, bundled);
        makeWorkload(capture, dir, { seed: m.seed, jitterUs: m.jitterUs, diverge: m.diverge, rewriteIsn: true });
        name = `${bundled} (rewrite-isn)`;
      }
      const w = loadBenchWorkload({ dir });
      // A workload with labelled divergences is replayed at its capture's own timing: "late"
      // and the timeout kinds only mean something in real time (at topspeed a late frame is
      // not late), and checkpoints, not frames/s, are what that row is for.
      const diverging = m.groundTruth.length > 0;
      if (diverging) name = `${name}, capture timing`;
      const { report } = await runReplayBench({ workload: w, modes: ['in-process', 'sockets'], againstQemu: hasQemu, runs: diverging ? 1 : RUNS, ...(diverging ? { pace: { speed: 1 } } : {}) });
      const q = report.runs.find((r) => r.engine === 'qemu');
      // QEMU first: it is the baseline of the workload's other rows.
      for (const r of [...report.runs].sort((a, b) => (a.engine === 'qemu' ? -1 : b.engine === 'qemu' ? 1 : 0))) {
        rows.push({
          suite: SUITE,
          name: rowName(name, r),
          opsPerSec: r.framesPerSec,
          unit: 'frame',
          bytesPerSec: (r.gbitPerSec * 1e9) / 8,
          ...(q !== undefined && r !== q ? { baseline: rowName(name, q) } : {}),
          note: note(r),
        });
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./harness.js');
  console.log(renderTable(await run()));
}
