/**
 * A real QEMU 7.2 COLO pair for end-to-end tests, with the process under test in
 * colo-compare's place (the shared lab's step-3 layout; `colo-pair-qemu.ts` has the wiring).
 *
 * ```ts
 * const pair = await startColoPair({ proxy: (ep) => ({ argv: ['node', 'my-proxy.js', ep.primaryIn, …] }) });
 * try {
 *   const r = await pair.httpGet('/cgi-bin/counter');
 * } finally {
 *   await pair.dispose();
 * }
 * ```
 *
 * Everything runs inside a private network namespace the harness creates (unique name
 * `colotest-pair-<pid>-<n>`): its loopback is both "hosts" (127.0.0.1 primary, 127.0.0.2
 * secondary), a bridge `br0` holds the client address 192.0.2.1/24 and the primary's tap; the
 * secondary's tap stays unbridged, so only the primary's released output reaches the client.
 * IPv6 is off in the namespace and the guest (no neighbour-discovery noise).
 *
 * No block replication (the lab's NO_DISK mode): the guest runs from its initramfs and has no
 * disk, which keeps startup to two QEMU processes and a handful of QMP commands.
 *
 * The guest boots under COLO: the primary starts paused (-S) and is migrated into COLO at
 * once, so both VMs execute the same boot. Startup order: primary QEMU, then the proxy and the
 * secondary together; the harness waits until the primary's compare0/compare_out and the
 * secondary's red0/red1 chardevs report connected, starts COLO over QMP (x-colo + events on
 * both, `migrate` to the secondary's -incoming), waits for `status: colo`, then for the guest
 * to answer HTTP through the proxy.
 *
 * Cleanup: `dispose()` stops every process the harness started by its PID (SIGTERM, SIGKILL
 * after a grace period), kills by PID anything still inside the private namespace, deletes the
 * namespace and the temp dir, and reports what it did. It runs on any startup failure too, and
 * a synchronous last-resort version runs at process exit for pairs never disposed.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '../../src/control/qmp-client.js';
import type { JsonObject } from '../../src/control/json.js';
import { createLogger } from '../../src/util/log.js';
import { formatEndpoint } from '../../src/wire/endpoint.js';
import { buildShim, findGuestAssets, guestDir, FETCH_COMMAND } from './colo-pair-assets.js';
import { PAIR_NET, primaryArgs, secondaryArgs } from './colo-pair-qemu.js';
import { leftoverNamespaces, stopProcess } from './netns.js';
import { ROOT } from './paths.js';

export { pidAlive } from './tools.js';

export { coloPairSkipReason } from './colo-pair-assets.js';
export { PAIR_NET } from './colo-pair-qemu.js';

/** Prefix of every namespace a pair creates (tests check none is left behind). */
export const PAIR_NETNS_PREFIX = 'colotest-pair-';

/** The sockets the process under test uses, in QEMU chardev syntax (inside the namespace). */
export interface ProxyEndpoints {
  /** PVM output frames: connect (QEMU's compare0 server). */
  primaryIn: string;
  /** Release path to the client: connect (QEMU's compare_out server). */
  outdev: string;
  /** SVM output frames: listen here; the secondary's red1 connects (reconnect=1). */
  secondaryIn: string;
  /** Every stream carries the vnet_hdr_len field (`vnet_hdr_support=on` on all filters). */
  vnetHdr: boolean;
  /** The primary's public QMP unix socket (for checkpoint requests). */
  primaryQmp: string;
  /** The pair's temp dir, for the proxy's own files (removed by dispose). */
  dir: string;
  /** The namespace the proxy will run in. */
  netns: string;
}

/** How to start the process under test: spawned as `ip netns exec NS ...argv`, cwd = ROOT. */
export interface ProxyCommand {
  argv: string[];
  env?: Record<string, string>;
}

