/**
 * `colo-proxy workload make CAPTURE --out DIR`: build a primary/secondary workload pair with
 * optional labelled divergences (src/replay/workload.ts; docs/workload.md).
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { ColoError } from '../errors.js';
import { DIVERGE_GRAMMAR, formatDivergeSpec, makeWorkload, parseDivergeSpec } from '../replay/workload.js';
import type { DivergeSpec, WorkloadManifest } from '../replay/workload.js';
import { parseIntOption } from './options.js';

interface MakeOptions {
  out: string;
  diverge?: DivergeSpec[];
  seed: number;
  rewriteIsn?: boolean;
  jitterUs: number;
  retransmitPct: number;
  midStreamServer: 'first-receiver' | 'lower-port';
  json?: boolean;
}

/** commander collector: each `--diverge` parsed at once, so a bad one is named before any work. */
function collectDiverge(value: string, prev: DivergeSpec[] | undefined): DivergeSpec[] {
  try {
    return [...(prev ?? []), parseDivergeSpec(value)];
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function parseMidStream(value: string): 'first-receiver' | 'lower-port' {
  if (value !== 'first-receiver' && value !== 'lower-port') throw new InvalidArgumentError(`expected first-receiver or lower-port, got "${value}"`);
  return value;
}

/** Register `workload` (with its `make` subcommand) on `program`. */
export function registerWorkload(program: Command): void {
  const wl = program
    .command('workload')
    .description('build primary/secondary workload pairs from real captures, with labelled divergences (for bench replay)');
  wl.command('make')
    .description("derive the primary's frames (the capture's server side) and an independent secondary's for the same traffic; write DIR/primary.pcap, DIR/secondary.pcap, DIR/manifest.json")
    .argument('<capture>', 'pcap or pcapng file of real traffic')
    .requiredOption('-o, --out <dir>', 'output folder (created; its three files are replaced)')
    .option('-d, --diverge <spec>', 'inject a labelled divergence into the secondary (repeatable; forms below)', collectDiverge)
    .option('--seed <n>', 'PRNG seed: same capture, options and seed give the same files', parseIntOption(0, 2 ** 32 - 1), 1)
    .option('--rewrite-isn', "number the secondary's data in the primary's sequence space (as QEMU's filter-rewriter would)")
    .option('--jitter-us <n>', "upper bound of the secondary's extra delay per frame (µs)", parseIntOption(0, 10_000_000), 200)
    .option('--retransmit-pct <n>', "percentage of the secondary's data segments it retransmits on its own (0–100)", parseIntOption(0, 100), 1)
    .option('--mid-stream-server <rule>', 'server of a connection seen without its handshake: first-receiver or lower-port', parseMidStream, 'first-receiver')
    .option('--json', 'print the manifest as JSON instead of the summary')
    .addHelpText('after', `\n${DIVERGE_GRAMMAR}

The manifest's groundTruth lists, per divergence, the flow, offset and the checkpoint cause
colo-proxy compare should report. See docs/workload.md.

Example:
  colo-proxy workload make captures/demo-http.pcapng --out /tmp/wl \\
    --diverge byte@1000 --diverge missing@2000+1448 --diverge udp#0`)
    .action((capture: string, opts: MakeOptions) => {
      const diverge = opts.diverge ?? [];
      const w = makeWorkload(capture, opts.out, {
        seed: opts.seed, rewriteIsn: opts.rewriteIsn === true, jitterUs: opts.jitterUs, retransmitPct: opts.retransmitPct, diverge, midStreamServer: opts.midStreamServer,
      });
      if (w.manifest.counts.primaryFrames === 0) throw new ColoError('ERR_INVALID_ARGUMENT', `workload: ${capture} has no TCP or UDP server frames to build a workload from`);
      if (opts.json) console.log(JSON.stringify(w.manifest, null, 2));
      else console.log(renderWorkload(w.manifest, opts.out));
    });
}

/** The human summary of a made workload. */
export function renderWorkload(m: WorkloadManifest, out: string): string {
  const c = m.counts;
  const lines = [
    `workload ${out}: ${c.primaryFrames} primary frames, ${c.secondaryFrames} secondary frames; ${c.tcpConnections} TCP connections, ${c.udpFlows} UDP flows, ${c.skipped} frames skipped`,
    `seed ${m.seed}, jitter ${m.jitterUs} µs${m.rewriteIsn ? ', ISN rewritten' : ''}`,
  ];
  if (m.groundTruth.length === 0) lines.push('no divergences (an identical pair: compare should request no checkpoint)');
  for (const [i, g] of m.groundTruth.entries()) {
    lines.push(`divergence ${formatDivergeSpec(m.diverge[i]!)}: ${g.flow} ${g.offsetUnit} ${g.offset} → expect cause ${g.cause}`);
  }
  return lines.join('\n');
}
