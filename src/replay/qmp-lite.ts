/**
 * The smallest QMP client the reference-engine driver needs: greeting, capabilities
 * negotiation, and commands answered in order (matched by `id`). Events are ignored. It is
 * only used to learn that QEMU is up and that its chardevs accepted our connections; the
 * project's full QMP client (events, reconnect, checkpoints) lives in src/control.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { ColoError } from '../errors.js';

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  cmd: string;
}

export class QmpLite {
  readonly #sock: Socket;
  readonly #pending = new Map<number, Pending>();
  #buf = '';
  #nextId = 1;
  #greeting: ((ok: boolean) => void) | null = null;
  #closed: Error | null = null;

  private constructor(sock: Socket) {
    this.#sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (s: string) => this.#onData(s));
    const gone = (err?: Error): void => {
      this.#closed ??= new ColoError('ERR_QEMU', `QMP connection closed${err !== undefined ? `: ${err.message}` : ''}`);
      this.#greeting?.(false);
      this.#greeting = null;
      for (const p of this.#pending.values()) p.reject(this.#closed);
      this.#pending.clear();
    };
    sock.on('error', gone);
    sock.on('close', () => gone());
  }

  /** Connect to a QMP unix socket, read the greeting and negotiate capabilities. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpLite> {
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ path });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const q = new QmpLite(sock);
    const timer = setTimeout(() => sock.destroy(new Error(`no QMP greeting within ${timeoutMs} ms`)), timeoutMs);
    try {
      const ok = await new Promise<boolean>((resolve) => {
        q.#greeting = resolve;
      });
      if (!ok) throw q.#closed ?? new ColoError('ERR_QEMU', 'QMP connection closed before the greeting');
      await q.execute('qmp_capabilities');
      return q;
    } catch (err) {
      sock.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Run a command; resolves with its `return` value, rejects (ERR_QEMU) with its `error`. */
  execute(cmd: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    const id = this.#nextId++;
    const msg = args === undefined ? { execute: cmd, id } : { execute: cmd, arguments: args, id };
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, cmd });
      this.#sock.write(JSON.stringify(msg) + '\n');
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
      if (line.length === 0) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        this.#sock.destroy(new Error(`QMP sent invalid JSON: ${line.slice(0, 200)}`));
        return;
      }
      if ('QMP' in msg) {
        this.#greeting?.(true);
        this.#greeting = null;
        continue;
      }
      const id = typeof msg.id === 'number' ? msg.id : -1;
      const p = this.#pending.get(id);
      if (p === undefined) continue; // events and unmatched replies
      this.#pending.delete(id);
      if ('error' in msg) p.reject(new ColoError('ERR_QEMU', `QMP ${p.cmd}: ${JSON.stringify(msg.error)}`));
      else p.resolve(msg.return);
    }
  }
}
