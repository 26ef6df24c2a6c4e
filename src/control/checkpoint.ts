/**
 * The checkpoint controller seen by colo-compare: "please checkpoint" in, "a checkpoint
 * started / completed / failed" out.
 *
 * colo-compare calls `request(cause)` on every divergence and flushes its queues on
 * `onCompleted` (release every held primary packet, drop the secondary's). Requests made while
 * one is pending (requested or in progress) are coalesced into it, like QEMU's COLO thread
 * absorbs requests that arrive during a transaction (reference §8.2 step 5): everything held
 * at completion is flushed anyway, so the pending checkpoint covers the new divergence too.
 * Checkpoints the controller did not ask for (QEMU's periodic timer, a peer's own decision)
 * are reported through the same callbacks with origin 'periodic': they resynchronise the VMs
 * just the same, so colo-compare flushes on them too.
 *
 * Implementations: QmpCheckpointController (QEMU KVM COLO over QMP), NotifyDevController
 * (the Xen-style notify_dev channel), ShadowCheckpointController (offline: completes at once).
 * `BaseCheckpointController` holds the state machine, counters, timings and listeners they share.
 */
import { createLogger } from '../util/log.js';
import type { Logger } from '../util/log.js';

export type CheckpointState = 'idle' | 'requested' | 'in-progress';

/**
 * Who started the checkpoint: 'requested' by us; 'periodic': observed without a request of
 * ours; 'late': the completion of a checkpoint already reported failed by timeout (the VMs did
 * resynchronise after all, so flushing is correct).
 */
export type CheckpointOrigin = 'requested' | 'periodic' | 'late';

/** Why a checkpoint failed. */
export type CheckpointFailure =
  /** No start (STOP / DO_CHECKPOINT sent) or no completion (RESUME / COLO_CHECKPOINT) in time. */
  | 'timeout'
  /** COLO ended (QMP COLO_EXIT: failover or error); nothing will complete it. */
  | 'colo-exit'
  /** The control connection was lost while the checkpoint was pending. */
  | 'disconnected'
  /** The trigger itself failed (e.g. QMP error reply). */
  | 'request-failed'
  /** The controller was closed. */
  | 'closed';

/** One checkpoint, from request (or first observation) to completion or failure. */
export interface Checkpoint {
  /** 1, 2, … per controller. */
  readonly id: number;
  readonly origin: CheckpointOrigin;
  /** The first request's cause, or the origin for unrequested ones. */
  readonly cause: string;
  /** Later requests folded into this one. */
  coalesced: number;
  /** Monotonic ms (performance.now()); NaN when not requested by us. */
  readonly requestedAt: number;
  /** When the checkpoint was seen to start (STOP / DO_CHECKPOINT written); NaN if never. */
  startedAt: number;
  /** When MIGRATION_PASS was seen (QMP with the `events` capability only); NaN otherwise. */
  passAt: number;
  /** When it completed (RESUME / COLO_CHECKPOINT); NaN if it did not. */
  completedAt: number;
  failure: CheckpointFailure | null;
  error: Error | null;
}

export interface CheckpointCounters {
  /** `request()` calls. */
  requested: number;
  /** Of those, folded into a pending checkpoint. */
  coalesced: number;
  /** Requests actually sent (requested − coalesced − refused at once). */
  sent: number;
  started: number;
  completed: number;
  /** Checkpoints started without a request of ours. */
  periodic: number;
  /** Completions of checkpoints already reported failed (origin 'late'). */
  late: number;
  failed: number;
  failures: Record<CheckpointFailure, number>;
  /** Exceptions thrown by listeners (caught and logged). */
  listenerErrors: number;
}

/** Aggregate of one interval over all checkpoints that have it. */
export interface TimingStat {
  count: number;
  totalMs: number;
  minMs: number;
  maxMs: number;
  lastMs: number;
}

export interface CheckpointTimings {
  /** request → start (QMP STOP; notify_dev: DO_CHECKPOINT written). */
  requestToStart: TimingStat;
  /** request → MIGRATION_PASS. */
  requestToPass: TimingStat;
  /** request → completion (QMP RESUME; notify_dev COLO_CHECKPOINT). */
  requestToComplete: TimingStat;
  /** start → completion, for every checkpoint (requested and periodic): the VM pause. */
  startToComplete: TimingStat;
}

export interface CheckpointStats extends CheckpointCounters {
  state: CheckpointState;
  timings: CheckpointTimings;
}

