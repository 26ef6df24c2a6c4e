/**
 * The client side of colo-compare's `notify_dev` protocol (the Xen-COLO interface,
 * qemu-colo-reference.md §2.2), just enough to use QEMU's colo-compare as a reference engine:
 *
 * - messages are ASCII strings framed like packets (u32 BE length + bytes) — the project's
 *   FrameDecoder / FrameWriter do the framing;
 * - we send `COLO_USERSPACE_PROXY_INIT` (QEMU answers `COLO_COMPARE_GET_XEN_INIT`) and
 *   `COLO_CHECKPOINT` (QEMU releases every held primary packet and drops the secondary ones);
 * - QEMU sends `DO_CHECKPOINT` on every miscompare or compare timeout; we count them and keep
 *   their arrival times.
 *
 * QEMU's asymmetry is reproduced on purpose: what QEMU sends never carries the vnet_hdr_len
 * field, but with `vnet_hdr_support=on` it parses what it *receives* on notify_dev with that
 * field, so our writer adds it (value 0) in that mode.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { ColoError } from '../errors.js';
import { PacketPool } from '../packet/pool.js';
import { FrameDecoder } from '../wire/decoder.js';
import { FrameWriter } from '../wire/writer.js';

export const DO_CHECKPOINT = 'DO_CHECKPOINT';
export const COLO_CHECKPOINT = 'COLO_CHECKPOINT';
export const COLO_USERSPACE_PROXY_INIT = 'COLO_USERSPACE_PROXY_INIT';
export const COLO_COMPARE_GET_XEN_INIT = 'COLO_COMPARE_GET_XEN_INIT';

/** Longest notify message accepted (QEMU's are 13 and 25 bytes). */
const MAX_MESSAGE = 4096;
/** Unknown messages kept for diagnostics. */
const MAX_UNKNOWN_KEPT = 32;

const DO_CHECKPOINT_BYTES = Buffer.from(DO_CHECKPOINT, 'latin1');

export interface NotifyDevOptions {
  /** Unix socket path of QEMU's notify_dev chardev (QEMU listens). */
  path: string;
  /** QEMU's `vnet_hdr_support` (changes what we write, see the module comment). */
  vnetHdr: boolean;
  /** Called for each DO_CHECKPOINT, with its arrival time (performance.now() ms) and its 0-based index. */
  onCheckpointRequest?(timeMs: number, index: number): void;
  /** Connection or framing errors after connect. */
  onError?(err: Error): void;
}

export class NotifyDevClient {
  readonly #opts: NotifyDevOptions;
  readonly #pool = new PacketPool({ classes: [{ slotSize: 64, slots: 64 }, { slotSize: MAX_MESSAGE, slots: 2 }] });
  readonly #decoder: FrameDecoder;
  readonly #writer: FrameWriter;
  #sock: Socket | null = null;
  #times: number[] = [];
  #unknown: string[] = [];
  #unknownCount = 0;
  #initReplies = 0;
  #checkpointsSent = 0;
  #waiters: Array<() => void> = [];