export interface ColoPairOptions {
  /** Builds the command of the process that takes colo-compare's place. */
  proxy(ep: ProxyEndpoints): ProxyCommand | Promise<ProxyCommand>;
  /** tap vnet_hdr=on and vnet_hdr_support=on on every filter (the lab's VNET=1). Default off. */
  vnet?: boolean;
  /** Guest RAM in MiB; default 128. */
  memMb?: number;
  /** Initial x-checkpoint-delay in ms (QEMU's default is 20000). */
  checkpointDelayMs?: number;
  /** Budget for the whole startup (COLO + first HTTP answer); default 120 s. */
  readyTimeoutMs?: number;
}

export type Side = 'primary' | 'secondary';

export interface ExecResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface HttpResult {
  /** HTTP status, or 0 when the request failed (see `error`). */
  status: number;
  body: string;
  error?: string;
  /** Request time measured inside the namespace (excludes process startup). */
  ms: number;
}

/** Milliseconds after `startColoPair` was called. */
export interface PairTimings {
  qemuUp: number;
  chardevsConnected: number;
  colo: number;
  http: number;
}

export interface DisposeReport {
  /** PIDs the harness started (all are gone afterwards). */
  pids: number[];
  /** PIDs found still inside the namespace after that, killed by PID. */
  strays: number[];
  netnsGone: boolean;
  dirGone: boolean;
}

interface Tracked {
  name: string;
  proc: ChildProcess;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  gone: Promise<void>;
}

/** One QMP event as received on the harness's connection. */
export interface QmpEvent {
  event: string;
  data: JsonObject;
  /** QEMU's timestamp, in ms since the epoch. */
  qemuMs: number;
  /** Host `Date.now()` when it arrived. */
  at: number;
}

/**
 * The harness's own QMP connection to one QEMU: the project's QmpClient plus a log of every
 * event, in arrival order, that tests can wait on.
 *
 * One QEMU monitor serves one client at a time, so each QEMU has two monitors: this one and a
 * public one for the test or the proxy under test (`ColoPair.qmpPath`).
 */
class HarnessQmp {
  readonly client: QmpClient;
  readonly events: QmpEvent[] = [];
  readonly #waiters = new Set<(e: QmpEvent) => void>();

  constructor(path: string) {
    this.client = new QmpClient({
      endpoint: `unix:${path}`,
      commandTimeoutMs: 15_000,
      // QEMU creates the socket while it starts: retry every 20 ms until it accepts.
      backoff: { initialMs: 20, maxMs: 20, factor: 1 },
      logger: createLogger({ level: 'silent' }),
    });
    this.client.onEvent((event, data, qemuMs) => {
      const e: QmpEvent = { event, data, qemuMs, at: Date.now() };
      this.events.push(e);
      for (const w of [...this.#waiters]) w(e);
    });
  }

  /** First event `name` at index >= `fromIndex` of `events` (received or still to come). */
  waitEvent(name: string, fromIndex: number, timeoutMs: number): Promise<QmpEvent> {
    for (let i = fromIndex; i < this.events.length; i++) if (this.events[i]!.event === name) return Promise.resolve(this.events[i]!);
    return new Promise((resolve, reject) => {
      const w = (e: QmpEvent): void => {
        if (e.event !== name) return;
        this.#waiters.delete(w);
        clearTimeout(timer);
        resolve(e);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        const got = this.events.slice(fromIndex).map((e) => e.event).join(', ') || 'none';
        reject(new Error(`QMP ${formatEndpoint(this.client.endpoint)}: no ${name} event within ${timeoutMs} ms (got: ${got})`));
      }, timeoutMs);
      this.#waiters.add(w);
    });
  }
}

/** Small node HTTP client run inside the namespace; prints one JSON object. */
const HTTP_GET_JS = `
const http = require('node:http');
const [url, tmo] = process.argv.slice(1);
const t0 = performance.now();
const out = (o) => process.stdout.write(JSON.stringify({ ...o, ms: performance.now() - t0 }));
const req = http.get(url, { agent: false, timeout: Number(tmo), headers: { connection: 'close' } }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (d) => { body += d; });
  res.on('end', () => out({ status: res.statusCode, body }));
  res.on('error', (e) => out({ status: 0, body, error: e.message }));
});
req.on('timeout', () => req.destroy(new Error('timeout after ' + tmo + ' ms')));
req.on('error', (e) => out({ status: 0, body: '', error: e.message }));
`;

let pairCounter = 0;
const live = new Set<ColoPair>();
let exitHook = false;

export class ColoPair {
  readonly netns: string;
  readonly dir: string;
  readonly vnet: boolean;
  /** Public QMP sockets (free for the test or the proxy; the harness uses its own). */
  readonly qmpPath: Readonly<Record<Side, string>>;
  readonly guestUrl = `http://${PAIR_NET.guestIp}`;
  timings: PairTimings = { qemuUp: NaN, chardevsConnected: NaN, colo: NaN, http: NaN };
  readonly #t0 = Date.now();
  readonly #procs: Tracked[] = [];
  readonly #qmp: Partial<Record<Side, HarnessQmp>> = {};
  #netnsCreated = false;
  #disposed = false;