export type CheckpointListener = (cp: Checkpoint) => void;
export type CheckpointFailureListener = (cp: Checkpoint, reason: CheckpointFailure, err: Error | null) => void;

/** What colo-compare needs from a checkpoint controller. */
export interface CheckpointController {
  readonly state: CheckpointState;
  /** Ask for a checkpoint; coalesced while one is pending. Never throws, never calls back synchronously. */
  request(cause: string): void;
  /** A checkpoint started (the VMs are pausing). */
  onStarted(cb: CheckpointListener): () => void;
  /** A checkpoint completed: held primary packets may be released now. */
  onCompleted(cb: CheckpointListener): () => void;
  /** A pending checkpoint failed; held packets stay held (the caller decides what next). */
  onFailed(cb: CheckpointFailureListener): () => void;
  stats(): CheckpointStats;
  close(): Promise<void>;
}

function timing(): TimingStat {
  return { count: 0, totalMs: 0, minMs: Infinity, maxMs: 0, lastMs: NaN };
}

function addTiming(t: TimingStat, ms: number): void {
  if (!Number.isFinite(ms)) return;
  t.count++;
  t.totalMs += ms;
  if (ms < t.minMs) t.minMs = ms;
  if (ms > t.maxMs) t.maxMs = ms;
  t.lastMs = ms;
}

/**
 * Shared state machine: idle → requested → in-progress → idle (completed or failed), with
 * periodic checkpoints entering in-progress directly. Subclasses implement `trigger` and call
 * the `mark*` methods as the protocol reports progress.
 */
