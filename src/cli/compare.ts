/**
 * `colo-proxy compare`: a drop-in for QEMU's `-object colo-compare`, on the same chardev
 * sockets with the same option names, plus offline (`pcap:`) inputs and outputs.
 */
import type { Command } from 'commander';
import { ColoError } from '../errors.js';
import { runCompare, type CompareCliOptions } from './compare-run.js';
import { parseIntOption } from './options.js';

export function registerCompare(program: Command): void {
  program
    .command('compare')
    .description("compare the primary and secondary VMs' output like QEMU's colo-compare; release matching primary output, request checkpoints on divergence")
    .requiredOption('--primary_in <endpoint>', "primary VM's output (QEMU's filter-redirector outdev): tcp:HOST:PORT[,server], unix:PATH[,server] or pcap:FILE")
    .requiredOption('--secondary_in <endpoint>', "secondary VM's output (the secondary's filter-redirector): same forms")
    .requiredOption('--outdev <endpoint>', 'where released primary frames go (the primary\'s indev redirector): socket endpoint, or pcap:FILE to write a capture')
    .option('--vnet_hdr_support', 'frames carry the u32 vnet_hdr_len field (must match the filters)', false)
    .option('--compare_timeout <ms>', 'a primary packet unmatched this long is a divergence', parseIntOption(1, 2 ** 32 - 1), 3000)
    .option('--expired_scan_cycle <ms>', 'how often held packets are checked against compare_timeout', parseIntOption(1, 2 ** 32 - 1), 1000)
    .option('--max_queue_size <n>', 'held frames per flow (primary + secondary) before a checkpoint is requested (held, never dropped)', parseIntOption(1, 2 ** 31 - 1), 1024)
    .option('--qmp <endpoint>', "the primary QEMU's QMP socket: checkpoints via migrate-set-parameters x-checkpoint-delay, flushed on RESUME")
    .option('--notify_dev <endpoint>', 'Xen-style checkpoint channel: send DO_CHECKPOINT, flush on COLO_CHECKPOINT')
    .option('--checkpoint-log <path>', 'append one JSON object per checkpoint request (cause, flow, offset, bytes, …)')
    .option('--divergence-log <path>', 'append one JSON object per divergence found, including those that joined a checkpoint already pending ("requested": false)')
    .option('--realtime', 'pcap: inputs are replayed at capture timing (default: as fast as possible)', false)
    .option('--allow-remote', 'allow listening on non-loopback addresses (the stream is unauthenticated)', false)
    .option('--json', 'print the final statistics as JSON', false)
    .option('-q, --quiet', 'no progress or periodic statistics on stderr', false)
    .addHelpText(
      'after',
      `
Without --qmp or --notify_dev every requested checkpoint completes at once (shadow mode:
"what would COLO do with this traffic"); flows keep their stream alignment, so one diverging
flow never makes the others look diverged.

Socket endpoints default to loopback; a client endpoint reconnects (reconnect=SECONDS or
reconnect-ms=MS, default 1 s). pcap: inputs must be used for both inputs together; they are
read in timestamp order across both files. Statistics go to stdout when the run ends (end of
the pcap inputs, or SIGINT/SIGTERM, which first releases every held primary frame).

Example (primary QEMU started with the filters of docs/deploy.md):
  colo-proxy compare --primary_in tcp:127.0.0.1:9001 --outdev tcp:127.0.0.1:9005 \\
    --secondary_in tcp:127.0.0.1:9004,server --qmp unix:/run/colo/proxy-qmp.sock`,
    )
    .action(async (opts: CompareCliOptions) => {
      if (opts.qmp && opts.notify_dev) throw new ColoError('ERR_INVALID_ARGUMENT', 'give --qmp or --notify_dev, not both');
      process.exitCode = await runCompare(opts);
    });
}
