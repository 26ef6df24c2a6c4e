/**
 * Checkpoints of a QEMU KVM COLO pair, driven and observed over the primary's QMP socket.
 *
 * Trigger (reference §8.3, measured in lab step 3): QEMU has no "checkpoint now" command, but
 * `migrate-set-parameters {"x-checkpoint-delay": N}` on the primary in COLO state requests a
 * checkpoint at once, even when N equals the current value (32/32 in the lab), and re-arms the
 * periodic timer. So each request reads the current value with `query-migrate-parameters` and
 * writes it back unchanged: the operator's period is never altered. Outside COLO the command
 * only stores the value, so no STOP follows and the request fails by `startTimeoutMs`.
 *
 * Observation (§8.4, lab: always STOP → MIGRATION_PASS → RESUME, RESUME ≈ 50–130 ms after the
 * command): STOP = started; MIGRATION_PASS (only with the `events` migration capability) =
 * the RAM sync in the middle, used for timing; RESUME = completed.
 *
 * Why completion is RESUME and not STOP or MIGRATION_PASS (§8.4a): the primary emits RESUME
 * after the secondary reported `vmstate-loaded`, i.e. once the secondary provably holds the
 * new state. QEMU's own compare flushes a little earlier (after `vmstate-received`, before the
 * load), but from outside that moment is invisible; flushing at STOP or MIGRATION_PASS would
 * release held output before the secondary has even received the state, and a failure then
 * leaves output out that the secondary cannot reproduce. RESUME costs one state load of
 * latency and is safe.
 *
 * Unrequested checkpoints (the x-checkpoint-delay timer) show the same STOP → RESUME sequence
 * and are reported as origin 'periodic'. Limitation: an operator's `stop`/`cont` on the
 * primary during COLO looks the same and is reported as a periodic checkpoint.
 *
 * Failure: STOP without RESUME within `completeTimeoutMs` → 'timeout' (a RESUME that still
 * comes later is reported as an origin-'late' completion); COLO_EXIT → 'colo-exit', and
 * further requests fail at once until a MIGRATION event reports status "colo" again; QMP
 * connection lost → 'disconnected'; an error reply → 'request-failed'.
 */
import type { Logger } from '../util/log.js';
import { BaseCheckpointController } from './checkpoint.js';
import type { Checkpoint, CheckpointFailure, CheckpointStats } from './checkpoint.js';
import { isJsonObject, numberField, stringField } from './json.js';
import type { JsonObject } from './json.js';
import { QmpError } from './qmp-client.js';
import type { QmpClient } from './qmp-client.js';

export interface QmpCheckpointOptions {
  /** A QMP client to the PRIMARY QEMU (not owned: `close()` leaves it open). */
  qmp: QmpClient;
  /** Request → STOP (ms); default 2 000. */
  startTimeoutMs?: number;
  /** STOP → RESUME (ms); default 10 000. */
  completeTimeoutMs?: number;
  logger?: Logger;
}

/** `query-colo-status` (reference §8.4). */
export interface ColoStatus {
  /** 'none' | 'primary' | 'secondary'. */
  mode: string;
  /** Mode before the last failover (absent in old QEMUs). */
  lastMode: string | undefined;
  /** 'none' | 'request' | 'error' | 'processing'. */
  reason: string;
}

/** What `failover()` did. */
export interface FailoverResult {
  /** The migration yank ran (false: skipped or refused, see `yankError`). */
  yanked: boolean;
  /** How it was sent. */
  yankMode: 'oob' | 'in-band' | 'skipped';
  /** The yank's error (tolerated: e.g. DeviceNotFound when no migration is running). */
  yankError: QmpError | null;
}

export interface QmpCheckpointStats extends CheckpointStats {
  /** MIGRATION_PASS events seen. */
  passes: number;
  /** RESUME events that ended no checkpoint (e.g. `cont` outside COLO). */
  strayResumes: number;
  coloActive: boolean;
}

