/**
 * Result model of `colo-proxy diff` (the divergence analyzer). This file IS the stable JSON
 * schema (docs/diff.md documents it): `DiffResult` is exactly what `--json` prints. Fields
 * are only ever added, never renamed or removed.
 *
 * Conventions:
 * - Endpoints are `"IP:PORT"` strings (IPv6 in brackets; port 0 for portless protocols).
 * - The client is the connection's initiator (sender of the SYN; the receiver of a SYN-ACK;
 *   otherwise the sender of the first packet seen), as in the primary capture.
 * - Times are ms since the epoch (capture time, fractional).
 * - TCP offsets count bytes of one direction's stream from 0 = first byte after the SYN
 *   (first byte seen when the connection was picked up mid-stream). Datagram flows count
 *   datagrams of one direction from 0.
 *
 * D: helper D plugs in where a comment says "D:" (would-checkpoint figures, HTML).
 */

/** Direction of a stream or datagram sequence. */
export type DiffDirection = 'client-to-server' | 'server-to-client';

/** What kind of flow. ARP and IPv6 neighbour discovery are compared as datagram sequences too. */
export type DiffProtocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'arp' | 'nd' | 'other';

/**
 * Why a flow diverged (the FIRST divergence of the flow):
 * - `payload`: both sides have bytes (a datagram) at that place and they differ.
 * - `missing`: the secondary lacks bytes/datagrams the primary has there (its stream stops or
 *   has a hole; `side` = 'secondary' — or 'primary' when the primary lacks them).
 * - `extra`: one side has bytes/datagrams past the point where the other's ended or beyond
 *   its whole content (`side` = the side that HAS the extra data).
 * - `outcome`: the bytes agree but the connection ended differently (RST vs FIN, one side
 *   never answered / never closed); `detail` names both endings.
 * - `timing`: same bytes, but one side delivered them later than `--timeout` ms after the
 *   other.
 */
export type DiffCause = 'payload' | 'missing' | 'extra' | 'outcome' | 'timing';

/** Which capture a fact is about. */
export type DiffSide = 'primary' | 'secondary' | 'both';

/**
 * How the secondary's TCP server→client sequence space relates to the primary's:
 * - `own-space`: SYN-ACK and data both in the secondary's own ISN space (its own tap).
 * - `primary-space`: the SYN-ACK carries the secondary's ISN but the data already uses the
 *   primary's (captured behind QEMU's filter-rewriter); the analyzer aligns on the primary's ISN.
 * - `same-isn`: both SYN-ACKs carry the same ISN (no way, and no need, to tell).
 * - `midstream`: no SYN-ACK on a side; offsets count from the first byte seen.
 */
export type DiffAlignment = 'own-space' | 'primary-space' | 'same-isn' | 'midstream';

/** Bytes around a divergence on one side. */
export interface DiffBytes {
  /** Stream offset (or datagram byte offset) of the first byte shown. */
  offset: number;
  /** Lowercase hex of the bytes shown ('' when that side has none there; `--` for a byte in a gap: never sent). */
  hex: string;
  /** The same bytes, printable ASCII kept, others as '.', gap bytes as '_'. */
  text: string;
}

/** The first divergence of a flow. */
export interface Divergence {
  cause: DiffCause;
  direction: DiffDirection;
  /** TCP: stream byte offset in `direction`, from 0. Datagram flows: datagram index in `direction`. */
  offset: number;
  offsetUnit: 'byte' | 'datagram';
  /** The side the cause is about (`payload`: 'both'; `missing`: the side lacking; `extra`: the side having). */
  side: DiffSide;
  /** When each side carried the diverging place (capture time, ms); null when that side never did. */
  primaryMs: number | null;
  secondaryMs: number | null;
  /** Context bytes (hex + printable) of each side, from `context.offset` (a few bytes before `offset`). */
  primaryBytes: DiffBytes;
  secondaryBytes: DiffBytes;
  /** One-line human explanation (also used as the packet comment of `--export`). */
  detail: string;
  /** Capture record numbers (0-based) of the packets carrying the diverging place, per side (may be empty). */
  primaryFrames: number[];
  secondaryFrames: number[];
}

/** How one TCP direction or datagram sequence ended / what it carried, per side. */
export interface DiffSideSummary {
  /** Packets of this flow seen in this capture (both directions). */
  packets: number;
  /** Stream bytes delivered (TCP) / datagram payload bytes, per direction [c→s, s→c]. */
  bytes: [number, number];
  /** TCP: how each direction ended ('fin', 'rst', 'eof'…), null for non-TCP or while open. */
  end: [string | null, string | null];
  /** First and last packet time (ms). */
  startMs: number;
  lastMs: number;
}

/**
 * Differences COLO ignores by design, counted per flow (number of flow directions in which the
 * difference was seen; for `retransmissions`, retransmitted segments on both sides). Never a
 * divergence.
 */
