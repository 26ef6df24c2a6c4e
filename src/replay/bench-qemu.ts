/**
 * QEMU's colo-compare over the same sockets and framing (QemuColoCompare: guest-less QEMU,
 * unix socket chardevs that QEMU listens on, notify_dev). Every DO_CHECKPOINT is answered at
 * once with COLO_CHECKPOINT (QEMU then releases every held primary frame), the counterpart of
 * colo-proxy's shadow mode. notify_dev carries no cause, flow or offset, so QEMU's checkpoints
 * are scored from counts (bench-score.ts `scoreCounts`). Silent drops (queue over
 * max_queue_size) are counted from QEMU's trace event; QEMU has no packet pool.
 */
import { QemuColoCompare } from './qemu-compare.js';
import type { CheckpointEvent } from './bench-score.js';
import type { BenchRig, ReleaseRecorder, RigFinal } from './bench-run.js';
import type { FrameMatcher } from './bench-workload.js';
import type { EngineSettings } from './bench-inprocess.js';

export async function startQemuRig(rec: ReleaseRecorder, matcher: FrameMatcher, s: EngineSettings): Promise<BenchRig> {
  let measuring = false;
  let t0 = 0;
  let dropsAtStart = 0;
  const events: CheckpointEvent[] = [];
  const cmp: QemuColoCompare = await QemuColoCompare.start({
    compareTimeout: s.compareTimeoutMs,
    expiredScanCycle: s.expiredScanCycleMs,
    maxQueueSize: s.maxQueueSize,
    onRelease: (h) => {
      const pool = cmp.pool;
      rec.onBytes(matcher, measuring, pool, h, pool.time[h]!);
      pool.release(h);
    },
    onCheckpointRequest: (t, index) => {
      if (measuring) events.push({ atMs: t - t0, checkpoint: index + 1, requested: true, cause: null, flow: null, offset: null, offsetUnit: null });
      cmp.checkpointDone();
    },
  });
  return {
    engine: 'qemu',
    mode: 'sockets',
    targets: cmp.targets,
    beginMeasured(start) {
      t0 = start;
      measuring = true;
      dropsAtStart = cmp.drops;
    },
    async stop(): Promise<RigFinal> {
      measuring = false;
      const peak = cmp.processStats()?.peakRssKiB ?? null;
      const drops = cmp.drops - dropsAtStart;
      const errs = cmp.errors.map((e) => e.message);
      await cmp.stop();
      const problems: string[] = [];
      if (errs.length > 0) problems.push(`socket errors: ${errs.slice(0, 3).join('; ')}`);
      // Its own reliability is part of what the bench reports about the competitor.
      if (cmp.startFailures.length > 0) problems.push(`QEMU crashed ${cmp.startFailures.length}× during start-up (replaced)`);
      const problem = problems.join('; ');
      return { events, causesKnown: false, peakRssKiB: peak, poolHighWater: null, drops, problem };
    },
  };
}
