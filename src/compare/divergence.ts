/**
 * Divergence records: what the engine found, in a form a log line or a test can use. Built
 * only when a divergence happens (cold path: allocates strings).
 */

/**
 * Why a checkpoint was requested.
 * - `payload`: the two sides carry different bytes at the same stream offset (TCP), or a
 *   datagram pair differs (UDP / ICMP / other IP / ARP).
 * - `length`: one TCP stream ended (FIN) where the other still has bytes, or the FINs sit at
 *   different offsets.
 * - `gap`: a side's stream has bytes the engine will never see (reassembly limit, snaplen):
 *   they cannot be verified.
 * - `timeout`: a primary packet found no secondary match within compare_timeout.
 * - `budget`: a held-byte / held-frame budget was passed.
 * - `flow-removed`: the flow table dropped a flow (eviction, idle, close linger) while some of
 *   its primary packets were held; they wait for the checkpoint instead of being dropped.
 */
export type DivergenceCause = 'payload' | 'length' | 'gap' | 'timeout' | 'budget' | 'flow-removed';

export const DIVERGENCE_CAUSES: readonly DivergenceCause[] = Object.freeze([
  'payload',
  'length',
  'gap',
  'timeout',
  'budget',
  'flow-removed',
]);

/** Which input the divergence is about ('both' for a byte mismatch). */
export type DivergenceSide = 'primary' | 'secondary' | 'both';

/** How the secondary's TCP stream was aligned with the primary's (see docs/compare.md). */
export type AlignmentRule = 'primary-space' | 'own-space' | 'midstream' | 'unresolved' | 'restarted';

export interface DivergenceRecord {
  /** Record number (0, 1, 2… over the engine's life). */
  id: number;
  /** Time the divergence was found (the caller's clock, ms). */
  atMs: number;
  /** The checkpoint this record asked for or joined (1 = the first checkpoint). */
  checkpoint: number;
  /** True when this record sent the request; false when one was already pending (coalesced). */
  requested: boolean;
  cause: DivergenceCause;
  side: DivergenceSide;
  /** `"SRC:SPORT-DST:DPORT/PROTO"` in the direction of the diverging packets (IPv6 in brackets). */
  flow: string;
  /** Outer VLAN id (0 = untagged). */
  vlan: number;
  /**
   * TCP: byte offset in that direction's stream, from 0 (the first byte after the SYN, or the
   * first byte seen for a flow picked up mid-stream). Datagrams: the datagram's index in its
   * flow direction (0 = first). null when unknown.
   */
  offset: number | null;
  offsetUnit: 'byte' | 'datagram' | null;
  /** Hex of up to `diffBytes` bytes of each side from the first differing byte ('' when absent). */
  primaryBytes: string;
  secondaryBytes: string;
  /** How long the oldest held primary packet of the flow had been held (ms). */
  heldMs: number;
  /** TCP only: the alignment rule of the flow direction. */
  alignment?: AlignmentRule;
}

const HEX = '0123456789abcdef';

/** Hex of `buf[off, off + len)` (cold path). */
export function hex(buf: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) {
    const b = buf[off + i]!;
    s += HEX[b >> 4]! + HEX[b & 15]!;
  }
  return s;
}

/** Name of an IP protocol for flow text. */
export function protoName(proto: number): string {
  switch (proto) {
    case 6:
      return 'TCP';
    case 17:
      return 'UDP';
    case 1:
      return 'ICMP';
    case 58:
      return 'ICMPv6';
    default:
      return `IP${proto}`;
  }
}
