/**
 * `colo-proxy diff PRIMARY SECONDARY`: where and why two captures of the same service
 * diverge (docs/diff.md). Exit status like diff(1): 0 identical, 1 diverged, 2 error.
 */
import { writeFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { analyzeDiff, DEFAULT_CONTEXT, DEFAULT_TIMEOUT_MS } from '../analyze/diff/analyze.js';
import { exportDivergences } from '../analyze/diff/export.js';
import { renderDiffHtml } from '../analyze/diff/html.js';
import { attachWouldCheckpoint, wouldCheckpoint } from '../analyze/diff/would-checkpoint.js';
import { renderDiff } from '../analyze/diff/render.js';
import { parseIntOption } from './options.js';

export interface DiffCliOptions {
  client?: string;
  timeout: number;
  json?: boolean;
  export?: string;
  context: number;
  // D: options (--html FILE, --qemu-rules, --no-checkpoints) are added below and land here.
  [k: string]: unknown;
}

function parseMs(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative number of milliseconds, got "${value}"`);
  return n;
}

/** Colour only on a TTY, and never with NO_COLOR set (https://no-color.org). */
function useColour(): boolean {
  return process.stdout.isTTY === true && (process.env['NO_COLOR'] ?? '') === '';
}

export function registerDiff(program: Command): void {
  const cmd = program
    .command('diff')
    .description('compare two captures of the same service (primary and secondary output) in TCP sequence space: per flow identical or the first divergence, its offset, timestamps, bytes and cause')
    .argument('<primary>', 'capture (pcap/pcapng) of the primary\'s output')
    .argument('<secondary>', 'capture (pcap/pcapng) of the secondary\'s output for the same input')
    .option('--client <capture>', 'capture of the client side (the input): its initiators name the clients of flows seen without a handshake')
    .option('--timeout <ms>', 'same bytes later than this on one side are a "timing" divergence', parseMs, DEFAULT_TIMEOUT_MS)
    .option('--context <n>', 'bytes of context shown on each side of a divergence', parseIntOption(0, 4096), DEFAULT_CONTEXT)
    .option('--json', 'print the result as one JSON object (stable schema: docs/diff.md)')
    .option('--export <dir>', 'write DIR/primary.pcapng and DIR/secondary.pcapng: the diverging packets, each with a comment explaining the divergence');
  // D: options — add `.option('--html <file>', …)`, `--qemu-rules`, `--no-checkpoints` here.
  cmd
    .option('--html <file>', 'also write a self-contained HTML page: per-flow timelines (matched, diverged, where checkpoints would fall) and the byte context of each divergence')
    .option('--qemu-rules', "also count the checkpoints QEMU 7.2's colo-compare rules would request (a model of them; docs/diff.md)")
    .option('--no-checkpoints', 'skip the would-checkpoint replay through the compare engine (faster)');
  cmd
    .addHelpText('after', '\nCauses: payload, missing, extra, outcome (RST vs FIN, never answered), timing.\nBenign differences (segmentation, IP ID, TTL, window, TCP options, retransmissions, ACK timing) are counted, never a divergence.\nExit status: 0 identical, 1 diverged, 2 error (unreadable or corrupt capture, no TCP, different link types).')
    .action(async (primary: string, secondary: string, opts: DiffCliOptions) => {
      const result = analyzeDiff(primary, secondary, { timeoutMs: opts.timeout, context: opts.context, clientCapture: opts.client });
      // D: after analysis — fill result.summary.wouldCheckpoint / result.flows[i].wouldCheckpoint and write --html here.
      if (opts['checkpoints'] !== false) {
        // compare_timeout = the timing threshold (a positive integer for the engines).
        const compareTimeoutMs = Math.max(1, Math.round(opts.timeout));
        attachWouldCheckpoint(result, await wouldCheckpoint(primary, secondary, { compareTimeoutMs, qemuRules: opts['qemuRules'] === true }));
      }
      if (typeof opts['html'] === 'string') writeFileSync(opts['html'], renderDiffHtml(result));
      if (opts.export !== undefined) {
        const e = exportDivergences(result, opts.export);
        if (!opts.json) process.stderr.write(`colo-proxy diff: exported ${e.primary.packets} primary and ${e.secondary.packets} secondary packets to ${opts.export}\n`);
      }
      if (opts.json) console.log(JSON.stringify(result, null, 2));
      else console.log(renderDiff(result, useColour()));
      process.exitCode = result.summary.diverged > 0 ? 1 : 0;
    });
}