export abstract class BaseCheckpointController implements CheckpointController {
  protected readonly log: Logger;
  #state: CheckpointState = 'idle';
  #current: Checkpoint | null = null;
  #nextId = 1;
  #closed = false;
  /** The pending checkpoint's deadline (armTimer). */
  #timer: NodeJS.Timeout | null = null;
  readonly #started = new Set<CheckpointListener>();
  readonly #completed = new Set<CheckpointListener>();
  readonly #failed = new Set<CheckpointFailureListener>();
  readonly #c: CheckpointCounters = {
    requested: 0,
    coalesced: 0,
    sent: 0,
    started: 0,
    completed: 0,
    periodic: 0,
    late: 0,
    failed: 0,
    failures: { timeout: 0, 'colo-exit': 0, disconnected: 0, 'request-failed': 0, closed: 0 },
    listenerErrors: 0,
  };
  readonly #t: CheckpointTimings = { requestToStart: timing(), requestToPass: timing(), requestToComplete: timing(), startToComplete: timing() };

  constructor(logger: Logger | undefined, component: string) {
    this.log = (logger ?? createLogger()).child({ component });
  }

  get state(): CheckpointState {
    return this.#state;
  }

  /** The pending checkpoint, if any. */
  get current(): Checkpoint | null {
    return this.#current;
  }

  get closed(): boolean {
    return this.#closed;
  }

  request(cause: string): void {
    this.#c.requested++;
    const cur = this.#current;
    if (cur !== null) {
      cur.coalesced++;
      this.#c.coalesced++;
      return;
    }
    const cp = this.#newCheckpoint('requested', cause, now());
    this.#current = cp;
    this.#state = 'requested';
    if (this.#closed) {
      // Deferred so that request() never calls back synchronously.
      queueMicrotask(() => this.markFailed(cp, 'closed', null));
      return;
    }
    const refusal = this.refuse();
    if (refusal !== null) {
      queueMicrotask(() => this.markFailed(cp, refusal.reason, refusal.error));
      return;
    }
    this.#c.sent++;
    this.trigger(cp);
  }

  onStarted(cb: CheckpointListener): () => void {
    this.#started.add(cb);
    return () => this.#started.delete(cb);
  }

  onCompleted(cb: CheckpointListener): () => void {
    this.#completed.add(cb);
    return () => this.#completed.delete(cb);
  }

  onFailed(cb: CheckpointFailureListener): () => void {
    this.#failed.add(cb);
    return () => this.#failed.delete(cb);
  }

  stats(): CheckpointStats {
    const t = this.#t;
    const copy = (x: TimingStat): TimingStat => ({ ...x });
    return {
      ...this.#c,
      failures: { ...this.#c.failures },
      state: this.#state,
      timings: {
        requestToStart: copy(t.requestToStart),
        requestToPass: copy(t.requestToPass),
        requestToComplete: copy(t.requestToComplete),
        startToComplete: copy(t.startToComplete),
      },
    };
  }

  /** Fail the pending checkpoint with 'closed' and refuse further requests. Subclasses extend. */
  async close(): Promise<void> {
    this.clearTimer();
    if (this.#closed) return;
    this.#closed = true;
    const cur = this.#current;
    if (cur !== null) this.markFailed(cur, 'closed', null);
  }

  // ---- for subclasses ----

  /** Send the request for `cp` (state 'requested'). Must not call back synchronously. */
  protected abstract trigger(cp: Checkpoint): void;

  /** A reason to fail a request at once (e.g. COLO has exited), or null to send it. */
  protected refuse(): { reason: CheckpointFailure; error: Error | null } | null {
    return null;
  }

  /**
   * The protocol reports a checkpoint start. Pending 'requested' → in progress; idle →
   * a new 'periodic' (or `origin`) checkpoint. Ignored while one is already in progress.
   */
  protected markStarted(origin: CheckpointOrigin = 'periodic'): Checkpoint | null {
    let cp = this.#current;
    if (cp !== null && this.#state === 'in-progress') return null;
    if (cp === null) {
      cp = this.#newCheckpoint(origin, origin, NaN);
      this.#current = cp;
      if (origin === 'periodic') this.#c.periodic++;
    }
    cp.startedAt = now();
    this.#state = 'in-progress';
    this.#c.started++;
    addTiming(this.#t.requestToStart, cp.startedAt - cp.requestedAt);
    this.#emit(this.#started, (l) => l(cp));
    return cp;
  }

  /**
   * Give the pending checkpoint `cp` until `ms` from now to move on (replaces any armed
   * deadline); then `timedOut` is called, unless it completed or failed meanwhile.
   */
  protected armTimer(cp: Checkpoint, ms: number, what: string): void {
    this.clearTimer();
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#current === cp) this.timedOut(cp, new Error(`checkpoint ${cp.id}: ${what} within ${ms} ms`));
    }, ms);
  }

  /** Disarm the deadline (completion and failure do it themselves). */
  protected clearTimer(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }

  /** The deadline of the still pending `cp` passed: fails it with 'timeout'. Subclasses extend. */
  protected timedOut(cp: Checkpoint, err: Error): void {
    this.markFailed(cp, 'timeout', err);
  }

  /** MIGRATION_PASS (timing only). */
  protected markPass(): void {
    const cp = this.#current;
    if (cp === null || !Number.isNaN(cp.passAt)) return;
    cp.passAt = now();
    addTiming(this.#t.requestToPass, cp.passAt - cp.requestedAt);
  }

  /** The pending checkpoint completed (call `markStarted` first if the start was not seen). */
  protected markCompleted(): Checkpoint | null {
    const cp = this.#current;
    if (cp === null || this.#state !== 'in-progress') return null;
    this.clearTimer();
    cp.completedAt = now();
    this.#current = null;
    this.#state = 'idle';
    this.#c.completed++;
    if (cp.origin === 'late') this.#c.late++;
    addTiming(this.#t.requestToComplete, cp.completedAt - cp.requestedAt);
    addTiming(this.#t.startToComplete, cp.completedAt - cp.startedAt);
    this.#emit(this.#completed, (l) => l(cp));
    return cp;
  }

  /** `cp` failed (ignored unless it is still the pending one). */
  protected markFailed(cp: Checkpoint, reason: CheckpointFailure, err: Error | null): void {
    if (this.#current !== cp) return;
    this.clearTimer();
    cp.failure = reason;
    cp.error = err;
    this.#current = null;
    this.#state = 'idle';
    this.#c.failed++;
    this.#c.failures[reason]++;
    this.log.warn('checkpoint failed', { id: cp.id, origin: cp.origin, cause: cp.cause, reason, err: err ?? undefined });
    this.#emit(this.#failed, (l) => l(cp, reason, err));
  }

  #newCheckpoint(origin: CheckpointOrigin, cause: string, requestedAt: number): Checkpoint {
    return { id: this.#nextId++, origin, cause, coalesced: 0, requestedAt, startedAt: NaN, passAt: NaN, completedAt: NaN, failure: null, error: null };
  }

  #emit<L>(set: Set<L>, call: (l: L) => void): void {
    for (const l of set) {
      try {
        call(l);
      } catch (err) {
        this.#c.listenerErrors++;
        this.log.error('checkpoint listener threw', { err });
      }
    }
  }
}

/** Monotonic milliseconds. */
export function now(): number {
  return performance.now();
}
