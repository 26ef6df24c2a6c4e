/**
 * Wiring for `colo-proxy compare`: sources (chardev sockets or capture files) → CompareEngine
 * → sink (chardev socket or capture file), with a checkpoint controller (QMP, notify_dev or
 * shadow). The engine decides; this module only moves frames and keeps the promises the
 * engine makes:
 *
 * - A released primary frame is never dropped here. When the output is not connected or its
 *   writer pushes back, released frames wait in a queue (bounded by the pool) and the inputs
 *   are paused until the output drains.
 * - When the engine asks for backpressure (a held budget passed, checkpoint pending) or the
 *   pool is exhausted, the inputs stop being read; nothing is discarded.
 * - On SIGINT/SIGTERM or the end of pcap inputs, the engine is closed, which releases every
 *   held primary frame to the output before exit.
 */
import { appendFileSync } from 'node:fs';
import { PcapWriter } from '../capture/writer.js';
import { CompareEngine } from '../compare/engine.js';
import type { DivergenceRecord } from '../compare/divergence.js';
import { ControllerPort } from '../compare/checkpoint-port.js';
import { replayCapturePair } from '../compare/offline-replay.js';
import type { CheckpointController } from '../control/checkpoint.js';
import { NotifyDevController } from '../control/notify-dev.js';
import { QmpCheckpointController } from '../control/qmp-checkpoint.js';
import { QmpClient } from '../control/qmp-client.js';
import { ShadowCheckpointController } from '../control/shadow-checkpoint.js';
import { ColoError } from '../errors.js';
import { PacketPool } from '../packet/pool.js';
import { createLogger, type Logger } from '../util/log.js';
import { FramedChannel } from '../wire/connection.js';

/**
 * Client endpoints (the usual role in a deployment, docs/deploy.md) read into one reused
 * buffer: no 64 KiB allocation and no stream machinery per read (about 30 % less CPU per frame
 * in bench/compare-sockets with the command connecting). Listening endpoints cannot.
 */
const READ_BUFFER = 65_536;

/** `readBuffer` for a socket endpoint: only a connecting (client) one can use it. */
function readBufferFor(endpoint: string): { readBuffer?: number } {
  return /,server(,|$)/.test(endpoint) ? {} : { readBuffer: READ_BUFFER };
}

export interface CompareCliOptions {
  primary_in: string;
  secondary_in: string;
  outdev: string;
  vnet_hdr_support: boolean;
  compare_timeout: number;
  expired_scan_cycle: number;
  max_queue_size: number;
  qmp?: string;
  notify_dev?: string;
  checkpointLog?: string;
  divergenceLog?: string;
  realtime: boolean;
  allowRemote: boolean;
  json: boolean;
  quiet: boolean;
}

/** Where released primary frames go. `write` returns false when the frame could not be taken now. */
interface Sink {
  write(pool: PacketPool, h: number, nowMs: number): boolean;
  /** Called when a refused write may succeed again. */
  onReady(cb: () => void): void;
  close(): Promise<void>;
  stats(): Record<string, unknown>;
}

const PCAP = 'pcap:';

function isPcap(ep: string): boolean {
  return ep.startsWith(PCAP);
}

