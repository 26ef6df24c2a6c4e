/**
 * QEMU's own colo-compare as a guest-less reference engine (lab step 4): a
 * `qemu-system-x86_64 -machine none` with an iothread, four socket chardevs and one
 * `-object colo-compare`. We write the primary's and the secondary's frames, read what it
 * releases, count the checkpoints it asks for on `notify_dev`, and complete checkpoints with
 * `COLO_CHECKPOINT` (which makes it release every held primary frame, as after a real
 * checkpoint). The replay bench (`bench replay --against-qemu`) and the compare differential
 * test drive it with the same frames as our engine.
 *
 * Who listens: QEMU. Every chardev is `server=on,wait=off` on a unix socket in a private temp
 * dir, and we connect. Start-up is race-free because:
 * 1. QEMU answers QMP only after every chardev and object exists, so once the QMP greeting
 *    arrives all sockets are listening (no polling for files, no fixed ports);
 * 2. `query-chardev` is polled until QEMU itself reports all four chardevs connected — only
 *    then may frames flow (colo-compare drops its whole pending output when `outdev` is not
 *    connected yet, reference §2.4);
 * 3. the notify_dev INIT handshake (`COLO_USERSPACE_PROXY_INIT` → `COLO_COMPARE_GET_XEN_INIT`)
 *    proves the colo-compare object reads notify_dev.
 * The other way round (QEMU as a reconnecting client) would make us listen first, leave
 * retries to QEMU's reconnect timer (whole seconds in 7.2) and still need the same
 * confirmation. QEMU listening is also the layout of a real primary's compare chardevs.
 *
 * Released frames are delivered as pool handles (FramedChannel's FrameDecoder) with
 * `pool.time[h]` set to their arrival time (performance.now() ms). Drops that colo-compare
 * makes silently (queue over `max_queue_size`, §6.5) are made visible by enabling its
 * `colo_compare_drop_packet` trace event and counting those stderr lines.
 *
 * Output order: QEMU 7.2 writes what it released while `outdev` was backed up newest first
 * (§9 B1; reproduced in the tests with `pauseOutput`). The feeder yields often enough that
 * the reader normally keeps up, but under heavy load order across a burst is not guaranteed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '../control/qmp-client.js';
import { ColoError } from '../errors.js';
import { PacketPool } from '../packet/pool.js';
import { createLogger } from '../util/log.js';
import type { Logger } from '../util/log.js';
import { FramedChannel } from '../wire/connection.js';
import { runFeed } from './feed.js';
import type { FeedResult, FeedTarget, RunFeedOptions } from './feed.js';
import { planLockstep } from './lockstep.js';
import type { FeedFrame, LockstepOrder, LockstepPlan } from './lockstep.js';
import { NotifyDevClient } from './notify-dev.js';
import { QemuProcess, qemuError } from './qemu-process.js';
import type { ProcessStats } from './qemu-process.js';

/** colo-compare's defaults (reference §6.1). */
export const QEMU_COMPARE_DEFAULTS = Object.freeze({ compareTimeout: 3000, expiredScanCycle: 1000, maxQueueSize: 1024 });

