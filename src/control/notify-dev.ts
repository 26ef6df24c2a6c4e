/**
 * The Xen-style `notify_dev` channel (reference §2.2), from colo-compare's side: we are the
 * compare, the peer is the checkpoint controller (Xen's COLO frame or any external one).
 *
 * Messages are ASCII commands, each framed as `[u32 BE length][bytes]` and matched exactly
 * (same length, same bytes):
 * - we send `DO_CHECKPOINT` to ask for a checkpoint;
 * - the peer may send `COLO_USERSPACE_PROXY_INIT`; we answer `COLO_COMPARE_GET_XEN_INIT`;
 * - the peer sends `COLO_CHECKPOINT` when a checkpoint is done = completion (flush held
 *   packets). One that comes without our request is an unrequested ('periodic') checkpoint;
 * - anything else is logged and counted (QEMU: "COLO compare got unsupported instruction").
 *
 * The vnet asymmetry, kept by default for QEMU compatibility: QEMU's compare never writes a
 * vnet_hdr_len field on notify_dev, but parses what it receives there with the same decoder
 * settings as its packet inputs, i.e. WITH the field when `vnet_hdr_support=on`. A peer that
 * works with QEMU therefore sends `[len][vnet_len][bytes]` to a vnet compare. So with
 * `vnetHdrSupport` on and `receiveVnet: 'qemu'` (default) we parse incoming messages with the
 * field and still send ours without it; `receiveVnet: 'never'` uses plain framing both ways.
 * Bytes covered by a non-zero vnet_hdr_len are skipped before matching (QEMU would include
 * them and so never match; peers send 0).
 *
 * Differences from QEMU, on purpose: requests are coalesced (QEMU sends DO_CHECKPOINT on
 * every mismatch); incoming messages longer than 1 KiB are a framing error that resets the
 * connection (QEMU buffers up to 69 632 bytes, then stops reading for good); the parser is
 * reset on every new connection.
 *
 * Message constants, encoding and the framed channel are shared with the controller side
 * (notify-protocol.ts); this module keeps the compare's role.
 */