export async function runCompare(opts: CompareCliOptions): Promise<number> {
  const log = createLogger({ level: opts.quiet ? 'warn' : 'info', bindings: { cmd: 'compare' } });
  const offline = isPcap(opts.primary_in) || isPcap(opts.secondary_in);
  if (offline && !(isPcap(opts.primary_in) && isPcap(opts.secondary_in))) {
    throw new ColoError('ERR_INVALID_ARGUMENT', '--primary_in and --secondary_in must both be pcap: endpoints, or both sockets');
  }
  const pool = new PacketPool();
  const { controller, closeControl } = makeController(opts, log);
  const port = new ControllerPort(controller, { shadow: controller instanceof ShadowCheckpointController });
  const sink = await makeSink(opts, pool, log);
  const held: number[] = [];
  let heldHead = 0;
  let inputPaused = false;
  const inputs: { pause(): void; resume(): void }[] = [];
  const setPaused = (p: boolean): void => {
    if (p === inputPaused) return;
    inputPaused = p;
    for (const i of inputs) (p ? i.pause() : i.resume());
  };
  const wantPause = (): boolean => !engine.wantsInput() || heldHead < held.length;
  let now = (): number => performance.now();

  const engine: CompareEngine = new CompareEngine({
    pool,
    checkpoint: port,
    limits: { compareTimeoutMs: opts.compare_timeout, expiredScanCycleMs: opts.expired_scan_cycle, maxFlowHeldPackets: opts.max_queue_size },
    now: () => now(),
    release: (h) => {
      // Keep per-flow order: once anything waits, everything after it waits too.
      if (heldHead === held.length && sink.write(pool, h, engine.nowMs)) {
        pool.release(h);
        return;
      }
      held.push(h);
      setPaused(true);
    },
    onDivergence: (r) => logDivergence(opts, r, log),
    onBackpressure: () => setPaused(wantPause()),
  });
  const detach = port.attach(engine);
  const drainHeld = (): void => {
    while (heldHead < held.length) {
      const h = held[heldHead]!;
      if (!sink.write(pool, h, engine.nowMs)) return;
      pool.release(h);
      heldHead++;
    }
    held.length = 0;
    heldHead = 0;
    setPaused(wantPause());
  };
  sink.onReady(drainHeld);

  let stopped = false;
  const shutdown = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    engine.close();
    drainHeld();
    // Frames the sink still refuses (output gone) are reported, never silently lost.
    if (heldHead < held.length) log.error('output unavailable at shutdown: released frames not delivered', { frames: held.length - heldHead });
    for (let i = heldHead; i < held.length; i++) pool.release(held[i]!);
    detach();
    await controller.close();
    await closeControl();
  };

  if (offline) {
    now = () => engine.nowMs;
    await replayCapturePair(opts.primary_in.slice(PCAP.length), opts.secondary_in.slice(PCAP.length), pool, engine, {
      realtime: opts.realtime,
      paused: () => inputPaused,
      // The end of a file is not the end of time: what is still held then would time out on a
      // live link, so let it, and its records are written, before closing releases it.
      drainMs: opts.compare_timeout + opts.expired_scan_cycle,
    });
    await shutdown();
  } else {
    await runLive(opts, pool, engine, inputs, log, () => stopped, shutdown);
  }
  await sink.close();
  printSummary(opts, engine, controller, sink, pool);
  return 0;
}

/** The checkpoint controller for the options, and what else must be closed with it. */
function makeController(opts: CompareCliOptions, log: Logger): { controller: CheckpointController; closeControl: () => Promise<void> } {
  if (opts.qmp) {
    const qmp = new QmpClient({ endpoint: opts.qmp, logger: log.child({ part: 'qmp' }) });
    qmp.start();
    // The controller does not own the client (it may be shared): close both.
    return { controller: new QmpCheckpointController({ qmp }), closeControl: () => qmp.close() };
  }
  if (opts.notify_dev) {
    const nd = new NotifyDevController({ endpoint: opts.notify_dev, allowRemote: opts.allowRemote, vnetHdrSupport: opts.vnet_hdr_support, logger: log.child({ part: 'notify_dev' }) });
    void nd.start();
    return { controller: nd, closeControl: async () => {} };
  }
  return { controller: new ShadowCheckpointController(), closeControl: async () => {} };
}

function logDivergence(opts: CompareCliOptions, r: DivergenceRecord, log: Logger): void {
  if (r.requested) log.info('checkpoint requested', { cause: r.cause, flow: r.flow, offset: r.offset, checkpoint: r.checkpoint });
  if ((opts.checkpointLog && r.requested) || opts.divergenceLog) {
    const line = JSON.stringify(r) + '\n';
    if (opts.checkpointLog && r.requested) appendFileSync(opts.checkpointLog, line);
    if (opts.divergenceLog) appendFileSync(opts.divergenceLog, line);
  }
}