/** Data of a COLO_EXIT event. */
export interface ColoExit {
  mode: string;
  reason: string;
}

export class QmpCheckpointController extends BaseCheckpointController {
  readonly qmp: QmpClient;
  readonly #startTimeoutMs: number;
  readonly #completeTimeoutMs: number;
  readonly #unsubscribe: Array<() => void> = [];
  /** False after COLO_EXIT until MIGRATION status "colo". */
  #coloActive = true;
  /** A checkpoint that timed out after its STOP: its RESUME may still come. */
  #timedOutAfterStop = false;
  #coloExitListeners = new Set<(e: ColoExit) => void>();
  #passes = 0;
  #strayResumes = 0;

  constructor(options: QmpCheckpointOptions) {
    super(options.logger, 'checkpoint-qmp');
    this.qmp = options.qmp;
    this.#startTimeoutMs = options.startTimeoutMs ?? 2_000;
    this.#completeTimeoutMs = options.completeTimeoutMs ?? 10_000;
    this.#unsubscribe.push(
      this.qmp.onEvent((name, data) => this.#onEvent(name, data)),
      this.qmp.onDisconnected((err) => {
        const cp = this.current;
        // Events sent while we are away are lost, so a pending checkpoint cannot be
        // followed to its end.
        if (cp !== null) this.markFailed(cp, 'disconnected', err);
        this.#timedOutAfterStop = false;
      }),
    );
  }

  /** False once COLO_EXIT was seen (until COLO is entered again). */
  get coloActive(): boolean {
    return this.#coloActive;
  }

  /** Called on COLO_EXIT (failover or error). Returns the unsubscribe function. */
  onColoExit(cb: (e: ColoExit) => void): () => void {
    this.#coloExitListeners.add(cb);
    return () => this.#coloExitListeners.delete(cb);
  }

  /** The primary's current `x-checkpoint-delay` (ms). */
  async checkpointDelay(): Promise<number> {
    const r = await this.qmp.execute('query-migrate-parameters');
    const v = isJsonObject(r) ? numberField(r, 'x-checkpoint-delay') : undefined;
    if (v === undefined) {
      throw new QmpError('ERR_QMP_PROTOCOL', 'query-migrate-parameters: reply has no numeric x-checkpoint-delay', { command: 'query-migrate-parameters' });
    }
    return v;
  }

  /** `query-colo-status`, narrowed. */
  async queryColoStatus(): Promise<ColoStatus> {
    const r = await this.qmp.execute('query-colo-status');
    const o: JsonObject = isJsonObject(r) ? r : {};
    const mode = stringField(o, 'mode');
    const reason = stringField(o, 'reason');
    if (mode === undefined || reason === undefined) {
      throw new QmpError('ERR_QMP_PROTOCOL', `query-colo-status: unexpected reply ${JSON.stringify(r)}`, { command: 'query-colo-status' });
    }
    return { mode, lastMode: stringField(o, 'last-mode'), reason };
  }

  /**
   * Primary-side failover (reference §8.5), the part that applies when colo-compare is ours:
   * 1. `yank` the migration instance — out-of-band when the `oob` capability is on, so a
   *    migration socket blocked on a dead secondary cannot stall it (as the upstream COLO
   *    qtest does). Errors are tolerated (DeviceNotFound: no migration to yank).
   * 2. `x-colo-lost-heartbeat`: the primary leaves COLO and runs alone; errors propagate
   *    (e.g. "The feature 'colo' is not enabled" outside COLO on 7.2).
   * QEMU's own procedure also deletes comp0 and the redirectors first; with our compare that
   * step is ours (release everything held on COLO_EXIT), and deleting filters is deployment
   * specific, so it is left to the operator. The COLO_EXIT event that follows fails a pending
   * checkpoint with 'colo-exit'.
   */
  async failover(options: { yank?: boolean } = {}): Promise<FailoverResult> {
    let yanked = false;
    let yankMode: FailoverResult['yankMode'] = 'skipped';
    let yankError: QmpError | null = null;
    if (options.yank ?? true) {
      const args = { instances: [{ type: 'migration' }] };
      yankMode = this.qmp.oobEnabled ? 'oob' : 'in-band';
      try {
        if (this.qmp.oobEnabled) await this.qmp.executeOob('yank', args);
        else await this.qmp.execute('yank', args);
        yanked = true;
      } catch (e) {
        if (!(e instanceof QmpError)) throw e;
        if (e.code === 'ERR_QMP_DISCONNECTED') throw e;
        yankError = e;
        this.log.info('yank before failover refused (continuing)', { err: e });
      }
    }
    await this.qmp.execute('x-colo-lost-heartbeat');
    return { yanked, yankMode, yankError };
  }

