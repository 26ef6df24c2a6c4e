/**
 * Compare engine limits: QEMU's colo-compare properties plus the caps QEMU lacks. Every cap
 * has a policy (stated here once) and a counter (CompareStats):
 *
 * - `compareTimeoutMs` / `expiredScanCycleMs` (QEMU's compare_timeout / expired_scan_cycle):
 *   every scan cycle, a primary packet held longer than the timeout is a divergence
 *   ('timeout'): a checkpoint is requested and the packet is released when it completes.
 *   Secondary data waiting that long for a primary partner is dropped (counted), never a
 *   checkpoint by itself (the secondary's output is never sent anywhere).
 * - Held budgets (`maxFlowHeldBytes`, `maxFlowHeldPackets`, `maxHeldBytes`,
 *   `maxHeldPackets`): bytes / frames held for comparison, primary and secondary together
 *   (primary frames, secondary frames waiting for a partner, copied stream bytes the
 *   secondary is ahead by). Passing one is a divergence ('budget'): a checkpoint is
 *   requested and the engine asks its input owner to pause (`wantsInput()` false,
 *   `onBackpressure(true)`) until the checkpoint completes. A held primary packet is NEVER
 *   dropped: frames that keep arriving are still accepted and held. QEMU instead drops the
 *   new packet silently past `max_queue_size` (reference §6.5).
 * - `checkpointRetryMs`: a requested checkpoint that has not completed after this long is
 *   requested again (a controller that lost the request must not stall the engine forever).
 */
import { ColoError } from '../errors.js';
import type { ReassemblyLimits } from '../flow/tcp-types.js';
import { DEFAULT_TIMEOUTS, type FlowTimeouts } from '../flow/table-options.js';

export interface CompareLimits {
  /** Age (ms) after which an unmatched primary packet is a divergence. QEMU default 3000. */
  compareTimeoutMs: number;
  /** How often (ms) `tick` looks for such packets. QEMU default 1000. */
  expiredScanCycleMs: number;
  /** Held bytes per flow (primary + secondary). Default 4 MiB. */
  maxFlowHeldBytes: number;
  /** Held frames per flow (primary + secondary); QEMU's max_queue_size. Default 1024. */
  maxFlowHeldPackets: number;
  /** Held bytes in all flows. Default 32 MiB. */
  maxHeldBytes: number;
  /** Held frames in all flows. Default: half the pool's slots. */
  maxHeldPackets: number;
  /** Re-request a checkpoint still pending after this long (ms). Default 2 × compareTimeoutMs. */
  checkpointRetryMs: number;
  /** Flows the engine's flow table holds (LRU eviction past it). Default 65 536. */
  maxFlows: number;
  /** ARP (sender, target) pairs tracked at once; past it ARP frames are uncompared. Default 4096. */
  maxArpPairs: number;
  /** Divergence records kept in `records()` (the oldest go first; all are counted). Default 1000. */
  maxRecords: number;
  /** Bytes of each side shown in a record from the first differing byte. Default 32. */
  diffBytes: number;
  /**
   * Per-direction TCP reassembly limits (flow/tcp-types.ts), applied to each side. The
   * retransmission window defaults to 0 here: conflicting retransmissions are not
   * divergences (see tcp-conn.ts), so keeping delivered bytes to verify them buys nothing.
   */
  reassembly: Partial<ReassemblyLimits>;
  /** Global cap on pool memory pinned by out-of-order TCP data. Default: a quarter of the pool. */
  reassemblyBudgetBytes: number;
  /**
   * Flow table idle timeouts; the TCP close linger defaults to compareTimeout + 2 scan cycles,
   * and the embryonic timeout to the established one: the engine sees the guest's output only
   * (one direction), so its TCP flows never leave the embryonic state, and a connection idle
   * for the flow table's short embryonic timeout would be forgotten and picked up again
   * mid-stream (where a guest-initiated connection's secondary, in its own sequence space,
   * cannot be aligned: a spurious checkpoint).
   */
  flowTimeouts: Partial<FlowTimeouts>;
}

export const DEFAULT_COMPARE_TIMEOUT_MS = 3000;
export const DEFAULT_EXPIRED_SCAN_CYCLE_MS = 1000;

