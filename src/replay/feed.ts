/**
 * Execute a lockstep plan: write the primary and secondary frames to two framed targets in the
 * planned order, at the requested pace, honouring backpressure. Engine-neutral on purpose: the
 * replay bench feeds QEMU's colo-compare and colo-proxy through this same code, with the same
 * framing and pacing, so their figures compare fairly.
 *
 * Pacing:
 * - default: as fast as the targets accept (yielding to the event loop every `yieldEvery`
 *   frames so the output side is read meanwhile, and waiting for 'drain' under backpressure);
 * - `pps`: primary frames at a fixed rate (the k-th primary frame is due k/pps s after the
 *   start); secondary frames go out as the plan interleaves them;
 * - `speed`: both sides at capture timing scaled by `speed` (2 = twice as fast), from `timeMs`.
 * Frames that are due are written in one burst; the feeder sleeps until the next one is due.
 * The schedule is the project's Pacer (pacer.ts): `pps` is its 'pps' mode fed with primary
 * frames only, `speed` its 'multiplier' mode anchored at the earliest frame of both sides.
 */
import { setImmediate as immediate } from 'node:timers/promises';
import { ColoError } from '../errors.js';
import type { FeedFrame, LockstepPlan } from './lockstep.js';
import { Pacer, waitUntil } from './pacer.js';

/** Where frames go: a FramedChannel (or anything framing the same way) plus a drain signal. */
export interface FeedTarget {
  /** Append one frame; false when it was refused or dropped (counted, not retried). */
  writeFrame(buf: Buffer, off: number, len: number, vnetHdrLen: number): boolean;
  /** Hand buffered bytes to the transport now. */
  flush(): void;
  /** True while the transport is backpressured. */
  readonly backpressured: boolean;
  /** Resolves once the backpressure clears (immediately when there is none). */
  whenDrained(): Promise<void>;
}

export interface PaceOptions {
  /** Primary frames per second; exclusive with `speed`. */
  pps?: number;
  /** Replay at capture timing × speed (needs `timeMs` on every frame); exclusive with `pps`. */
  speed?: number;
}

export interface RunFeedOptions extends PaceOptions {
  /** Yield to the event loop after this many frames; default 256. */
  yieldEvery?: number;
  /**
   * …or after this many bytes (both sides), whichever comes first; default 65 536. While the
   * feeder runs, nothing reads the engine's output in this process; bounding the burst keeps
   * the output socket from filling up (a full outdev makes QEMU reorder its output, §9 B1).
   */
  yieldBytes?: number;
  signal?: AbortSignal;
  /** Called at every yield point and at the end with frames written (both sides) and the total. */
  onProgress?(written: number, total: number): void;
}

export interface FeedResult {
  /** Frames handed to each target [primary, secondary]. */
  written: [number, number];
  /** Frames the targets refused or dropped [primary, secondary]. */
  refused: [number, number];
  /** performance.now() at the first and after the last write. */
  startMs: number;
  endMs: number;
  /** True when the signal stopped the feed early. */
  aborted: boolean;
  /** performance.now() when each frame was handed to its target (NaN if never written). */
  primaryWriteMs: Float64Array;
  secondaryWriteMs: Float64Array;
  /** The plan's overruns (writes beyond maxAhead). */
  overruns: number;
}

function checkPace(o: PaceOptions): void {
  if (o.pps !== undefined && o.speed !== undefined) throw new ColoError('ERR_INVALID_ARGUMENT', 'pps and speed are exclusive');
  if (o.pps !== undefined && !(Number.isFinite(o.pps) && o.pps > 0)) throw new ColoError('ERR_INVALID_ARGUMENT', `pps must be > 0, got ${o.pps}`);
  if (o.speed !== undefined && !(Number.isFinite(o.speed) && o.speed > 0)) throw new ColoError('ERR_INVALID_ARGUMENT', `speed must be > 0, got ${o.speed}`);
}

