/**
 * pcapng reader (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html).
 *
 * Handles section header blocks in either byte order (a new section resets the interface
 * list), interface description blocks with `if_tsresol` (base 10 and base 2) and
 * `if_tsoffset`, enhanced / simple / obsolete packet blocks, and skips every other block type
 * by its length. Every block's leading and trailing lengths are checked before it is used.
 */
import { i64, pad4, u16, u32 } from './bytes.js';
import type { ChunkedFile } from './chunk.js';
import { TsScale } from './timestamp.js';
import { RecordReader } from './record-reader.js';
import type { CaptureReader, CaptureRecord } from './types.js';

export const BT_SHB = 0x0a0d0d0a;
export const BT_IDB = 1;
export const BT_OPB = 2;
export const BT_SPB = 3;
export const BT_EPB = 6;
export const PCAPNG_BOM = 0x1a2b3c4d;
/** Refuse blocks beyond this size as corrupt rather than allocate for them. */
export const MAX_BLOCK_LEN = 16 << 20;

const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
const IF_NAME = 2;
const IF_TSRESOL = 9;
const IF_TSOFFSET = 14;

/** readBlock results. */
const EOF = 0;
const PACKET = 1;
const OTHER = 2;

/** Minimum total length of each block type (header, fixed fields, trailing length). */
function minBlockLen(type: number): number {
  switch (type) {
    case BT_SHB: return 28;
    case BT_IDB: return 20;
    case BT_EPB:
    case BT_OPB: return 32;
    case BT_SPB: return 16;
    default: return 12;
  }
}

/** What the reader knows about one interface of the current section. */
export interface PcapngInterface {
  readonly linkType: number;
  /** 0 = no limit. */
  readonly snaplen: number;
  readonly name: string | null;
  /** Timestamp units per second (from if_tsresol, default 10^6). */
  readonly unitsPerSec: number;
  /** if_tsoffset: seconds added to every timestamp. */
  readonly tsOffset: number;
  /** @internal converter for this interface's resolution */
  readonly scale: TsScale;
}

const scaleCache = new Map<number, TsScale>();
function scaleFor(base: 10 | 2, exp: number): TsScale {
  const key = base * 1000 + exp;
  let s = scaleCache.get(key);
  if (!s) {
    s = new TsScale(base, exp);
    scaleCache.set(key, s);
  }
  return s;
}

/** Reader for pcapng; build it through `openCapture`. */
export class PcapngReader extends RecordReader implements CaptureReader {
  readonly format = 'pcapng' as const;
  private readonly lt: number[] = [];
  private readonly ifs: PcapngInterface[] = [];
  private le = true;
  private sections = 0;

  /**
   * `file.pos` must be at the start of the file. Reads the section header (errors there are
   * thrown from the constructor) and the interface blocks right after it (errors there are
   * deferred to the first `next()`, so no record is lost to them).
   */
  constructor(file: ChunkedFile, maxCapLen: number) {
    super(file, maxCapLen);
    this.readShb();
    for (;;) {
      if (!file.ensure(8) || u32(file.buf, file.pos, this.le) !== BT_IDB) break;
      try {
        this.readBlock();
      } catch {
        break; // state is untouched on error; next() will meet it again
      }
    }
  }

  get linkTypes(): readonly number[] {
    return this.lt;
  }

  /** Interfaces of the current section known so far. */
  get interfaces(): readonly PcapngInterface[] {
    return this.ifs;
  }

  /** Number of section header blocks read so far (1 after open). */
  get sectionCount(): number {
    return this.sections;
  }

  /** Reads blocks until a packet block (returned) or the end of file (null). */
  protected readNext(): CaptureRecord | null {
    for (;;) {
      const got = this.readBlock();
      if (got === EOF) return null;
      if (got === PACKET) return this.rec;
    }
  }

