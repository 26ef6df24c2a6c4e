/**
 * The Xen-style `notify_dev` protocol of colo-compare (reference §2.2), shared by both roles:
 * the compare side (NotifyDevController, control/notify-dev.ts) and the checkpoint-controller
 * side (NotifyDevClient, replay/notify-dev.ts, which drives QEMU's own colo-compare).
 *
 * Messages are ASCII commands framed like packets on a chardev stream (`[u32 BE length]
 * [bytes]`, FramedChannel does the framing) and matched exactly (same length, same bytes):
 * - compare → controller: `DO_CHECKPOINT` (please checkpoint), `COLO_COMPARE_GET_XEN_INIT`
 *   (the answer to INIT);
 * - controller → compare: `COLO_USERSPACE_PROXY_INIT`, `COLO_CHECKPOINT` (a checkpoint is
 *   done: flush the held packets).
 *
 * The vnet asymmetry: QEMU's compare never writes a vnet_hdr_len field on notify_dev, but
 * parses what it receives there with the same decoder settings as its packet inputs, i.e. WITH
 * the field when `vnet_hdr_support=on`. So the compare side receives with the field and sends
 * without it; the controller side the other way round. NotifyChannel takes both settings.
 */
import { PacketPool } from '../packet/pool.js';
import { FramedChannel } from '../wire/connection.js';
import type { DisconnectReason } from '../wire/connection.js';
import type { Endpoint } from '../wire/endpoint.js';
import { LENGTH_FIELD_LEN, VNET_FIELD_LEN, encodeFrameHeader } from '../wire/framing.js';

export const NOTIFY_DO_CHECKPOINT = 'DO_CHECKPOINT';
export const NOTIFY_PROXY_INIT = 'COLO_USERSPACE_PROXY_INIT';
export const NOTIFY_INIT_REPLY = 'COLO_COMPARE_GET_XEN_INIT';
export const NOTIFY_CHECKPOINT_DONE = 'COLO_CHECKPOINT';

/** One of the four commands of the protocol. */
export type NotifyCommand = typeof NOTIFY_DO_CHECKPOINT | typeof NOTIFY_PROXY_INIT | typeof NOTIFY_INIT_REPLY | typeof NOTIFY_CHECKPOINT_DONE;

/** Largest incoming message accepted, vnet header bytes included (the longest command is 25 bytes). */
export const NOTIFY_MAX_MESSAGE = 1024;

const COMMANDS: ReadonlyArray<readonly [NotifyCommand, Buffer]> = ([NOTIFY_DO_CHECKPOINT, NOTIFY_PROXY_INIT, NOTIFY_INIT_REPLY, NOTIFY_CHECKPOINT_DONE] as const).map(
  (c) => [c, Buffer.from(c, 'latin1')] as const,
);

/** The command `buf[start, end)` is exactly, or null. */
export function notifyCommand(buf: Buffer, start: number, end: number): NotifyCommand | null {
  for (const [cmd, bytes] of COMMANDS) if (bytes.compare(buf, start, end) === 0) return cmd;
  return null;
}

/**
 * Encode one message as it goes on the wire: `[u32 BE length]` (+ `[u32 BE 0]` when the
 * receiver expects the vnet_hdr_len field) + the ASCII bytes. The compare side never sends the
 * field (`vnetField` false).
 */
export function encodeNotifyMessage(text: string, vnetField = false): Buffer {
  const body = Buffer.from(text, 'latin1');
  const out = Buffer.allocUnsafe(LENGTH_FIELD_LEN + (vnetField ? VNET_FIELD_LEN : 0) + body.length);
  const off = encodeFrameHeader(out, 0, body.length, 0, vnetField);
  body.copy(out, off);
  return out;
}

export interface NotifyChannelOptions {
  /** `unix:PATH` / `tcp:HOST:PORT` (connect, with reconnect) or `…,server` (listen). */
  endpoint: Endpoint | string;
  /** Passed to parseEndpoint for a string endpoint. */
  allowRemote?: boolean;
  /** Incoming messages carry the vnet_hdr_len field. */
  receiveVnet: boolean;
  /** Outgoing messages carry the vnet_hdr_len field (value 0). */
  sendVnet: boolean;
  /** Client reconnect delay (ms); default the endpoint's `reconnect=` or 1 000. */
  reconnectMs?: number;
  /**
   * One message: its command (null: none of the four) and its bytes `buf[start, end)`, vnet
   * header bytes already skipped. The bytes are valid only during the call.
   */
  onMessage(cmd: NotifyCommand | null, buf: Buffer, start: number, end: number): void;
  onConnected?(peer: string): void;
  onDisconnected?(reason: DisconnectReason, err?: Error): void;
  /** Framing errors (FramingError; the connection is then reset), socket and connect errors. */
  onError?(err: Error): void;
}

/** A FramedChannel carrying notify_dev messages, with its own few-slot pool. */
export class NotifyChannel {
  readonly channel: FramedChannel;
  readonly #pool: PacketPool;
  readonly #opts: NotifyChannelOptions;
  #messagesIn = 0;
  #messagesOut = 0;

  constructor(options: NotifyChannelOptions) {
    this.#opts = options;
    // Messages are handled and released synchronously: a few slots never run out.
    this.#pool = new PacketPool({ classes: [{ slotSize: NOTIFY_MAX_MESSAGE, slots: 4 }] });
    this.channel = new FramedChannel({
      endpoint: options.endpoint,
      ...(options.allowRemote !== undefined ? { allowRemote: options.allowRemote } : {}),
      vnetHdr: options.receiveVnet,
      receiveVnetHdr: options.receiveVnet,
      sendVnetHdr: options.sendVnet,
      pool: this.#pool,
      maxFrame: NOTIFY_MAX_MESSAGE,
      ...(options.reconnectMs !== undefined ? { reconnectMs: options.reconnectMs } : {}),
      onFrame: (h, vnetLen) => this.#onFrame(h, vnetLen),
      ...(options.onConnected !== undefined ? { onConnected: options.onConnected } : {}),
      ...(options.onDisconnected !== undefined ? { onDisconnected: options.onDisconnected } : {}),
      ...(options.onError !== undefined ? { onError: options.onError } : {}),
    });
  }

  get connected(): boolean {
    return this.channel.connected;
  }

  /** Messages received / sent on every connection so far. */
  get messagesIn(): number {
    return this.#messagesIn;
  }

  get messagesOut(): number {
    return this.#messagesOut;
  }

  /** Send `cmd` now; false when no peer is connected (nothing is queued). */
  send(cmd: NotifyCommand): boolean {
    const bytes = COMMANDS.find((c) => c[0] === cmd)![1];
    if (!this.channel.writeFrame(bytes, 0, bytes.length, 0)) return false;
    this.channel.flush();
    this.#messagesOut++;
    return true;
  }

  #onFrame(h: number, vnetLen: number): void {
    const pool = this.#pool;
    const buf = pool.buffer(h);
    // Bytes covered by a non-zero vnet_hdr_len are skipped (QEMU would include them and so
    // never match; peers send 0).
    const start = pool.offset(h) + vnetLen;
    const end = pool.offset(h) + pool.length(h);
    this.#messagesIn++;
    try {
      this.#opts.onMessage(notifyCommand(buf, start, end), buf, start, end);
    } finally {
      pool.release(h);
    }
  }
}
