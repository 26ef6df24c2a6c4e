/**
 * Shapes shared by the capture readers (pcap, pcapng) and their consumers.
 *
 * Records are handed out zero-copy: `buf` is the reader's chunk buffer and the record's bytes
 * are `buf[off, off + capLen)`. One record object is reused for the whole file, so everything
 * in it is valid only until the next `next()` call.
 */

/** Container formats the readers understand. */
export type CaptureFormat = 'pcap' | 'pcapng';

/** One captured packet, as seen by `CaptureReader.next()`. */
export interface CaptureRecord {
  /** Buffer holding the packet bytes (the reader's chunk: do not keep it across `next()`). */
  buf: Buffer;
  /** Offset of the first captured byte in `buf`. */
  off: number;
  /** Number of captured bytes. */
  capLen: number;
  /** Length of the packet on the wire (may exceed `capLen` when the capture was sliced). */
  origLen: number;
  /** Timestamp, integer seconds since the epoch (after the interface's `if_tsoffset`). */
  tsSec: number;
  /** Timestamp, integer nanoseconds within the second (0..999_999_999). */
  tsNsec: number;
  /** LINKTYPE_* value of the record's interface (see linktype.ts). */
  linkType: number;
  /** Interface id within the current pcapng section (pcap: always 0). */
  ifIndex: number;
  /** 0-based record number in the file (packet records only; other blocks are not counted). */
  index: number;
  /** Byte offset in the file of the record header (pcap) or of the block (pcapng). */
  fileOffset: number;
  /** First `opt_comment` of a pcapng packet block, else null. */
  comment: string | null;
}

/** Pull-based reader over one capture file. */
export interface CaptureReader extends Iterable<CaptureRecord> {
  readonly path: string;
  readonly format: CaptureFormat;
  /**
   * Link type of each interface. pcap: exactly one. pcapng: the interfaces of the current
   * section described so far (the interface blocks that directly follow the section header
   * are read at open; a later section header empties the list and refills it).
   */
  readonly linkTypes: readonly number[];
  /**
   * Next packet record, or null at a clean end of file. The returned object is REUSED and its
   * `buf` contents are valid only until the next call. Throws `CaptureError`
   * (ERR_CAPTURE_TRUNCATED / ERR_CAPTURE_FORMAT / ERR_CAPTURE_IO) when it reaches a record it
   * cannot read; every earlier record has been returned by then. The error is sticky.
   */
  next(): CaptureRecord | null;
  /** Release the file descriptor (idempotent). */
  close(): void;
}

/** Options for `openCapture`. */
export interface OpenCaptureOptions {
  /** Initial chunk size in bytes (default 1 MiB); grows when a single record needs more. */
  chunkSize?: number;
  /**
   * Largest captured length accepted for one record (default 262144, libpcap's and
   * Wireshark's MAXIMUM_SNAPLEN). A record claiming more is treated as corruption.
   */
  maxCapLen?: number;
}

/** Default upper bound on one record's captured bytes (libpcap/Wireshark maximum snaplen). */
export const MAX_CAPLEN_DEFAULT = 262_144;

/** Default read chunk size. */
export const CHUNK_SIZE_DEFAULT = 1 << 20;

/** A fresh record object with neutral fields (readers create one and reuse it). */
export function emptyRecord(): CaptureRecord {
  return {
    buf: Buffer.alloc(0), off: 0, capLen: 0, origLen: 0, tsSec: 0, tsNsec: 0,
    linkType: 0, ifIndex: 0, index: -1, fileOffset: 0, comment: null,
  };
}

/**
 * Copy a record into an independent object with its own buffer (cold paths: iteration,
 * tests). The copy keeps `HEADROOM_COPY` zero bytes before the data so that `toEthernet`
 * can still prepend a header in place.
 */
export function copyRecord(r: CaptureRecord): CaptureRecord {
  const buf = Buffer.alloc(HEADROOM_COPY + r.capLen);
  r.buf.copy(buf, HEADROOM_COPY, r.off, r.off + r.capLen);
  return { ...r, buf, off: HEADROOM_COPY };
}

/** Zero bytes kept before a copied record's data (≥ one Ethernet header). */
export const HEADROOM_COPY = 16;
