/**
 * Offline replay: feed a primary and a secondary capture to a CompareEngine in timestamp
 * order, with the engine's clock = capture time. The one way the project runs the engine from
 * files: `colo-proxy compare` with `pcap:` inputs and the divergence analyzer's "would
 * checkpoint" both call it.
 *
 * Nothing is dropped: when the engine asks for backpressure (or the caller's `paused` says
 * so) the feed waits; when the pool is exhausted it waits for a slot.
 */
import { CaptureMerge, recordTimeMs, type MergeSourceStats } from '../capture/merge.js';
import { NO_HANDLE, type PacketPool } from '../packet/pool.js';
import { Pacer, waitUntil } from '../replay/pacer.js';
import type { CompareEngine } from './engine.js';

export interface OfflineReplayOptions {
  /** Replay at capture timing (default: as fast as possible). */
  realtime?: boolean;
  /** Extra pause condition of the caller (e.g. its output backed up); the engine's own backpressure is always honoured. */
  paused?: () => boolean;
  /**
   * After the last frame, run the engine's clock on to `lastMs + drainMs` (in scan-cycle steps), so
   * primary packets still held then time out as they would on a live link. 0 (default): stop
   * at the last frame.
   */
  drainMs?: number;
}

export interface OfflineReplayResult {
  /** Frames given to the engine: [primary, secondary]. */
  frames: [number, number];
  /** Capture time (ms) of the first and the last frame fed (NaN when none). */
  firstMs: number;
  lastMs: number;
  /** Per-source read statistics (records read, records skipped as not Ethernet). */
  sources: MergeSourceStats[];
}

const tick = (): Promise<void> => new Promise<void>((r) => setImmediate(r));

/**
 * Feed `primaryPath` (source 0) and `secondaryPath` to `engine`, merged by timestamp (ties:
 * primary first). The clock advances BEFORE each frame is given (`engine.tick(t)`), so a
 * primary packet that expired before a late partner arrives is reported as the timeout it
 * is, not matched. Does not close the engine.
 * Throws the reader's CaptureError for a damaged capture (after closing both files).
 */
export async function replayCapturePair(
  primaryPath: string,
  secondaryPath: string,
  pool: PacketPool,
  engine: CompareEngine,
  opts: OfflineReplayOptions = {},
): Promise<OfflineReplayResult> {
  const merge = new CaptureMerge([primaryPath, secondaryPath]);
  const pacer = opts.realtime === true ? new Pacer({ kind: 'multiplier', factor: 1 }) : null;
  const extra = opts.paused;
  const paused = (): boolean => !engine.wantsInput() || (extra !== undefined && extra());
  const frames: [number, number] = [0, 0];
  let firstMs = NaN;
  let lastMs = NaN;
  try {
    for (let i = merge.next(); i >= 0; i = merge.next()) {
      const rec = merge.record(i);
      const t = recordTimeMs(rec);
      if (pacer) await waitUntil(pacer.due(t, performance.now()));
      // A requested checkpoint may complete asynchronously (a controller completes on a
      // microtask): let it land before the next frame, as it would between packets on a link.
      engine.tick(t);
      if (engine.checkpointPending) await tick();
      // Backpressure offline: wait for the checkpoint (or the caller) instead of dropping.
      while (paused()) await new Promise<void>((r) => setTimeout(r, 1));
      let h = pool.copyIn(rec.buf, rec.off, rec.capLen);
      while (h === NO_HANDLE) {
        await new Promise<void>((r) => pool.whenAvailable(r));
        h = pool.copyIn(rec.buf, rec.off, rec.capLen);
      }
      pool.tag[h] = 0;
      if (i === 0) {
        engine.primary(h, t);
        frames[0]++;
      } else {
        engine.secondary(h, t);
        frames[1]++;
      }
      if (Number.isNaN(firstMs)) firstMs = t;
      lastMs = t;
    }
  } finally {
    merge.close();
  }
  const drain = opts.drainMs ?? 0;
  if (drain > 0 && !Number.isNaN(lastMs)) {
    // Step like the live scan timer does, letting each checkpoint land before the next scan.
    const step = Math.max(1, engine.limits.expiredScanCycleMs);
    for (let at = lastMs + Math.min(step, drain); ; at = Math.min(lastMs + drain, at + step)) {
      engine.tick(at);
      await tick();
      if (at >= lastMs + drain) break;
    }
  }
  return { frames, firstMs, lastMs, sources: merge.stats() };
}
