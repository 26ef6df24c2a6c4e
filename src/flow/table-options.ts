/**
 * Flow table configuration: limits, timeouts, and the memory arithmetic behind them.
 */
import { ColoError } from '../errors.js';

/** Idle timeouts per state, in milliseconds of the caller's clock (`nowMs`). */
export interface FlowTimeouts {
  /** SYN seen, handshake not complete. Short: half-open flows are the cheapest flood. */
  tcpEmbryonicMs: number;
  tcpEstablishedMs: number;
  /** FIN seen one or both ways, close not complete. */
  tcpClosingMs: number;
  /** Linger after a complete close or a RST, long enough to absorb retransmitted FINs/ACKs. */
  tcpCloseLingerMs: number;
  udpMs: number;
  /** ICMP and ICMPv6. */
  icmpMs: number;
  /** Every other IP protocol (SCTP, ESP, GRE…). */
  otherMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<FlowTimeouts> = Object.freeze({
  tcpEmbryonicMs: 30_000,
  tcpEstablishedMs: 300_000,
  tcpClosingMs: 120_000,
  tcpCloseLingerMs: 1_000,
  udpMs: 30_000,
  icmpMs: 10_000,
  otherMs: 30_000,
});

/** Default flow cap: 2^20 flows. */
export const DEFAULT_MAX_FLOWS = 1 << 20;
/** Default memory budget for the table's own arrays (owner data not included). */
export const DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024;

/**
 * Bytes per flow of the table's fixed arrays: the index line (11 key words, hash, chain link,
 * LRU prev/next/list: 16 × 4 = 64), the metadata line (8 doubles: created, lastSeen, touch,
 * flags, packets and bytes per direction = 64), FIN sequence numbers 8, creation serial 8,
 * live flag 1, free-id stack 4, owner data slot 8 (a pointer). Hash buckets come on top: 4
 * bytes × a power of two ≥ 2 × capacity (8–16 bytes per flow).
 */
export const BYTES_PER_FLOW = 64 + 64 + 8 + 8 + 1 + 4 + 8;

/** Total bytes the table allocates for `capacity` flows. */
export function tableBytes(capacity: number): number {
  let nb = 2;
  while (nb < capacity * 2) nb *= 2;
  return capacity * BYTES_PER_FLOW + nb * 4;
}

/**
 * The capacity a table gets: `maxFlows`, lowered until `tableBytes` fits `memoryBudget`.
 * Throws ERR_INVALID_ARGUMENT for non-positive/non-integer limits or a budget too small for
 * even one flow.
 */
export function effectiveCapacity(maxFlows: number, memoryBudget: number): number {
  if (!Number.isInteger(maxFlows) || maxFlows < 1 || maxFlows > 1 << 26) {
    throw new ColoError('ERR_INVALID_ARGUMENT', `maxFlows must be an integer in 1..${1 << 26}, got ${maxFlows}`);
  }
  if (!(memoryBudget > 0)) throw new ColoError('ERR_INVALID_ARGUMENT', `memoryBudgetBytes must be positive, got ${memoryBudget}`);
  if (tableBytes(maxFlows) <= memoryBudget) return maxFlows;
  // Binary search the largest capacity that fits (bucket rounding makes the cost stepwise).
  let lo = 0;
  let hi = maxFlows;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (tableBytes(mid) <= memoryBudget) lo = mid;
    else hi = mid - 1;
  }
  if (lo < 1) throw new ColoError('ERR_INVALID_ARGUMENT', `memoryBudgetBytes ${memoryBudget} cannot hold a single flow (${tableBytes(1)} bytes)`);
  return lo;
}

/** Merge and validate timeouts (each a positive finite number of ms). */
export function resolveTimeouts(t: Partial<FlowTimeouts> | undefined): FlowTimeouts {
  const out: FlowTimeouts = { ...DEFAULT_TIMEOUTS, ...t };
  for (const [k, v] of Object.entries(out)) {
    if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `flow timeout ${k} must be a positive finite number of ms, got ${String(v)}`);
    }
  }
  return out;
}
