/**
 * Shared vocabulary of TCP stream reassembly: the sink interface, reasons, limits and the
 * per-segment result codes. No logic lives here.
 */
import { ColoError } from '../errors.js';

/** TCP header flag bits as they appear in `PacketView.tcpFlags`. */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** A direction of a connection: 0 = initiator → responder, 1 = back. */
export type Dir = 0 | 1;

/** Why a direction ended (passed to `StreamSink.end`). */
export const EndReason = {
  /** A FIN was seen and every byte before it was delivered or reported as a gap. */
  FIN: 'fin',
  /** An in-window RST ended the connection (both directions). */
  RST: 'rst',
  /** The owner closed the flow after inactivity. */
  TIMEOUT: 'timeout',
  /** The owner evicted the flow (table full). */
  EVICTED: 'evicted',
  /** The owner dropped the flow to free memory. */
  MEMCAP: 'memcap',
  /** Explicit close by the owner (shutdown, the owner's own decision). */
  CLOSED: 'closed',
  /**
   * The input ended (end of a capture file, the peer's stream closed) with the direction
   * still open: unlike CLOSED, nobody decided to stop — there simply was no more traffic.
   */
  EOF: 'eof',
} as const;
export type EndReason = (typeof EndReason)[keyof typeof EndReason];

/** Why bytes will never arrive (passed to `StreamSink.gap`). A close reason, or a limit. */
export const GapReason = {
  ...EndReason,
  /** The per-direction out-of-order byte cap (`maxOooBytes`) was hit. */
  BYTE_CAP: 'byte-cap',
  /** The per-direction out-of-order segment cap (`maxOooSegments`) was hit. */
  SEGMENT_CAP: 'segment-cap',
  /** A hole stayed open longer than `holeTimeoutMs`. */
  HOLE_TIMEOUT: 'hole-timeout',
  /** The capture's snaplen cut the segment's payload (only the captured bytes exist). */
  TRUNCATED: 'truncated',
} as const;
export type GapReason = (typeof GapReason)[keyof typeof GapReason];

/** Receives a connection's reassembled streams, per direction. */
export interface StreamSink {
  /**
   * In-order bytes at stream offset `streamOffset` (0 = first byte after the SYN).
   * `buf[off, off + len)` is a zero-copy view valid only during the call: copy what you keep.
   */
  data(dir: Dir, buf: Uint8Array, off: number, len: number, streamOffset: number): void;
  /** `len` bytes at `streamOffset` will never arrive; delivery continues after them. */
  gap(dir: Dir, streamOffset: number, len: number, reason: GapReason): void;
  /**
   * A retransmission/overlap carried different bytes than those already accepted (first
   * wins: the accepted bytes are what `data` delivers). One call per run of differing bytes.
   * The run may lie ahead of the delivered point (buffered bytes) or behind it (bytes already
   * passed to `data`, still in the retransmission window: see `retxWindowBytes`); it is never
   * called after `end` for that direction.
   */
  overlapConflict?(dir: Dir, streamOffset: number, len: number): void;
  /** The direction ended; called exactly once per direction, after its last `data`/`gap`. */
  end(dir: Dir, how: EndReason): void;
}

/** Outcome of `TcpReassembler.segment` (a number, so the hot path never throws or allocates). */
export const SegmentResult = {
  /** New bytes were accepted (delivered or buffered), or a control flag took effect. */
  OK: 0,
  /** Nothing new: a pure ACK/window update, or a segment carrying only SYN. */
  NO_DATA: 1,
  /** Every byte was already accepted (retransmission / full overlap); counted, dropped. */
  DUPLICATE: 2,
  /** Sequence number farther than `maxWindowBytes` from the delivered point; counted, dropped. */
  OUT_OF_WINDOW: 3,
  /** The direction already ended (FIN delivered); counted, dropped. */
  AFTER_END: 4,
  /** The reassembler was closed (RST or `close`); counted, dropped. */
  CLOSED: 5,
  /** The view holds no decoded TCP header; counted, dropped. */
  NOT_TCP: 6,
} as const;
export type SegmentResult = (typeof SegmentResult)[keyof typeof SegmentResult];

/**
 * Per-direction limits. Each one has a policy (see tcp-stream.ts for the full statement):
 * hitting a buffering cap declares the lowest hole a gap (reason = the cap) and delivers what
 * follows it, freeing memory, until the new segment fits; nothing is dropped silently.
 */
