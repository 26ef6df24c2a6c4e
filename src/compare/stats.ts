/**
 * Compare engine counters. Plain numeric fields updated in place; `snapshot()` copies them
 * into a plain object (cold path). Every limit and every way a frame leaves the engine has a
 * counter here.
 *
 * Accounting invariant (checked by `CompareEngine.accounting()` and every test):
 *   primary.received = primary.released + primary.held + primary.unparseable
 * `released` counts frames handed to the consumer after comparison, gating, a checkpoint or
 * close; `unparseable` counts frames handed over at once because the engine cannot compare
 * them (see `unparseableBy`). Nothing else happens to a primary frame.
 */
import { DIVERGENCE_CAUSES, type AlignmentRule, type DivergenceCause } from './divergence.js';

/** Why a primary frame was released (after being held, or at once for pre-origin segments). */
export interface ReleasedBy {
  /** Every payload byte / the whole datagram matched the secondary. */
  matched: number;
  /** Payload-less TCP (SYN, SYN-ACK, FIN, RST, pure ACK) once the secondary reached the same point. */
  control: number;
  /** TCP data entirely before the aligned origin (retransmission of verified data, mid-stream pickup, before a checkpoint). */
  preOrigin: number;
  /** Flushed by a completed checkpoint. */
  checkpoint: number;
  /** Flushed by `close()`. */
  close: number;
}

/** How shadow-mode re-anchors were chosen (src/compare/resync.ts). */
export interface ReanchorBy {
  /** RESYNC_PROOF equal bytes at some shift (changed, inserted or missing bytes). */
  shift: number;
  /** Both sides' ends lined up with at least RESYNC_TAIL equal trailing bytes. */
  tail: number;
  /** Both streams ended (FIN): aligned at their ends. */
  end: number;
  /** The held primary frames reached compare_timeout first: aligned at the ends at hand. */
  forced: number;
  /** Each side's own end without looking at the bytes: a gap, a budget freeze, more than the window. */
  ownEnds: number;
}

export interface SideCounters {
  /** Frames given to the engine on this input. */
  received: number;
  /** Frames on this input that could not be compared, by reason name. */
  unparseableBy: Record<string, number>;
}

export interface CompareStatsSnapshot {
  primary: SideCounters & {
    released: number;
    held: number;
    heldBytes: number;
    unparseable: number;
    releasedBy: ReleasedBy;
  };
  secondary: SideCounters & {
    /** Frames the engine consumed (matched, compared, or used only for state). */
    consumed: number;
    /** Frames held now (waiting for a partner / an alignment) and their bytes incl. copied stream bytes. */
    held: number;
    heldBytes: number;
    /** Dropped without comparison, by reason. */
    droppedBy: Record<string, number>;
  };
  checkpoints: {
    requested: number;
    /** Divergences that joined a pending request. */
    coalesced: number;
    retried: number;
    completed: number;
    /** Completions the engine had not asked for (QEMU's periodic checkpoints). */
    unsolicited: number;
    /** Failures reported by the controller (the request is retried). */
    failed: number;
  };
  divergences: Record<DivergenceCause, number>;
  /** Which alignment rule each TCP flow direction (incarnation) got. */
  alignment: Record<AlignmentRule, number>;
  /** Shadow mode: how each diverged TCP direction was re-anchored after its checkpoint (docs/compare.md). */
  reanchorBy: ReanchorBy;
  budget: {
    flowBytesHits: number;
    flowPacketsHits: number;
    globalBytesHits: number;
    globalPacketsHits: number;
    /** A frame's pool slot class was over half in use (e.g. 64 KiB slots for GSO frames). */
    poolClassHits: number;
    /** Times input was asked to pause. */
    backpressureOn: number;
    /** True while paused. */
    paused: boolean;
  };
  /** Primary frames held as flows left the table, and flows that left holding some. */
  orphaned: { frames: number; flows: number };
  /** Runs of retransmitted bytes that differed from the first copy, per side (not divergences). */
  conflicts: { primary: number; secondary: number };
  /** Records dropped from the bounded record list (all were delivered to onDivergence). */
  recordsDropped: number;
}

function zeroCauses(): Record<DivergenceCause, number> {
  const r = {} as Record<DivergenceCause, number>;
  for (const c of DIVERGENCE_CAUSES) r[c] = 0;
  return r;
}

export class CompareStats {
  pReceived = 0;
  pReleased = 0;
  pUnparseable = 0;
  readonly pUnparseableBy: Record<string, number> = {};
  readonly releasedBy: ReleasedBy = { matched: 0, control: 0, preOrigin: 0, checkpoint: 0, close: 0 };
  sReceived = 0;
  sConsumed = 0;
  /** Retransmissions carrying bytes different from those first sent (first wins; not divergences). */
  pConflicts = 0;
  sConflicts = 0;
  readonly sUnparseableBy: Record<string, number> = {};
  readonly sDroppedBy: Record<string, number> = {};
  sHeldBytes = 0;
  sHeld = 0;
  ckptRequested = 0;
  ckptCoalesced = 0;
  ckptRetried = 0;
  ckptCompleted = 0;
  ckptUnsolicited = 0;
  ckptFailed = 0;
  readonly divergences = zeroCauses();
  readonly alignment: Record<AlignmentRule, number> = { 'primary-space': 0, 'own-space': 0, midstream: 0, unresolved: 0, restarted: 0 };
  readonly reanchorBy: ReanchorBy = { shift: 0, tail: 0, end: 0, forced: 0, ownEnds: 0 };
  flowBytesHits = 0;
  flowPacketsHits = 0;
  globalBytesHits = 0;
  globalPacketsHits = 0;
  poolClassHits = 0;
  backpressureOn = 0;
  orphanedFrames = 0;
  orphanedFlows = 0;
  recordsDropped = 0;

  /** Count a dropped secondary frame (reason names are few and fixed: no per-call allocation once seen). */
  sDrop(reason: string, n = 1): void {
    this.sDroppedBy[reason] = (this.sDroppedBy[reason] ?? 0) + n;
  }

  snapshot(pHeld: number, pHeldBytes: number, paused: boolean): CompareStatsSnapshot {
    return {
      primary: {
        received: this.pReceived,
        released: this.pReleased,
        held: pHeld,
        heldBytes: pHeldBytes,
        unparseable: this.pUnparseable,
        unparseableBy: { ...this.pUnparseableBy },
        releasedBy: { ...this.releasedBy },
      },
      secondary: {
        received: this.sReceived,
        consumed: this.sConsumed,
        held: this.sHeld,
        heldBytes: this.sHeldBytes,
        unparseableBy: { ...this.sUnparseableBy },
        droppedBy: { ...this.sDroppedBy },
      },
      checkpoints: {
        requested: this.ckptRequested,
        coalesced: this.ckptCoalesced,
        retried: this.ckptRetried,
        completed: this.ckptCompleted,
        unsolicited: this.ckptUnsolicited,
        failed: this.ckptFailed,
      },
      divergences: { ...this.divergences },
      alignment: { ...this.alignment },
      reanchorBy: { ...this.reanchorBy },
      budget: {
        flowBytesHits: this.flowBytesHits,
        flowPacketsHits: this.flowPacketsHits,
        globalBytesHits: this.globalBytesHits,
        globalPacketsHits: this.globalPacketsHits,
        poolClassHits: this.poolClassHits,
        backpressureOn: this.backpressureOn,
        paused,
      },
      orphaned: { frames: this.orphanedFrames, flows: this.orphanedFlows },
      conflicts: { primary: this.pConflicts, secondary: this.sConflicts },
      recordsDropped: this.recordsDropped,
    };
  }
}