  /**
   * Reads one block at `file.pos`. Returns PACKET (the record is filled), OTHER, or EOF.
   * Throws before changing any state when the block is bad.
   */
  private readBlock(): number {
    const f = this.file;
    if (!f.ensure(8)) {
      if (f.available === 0) return EOF;
      this.fail('ERR_CAPTURE_TRUNCATED', `block header is cut short: ${f.available} of 8 bytes before end of file`);
    }
    const le = this.le;
    const type = u32(f.buf, f.pos, le);
    if (type === BT_SHB) {
      this.readShb();
      return OTHER;
    }
    const len = u32(f.buf, f.pos + 4, le);
    this.checkLen(type, len);
    if (!f.ensure(len)) {
      this.fail('ERR_CAPTURE_TRUNCATED', `block type 0x${type.toString(16)} of ${len} bytes is cut short: file has ${f.available} left`);
    }
    const b = f.buf;
    const o = f.pos;
    const trail = u32(b, o + len - 4, le);
    if (trail !== len) this.fail('ERR_CAPTURE_FORMAT', `block type 0x${type.toString(16)}: trailing length ${trail} does not match leading length ${len}`);
    let got = OTHER;
    switch (type) {
      case BT_EPB:
        this.readPacket(b, o, len, u32(b, o + 8, le), 'enhanced');
        got = PACKET;
        break;
      case BT_OPB:
        this.readPacket(b, o, len, u16(b, o + 8, le), 'obsolete');
        got = PACKET;
        break;
      case BT_SPB:
        this.readSimple(b, o, len);
        got = PACKET;
        break;
      case BT_IDB:
        this.readIdb(b, o, len);
        break;
      default:
        break; // NRB, ISB, DSB, custom, unknown: skipped by length
    }
    f.pos = o + len;
    return got;
  }

  private checkLen(type: number, len: number): void {
    const what = `block type 0x${type.toString(16)}`;
    if (len % 4 !== 0) this.fail('ERR_CAPTURE_FORMAT', `${what} has length ${len}, not a multiple of 4`);
    const min = minBlockLen(type);
    if (len < min) this.fail('ERR_CAPTURE_FORMAT', `${what} has length ${len}, less than the minimum ${min}`);
    if (len > MAX_BLOCK_LEN) this.fail('ERR_CAPTURE_FORMAT', `${what} has length ${len}, more than the ${MAX_BLOCK_LEN} limit`);
  }

  /** Section header: fixes the byte order and starts a new interface list. */
  private readShb(): void {
    const f = this.file;
    if (!f.ensure(12)) this.fail('ERR_CAPTURE_TRUNCATED', `section header block is cut short: ${f.available} of 12 bytes before end of file`);
    const bomLE = u32(f.buf, f.pos + 8, true);
    let le: boolean;
    if (bomLE === PCAPNG_BOM) le = true;
    else if (u32(f.buf, f.pos + 8, false) === PCAPNG_BOM) le = false;
    else return this.fail('ERR_CAPTURE_FORMAT', `section header has bad byte-order magic 0x${bomLE.toString(16)}`);
    const len = u32(f.buf, f.pos + 4, le);
    this.checkLen(BT_SHB, len);
    if (!f.ensure(len)) this.fail('ERR_CAPTURE_TRUNCATED', `section header block of ${len} bytes is cut short: file has ${f.available} left`);
    const b = f.buf;
    const o = f.pos;
    const trail = u32(b, o + len - 4, le);
    if (trail !== len) this.fail('ERR_CAPTURE_FORMAT', `section header: trailing length ${trail} does not match leading length ${len}`);
    const major = u16(b, o + 12, le);
    if (major !== 1) this.fail('ERR_CAPTURE_FORMAT', `unsupported pcapng version ${major}.${u16(b, o + 14, le)}`);
    this.le = le;
    this.lt.length = 0;
    this.ifs.length = 0;
    this.sections++;
    f.pos = o + len;
  }

