/**
 * What the per-flow comparators (tcp-conn.ts, datagram-compare.ts) need from the engine:
 * shared resources, the current time and epoch, and the few engine operations they trigger
 * (report a divergence, hold or drop a secondary frame). The engine implements it; the
 * comparators never see the engine class.
 */
import type { ReassemblyBudget } from '../flow/tcp-budget.js';
import type { PacketPool } from '../packet/pool.js';
import type { PacketView } from '../packet/view.js';
import type { AlignmentRule, DivergenceCause, DivergenceSide } from './divergence.js';
import type { EntryStore } from './entries.js';
import type { FlowCompare } from './flow-compare.js';
import type { CompareLimits } from './limits.js';
import type { CompareStats } from './stats.js';

export interface CompareContext {
  readonly pool: PacketPool;
  readonly store: EntryStore;
  readonly limits: CompareLimits;
  readonly stats: CompareStats;
  /** Global cap on pool memory pinned by out-of-order TCP bytes (shared by every reassembler). */
  readonly reassemblyBudget: ReassemblyBudget;
  /** A SYN-only TCP view used to give a reassembler its stream origin (fields set by the caller). */
  readonly synView: PacketView;
  /** A view for re-decoding held secondary segments. */
  readonly replayView: PacketView;
  /** Shadow mode: completed checkpoints do not resynchronise the secondary (alignment is re-chosen). */
  readonly shadow: boolean;
  /** Time of the call being processed (ms). */
  readonly nowMs: number;

  /**
   * Report a divergence of flow `fc` direction `dir`: counts it, records it, requests (or
   * joins) a checkpoint. Bytes of each side from the first differing byte are given as
   * (buffer, offset, available length); pass null for a side without bytes.
   */
  divergence(
    fc: FlowCompare,
    dir: number,
    cause: DivergenceCause,
    side: DivergenceSide,
    offset: number | null,
    unit: 'byte' | 'datagram' | null,
    pBuf: Uint8Array | null,
    pOff: number,
    pLen: number,
    sBuf: Uint8Array | null,
    sOff: number,
    sLen: number,
    alignment?: AlignmentRule,
  ): void;

  /**
   * A held budget was passed on flow `fc` (here: one side's copied stream bytes). Pauses the
   * input and reports a 'budget' divergence, once per flow per checkpoint interval.
   * `offset` is the matched point in that direction's stream.
   */
  overBudget(fc: FlowCompare, dir: number, side: DivergenceSide, offset: number | null, alignment?: AlignmentRule): void;

  /** Keep secondary frame `h` (the engine owns it) as entry `kind` of flow `fc`; returns the entry. */
  holdSecondary(fc: FlowCompare, kind: number, h: number, dir: number, gen: number, bytes: number): number;
  /** Take a held secondary entry back (accounting undone, entry freed); returns its handle. */
  unholdSecondary(fc: FlowCompare, e: number): number;
  /** Secondary stream bytes queued for flow `fc` changed by `delta`, the slots they pin by `pinned`. */
  secondaryBytes(fc: FlowCompare, delta: number, pinned: number): void;
  /** Drop a secondary handle the engine owns (released to the pool, counted by `reason`). */
  dropSecondary(h: number, reason: string): void;
  /** Count a secondary frame as consumed (compared or used for state). */
  consumedSecondary(): void;
}
