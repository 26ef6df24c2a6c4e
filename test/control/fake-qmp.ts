/**
 * A scripted QMP server for tests, written from the protocol description (QEMU's qmp-spec and
 * what QEMU 7.2 was seen to send: greeting, CRLF line ends, `id` echoed, errors as
 * `{"error":{"class","desc"}}`), independently of src/control.
 *
 * Commands are answered by handlers (default: qmp_capabilities → {}, anything else →
 * CommandNotFound like QEMU); a handler may answer later, not at all, or close the
 * connection. Every received message is recorded; events and raw bytes can be pushed at will.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Json = Record<string, unknown>;

export interface Received {
  conn: number;
  msg: Json;
  /** performance.now() at receipt. */
  at: number;
}

export interface Ctx {
  /** The connection number (1, 2, …) the command arrived on. */
  conn: number;
  id: unknown;
  reply(body: { return: unknown } | { error: { class: string; desc: string } }): void;
  event(name: string, data?: Json): void;
  /** Destroy this connection. */
  drop(): void;
}

/** Handle a command: call ctx.reply now or later (or never). */
export type Handler = (args: Json | undefined, ctx: Ctx) => void;

export interface FakeQmpOptions {
  /** Capabilities offered in the greeting; default ['oob']. */
  capabilities?: string[];
  /** Send no greeting at all (handshake timeout tests). */
  noGreeting?: boolean;
  /** Replace the greeting line. */
  greetingLine?: string;
  handlers?: Record<string, Handler>;
  /** 'unix' (default) or 'tcp'. */
  transport?: 'unix' | 'tcp';
}

let seq = 0;

export class FakeQmp {
  readonly received: Received[] = [];
  readonly handlers: Record<string, Handler>;
  connections = 0;
  endpoint = '';
  #server: Server;
  #sock: Socket | null = null;
  #dir: string;
  #opts: FakeQmpOptions;
  #all = new Set<Socket>();

  private constructor(opts: FakeQmpOptions) {
    this.#opts = opts;
    this.#dir = mkdtempSync(join(tmpdir(), 'colo-fakeqmp-'));
    this.handlers = {
      qmp_capabilities: (_a, ctx) => ctx.reply({ return: {} }),
      ...opts.handlers,
    };
    this.#server = createServer((s) => this.#onConn(s));
  }

  static async start(opts: FakeQmpOptions = {}): Promise<FakeQmp> {
    const f = new FakeQmp(opts);
    await f.listen();
    return f;
  }

  /** (Re)start listening on the same address. */
  async listen(): Promise<void> {
    if (this.#opts.transport === 'tcp') {
      const port = this.endpoint === '' ? 0 : Number(this.endpoint.split(':')[2]);
      await new Promise<void>((resolve, reject) => {
        this.#server.once('error', reject);
        this.#server.listen(port, '127.0.0.1', () => resolve());
      });
      const a = this.#server.address();
      if (a === null || typeof a !== 'object') throw new Error('no address');
      this.endpoint = `tcp:127.0.0.1:${a.port}`;
    } else {
      const path = this.endpoint === '' ? join(this.#dir, `qmp${seq++}.sock`) : this.endpoint.slice(5);
      await new Promise<void>((resolve, reject) => {
        this.#server.once('error', reject);
        this.#server.listen(path, () => resolve());
      });
      this.endpoint = `unix:${path}`;
    }
  }

  /** Stop listening and drop the client (the endpoint can be reused with `listen`). */
  async stopListening(): Promise<void> {
    for (const s of this.#all) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server = createServer((s) => this.#onConn(s));
  }

  get clientConnected(): boolean {
    return this.#sock !== null;
  }

  /** Commands received (name), in order, optionally from one connection. */
  commands(conn?: number): string[] {
    return this.received
      .filter((r) => conn === undefined || r.conn === conn)
      .map((r) => String(r.msg['execute'] ?? r.msg['exec-oob'] ?? '?'));
  }

  /** Emit an event on the current connection (QEMU's layout, CRLF). */
  event(name: string, data?: Json): void {
    const t = Date.now();
    const msg: Json = { timestamp: { seconds: Math.floor(t / 1000), microseconds: (t % 1000) * 1000 }, event: name };
    if (data !== undefined) msg['data'] = data;
    this.writeRaw(JSON.stringify(msg) + '\r\n');
  }

  writeRaw(s: string | Buffer): void {
    this.#sock?.write(s);
  }

  /** Destroy the current client connection. */
  drop(): void {
    this.#sock?.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.#all) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #onConn(s: Socket): void {
    const conn = ++this.connections;
    this.#sock = s;
    this.#all.add(s);
    s.on('close', () => {
      this.#all.delete(s);
      if (this.#sock === s) this.#sock = null;
    });
    s.on('error', () => {});
    if (!this.#opts.noGreeting) {
      const caps = this.#opts.capabilities ?? ['oob'];
      s.write(
        (this.#opts.greetingLine ??
          JSON.stringify({ QMP: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: 'fake 7.2' }, capabilities: caps } })) + '\r\n',
      );
    }
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        const msg = JSON.parse(line) as Json;
        this.received.push({ conn, msg, at: performance.now() });
        const name = String(msg['execute'] ?? msg['exec-oob']);
        const id = msg['id'];
        const ctx: Ctx = {
          conn,
          id,
          reply: (body) => {
            if (s.destroyed) return;
            const out: Json = { ...body };
            if (id !== undefined) out['id'] = id;
            s.write(JSON.stringify(out) + '\r\n');
          },
          event: (n, data) => {
            if (this.#sock === s) this.event(n, data);
          },
          drop: () => s.destroy(),
        };
        const h = this.handlers[name];
        if (h !== undefined) h(msg['arguments'] as Json | undefined, ctx);
        else ctx.reply({ error: { class: 'CommandNotFound', desc: `The command ${name} has not been found` } });
      }
    });
  }
}

/** Poll `pred` until true (or throw after `ms`). */
export async function until(pred: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