export interface QemuColoCompareOptions {
  /** Default `qemu-system-x86_64`. */
  binary?: string;
  /** `compare_timeout` (ms); QEMU parses it as uint32, 0 is rejected. Default QEMU's 3000. */
  compareTimeout?: number;
  /** `expired_scan_cycle` (ms); default QEMU's 1000. */
  expiredScanCycle?: number;
  /** `max_queue_size` (packets per connection and side); default QEMU's 1024. */
  maxQueueSize?: number;
  /** `vnet_hdr_support`: frames carry a virtio-net header and the u32 vnet_hdr_len field. */
  vnetHdrSupport?: boolean;
  /** Pool receiving released frames; default a new pool with QEMU-sized slots. */
  pool?: PacketPool;
  /**
   * A released frame (ownership passes: release it). `pool.time[handle]` holds its arrival
   * time (performance.now() ms). Default: count and release.
   */
  onRelease?(handle: number, vnetHdrLen: number): void;
  /** A DO_CHECKPOINT arrived on notify_dev (performance.now() ms, 0-based index). */
  onCheckpointRequest?(timeMs: number, index: number): void;
  /** Count colo-compare's silent drops from its trace event; default true. */
  traceDrops?: boolean;
  /** Parent of the private temp dir; default os.tmpdir(). */
  tmpDir?: string;
  /** Start-up timeout (ms) per attempt; default 15 000. */
  startTimeoutMs?: number;
  /**
   * Instances to try when QEMU crashes (dies by a signal) during start-up (policy: retry only
   * that, never a timeout, an exit code or a protocol error); default 3. See `startFailures`.
   */
  startAttempts?: number;
  /** For the QMP client's diagnostics; default silent (failures surface as errors). */
  logger?: Logger;
}

export interface LockstepFeedOptions extends RunFeedOptions {
  /** Bound per connection and side (see lockstep.ts); default floor(max_queue_size / 2). */
  maxAhead?: number;
  order?: LockstepOrder;
  chunk?: number;
  /** A plan made earlier with `planLockstep` (planning then costs nothing here). */
  plan?: LockstepPlan;
}

export interface QemuCompareStats {
  /** Frames written to primary_in / secondary_in (handed to the socket writer). */
  primaryWritten: number;
  secondaryWritten: number;
  /** Frames and data bytes (vnet header + Ethernet frame) released on outdev. */
  released: number;
  releasedBytes: number;
  /** DO_CHECKPOINT messages received; COLO_CHECKPOINT messages sent. */
  checkpointRequests: number;
  checkpointsDone: number;
  /** `colo_compare_drop_packet` trace events (silent drops), when traced. */
  drops: number;
  /** Channel errors seen (connection, framing). */
  errors: number;
}

const CHARDEVS = ['pri', 'sec', 'out', 'notify'] as const;

/** QEMU crashed (died by a signal) during start-up: the only start failure `start` retries. */
class QemuStartupDeath extends ColoError {
  constructor(message: string) {
    super('ERR_QEMU', message);
  }
}

function checkU32(name: string, v: number | undefined): void {
  if (v === undefined) return;
  if (!(Number.isInteger(v) && v >= 1 && v <= 0xffffffff)) {
    throw new ColoError('ERR_INVALID_ARGUMENT', `${name} must be an integer 1..4294967295 (QEMU rejects 0), got ${v}`);
  }
}

/** A FramedChannel as a FeedTarget (drain waiters fed by the channel's onDrain). */
class ChannelTarget implements FeedTarget {
  ch!: FramedChannel;
  #waiters: Array<() => void> = [];

  writeFrame(buf: Buffer, off: number, len: number, vnetHdrLen: number): boolean {
    return this.ch.writeFrame(buf, off, len, vnetHdrLen);
  }

  flush(): void {
    this.ch.flush();
  }

  get backpressured(): boolean {
    return this.ch.backpressured;
  }