/** Write the frames of `plan` to the two targets. */
export async function runFeed(
  plan: LockstepPlan,
  primary: readonly FeedFrame[],
  secondary: readonly FeedFrame[],
  targets: { primary: FeedTarget; secondary: FeedTarget },
  options: RunFeedOptions = {},
): Promise<FeedResult> {
  checkPace(options);
  const steps = plan.steps;
  if (steps.length !== primary.length + secondary.length) {
    throw new ColoError('ERR_INVALID_ARGUMENT', `plan has ${steps.length} steps for ${primary.length} + ${secondary.length} frames`);
  }
  const yieldEvery = options.yieldEvery ?? 256;
  if (!(Number.isInteger(yieldEvery) && yieldEvery >= 1)) throw new ColoError('ERR_INVALID_ARGUMENT', `yieldEvery must be an integer >= 1, got ${yieldEvery}`);
  const yieldBytes = options.yieldBytes ?? 65_536;
  if (!(yieldBytes >= 1)) throw new ColoError('ERR_INVALID_ARGUMENT', `yieldBytes must be >= 1, got ${yieldBytes}`);
  const lists = [primary, secondary] as const;
  const tg = [targets.primary, targets.secondary] as const;
  const writeMs = [new Float64Array(primary.length).fill(NaN), new Float64Array(secondary.length).fill(NaN)] as const;
  const written: [number, number] = [0, 0];
  const refused: [number, number] = [0, 0];
  const pps = options.pps;
  const speed = options.speed;
  let tBase = 0;
  if (speed !== undefined) {
    tBase = Infinity;
    for (const l of lists) {
      for (const f of l) {
        if (!(typeof f.timeMs === 'number' && Number.isFinite(f.timeMs))) throw new ColoError('ERR_INVALID_ARGUMENT', 'speed pacing needs a finite timeMs on every frame');
        if (f.timeMs < tBase) tBase = f.timeMs;
      }
    }
  }
  const total = steps.length;
  const pacer = pps !== undefined ? new Pacer({ kind: 'pps', rate: pps }) : speed !== undefined ? new Pacer({ kind: 'multiplier', factor: speed }) : null;
  const t0 = performance.now();
  pacer?.anchor(t0, tBase);
  let sinceYield = 0;
  let bytesSinceYield = 0;
  let aborted = false;
  let n = 0;
  for (; n < total; n++) {
    const step = steps[n]!;
    const side = step & 1;
    const i = step >>> 1;
    const f = lists[side][i]!;
    // pps paces the primary frames only; the plan interleaves the secondary's between them.
    if (pacer !== null && (speed !== undefined || side === 0)) {
      const due = pacer.due(f.timeMs ?? 0, performance.now());
      if (due - performance.now() >= 1) {
        tg[0].flush();
        tg[1].flush();
        await waitUntil(due);
        sinceYield = 0;
        bytesSinceYield = 0;
      }
    }
    const off = f.off ?? 0;
    const len = f.len ?? f.buf.length - off;
    writeMs[side][i] = performance.now();
    if (tg[side].writeFrame(f.buf, off, len, f.vnetHdrLen ?? 0)) written[side]++;
    else refused[side]++;
    bytesSinceYield += len;
    if (++sinceYield >= yieldEvery || bytesSinceYield >= yieldBytes) {
      sinceYield = 0;
      bytesSinceYield = 0;
      options.onProgress?.(n + 1, total);
      if (options.signal?.aborted === true) {
        aborted = true;
        n++;
        break;
      }
      if (tg[0].backpressured || tg[1].backpressured) {
        tg[0].flush();
        tg[1].flush();
        if (tg[0].backpressured) await tg[0].whenDrained();
        if (tg[1].backpressured) await tg[1].whenDrained();
      } else await immediate();
    }
  }
  tg[0].flush();
  tg[1].flush();
  const endMs = performance.now();
  options.onProgress?.(n, total);
  return {
    written,
    refused,
    startMs: t0,
    endMs,
    aborted,
    primaryWriteMs: writeMs[0],
    secondaryWriteMs: writeMs[1],
    overruns: plan.overruns,
  };
}
