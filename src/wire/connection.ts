/**
 * FramedChannel: one endpoint speaking the QEMU chardev packet stream.
 *
 * - Client (`tcp:H:P`, `unix:PATH`): connects, and after any disconnect or failed attempt
 *   reconnects after `reconnectMs` (like a QEMU chardev with `reconnect=1`).
 * - Server (`…,server`): accepts ONE peer at a time. A second concurrent peer is refused
 *   (closed at once and counted in `refused`); after the peer leaves the next one is accepted.
 *   QEMU's server chardev instead leaves extra clients waiting in the listen backlog; refusing
 *   them makes the misconfiguration visible.
 * - Every connection starts with a reset FrameDecoder and FrameWriter, so a half frame from
 *   an old connection never pollutes the next one (QEMU keeps the parser state across
 *   reconnects: reference §2.1).
 * - A framing error is reported through `onError` (a FramingError with the offending value
 *   and stream offset) and the connection is destroyed; a client then reconnects, a server
 *   accepts the next peer.
 * - Backpressure: when the pool is exhausted the socket is paused and resumed once a slot is
 *   released (`pool.whenAvailable`); the writer's backpressure is exposed as `backpressured`
 *   and `onDrain`.
 * - Frames written while no peer is connected are dropped and counted (QEMU's chardev fails
 *   such writes with EIO and the filters drop the packet).
 *
 * Events are plain callbacks; nothing is allocated per frame.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { ColoError } from '../errors.js';
import type { FramingError } from '../errors.js';
import type { PacketPool } from '../packet/pool.js';
import { FrameDecoder } from './decoder.js';
import type { FrameDecoderStats } from './decoder.js';
import { formatEndpoint, parseEndpoint } from './endpoint.js';
import type { Endpoint } from './endpoint.js';
import { FrameWriter } from './writer.js';
import type { FrameWriterStats } from './writer.js';

/** Why a connection ended. */
export type DisconnectReason = 'peer-closed' | 'framing-error' | 'socket-error' | 'dropped' | 'closed';

export interface FramedChannelOptions {
  /** Endpoint object or string (`tcp:HOST:PORT[,server]`, `unix:PATH[,server]`). */
  endpoint: Endpoint | string;
  /** Passed to `parseEndpoint` when `endpoint` is a string. */
  allowRemote?: boolean;
  /** The stream carries the vnet_hdr_len field (QEMU `vnet_hdr_support=on`), both ways. */
  vnetHdr: boolean;
  pool: PacketPool;
  /** Largest frame accepted and written; default NET_BUFSIZE. */
  maxFrame?: number;
  /** Zero-length frame policy of the decoder; default 'skip'. */
  emptyFrames?: 'skip' | 'error';
  /** Client reconnect delay (ms); default the endpoint's `reconnect=` or 1000. */
  reconnectMs?: number;
  /** Output chunk size of the writer; default 65 536. */
  chunkSize?: number;
  /** Writer's chunk cap (see FrameWriter); default 256. */
  maxChunks?: number;
  /** A decoded frame; the callee owns `handle` and must release it. */
  onFrame(handle: number, vnetHdrLen: number): void;
  /** A peer connected (`peer` describes it). */
  onConnected?(peer: string): void;
  /** The current connection ended. */
  onDisconnected?(reason: DisconnectReason, err?: Error): void;
  /**
   * Structured errors: a FramingError for a bad frame (the connection is then destroyed), or
   * the socket's own Error (with its errno `code`) for transport failures. A client's connect
   * failures are reported once per streak, then only counted in `connectFailures`.
   */
  onError?(err: Error): void;
  /** The writer's backpressure cleared. */
  onDrain?(): void;
}

export interface FramedChannelStats {
  /** Connections established (accepted or connected). */
  connections: number;
  disconnects: number;
  /** Server: concurrent peers refused while one was connected. */
  refused: number;
  /** Client: failed connection attempts. */
  connectFailures: number;
  /** Connections destroyed because of a framing error. */
  framingErrors: number;
  /** Frames the caller wrote while no peer was connected (dropped). */
  notConnectedDrops: number;
  decoder: FrameDecoderStats;
  writer: FrameWriterStats;
}

export class FramedChannel {
  readonly endpoint: Endpoint;
  readonly #pool: PacketPool;
  readonly #decoder: FrameDecoder;
  readonly #writer: FrameWriter;
  readonly #reconnectMs: number;
  readonly #opts: FramedChannelOptions;

  #sock: Socket | null = null;
  #server: Server | null = null;
  #connecting: Socket | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #started = false;
  /** Incremented per connection; stale callbacks compare against it. */
  #connGen = 0;
  #pendingReason: DisconnectReason | null = null;
  #connectFailStreak = 0;
  #bound: Endpoint;
  #waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];