import { FramingError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { formatEndpoint, parseEndpoint } from '../wire/endpoint.js';
import type { Endpoint } from '../wire/endpoint.js';
import { BaseCheckpointController } from './checkpoint.js';
import type { Checkpoint, CheckpointStats } from './checkpoint.js';
import { NOTIFY_CHECKPOINT_DONE, NOTIFY_DO_CHECKPOINT, NOTIFY_INIT_REPLY, NOTIFY_PROXY_INIT, NotifyChannel } from './notify-protocol.js';
import type { NotifyCommand } from './notify-protocol.js';

/**
 * How incoming notify_dev messages are framed: 'qemu' = with the vnet_hdr_len field iff
 * `vnetHdrSupport` (QEMU's asymmetry); 'never' = never with it.
 */
export type NotifyReceiveVnet = 'qemu' | 'never';

export interface NotifyDevOptions {
  /** `unix:PATH` / `tcp:HOST:PORT` (connect, with reconnect) or `…,server` (listen). */
  endpoint: Endpoint | string;
  /** Passed to parseEndpoint for a string endpoint. */
  allowRemote?: boolean;
  /** The compare's vnet_hdr_support; default false. */
  vnetHdrSupport?: boolean;
  /** See NotifyReceiveVnet; default 'qemu'. */
  receiveVnet?: NotifyReceiveVnet;
  /** Request → DO_CHECKPOINT written (waits for a connection), ms; default 2 000. */
  startTimeoutMs?: number;
  /** DO_CHECKPOINT → COLO_CHECKPOINT, ms; default 10 000. */
  completeTimeoutMs?: number;
  /** Client reconnect delay (ms); default the endpoint's `reconnect=` or 1 000. */
  reconnectMs?: number;
  logger?: Logger;
  /** A peer connected. */
  onConnected?(peer: string): void;
  onDisconnected?(err: Error | undefined): void;
}

export interface NotifyDevStats extends CheckpointStats {
  connected: boolean;
  connections: number;
  messagesIn: number;
  messagesOut: number;
  /** COLO_USERSPACE_PROXY_INIT received (each answered). */
  initRequests: number;
  /** Incoming messages that are none of the known commands. */
  unknownCommands: number;
  /** Connections reset because of a framing error. */
  framingErrors: number;
}

export class NotifyDevController extends BaseCheckpointController {
  readonly endpoint: Endpoint;
  /** True when incoming messages carry the vnet_hdr_len field. */
  readonly receivesVnetField: boolean;
  readonly #notify: NotifyChannel;
  readonly #startTimeoutMs: number;
  readonly #completeTimeoutMs: number;
  readonly #opts: NotifyDevOptions;
  /** A peer is connected (set before the channel's error callback of its loss). */
  #up = false;
  #initRequests = 0;
  #unknown = 0;

  constructor(options: NotifyDevOptions) {
    super(options.logger, 'notify-dev');
    this.#opts = options;
    this.endpoint =
      typeof options.endpoint === 'string'
        ? parseEndpoint(options.endpoint, options.allowRemote ? { allowRemote: true } : {})
        : options.endpoint;
    this.receivesVnetField = (options.vnetHdrSupport ?? false) && (options.receiveVnet ?? 'qemu') === 'qemu';
    this.#startTimeoutMs = options.startTimeoutMs ?? 2_000;
    this.#completeTimeoutMs = options.completeTimeoutMs ?? 10_000;
    this.#notify = new NotifyChannel({
      endpoint: this.endpoint,
      receiveVnet: this.receivesVnetField,
      sendVnet: false,
      ...(options.reconnectMs !== undefined ? { reconnectMs: options.reconnectMs } : {}),
      onMessage: (cmd, buf, start, end) => this.#onMessage(cmd, buf, start, end),
      onConnected: (peer) => this.#onConnected(peer),
      onDisconnected: (_reason, err) => this.#onDisconnected(err),
      onError: (err) => this.#onError(err),
    });
  }

  get connected(): boolean {
    return this.#notify.connected;
  }

  /** The endpoint actually bound (a server on port 0 reports its real port). */
  get address(): Endpoint {
    return this.#notify.channel.address;
  }

  /** Listen (server: resolves once bound) or start connecting (client). */
  start(): Promise<void> {
    return this.#notify.channel.start();
  }

  override async close(): Promise<void> {
    await super.close();
    await this.#notify.channel.close();
  }

  override stats(): NotifyDevStats {
    const ch = this.#notify.channel.stats();
    return {
      ...super.stats(),
      connected: this.#notify.connected,
      connections: ch.connections,
      messagesIn: this.#notify.messagesIn,
      messagesOut: this.#notify.messagesOut,
      initRequests: this.#initRequests,
      unknownCommands: this.#unknown,
      framingErrors: ch.framingErrors,
    };
  }

  protected trigger(cp: Checkpoint): void {
    this.armTimer(cp, this.#startTimeoutMs, 'DO_CHECKPOINT not sent (no notify_dev peer)');
    // Deferred: request() must not call back synchronously (markStarted fires listeners).
    queueMicrotask(() => {
      if (this.current === cp && this.state === 'requested' && this.#notify.connected) this.#sendRequest(cp);
    });
  }

  #sendRequest(cp: Checkpoint): void {
    this.#notify.send(NOTIFY_DO_CHECKPOINT);
    this.markStarted('requested');
    this.armTimer(cp, this.#completeTimeoutMs, 'no COLO_CHECKPOINT');
  }

  #onConnected(peer: string): void {
    this.#up = true;
    this.log.info('notify_dev connected', { peer });
    this.#opts.onConnected?.(peer);
    const cp = this.current;
    if (cp !== null && this.state === 'requested') this.#sendRequest(cp);
  }

  #onDisconnected(err: Error | undefined): void {
    this.#up = false;
    this.log.warn('notify_dev disconnected', { err });
    this.#opts.onDisconnected?.(err);
    const cp = this.current;
    // A request not yet sent keeps waiting for the next connection (bounded by its timer).
    if (cp !== null && this.state === 'in-progress') this.markFailed(cp, 'disconnected', err ?? null);
  }

  #onError(err: Error): void {
    if (err instanceof FramingError) {
      this.log.error('notify_dev: bad frame; resetting the connection', { err, vnetField: this.receivesVnetField });
    } else if (this.#up) {
      // The live connection's socket error: logged with the disconnect that follows.
    } else if (this.endpoint.server) {
      this.log.error('notify_dev: listener error', { err });
    } else {
      // Reported once per streak of failed attempts.
      this.log.warn('notify_dev: connect failed; retrying', { err, endpoint: formatEndpoint(this.endpoint) });
    }
  }

  #onMessage(cmd: NotifyCommand | null, buf: Buffer, start: number, end: number): void {
    if (cmd === NOTIFY_PROXY_INIT) {
      this.#initRequests++;
      this.#notify.send(NOTIFY_INIT_REPLY);
    } else if (cmd === NOTIFY_CHECKPOINT_DONE) {
      this.#onCheckpointDone();
    } else {
      this.#unknown++;
      this.log.warn('notify_dev: unsupported instruction', { message: buf.toString('latin1', start, Math.min(end, start + 64)), bytes: end - start });
    }
  }

  #onCheckpointDone(): void {
    // Unrequested (or not yet sent): it still resynchronised the VMs, so it completes too.
    if (this.state !== 'in-progress') this.markStarted(this.current === null ? 'periodic' : 'requested');
    this.markCompleted();
  }
}
