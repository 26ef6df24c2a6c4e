/**
 * `colo-proxy bench replay`: a workload (or a plain primary/secondary pair) through colo-proxy
 * in process and over sockets, optionally against QEMU's colo-compare, with the same feeder,
 * framing, pacing and warm-up; a table (or JSON, or an HTML page) with frames/s, hold latency,
 * checkpoints, missed and spurious divergences. See docs/bench.md.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ColoError } from '../errors.js';
import { benchHtml } from '../replay/bench-html.js';
import { renderReport } from '../replay/bench-report.js';
import { runReplayBench } from '../replay/bench-replay.js';
import type { BenchMode } from '../replay/bench-run.js';
import { loadBenchWorkload } from '../replay/bench-workload.js';
import { Progress } from '../util/progress.js';
import { parseIntOption } from './options.js';
import { addPaceOptions, feedPace, paceFromFlags, type PaceFlags } from './pace-options.js';

interface BenchReplayOptions extends PaceFlags {
  primary?: string;
  secondary?: string;
  mode: 'in-process' | 'sockets' | 'all';
  againstQemu: boolean;
  runs: number;
  warmup: number;
  compareTimeout: number;
  maxQueueSize: number;
  json: boolean;
  html?: string;
  quiet: boolean;
}

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks on captures: colo-proxy against QEMU colo-compare');
  const replay = bench
    .command('replay')
    .description('replay a primary/secondary workload through the compare engine(s); frames/s, hold latency, checkpoints, missed and spurious divergences')
    .argument('[workload]', 'workload directory (primary.pcap, secondary.pcap, manifest.json with the ground truth), as written by `colo-proxy workload make`')
    .option('--primary <file>', 'primary capture of a plain pair (no ground truth); with --secondary instead of WORKLOAD')
    .option('--secondary <file>', 'secondary capture of a plain pair')
    .option('--mode <mode>', 'colo-proxy modes: in-process (the engine alone), sockets (the compare command over unix sockets with QEMU framing), all', 'all')
    .option('--against-qemu', "also run QEMU's colo-compare (qemu-system-x86_64, guest-less) over the same sockets, framing and pacing; prints colo-proxy/QEMU ratios", false)
    .option('--runs <n>', 'repetitions per engine and mode (median and min–max are reported)', parseIntOption(1, 1000), 3)
    .option('--warmup <frames>', 'warm-up frames (at least) before each run: copies of the workload\'s own TCP/UDP frames on other ports, both sides as they are for a workload without divergences, else the primary\'s on both sides; 0 = none', parseIntOption(0, 10_000_000), 20_000);
  addPaceOptions(replay, 'topspeed')
    .option('--compare-timeout <ms>', 'compare_timeout for both engines (a primary frame unmatched this long requests a checkpoint)', parseIntOption(1, 2 ** 32 - 1), 3000)
    .option('--max-queue-size <n>', 'max_queue_size for both engines; the feeder keeps each side at most half of it ahead per connection', parseIntOption(2, 2 ** 31 - 1), 1024)
    .option('--json', 'print the report as JSON (schema: docs/bench.md)', false)
    .option('--html <file>', 'write a self-contained HTML report (latency histograms, checkpoint timeline)')
    .option('-q, --quiet', 'no progress bar', false)
    .addHelpText(
      'after',
      `
Rows: colo-proxy in-process, colo-proxy sockets (the \`compare\` command in a child process),
QEMU sockets (with --against-qemu). Checkpoints complete at once (colo-proxy shadow mode,
QEMU COLO_CHECKPOINT on notify_dev). missed/spurious are scored against manifest.json's
groundTruth; QEMU reports no causes, so its figures come from counts (docs/bench.md).

Example:
  colo-proxy bench replay captures/workloads/http-diverge --against-qemu --runs 3 --html report.html`,
    )
    .action(async (dir: string | undefined, opts: BenchReplayOptions) => {
      const pair = opts.primary !== undefined || opts.secondary !== undefined;
      if (pair && dir !== undefined) throw new ColoError('ERR_INVALID_ARGUMENT', 'give a WORKLOAD directory or --primary/--secondary, not both');
      if (pair && (opts.primary === undefined || opts.secondary === undefined)) throw new ColoError('ERR_INVALID_ARGUMENT', '--primary and --secondary go together');
      if (!pair && dir === undefined) throw new ColoError('ERR_INVALID_ARGUMENT', 'missing WORKLOAD directory (or --primary FILE --secondary FILE)');
      const modes: BenchMode[] = opts.mode === 'all' ? ['in-process', 'sockets'] : opts.mode === 'in-process' || opts.mode === 'sockets' ? [opts.mode] : [];
      if (modes.length === 0) throw new ColoError('ERR_INVALID_ARGUMENT', `--mode: expected in-process, sockets or all, got "${opts.mode}"`);
      const pace = feedPace(paceFromFlags(opts, { kind: 'topspeed' }));
      const workload = loadBenchWorkload(pair ? { primary: opts.primary!, secondary: opts.secondary! } : { dir: dir! });
      const progress = new Progress({ label: 'bench replay', total: 1, enabled: !opts.quiet });
      const { report, details } = await runReplayBench({
        workload,
        modes,
        againstQemu: opts.againstQemu,
        runs: opts.runs,
        warmup: opts.warmup,
        pace,
        engine: { compareTimeoutMs: opts.compareTimeout, maxQueueSize: opts.maxQueueSize },
        onProgress: (done, total, label) => progress.update(done / total, label),
      });
      progress.done();
      if (opts.html !== undefined) writeFileSync(opts.html, benchHtml(report, details));
      if (opts.json) console.log(JSON.stringify(report, null, 2));
      else console.log(renderReport(report));
    });
}
