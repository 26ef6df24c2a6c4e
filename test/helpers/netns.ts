/**
 * Network-namespace lab for tests: uniquely named namespaces, veth pairs created straight
 * inside them (no interface ever exists in the host namespace), documentation-range
 * addresses only, processes spawned inside with `ip netns exec`, and a disposer that kills
 * every process it started BY PID and deletes every namespace it created.
 *
 * ```ts
 * const lab = new NetnsLab('tap');         // namespaces "<prefix><pid>-<n>-<role>"
 * afterAll(() => lab.dispose());
 * const a = lab.add('client'), b = lab.add('server');
 * lab.veth(a, 'va', b, 'vb');
 * lab.addr(a, 'va', '192.0.2.1/24');
 * ```
 * Undisposed labs are also cleaned synchronously on process exit (last resort).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { isIPv4, isIPv6 } from 'node:net';
import { hasTool, isRoot } from './tools.js';

/** Why namespace tests cannot run here, or null when they can. */
export function netnsSkipReason(): string | null {
  if (!isRoot) return 'not root: network-namespace tests need CAP_SYS_ADMIN/CAP_NET_ADMIN (run as root)';
  if (!hasTool('ip')) return '`ip` (iproute2) not found: network-namespace tests skipped';
  return null;
}

/** Prefix of every namespace a lab creates (used to check nothing is left behind). */
export const NETNS_PREFIX = 'colotest-';

let counter = 0;
const live = new Set<NetnsLab>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const lab of live) lab.disposeSync();
  });
}

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

/** True when `addr` (no prefix length) lies in a documentation range (RFC 5737, RFC 3849). */
export function isDocumentationAddress(addr: string): boolean {
  if (isIPv4(addr)) {
    const n = ipv4ToInt(addr);
    return [0xc0000200, 0xc6336400, 0xcb007100].some((net) => n >>> 8 === net >>> 8);
  }
  if (isIPv6(addr)) return /^2001:0?db8(:|$)/i.test(addr);
  return false;
}

export interface NsResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class NetnsLab {
  readonly prefix: string;
  readonly #namespaces: string[] = [];
  readonly #procs: ChildProcess[] = [];
  #disposed = false;

  /** `tag` (a few letters) makes the namespace names readable in `ip netns list`. */
  constructor(tag: string) {
    if (!/^[a-z0-9]{1,12}$/.test(tag)) throw new Error(`netns tag "${tag}" must be 1-12 lowercase letters/digits`);
    this.prefix = `${NETNS_PREFIX}${tag}-${process.pid}-`;
    live.add(this);
    installExitHook();
  }

  /** Namespaces created so far. */
  get namespaces(): readonly string[] {
    return this.#namespaces;
  }

