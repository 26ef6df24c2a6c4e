/**
 * Scoring checkpoints against a workload's ground truth (pure; unit tested).
 *
 * The rule (also in docs/bench.md):
 * - A checkpoint is described by its divergence records: the one that requested it and those
 *   that joined it while it was pending (coalesced: one checkpoint covers every divergence
 *   found before it completes, as in real COLO). A ground-truth entry is *found* by a
 *   checkpoint when one of its records names the same flow (same direction, text as the engine
 *   prints it, case-insensitive) and
 *   - TCP (offsetUnit 'byte'): an offset within `byteWindow` bytes of the entry's offset,
 *     either way (the engine reports the first differing byte it compares; a missing or extra
 *     segment is noticed at the start or end of what is missing), or
 *   - datagrams: an offset within `datagramWindow` datagrams (default 0: the same datagram), or
 *   - no offset at all (a timeout or budget on the whole flow).
 * - Matching is one to one, checkpoints in order, records in order within a checkpoint: each
 *   record claims the first matching entry not yet claimed. `missed`: entries not claimed.
 *   `spurious`: checkpoints none of whose records claimed an entry — so a second checkpoint
 *   for an already found divergence is spurious (it stops the VM again for nothing).
 * - Without per-checkpoint causes (QEMU's notify_dev only says DO_CHECKPOINT), use
 *   `scoreCounts`: missed = max(0, truth − checkpoints), spurious = max(0, checkpoints − truth).
 *   Those are lower bounds: a spurious checkpoint can hide a missed divergence.
 */
import type { GroundTruth } from './workload.js';

/** One divergence record as the bench saw it (QEMU: one per DO_CHECKPOINT, causes unknown). */
export interface CheckpointEvent {
  /** Time on the bench's clock (ms since the measured feed started); NaN when unknown. */
  atMs: number;
  /** The checkpoint this record asked for or joined (engine numbering). */
  checkpoint: number;
  /** True for the record that requested the checkpoint; false when it joined a pending one. */
  requested: boolean;
  /** Null when the engine does not say (QEMU). */
  cause: string | null;
  flow: string | null;
  offset: number | null;
  offsetUnit: 'byte' | 'datagram' | null;
}

export interface ScoreOptions {
  /** Default 65 536 bytes. */
  byteWindow?: number;
  /** Default 0 datagrams. */
  datagramWindow?: number;
}

export interface Score {
  /** Checkpoints scored (distinct checkpoint numbers, in order of appearance). */
  checkpoints: number;
  found: number;
  missed: number;
  spurious: number;
  /** Per ground-truth entry: the index (into the checkpoints) of the one that found it, or -1. */
  foundBy: number[];
  /** Per checkpoint: the ground-truth entries it explains (empty: spurious). */
  explains: number[][];
}

function matches(gt: GroundTruth, cp: CheckpointEvent, o: Required<ScoreOptions>): boolean {
  if (cp.flow === null || cp.flow.toLowerCase() !== gt.flow.toLowerCase()) return false;
  if (cp.offset === null) return true;
  if (cp.offsetUnit !== null && cp.offsetUnit !== gt.offsetUnit) return false;
  const w = gt.offsetUnit === 'byte' ? o.byteWindow : o.datagramWindow;
  return Math.abs(cp.offset - gt.offset) <= w;
}

/** Group records by checkpoint number, in order of first appearance. */
export function groupByCheckpoint(events: readonly CheckpointEvent[]): CheckpointEvent[][] {
  const groups = new Map<number, CheckpointEvent[]>();
  for (const e of events) {
    const g = groups.get(e.checkpoint);
    if (g === undefined) groups.set(e.checkpoint, [e]);
    else g.push(e);
  }
  return [...groups.values()];
}

/** Score records that carry their cause (colo-proxy's) against the ground truth. */
export function scoreCheckpoints(truth: readonly GroundTruth[], events: readonly CheckpointEvent[], options: ScoreOptions = {}): Score {
  const o: Required<ScoreOptions> = { byteWindow: options.byteWindow ?? 65_536, datagramWindow: options.datagramWindow ?? 0 };
  const groups = groupByCheckpoint(events);
  const foundBy = truth.map(() => -1);
  const explains = groups.map((records, c) => {
    const got: number[] = [];
    for (const r of records) {
      const t = truth.findIndex((gt, i) => foundBy[i] === -1 && matches(gt, r, o));
      if (t >= 0) {
        foundBy[t] = c;
        got.push(t);
      }
    }
    return got;
  });
  const found = foundBy.filter((i) => i >= 0).length;
  return { checkpoints: groups.length, found, missed: truth.length - found, spurious: explains.filter((e) => e.length === 0).length, foundBy, explains };
}

/** Score from counts alone (causes unknown): lower bounds, see the module comment. */
export function scoreCounts(truthCount: number, checkpointCount: number): { missed: number; spurious: number } {
  return { missed: Math.max(0, truthCount - checkpointCount), spurious: Math.max(0, checkpointCount - truthCount) };
}

/** Checkpoints per cause of the record that requested them ('unknown' when the engine does not say). */
export function causeCounts(events: readonly CheckpointEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const cp of events) {
    if (!cp.requested) continue;
    const k = cp.cause ?? 'unknown';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** Checkpoints requested (records with `requested`). */
export function checkpointCount(events: readonly CheckpointEvent[]): number {
  let n = 0;
  for (const e of events) if (e.requested) n++;
  return n;
}
