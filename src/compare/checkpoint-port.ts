/**
 * CheckpointPort: the one thing the compare engine needs from a checkpoint controller (QMP,
 * Xen notify_dev, shadow). Defined here, minimal, so the engine does not depend on how
 * checkpoints are triggered; a controller adapts to it.
 *
 * Contract:
 * - The engine calls `request` at most once per checkpoint: while one is pending, further
 *   divergences are coalesced into it (they still produce records). A request still pending
 *   after `checkpointRetryMs` is sent again (counted as a retry).
 * - The controller calls `engine.onCheckpointCompleted()` when the checkpoint has completed
 *   (with QMP: the primary's RESUME — see docs/compare.md), and also for checkpoints the
 *   engine did not ask for (QEMU's periodic x-checkpoint-delay timer): both flush the same way.
 * - A controller may complete synchronously from inside `request` (shadow mode does): the
 *   engine defers the flush until its current call returns.
 */
import type { CheckpointController } from '../control/checkpoint.js';
import type { DivergenceRecord } from './divergence.js';

export interface CheckpointPort {
  /**
   * True when a completed checkpoint does NOT resynchronise the secondary (shadow mode:
   * "what would COLO do with this traffic"). The engine then releases and records but keeps
   * each flow's stream alignment. Default false.
   */
  readonly shadow?: boolean;
  /** Ask for one checkpoint. `record` is the divergence that asked (null for a retry). */
  request(record: DivergenceRecord | null): void;
}

/**
 * A port for shadow use: every request completes at once (the engine defers the flush to the
 * end of its current call). `attach` the engine after constructing it.
 */
export class ShadowCheckpointPort implements CheckpointPort {
  readonly shadow = true;
  requests = 0;
  #target: { onCheckpointCompleted(): void } | null = null;

  /** The engine to complete checkpoints on. */
  attach(target: { onCheckpointCompleted(): void }): void {
    this.#target = target;
  }

  request(): void {
    this.requests++;
    this.#target?.onCheckpointCompleted();
  }
}

/** What a ControllerPort drives: the engine's completion and failure hooks. */
export interface CheckpointTarget {
  onCheckpointCompleted(): void;
  onCheckpointFailed(): void;
}

/**
 * Drives checkpoints through a src/control CheckpointController (QMP, notify_dev, shadow):
 * `request` becomes `controller.request(cause text)`, and `attach` subscribes the engine to
 * the controller's completions (requested and periodic alike, e.g. QMP RESUME) and failures.
 * Pass `shadow: true` with a ShadowCheckpointController (no real resynchronisation).
 */
export class ControllerPort implements CheckpointPort {
  readonly controller: CheckpointController;
  readonly shadow: boolean;

  constructor(controller: CheckpointController, opts: { shadow?: boolean } = {}) {
    this.controller = controller;
    this.shadow = opts.shadow ?? false;
  }

  request(record: DivergenceRecord | null): void {
    this.controller.request(record === null ? 'retry' : `${record.cause} ${record.flow}${record.offset === null ? '' : ` @${record.offset}`}`);
  }

  /** Route the controller's completions and failures to `engine`; returns the unsubscribe function. */
  attach(engine: CheckpointTarget): () => void {
    const offDone = this.controller.onCompleted(() => engine.onCheckpointCompleted());
    const offFail = this.controller.onFailed(() => engine.onCheckpointFailed());
    return () => {
      offDone();
      offFail();
    };
  }
}
