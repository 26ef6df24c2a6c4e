/**
 * Shadow mode ("what would COLO do with this traffic"): no VM to checkpoint, so every request
 * starts and completes on the next microtask. Requests made in the same synchronous run are
 * coalesced, like any pending checkpoint. Used for offline (pcap) runs and tests.
 */
import type { Logger } from '../util/log.js';
import { BaseCheckpointController } from './checkpoint.js';
import type { Checkpoint } from './checkpoint.js';

export class ShadowCheckpointController extends BaseCheckpointController {
  constructor(options: { logger?: Logger } = {}) {
    super(options.logger, 'checkpoint-shadow');
  }

  protected trigger(cp: Checkpoint): void {
    queueMicrotask(() => {
      if (this.current !== cp) return;
      this.markStarted('requested');
      this.markCompleted();
    });
  }
}
