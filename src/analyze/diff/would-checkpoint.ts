/**
 * "Would checkpoint" for `colo-proxy diff`: replay a primary / secondary capture pair through
 * colo-proxy's own CompareEngine in shadow mode (every requested checkpoint completes at once
 * and flows keep their alignment, as `colo-proxy compare` does with pcap: inputs) and,
 * optionally, through the model of QEMU 7.2 colo-compare's rules (qemu-rules.ts), so an
 * operator sees how many checkpoints each would ask for on their own traffic, and why.
 */
import { ShadowCheckpointPort } from '../../compare/checkpoint-port.js';
import type { DivergenceCause, DivergenceRecord } from '../../compare/divergence.js';
import { DIVERGENCE_CAUSES } from '../../compare/divergence.js';
import { CompareEngine, type CompareAccounting } from '../../compare/engine.js';
import type { CompareLimits } from '../../compare/limits.js';
import { replayCapturePair } from '../../compare/offline-replay.js';
import { PacketPool } from '../../packet/pool.js';
import { qemuRulesFromCaptures, type QemuCheckpointCause, type QemuRulesReport } from './qemu-rules.js';
import type { FlowDiff, FlowWouldCheckpoint, WouldCheckpointSummary } from './types.js';

export interface WouldCheckpointOptions {
  /** compare_timeout (ms), both engines; default 3000. */
  compareTimeoutMs?: number;
  /** expired_scan_cycle (ms), both engines; default 1000. */
  expiredScanCycleMs?: number;
  /** max_queue_size, both engines; default 1024. */
  maxQueueSize?: number;
  /** Also run the QEMU 7.2 rules model. Default false. */
  qemuRules?: boolean;
  /**
   * After the last frame, let the clock run this long (ms) so packets still held reach
   * compare_timeout, as on a live link. Default compare_timeout + 2 scan cycles.
   */
  drainMs?: number;
  /** Records kept (the oldest go first; all are counted). Default 1000. */
  maxRecords?: number;
}

/** colo-proxy's engine on the pair. */
export interface ColoCheckpointReport {
  engine: 'colo-proxy';
  /** Checkpoints requested up to the last frame (each completes at once in shadow mode). */
  checkpoints: number;
  /** Those checkpoints per cause of the divergence that requested it. */
  byCause: Record<DivergenceCause, number>;
  /**
   * Checkpoints after the last frame, while the clock ran on (`drainMs`): primary frames still
   * held at the end of the capture reaching compare_timeout (the secondary's partner may lie
   * beyond the capture's end). Not in `checkpoints`.
   */
  atEnd: number;
  /** Divergences found (a checkpoint may gather several). */
  divergences: number;
  /** The divergence records (engine vocabulary: flow text, offset, cause, bytes). */
  records: DivergenceRecord[];
  accounting: CompareAccounting;
}

export interface WouldCheckpointResult {
  coloProxy: ColoCheckpointReport;
  /** Present with `qemuRules`. */
  qemu?: QemuRulesReport;
  /** Frames fed [primary, secondary] and the capture time span (ms). */
  frames: [number, number];
  firstMs: number;
  lastMs: number;
}

/**
 * Replay the pair and report the checkpoints. Throws the reader's CaptureError for damaged
 * captures (the CLI maps it to exit 2).
 */
export async function wouldCheckpoint(primaryPath: string, secondaryPath: string, opts: WouldCheckpointOptions = {}): Promise<WouldCheckpointResult> {
  const compareTimeoutMs = opts.compareTimeoutMs ?? 3000;
  const expiredScanCycleMs = opts.expiredScanCycleMs ?? 1000;
  const drainMs = opts.drainMs ?? compareTimeoutMs + 2 * expiredScanCycleMs;
  const pool = new PacketPool();
  const port = new ShadowCheckpointPort();
  const limits: Partial<CompareLimits> = {
    compareTimeoutMs,
    expiredScanCycleMs,
    maxRecords: opts.maxRecords ?? 1000,
    ...(opts.maxQueueSize !== undefined ? { maxFlowHeldPackets: opts.maxQueueSize } : {}),
  };
  const byCause = Object.fromEntries(DIVERGENCE_CAUSES.map((c) => [c, 0])) as Record<DivergenceCause, number>;
  let divergences = 0;
  let checkpoints = 0;
  let atEnd = 0;
  const requests: { atMs: number; cause: DivergenceCause }[] = [];
  const engine = new CompareEngine({
    pool,
    checkpoint: port,
    limits,
    release: (h) => pool.release(h),
    onDivergence: (r) => {
      divergences++;
      if (r.requested) requests.push({ atMs: r.atMs, cause: r.cause });
    },
  });
  port.attach(engine);
  // Held packets would time out on a live link: the replay runs the clock on to give them the
  // time to, as `colo-proxy compare` does; requests after the last frame are counted apart.
  const fed = await replayCapturePair(primaryPath, secondaryPath, pool, engine, { drainMs });
  for (const q of requests) {
    if (q.atMs > fed.lastMs) atEnd++;
    else {
      checkpoints++;
      byCause[q.cause]++;
    }
  }
  const accounting = engine.accounting();
  const records = engine.records().slice();
  engine.close();
  const result: WouldCheckpointResult = {
    coloProxy: { engine: 'colo-proxy', checkpoints, byCause, atEnd, divergences, records, accounting },
    frames: fed.frames,
    firstMs: fed.firstMs,
    lastMs: fed.lastMs,
  };
  if (opts.qemuRules === true) {
    result.qemu = qemuRulesFromCaptures(primaryPath, secondaryPath, {
      compareTimeoutMs,
      expiredScanCycleMs,
      drainMs,
      ...(opts.maxQueueSize !== undefined ? { maxQueueSize: opts.maxQueueSize } : {}),
    });
  }
  return result;
}