/** Defaults that do not depend on the pool (see `resolveCompareLimits` for the others). */
export const DEFAULT_COMPARE_LIMITS = Object.freeze({
  compareTimeoutMs: DEFAULT_COMPARE_TIMEOUT_MS,
  expiredScanCycleMs: DEFAULT_EXPIRED_SCAN_CYCLE_MS,
  maxFlowHeldBytes: 4 * 1024 * 1024,
  maxFlowHeldPackets: 1024,
  maxHeldBytes: 32 * 1024 * 1024,
  maxFlows: 65_536,
  maxArpPairs: 4096,
  maxRecords: 1000,
  diffBytes: 32,
});

function positive(name: string, v: number, integer = true): void {
  if (!(typeof v === 'number' && v > 0 && Number.isFinite(v)) || (integer && !Number.isInteger(v))) {
    throw new ColoError('ERR_INVALID_ARGUMENT', `compare limit ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${String(v)}`);
  }
}

/**
 * Fill defaults and validate (cold path; throws ERR_INVALID_ARGUMENT naming the bad value).
 * `poolSlots` / `poolBytes` are the pool's capacity and reserved bytes (pool-relative defaults).
 */
export function resolveCompareLimits(partial: Partial<CompareLimits> | undefined, poolSlots: number, poolBytes: number): CompareLimits {
  const p = partial ?? {};
  const timeout = p.compareTimeoutMs ?? DEFAULT_COMPARE_TIMEOUT_MS;
  const cycle = p.expiredScanCycleMs ?? DEFAULT_EXPIRED_SCAN_CYCLE_MS;
  const l: CompareLimits = {
    compareTimeoutMs: timeout,
    expiredScanCycleMs: cycle,
    maxFlowHeldBytes: p.maxFlowHeldBytes ?? DEFAULT_COMPARE_LIMITS.maxFlowHeldBytes,
    maxFlowHeldPackets: p.maxFlowHeldPackets ?? DEFAULT_COMPARE_LIMITS.maxFlowHeldPackets,
    maxHeldBytes: p.maxHeldBytes ?? DEFAULT_COMPARE_LIMITS.maxHeldBytes,
    maxHeldPackets: p.maxHeldPackets ?? Math.max(1, Math.floor(poolSlots / 2)),
    checkpointRetryMs: p.checkpointRetryMs ?? 2 * timeout,
    maxFlows: p.maxFlows ?? DEFAULT_COMPARE_LIMITS.maxFlows,
    maxArpPairs: p.maxArpPairs ?? DEFAULT_COMPARE_LIMITS.maxArpPairs,
    maxRecords: p.maxRecords ?? DEFAULT_COMPARE_LIMITS.maxRecords,
    diffBytes: p.diffBytes ?? DEFAULT_COMPARE_LIMITS.diffBytes,
    reassembly: { retxWindowBytes: 0, ...p.reassembly },
    reassemblyBudgetBytes: p.reassemblyBudgetBytes ?? Math.max(1, Math.floor(poolBytes / 4)),
    flowTimeouts: { tcpCloseLingerMs: timeout + 2 * cycle, tcpEmbryonicMs: p.flowTimeouts?.tcpEstablishedMs ?? DEFAULT_TIMEOUTS.tcpEstablishedMs, ...p.flowTimeouts },
  };
  positive('compareTimeoutMs', l.compareTimeoutMs, false);
  positive('expiredScanCycleMs', l.expiredScanCycleMs, false);
  positive('maxFlowHeldBytes', l.maxFlowHeldBytes);
  positive('maxFlowHeldPackets', l.maxFlowHeldPackets);
  positive('maxHeldBytes', l.maxHeldBytes);
  positive('maxHeldPackets', l.maxHeldPackets);
  positive('checkpointRetryMs', l.checkpointRetryMs, false);
  positive('maxFlows', l.maxFlows);
  positive('maxArpPairs', l.maxArpPairs);
  positive('maxRecords', l.maxRecords);
  positive('diffBytes', l.diffBytes);
  positive('reassemblyBudgetBytes', l.reassemblyBudgetBytes);
  return l;
}