  private constructor(vnet: boolean) {
    this.netns = `${PAIR_NETNS_PREFIX}${process.pid}-${++pairCounter}`;
    this.dir = mkdtempSync(join(tmpdir(), 'colo-pair-'));
    this.vnet = vnet;
    this.qmpPath = { primary: join(this.dir, 'primary.qmp'), secondary: join(this.dir, 'secondary.qmp') };
    live.add(this);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const p of live) p.disposeSync();
      });
    }
  }

  /** Start a pair; on any failure everything started so far is cleaned up and the error says why. */
  static async start(opts: ColoPairOptions): Promise<ColoPair> {
    const pair = new ColoPair(opts.vnet ?? false);
    try {
      await pair.#start(opts);
      return pair;
    } catch (err) {
      const diag = pair.diagnostics();
      await pair.dispose().catch(() => undefined);
      throw new Error(`COLO pair startup failed: ${(err as Error).message}\n${diag}`, { cause: err });
    }
  }

  /** PIDs of every process this pair started (QEMUs, proxy, exec'd clients). */
  get pids(): number[] {
    return this.#procs.flatMap((t) => (t.proc.pid === undefined ? [] : [t.proc.pid]));
  }

  /** PID of a named long-running process ('primary', 'secondary', 'proxy'). */
  pid(name: 'primary' | 'secondary' | 'proxy'): number | undefined {
    return this.#procs.find((t) => t.name === name)?.proc.pid;
  }

  /** Events received so far on the harness's own QMP connection to `side`. */
  events(side: Side): readonly QmpEvent[] {
    return this.#client(side).events;
  }

  /** First event `name` at index >= `fromIndex` of `events(side)`, waiting up to `timeoutMs`. */
  waitEvent(side: Side, name: string, fromIndex = 0, timeoutMs = 10_000): Promise<QmpEvent> {
    return this.#client(side).waitEvent(name, fromIndex, timeoutMs);
  }

  /** Run a QMP command on the harness's own connection (the reply is not checked: narrow it). */
  async qmp<T = unknown>(side: Side, cmd: string, args?: JsonObject): Promise<T> {
    return (await this.#client(side).client.execute(cmd, args)) as T;
  }

  /** The primary's migration status (`query-migrate`). */
  async migrationStatus(): Promise<string> {
    const r = await this.qmp<{ status?: string }>('primary', 'query-migrate');
    return r.status ?? 'none';
  }

  /** Wait until the primary reports `status: colo`; fails at once on failed/cancelled. */
  async waitColo(timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      this.#checkAlive();
      const st = await this.migrationStatus();
      if (st === 'colo') return;
      if (st === 'failed' || st === 'cancelled') throw new Error(`migration ${st} before reaching COLO`);
      if (Date.now() > end) throw new Error(`no COLO within ${timeoutMs} ms (migration status ${st})`);
      await sleep(100);
    }
  }

  /**
   * Run `argv` inside the namespace to completion (a client-side tool, e.g. a node script).
   * The process is tracked like every other and killed by PID after `timeoutMs`.
   */
  exec(argv: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
    this.#alive();
    const t = this.#spawn('exec', argv, {}, 'pipe');
    const p = t.proc;
    let stdout = '';
    let stderr = '';
    p.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    p.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    if (opts.input !== undefined) p.stdin!.end(opts.input);
    else p.stdin!.end();
    const timer = setTimeout(() => {
      if (t.exit === null && p.pid !== undefined) process.kill(p.pid, 'SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    return new Promise((resolve) => {
      p.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ status: code, signal, stdout, stderr });
      });
    });
  }

  /** HTTP GET `path` on the guest from the client side of the namespace (never throws). */
  async httpGet(path: string, timeoutMs = 5000): Promise<HttpResult> {
    const r = await this.exec([process.execPath, '-e', HTTP_GET_JS, `${this.guestUrl}${path}`, String(timeoutMs)], { timeoutMs: timeoutMs + 5000 });
    try {
      return JSON.parse(r.stdout) as HttpResult;
    } catch {
      return { status: 0, body: '', error: `client exited ${r.status ?? r.signal}: ${r.stderr.trim()}`, ms: NaN };
    }
  }

  /** Stop the proxy by its PID (SIGTERM first, so it can write its final stats). */
  async stopProxy(graceMs = 3000): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null> {
    const t = this.#procs.find((x) => x.name === 'proxy');
    if (t === undefined) return null;
    await stopProcess(t.proc, graceMs);
    return t.exit;
  }

  /** Text of a file in the pair's dir ('' when absent), e.g. 'primary.serial', 'proxy.stderr'. */
  file(name: string): string {
    const p = join(this.dir, name);
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  }

  /** Tails of every log, for failure messages. */
  diagnostics(lines = 12): string {
    const names = ['primary.stderr', 'secondary.stderr', 'proxy.stdout', 'proxy.stderr', 'primary.serial', 'secondary.serial'];
    const parts: string[] = [`pair ${this.netns}, dir ${this.dir}`];
    for (const t of this.#procs) if (t.name !== 'exec') parts.push(`${t.name}: pid ${t.proc.pid} ${t.exit ? `exited ${t.exit.code ?? t.exit.signal}` : 'running'}`);
    for (const n of names) {
      const text = this.file(n).trimEnd();
      if (text.length > 0) parts.push(`--- ${n} (last ${lines} lines)\n${text.split('\n').slice(-lines).join('\n')}`);
    }
    return parts.join('\n');
  }

  /**
   * Stop every process by PID, kill by PID anything left in the namespace, delete the
   * namespace and the temp dir. Idempotent.
   */
  async dispose(graceMs = 3000): Promise<DisposeReport> {
    const pids = this.pids;
    if (this.#disposed) return { pids, strays: [], netnsGone: !netnsExists(this.netns), dirGone: !existsSync(this.dir) };
    this.#disposed = true;
    for (const q of Object.values(this.#qmp)) await q.client.close();
    // The proxy first: it may flush output and stats; then the VMs.
    const order = [...this.#procs].sort((a, b) => rank(a.name) - rank(b.name));
    for (const t of order) await stopProcess(t.proc, graceMs);
    const strays = this.#killStrays();
    if (this.#netnsCreated) spawnSync('ip', ['netns', 'del', this.netns], { stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
    return { pids, strays, netnsGone: !netnsExists(this.netns), dirGone: !existsSync(this.dir) };
  }

  /** Synchronous last resort (process exit): SIGKILL by PID, delete namespace and dir. */
  disposeSync(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const t of this.#procs) if (t.exit === null && t.proc.pid !== undefined) tryKill(t.proc.pid, 'SIGKILL');
    this.#killStrays();
    if (this.#netnsCreated) spawnSync('ip', ['netns', 'del', this.netns], { stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  async #start(opts: ColoPairOptions): Promise<void> {
    const readyBy = this.#t0 + (opts.readyTimeoutMs ?? 120_000);
    const left = () => Math.max(1000, readyBy - Date.now());
    const assets = findGuestAssets();
    if (assets === null) throw new Error(`guest assets not found in ${guestDir()}: run \`${FETCH_COMMAND}\``);
    const shim = buildShim();
    this.#createNetns();

    const mem = opts.memMb ?? 128;
    const guest = (name: Side, tap: string) => ({
      name,
      kernel: assets.kernel,
      initrd: assets.initrd,
      memMb: mem,
      serialPath: join(this.dir, `${name}.serial`),
      harnessQmp: join(this.dir, `${name}-harness.qmp`),
      publicQmp: this.qmpPath[name],
      tap,
      vnet: this.vnet,
    });
    const qemu = (args: string[]) => ['env', `LD_PRELOAD=${shim}`, 'qemu-system-x86_64', ...args];

    const pg = guest('primary', 'tapP');
    this.#spawn('primary', qemu(primaryArgs(pg)));
    await this.#connectQmp('primary', pg.harnessQmp);
    this.timings.qemuUp = Date.now() - this.#t0;

    const h = PAIR_NET.primaryHost;
    const p = PAIR_NET.ports;
    const cmd = await opts.proxy({
      primaryIn: `tcp:${h}:${p.primaryIn}`,
      outdev: `tcp:${h}:${p.outdev}`,
      secondaryIn: `tcp:${h}:${p.secondaryIn},server`,
      vnetHdr: this.vnet,
      primaryQmp: this.qmpPath.primary,
      dir: this.dir,
      netns: this.netns,
    });
    this.#spawn('proxy', cmd.argv, cmd.env ?? {});
    const sg = guest('secondary', 'tapS');
    this.#spawn('secondary', qemu(secondaryArgs(sg)));
    await this.#connectQmp('secondary', sg.harnessQmp);

    await this.#waitChardevs('primary', ['compare0', 'compare_out'], left());
    await this.#waitChardevs('secondary', ['red0', 'red1'], left());
    this.timings.chardevsConnected = Date.now() - this.#t0;

    const caps = { capabilities: [{ capability: 'x-colo', state: true }, { capability: 'events', state: true }] };
    await this.qmp('secondary', 'migrate-set-capabilities', caps);
    await this.qmp('primary', 'migrate-set-capabilities', caps);
    // The initial full-RAM copy is local; don't let the default bandwidth cap slow it.
    await this.qmp('primary', 'migrate-set-parameters', { 'max-bandwidth': 1 << 30 });
    if (opts.checkpointDelayMs !== undefined) await this.qmp('primary', 'migrate-set-parameters', { 'x-checkpoint-delay': opts.checkpointDelayMs });
    await this.qmp('primary', 'migrate', { uri: `tcp:${PAIR_NET.secondaryHost}:${p.migration}` });
    await this.waitColo(left());
    this.timings.colo = Date.now() - this.#t0;

    await this.#waitHttp(left());
    this.timings.http = Date.now() - this.#t0;
  }

  #createNetns(): void {
    const ns = this.netns;
    ip(['netns', 'add', ns]);
    this.#netnsCreated = true;
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    ip(['-n', ns, 'addr', 'add', `${PAIR_NET.secondaryHost}/8`, 'dev', 'lo']);
    ip(['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    ip(['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', ns, 'addr', 'add', `${PAIR_NET.clientIp}/${PAIR_NET.prefixLen}`, 'dev', 'br0']);
    ip(['-n', ns, 'link', 'set', 'br0', 'up']);
    for (const tap of ['tapP', 'tapS']) {
      // QEMU sets the vnet header flag itself when it attaches (vnet_hdr=on|off).
      ip(['-n', ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
      ip(['-n', ns, 'link', 'set', tap, 'up']);
    }
    ip(['-n', ns, 'link', 'set', 'tapP', 'master', 'br0']); // tapS stays isolated
  }

  /**
   * Spawn `ip netns exec NS ...argv` (which execs in place: the PID is the command's own).
   * Long-running processes log to `<dir>/<name>.stdout|.stderr`.
   */
  #spawn(name: string, argv: string[], env: Record<string, string> = {}, stdio: 'files' | 'pipe' = 'files'): Tracked {
    let fds: number[] = [];
    if (stdio === 'files') fds = [openSync(join(this.dir, `${name}.stdout`), 'w'), openSync(join(this.dir, `${name}.stderr`), 'w')];
    const proc = spawn('ip', ['netns', 'exec', this.netns, ...argv], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: stdio === 'files' ? ['ignore', fds[0]!, fds[1]!] : 'pipe',
    });
    for (const fd of fds) closeSync(fd);
    const t: Tracked = { name, proc, exit: null, gone: Promise.resolve() };
    t.gone = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        t.exit = { code, signal };
        resolve();
      });
      proc.once('error', () => {
        t.exit = { code: -1, signal: null };
        resolve();
      });
    });
    this.#procs.push(t);
    return t;
  }

  async #connectQmp(name: Side, path: string): Promise<void> {
    const q = new HarnessQmp(path);
    this.#qmp[name] = q; // registered first: dispose closes it whatever happens next
    q.client.start();
    const end = Date.now() + 30_000;
    while (q.client.state !== 'ready') {
      this.#checkAlive();
      if (Date.now() > end) throw new Error(`${name} QMP ${path} not ready within 30 s (${existsSync(path) ? 'socket present' : 'socket never appeared'})`);
      await sleep(20);
    }
  }

  async #waitChardevs(side: Side, ids: string[], timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      this.#checkAlive();
      const list = await this.qmp<Array<{ label: string; filename: string }>>(side, 'query-chardev');
      const down = ids.filter((id) => {
        const c = list.find((x) => x.label === id);
        return c === undefined || c.filename.startsWith('disconnected');
      });
      if (down.length === 0) return;
      if (Date.now() > end) throw new Error(`${side} chardevs not connected after ${timeoutMs} ms: ${down.join(', ')} (is the proxy connecting/listening?)`);
      await sleep(100);
    }
  }

  async #waitHttp(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    let last: HttpResult | null = null;
    for (;;) {
      this.#checkAlive();
      last = await this.httpGet('/', 2000);
      if (last.status === 200 && last.body.includes('colo test guest')) return;
      if (Date.now() > end) throw new Error(`guest did not answer HTTP within ${timeoutMs} ms (last: ${last.error ?? `${last.status} ${last.body}`})`);
      await sleep(200);
    }
  }

  #checkAlive(): void {
    for (const t of this.#procs) {
      if (t.name !== 'exec' && t.exit !== null) throw new Error(`${t.name} (pid ${t.proc.pid}) exited: ${t.exit.code ?? t.exit.signal}`);
    }
  }

  #client(side: Side): HarnessQmp {
    const q = this.#qmp[side];
    if (q === undefined) throw new Error(`no QMP connection to the ${side} yet`);
    return q;
  }

  #alive(): void {
    if (this.#disposed) throw new Error('COLO pair already disposed');
  }

  /** Kill by PID whatever still lives in our private namespace (descendants of our processes). */
  #killStrays(): number[] {
    if (!this.#netnsCreated || !netnsExists(this.netns)) return [];
    const r = spawnSync('ip', ['netns', 'pids', this.netns], { encoding: 'utf8' });
    const pids = (r.stdout ?? '').split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
    for (const pid of pids) tryKill(pid, 'SIGKILL');
    return pids;
  }
}

/** Start a COLO pair (see ColoPair). */
export function startColoPair(opts: ColoPairOptions): Promise<ColoPair> {
  return ColoPair.start(opts);
}

/** Namespaces currently present whose names start with PAIR_NETNS_PREFIX (or `prefix`). */
export function leftoverPairNamespaces(prefix: string = PAIR_NETNS_PREFIX): string[] {
  return leftoverNamespaces(prefix);
}

function rank(name: string): number {
  return name === 'exec' ? 0 : name === 'proxy' ? 1 : name === 'secondary' ? 2 : 3;
}

function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.status}): ${(r.stderr ?? '').trim()}`);
}

function netnsExists(name: string): boolean {
  return leftoverPairNamespaces(name).includes(name);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