  #connections = 0;
  #disconnects = 0;
  #refused = 0;
  #connectFailures = 0;
  #framingErrors = 0;
  #notConnectedDrops = 0;

  constructor(options: FramedChannelOptions) {
    this.#opts = options;
    this.endpoint =
      typeof options.endpoint === 'string'
        ? parseEndpoint(options.endpoint, options.allowRemote ? { allowRemote: true } : {})
        : options.endpoint;
    this.#bound = this.endpoint;
    this.#pool = options.pool;
    const rc = options.reconnectMs ?? this.endpoint.reconnectMs ?? 1000;
    if (!(Number.isFinite(rc) && rc >= 0)) throw new ColoError('ERR_INVALID_ARGUMENT', `reconnectMs must be >= 0, got ${rc}`);
    this.#reconnectMs = rc;
    this.#decoder = new FrameDecoder({
      vnetHdr: options.vnetHdr,
      pool: options.pool,
      onFrame: options.onFrame,
      onError: (err) => this.#onFramingError(err),
      ...(options.maxFrame !== undefined ? { maxFrame: options.maxFrame } : {}),
      ...(options.emptyFrames !== undefined ? { emptyFrames: options.emptyFrames } : {}),
    });
    this.#writer = new FrameWriter({
      vnetHdr: options.vnetHdr,
      pool: options.pool,
      sink: (chunk, done) => {
        const s = this.#sock;
        if (s === null) {
          done();
          return true;
        }
        return s.write(chunk, done);
      },
      onDrain: () => this.#opts.onDrain?.(),
      ...(options.maxFrame !== undefined ? { maxFrame: options.maxFrame } : {}),
      ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}),
      ...(options.maxChunks !== undefined ? { maxChunks: options.maxChunks } : {}),
    });
  }

  /** True while a peer is connected. */
  get connected(): boolean {
    return this.#sock !== null;
  }

  /** The writer's backpressure: stop producing until `onDrain`. */
  get backpressured(): boolean {
    return this.#writer.backpressured;
  }

  /** The endpoint actually bound (a server on port 0 reports its real port). */
  get address(): Endpoint {
    return this.#bound;
  }

  /**
   * Start listening (server; resolves once bound, rejects with the listen error) or start
   * connecting (client; resolves at once — see `onConnected` / `whenConnected`).
   */
  async start(): Promise<void> {
    if (this.#started) throw new ColoError('ERR_INVALID_ARGUMENT', `${formatEndpoint(this.endpoint)}: channel already started`);
    this.#started = true;
    if (!this.endpoint.server) {
      this.#connect();
      return;
    }
    const ep = this.endpoint;
    const server = createServer((sock) => this.#onAccept(sock));
    this.#server = server;
    if (ep.kind === 'unix') removeStaleSocket(ep.path);
    await new Promise<void>((resolve, reject) => {
      const onErr = (err: Error) => reject(err);
      server.once('error', onErr);
      const done = () => {
        server.off('error', onErr);
        server.on('error', (err) => this.#opts.onError?.(err));
        resolve();
      };
      if (ep.kind === 'unix') server.listen(ep.path, done);
      else server.listen(ep.port, ep.host, done);
    });
    const a = server.address();
    if (ep.kind === 'tcp' && a !== null && typeof a === 'object') this.#bound = { ...ep, port: a.port };
  }

  /** Resolves when a peer is connected (immediately if one is); rejects (ERR_CHANNEL_CLOSED) on `close()`. */
  whenConnected(): Promise<void> {
    if (this.#sock !== null) return Promise.resolve();
    if (this.#closed) return Promise.reject(this.#closedError());
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Append a frame (see FrameWriter.writeFrame). False if refused, dropped, or no peer. */
  writeFrame(src: Buffer, off: number, len: number, vnetHdrLen = 0): boolean {
    if (this.#sock === null) {
      this.#notConnectedDrops++;
      return false;
    }
    return this.#writer.writeFrame(src, off, len, vnetHdrLen);
  }

  /** Append the frame held by a pool handle; the handle is not released. */
  writeHandle(h: number): boolean {
    const pool = this.#pool;
    return this.writeFrame(pool.buffer(h), pool.offset(h), pool.length(h), pool.tag[h]!);
  }

  /** Hand buffered output to the socket now (otherwise it goes at the end of the tick). */
  flush(): void {
    this.#writer.flush();
  }

  /** Destroy the current connection (a client reconnects; a server accepts the next peer). */
  dropConnection(): void {
    const s = this.#sock;
    if (s === null) return;
    this.#pendingReason = 'dropped';
    s.destroy();
  }

  /** Stop for good: no reconnects, the listener closes, the partial frame is released. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#connecting !== null) {
      this.#connecting.destroy();
      this.#connecting = null;
    }
    const s = this.#sock;
    if (s !== null) {
      this.#pendingReason = 'closed';
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
    this.#decoder.reset();
    this.#writer.reset();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(this.#closedError());
  }

  stats(): FramedChannelStats {
    return {
      connections: this.#connections,
      disconnects: this.#disconnects,
      refused: this.#refused,
      connectFailures: this.#connectFailures,
      framingErrors: this.#framingErrors,
      notConnectedDrops: this.#notConnectedDrops,
      decoder: this.#decoder.stats(),
      writer: this.#writer.stats(),
    };
  }

  #onAccept(sock: Socket): void {
    if (this.#closed || this.#sock !== null) {
      this.#refused++;
      sock.destroy();
      return;
    }
    this.#attach(sock, `${describePeer(sock, this.endpoint)}`);
  }

  #connect(): void {
    this.#timer = null;
    if (this.#closed) return;
    const ep = this.endpoint;
    const sock = ep.kind === 'tcp' ? connect({ host: ep.host, port: ep.port }) : connect({ path: ep.path });
    this.#connecting = sock;
    let failed = false;
    const onFail = (err?: Error) => {
      if (failed) return;
      failed = true;
      sock.off('connect', onConnect);
      this.#connecting = null;
      sock.destroy();
      this.#connectFailures++;
      if (this.#connectFailStreak++ === 0 && err !== undefined) this.#opts.onError?.(err);
      this.#scheduleReconnect();
    };
    const onConnect = () => {
      sock.off('error', onFail);
      sock.off('close', onClose);
      this.#connecting = null;
      this.#connectFailStreak = 0;
      this.#attach(sock, formatEndpoint(ep));
    };
    const onClose = () => onFail();
    sock.once('error', onFail);
    sock.once('close', onClose);
    sock.once('connect', onConnect);
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#timer !== null) return;
    this.#timer = setTimeout(() => this.#connect(), this.#reconnectMs);
  }

  #attach(sock: Socket, peer: string): void {
    const gen = ++this.#connGen;
    this.#sock = sock;
    this.#pendingReason = null;
    this.#decoder.reset();
    this.#writer.reset();
    this.#connections++;
    if (this.endpoint.kind === 'tcp') sock.setNoDelay(true);
    const decoder = this.#decoder;
    const pool = this.#pool;
    let lastErr: Error | undefined;
    const retry = (): void => {
      if (gen !== this.#connGen || this.#sock !== sock) return;
      if (decoder.resume()) {
        if (this.#sock === sock) sock.resume();
      } else pool.whenAvailable(retry);
    };
    sock.on('data', (chunk: Buffer) => {
      if (!decoder.push(chunk)) {
        sock.pause();
        pool.whenAvailable(retry);
      }
    });
    sock.on('drain', () => {
      if (gen === this.#connGen) this.#writer.drained();
    });
    sock.on('error', (err) => {
      lastErr = err;
    });
    sock.on('close', () => this.#detach(gen, lastErr));
    const waiters = this.#waiters;
    this.#waiters = [];
    this.#opts.onConnected?.(peer);
    for (const w of waiters) w.resolve();
  }

  #closedError(): ColoError {
    return new ColoError('ERR_CHANNEL_CLOSED', `${formatEndpoint(this.endpoint)}: channel closed`);
  }

  #detach(gen: number, err: Error | undefined): void {
    if (gen !== this.#connGen) return;
    this.#connGen++;
    this.#sock = null;
    this.#disconnects++;
    this.#decoder.reset(); // releases a partial frame's slot now
    this.#writer.reset();
    const reason: DisconnectReason = this.#pendingReason ?? (err !== undefined ? 'socket-error' : 'peer-closed');
    this.#pendingReason = null;
    if (reason === 'socket-error' && err !== undefined) this.#opts.onError?.(err);
    this.#opts.onDisconnected?.(reason, err);
    if (!this.endpoint.server) this.#scheduleReconnect();
  }

  #onFramingError(err: FramingError): void {
    this.#framingErrors++;
    this.#opts.onError?.(err);
    const s = this.#sock;
    if (s !== null) {
      this.#pendingReason = 'framing-error';
      s.destroy();
    }
  }
}

function describePeer(sock: Socket, ep: Endpoint): string {
  if (ep.kind === 'unix') return `unix:${ep.path}`;
  const host = sock.remoteAddress ?? '?';
  return `tcp:${host.includes(':') ? `[${host}]` : host}:${sock.remotePort ?? '?'}`;
}

/** Remove a leftover unix socket file (never a regular file) before binding, like QEMU's listener. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // absent: nothing to remove
  }
}
