/**
 * A QEMU child process: spawned with stdin closed and stderr captured (a bounded tail plus a
 * line callback), stopped by its own PID (SIGTERM, then SIGKILL after a grace period; never by
 * name), with CPU time and memory read from /proc/PID for fair comparisons with our engine.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { ColoError } from '../errors.js';

/** Debian's QEMU system emulator for x86-64 (any system emulator works: colo-compare needs no machine). */
export const DEFAULT_QEMU_BINARY = 'qemu-system-x86_64';

/** CPU time and memory of a process, from /proc/PID/stat and /proc/PID/status. */
export interface ProcessStats {
  /** User-mode CPU time (ms), clock-tick resolution. */
  cpuUserMs: number;
  /** Kernel-mode CPU time (ms). */
  cpuSystemMs: number;
  /** User + system. */
  cpuMs: number;
  /** Resident set size now (KiB). */
  rssKiB: number;
  /** Peak resident set size (VmHWM, KiB). */
  peakRssKiB: number;
}

export interface QemuProcessOptions {
  binary?: string;
  args: readonly string[];
  /** Bytes of stderr kept for diagnostics (the most recent ones); default 64 KiB. */
  stderrLimit?: number;
  /** Called for every complete stderr line (e.g. to count trace events). */
  onStderrLine?(line: string): void;
  /** A private dir to remove should this process exit while QEMU still runs. */
  dir?: string;
}

let clockTicks = 0;

/**
 * QEMUs still running. If this process exits without stopping them (an uncaught error, a
 * test runner tearing down), they are killed by PID on the way out rather than left behind.
 */
const live = new Map<number, string | undefined>();
let exitHookInstalled = false;

function track(pid: number, dir: string | undefined): void {
  live.set(pid, dir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [p, d] of live) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
      if (d !== undefined) rmSync(d, { recursive: true, force: true });
    }
  });
}

/** Clock ticks per second of /proc/PID/stat times (`getconf CLK_TCK`, 100 if that fails). */
export function clockTicksPerSecond(): number {
  if (clockTicks === 0) {
    try {
      const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      clockTicks = Number.isInteger(v) && v > 0 ? v : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** The first line of `BINARY --version`, or null when the binary cannot be run. */
export function qemuVersion(binary: string = DEFAULT_QEMU_BINARY): string | null {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  if (r.status !== 0 || typeof r.stdout !== 'string') return null;
  return r.stdout.split('\n')[0]!.trim();
}

/** True when `binary --version` runs. */
export function qemuAvailable(binary: string = DEFAULT_QEMU_BINARY): boolean {
  return qemuVersion(binary) !== null;
}

/**
 * CPU time and memory of process `pid`, or null when it is gone. The command name in
 * /proc/PID/stat is parenthesised and may contain spaces, so fields are counted after the
 * last ')': utime and stime are fields 14 and 15 of the whole line.
 */
export function readProcessStats(pid: number): ProcessStats | null {
  let stat: string;
  let status: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state), so field n is f[n - 3].
  const tick = 1000 / clockTicksPerSecond();
  const user = Number(f[11]) * tick;
  const sys = Number(f[12]) * tick;
  const kib = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    return m === null ? 0 : Number(m[1]);
  };
  return { cpuUserMs: user, cpuSystemMs: sys, cpuMs: user + sys, rssKiB: kib('VmRSS'), peakRssKiB: kib('VmHWM') };
}

export class QemuProcess {
  readonly binary: string;
  readonly args: readonly string[];
  readonly #proc: ChildProcess;
  readonly #limit: number;
  readonly #exit: Promise<void>;
  #stderr = '';
  #partial = '';
  #exited = false;
  #exitCode: number | null = null;
  #signal: NodeJS.Signals | null = null;

  private constructor(binary: string, args: readonly string[], proc: ChildProcess, limit: number, onLine?: (line: string) => void, dir?: string) {
    this.binary = binary;
    this.args = args;
    this.#proc = proc;
    this.#limit = limit;
    if (proc.pid !== undefined) track(proc.pid, dir);
    this.#exit = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        if (proc.pid !== undefined) live.delete(proc.pid);
        this.#exited = true;
        this.#exitCode = code;
        this.#signal = signal;
        resolve();
      });
      proc.once('error', (err) => {
        // spawn failure (ENOENT…): no 'exit' follows.
        this.#exited = true;
        this.#append(`spawn failed: ${err.message}\n`, onLine);
        resolve();
      });
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (s: string) => this.#append(s, onLine));
  }

  /** Start QEMU. Spawn errors surface as an early exit (see `exited`, `stderr`). */
  static spawn(options: QemuProcessOptions): QemuProcess {
    const binary = options.binary ?? DEFAULT_QEMU_BINARY;
    const proc = spawn(binary, options.args, { stdio: ['ignore', 'ignore', 'pipe'] });
    return new QemuProcess(binary, options.args, proc, options.stderrLimit ?? 65_536, options.onStderrLine, options.dir);
  }

  /** The process id (undefined only if the spawn itself failed). */
  get pid(): number | undefined {
    return this.#proc.pid;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** The signal that ended it (a crash: SIGSEGV, SIGABRT…), or null. */
  get signal(): NodeJS.Signals | null {
    return this.#signal;
  }

  /** How it ended, for messages: `exit code N`, `signal S`, or `running`. */
  get exitDescription(): string {
    if (!this.#exited) return 'running';
    return this.#signal !== null ? `signal ${this.#signal}` : `exit code ${this.#exitCode ?? '?'}`;
  }

  /** The most recent stderr output (at most `stderrLimit` bytes). */
  get stderr(): string {
    return this.#stderr + this.#partial;
  }

  /** Resolves when the process has exited. */
  whenExited(): Promise<void> {
    return this.#exit;
  }

  /** CPU time and memory now, or null once the process is gone. */
  stats(): ProcessStats | null {
    const pid = this.#proc.pid;
    if (pid === undefined || this.#exited) return null;
    return readProcessStats(pid);
  }

  /** Stop the process by PID: SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
  async kill(graceMs = 3000): Promise<void> {
    const pid = this.#proc.pid;
    if (this.#exited || pid === undefined) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const t = setTimeout(() => {
      if (!this.#exited) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, graceMs);
    await this.#exit;
    clearTimeout(t);
  }

  #append(s: string, onLine?: (line: string) => void): void {
    if (onLine !== undefined) {
      let buf = this.#partial + s;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.#keep(line + '\n');
        onLine(line);
      }
      this.#partial = buf.length > this.#limit ? buf.slice(-this.#limit) : buf;
      return;
    }
    this.#keep(s);
  }

  #keep(s: string): void {
    this.#stderr += s;
    if (this.#stderr.length > this.#limit) this.#stderr = this.#stderr.slice(-this.#limit);
  }
}

/** A ColoError for QEMU start-up/protocol failures, with the stderr tail appended. */
export function qemuError(what: string, proc: QemuProcess | null): ColoError {
  const tail = proc === null ? '' : proc.stderr.trim();
  const state = proc === null ? '' : ` (QEMU ${proc.exitDescription})`;
  return new ColoError('ERR_QEMU', `${what}${state}${tail.length > 0 ? `; QEMU stderr: ${tail.slice(-2000)}` : ''}`);
}
