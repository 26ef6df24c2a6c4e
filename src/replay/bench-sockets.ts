/**
 * colo-proxy over real sockets: the `colo-proxy compare` command in a child process (what a
 * deployment runs) on three unix sockets with QEMU chardev framing, in the roles of
 * docs/deploy.md by default: it connects to primary_in and outdev (this process listens there,
 * as the primary QEMU's chardevs do) and listens on secondary_in (this process connects, as
 * the secondary's redirector does). This process writes both inputs with the lockstep feeder
 * and reads outdev; its own side of the sockets costs the same as in the QEMU row (a Node
 * socket per input and one for outdev, fresh read chunks). Checkpoints run in
 * shadow mode (no --qmp/--notify_dev: each completes on the next microtask) and are read back
 * from `--divergence-log` (DivergenceRecord JSON lines: the requesting record of each
 * checkpoint, and — when the compare command logs them — the records that joined it). Peak memory:
 * the child's VmHWM just before it is stopped.
 *
 * Shared with bench/compare-sockets.bench.ts (`startColoProxyChild`, `clientTarget`).
 * `COLO_BENCH_CHILD_NODE_ARGS` adds Node flags to the child only (e.g. `--cpu-prof`).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, watch, writeFileSync } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DivergenceRecord } from '../compare/divergence.js';
import { ColoError } from '../errors.js';
import { PacketPool } from '../packet/pool.js';
import { FramedChannel } from '../wire/connection.js';
import type { FeedTarget } from './feed.js';
import { readProcessStats } from './qemu-process.js';
import { FrameMatcher } from './bench-workload.js';
import type { BenchRig, ReleaseRecorder, RigFinal } from './bench-run.js';
import { eventOf, type EngineSettings } from './bench-inprocess.js';

/** Project root: the nearest ancestor of this module holding package.json (src/ and dist/ alike). */
export function projectRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new ColoError('ERR_INVALID_ARGUMENT', 'project root (package.json) not found');
    d = up;
  }
  return d;
}

/**
 * How to run the CLI: the build this module belongs to — dist/src/cli/main.js when running
 * built, src/cli/main.ts through tsx when running from source.
 */
export function coloProxyCli(): { argv: string[]; label: 'dist' | 'tsx' } {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.ts')) return { argv: ['--import', 'tsx', join(dirname(self), '..', 'cli', 'main.ts')], label: 'tsx' };
  return { argv: [join(dirname(self), '..', 'cli', 'main.js')], label: 'dist' };
}

/**
 * A FramedChannel on `endpoint` (client `unix:PATH` or listening `unix:PATH,server`) and its
 * FeedTarget (drain waiters woken on drain/disconnect).
 */
export function channelTarget(endpoint: string, pool: PacketPool, onFrame: (h: number) => void): { ch: FramedChannel; target: FeedTarget } {
  let waiters: Array<() => void> = [];
  const wake = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const ch = new FramedChannel({ endpoint, vnetHdr: false, pool, reconnectMs: 20, onFrame, onDrain: wake, onDisconnected: wake });
  const target: FeedTarget = {
    writeFrame: (b, o, l, v) => ch.writeFrame(b, o, l, v),
    flush: () => ch.flush(),
    get backpressured() {
      return ch.backpressured;
    },
    whenDrained: () => (ch.backpressured && ch.connected ? new Promise<void>((r) => waiters.push(r)) : Promise.resolve()),
  };
  return { ch, target };
}

/** A client FramedChannel to `path` and its FeedTarget (see channelTarget). */
export function clientTarget(path: string, pool: PacketPool, onFrame: (h: number) => void): { ch: FramedChannel; target: FeedTarget } {
  return channelTarget(`unix:${path}`, pool, onFrame);
}

/**
 * Extra Node flags for the compare child, from COLO_BENCH_CHILD_NODE_ARGS (space-separated),
 * e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the child without touching the bench
 * process's own flags.
 */