  override async close(): Promise<void> {
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe.length = 0;
    await super.close();
  }

  override stats(): QmpCheckpointStats {
    return { ...super.stats(), passes: this.#passes, strayResumes: this.#strayResumes, coloActive: this.#coloActive };
  }

  protected override refuse(): { reason: CheckpointFailure; error: Error | null } | null {
    return this.#coloActive ? null : { reason: 'colo-exit', error: null };
  }

  protected trigger(cp: Checkpoint): void {
    this.#timedOutAfterStop = false;
    this.armTimer(cp, this.#startTimeoutMs, 'no STOP');
    void this.#sendRequest(cp);
  }

  async #sendRequest(cp: Checkpoint): Promise<void> {
    try {
      const delay = await this.checkpointDelay();
      if (this.current !== cp || this.state !== 'requested') return;
      await this.qmp.execute('migrate-set-parameters', { 'x-checkpoint-delay': delay });
    } catch (e) {
      // After STOP the checkpoint runs regardless of what became of our command.
      if (this.current !== cp || this.state !== 'requested') return;
      const err = e instanceof Error ? e : new Error(String(e));
      this.markFailed(cp, e instanceof QmpError && e.code === 'ERR_QMP_DISCONNECTED' ? 'disconnected' : 'request-failed', err);
    }
  }

  #onEvent(name: string, data: JsonObject): void {
    switch (name) {
      case 'STOP': {
        if (!this.#coloActive) return; // operator stop outside COLO: not a checkpoint
        this.#timedOutAfterStop = false;
        const cp = this.markStarted('periodic');
        if (cp !== null) this.armTimer(cp, this.#completeTimeoutMs, 'no RESUME');
        return;
      }
      case 'MIGRATION_PASS':
        this.#passes++;
        this.markPass();
        return;
      case 'RESUME': {
        if (this.state === 'in-progress') {
          this.markCompleted();
          return;
        }
        if (this.#timedOutAfterStop && this.#coloActive && this.current === null) {
          this.#timedOutAfterStop = false;
          this.markStarted('late');
          this.markCompleted();
          return;
        }
        this.#strayResumes++;
        return;
      }
      case 'COLO_EXIT': {
        const e: ColoExit = { mode: stringField(data, 'mode') ?? '?', reason: stringField(data, 'reason') ?? '?' };
        this.#coloActive = false;
        this.#timedOutAfterStop = false;
        this.log.warn('COLO exited', { mode: e.mode, reason: e.reason });
        const cp = this.current;
        if (cp !== null) this.markFailed(cp, 'colo-exit', null);
        for (const l of this.#coloExitListeners) {
          try {
            l(e);
          } catch (err) {
            this.log.error('COLO_EXIT listener threw', { err });
          }
        }
        return;
      }
      case 'MIGRATION':
        if (stringField(data, 'status') === 'colo' && !this.#coloActive) {
          this.#coloActive = true;
          this.log.info('COLO entered again');
        }
        return;
      default:
        return;
    }
  }

  protected override timedOut(cp: Checkpoint, err: Error): void {
    const afterStop = this.state === 'in-progress';
    super.timedOut(cp, err);
    // Its RESUME may still come: reported then as a 'late' completion.
    this.#timedOutAfterStop = afterStop;
  }
}
