/**
 * Classic libpcap file reader: both byte orders, microsecond (a1b2c3d4) and nanosecond
 * (a1b23c4d) magics. Records are 16-byte headers followed by the captured bytes; the header
 * stays in the chunk in front of the data (see chunk.ts on why that matters).
 */
import { CaptureError } from '../errors.js';
import { u16, u32 } from './bytes.js';
import type { ChunkedFile } from './chunk.js';
import { MICRO, NANO, type TsScale } from './timestamp.js';
import { RecordReader } from './record-reader.js';
import type { CaptureReader, CaptureRecord } from './types.js';

export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
const FILE_HEADER_LEN = 24;
const RECORD_HEADER_LEN = 16;
/** The link type lives in the low bits; the top bits carry the FCS length (libpcap LT_LINKTYPE). */
const LINKTYPE_MASK = 0x03ffffff;

/** Reader for classic pcap; build it through `openCapture`. */
export class PcapReader extends RecordReader implements CaptureReader {
  readonly format = 'pcap' as const;
  readonly linkTypes: readonly number[];
  /** Snapshot length from the file header (informational; records are not checked against it). */
  readonly snaplen: number;
  /** True when the file uses the nanosecond magic. */
  readonly nanosecond: boolean;
  /** FCS bytes at the end of every frame (from the link-type field's upper bits), 0 if none. */
  readonly fcsLength: number;
  private readonly le: boolean;
  private readonly linkType: number;
  private readonly scale: TsScale;

  /** `file.pos` must be at the start of the file. Throws on a bad or truncated file header. */
  constructor(file: ChunkedFile, maxCapLen: number) {
    super(file, maxCapLen);
    if (!file.ensure(FILE_HEADER_LEN)) {
      throw new CaptureError('ERR_CAPTURE_TRUNCATED', file.path, 0, `pcap file header needs ${FILE_HEADER_LEN} bytes, file has ${file.available}`);
    }
    const b = file.buf;
    const o = file.pos;
    const magicLE = u32(b, o, true);
    const magicBE = u32(b, o, false);
    if (magicBE === PCAP_MAGIC_US || magicBE === PCAP_MAGIC_NS) this.le = false;
    else if (magicLE === PCAP_MAGIC_US || magicLE === PCAP_MAGIC_NS) this.le = true;
    else throw new CaptureError('ERR_CAPTURE_FORMAT', file.path, 0, `bad pcap magic 0x${magicBE.toString(16).padStart(8, '0')}`);
    const le = this.le;
    this.nanosecond = u32(b, o, le) === PCAP_MAGIC_NS;
    this.scale = this.nanosecond ? NANO : MICRO;
    const major = u16(b, o + 4, le);
    if (major !== 2) throw new CaptureError('ERR_CAPTURE_FORMAT', file.path, 4, `unsupported pcap version ${major}.${u16(b, o + 6, le)} (expected 2.x)`);
    this.snaplen = u32(b, o + 16, le);
    const lt = u32(b, o + 20, le);
    this.linkType = lt & LINKTYPE_MASK;
    this.fcsLength = lt & 0x04000000 ? ((lt >>> 28) & 0xf) * 2 : 0;
    this.linkTypes = Object.freeze([this.linkType]);
    this.rec.linkType = this.linkType;
    this.rec.ifIndex = 0;
    this.rec.comment = null;
    file.pos += FILE_HEADER_LEN;
  }

  protected readNext(): CaptureRecord | null {
    const f = this.file;
    if (!f.ensure(RECORD_HEADER_LEN)) {
      if (f.available === 0) return null;
      return this.fail('ERR_CAPTURE_TRUNCATED', `record ${this.index} header is cut short: ${f.available} of ${RECORD_HEADER_LEN} bytes before end of file`);
    }
    let b = f.buf;
    let o = f.pos;
    const le = this.le;
    const tsSec = u32(b, o, le);
    const tsFrac = u32(b, o + 4, le);
    const capLen = u32(b, o + 8, le);
    const origLen = u32(b, o + 12, le);
    if (capLen > this.maxCapLen) {
      return this.fail('ERR_CAPTURE_FORMAT', `record ${this.index} claims ${capLen} captured bytes, more than the ${this.maxCapLen} limit`);
    }
    if (!f.ensure(RECORD_HEADER_LEN + capLen)) {
      return this.fail('ERR_CAPTURE_TRUNCATED', `record ${this.index} is cut short: claims ${capLen} captured bytes, file has ${f.available - RECORD_HEADER_LEN} left`);
    }
    b = f.buf;
    o = f.pos;
    const r = this.rec;
    r.buf = b;
    r.off = o + RECORD_HEADER_LEN;
    r.capLen = capLen;
    r.origLen = origLen;
    r.linkType = this.linkType;
    r.ifIndex = 0;
    r.comment = null;
    // tsFrac is µs or ns already; divide only to normalise out-of-range fractions.
    if (tsFrac < this.scale.unitsPerSec) {
      r.tsSec = tsSec;
      r.tsNsec = this.nanosecond ? tsFrac : tsFrac * 1000;
    } else {
      this.scale.apply(0, tsFrac, r);
      r.tsSec += tsSec;
    }
    r.index = this.index++;
    r.fileOffset = f.fileOffset(o);
    f.pos = o + RECORD_HEADER_LEN + capLen;
    return r;
  }
}