  private readIdb(b: Buffer, o: number, len: number): void {
    const le = this.le;
    const linkType = u16(b, o + 8, le);
    const snaplen = u32(b, o + 12, le);
    let base: 10 | 2 = 10;
    let exp = 6;
    let tsOffset = 0;
    let name: string | null = null;
    const end = o + len - 4;
    for (let s = o + 16; s + 4 <= end; ) {
      const code = u16(b, s, le);
      const olen = u16(b, s + 2, le);
      if (code === OPT_ENDOFOPT) break;
      if (s + 4 + olen > end) this.fail('ERR_CAPTURE_FORMAT', `interface ${this.ifs.length}: option ${code} of ${olen} bytes runs past the end of the block`);
      if (code === IF_TSRESOL && olen >= 1) {
        const v = b[s + 4]!;
        base = v & 0x80 ? 2 : 10;
        exp = v & 0x7f;
        if (base === 10 ? exp > 15 : exp > 52) this.fail('ERR_CAPTURE_FORMAT', `interface ${this.ifs.length}: unsupported if_tsresol ${base}^-${exp}`);
      } else if (code === IF_TSOFFSET && olen >= 8) {
        tsOffset = i64(b, s + 4, le);
      } else if (code === IF_NAME && name === null) {
        name = b.toString('utf8', s + 4, s + 4 + olen);
      }
      s += 4 + pad4(olen);
    }
    const scale = scaleFor(base, exp);
    this.ifs.push({ linkType, snaplen, name, unitsPerSec: scale.unitsPerSec, tsOffset, scale });
    this.lt.push(linkType);
  }

  /** EPB and OPB share a layout after the interface id: ts high, ts low, caplen, len, data, options. */
  private readPacket(b: Buffer, o: number, len: number, ifIndex: number, kind: string): void {
    const le = this.le;
    if (ifIndex >= this.ifs.length) {
      this.fail('ERR_CAPTURE_FORMAT', `record ${this.index} (${kind} packet block) is on interface ${ifIndex}, but the section describes ${this.ifs.length}`);
    }
    const capLen = u32(b, o + 20, le);
    if (capLen > this.maxCapLen) {
      this.fail('ERR_CAPTURE_FORMAT', `record ${this.index} claims ${capLen} captured bytes, more than the ${this.maxCapLen} limit`);
    }
    const optStart = o + 28 + pad4(capLen);
    const end = o + len - 4;
    if (optStart > end) {
      this.fail('ERR_CAPTURE_FORMAT', `record ${this.index} claims ${capLen} captured bytes, its ${len}-byte block has room for ${len - 32}`);
    }
    const comment = optStart === end ? null : this.findComment(b, optStart, end);
    const ifc = this.ifs[ifIndex]!;
    const r = this.rec;
    r.buf = b;
    r.off = o + 28;
    r.capLen = capLen;
    r.origLen = u32(b, o + 24, le);
    ifc.scale.apply(u32(b, o + 12, le), u32(b, o + 16, le), r);
    r.tsSec += ifc.tsOffset;
    r.linkType = ifc.linkType;
    r.ifIndex = ifIndex;
    r.comment = comment;
    r.index = this.index++;
    r.fileOffset = this.file.fileOffset(o);
  }

  /** Simple packet block: no interface id (it is 0), no timestamp, caplen implied. */
  private readSimple(b: Buffer, o: number, len: number): void {
    if (this.ifs.length === 0) this.fail('ERR_CAPTURE_FORMAT', `record ${this.index} (simple packet block) but the section describes no interface`);
    const ifc = this.ifs[0]!;
    const origLen = u32(b, o + 8, this.le);
    let capLen = Math.min(origLen, len - 16);
    if (ifc.snaplen !== 0 && ifc.snaplen < capLen) capLen = ifc.snaplen;
    if (capLen > this.maxCapLen) {
      this.fail('ERR_CAPTURE_FORMAT', `record ${this.index} claims ${capLen} captured bytes, more than the ${this.maxCapLen} limit`);
    }
    const r = this.rec;
    r.buf = b;
    r.off = o + 12;
    r.capLen = capLen;
    r.origLen = origLen;
    r.tsSec = 0;
    r.tsNsec = 0;
    r.linkType = ifc.linkType;
    r.ifIndex = 0;
    r.comment = null;
    r.index = this.index++;
    r.fileOffset = this.file.fileOffset(o);
  }

  private findComment(b: Buffer, start: number, end: number): string | null {
    const le = this.le;
    for (let s = start; s + 4 <= end; ) {
      const code = u16(b, s, le);
      const olen = u16(b, s + 2, le);
      if (code === OPT_ENDOFOPT) break;
      if (s + 4 + olen > end) this.fail('ERR_CAPTURE_FORMAT', `record ${this.index}: option ${code} of ${olen} bytes runs past the end of the block`);
      if (code === OPT_COMMENT) return b.toString('utf8', s + 4, s + 4 + olen);
      s += 4 + pad4(olen);
    }
    return null;
  }
}
