/**
 * QMP client (QEMU Machine Protocol) over a unix or TCP stream socket.
 *
 * Protocol as QEMU speaks it (docs/interop/qmp-spec): on connect the server sends a greeting
 * `{"QMP": {"version": …, "capabilities": [...]}}`; the client must send `qmp_capabilities`
 * (optionally `{"enable": ["oob"]}`) before anything else; then each `{"execute": CMD,
 * "arguments": {…}, "id": ID}` is answered by `{"return": …, "id": ID}` or
 * `{"error": {"class", "desc"}, "id": ID}`, and asynchronous events arrive as
 * `{"event": NAME, "data": {…}, "timestamp": {"seconds", "microseconds"}}`. One JSON object
 * per line (QEMU ends lines with CRLF).
 *
 * Behaviour:
 * - Every command carries a numeric id; replies are matched by id, so several commands may be
 *   in flight. A reply without an id (QEMU sends those only for input it could not parse)
 *   is matched to the oldest in-band command, because QEMU answers in-band commands in order.
 * - Per-command timeout (ERR_QMP_TIMEOUT); a reply arriving later is counted and ignored. The
 *   connection is kept: a slow QEMU is not a broken one.
 * - Lines are bounded (`maxLineBytes`, default 16 MiB): a longer line, malformed JSON or a
 *   non-object message is a protocol error (ERR_QMP_PROTOCOL) and the connection is reset.
 * - On disconnect every pending command fails with ERR_QMP_DISCONNECTED (its `cause` says
 *   why). With `reconnect` (default) the client reconnects with exponential backoff and
 *   negotiates again; event listeners stay registered, so subscriptions survive reconnects.
 *   Commands are not queued while disconnected: they fail at once with ERR_QMP_DISCONNECTED,
 *   so a caller never waits on a link that may not come back.
 * - Events are delivered synchronously, in arrival order, to `onEvent` listeners with QEMU's
 *   timestamp in ms since the epoch.
 */
import { ColoError } from '../errors.js';
import type { ColoErrorCode } from '../errors.js';
import { createLogger } from '../util/log.js';
import type { Logger } from '../util/log.js';
import { formatEndpoint, parseEndpoint } from '../wire/endpoint.js';
import type { Endpoint } from '../wire/endpoint.js';
import { isJsonObject, numberField, objectField, stringArrayField, stringField } from './json.js';
import type { JsonObject } from './json.js';
import { StreamLink } from '../wire/stream-link.js';
import type { Backoff } from '../wire/stream-link.js';

/** Codes a QmpError carries. */
export type QmpErrorCode = Extract<ColoErrorCode, 'ERR_QMP' | 'ERR_QMP_DISCONNECTED' | 'ERR_QMP_TIMEOUT' | 'ERR_QMP_PROTOCOL'>;

/**
 * A QMP failure. `ERR_QMP`: QEMU answered with an error (`errorClass`, `desc`);
 * `ERR_QMP_TIMEOUT`: no answer in time; `ERR_QMP_DISCONNECTED`: the connection is gone (or was
 * never there); `ERR_QMP_PROTOCOL`: QEMU (or whatever is on the socket) broke the protocol.
 */
export class QmpError extends ColoError {
  override readonly code: QmpErrorCode;
  /** The command this error answers, if any. */
  readonly command: string | undefined;
  /** QMP error class (`GenericError`, `CommandNotFound`, …) for ERR_QMP. */
  readonly errorClass: string | undefined;
  /** QMP error description for ERR_QMP. */
  readonly desc: string | undefined;

