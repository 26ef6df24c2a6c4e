/**
 * The controller side of colo-compare's `notify_dev` protocol (the Xen-COLO interface,
 * qemu-colo-reference.md §2.2), just enough to use QEMU's colo-compare as a reference engine:
 *
 * - we send `COLO_USERSPACE_PROXY_INIT` (QEMU answers `COLO_COMPARE_GET_XEN_INIT`) and
 *   `COLO_CHECKPOINT` (QEMU releases every held primary packet and drops the secondary ones);
 * - QEMU sends `DO_CHECKPOINT` on every miscompare or compare timeout; we count them and keep
 *   their arrival times.
 *
 * Message constants, framing and the channel are shared with the compare side
 * (control/notify-protocol.ts). QEMU's asymmetry is reproduced on purpose: what QEMU sends
 * never carries the vnet_hdr_len field, but with `vnet_hdr_support=on` it parses what it
 * *receives* on notify_dev with that field, so we send it (value 0) in that mode.
 */
import { ColoError } from '../errors.js';
import { NOTIFY_CHECKPOINT_DONE, NOTIFY_DO_CHECKPOINT, NOTIFY_INIT_REPLY, NOTIFY_PROXY_INIT, NotifyChannel } from '../control/notify-protocol.js';
import type { NotifyCommand } from '../control/notify-protocol.js';

/** Unknown messages kept for diagnostics. */
const MAX_UNKNOWN_KEPT = 32;

export interface NotifyDevOptions {
  /** Unix socket path of QEMU's notify_dev chardev (QEMU listens; we reconnect if it drops us). */
  path: string;
  /** QEMU's `vnet_hdr_support` (changes what we write, see the module comment). */
  vnetHdr: boolean;
  /** Reconnect delay (ms); default 100. */
  reconnectMs?: number;
  /** Called for each DO_CHECKPOINT, with its arrival time (performance.now() ms) and its 0-based index. */
  onCheckpointRequest?(timeMs: number, index: number): void;
  /** Connect, connection or framing errors. */
  onError?(err: Error): void;
}

export class NotifyDevClient {
  readonly path: string;
  readonly #opts: NotifyDevOptions;
  readonly #notify: NotifyChannel;
  #times: number[] = [];
  #unknown: string[] = [];
  #unknownCount = 0;
  #initReplies = 0;
  #checkpointsSent = 0;
  #waiters: Array<() => void> = [];

  constructor(options: NotifyDevOptions) {
    this.path = options.path;
    this.#opts = options;
    this.#notify = new NotifyChannel({
      endpoint: `unix:${options.path}`,
      receiveVnet: false,
      sendVnet: options.vnetHdr,
      reconnectMs: options.reconnectMs ?? 100,
      onMessage: (cmd, buf, start, end) => this.#onMessage(cmd, buf, start, end),
      onDisconnected: () => this.#wake(),
      ...(options.onError !== undefined ? { onError: options.onError } : {}),
    });
  }

  /** Start connecting to QEMU's notify_dev socket (see `connected` / `whenConnected`). */
  start(): Promise<void> {
    return this.#notify.channel.start();
  }

  /** Resolves once connected (rejects ERR_CHANNEL_CLOSED on `close`). */
  whenConnected(): Promise<void> {
    return this.#notify.channel.whenConnected();
  }

  /** True while the socket is open. */
  get connected(): boolean {
    return this.#notify.connected;
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
    this.#send(NOTIFY_PROXY_INIT);
    await this.#waitFor(() => this.#initReplies > before, timeoutMs, `${NOTIFY_INIT_REPLY} reply to ${NOTIFY_PROXY_INIT}`);
  }

  /** Send COLO_CHECKPOINT: "the checkpoint completed", QEMU flushes every held primary packet. */
  checkpointDone(): void {
    this.#send(NOTIFY_CHECKPOINT_DONE);
    this.#checkpointsSent++;
  }

  /** Resolves once at least `n` DO_CHECKPOINT messages have arrived in total. */
  waitForCheckpointRequests(n: number, timeoutMs: number): Promise<void> {
    return this.#waitFor(() => this.#times.length >= n, timeoutMs, `${n} DO_CHECKPOINT message(s) (got ${this.#times.length})`);
  }

  async close(): Promise<void> {
    await this.#notify.channel.close();
    this.#wake();
  }

  #send(cmd: NotifyCommand): void {
    if (!this.#notify.send(cmd)) throw new ColoError('ERR_CHANNEL_CLOSED', `notify_dev ${this.path}: not connected, cannot send ${cmd}`);
  }

  #onMessage(cmd: NotifyCommand | null, buf: Buffer, start: number, end: number): void {
    if (cmd === NOTIFY_DO_CHECKPOINT) {
      const t = performance.now();
      const i = this.#times.length;
      this.#times.push(t);
      this.#opts.onCheckpointRequest?.(t, i);
    } else if (cmd === NOTIFY_INIT_REPLY) {
      this.#initReplies++;
    } else {
      this.#unknownCount++;
      if (this.#unknown.length < MAX_UNKNOWN_KEPT) this.#unknown.push(buf.toString('latin1', start, end));
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
        } else if (!this.#notify.connected) {
          done = true;
          clearTimeout(timer);
          reject(new ColoError('ERR_CHANNEL_CLOSED', `notify_dev: connection closed while waiting for ${what}`));
        } else this.#waiters.push(check);
      };
      check();
    });
  }
}
