/**
 * `colo-proxy replay CAPTURE (--tap NAME | --connect ENDPOINT)`: replay a capture live, like
 * tcpreplay, into a tap device or over QEMU chardev framing to a socket (docs/replay.md).
 */
import type { Command } from 'commander';
import { ColoError } from '../errors.js';
import { openSocketSink, openTapSink } from '../replay/frame-sink.js';
import type { FrameSink } from '../replay/frame-sink.js';
import { loadCapture, replayFrames } from '../replay/live-replay.js';
import type { ReplayResult } from '../replay/live-replay.js';
import { Progress } from '../util/progress.js';
import { MAX_VNET_HDR_LEN } from '../wire/framing.js';
import { parseIntOption } from './options.js';
import { addPaceOptions, paceFromFlags, type PaceFlags } from './pace-options.js';

interface ReplayCliOptions extends PaceFlags {
  tap?: string;
  connect?: string;
  loop: number;
  vnetHdr?: number | true;
  connectTimeout: number;
  allowRemote?: boolean;
  json?: boolean;
  quiet?: boolean;
}

const vnetOption = parseIntOption(1, 64);

/** Register `replay` on `program`. */
export function registerReplay(program: Command): void {
  const cmd = program
    .command('replay')
    .description('replay a capture live, like tcpreplay: into a tap device, or over QEMU chardev framing to a socket')
    .argument('<capture>', 'pcap or pcapng file (frames made Ethernet; the whole capture is loaded into memory)')
    .option('--tap <name>', 'write the frames into tap NAME (attaches to an existing tap; create it up beforehand: ip tuntap add dev NAME mode tap && ip link set NAME up)')
    .option('--connect <endpoint>', 'send QEMU-framed frames to tcp:HOST:PORT or unix:PATH; with ,server listen and wait for one peer');
  addPaceOptions(cmd, 'realtime')
    .option('--loop <n>', 'times through the capture', parseIntOption(1, 1_000_000), 1)
    .option('--vnet-hdr [len]', `put a zeroed virtio-net header of LEN bytes (default 10) before each frame: the vnet_hdr_len field on a socket (QEMU vnet_hdr_support=on; LEN <= ${MAX_VNET_HDR_LEN}), IFF_VNET_HDR on a tap`, (v) => vnetOption(v))
    .option('--connect-timeout <ms>', 'give up when no peer is connected after this long', parseIntOption(1, 3_600_000), 10_000)
    .option('--allow-remote', 'allow listening on a non-loopback address (the stream is unauthenticated)')
    .option('--json', 'print the final figures as one JSON object')
    .option('-q, --quiet', 'no progress on stderr')
    .addHelpText('after', `
Prints one summary line at the end: frames, bytes (Ethernet, vnet headers excluded), seconds and
the rate achieved. SIGINT stops early and still prints it. Exit status 2 when frames were
refused (a tap that is down refuses everything: errno EIO). See docs/replay.md.

Examples:
  colo-proxy replay captures/demo-http.pcapng --connect unix:/run/colo/sec-in.sock --pace x2
  colo-proxy replay captures/bulk-tcp.pcapng --tap ctap0 --pace pps:20000 --loop 10`)
    .action(async (file: string, opts: ReplayCliOptions) => {
      if ((opts.tap === undefined) === (opts.connect === undefined)) throw new ColoError('ERR_INVALID_ARGUMENT', 'replay: give exactly one of --tap NAME or --connect ENDPOINT');
      const pace = paceFromFlags(opts, { kind: 'multiplier', factor: 1 });
      const vnetHdrLen = opts.vnetHdr === undefined ? 0 : opts.vnetHdr === true ? 10 : opts.vnetHdr;
      if (opts.connect !== undefined && vnetHdrLen > MAX_VNET_HDR_LEN) throw new ColoError('ERR_INVALID_ARGUMENT', `replay: --vnet-hdr ${vnetHdrLen}: the chardev stream allows at most ${MAX_VNET_HDR_LEN}`);
      if (opts.tap !== undefined && vnetHdrLen > 0 && vnetHdrLen < 10) throw new ColoError('ERR_INVALID_ARGUMENT', `replay: --vnet-hdr ${vnetHdrLen}: a tap's virtio-net header is 10..64 bytes`);
      const cap = loadCapture(file, vnetHdrLen);
      if (cap.handles.length === 0) throw new ColoError('ERR_INVALID_ARGUMENT', `replay: ${file} has no Ethernet-convertible frames`);
      const sink: FrameSink = opts.tap !== undefined
        ? openTapSink({ name: opts.tap, pool: cap.pool, vnetHdrLen })
        : await openSocketSink({ endpoint: opts.connect!, pool: cap.pool, vnetHdr: vnetHdrLen > 0, connectTimeoutMs: opts.connectTimeout, allowRemote: opts.allowRemote === true });
      const abort = new AbortController();
      const onSig = (): void => abort.abort();
      process.once('SIGINT', onSig);
      const total = cap.handles.length * opts.loop;
      const progress = new Progress({ label: 'replay', total, enabled: opts.quiet !== true });
      let r: ReplayResult;
      try {
        r = await replayFrames(cap, sink, { pace, loop: opts.loop, signal: abort.signal, onProgress: (n) => progress.update(n, `${n}/${total} frames`) });
      } finally {
        progress.done();
        process.removeListener('SIGINT', onSig);
        await sink.close();
      }
      const st = sink.stats();
      const summary = {
        target: sink.label, frames: r.frames, bytes: r.bytes, seconds: r.seconds,
        framesPerSec: r.seconds > 0 ? r.frames / r.seconds : null, mbitPerSec: r.seconds > 0 ? (r.bytes * 8) / r.seconds / 1e6 : null,
        loops: opts.loop, skipped: cap.skipped, refused: st.errors, lastErrno: st.lastErrno, waits: r.waits, aborted: r.aborted,
      };
      if (opts.json) console.log(JSON.stringify(summary, null, 2));
      else console.log(renderReplay(summary));
      if (st.errors > 0) {
        process.stderr.write(`colo-proxy replay: ${st.errors} of ${r.frames} frames refused by ${sink.label} (last errno ${st.lastErrno}${opts.tap !== undefined ? ': is the interface up?' : ''})\n`);
        process.exitCode = 2;
      }
    });
}

function renderReplay(s: { target: string; frames: number; bytes: number; seconds: number; framesPerSec: number | null; mbitPerSec: number | null; skipped: number; refused: number; aborted: boolean }): string {
  const rate = s.framesPerSec === null ? '' : `: ${Math.round(s.framesPerSec)} frames/s, ${s.mbitPerSec!.toFixed(1)} Mbit/s`;
  const extra = [s.skipped > 0 ? `${s.skipped} records skipped` : '', s.refused > 0 ? `${s.refused} refused` : '', s.aborted ? 'stopped early' : ''].filter((x) => x !== '');
  return `replayed ${s.frames} frames (${s.bytes} bytes) to ${s.target} in ${s.seconds.toFixed(3)} s${rate}${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`;
}