  /** Create a namespace named `<prefix><n>-<role>` with `lo` up; returns its name. */
  add(role: string): string {
    this.#alive();
    if (!/^[a-z0-9]{1,16}$/.test(role)) throw new Error(`netns role "${role}" must be 1-16 lowercase letters/digits`);
    const name = `${this.prefix}${++counter}-${role}`;
    this.ip(['netns', 'add', name]);
    this.#namespaces.push(name);
    this.ip(['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** Run `ip ARGS` in the host namespace context (only for netns-targeted commands); throws on failure. */
  ip(args: string[]): string {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Run `ip -n NS ARGS`. */
  ipIn(ns: string, args: string[]): string {
    this.#owned(ns);
    return this.ip(['-n', ns, ...args]);
  }

  /** A veth pair created directly inside two namespaces, both ends up. */
  veth(nsA: string, ifA: string, nsB: string, ifB: string, opts: { macA?: string; macB?: string } = {}): void {
    this.#owned(nsA);
    this.#owned(nsB);
    this.ip(['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
    if (opts.macA) this.ipIn(nsA, ['link', 'set', ifA, 'address', opts.macA]);
    if (opts.macB) this.ipIn(nsB, ['link', 'set', ifB, 'address', opts.macB]);
    this.ipIn(nsA, ['link', 'set', ifA, 'up']);
    this.ipIn(nsB, ['link', 'set', ifB, 'up']);
  }

  /** Add `cidr` (e.g. "192.0.2.1/24"); refuses anything outside the documentation ranges. */
  addr(ns: string, dev: string, cidr: string): void {
    const [a] = cidr.split('/');
    if (a === undefined || !isDocumentationAddress(a)) {
      throw new Error(`address ${cidr} is outside the documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32)`);
    }
    this.ipIn(ns, ['addr', 'add', cidr, 'dev', dev, ...(isIPv6(a) ? ['nodad'] : [])]);
  }

  /** A permanent neighbour entry (so tests never wait for ARP). */
  neigh(ns: string, dev: string, addr: string, mac: string): void {
    if (!isDocumentationAddress(addr)) throw new Error(`neighbour ${addr} is outside the documentation ranges`);
    this.ipIn(ns, ['neigh', 'replace', addr, 'lladdr', mac, 'dev', dev, 'nud', 'permanent']);
  }

  /** Set a sysctl inside `ns`, e.g. ("net.ipv6.conf.all.disable_ipv6", "1"). */
  sysctl(ns: string, key: string, value: string): void {
    this.exec(ns, 'sysctl', ['-qw', `${key}=${value}`]);
  }

  /** Run a command inside `ns` to completion; throws with stderr when it fails. */
  exec(ns: string, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
    const r = this.run(ns, cmd, args, opts);
    if (r.status !== 0) throw new Error(`[${ns}] ${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Run a command inside `ns` to completion and return its status and output. */
  run(ns: string, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): NsResult {
    this.#owned(ns);
    const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], {
      encoding: 'utf8',
      input: opts.input,
      timeout: opts.timeoutMs ?? 30_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') };
  }

  /**
   * Start a process inside `ns` and track it; `dispose()` kills it by PID. (`ip netns exec`
   * execs the command in place, so the PID is the command's own.)
   */
  spawn(ns: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    this.#alive();
    this.#owned(ns);
    const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.#procs.push(p);
    return p;
  }

  /** PIDs of every process this lab started (exited or not). */
  get pids(): number[] {
    return this.#procs.flatMap((p) => (p.pid === undefined ? [] : [p.pid]));
  }

  /** Processes started by this lab that have not exited. */
  running(): ChildProcess[] {
    return this.#procs.filter((p) => p.exitCode === null && p.signalCode === null);
  }

  /**
   * Kill every process this lab started (SIGTERM, SIGKILL after `graceMs`), wait for them,
   * then delete every namespace it created. Idempotent; safe to call from afterAll/finally.
   */
  async dispose(graceMs = 2000): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await Promise.all(this.#procs.map((p) => stopProcess(p, graceMs)));
    this.#deleteNamespaces();
    live.delete(this);
  }

  /** Synchronous last-resort cleanup (process exit): SIGKILL by PID, delete namespaces. */
  disposeSync(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const p of this.#procs) {
      if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    this.#deleteNamespaces();
    live.delete(this);
  }

  #deleteNamespaces(): void {
    const errors: string[] = [];
    for (const ns of this.#namespaces.splice(0).reverse()) {
      const r = spawnSync('ip', ['netns', 'del', ns], { encoding: 'utf8' });
      if (r.status !== 0 && !/No such file/.test(r.stderr)) errors.push(`${ns}: ${r.stderr.trim()}`);
    }
    if (errors.length > 0) throw new Error(`could not delete namespaces: ${errors.join('; ')}`);
  }

  #alive(): void {
    if (this.#disposed) throw new Error('netns lab already disposed');
  }

  #owned(ns: string): void {
    if (!this.#namespaces.includes(ns)) throw new Error(`namespace ${ns} was not created by this lab`);
  }
}

/** SIGTERM a child by PID, SIGKILL after `graceMs`, and wait until it has exited. */
export async function stopProcess(p: ChildProcess, graceMs = 2000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
  const gone = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  try {
    process.kill(p.pid, signal);
  } catch {
    return;
  }
  const t = setTimeout(() => {
    if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
  }, graceMs);
  await gone;
  clearTimeout(t);
}

/** Namespaces currently present whose names start with `prefix` (default: any lab's). */
export function leftoverNamespaces(prefix: string = NETNS_PREFIX): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0]!.trim())
    .filter((n) => n.startsWith(prefix));
}