  constructor(
    code: QmpErrorCode,
    message: string,
    extra: { command?: string; errorClass?: string; desc?: string; cause?: unknown } = {},
  ) {
    super(code, message, extra.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = 'QmpError';
    this.code = code;
    this.command = extra.command;
    this.errorClass = extra.errorClass;
    this.desc = extra.desc;
  }
}

export interface QmpVersion {
  major: number;
  minor: number;
  micro: number;
  /** Distribution package string, e.g. "Debian 1:7.2+dfsg-7+deb12u18". */
  package: string;
}

export interface QmpGreeting {
  version: QmpVersion;
  /** Capabilities the server offers (e.g. ["oob"]). */
  capabilities: string[];
}

/** An event listener: QEMU's event name, its `data` (`{}` if absent) and timestamp (ms since the epoch). */
export type QmpEventListener = (name: string, data: JsonObject, timestamp: number) => void;

/**
 * `disconnected`: the connection failed or was lost and `reconnect` is off (terminal, like
 * `closed`, but not asked for).
 */
export type QmpClientState = 'idle' | 'connecting' | 'negotiating' | 'ready' | 'disconnected' | 'closed';

export interface QmpClientOptions {
  /** `unix:PATH`, `tcp:HOST:PORT` (or `…,server` to let QEMU connect to us), or a parsed Endpoint. */
  endpoint: Endpoint | string;
  /** Default per-command timeout (ms); default 10 000. */
  commandTimeoutMs?: number;
  /** Greeting + `qmp_capabilities` must complete within this (ms); default 5 000. */
  handshakeTimeoutMs?: number;
  /** Longest line accepted (bytes, newline excluded); default 16 MiB. */
  maxLineBytes?: number;
  /** Reconnect after failures and disconnects; default true. */
  reconnect?: boolean;
  /** Reconnect backoff; default 100 ms ×2 up to 5 s. */
  backoff?: Partial<Backoff>;
  /**
   * Enable the `oob` capability when the server offers it (default true): needed for
   * `executeOob`, e.g. `yank`, which must run even while the main loop is stuck.
   */
  oob?: boolean;
  logger?: Logger;
}

export interface QmpClientStats {
  /** Commands sent (qmp_capabilities included). */
  commands: number;
  /** Commands answered with an error. */
  errors: number;
  timeouts: number;
  /** Replies that matched no pending command (e.g. after a timeout). */
  lateReplies: number;
  events: number;
  /** Negotiated connections. */
  connects: number;
  /** Connections lost after they were established (negotiated or not). */
  disconnects: number;
  connectFailures: number;
  handshakeFailures: number;
  protocolErrors: number;
  /** Well-formed messages of a kind we do not know (ignored). */
  unknownMessages: number;
  /** Exceptions thrown by listeners (caught and logged). */
  listenerErrors: number;
}

export interface ExecuteOptions {
  /** Overrides the default command timeout (ms). */
  timeoutMs?: number;
}

interface Pending {
  readonly id: number;
  readonly command: string;
  readonly oob: boolean;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: QmpError) => void;
  readonly timer: NodeJS.Timeout;
}

const DEFAULT_MAX_LINE = 16 * 1024 * 1024;
const NL = 0x0a;

export class QmpClient {
  readonly endpoint: Endpoint;
  readonly #link: StreamLink;
  readonly #log: Logger;
  readonly #commandTimeoutMs: number;
  readonly #handshakeTimeoutMs: number;
  readonly #maxLine: number;
  readonly #wantOob: boolean;
  readonly #reconnect: boolean;

  #state: QmpClientState = 'idle';
  #greeting: QmpGreeting | null = null;
  #oobEnabled = false;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #handshakeTimer: NodeJS.Timeout | null = null;
  /** Why the current connection is being torn down (set before destroying it). */
  #dropReason: QmpError | null = null;
  /** Incremented per connection: stale work for an old connection checks it. */
  #gen = 0;
  #parts: Buffer[] = [];
  #partLen = 0;
  #everReady = false;

  readonly #eventListeners = new Set<QmpEventListener>();
  readonly #connectedListeners = new Set<(greeting: QmpGreeting, reconnected: boolean) => void>();
  readonly #disconnectedListeners = new Set<(err: QmpError) => void>();
  #readyWaiters: Array<{ resolve: (g: QmpGreeting) => void; reject: (e: QmpError) => void }> = [];