export interface ReassemblyLimits {
  /** Out-of-order payload bytes buffered per direction. Default 4 MiB. */
  maxOooBytes: number;
  /** Out-of-order pieces buffered per direction (bounds pool slots held). Default 4096. */
  maxOooSegments: number;
  /**
   * Segments starting farther than this from the delivered point (ahead or behind) are
   * rejected as OUT_OF_WINDOW. Default 1 GiB (the largest scaled TCP window, RFC 7323);
   * at most 0x7fff0000 so offsets stay unambiguous in 32-bit sequence space.
   */
  maxWindowBytes: number;
  /**
   * A hole older than this (measured from the arrival of the piece right after it) becomes a
   * gap ('hole-timeout') on the next `segment`/`tick` of that direction. 0 disables. Default 30 s.
   */
  holeTimeoutMs: number;
  /**
   * Retransmission window: how many of the most recently DELIVERED bytes of a direction are
   * kept so that a retransmission overlapping them can be compared (differing runs are
   * reported via `overlapConflict`; first wins either way). Bytes further back, and bytes
   * the window could not keep, are counted as unverified. 0 disables. Default 64 KiB.
   *
   * Memory per direction that delivered at least that much: pooled input with full-size
   * segments pins their slots (zero copy; about 46 × 2 KiB slots ≈ 92 KiB for 1448-byte
   * segments), other input is copied into packed pool slots (≈ 64 KiB + one slot), plus
   * RETX_ENTRY_OVERHEAD per kept run. All of it is charged to the ReassemblyBudget's
   * retransmission share; when that refuses, the window shrinks (counted), never grows past it.
   */
  retxWindowBytes: number;
  /**
   * When the retransmission window starts keeping bytes: once this many segments of the
   * direction have carried retransmitted bytes (`stats.retxSegments`). 0 keeps from the first
   * delivered byte, so every retransmission inside the window is compared. Default 1: a
   * direction that never retransmits costs nothing (no window, no pinned slot, no budget),
   * and only its first retransmission goes unverified (counted).
   */
  retxArmAfter: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: Readonly<ReassemblyLimits> = Object.freeze({
  maxOooBytes: 4 * 1024 * 1024,
  maxOooSegments: 4096,
  maxWindowBytes: 1024 * 1024 * 1024,
  holeTimeoutMs: 30_000,
  retxWindowBytes: 64 * 1024,
  retxArmAfter: 1,
});

/** Largest accepted `maxWindowBytes`: keeps every in-window segment within ±2^31 of the reference. */
export const MAX_WINDOW_LIMIT = 0x7fff0000;

/** Limit objects made by `frozenLimits` (already resolved, validated and immutable). */
const FROZEN = new WeakSet<object>();

/**
 * `resolveLimits`, frozen: an owner that creates many reassemblers (one per connection)
 * resolves its limits once and passes the result, which TcpReassembler then takes as is
 * instead of copying and validating it per connection. Returns `partial` itself when it
 * already is such an object. Cold path: throws like resolveLimits.
 */
export function frozenLimits(partial?: Partial<ReassemblyLimits>): Readonly<ReassemblyLimits> {
  if (partial !== undefined && FROZEN.has(partial)) return partial as Readonly<ReassemblyLimits>;
  const l = Object.freeze(resolveLimits(partial));
  FROZEN.add(l);
  return l;
}

/** Fill defaults and validate (cold path: throws ERR_INVALID_ARGUMENT naming the bad value). */
export function resolveLimits(partial: Partial<ReassemblyLimits> = {}): ReassemblyLimits {
  const l: ReassemblyLimits = { ...DEFAULT_REASSEMBLY_LIMITS, ...partial };
  const check = (name: keyof ReassemblyLimits, min: number, max: number): void => {
    const x = l[name];
    if (!Number.isInteger(x) || x < min || x > max) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `reassembly limit ${name} must be an integer in ${min}..${max}, got ${x}`);
    }
  };
  check('maxOooBytes', 0, Number.MAX_SAFE_INTEGER);
  check('maxOooSegments', 0, 1 << 24);
  check('maxWindowBytes', 1, MAX_WINDOW_LIMIT);
  check('holeTimeoutMs', 0, Number.MAX_SAFE_INTEGER);
  check('retxWindowBytes', 0, MAX_WINDOW_LIMIT);
  check('retxArmAfter', 0, 0x7fffffff);
  return l;
}