export interface BenignCounts {
  /** The same bytes cut into different segments. */
  segmentation: number;
  ipId: number;
  ttl: number;
  window: number;
  /** TCP options (timestamps, MSS, SACK, window scale…) differ. */
  tcpOptions: number;
  /** Retransmitted segments (either side). */
  retransmissions: number;
  /** Pure ACKs sent at different points / in different numbers. */
  ackTiming: number;
}

/** One matched (or unmatched) flow. */
export interface FlowDiff {
  /** Position in `flows` (0, 1, 2… in start order). */
  index: number;
  protocol: DiffProtocol;
  client: string;
  server: string;
  /** Outer VLAN id (0 = untagged). */
  vlan: number;
  verdict: 'identical' | 'diverged';
  /** Present when the flow is in only one capture. */
  onlyIn?: 'primary' | 'secondary';
  /** TCP: alignment of the secondary's server→client sequence space (null for datagram flows). */
  alignment: DiffAlignment | null;
  primary: DiffSideSummary | null;
  secondary: DiffSideSummary | null;
  /** The first divergence (null when identical). */
  divergence: Divergence | null;
  benign: BenignCounts;
  /** D: filled by would-checkpoint (colo-proxy's engine / QEMU rules) for this flow. */
  wouldCheckpoint?: FlowWouldCheckpoint;
}

/** D: per-flow would-checkpoint figures (defined by helper D; C only carries them). */
export interface FlowWouldCheckpoint {
  coloProxy: number;
  qemu?: number;
  /** Offsets / times / causes of the checkpoints in this flow, D's own shape. */
  [k: string]: unknown;
}

/** D: run-wide would-checkpoint figures (filled by would-checkpoint.ts). */
export interface WouldCheckpointSummary {
  /** Checkpoints colo-proxy's compare engine would request. */
  coloProxy: number;
  /** …per engine cause (payload, length, gap, timeout, …). */
  coloProxyByCause?: Record<string, number>;
  coloProxyDivergences?: number;
  /** With `--qemu-rules`: checkpoints QEMU 7.2's colo-compare rules would request, and why. */
  qemu?: number;
  qemuByCause?: Record<string, number>;
  qemuDroppedFrames?: number;
  [k: string]: unknown;
}

/** Per capture input facts. */
export interface DiffInput {
  file: string;
  format: 'pcap' | 'pcapng';
  /** LINKTYPE name of the capture (all records). */
  linkType: string;
  packets: number;
  /** Records not usable as Ethernet/IP (skipped, counted). */
  skipped: number;
}

export interface DiffSummary {
  /** Flows compared (matched + only-in-one). */
  flows: number;
  diverged: number;
  identical: number;
  /** Diverged flows per cause. */
  byCause: Record<DiffCause, number>;
  /** Flows seen in only one capture (counted in `diverged` too). */
  onlyInPrimary: number;
  onlyInSecondary: number;
  /** Benign differences summed over every flow. */
  benign: BenignCounts;
  /** D: run-wide would-checkpoint result (absent with no would-checkpoint run). */
  wouldCheckpoint?: WouldCheckpointSummary;
}

/** The whole result: what `--json` prints. */
export interface DiffResult {
  /** Schema version of this object (bumped only on an incompatible change). */
  schema: 1;
  primary: DiffInput;
  secondary: DiffInput;
  /** Options that shaped the result. */
  options: { timeoutMs: number; context: number; client: string | null };
  summary: DiffSummary;
  /** Every flow in start order (primary's start time; secondary-only flows by their own). */
  flows: FlowDiff[];
}

/** Options of the analyzer core (the CLI's flags map to these). */
export interface DiffOptions {
  /** Same bytes later than this on one side than on the other (ms) → `timing`. Default 3000. */
  timeoutMs?: number;
  /** Context bytes shown on each side of a divergence. Default 16. */
  context?: number;
  /** A capture of the client side (optional): its endpoints name the clients. */
  clientCapture?: string;
  /** Live connections the flow table holds at once per capture (default 2^17). */
  maxFlows?: number;
  /**
   * A primary capture up to this many bytes is read into memory whole and its payload
   * referenced in place; a larger one is read in chunks and its payload copied into slabs
   * (memory kept between analyses). Default 0: always copy (faster, see load.ts
   * WHOLE_FILE_MAX). The secondary is always read in chunks: its bytes equal to the
   * primary's are not kept, the others are copied.
   */
  wholeFileMax?: number;
}

/** A fresh all-zero BenignCounts. */
export function emptyBenign(): BenignCounts {
  return { segmentation: 0, ipId: 0, ttl: 0, window: 0, tcpOptions: 0, retransmissions: 0, ackTiming: 0 };
}

export const DIFF_CAUSES: readonly DiffCause[] = Object.freeze(['payload', 'missing', 'extra', 'outcome', 'timing']);
