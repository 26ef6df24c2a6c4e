/**
 * A small QMP client for the COLO pair harness: commands matched to replies by `id`, and every
 * asynchronous event recorded with the host time it arrived (QEMU's own timestamp is kept too).
 *
 * One QEMU monitor serves one client at a time, so the harness gives each QEMU two monitors:
 * one it keeps for itself (commands + the event log) and a public one for the test or the
 * proxy under test (`ColoPair.qmpPath`). Test code may open this client on the public socket.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';

/** One QMP event as received. */
export interface QmpEvent {
  event: string;
  data: Record<string, unknown> | undefined;
  /** QEMU's timestamp, in ms since the epoch. */
  qemuMs: number;
  /** Host `Date.now()` when the line arrived. */
  at: number;
}

/** A QMP error reply (`{"error": {"class", "desc"}}`). */
export class QmpError extends Error {
  readonly errorClass: string;
  constructor(cmd: string, errorClass: string, desc: string) {
    super(`QMP ${cmd}: ${errorClass}: ${desc}`);
    this.errorClass = errorClass;
  }
}

interface Pending {
  cmd: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

type Waiter = { test: (e: QmpEvent) => boolean; resolve: (e: QmpEvent) => void };

export class QmpClient {
  /** Every event received on this connection, in arrival order. */
  readonly events: QmpEvent[] = [];
  readonly path: string;
  readonly #sock: Socket;
  #buf = '';
  #nextId = 1;
  #greeted: ((v: unknown) => void) | null = null;
  readonly #pending = new Map<number, Pending>();
  #waiters: Waiter[] = [];
  #closed: Error | null = null;

  private constructor(path: string, sock: Socket) {
    this.path = path;
    this.#sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (s: string) => this.#onData(s));
    const gone = (err?: Error) => {
      this.#closed ??= err ?? new Error(`QMP ${path}: connection closed (QEMU exited?)`);
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer);
        p.reject(this.#closed);
      }
      this.#pending.clear();
    };
    sock.on('error', gone);
    sock.on('close', () => gone());
  }

  /**
   * Connect to a QMP unix socket, retrying until it exists and accepts (QEMU is starting), read
   * the greeting and negotiate capabilities.
   */
  static async connect(path: string, timeoutMs = 15_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const sock = existsSync(path) ? await tryConnect(path) : null;
      if (sock !== null) {
        const q = new QmpClient(path, sock);
        const left = Math.max(1, deadline - Date.now());
        let timer: NodeJS.Timeout | undefined;
        const greeting = new Promise((resolve, reject) => {
          q.#greeted = resolve;
          timer = setTimeout(() => reject(new Error(`QMP ${path}: no greeting within ${left} ms (monitor busy with another client?)`)), left);
        });
        try {
          await greeting;
          await q.execute('qmp_capabilities');
        } catch (err) {
          q.close();
          throw err;
        } finally {
          clearTimeout(timer);
        }
        return q;
      }
      if (Date.now() > deadline) throw new Error(`QMP ${path}: could not connect within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Run one command; resolves with its `return` value, rejects with QmpError or on timeout. */
  execute<T = unknown>(cmd: string, args?: Record<string, unknown>, timeoutMs = 15_000): Promise<T> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    const id = this.#nextId++;
    const msg = args === undefined ? { execute: cmd, id } : { execute: cmd, arguments: args, id };
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`QMP ${cmd}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { cmd, resolve: resolve as (v: unknown) => void, reject, timer });
      this.#sock.write(JSON.stringify(msg) + '\n');
    });
  }

  /**
   * Resolve with the first event named `name` at index >= `fromIndex` of `events` (already
   * received or still to come); reject after `timeoutMs`.
   */
  waitEvent(name: string, fromIndex = 0, timeoutMs = 10_000): Promise<QmpEvent> {
    for (let i = fromIndex; i < this.events.length; i++) if (this.events[i]!.event === name) return Promise.resolve(this.events[i]!);
    return new Promise((resolve, reject) => {
      const w: Waiter = { test: (e) => e.event === name, resolve };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        reject(new Error(`QMP ${this.path}: no ${name} event within ${timeoutMs} ms (got: ${this.events.slice(fromIndex).map((e) => e.event).join(', ') || 'none'})`));
      }, timeoutMs);
      w.resolve = (e) => {
        clearTimeout(timer);
        resolve(e);
      };
      this.#waiters.push(w);
    });
  }

  close(): void {
    this.#sock.destroy();
  }

  #onData(s: string): void {
    this.#buf += s;
    let nl: number;
    while ((nl = this.#buf.indexOf('\n')) >= 0) {
      const line = this.#buf.slice(0, nl).trim();
      this.#buf = this.#buf.slice(nl + 1);
      if (line.length > 0) this.#onLine(line);
    }
  }

  #onLine(line: string): void {
    const msg = JSON.parse(line) as Record<string, unknown>;
    if ('QMP' in msg) {
      this.#greeted?.(msg);
      this.#greeted = null;
      return;
    }
    if (typeof msg.event === 'string') {
      const ts = msg.timestamp as { seconds: number; microseconds: number } | undefined;
      const e: QmpEvent = {
        event: msg.event,
        data: msg.data as Record<string, unknown> | undefined,
        qemuMs: ts === undefined ? 0 : ts.seconds * 1000 + ts.microseconds / 1000,
        at: Date.now(),
      };
      this.events.push(e);
      const hit = this.#waiters.filter((w) => w.test(e));
      if (hit.length > 0) {
        this.#waiters = this.#waiters.filter((w) => !hit.includes(w));
        for (const w of hit) w.resolve(e);
      }
      return;
    }
    const id = msg.id as number | undefined;
    const p = id === undefined ? undefined : this.#pending.get(id);
    if (p === undefined) return; // a reply nobody waits for any more (timed out)
    this.#pending.delete(id!);
    clearTimeout(p.timer);
    if ('error' in msg) {
      const err = msg.error as { class?: string; desc?: string };
      p.reject(new QmpError(p.cmd, err.class ?? '?', err.desc ?? JSON.stringify(err)));
    } else p.resolve(msg.return);
  }
}

function tryConnect(path: string): Promise<Socket | null> {
  return new Promise((resolve) => {
    const s = connect({ path });
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', () => resolve(null));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
