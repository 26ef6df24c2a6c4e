/**
 * FramedChannel: one endpoint speaking the QEMU chardev packet stream.
 *
 * - Client (`tcp:H:P`, `unix:PATH`): connects, and after any disconnect or failed attempt
 *   reconnects after `reconnectMs` (like a QEMU chardev with `reconnect=1`).
 * - Server (`…,server`): accepts ONE peer at a time. A second concurrent peer is refused
 *   (closed at once and counted in `refused`); after the peer leaves the next one is accepted.
 *   Connecting, retrying and accepting are StreamLink's (stream-link.ts).
 * - The vnet_hdr_len field is per direction (`receiveVnetHdr` / `sendVnetHdr`, both default
 *   `vnetHdr`): notify_dev is framed asymmetrically by QEMU (see control/notify-protocol.ts).
 * - Every connection starts with a reset FrameDecoder and FrameWriter, so a half frame from
 *   an old connection never pollutes the next one (QEMU keeps the parser state across
 *   reconnects: reference §2.1).
 * - A framing error is reported through `onError` (a FramingError with the offending value
 *   and stream offset) and the connection is destroyed; a client then reconnects, a server
 *   accepts the next peer.
 * - Backpressure: when the pool is exhausted the socket is paused and resumed once a slot is
 *   released (`pool.whenAvailable`); the writer's backpressure is exposed as `backpressured`
 *   and `onDrain`. `pauseReading()` stops reading on request (the peer's writes then back up,
 *   the way to reproduce a slow consumer) until `resumeReading()`.
 * - Frames written while no peer is connected are dropped and counted (QEMU's chardev fails
 *   such writes with EIO and the filters drop the packet).
 *
 * Events are plain callbacks; nothing is allocated per frame. With `readBuffer`, a client
 * connection allocates nothing per read either.
 */
