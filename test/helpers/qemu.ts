/**
 * Spawn a guest-less QEMU for wire tests, talk QMP to it, and clean up by PID.
 *
 * Every instance gets a private temp dir for its unix sockets (QMP included), is started with
 * `-nodefaults -display none -serial none -monitor none`, and is stopped by its own PID
 * (SIGTERM, then SIGKILL after a grace period); the temp dir is removed afterwards. Nothing
 * is ever killed by name.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopProcess } from './netns.js';
import { hasTool } from './tools.js';

export const QEMU_BIN = 'qemu-system-x86_64';
export const hasQemu = hasTool(QEMU_BIN);
export const QEMU_MISSING = `${QEMU_BIN} not found on PATH: real-QEMU wire tests skipped`;

/** Arguments every test instance gets (besides QMP). */
export const QEMU_BASE_ARGS: readonly string[] = ['-nodefaults', '-display', 'none', '-serial', 'none', '-monitor', 'none'];

export interface StartQemuOptions {
  /** Extra arguments; `dir` is the instance's temp dir (put unix sockets there). */
  args: (dir: string) => string[];
  /** Socket files to wait for besides QMP. */
  waitForPaths?: (dir: string) => string[];
  timeoutMs?: number;
}

/**
 * A minimal QMP client: one command at a time, events ignored. Deliberately NOT the project's
 * QmpClient: test/control/qemu.test.ts uses it as the independent observer of that client.
 */
export class Qmp {
  readonly #sock: Socket;
  #buf = '';
  #waiter: ((msg: Record<string, unknown>) => void) | null = null;
  #fail: ((err: Error) => void) | null = null;
  #closed: Error | null = null;
  #lines: Array<Record<string, unknown>> = [];

  private constructor(sock: Socket) {
    this.#sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (s: string) => {
      this.#buf += s;
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl).trim();
        this.#buf = this.#buf.slice(nl + 1);
        if (line.length === 0) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) continue;
        if (this.#waiter !== null) {
          const w = this.#waiter;
          this.#waiter = null;
          this.#fail = null;
          w(msg);
        } else this.#lines.push(msg);
      }
    });
    const onGone = (err?: Error) => {
      this.#closed ??= err ?? new Error('QMP connection closed (QEMU exited?)');
      const f = this.#fail;
      this.#waiter = null;
      this.#fail = null;
      f?.(this.#closed);
    };
    sock.on('error', onGone);
    sock.on('close', () => onGone());
  }

  static async open(path: string): Promise<Qmp> {
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ path });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const q = new Qmp(sock);
    await q.#next(); // greeting
    await q.execute('qmp_capabilities');
    return q;
  }

  #next(): Promise<Record<string, unknown>> {
    const m = this.#lines.shift();
    if (m !== undefined) return Promise.resolve(m);
    if (this.#closed !== null) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      this.#waiter = resolve;
      this.#fail = reject;
    });
  }

  async execute(cmd: string, args?: Record<string, unknown>): Promise<unknown> {
    this.#sock.write(JSON.stringify(args === undefined ? { execute: cmd } : { execute: cmd, arguments: args }) + '\n');
    const r = await this.#next();
    if ('error' in r) throw new Error(`QMP ${cmd}: ${JSON.stringify(r.error)}`);
    return r.return;
  }

  close(): void {
    this.#sock.destroy();
  }
}

export class QemuInstance {
  readonly dir: string;
  readonly proc: ChildProcess;
  readonly qmp: Qmp;
  #stderr = '';
  #exited = false;

  private constructor(dir: string, proc: ChildProcess, qmp: Qmp) {
    this.dir = dir;
    this.proc = proc;
    this.qmp = qmp;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get stderr(): string {
    return this.#stderr;
  }

  get exited(): boolean {
    return this.#exited;
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /**
   * Start QEMU with QEMU_BASE_ARGS + a QMP socket + `opts.args(dir)` and wait until QMP
   * answers (all `-object`s exist by then) and the listed sockets exist.
   */
  static async start(opts: StartQemuOptions): Promise<QemuInstance> {
    const dir = mkdtempSync(join(tmpdir(), 'colo-wire-'));
    const qmpPath = join(dir, 'qmp.sock');
    const args = [...QEMU_BASE_ARGS, '-qmp', `unix:${qmpPath},server=on,wait=off`, ...opts.args(dir)];
    const proc = spawn(QEMU_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let exited = false;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (s: string) => {
      stderr += s;
    });
    proc.once('exit', () => {
      exited = true;
    });
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    const paths = [qmpPath, ...(opts.waitForPaths?.(dir) ?? [])];
    try {
      while (!paths.every((p) => existsSync(p))) {
        if (exited) throw new Error(`QEMU exited during startup: ${stderr.trim()}`);
        if (Date.now() > deadline) throw new Error(`QEMU did not create ${paths.join(', ')} in time; stderr: ${stderr.trim()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      const qmp = await Qmp.open(qmpPath).catch((err: Error) => {
        throw new Error(`QMP handshake failed (${err.message}); QEMU stderr: ${stderr.trim()}`);
      });
      const inst = new QemuInstance(dir, proc, qmp);
      inst.#stderr = stderr;
      proc.stderr!.removeAllListeners('data');
      proc.stderr!.on('data', (s: string) => {
        inst.#stderr += s;
      });
      inst.#exited = exited;
      proc.once('exit', () => {
        inst.#exited = true;
      });
      return inst;
    } catch (err) {
      await stopProcess(proc, 3000);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** `filename` of a chardev per query-chardev ("disconnected:…" while no peer is connected). */
  async chardevFilename(id: string): Promise<string> {
    const list = (await this.qmp.execute('query-chardev')) as Array<{ label: string; filename: string }>;
    const c = list.find((x) => x.label === id);
    if (c === undefined) throw new Error(`no chardev ${id}`);
    return c.filename;
  }

  /** Wait until QEMU reports the socket chardev `id` connected. */
  async waitChardevConnected(id: string, timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const f = await this.chardevFilename(id);
      if (!f.startsWith('disconnected:')) return;
      if (Date.now() > end) throw new Error(`chardev ${id} still ${f} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Wait until QEMU reports the socket chardev `id` disconnected (it noticed the peer left). */
  async waitChardevDisconnected(id: string, timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const f = await this.chardevFilename(id);
      if (f.startsWith('disconnected:')) return;
      if (Date.now() > end) throw new Error(`chardev ${id} still ${f} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Stop this QEMU by its PID and remove its temp dir. */
  async stop(): Promise<void> {
    this.qmp.close();
    await stopProcess(this.proc, 3000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** An ephemeral loopback TCP port that was free a moment ago (for QEMU's fixed-port options). */
export async function freeTcpPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const a = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (a === null || typeof a !== 'object') throw new Error('no port');
  return a.port;
}
