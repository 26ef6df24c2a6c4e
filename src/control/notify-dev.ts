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
 * Framing reuses the wire layer: FrameDecoder for input, encodeFrameHeader for output.
 */
import type { FramingError } from '../errors.js';
import { PacketPool } from '../packet/pool.js';
import type { Logger } from '../util/log.js';
import { FrameDecoder } from '../wire/decoder.js';
import { formatEndpoint, parseEndpoint } from '../wire/endpoint.js';
import type { Endpoint } from '../wire/endpoint.js';
import { LENGTH_FIELD_LEN, encodeFrameHeader } from '../wire/framing.js';
import { BaseCheckpointController } from './checkpoint.js';
import type { Checkpoint, CheckpointFailure, CheckpointStats } from './checkpoint.js';
import { StreamLink } from './stream-link.js';

export const NOTIFY_DO_CHECKPOINT = 'DO_CHECKPOINT';
export const NOTIFY_PROXY_INIT = 'COLO_USERSPACE_PROXY_INIT';
export const NOTIFY_INIT_REPLY = 'COLO_COMPARE_GET_XEN_INIT';
export const NOTIFY_CHECKPOINT_DONE = 'COLO_CHECKPOINT';

/** Largest incoming message accepted (the longest command is 25 bytes). */
export const NOTIFY_MAX_MESSAGE = 1024;

/**
 * How incoming notify_dev messages are framed: 'qemu' = with the vnet_hdr_len field iff
 * `vnetHdrSupport` (QEMU's asymmetry); 'never' = never with it.
 */
export type NotifyReceiveVnet = 'qemu' | 'never';

/** Encode one notify_dev message as we send it: `[u32 BE length][ASCII bytes]`, never a vnet field. */
export function encodeNotifyMessage(text: string): Buffer {
  const body = Buffer.from(text, 'latin1');
  const out = Buffer.allocUnsafe(LENGTH_FIELD_LEN + body.length);
  const off = encodeFrameHeader(out, 0, body.length, 0, false);
  body.copy(out, off);
  return out;
}

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

const DO_CHECKPOINT_BYTES = encodeNotifyMessage(NOTIFY_DO_CHECKPOINT);
const INIT_REPLY_BYTES = encodeNotifyMessage(NOTIFY_INIT_REPLY);
const PROXY_INIT = Buffer.from(NOTIFY_PROXY_INIT, 'latin1');
const CHECKPOINT_DONE = Buffer.from(NOTIFY_CHECKPOINT_DONE, 'latin1');

