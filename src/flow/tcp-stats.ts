/**
 * Counters of one reassembled stream direction. Plain numeric fields, updated in place (no
 * per-segment objects); every limit and every dropped segment has a counter here.
 */
export class TcpStreamStats {
  /** Segments fed for this direction (any flags, with or without payload). */
  segments = 0;
  /** Payload bytes fed (captured bytes, duplicates included). */
  bytes = 0;
  /** Bytes passed to `sink.data`. */
  deliveredBytes = 0;
  /** Segments whose new bytes started at the delivered point (delivered at once, zero-copy). */
  inOrder = 0;
  /** Segments whose new bytes were buffered behind a hole. */
  outOfOrder = 0;
  /** Segments with no new byte (every byte already delivered or buffered). */
  retransmitted = 0;
  /** Segments overlapping bytes already accepted (delivered or buffered), partly or fully. */
  overlapping = 0;
  /**
   * Runs of differing bytes found in overlaps (each reported via `overlapConflict`): with
   * buffered bytes, and with delivered bytes still in the retransmission window.
   */
  overlapConflicts = 0;
  /** Bytes in those runs. */
  conflictBytes = 0;
  /**
   * Segments carrying bytes below the delivered point when they arrived (already delivered or
   * reported as a gap), and those bytes. Each such byte is either verified (compared with
   * the copy in the retransmission window) or unverified: retxBytes = retxVerifiedBytes +
   * retxUnverifiedBytes.
   */
  retxSegments = 0;
  retxBytes = 0;
  retxVerifiedBytes = 0;
  /** Verified bytes that differed from what was delivered (also in conflictBytes). */
  retxConflictBytes = 0;
  /**
   * Bytes that could not be compared: older than the window, inside a gap, before offset 0,
   * dropped from the window under memory pressure, or arriving after the direction ended.
   */
  retxUnverifiedBytes = 0;
  /** Delivered bytes the window holds now, and its high-water mark. */
  retxHeldBytes = 0;
  retxHighWaterBytes = 0;
  /**
   * Times memory pressure shrank the window: the budget's retransmission share or the pool
   * refused (oldest bytes dropped, or new bytes not kept), the per-window run cap was
   * reached, or out-of-order data needed the budget (the whole window was dropped).
   */
  retxShrinks = 0;
  /** Gaps reported, and their total length. */
  gaps = 0;
  gapBytes = 0;
  /** Out-of-order payload bytes / pieces buffered now, and their high-water marks. */
  bufferedBytes = 0;
  bufferedSegments = 0;
  highWaterBytes = 0;
  highWaterSegments = 0;
  /** Bytes copied into the pool (segments fed with NO_HANDLE that had to be buffered). */
  copiedBytes = 0;
  /** Segments rejected as OUT_OF_WINDOW (far ahead or far behind). */
  outOfWindow = 0;
  /** Segments after the direction ended, or after the reassembler closed. */
  afterEnd = 0;
  /** 1 when the stream was picked up mid-stream (no SYN seen: first data segment is offset 0). */
  midstream = 0;
  /** Payload bytes at or beyond the FIN's offset (discarded). */
  beyondFinBytes = 0;
  /** FINs disagreeing with the first FIN's offset (ignored; first FIN wins). */
  finMismatch = 0;
  /** FINs below the delivered point (ignored). */
  badFin = 0;
  /** Times each buffering limit forced a gap: per-direction byte cap, segment cap, global budget/pool. */
  byteCapHits = 0;
  segmentCapHits = 0;
  memcapHits = 0;
  /** Holes declared gaps by `holeTimeoutMs`. */
  holeTimeouts = 0;
  /** Segments whose payload the capture's snaplen cut, and the missing bytes. */
  truncatedSegments = 0;
  truncatedBytes = 0;
  /** RST segments seen (accepted or not). */
  rst = 0;
  /** Views fed without a decoded TCP header. */
  notTcp = 0;
}