// ---------------- mapping onto the diff result (C's model) ----------------

/** Endpoints and protocol of a flow text `"A:P-B:Q/PROTO"` (null when it is not of that form). */
export function parseFlowText(flow: string): { a: string; b: string; proto: string } | null {
  const slash = flow.lastIndexOf('/');
  if (slash < 0) return null;
  const ends = flow.slice(0, slash);
  // IPv4 and bracketed IPv6 endpoints contain no '-'.
  const dash = ends.indexOf('-');
  if (dash < 0) return null;
  return { a: ends.slice(0, dash), b: ends.slice(dash + 1), proto: flow.slice(slash + 1).toLowerCase() };
}

/** True when flow text `flow` (either direction) names the diff flow `f`. */
export function flowTextMatches(flow: string, f: Pick<FlowDiff, 'client' | 'server' | 'protocol'>): boolean {
  const t = parseFlowText(flow);
  if (t === null) return false;
  const proto = t.proto;
  // Neighbour discovery is ICMPv6 to the engine; other IP protocols are "IPnn".
  const same = proto === f.protocol || (f.protocol === 'nd' && proto === 'icmpv6') || (f.protocol === 'other' && proto.startsWith('ip'));
  if (!same) return false;
  return (t.a === f.client && t.b === f.server) || (t.a === f.server && t.b === f.client);
}

/** A checkpoint as shown per flow (both engines). */
export interface FlowCheckpointMark {
  /** True when it falls after the capture's last frame (a held frame timing out; see `atEnd`). */
  atEnd: boolean;
  engine: 'colo-proxy' | 'qemu';
  checkpoint: number;
  atMs: number;
  cause: DivergenceCause | QemuCheckpointCause;
  /** 'server-to-client' when the flow text runs server → client, else 'client-to-server'. */
  direction: 'client-to-server' | 'server-to-client';
  offset: number | null;
  offsetUnit: 'byte' | 'datagram' | null;
}

/** The checkpoints of both engines that fall in diff flow `f`, in time order. */
export function checkpointsOfFlow(r: WouldCheckpointResult, f: Pick<FlowDiff, 'client' | 'server' | 'protocol'>): FlowCheckpointMark[] {
  const out: FlowCheckpointMark[] = [];
  const dir = (flow: string): 'client-to-server' | 'server-to-client' => (parseFlowText(flow)?.a === f.server ? 'server-to-client' : 'client-to-server');
  for (const x of r.coloProxy.records) {
    if (!x.requested || !flowTextMatches(x.flow, f)) continue;
    out.push({ atEnd: x.atMs > r.lastMs, engine: 'colo-proxy', checkpoint: x.checkpoint, atMs: x.atMs, cause: x.cause, direction: dir(x.flow), offset: x.offset, offsetUnit: x.offsetUnit });
  }
  for (const x of r.qemu?.records ?? []) {
    if (!flowTextMatches(x.flow, f)) continue;
    out.push({ atEnd: x.atMs > r.lastMs, engine: 'qemu', checkpoint: x.checkpoint, atMs: x.atMs, cause: x.cause, direction: dir(x.flow), offset: x.offset, offsetUnit: x.offsetUnit });
  }
  return out.sort((a, b) => a.atMs - b.atMs);
}

/** Run-wide figures for `DiffSummary.wouldCheckpoint`. */
export function wouldCheckpointSummary(r: WouldCheckpointResult): WouldCheckpointSummary {
  const s: WouldCheckpointSummary = {
    coloProxy: r.coloProxy.checkpoints,
    coloProxyByCause: { ...r.coloProxy.byCause },
    coloProxyAtEnd: r.coloProxy.atEnd,
    coloProxyDivergences: r.coloProxy.divergences,
  };
  if (r.qemu !== undefined) {
    s.qemu = r.qemu.checkpoints;
    s.qemuByCause = { ...r.qemu.byCause };
    s.qemuAtEnd = r.qemu.atEnd;
    s.qemuDroppedFrames = r.qemu.primary.dropped;
  }
  return s;
}

/** Per-flow figures for `FlowDiff.wouldCheckpoint` (with the checkpoint marks). */
export function wouldCheckpointOfFlow(r: WouldCheckpointResult, f: FlowDiff): FlowWouldCheckpoint {
  const marks = checkpointsOfFlow(r, f);
  const count = (e: FlowCheckpointMark['engine']): number => marks.filter((m) => m.engine === e && !m.atEnd).length;
  const w: FlowWouldCheckpoint = { coloProxy: count('colo-proxy'), checkpoints: marks };
  if (r.qemu !== undefined) w.qemu = count('qemu');
  return w;
}

/** Fill `summary.wouldCheckpoint` and every `flows[i].wouldCheckpoint` of a diff result in place. */
export function attachWouldCheckpoint(result: { summary: { wouldCheckpoint?: WouldCheckpointSummary }; flows: FlowDiff[] }, r: WouldCheckpointResult): void {
  result.summary.wouldCheckpoint = wouldCheckpointSummary(r);
  for (const f of result.flows) f.wouldCheckpoint = wouldCheckpointOfFlow(r, f);
}