export class NotifyDevController extends BaseCheckpointController {
  readonly endpoint: Endpoint;
  /** True when incoming messages carry the vnet_hdr_len field. */
  readonly receivesVnetField: boolean;
  readonly #link: StreamLink;
  readonly #decoder: FrameDecoder;
  readonly #pool: PacketPool;
  readonly #startTimeoutMs: number;
  readonly #completeTimeoutMs: number;
  readonly #opts: NotifyDevOptions;
  #timer: NodeJS.Timeout | null = null;
  #messagesIn = 0;
  #messagesOut = 0;
  #initRequests = 0;
  #unknown = 0;
  #framingErrors = 0;

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
    // Messages are handled and released synchronously: a few slots never run out.
    this.#pool = new PacketPool({ classes: [{ slotSize: NOTIFY_MAX_MESSAGE, slots: 4 }] });
    this.#decoder = new FrameDecoder({
      vnetHdr: this.receivesVnetField,
      pool: this.#pool,
      maxFrame: NOTIFY_MAX_MESSAGE,
      onFrame: (h, vnetLen) => this.#onMessage(h, vnetLen),
      onError: (err) => this.#onFramingError(err),
    });
    const rc = options.reconnectMs ?? this.endpoint.reconnectMs ?? 1_000;
    this.#link = new StreamLink({
      endpoint: this.endpoint,
      backoff: { initialMs: rc, maxMs: rc, factor: 1 },
      onConnected: (_sock, peer) => this.#onConnected(peer),
      onData: (chunk) => {
        if (!this.#decoder.push(chunk)) {
          // Cannot happen (handles are released at once); never wait on it.
          this.log.error('notify_dev: message pool exhausted; resetting the connection');
          this.#link.drop();
        }
      },
      onDisconnected: (err) => this.#onDisconnected(err),
      onConnectFailed: (err, attempt) => {
        if (attempt === 1) this.log.warn('notify_dev: connect failed; retrying', { err, endpoint: formatEndpoint(this.endpoint) });
      },
      onServerError: (err) => this.log.error('notify_dev: listener error', { err }),
    });
  }

  get connected(): boolean {
    return this.#link.connected;
  }

  /** The endpoint actually bound (a server on port 0 reports its real port). */
  get address(): Endpoint {
    return this.#link.address;
  }

  /** Listen (server: resolves once bound) or start connecting (client). */
  start(): Promise<void> {
    return this.#link.start();
  }

  override async close(): Promise<void> {
    this.#clearTimer();
    await super.close();
    await this.#link.close();
    this.#decoder.reset();
  }

  override stats(): NotifyDevStats {
    return {
      ...super.stats(),
      connected: this.#link.connected,
      connections: this.#link.stats().connections,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
      initRequests: this.#initRequests,
      unknownCommands: this.#unknown,
      framingErrors: this.#framingErrors,
    };
  }

  protected trigger(cp: Checkpoint): void {
    this.#arm(cp, this.#startTimeoutMs, 'DO_CHECKPOINT not sent (no notify_dev peer)');
    // Deferred: request() must not call back synchronously (markStarted fires listeners).
    queueMicrotask(() => {
      if (this.current === cp && this.state === 'requested' && this.#link.connected) this.#sendRequest(cp);
    });
  }

  #sendRequest(cp: Checkpoint): void {
    this.#send(DO_CHECKPOINT_BYTES);
    this.markStarted('requested');
    this.#arm(cp, this.#completeTimeoutMs, 'no COLO_CHECKPOINT');
  }

  #send(bytes: Buffer): void {
    if (this.#link.write(bytes)) this.#messagesOut++;
  }

  #onConnected(peer: string): void {
    this.#decoder.reset();
    this.#link.resetBackoff();
    this.log.info('notify_dev connected', { peer });
    this.#opts.onConnected?.(peer);
    const cp = this.current;
    if (cp !== null && this.state === 'requested') this.#sendRequest(cp);
  }

  #onDisconnected(err: Error | undefined): void {
    this.#decoder.reset();
    this.log.warn('notify_dev disconnected', { err });
    this.#opts.onDisconnected?.(err);
    const cp = this.current;
    // A request not yet sent keeps waiting for the next connection (bounded by its timer).
    if (cp !== null && this.state === 'in-progress') this.#fail(cp, 'disconnected', err ?? null);
  }

  #onFramingError(err: FramingError): void {
    this.#framingErrors++;
    this.log.error('notify_dev: bad frame; resetting the connection', { err, vnetField: this.receivesVnetField });
    this.#link.drop();
  }

  #onMessage(h: number, vnetLen: number): void {
    const pool = this.#pool;
    const buf = pool.buffer(h);
    const start = pool.offset(h) + vnetLen;
    const end = pool.offset(h) + pool.length(h);
    this.#messagesIn++;
    let kind: 'init' | 'done' | 'unknown' = 'unknown';
    if (PROXY_INIT.compare(buf, start, end) === 0) kind = 'init';
    else if (CHECKPOINT_DONE.compare(buf, start, end) === 0) kind = 'done';
    const text = kind === 'unknown' ? buf.toString('latin1', start, Math.min(end, start + 64)) : '';
    pool.release(h);
    if (kind === 'init') {
      this.#initRequests++;
      this.#send(INIT_REPLY_BYTES);
    } else if (kind === 'done') {
      this.#onCheckpointDone();
    } else {
      this.#unknown++;
      this.log.warn('notify_dev: unsupported instruction', { message: text, bytes: end - start });
    }
  }

  #onCheckpointDone(): void {
    this.#clearTimer();
    // Unrequested (or not yet sent): it still resynchronised the VMs, so it completes too.
    if (this.state !== 'in-progress') this.markStarted(this.current === null ? 'periodic' : 'requested');
    this.markCompleted();
  }

  #arm(cp: Checkpoint, ms: number, what: string): void {
    this.#clearTimer();
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.current === cp) this.#fail(cp, 'timeout', new Error(`checkpoint ${cp.id}: ${what} within ${ms} ms`));
    }, ms);
  }

  #fail(cp: Checkpoint, reason: CheckpointFailure, err: Error | null): void {
    this.#clearTimer();
    this.markFailed(cp, reason, err);
  }

  #clearTimer(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }
}
