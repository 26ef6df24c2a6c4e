/**
 * StreamLink: keep one byte-stream connection to an endpoint up (`tcp:`/`unix:`, see
 * endpoint.ts). The one place that connects, retries, listens and accepts: FramedChannel
 * (packet stream, notify_dev) and QmpClient (QMP's text lines) are both built on it.
 *
 * - Client endpoint: connect; after a failed attempt or a lost connection, retry after a
 *   backoff delay (initial → ×factor → max; reset by `resetBackoff()` once the owner deems the
 *   connection healthy, e.g. after a QMP handshake), unless `reconnect` is off. A fixed delay
 *   is a backoff with factor 1.
 * - Server endpoint (`,server`): accept ONE peer at a time; a second concurrent peer is
 *   refused (closed at once and counted). QEMU's server chardev instead leaves extra clients
 *   waiting in the listen backlog; refusing them makes the misconfiguration visible.
 * - A unix listener removes a stale socket file (never a regular file) before binding, like
 *   QEMU's.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { OnReadOpts, Server, Socket } from 'node:net';
import { ColoError } from '../errors.js';
import { formatEndpoint } from './endpoint.js';
import type { Endpoint } from './endpoint.js';

export interface Backoff {
  /** First retry delay (ms). */
  initialMs: number;
  /** Largest retry delay (ms). */
  maxMs: number;
  /** Growth per consecutive failure (>= 1). */
  factor: number;
}

export interface StreamLinkOptions {
  endpoint: Endpoint;
  /** Client: retry after failures and disconnects (default true). Ignored for servers. */
  reconnect?: boolean;
  backoff: Backoff;
  /** A connection is up (`peer` describes it). */
  onConnected(sock: Socket, peer: string): void;
  /**
   * Bytes read. With `readBuffer`, a client connection's chunk is a view of the reused read
   * buffer, valid only during the call: copy what must be kept.
   */
  onData(chunk: Buffer): void;
  /**
   * Client: read into one reused buffer of this many bytes (Node's `onread`) instead of a new
   * Buffer per read: no allocation and no stream machinery per read (about half the read cost;
   * fewer GCs, which a per-read 64 KiB allocation otherwise drives). Accepted (server) sockets
   * cannot do this in Node and always get fresh chunks. Default: off.
   */
  readBuffer?: number;
  /** The current connection ended; `err` is the socket error, if any. */
  onDisconnected(err: Error | undefined): void;
  /**
   * Client: an attempt failed (before any connection existed). `attempt` counts the failures
   * since the last `resetBackoff()` (1 = the first of a streak).
   */
  onConnectFailed?(err: Error, attempt: number): void;
  /** Server: the listener reported an error after it was bound. */
  onServerError?(err: Error): void;
}

export interface StreamLinkStats {
  connections: number;
  disconnects: number;
  connectFailures: number;
  refused: number;
}

export class StreamLink {
  readonly endpoint: Endpoint;
  readonly #o: StreamLinkOptions;
  readonly #reconnect: boolean;
  #sock: Socket | null = null;
  #connecting: Socket | null = null;
  #server: Server | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #started = false;
  #delay: number;
  #bound: Endpoint;
  #connections = 0;
  #disconnects = 0;
  #connectFailures = 0;
  #refused = 0;
  #failStreak = 0;
  #readBuf: Buffer | undefined;
  #readCb: ((n: number) => boolean) | undefined;