  #s: QmpClientStats = {
    commands: 0,
    errors: 0,
    timeouts: 0,
    lateReplies: 0,
    events: 0,
    connects: 0,
    disconnects: 0,
    connectFailures: 0,
    handshakeFailures: 0,
    protocolErrors: 0,
    unknownMessages: 0,
    listenerErrors: 0,
  };

  constructor(options: QmpClientOptions) {
    this.endpoint = typeof options.endpoint === 'string' ? parseEndpoint(options.endpoint) : options.endpoint;
    this.#commandTimeoutMs = positive('commandTimeoutMs', options.commandTimeoutMs ?? 10_000);
    this.#handshakeTimeoutMs = positive('handshakeTimeoutMs', options.handshakeTimeoutMs ?? 5_000);
    this.#maxLine = positive('maxLineBytes', options.maxLineBytes ?? DEFAULT_MAX_LINE);
    this.#wantOob = options.oob ?? true;
    this.#reconnect = options.reconnect ?? true;
    this.#log = (options.logger ?? createLogger()).child({ component: 'qmp', endpoint: formatEndpoint(this.endpoint) });
    const b = options.backoff ?? {};
    this.#link = new StreamLink({
      endpoint: this.endpoint,
      reconnect: this.#reconnect,
      backoff: { initialMs: b.initialMs ?? 100, maxMs: b.maxMs ?? 5_000, factor: b.factor ?? 2 },
      onConnected: () => this.#onConnected(),
      onData: (chunk) => this.#onData(chunk),
      onDisconnected: (err) => this.#onDisconnected(err),
      onConnectFailed: (err, attempt) => {
        this.#s.connectFailures++;
        // First failure of a streak at warn, the rest at debug: a QEMU that is down for a
        // while must not flood the log.
        if (attempt === 1) this.#log.warn('QMP connect failed; retrying with backoff', { err });
        else this.#log.debug('QMP connect failed', { err, attempt });
        if (!this.#reconnect) {
          this.#state = 'disconnected';
          this.#failReady(new QmpError('ERR_QMP_DISCONNECTED', `QMP ${formatEndpoint(this.endpoint)}: connect failed: ${err.message}`, { cause: err }));
        }
      },
    });
  }

  get state(): QmpClientState {
    return this.#state;
  }

  /** The current connection's greeting (null until it has been received). */
  get greeting(): QmpGreeting | null {
    return this.#greeting;
  }

  /** True when the `oob` capability was negotiated on the current connection. */
  get oobEnabled(): boolean {
    return this.#oobEnabled;
  }

  /** Begin connecting (idempotent). See `whenReady` / `connect`. */
  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'connecting';
    this.#link.start().catch((err: unknown) => {
      this.#failReady(new QmpError('ERR_QMP_DISCONNECTED', `QMP ${formatEndpoint(this.endpoint)}: cannot listen: ${String(err)}`, { cause: err }));
    });
  }

  /**
   * Resolves with the greeting once negotiated (at once if ready). Rejects with
   * ERR_QMP_TIMEOUT after `timeoutMs` (the client keeps trying in the background if
   * `reconnect` is on), with ERR_QMP_DISCONNECTED on `close()` or, without `reconnect`, when
   * the attempt fails.
   */
  whenReady(timeoutMs = 10_000): Promise<QmpGreeting> {
    if (this.#state === 'ready' && this.#greeting !== null) return Promise.resolve(this.#greeting);
    if (this.#state === 'closed') return Promise.reject(this.#closedError());
    if (this.#state === 'disconnected') return Promise.reject(this.#notReadyError('qmp_capabilities'));
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (g: QmpGreeting) => {
          clearTimeout(t);
          resolve(g);
        },
        reject: (e: QmpError) => {
          clearTimeout(t);
          reject(e);
        },
      };
      const t = setTimeout(() => {
        this.#readyWaiters = this.#readyWaiters.filter((x) => x !== w);
        reject(new QmpError('ERR_QMP_TIMEOUT', `QMP ${formatEndpoint(this.endpoint)}: not ready after ${timeoutMs} ms (state ${this.#state})`));
      }, timeoutMs);
      this.#readyWaiters.push(w);
    });
  }

  /** `start()` then `whenReady(timeoutMs)`. */
  connect(timeoutMs?: number): Promise<QmpGreeting> {
    this.start();
    return this.whenReady(timeoutMs);
  }

  /**
   * Run a command; resolves with its `return` value (unknown: narrow it), rejects with a
   * QmpError (ERR_QMP with class/desc, ERR_QMP_TIMEOUT, ERR_QMP_DISCONNECTED).
   */
  execute(command: string, args?: JsonObject, options: ExecuteOptions = {}): Promise<unknown> {
    if (this.#state !== 'ready') return Promise.reject(this.#notReadyError(command));
    return this.#send(command, args, false, options.timeoutMs ?? this.#commandTimeoutMs);
  }

  /**
   * Run a command out-of-band (`exec-oob`): QEMU handles it in the monitor I/O thread even
   * while the main loop is busy. Needs the `oob` capability (`oobEnabled`); rejects with
   * ERR_INVALID_ARGUMENT otherwise.
   */
  executeOob(command: string, args?: JsonObject, options: ExecuteOptions = {}): Promise<unknown> {
    if (this.#state !== 'ready') return Promise.reject(this.#notReadyError(command));
    if (!this.#oobEnabled) {
      return Promise.reject(new ColoError('ERR_INVALID_ARGUMENT', `QMP ${command}: out-of-band execution needs the oob capability, which is not enabled on this connection`));
    }
    return this.#send(command, args, true, options.timeoutMs ?? this.#commandTimeoutMs);
  }

  /** Listen to events (all names). Returns the unsubscribe function. */
  onEvent(listener: QmpEventListener): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  /** Called after every successful negotiation (`reconnected` false the first time). */
  onConnected(listener: (greeting: QmpGreeting, reconnected: boolean) => void): () => void {
    this.#connectedListeners.add(listener);
    return () => this.#connectedListeners.delete(listener);
  }

  /** Called when an established connection is lost (ERR_QMP_DISCONNECTED; `cause` says why). */
  onDisconnected(listener: (err: QmpError) => void): () => void {
    this.#disconnectedListeners.add(listener);
    return () => this.#disconnectedListeners.delete(listener);
  }

  stats(): QmpClientStats {
    return { ...this.#s };
  }

  /** Close for good: pending commands fail with ERR_QMP_DISCONNECTED; no reconnect. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#dropReason = this.#closedError();
    this.#clearHandshake();
    this.#failPending(this.#closedError());
    this.#failReady(this.#closedError());
    await this.#link.close();
  }

  // ---- connection lifecycle ----

  #onConnected(): void {
    this.#gen++;
    this.#parts = [];
    this.#partLen = 0;
    this.#dropReason = null;
    this.#oobEnabled = false;
    this.#greeting = null;
    if (this.#state === 'closed') {
      this.#link.drop();
      return;
    }
    this.#state = 'negotiating';
    const gen = this.#gen;
    this.#handshakeTimer = setTimeout(() => {
      if (gen !== this.#gen) return;
      this.#drop(new QmpError('ERR_QMP_TIMEOUT', `QMP ${formatEndpoint(this.endpoint)}: no greeting/capabilities reply within ${this.#handshakeTimeoutMs} ms`));
    }, this.#handshakeTimeoutMs);
  }

  #onDisconnected(sockErr: Error | undefined): void {
    this.#gen++;
    this.#clearHandshake();
    this.#s.disconnects++;
    const wasReady = this.#state === 'ready';
    if (this.#state !== 'closed') this.#state = 'connecting';
    this.#oobEnabled = false;
    const reason = this.#dropReason;
    this.#dropReason = null;
    const cause: unknown = reason ?? sockErr;
    const err =
      reason !== null && reason.code === 'ERR_QMP_DISCONNECTED'
        ? reason
        : new QmpError(
            'ERR_QMP_DISCONNECTED',
            `QMP ${formatEndpoint(this.endpoint)}: connection lost${cause instanceof Error ? `: ${cause.message}` : ' (peer closed)'}`,
            cause !== undefined ? { cause } : {},
          );
    this.#failPending(err);
    if (this.#state === 'closed') return;
    if (!wasReady) {
      this.#s.handshakeFailures++;
      if (!this.#link.endpoint.server && !this.#reconnect) this.#failReady(err);
    }
    if (!this.#link.endpoint.server && !this.#reconnect) this.#state = 'disconnected';
    this.#log.warn(wasReady ? 'QMP connection lost' : 'QMP connection lost during the handshake', { err: cause ?? err });
    if (wasReady) this.#emit(this.#disconnectedListeners, (l) => l(err));
  }

  /** Tear the connection down for `err` (protocol error, handshake failure). */
  #drop(err: QmpError): void {
    if (err.code === 'ERR_QMP_PROTOCOL') this.#s.protocolErrors++;
    this.#log.warn('QMP connection reset', { err });
    this.#dropReason = err;
    this.#link.drop();
  }

  #clearHandshake(): void {
    if (this.#handshakeTimer !== null) {
      clearTimeout(this.#handshakeTimer);
      this.#handshakeTimer = null;
    }
  }

  // ---- input ----

  #onData(chunk: Buffer): void {
    if (this.#dropReason !== null) return; // being torn down: the rest is noise
    const gen = this.#gen;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      if (nl < 0) break;
      const lineLen = this.#partLen + (nl - start);
      if (lineLen > this.#maxLine) {
        this.#drop(new QmpError('ERR_QMP_PROTOCOL', `QMP ${formatEndpoint(this.endpoint)}: line of ${lineLen} bytes exceeds the ${this.#maxLine}-byte limit`));
        return;
      }
      let line: Buffer;
      if (this.#partLen === 0) line = chunk.subarray(start, nl);
      else {
        this.#parts.push(chunk.subarray(start, nl));
        line = Buffer.concat(this.#parts, lineLen);
        this.#parts = [];
        this.#partLen = 0;
      }
      start = nl + 1;
      this.#onLine(line);
      if (gen !== this.#gen || this.#dropReason !== null) return; // reset by the line or a listener
    }
    if (start < chunk.length) {
      const rest = chunk.length - start;
      if (this.#partLen + rest > this.#maxLine) {
        this.#drop(new QmpError('ERR_QMP_PROTOCOL', `QMP ${formatEndpoint(this.endpoint)}: more than ${this.#maxLine} bytes without a newline`));
        return;
      }
      // Copy the tail: a view would keep the whole socket chunk alive until the newline.
      this.#parts.push(Buffer.from(chunk.subarray(start)));
      this.#partLen += rest;
    }
  }

  #onLine(line: Buffer): void {
    const text = line.toString('utf8').trim();
    if (text.length === 0) return;
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      this.#drop(new QmpError('ERR_QMP_PROTOCOL', `QMP ${formatEndpoint(this.endpoint)}: malformed JSON (${(e as Error).message}): ${preview(text)}`, { cause: e }));
      return;
    }
    if (!isJsonObject(msg)) {
      this.#drop(new QmpError('ERR_QMP_PROTOCOL', `QMP ${formatEndpoint(this.endpoint)}: message is not a JSON object: ${preview(text)}`));
      return;
    }
    if (this.#state === 'negotiating' && this.#greeting === null) {
      this.#onGreeting(msg, text);
      return;
    }
    if (typeof msg['event'] === 'string') {
      this.#onEventMsg(msg['event'], msg);
      return;
    }
    if ('return' in msg || 'error' in msg) {
      this.#onReply(msg);
      return;
    }
    if ('QMP' in msg) {
      this.#drop(new QmpError('ERR_QMP_PROTOCOL', `QMP ${formatEndpoint(this.endpoint)}: unexpected second greeting`));
      return;
    }
    this.#s.unknownMessages++;
    this.#log.debug('QMP message of unknown kind ignored', { message: preview(text) });
  }

  #onGreeting(msg: JsonObject, text: string): void {
    const qmp = objectField(msg, 'QMP');
    const ver = qmp !== undefined ? objectField(qmp, 'version') : undefined;
    const q = ver !== undefined ? objectField(ver, 'qemu') : undefined;
    const caps = qmp !== undefined ? stringArrayField(qmp, 'capabilities') : undefined;
    if (qmp === undefined || caps === undefined) {
      this.#drop(new QmpError('ERR_QMP_PROTOCOL', `QMP ${formatEndpoint(this.endpoint)}: expected the QMP greeting, got ${preview(text)}`));
      return;
    }
    const greeting: QmpGreeting = {
      version: {
        major: (q !== undefined ? numberField(q, 'major') : undefined) ?? 0,
        minor: (q !== undefined ? numberField(q, 'minor') : undefined) ?? 0,
        micro: (q !== undefined ? numberField(q, 'micro') : undefined) ?? 0,
        package: (ver !== undefined ? stringField(ver, 'package') : undefined) ?? '',
      },
      capabilities: caps,
    };
    this.#greeting = greeting;
    const enable = this.#wantOob && caps.includes('oob') ? ['oob'] : [];
    const gen = this.#gen;
    this.#send('qmp_capabilities', enable.length > 0 ? { enable } : undefined, false, this.#handshakeTimeoutMs).then(
      () => {
        if (gen !== this.#gen || this.#state !== 'negotiating') return;
        this.#clearHandshake();
        this.#oobEnabled = enable.length > 0;
        this.#state = 'ready';
        this.#link.resetBackoff();
        this.#s.connects++;
        const reconnected = this.#everReady;
        this.#everReady = true;
        this.#log.info(reconnected ? 'QMP reconnected' : 'QMP connected', {
          qemu: `${greeting.version.major}.${greeting.version.minor}.${greeting.version.micro}`,
          oob: this.#oobEnabled,
        });
        const waiters = this.#readyWaiters;
        this.#readyWaiters = [];
        for (const w of waiters) w.resolve(greeting);
        this.#emit(this.#connectedListeners, (l) => l(greeting, reconnected));
      },
      (err: QmpError) => {
        if (gen !== this.#gen) return;
        this.#drop(err.code === 'ERR_QMP' ? new QmpError('ERR_QMP_PROTOCOL', `QMP ${formatEndpoint(this.endpoint)}: qmp_capabilities refused: ${err.message}`, { cause: err }) : err);
      },
    );
  }

  #onEventMsg(name: string, msg: JsonObject): void {
    this.#s.events++;
    const data = objectField(msg, 'data') ?? {};
    const ts = objectField(msg, 'timestamp');
    const sec = ts !== undefined ? numberField(ts, 'seconds') : undefined;
    const usec = ts !== undefined ? numberField(ts, 'microseconds') : undefined;
    const t = sec !== undefined ? sec * 1000 + (usec ?? 0) / 1000 : Date.now();
    this.#emit(this.#eventListeners, (l) => l(name, data, t));
  }

  #onReply(msg: JsonObject): void {
    const idv = msg['id'];
    let p: Pending | undefined;
    if (idv === undefined) {
      // QEMU answers in-band commands in order; an id-less reply belongs to the oldest one.
      for (const x of this.#pending.values()) {
        if (!x.oob) {
          p = x;
          break;
        }
      }
    } else if (typeof idv === 'number') p = this.#pending.get(idv);
    if (p === undefined) {
      this.#s.lateReplies++;
      this.#log.debug('QMP reply for no pending command ignored', { id: idv });
      return;
    }
    this.#pending.delete(p.id);
    clearTimeout(p.timer);
    const e = msg['error'];
    if (e === undefined) {
      p.resolve(msg['return']);
      return;
    }
    this.#s.errors++;
    const eo = isJsonObject(e) ? e : {};
    const cls = stringField(eo, 'class');
    const desc = stringField(eo, 'desc');
    p.reject(
      new QmpError('ERR_QMP', `QMP ${p.command}: ${cls ?? 'error'}: ${desc ?? JSON.stringify(e)}`, {
        command: p.command,
        ...(cls !== undefined ? { errorClass: cls } : {}),
        ...(desc !== undefined ? { desc } : {}),
      }),
    );
  }

  // ---- output ----

  #send(command: string, args: JsonObject | undefined, oob: boolean, timeoutMs: number): Promise<unknown> {
    const id = this.#nextId++;
    let line: string;
    try {
      const msg: JsonObject = oob ? { 'exec-oob': command } : { execute: command };
      if (args !== undefined) msg['arguments'] = args;
      msg['id'] = id;
      line = JSON.stringify(msg) + '\n';
    } catch (e) {
      return Promise.reject(new ColoError('ERR_INVALID_ARGUMENT', `QMP ${command}: arguments are not serialisable as JSON: ${(e as Error).message}`, { cause: e }));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pending.delete(id)) {
          this.#s.timeouts++;
          reject(new QmpError('ERR_QMP_TIMEOUT', `QMP ${command}: no reply within ${timeoutMs} ms`, { command }));
        }
      }, timeoutMs);
      this.#pending.set(id, { id, command, oob, resolve, reject, timer });
      this.#s.commands++;
      if (!this.#link.write(line)) {
        this.#pending.delete(id);
        clearTimeout(timer);
        reject(this.#notReadyError(command));
      }
    });
  }

  // ---- helpers ----

  #failPending(err: QmpError): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(new QmpError(err.code, `QMP ${p.command}: ${err.message}`, { command: p.command, cause: err.cause ?? err }));
    }
  }

  #failReady(err: QmpError): void {
    const waiters = this.#readyWaiters;
    this.#readyWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  #notReadyError(command: string): QmpError {
    if (this.#state === 'closed') return new QmpError('ERR_QMP_DISCONNECTED', `QMP ${command}: client closed`, { command });
    return new QmpError('ERR_QMP_DISCONNECTED', `QMP ${command}: not connected to ${formatEndpoint(this.endpoint)} (state ${this.#state})`, { command });
  }

  #closedError(): QmpError {
    return new QmpError('ERR_QMP_DISCONNECTED', `QMP ${formatEndpoint(this.endpoint)}: client closed`);
  }

  #emit<L>(set: Set<L>, call: (l: L) => void): void {
    for (const l of set) {
      try {
        call(l);
      } catch (err) {
        this.#s.listenerErrors++;
        this.#log.error('QMP listener threw', { err });
      }
    }
  }
}

function positive(name: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw new ColoError('ERR_INVALID_ARGUMENT', `${name} must be a positive number, got ${v}`);
  return v;
}

function preview(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}… (${text.length} chars)` : text;
}
