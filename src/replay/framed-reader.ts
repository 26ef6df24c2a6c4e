/**
 * FramedReader: the read side of a QEMU chardev packet stream on one unix socket, as a client
 * (QEMU listens). Frames are decoded by the project's FrameDecoder straight into pool slots
 * and handed over as handles. Unlike FramedChannel it never writes and it can be paused on
 * demand: a paused reader stops draining the socket, so the peer's writes back up — the way
 * to reproduce (and to avoid, by not pausing) colo-compare's output reordering under
 * backpressure (reference §9 B1).
 *
 * Pool exhaustion pauses the socket too, and reading resumes once a slot is released.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { ColoError } from '../errors.js';
import type { FramingError } from '../errors.js';
import type { PacketPool } from '../packet/pool.js';
import { FrameDecoder } from '../wire/decoder.js';
import type { FrameDecoderStats } from '../wire/decoder.js';

export interface FramedReaderOptions {
  /** Unix socket path to connect to. */
  path: string;
  /** The stream carries the u32 vnet_hdr_len field. */
  vnetHdr: boolean;
  pool: PacketPool;
  /** A decoded frame; the callee owns `handle` and must release it. */
  onFrame(handle: number, vnetHdrLen: number): void;
  /** Framing errors (the connection is then closed) and socket errors. */
  onError?(err: Error): void;
}

export class FramedReader {
  readonly path: string;
  readonly #opts: FramedReaderOptions;
  readonly #decoder: FrameDecoder;
  #sock: Socket | null = null;
  #userPaused = false;
  #poolPaused = false;

  constructor(options: FramedReaderOptions) {
    this.path = options.path;
    this.#opts = options;
    this.#decoder = new FrameDecoder({
      vnetHdr: options.vnetHdr,
      pool: options.pool,
      onFrame: options.onFrame,
      onError: (err: FramingError) => {
        options.onError?.(err);
        this.#sock?.destroy();
      },
    });
  }

  /** Connect (rejects with the socket error, e.g. ENOENT / ECONNREFUSED). */
  async connect(): Promise<void> {
    if (this.#sock !== null) throw new ColoError('ERR_INVALID_ARGUMENT', `${this.path}: reader already connected`);
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ path: this.path });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
    this.#sock = sock;
    this.#decoder.reset();
    const pool = this.#opts.pool;
    const retry = (): void => {
      if (this.#sock !== sock) return;
      if (this.#decoder.resume()) {
        this.#poolPaused = false;
        if (!this.#userPaused) sock.resume();
      } else pool.whenAvailable(retry);
    };
    sock.on('data', (chunk: Buffer) => {
      if (!this.#decoder.push(chunk)) {
        this.#poolPaused = true;
        sock.pause();
        pool.whenAvailable(retry);
      }
    });
    sock.on('error', (err) => this.#opts.onError?.(err));
    sock.on('close', () => {
      if (this.#sock === sock) {
        this.#sock = null;
        this.#decoder.reset();
      }
    });
    if (this.#userPaused) sock.pause();
  }

  get connected(): boolean {
    return this.#sock !== null;
  }

  /** True while reading is paused on request. */
  get paused(): boolean {
    return this.#userPaused;
  }

  /** Stop draining the socket (the peer's writes back up once the kernel buffer is full). */
  pause(): void {
    this.#userPaused = true;
    this.#sock?.pause();
  }

  /** Drain the socket again. */
  resume(): void {
    this.#userPaused = false;
    if (!this.#poolPaused) this.#sock?.resume();
  }

  stats(): FrameDecoderStats {
    return this.#decoder.stats();
  }

  /** Close the connection and release a partially decoded frame. */
  async close(): Promise<void> {
    const s = this.#sock;
    this.#sock = null;
    if (s !== null && !s.destroyed) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.destroy();
      });
    }
    this.#decoder.reset();
  }
}