function childNodeArgs(): string[] {
  const v = process.env['COLO_BENCH_CHILD_NODE_ARGS'];
  return v === undefined ? [] : v.split(' ').filter((x) => x !== '');
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** The JSON statistics `colo-proxy compare --json` prints at exit (the parts the bench reads). */
export interface CompareCliSummary {
  accounting?: { primary?: { received?: number; released?: number; held?: number; balanced?: boolean } };
  checkpoints?: { requested?: number };
  pool?: { highWater?: number };
}

export interface ColoProxyChild {
  readonly targets: { primary: FeedTarget; secondary: FeedTarget };
  readonly pid: number;
  /** Our pool (frames read from outdev). */
  readonly pool: PacketPool;
  /** SIGTERM (the child flushes held frames and prints statistics), close, clean up. */
  stop(): Promise<{ summary: CompareCliSummary | null; stdout: string; stderr: string; peakRssKiB: number | null }>;
}

export interface ColoProxyChildOptions {
  /** A frame read from outdev (ownership passes: release it to `pool`). */
  onRelease(pool: PacketPool, h: number): void;
  settings?: EngineSettings;
  /**
   * Each line the child appends to its checkpoint log (one DivergenceRecord), with the time
   * (our performance.now()) this process saw it: watched with inotify while the child runs,
   * read once more at stop.
   */
  onCheckpointLine?(line: string, seenMs: number): void;
  /** Start-up timeout (ms); default 20 000. */
  startTimeoutMs?: number;
  /**
   * Which sockets the child listens on; the rest it connects to, this process listening.
   * Default `'deployment'`: the roles of docs/deploy.md — primary_in and outdev connect (to the
   * primary's chardev servers), secondary_in listens. `'listen'`: all three listen (as QEMU's
   * colo-compare chardevs do in the QEMU row). A connecting input reads into one reused buffer
   * (compare-run.ts `readBufferFor`); a listening one cannot (Node gives accepted sockets fresh
   * chunks), so the roles change the child's CPU per frame.
   */
  roles?: ChildRoles;
}

/** See ColoProxyChildOptions.roles. */
export type ChildRoles = 'deployment' | 'listen';

/** Spawn `colo-proxy compare` on three unix sockets in a private temp dir and connect it to this process (see ColoProxyChildOptions.roles). */
export async function startColoProxyChild(o: ColoProxyChildOptions): Promise<ColoProxyChild> {
  const dir = mkdtempSync(join(tmpdir(), 'colo-bench-sock-'));
  const sock = (n: string): string => join(dir, n);
  const cmd = coloProxyCli();
  const log = sock('checkpoints.jsonl');
  writeFileSync(log, '');
  const tail = new LineTail(log, (line) => o.onCheckpointLine?.(line, performance.now()));
  const s = o.settings;
  const extra = s === undefined ? [] : ['--compare_timeout', String(s.compareTimeoutMs), '--expired_scan_cycle', String(s.expiredScanCycleMs), '--max_queue_size', String(s.maxQueueSize)];
  // true: the child listens on that socket (primary_in, secondary_in, outdev).
  const roles = o.roles === 'listen' ? { p: true, s: true, o: true } : { p: false, s: true, o: false };
  const listens = [roles.p, roles.s, roles.o];
  // Endpoint strings: ours is the other end of theirs. A connecting child retries every 20 ms.
  const theirs = (childListens: boolean, path: string): string => (childListens ? `unix:${path},server` : `unix:${path},reconnect-ms=20`);
  const ours = (childListens: boolean, path: string): string => (childListens ? `unix:${path}` : `unix:${path},server`);
  const pool = new PacketPool();
  const cp = channelTarget(ours(roles.p, sock('p.sock')), pool, (h) => pool.release(h));
  const cs = channelTarget(ours(roles.s, sock('s.sock')), pool, (h) => pool.release(h));
  const out = channelTarget(ours(roles.o, sock('o.sock')), pool, (h) => o.onRelease(pool, h));
  const chans = [cp.ch, cs.ch, out.ch];
  let child: ChildProcess | null = null;
  let stdout = '';
  let stderr = '';
  let peak: number | null = null;
  const kill = async (): Promise<void> => {
    if (child !== null && child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      peak = readProcessStats(child.pid)?.peakRssKiB ?? null;
      child.kill('SIGTERM');
      if (!(await waitExit(child, 5000))) {
        child.kill('SIGKILL');
        await waitExit(child, 2000);
      }
    }
  };
  const cleanup = async (): Promise<void> => {
    await kill();
    tail.close();
    for (const ch of chans) await ch.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Our listeners first (the child's connecting sockets then find them at once).
    for (let i = 0; i < 3; i++) if (!listens[i]) await chans[i]!.start();
    const c = spawn(
      process.execPath,
      [
        ...childNodeArgs(),
        ...cmd.argv,
        'compare',
        '--primary_in', theirs(roles.p, sock('p.sock')),
        '--secondary_in', theirs(roles.s, sock('s.sock')),
        '--outdev', theirs(roles.o, sock('o.sock')),
        '--divergence-log', log, ...extra, '-q', '--json',
      ],
      { cwd: projectRoot(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = c;
    c.stdout!.setEncoding('utf8').on('data', (x: string) => (stdout += x));
    c.stderr!.setEncoding('utf8').on('data', (x: string) => (stderr = (stderr + x).slice(-4000)));
    const deadline = performance.now() + (o.startTimeoutMs ?? 20_000);
    const check = (): void => {
      if (c.exitCode !== null) throw new ColoError('ERR_TIMEOUT', `colo-proxy compare exited (${c.exitCode}) at start-up: ${stderr}`);
      if (performance.now() > deadline) throw new ColoError('ERR_TIMEOUT', `colo-proxy compare did not connect/listen within ${o.startTimeoutMs ?? 20_000} ms: ${stderr}`);
    };
    // The CLI listens once started; connect to its listeners when their sockets exist.
    const theirNames = ['p.sock', 's.sock', 'o.sock'].filter((_, i) => listens[i]);
    while (!theirNames.every((n) => existsSync(sock(n)))) {
      check();
      await new Promise((r) => setTimeout(r, 10));
    }
    for (let i = 0; i < 3; i++) if (listens[i]) await chans[i]!.start();
    while (!chans.every((ch) => ch.connected)) {
      check();
      await new Promise((r) => setTimeout(r, 5));
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  let result: Awaited<ReturnType<ColoProxyChild['stop']>> | null = null;
  return {
    targets: { primary: cp.target, secondary: cs.target },
    pid: child?.pid ?? -1,
    pool,
    async stop() {
      if (result !== null) return result;
      await cleanup();
      let summary: CompareCliSummary | null = null;
      try {
        summary = JSON.parse(stdout) as CompareCliSummary;
      } catch {
        summary = null;
      }
      result = { summary, stdout, stderr, peakRssKiB: peak };
      return result;
    },
  };
}

/** Follows a file that another process appends lines to (inotify), calling back per complete line. */
class LineTail {
  readonly #fd: number;
  readonly #watcher: FSWatcher;
  readonly #onLine: (line: string) => void;
  #pos = 0;
  #partial = '';
  #closed = false;

  constructor(path: string, onLine: (line: string) => void) {
    this.#fd = openSync(path, 'r');
    this.#onLine = onLine;
    this.#watcher = watch(path, () => this.read());
  }

  /** Read what was appended since the last call. */
  read(): void {
    if (this.#closed) return;
    const size = fstatSync(this.#fd).size;
    if (size <= this.#pos) return;
    const buf = Buffer.alloc(size - this.#pos);
    const n = readSync(this.#fd, buf, 0, buf.length, this.#pos);
    this.#pos += n;
    const lines = (this.#partial + buf.subarray(0, n).toString('utf8')).split('\n');
    this.#partial = lines.pop()!;
    for (const l of lines) if (l.trim() !== '') this.#onLine(l);
  }

  /** A last read, then stop watching. */
  close(): void {
    if (this.#closed) return;
    this.read();
    this.#closed = true;
    this.#watcher.close();
    closeSync(this.#fd);
  }
}

/**
 * Start the sockets rig; releases go to `rec`. Checkpoint times: the child stamps records with
 * its own performance.now(); this process sees each line a little later. The clock offset is
 * estimated as the smallest (seen − stamped) over all records of the run (warm-up included),
 * so times are exact up to the quickest observation delay (typically well under 1 ms).
 */
export async function startSocketsRig(rec: ReleaseRecorder, matcher: FrameMatcher, s: EngineSettings, roles?: ChildRoles): Promise<BenchRig> {
  let measuring = false;
  let t0 = 0;
  const seen: { r: DivergenceRecord; seenMs: number }[] = [];
  const child = await startColoProxyChild({
    settings: s,
    ...(roles !== undefined ? { roles } : {}),
    onRelease: (pool, h) => {
      // Arrival time first, as the QEMU rig stamps it (in QemuColoCompare, before matching).
      rec.onBytes(matcher, measuring, pool, h, performance.now());
      pool.release(h);
    },
    onCheckpointLine: (line, seenMs) => {
      const r = JSON.parse(line) as DivergenceRecord;
      seen.push({ r, seenMs });
    },
  });
  return {
    engine: 'colo-proxy',
    mode: 'sockets',
    targets: child.targets,
    beginMeasured(start) {
      t0 = start;
      measuring = true;
    },
    async stop(): Promise<RigFinal> {
      const r = await child.stop();
      measuring = false;
      let offset = Infinity;
      for (const x of seen) offset = Math.min(offset, x.seenMs - x.r.atMs);
      // Warm-up checkpoints (if any) happened before the measured feed started.
      const events = seen.filter((x) => x.r.atMs + offset >= t0).map((x) => eventOf(x.r, t0 - offset));
      const acc = r.summary?.accounting?.primary;
      let problem = '';
      if (r.summary === null) problem = `no JSON statistics from colo-proxy compare: ${r.stdout.slice(0, 200)} ${r.stderr}`;
      else if (acc?.balanced === false) problem = `accounting mismatch: ${JSON.stringify(acc)}`;
      return { events, causesKnown: true, peakRssKiB: r.peakRssKiB, poolHighWater: r.summary?.pool?.highWater ?? null, drops: 0, problem };
    },
  };
}