  whenDrained(): Promise<void> {
    if (!this.ch.backpressured || !this.ch.connected) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Wake drain waiters (on drain, disconnect or close). */
  wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

export class QemuColoCompare {
  /** The private temp dir holding the sockets (removed by `stop`). */
  readonly dir: string;
  readonly pool: PacketPool;
  readonly vnetHdr: boolean;
  /** Effective colo-compare settings. */
  readonly compareTimeout: number;
  readonly expiredScanCycle: number;
  readonly maxQueueSize: number;
  /** Writers into colo-compare's primary_in and secondary_in (QEMU chardev framing). */
  readonly primary: FramedChannel;
  readonly secondary: FramedChannel;
  /** Reader of colo-compare's outdev (released primary frames; never written); see pauseOutput. */
  readonly output: FramedChannel;
  readonly #proc: QemuProcess;
  readonly #notify: NotifyDevClient;
  readonly #targets: { primary: ChannelTarget; secondary: ChannelTarget };
  readonly #onRelease: ((h: number, vnet: number) => void) | undefined;
  readonly #qmp: QmpClient;
  #released = 0;
  #releasedBytes = 0;
  #drops = 0;
  #errors: Error[] = [];
  #errorCount = 0;
  #releaseWaiters: Array<() => void> = [];
  #stopped = false;
  #finalStats: ProcessStats | null = null;
  #startFailures: readonly string[] = [];

  private constructor(opts: QemuColoCompareOptions, dir: string) {
    this.dir = dir;
    this.vnetHdr = opts.vnetHdrSupport ?? false;
    this.compareTimeout = opts.compareTimeout ?? QEMU_COMPARE_DEFAULTS.compareTimeout;
    this.expiredScanCycle = opts.expiredScanCycle ?? QEMU_COMPARE_DEFAULTS.expiredScanCycle;
    this.maxQueueSize = opts.maxQueueSize ?? QEMU_COMPARE_DEFAULTS.maxQueueSize;
    this.pool = opts.pool ?? new PacketPool();
    this.#onRelease = opts.onRelease;
    const props = [
      'colo-compare,id=comp0,primary_in=pri,secondary_in=sec,outdev=out,iothread=iothread0,notify_dev=notify',
      `compare_timeout=${this.compareTimeout}`,
      `expired_scan_cycle=${this.expiredScanCycle}`,
      `max_queue_size=${this.maxQueueSize}`,
      `vnet_hdr_support=${this.vnetHdr ? 'on' : 'off'}`,
    ].join(',');
    const sock = (id: string): string[] => ['-chardev', `socket,id=${id},path=${join(dir, `${id}.sock`)},server=on,wait=off`];
    const args = [
      '-machine', 'none',
      '-nodefaults',
      '-display', 'none',
      '-name', 'colo-compare-ref,debug-threads=on',
      '-qmp', `unix:${join(dir, 'qmp.sock')},server=on,wait=off`,
      ...(opts.traceDrops === false ? [] : ['-trace', 'colo_compare_drop_packet']),
      '-object', 'iothread,id=iothread0',
      ...CHARDEVS.flatMap(sock),
      '-object', props,
    ];
    const mk = (id: string, target: ChannelTarget, onFrame: (h: number, vnet: number) => void): FramedChannel =>
      new FramedChannel({
        endpoint: `unix:${join(dir, `${id}.sock`)}`,
        vnetHdr: this.vnetHdr,
        pool: this.pool,
        reconnectMs: 100,
        onFrame,
        onError: (err) => this.#onError(err),
        onDrain: () => target.wake(),
        onDisconnected: () => target.wake(),
      });
    const unexpected = (h: number): void => {
      // colo-compare never writes to its inputs; count and drop.
      this.pool.release(h);
      this.#onError(new ColoError('ERR_QEMU', 'unexpected frame from a colo-compare input socket'));
    };
    this.#targets = { primary: new ChannelTarget(), secondary: new ChannelTarget() };
    this.primary = mk('pri', this.#targets.primary, unexpected);
    this.secondary = mk('sec', this.#targets.secondary, unexpected);
    this.#targets.primary.ch = this.primary;
    this.#targets.secondary.ch = this.secondary;
    this.output = new FramedChannel({
      endpoint: `unix:${join(dir, 'out.sock')}`,
      vnetHdr: this.vnetHdr,
      pool: this.pool,
      reconnectMs: 100,
      onFrame: (h, vnet) => this.#onOutput(h, vnet),
      onError: (err) => this.#onError(err),
    });
    this.#notify = new NotifyDevClient({
      path: join(dir, 'notify.sock'),
      vnetHdr: this.vnetHdr,
      ...(opts.onCheckpointRequest !== undefined ? { onCheckpointRequest: opts.onCheckpointRequest } : {}),
      onError: (err) => this.#onError(err),
    });
    // QEMU creates the QMP socket while it parses its options: retry every 10 ms until it accepts.
    this.#qmp = new QmpClient({
      endpoint: `unix:${join(dir, 'qmp.sock')}`,
      backoff: { initialMs: 10, maxMs: 10, factor: 1 },
      logger: opts.logger ?? createLogger({ level: 'silent' }),
    });
    // Last, so that nothing above can throw with QEMU already running.
    this.#proc = QemuProcess.spawn({
      ...(opts.binary !== undefined ? { binary: opts.binary } : {}),
      args,
      dir,
      onStderrLine: (line) => {
        if (line.includes('colo_compare_drop_packet')) this.#drops++;
      },
    });
  }

  /**
   * Spawn QEMU, connect all sockets, wait until QEMU reports them connected and complete the
   * notify_dev INIT handshake. Throws ColoError ERR_QEMU (with QEMU's stderr) on failure,
   * after cleaning up.
   */
  static async start(options: QemuColoCompareOptions = {}): Promise<QemuColoCompare> {
    checkU32('compareTimeout', options.compareTimeout);
    checkU32('expiredScanCycle', options.expiredScanCycle);
    checkU32('maxQueueSize', options.maxQueueSize);
    const attempts = options.startAttempts ?? 3;
    if (!(Number.isInteger(attempts) && attempts >= 1)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `startAttempts must be an integer >= 1, got ${attempts}`);
    }
    const crashes: string[] = [];
    for (;;) {
      try {
        const cmp = await QemuColoCompare.#startOnce(options);
        cmp.#startFailures = crashes;
        return cmp;
      } catch (err) {
        // Only a QEMU that crashed while starting is retried (rare, seen once in CI: QEMU 7.2
        // reset QMP while we polled query-chardev); timeouts, exit codes (bad options), spawn
        // and protocol errors are ours or the caller's and surface at once.
        if (!(err instanceof QemuStartupDeath) || crashes.length + 1 >= attempts) throw err;
        crashes.push(err.message);
        options.logger?.warn('QEMU colo-compare crashed during start-up; starting a new one', { attempt: crashes.length, err: err.message });
      }
    }
  }

  static async #startOnce(options: QemuColoCompareOptions): Promise<QemuColoCompare> {
    const dir = mkdtempSync(join(options.tmpDir ?? tmpdir(), 'colo-qcmp-'));
    let cmp: QemuColoCompare | null = null;
    try {
      cmp = new QemuColoCompare(options, dir);
      await cmp.#connect(options.startTimeoutMs ?? 15_000);
      return cmp;
    } catch (err) {
      if (cmp !== null) await cmp.stop();
      else rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  async #connect(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    const proc = this.#proc;
    const qmpPath = join(this.dir, 'qmp.sock');
    const exited = proc.whenExited().then(() => 'exited' as const);
    // A failure while QEMU is (or is about to be) gone is QEMU's death, not the step's error;
    // a death by signal (a crash: we send none before `stop`) is the one `start` retries.
    const died = (what: string): ColoError => {
      const e = qemuError(`QEMU exited during start-up${what}`, proc);
      return proc.signal !== null ? new QemuStartupDeath(e.message) : e;
    };
    const diedOr = async (err: Error): Promise<Error> => {
      await Promise.race([exited, new Promise((r) => setTimeout(r, 500))]);
      return proc.exited ? died(` (${err.message})`) : err;
    };
    const qmp = await Promise.race([this.#qmp.connect(timeoutMs).then(() => 'ready' as const), exited]).catch((err: Error) => err);
    if (qmp === 'exited') throw died('');
    if (qmp instanceof Error) throw await diedOr(qemuError(`no QMP on ${qmpPath} within ${timeoutMs} ms: ${qmp.message}`, proc));
    try {
      // QMP answers once every chardev listens: connect all four, then let QEMU confirm.
      await Promise.all([this.primary.start(), this.secondary.start(), this.output.start(), this.#notify.start()]);
      for (;;) {
        const list = (await this.#qmp.execute('query-chardev')) as Array<{ label: string; filename: string }>;
        const waiting = CHARDEVS.filter((id) => {
          const c = list.find((x) => x.label === id);
          return c === undefined || c.filename.startsWith('disconnected:');
        });
        if (waiting.length === 0 && this.#notify.connected) break;
        if (proc.exited) throw died('');
        if (performance.now() > deadline) throw qemuError(`chardevs ${waiting.join(', ') || 'notify (our side)'} not connected within ${timeoutMs} ms`, proc);
        await new Promise((r) => setTimeout(r, 10));
      }
      await this.#notify.init(Math.max(100, deadline - performance.now())).catch((err: Error) => {
        throw qemuError(err.message, proc);
      });
    } catch (err) {
      throw await diedOr(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * Earlier QEMU instances that crashed during `start` before this one came up
   * (each with its exit status and stderr tail); empty normally.
   */
  get startFailures(): readonly string[] {
    return this.#startFailures;
  }

  /** QEMU's process id. */
  get pid(): number {
    return this.#proc.pid ?? -1;
  }

  /** True once QEMU exited (unexpectedly, or after `stop`). */
  get exited(): boolean {
    return this.#proc.exited;
  }

  /** How QEMU ended ('running', 'exit code N' or 'signal SIG…'). */
  get exitDescription(): string {
    return this.#proc.exitDescription;
  }

  /** QEMU's stderr (most recent 64 KiB), for diagnostics. */
  get stderr(): string {
    return this.#proc.stderr;
  }

  /** Frames released on outdev so far. */
  get released(): number {
    return this.#released;
  }

  /** DO_CHECKPOINT messages received so far. */
  get checkpointRequests(): number {
    return this.#notify.checkpointRequests;
  }

  /** Arrival time (performance.now() ms) of each DO_CHECKPOINT. */
  get checkpointRequestTimes(): readonly number[] {
    return this.#notify.checkpointRequestTimes;
  }

  /** Silent drops seen through the `colo_compare_drop_packet` trace event. */
  get drops(): number {
    return this.#drops;
  }

  /** The first errors seen on the sockets (at most 32). */
  get errors(): readonly Error[] {
    return this.#errors;
  }

  /** The two input writers as feed targets (for `runFeed` with a custom plan). */
  get targets(): { primary: FeedTarget; secondary: FeedTarget } {
    return this.#targets;
  }

  stats(): QemuCompareStats {
    return {
      primaryWritten: this.primary.stats().writer.frames,
      secondaryWritten: this.secondary.stats().writer.frames,
      released: this.#released,
      releasedBytes: this.#releasedBytes,
      checkpointRequests: this.#notify.checkpointRequests,
      checkpointsDone: this.#notify.checkpointsSent,
      drops: this.#drops,
      errors: this.#errorCount,
    };
  }

  /**
   * QEMU's CPU time and memory from /proc/PID (null once it exited; after `stop`, the values
   * read just before it was stopped).
   */
  processStats(): ProcessStats | null {
    return this.#proc.exited ? this.#finalStats : this.#proc.stats();
  }

  /**
   * Complete a checkpoint: send COLO_CHECKPOINT on notify_dev. QEMU then releases every held
   * primary frame in order and drops the held secondary frames. There is no acknowledgement:
   * watch `released`. Frames written before this call but still in socket buffers may reach
   * colo-compare after it (separate sockets), so let the inputs settle first when it matters.
   */
  checkpointDone(): void {
    this.#notify.checkpointDone();
  }

  /**
   * Stop reading outdev: colo-compare's writes then back up, as with a slow consumer. QEMU 7.2
   * then emits the frames released meanwhile newest first (reference §9 B1, confirmed by the
   * tests). The feeder never pauses; this is for tests and slow-consumer experiments.
   */
  pauseOutput(): void {
    this.output.pauseReading();
  }

  /** Read outdev again after `pauseOutput`. */
  resumeOutput(): void {
    this.output.resumeReading();
  }

  /** Resolves once at least `n` frames have been released in total (rejects ERR_TIMEOUT). */
  waitForReleased(n: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new ColoError('ERR_TIMEOUT', `colo-compare released ${this.#released} of ${n} frames within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): void => {
        if (done) return;
        if (this.#released >= n) {
          done = true;
          clearTimeout(timer);
          resolve();
        } else this.#releaseWaiters.push(check);
      };
      check();
    });
  }

  /** Resolves once at least `n` DO_CHECKPOINT messages have arrived in total (rejects ERR_TIMEOUT). */
  waitForCheckpointRequests(n: number, timeoutMs: number): Promise<void> {
    return this.#notify.waitForCheckpointRequests(n, timeoutMs);
  }

  /**
   * Feed both inputs the way a real pair would (see lockstep.ts for the order and the
   * per-connection bound, feed.ts for pacing). Resolves when every frame has been handed to
   * the sockets; wait for `released` to see colo-compare's output.
   *
   * The guarantee: the plan keeps each side at most `maxAhead` frames (default
   * max_queue_size / 2) ahead of the other per connection in what is *written*; the feeder
   * yields every `yieldEvery` frames (default max_queue_size / 4, at most 256), the most the
   * two sockets can be skewed within one burst. So, with QEMU reading both sockets as data
   * arrives, no queue exceeds 3/4 of max_queue_size and nothing is dropped; the plan's
   * `overruns` (a side with no frames left to catch up, e.g. a silent secondary) and the
   * traced `drops` report when that did not hold.
   */
  async feedLockstep(primary: readonly FeedFrame[], secondary: readonly FeedFrame[], options: LockstepFeedOptions = {}): Promise<FeedResult> {
    const plan =
      options.plan ??
      planLockstep(primary, secondary, {
        maxAhead: options.maxAhead ?? Math.max(1, Math.floor(this.maxQueueSize / 2)),
        ...(options.order !== undefined ? { order: options.order } : {}),
        ...(options.chunk !== undefined ? { chunk: options.chunk } : {}),
      });
    // Within one batch between yields the two sockets are written independently, so the skew
    // QEMU can see is at most maxAhead + yieldEvery: keep it under max_queue_size (3/4 of it).
    const yieldEvery = options.yieldEvery ?? Math.max(1, Math.min(256, Math.floor(this.maxQueueSize / 4)));
    return runFeed(plan, primary, secondary, this.#targets, { ...options, yieldEvery });
  }

  /**
   * Stop: close our sockets, stop QEMU by its PID (SIGTERM, SIGKILL after 3 s), remove the
   * temp dir. Safe to call more than once and after a failed start.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#finalStats = this.#proc.stats();
    try {
      await Promise.all([this.#qmp.close(), this.#notify.close(), this.primary.close(), this.secondary.close(), this.output.close()]);
    } finally {
      this.#targets.primary.wake();
      this.#targets.secondary.wake();
      await this.#proc.kill();
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  #onOutput(h: number, vnet: number): void {
    const pool = this.pool;
    pool.time[h] = performance.now();
    this.#released++;
    this.#releasedBytes += pool.length(h);
    if (this.#onRelease !== undefined) this.#onRelease(h, vnet);
    else pool.release(h);
    if (this.#releaseWaiters.length > 0) {
      const w = this.#releaseWaiters;
      this.#releaseWaiters = [];
      for (const f of w) f();
    }
  }

  #onError(err: Error): void {
    this.#errorCount++;
    if (this.#errors.length < 32) this.#errors.push(err);
  }
}