  constructor(options: NotifyDevOptions) {
    this.#opts = options;
    this.#decoder = new FrameDecoder({
      vnetHdr: false,
      pool: this.#pool,
      maxFrame: MAX_MESSAGE,
      onFrame: (h) => this.#onMessage(h),
      onError: (err) => {
        this.#opts.onError?.(err);
        this.#sock?.destroy();
      },
    });
    this.#writer = new FrameWriter({
      vnetHdr: options.vnetHdr,
      sink: (chunk, done) => {
        const s = this.#sock;
        if (s === null) {
          done();
          return true;
        }
        return s.write(chunk, done);
      },
    });
  }

  /** Connect to QEMU's notify_dev socket. */
  async connect(): Promise<void> {
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ path: this.#opts.path });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    this.#sock = sock;
    sock.on('data', (c: Buffer) => this.#decoder.push(c));
    sock.on('error', (err) => this.#opts.onError?.(err));
    sock.on('close', () => {
      if (this.#sock === sock) this.#sock = null;
      this.#wake();
    });
  }

  /** True while the socket is open. */
  get connected(): boolean {
    return this.#sock !== null;
  }

  /** DO_CHECKPOINT messages received so far. */
  get checkpointRequests(): number {
    return this.#times.length;
  }

  /** Arrival time (performance.now() ms) of each DO_CHECKPOINT, in order. */
  get checkpointRequestTimes(): readonly number[] {
    return this.#times;
  }

  /** COLO_CHECKPOINT messages sent so far. */
  get checkpointsSent(): number {
    return this.#checkpointsSent;
  }

  /** Messages other than DO_CHECKPOINT / COLO_COMPARE_GET_XEN_INIT: total and the first few. */
  get unknownMessages(): { count: number; first: readonly string[] } {
    return { count: this.#unknownCount, first: this.#unknown };
  }

  /** Send COLO_USERSPACE_PROXY_INIT and wait for COLO_COMPARE_GET_XEN_INIT. */
  async init(timeoutMs = 5000): Promise<void> {
    const before = this.#initReplies;
    this.#send(COLO_USERSPACE_PROXY_INIT);
    await this.#waitFor(() => this.#initReplies > before, timeoutMs, `${COLO_COMPARE_GET_XEN_INIT} reply to ${COLO_USERSPACE_PROXY_INIT}`);
  }

  /** Send COLO_CHECKPOINT: "the checkpoint completed", QEMU flushes every held primary packet. */
  checkpointDone(): void {
    this.#send(COLO_CHECKPOINT);
    this.#checkpointsSent++;
  }

  /** Resolves once at least `n` DO_CHECKPOINT messages have arrived in total. */
  waitForCheckpointRequests(n: number, timeoutMs: number): Promise<void> {
    return this.#waitFor(() => this.#times.length >= n, timeoutMs, `${n} DO_CHECKPOINT message(s) (got ${this.#times.length})`);
  }

  close(): void {
    this.#sock?.destroy();
    this.#sock = null;
    this.#decoder.reset();
    this.#writer.reset();
    this.#wake();
  }

  #send(msg: string): void {
    if (this.#sock === null) throw new ColoError('ERR_CHANNEL_CLOSED', `notify_dev ${this.#opts.path}: not connected, cannot send ${msg}`);
    const b = Buffer.from(msg, 'latin1');
    this.#writer.writeFrame(b, 0, b.length, 0);
    this.#writer.flush();
  }

  #onMessage(h: number): void {
    const pool = this.#pool;
    const buf = pool.buffer(h);
    const off = pool.offset(h);
    const len = pool.length(h);
    if (len === DO_CHECKPOINT_BYTES.length && buf.compare(DO_CHECKPOINT_BYTES, 0, len, off, off + len) === 0) {
      pool.release(h);
      const t = performance.now();
      const i = this.#times.length;
      this.#times.push(t);
      this.#opts.onCheckpointRequest?.(t, i);
    } else {
      const text = buf.toString('latin1', off, off + len);
      pool.release(h);
      if (text === COLO_COMPARE_GET_XEN_INIT) this.#initReplies++;
      else {
        this.#unknownCount++;
        if (this.#unknown.length < MAX_UNKNOWN_KEPT) this.#unknown.push(text);
      }
    }
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  #waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new ColoError('ERR_TIMEOUT', `notify_dev: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): void => {
        if (done) return;
        if (cond()) {
          done = true;
          clearTimeout(timer);
          resolve();
        } else if (this.#sock === null) {
          done = true;
          clearTimeout(timer);
          reject(new ColoError('ERR_CHANNEL_CLOSED', `notify_dev: connection closed while waiting for ${what}`));
        } else this.#waiters.push(check);
      };
      check();
    });
  }
}