async function makeSink(opts: CompareCliOptions, pool: PacketPool, log: Logger): Promise<Sink> {
  if (isPcap(opts.outdev)) {
    const w = new PcapWriter(opts.outdev.slice(PCAP.length));
    let frames = 0;
    return {
      write(p, h, nowMs) {
        // Offline, nowMs is capture time (epoch ms); live, it is performance.now() time.
        const t = nowMs >= 1e11 ? nowMs : performance.timeOrigin + nowMs;
        w.write(p.buffer(h), p.offset(h), p.length(h), Math.floor(t / 1000), Math.round((t % 1000) * 1e6) % 1_000_000_000);
        frames++;
        return true;
      },
      onReady() {},
      async close() {
        w.close();
      },
      stats: () => ({ kind: 'pcap', path: opts.outdev.slice(PCAP.length), frames }),
    };
  }
  let ready: () => void = () => {};
  const ch = new FramedChannel({
    endpoint: opts.outdev,
    allowRemote: opts.allowRemote,
    vnetHdr: opts.vnet_hdr_support,
    pool,
    onFrame: (h) => pool.release(h), // the outdev carries no input; anything sent back is ignored
    onConnected: (peer) => {
      log.info('outdev connected', { peer });
      ready();
    },
    onDisconnected: (reason) => (reason === 'closed' ? log.info : log.warn)('outdev disconnected', { reason }),
    onError: (err) => log.warn('outdev error', { err }),
    onDrain: () => ready(),
    ...readBufferFor(opts.outdev),
  });
  await ch.start();
  return {
    write(p, h) {
      if (!ch.connected || ch.backpressured) return false;
      return ch.writeHandle(h);
    },
    onReady(cb) {
      ready = cb;
    },
    async close() {
      ch.flush();
      await ch.close();
    },
    stats: () => ({ kind: 'socket', ...ch.stats() }),
  };
}

async function runLive(
  opts: CompareCliOptions,
  pool: PacketPool,
  engine: CompareEngine,
  inputs: { pause(): void; resume(): void }[],
  log: Logger,
  stopped: () => boolean,
  shutdown: () => Promise<void>,
): Promise<void> {
  const mk = (name: 'primary_in' | 'secondary_in', side: 'primary' | 'secondary'): FramedChannel => {
    const ch = new FramedChannel({
      endpoint: opts[name],
      allowRemote: opts.allowRemote,
      vnetHdr: opts.vnet_hdr_support,
      pool,
      onFrame: (h) => (side === 'primary' ? engine.primary(h, performance.now()) : engine.secondary(h, performance.now())),
      onConnected: (peer) => log.info(`${name} connected`, { peer }),
      // 'closed' is our own shutdown; anything else is the peer or the network.
      onDisconnected: (reason) => (reason === 'closed' ? log.info : log.warn)(`${name} disconnected`, { reason }),
      onError: (err) => log.warn(`${name} error`, { err }),
      ...readBufferFor(opts[name]),
    });
    inputs.push({ pause: () => ch.pauseReading(), resume: () => ch.resumeReading() });
    return ch;
  };
  const pri = mk('primary_in', 'primary');
  const sec = mk('secondary_in', 'secondary');
  await Promise.all([pri.start(), sec.start()]);
  const tickEvery = Math.max(10, Math.min(100, Math.floor(opts.expired_scan_cycle / 4)));
  const timer = setInterval(() => engine.tick(performance.now()), tickEvery);
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      if (stopped()) return;
      log.info('stopping', { signal: sig });
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  clearInterval(timer);
  await shutdown();
  await Promise.all([pri.close(), sec.close()]);
}

function printSummary(opts: CompareCliOptions, engine: CompareEngine, controller: CheckpointController, sink: Sink, pool: PacketPool): void {
  const acc = engine.accounting();
  const st = engine.statsSnapshot();
  const out = { accounting: acc, stats: st, checkpoints: controller.stats(), output: sink.stats(), records: engine.records().length, pool: pool.stats() };
  if (opts.json) {
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  const p = acc.primary;
  console.log(
    [
      `primary    received ${p.received}, released ${p.released}, held ${p.held}, unparseable ${p.unparseable}${p.balanced ? '' : '  (ACCOUNTING MISMATCH)'}`,
      `secondary  received ${acc.secondary.received}, consumed ${acc.secondary.consumed}, dropped ${acc.secondary.dropped}`,
      `checkpoints requested ${controller.stats().requested}, completed ${controller.stats().completed}`,
      `divergences ${out.records} recorded`,
    ].join('\n'),
  );
}