import type { Socket } from 'node:net';
import { ColoError } from '../errors.js';
import type { FramingError } from '../errors.js';
import type { PacketPool } from '../packet/pool.js';
import { FrameDecoder } from './decoder.js';
import type { FrameDecoderStats } from './decoder.js';
import { formatEndpoint, parseEndpoint } from './endpoint.js';
import type { Endpoint } from './endpoint.js';
import { StreamLink } from './stream-link.js';
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
  /** Incoming frames carry the vnet_hdr_len field; default `vnetHdr`. */
  receiveVnetHdr?: boolean;
  /** Outgoing frames carry the vnet_hdr_len field; default `vnetHdr`. */
  sendVnetHdr?: boolean;
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
  /**
   * Client connections read into one reused buffer of this many bytes (65 536 = Node's read
   * size) instead of a fresh Buffer per read: about half the read path's CPU and less GC
   * (StreamLink `readBuffer`). Server (accepted) connections cannot; default off.
   */
  readBuffer?: number;
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
  readonly #link: StreamLink;
  readonly #opts: FramedChannelOptions;

  /** The link's current socket, kept here for the writer's sink and the read path. */
  #sock: Socket | null = null;
  #closed = false;
  /** Incremented per connection; stale callbacks compare against it. */
  #connGen = 0;
  #pendingReason: DisconnectReason | null = null;
  #userPaused = false;
  #poolPaused = false;
  /**
   * The peer left while frames it sent were still waiting in the decoder for pool slots:
   * they are delivered (as slots free up) before the connection is forgotten. A new peer
   * connecting meanwhile waits, paused, so two streams never mix in the decoder.
   */
  #draining = false;
  #deferredAttach: { sock: Socket; peer: string } | null = null;
  #waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];

  #framingErrors = 0;
  #notConnectedDrops = 0;

  constructor(options: FramedChannelOptions) {
    this.#opts = options;
    this.endpoint =
      typeof options.endpoint === 'string'
        ? parseEndpoint(options.endpoint, options.allowRemote ? { allowRemote: true } : {})
        : options.endpoint;
    this.#pool = options.pool;
    const rc = options.reconnectMs ?? this.endpoint.reconnectMs ?? 1000;
    if (!(Number.isFinite(rc) && rc >= 0)) throw new ColoError('ERR_INVALID_ARGUMENT', `reconnectMs must be >= 0, got ${rc}`);
    this.#decoder = new FrameDecoder({
      vnetHdr: options.receiveVnetHdr ?? options.vnetHdr,
      pool: options.pool,
      onFrame: options.onFrame,
      onError: (err) => this.#onFramingError(err),
      ...(options.maxFrame !== undefined ? { maxFrame: options.maxFrame } : {}),
      ...(options.emptyFrames !== undefined ? { emptyFrames: options.emptyFrames } : {}),
      // A client's chunks may be views of the link's reused read buffer (`readBuffer`).
      transientChunks: options.readBuffer !== undefined,
    });
    this.#writer = new FrameWriter({
      vnetHdr: options.sendVnetHdr ?? options.vnetHdr,
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
    this.#link = new StreamLink({
      endpoint: this.endpoint,
      backoff: { initialMs: rc, maxMs: rc, factor: 1 },
      ...(options.readBuffer !== undefined ? { readBuffer: options.readBuffer } : {}),
      onConnected: (sock, peer) => this.#attach(sock, peer),
      onData: (chunk) => this.#onData(chunk),
      onDisconnected: (err) => this.#detach(err),
      onConnectFailed: (err, attempt) => {
        // Once per streak: a peer that is down for a while must not flood the caller.
        if (attempt === 1) this.#opts.onError?.(err);
      },
      onServerError: (err) => this.#opts.onError?.(err),
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
    return this.#link.address;
  }

  /** True while reading is paused on request (`pauseReading`). */
  get readingPaused(): boolean {
    return this.#userPaused;
  }

  /**
   * Start listening (server; resolves once bound, rejects with the listen error) or start
   * connecting (client; resolves at once — see `onConnected` / `whenConnected`).
   */
  start(): Promise<void> {
    return this.#link.start();
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

  /**
   * Stop reading (this and later connections) until `resumeReading()`: the peer's writes back
   * up once the kernel buffers are full, as with a slow consumer.
   */
  pauseReading(): void {
    this.#userPaused = true;
    this.#sock?.pause();
  }

  /** Read again after `pauseReading()` (unless the pool is still exhausted). */
  resumeReading(): void {
    this.#userPaused = false;
    if (!this.#poolPaused) this.#sock?.resume();
  }

  /** Destroy the current connection (a client reconnects; a server accepts the next peer). */
  dropConnection(): void {
    if (this.#sock === null) return;
    this.#pendingReason = 'dropped';
    this.#link.drop();
  }

  /** Stop for good: no reconnects, the listener closes, the partial frame is released. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sock !== null) this.#pendingReason = 'closed';
    await this.#link.close();
    this.#decoder.reset();
    this.#writer.reset();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(this.#closedError());
  }

  stats(): FramedChannelStats {
    const l = this.#link.stats();
    return {
      connections: l.connections,
      disconnects: l.disconnects,
      refused: l.refused,
      connectFailures: l.connectFailures,
      framingErrors: this.#framingErrors,
      notConnectedDrops: this.#notConnectedDrops,
      decoder: this.#decoder.stats(),
      writer: this.#writer.stats(),
    };
  }

  #attach(sock: Socket, peer: string): void {
    if (this.#draining) {
      sock.pause();
      this.#deferredAttach = { sock, peer };
      return;
    }
    const gen = ++this.#connGen;
    this.#sock = sock;
    this.#pendingReason = null;
    this.#poolPaused = false;
    this.#decoder.reset();
    this.#writer.reset();
    // The next connection failure starts a new streak (reported once again).
    this.#link.resetBackoff();
    sock.on('drain', () => {
      if (gen === this.#connGen) this.#writer.drained();
    });
    if (this.#userPaused) sock.pause();
    const waiters = this.#waiters;
    this.#waiters = [];
    this.#opts.onConnected?.(peer);
    for (const w of waiters) w.resolve();
  }

  #onData(chunk: Buffer): void {
    if (this.#decoder.push(chunk)) return;
    const sock = this.#sock;
    if (sock === null) return;
    this.#poolPaused = true;
    sock.pause();
    const gen = this.#connGen;
    const decoder = this.#decoder;
    const pool = this.#pool;
    const retry = (): void => {
      if (gen !== this.#connGen || this.#sock !== sock) return;
      if (decoder.resume()) {
        this.#poolPaused = false;
        if (this.#sock === sock && !this.#userPaused) sock.resume();
      } else pool.whenAvailable(retry);
    };
    pool.whenAvailable(retry);
  }

  #closedError(): ColoError {
    return new ColoError('ERR_CHANNEL_CLOSED', `${formatEndpoint(this.endpoint)}: channel closed`);
  }

  #detach(err: Error | undefined): void {
    if (this.#draining) {
      // The deferred peer left before it was attached: it was never reported, nor is its exit.
      this.#deferredAttach = null;
      return;
    }
    this.#connGen++;
    this.#sock = null;
    const reason: DisconnectReason = this.#pendingReason ?? (err !== undefined ? 'socket-error' : 'peer-closed');
    this.#pendingReason = null;
    const finish = (): void => {
      this.#draining = false;
      this.#decoder.reset(); // releases a partial frame's slot now
      this.#writer.reset();
      if (reason === 'socket-error' && err !== undefined) this.#opts.onError?.(err);
      this.#opts.onDisconnected?.(reason, err);
      const next = this.#deferredAttach;
      this.#deferredAttach = null;
      if (next !== null && !this.#closed) {
        this.#attach(next.sock, next.peer);
        if (!this.#userPaused) next.sock.resume();
      }
    };
    // Whole frames the peer sent before leaving are its output, not ours to drop: when the
    // pool was full they still sit in the decoder; deliver them first. Not after a framing
    // error (the stream is not trusted) nor on our own close.
    if (this.#decoder.paused && (reason === 'peer-closed' || reason === 'socket-error') && !this.#closed) {
      this.#draining = true;
      this.#poolPaused = false;
      const pool = this.#pool;
      const step = (): void => {
        if (this.#closed || this.#decoder.resume()) finish();
        else pool.whenAvailable(step);
      };
      pool.whenAvailable(step);
      return;
    }
    finish();
  }

  #onFramingError(err: FramingError): void {
    this.#framingErrors++;
    this.#opts.onError?.(err);
    if (this.#sock !== null) {
      this.#pendingReason = 'framing-error';
      this.#link.drop();
    }
  }
}