  constructor(options: StreamLinkOptions) {
    const b = options.backoff;
    if (!(b.initialMs >= 0 && b.maxMs >= b.initialMs && b.factor >= 1)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `bad backoff: need 0 <= initialMs <= maxMs and factor >= 1, got ${JSON.stringify(b)}`);
    }
    const rb = options.readBuffer;
    if (rb !== undefined && !(Number.isInteger(rb) && rb >= 1)) throw new ColoError('ERR_INVALID_ARGUMENT', `readBuffer must be an integer >= 1, got ${rb}`);
    this.#o = options;
    this.endpoint = options.endpoint;
    this.#bound = options.endpoint;
    this.#reconnect = options.reconnect ?? true;
    this.#delay = b.initialMs;
  }

  get connected(): boolean {
    return this.#sock !== null;
  }

  /** The current connection's socket (null while there is none). */
  get socket(): Socket | null {
    return this.#sock;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The endpoint actually bound (a server on port 0 reports its real port). */
  get address(): Endpoint {
    return this.#bound;
  }

  /** Server: resolves once bound (rejects with the listen error). Client: starts connecting. */
  async start(): Promise<void> {
    if (this.#started) throw new ColoError('ERR_INVALID_ARGUMENT', `${formatEndpoint(this.endpoint)}: already started`);
    this.#started = true;
    const ep = this.endpoint;
    if (!ep.server) {
      this.#connect();
      return;
    }
    const server = createServer((sock) => this.#onAccept(sock));
    this.#server = server;
    if (ep.kind === 'unix') removeStaleSocket(ep.path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        server.on('error', (err) => this.#o.onServerError?.(err));
        resolve();
      };
      if (ep.kind === 'unix') server.listen(ep.path, done);
      else server.listen(ep.port, ep.host, done);
    });
    const a = server.address();
    if (ep.kind === 'tcp' && a !== null && typeof a === 'object') this.#bound = { ...ep, port: a.port };
  }

  /** Write to the current connection; false when there is none. */
  write(data: Buffer | string): boolean {
    const s = this.#sock;
    if (s === null) return false;
    s.write(data);
    return true;
  }

  /** Destroy the current connection (a client then reconnects after the backoff delay). */
  drop(): void {
    this.#sock?.destroy();
  }

  /** The next retry waits the initial delay again (call once a connection proved healthy). */
  resetBackoff(): void {
    this.#delay = this.#o.backoff.initialMs;
    this.#failStreak = 0;
  }

  /** Stop for good: no reconnects; the connection and listener close. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#connecting?.destroy();
    this.#connecting = null;
    const s = this.#sock;
    if (s !== null) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.destroy();
      });
    }
    const server = this.#server;
    if (server !== null) {
      this.#server = null;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  stats(): StreamLinkStats {
    return { connections: this.#connections, disconnects: this.#disconnects, connectFailures: this.#connectFailures, refused: this.#refused };
  }

  #onAccept(sock: Socket): void {
    if (this.#closed || this.#sock !== null) {
      this.#refused++;
      sock.destroy();
      return;
    }
    this.#attach(sock, describePeer(sock, this.endpoint));
  }

  #connect(): void {
    this.#timer = null;
    if (this.#closed) return;
    const ep = this.endpoint;
    const onread = this.#onread();
    const sock = ep.kind === 'tcp' ? connect({ host: ep.host, port: ep.port, ...onread }) : connect({ path: ep.path, ...onread });
    this.#connecting = sock;
    let settled = false;
    const onFail = (err?: Error): void => {
      if (settled) return;
      settled = true;
      sock.off('connect', onConnect);
      this.#connecting = null;
      sock.destroy();
      this.#connectFailures++;
      this.#failStreak++;
      this.#o.onConnectFailed?.(err ?? new Error('connection closed before it was established'), this.#failStreak);
      this.#retry();
    };
    const onClose = (): void => onFail();
    const onConnect = (): void => {
      settled = true;
      sock.off('error', onFail);
      sock.off('close', onClose);
      this.#connecting = null;
      this.#attach(sock, formatEndpoint(ep));
    };
    sock.once('error', onFail);
    sock.once('close', onClose);
    sock.once('connect', onConnect);
  }

  /** Node's `onread` option for a client connection (none without `readBuffer`). */
  #onread(): { onread?: OnReadOpts } {
    const size = this.#o.readBuffer;
    if (size === undefined) return {};
    const buffer = (this.#readBuf ??= Buffer.allocUnsafeSlow(size));
    // One callback per link: a client has one connection at a time, and a destroyed socket
    // reads no more. Pausing is the owner's (socket.pause() works with onread), so: true.
    const callback = (this.#readCb ??= (n: number): boolean => {
      if (this.#sock !== null) this.#o.onData(buffer.subarray(0, n));
      return true;
    });
    return { onread: { buffer, callback } };
  }

  #retry(): void {
    if (this.#closed || !this.#reconnect || this.endpoint.server || this.#timer !== null) return;
    const d = this.#delay;
    this.#delay = Math.min(this.#o.backoff.maxMs, Math.max(1, d) * this.#o.backoff.factor);
    this.#timer = setTimeout(() => this.#connect(), d);
  }

  #attach(sock: Socket, peer: string): void {
    this.#sock = sock;
    this.#connections++;
    if (this.endpoint.kind === 'tcp') sock.setNoDelay(true);
    let lastErr: Error | undefined;
    sock.on('data', (chunk: Buffer) => {
      if (this.#sock === sock) this.#o.onData(chunk);
    });
    sock.on('error', (err) => {
      lastErr = err;
    });
    sock.on('close', () => {
      if (this.#sock !== sock) return;
      this.#sock = null;
      this.#disconnects++;
      this.#o.onDisconnected(lastErr);
      this.#retry();
    });
    this.#o.onConnected(sock, peer);
  }
}

function describePeer(sock: Socket, ep: Endpoint): string {
  if (ep.kind === 'unix') return `unix:${ep.path}`;
  const host = sock.remoteAddress ?? '?';
  return `tcp:${host.includes(':') ? `[${host}]` : host}:${sock.remotePort ?? '?'}`;
}

/** Remove a leftover unix socket file (never a regular file) before binding. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // absent: nothing to remove
  }
}
