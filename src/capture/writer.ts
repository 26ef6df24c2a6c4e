/**
 * Capture writers: classic pcap (nanosecond magic) and pcapng (SHB + IDBs with ns resolution +
 * EPBs). Output goes through one reused 1 MiB chunk flushed with `fs.writeSync`; packet bytes
 * are copied straight from the caller's buffer into it (or written directly when they do not
 * fit), so writing allocates nothing per packet. All multi-byte fields are little-endian.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { CaptureError, ColoError } from '../errors.js';
import { pad4 } from './bytes.js';
import { PCAP_MAGIC_NS, PCAP_MAGIC_US } from './pcap.js';
import { BT_EPB, BT_IDB, BT_SHB, PCAPNG_BOM } from './pcapng.js';
import { LINKTYPE } from './linktype.js';
import { MAX_CAPLEN_DEFAULT } from './types.js';

const OUT_CHUNK = 1 << 20;
const MAX_U32 = 0xffffffff;

/** Buffered sequential file output. */
class OutChunk {
  readonly path: string;
  private fd: number;
  private readonly buf = Buffer.allocUnsafeSlow(OUT_CHUNK);
  private pos = 0;
  /** Bytes handed to the OS so far (file offset of buf[0]). */
  private flushed = 0;

  constructor(path: string) {
    this.path = path;
    try {
      this.fd = openSync(path, 'w');
    } catch (e) {
      throw new CaptureError('ERR_CAPTURE_IO', path, 0, `cannot create: ${(e as Error).message}`, { cause: e });
    }
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  /** File offset the next byte will land at. */
  get offset(): number {
    return this.flushed + this.pos;
  }

  /** Make `n` contiguous bytes available (n ≤ chunk size) and return their offset in `chunk`. */
  reserve(n: number): number {
    if (this.pos + n > this.buf.length) this.flush();
    const at = this.pos;
    this.pos += n;
    return at;
  }

  get chunk(): Buffer {
    return this.buf;
  }

  /** Append bytes from `src`; large ones bypass the chunk. */
  bytes(src: Uint8Array, off: number, len: number): void {
    if (this.pos + len > this.buf.length) {
      this.flush();
      if (len > this.buf.length >>> 1) {
        this.sys(src, off, len);
        return;
      }
    }
    // A memcpy. Node 20 has no view-free copy between buffers (Buffer#copy makes one too);
    // the transient view is the only per-packet allocation of the writers.
    this.buf.set(src.subarray(off, off + len), this.pos);
    this.pos += len;
  }

  flush(): void {
    if (this.pos === 0) return;
    this.sys(this.buf, 0, this.pos);
    this.pos = 0;
  }

  close(): void {
    if (this.fd < 0) return;
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
      this.fd = -1;
    }
  }

  private sys(src: Uint8Array, off: number, len: number): void {
    let done = 0;
    try {
      while (done < len) done += writeSync(this.fd, src, off + done, len - done);
    } catch (e) {
      throw new CaptureError('ERR_CAPTURE_IO', this.path, this.flushed, `write failed: ${(e as Error).message}`, { cause: e });
    }
    this.flushed += len;
  }
}

function checkTime(tsSec: number, tsNsec: number): void {
  if (!Number.isInteger(tsSec) || tsSec < 0 || tsSec > MAX_U32) throw new ColoError('ERR_INVALID_ARGUMENT', `tsSec must be an integer in 0..2^32-1, got ${tsSec}`);
  if (!Number.isInteger(tsNsec) || tsNsec < 0 || tsNsec > 999_999_999) throw new ColoError('ERR_INVALID_ARGUMENT', `tsNsec must be an integer in 0..999999999, got ${tsNsec}`);
}

function checkSlice(buf: Uint8Array, off: number, len: number): void {
  if (!Number.isInteger(off) || !Number.isInteger(len) || off < 0 || len < 0 || off + len > buf.length) {
    throw new ColoError('ERR_INVALID_ARGUMENT', `slice [${off}, ${off}+${len}) is outside the ${buf.length}-byte buffer`);
  }
}

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > MAX_U32) throw new ColoError('ERR_INVALID_ARGUMENT', `${name} must be an integer in 0..2^32-1, got ${v}`);
}

/** Options for `PcapWriter`. */
export interface PcapWriterOptions {
  /** LINKTYPE of every record (default 1, Ethernet). */
  linkType?: number;
  /** Snapshot length written in the header; longer packets are cut to it (default 262144). */
  snaplen?: number;
  /**
   * Timestamp resolution: 'ns' (default, magic a1b23c4d) or 'us' (magic a1b2c3d4, for old tools
   * that only know microseconds; nanoseconds are truncated).
   */
  resolution?: 'ns' | 'us';
}

/** Classic pcap writer (nanosecond-resolution magic a1b23c4d by default, version 2.4, little-endian). */
export class PcapWriter {
  readonly path: string;
  readonly linkType: number;
  readonly snaplen: number;
  /** 1 for nanosecond files, 1000 for microsecond files. */
  private readonly nsPerUnit: number;
  private readonly out: OutChunk;
  private count = 0;

  /** Creates (truncates) `path` and writes the file header. */
  constructor(path: string, opts: PcapWriterOptions = {}) {
    this.linkType = opts.linkType ?? LINKTYPE.ETHERNET;
    this.snaplen = opts.snaplen ?? MAX_CAPLEN_DEFAULT;
    checkU32('linkType', this.linkType);
    checkU32('snaplen', this.snaplen);
    const res = opts.resolution ?? 'ns';
    if (res !== 'ns' && res !== 'us') throw new ColoError('ERR_INVALID_ARGUMENT', `resolution must be 'ns' or 'us', got ${String(res)}`);
    this.nsPerUnit = res === 'ns' ? 1 : 1000;
    this.path = path;
    this.out = new OutChunk(path);
    const c = this.out.chunk;
    const o = this.out.reserve(24);
    c.writeUInt32LE(res === 'ns' ? PCAP_MAGIC_NS : PCAP_MAGIC_US, o);
    c.writeUInt16LE(2, o + 4);
    c.writeUInt16LE(4, o + 6);
    c.writeInt32LE(0, o + 8); // thiszone
    c.writeUInt32LE(0, o + 12); // sigfigs
    c.writeUInt32LE(this.snaplen, o + 16);
    c.writeUInt32LE(this.linkType, o + 20);
  }

  /** Records written so far. */
  get records(): number {
    return this.count;
  }

  /**
   * Append one record: `buf[off, off+len)` (cut to the snaplen), timestamp `tsSec.tsNsec`,
   * wire length `origLen` (default `len`).
   */
  write(buf: Uint8Array, off: number, len: number, tsSec: number, tsNsec: number, origLen: number = len): void {
    if (this.out.closed) throw new ColoError('ERR_INVALID_ARGUMENT', `${this.path}: write after close`);
    checkSlice(buf, off, len);
    checkTime(tsSec, tsNsec);
    checkU32('origLen', origLen);
    const capLen = Math.min(len, this.snaplen);
    const c = this.out.chunk;
    const o = this.out.reserve(16);
    c.writeUInt32LE(tsSec, o);
    c.writeUInt32LE(this.nsPerUnit === 1 ? tsNsec : Math.floor(tsNsec / this.nsPerUnit), o + 4);
    c.writeUInt32LE(capLen, o + 8);
    c.writeUInt32LE(origLen, o + 12);
    this.out.bytes(buf, off, capLen);
    this.count++;
  }

  /** Hand buffered bytes to the OS. */
  flush(): void {
    this.out.flush();
  }

  /** Flush and close (idempotent). */
  close(): void {
    this.out.close();
  }
}

/** One pcapng interface to describe. */
export interface PcapngInterfaceSpec {
  linkType: number;
  /** if_name option. */
  name?: string;
  /** 0 = unlimited; longer packets are cut to it (default 262144). */
  snaplen?: number;
}

/** Options for `PcapngWriter`. */
export interface PcapngWriterOptions {
  /** Interfaces, in ifIndex order (default: one Ethernet interface). */
  interfaces?: readonly PcapngInterfaceSpec[];
}

/** Per-packet options for `PcapngWriter.write`. */
export interface PcapngWriteOptions {
  /** opt_comment (UTF-8, at most 65535 bytes). */
  comment?: string;
  /** Interface index (default 0). */
  ifIndex?: number;
  /** Wire length (default: the given length). */
  origLen?: number;
}

const OPT_COMMENT = 1;
const IF_NAME = 2;
const IF_TSRESOL = 9;
/** Application name in the section header (shb_userappl). */
const SHB_USERAPPL = 4;
const USERAPPL = 'colo-proxy';

/** pcapng writer: one section, one IDB per interface (if_tsresol = 9, i.e. ns), EPBs. */
export class PcapngWriter {
  readonly path: string;
  private readonly out: OutChunk;
  private readonly snaplens: number[];
  private count = 0;

  /** Creates (truncates) `path` and writes the section header and interface blocks. */
  constructor(path: string, opts: PcapngWriterOptions = {}) {
    const ifs = opts.interfaces ?? [{ linkType: LINKTYPE.ETHERNET }];
    if (ifs.length === 0) throw new ColoError('ERR_INVALID_ARGUMENT', 'a pcapng file needs at least one interface');
    for (const i of ifs) {
      if (!Number.isInteger(i.linkType) || i.linkType < 0 || i.linkType > 0xffff) throw new ColoError('ERR_INVALID_ARGUMENT', `pcapng link type must fit 16 bits, got ${i.linkType}`);
      checkU32('snaplen', i.snaplen ?? 0);
      if (i.name !== undefined && Buffer.byteLength(i.name, 'utf8') > 0xffff) throw new ColoError('ERR_INVALID_ARGUMENT', 'interface name longer than 65535 bytes');
    }
    this.path = path;
    this.snaplens = ifs.map((i) => i.snaplen ?? MAX_CAPLEN_DEFAULT);
    this.out = new OutChunk(path);
    this.writeShb();
    for (let i = 0; i < ifs.length; i++) this.writeIdb(ifs[i]!.linkType, this.snaplens[i]!, ifs[i]!.name);
  }

  /** Packet blocks written so far. */
  get records(): number {
    return this.count;
  }

  /**
   * Append one enhanced packet block: `buf[off, off+len)` (cut to the interface's snaplen),
   * timestamp `tsSec.tsNsec`, optional comment / interface / wire length.
   */
  write(buf: Uint8Array, off: number, len: number, tsSec: number, tsNsec: number, opts?: PcapngWriteOptions): void {
    if (this.out.closed) throw new ColoError('ERR_INVALID_ARGUMENT', `${this.path}: write after close`);
    checkSlice(buf, off, len);
    checkTime(tsSec, tsNsec);
    const ifIndex = opts?.ifIndex ?? 0;
    const origLen = opts?.origLen ?? len;
    const comment = opts?.comment;
    if (!Number.isInteger(ifIndex) || ifIndex < 0 || ifIndex >= this.snaplens.length) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `ifIndex ${ifIndex} out of range (${this.snaplens.length} interfaces)`);
    }
    checkU32('origLen', origLen);
    const snap = this.snaplens[ifIndex]!;
    const capLen = snap === 0 ? len : Math.min(len, snap);
    const cLen = comment === undefined ? -1 : Buffer.byteLength(comment, 'utf8');
    if (cLen > 0xffff) throw new ColoError('ERR_INVALID_ARGUMENT', `comment is ${cLen} bytes, more than 65535`);
    // Options: the comment plus opt_endofopt, only when there is a comment.
    const optLen = cLen < 0 ? 0 : 4 + pad4(cLen) + 4;
    const total = 28 + pad4(capLen) + optLen + 4;

    // ns since the epoch as two uint32 halves, exactly: tsSec·10^9 = (tsSec·1953125)·2^9.
    const a = tsSec * 1953125; // < 2^53
    let hi = Math.floor(a / 8388608); // a / 2^23
    let lo = (a - hi * 8388608) * 512 + tsNsec;
    if (lo >= 4294967296) {
      hi++;
      lo -= 4294967296;
    }

    const out = this.out;
    const c = out.chunk;
    let o = out.reserve(28);
    c.writeUInt32LE(BT_EPB, o);
    c.writeUInt32LE(total, o + 4);
    c.writeUInt32LE(ifIndex, o + 8);
    c.writeUInt32LE(hi, o + 12);
    c.writeUInt32LE(lo, o + 16);
    c.writeUInt32LE(capLen, o + 20);
    c.writeUInt32LE(origLen, o + 24);
    out.bytes(buf, off, capLen);
    const pad = pad4(capLen) - capLen;
    o = out.reserve(pad + optLen + 4);
    for (let i = 0; i < pad; i++) c[o + i] = 0;
    o += pad;
    if (comment !== undefined) {
      c.writeUInt16LE(OPT_COMMENT, o);
      c.writeUInt16LE(cLen, o + 2);
      c.write(comment, o + 4, cLen, 'utf8');
      for (let i = o + 4 + cLen; i < o + 4 + pad4(cLen); i++) c[i] = 0;
      o += 4 + pad4(cLen);
      c.writeUInt32LE(0, o); // opt_endofopt
      o += 4;
    }
    c.writeUInt32LE(total, o);
    this.count++;
  }

  /** Hand buffered bytes to the OS. */
  flush(): void {
    this.out.flush();
  }

  /** Flush and close (idempotent). */
  close(): void {
    this.out.close();
  }

  private writeShb(): void {
    const appLen = Buffer.byteLength(USERAPPL);
    const total = 28 + 4 + pad4(appLen) + 4;
    const c = this.out.chunk;
    let o = this.out.reserve(total);
    c.fill(0, o, o + total);
    c.writeUInt32LE(BT_SHB, o);
    c.writeUInt32LE(total, o + 4);
    c.writeUInt32LE(PCAPNG_BOM, o + 8);
    c.writeUInt16LE(1, o + 12); // major
    c.writeUInt16LE(0, o + 14); // minor
    c.writeInt32LE(-1, o + 16); // section length unknown (-1 as int64)
    c.writeInt32LE(-1, o + 20);
    o += 24;
    c.writeUInt16LE(SHB_USERAPPL, o);
    c.writeUInt16LE(appLen, o + 2);
    c.write(USERAPPL, o + 4, 'utf8');
    o += 4 + pad4(appLen);
    o += 4; // opt_endofopt (zeros)
    c.writeUInt32LE(total, o);
  }

  private writeIdb(linkType: number, snaplen: number, name: string | undefined): void {
    const nameLen = name === undefined ? -1 : Buffer.byteLength(name, 'utf8');
    const nameOpt = nameLen < 0 ? 0 : 4 + pad4(nameLen);
    const total = 16 + nameOpt + 8 + 4 + 4;
    const c = this.out.chunk;
    let o = this.out.reserve(total);
    c.fill(0, o, o + total);
    c.writeUInt32LE(BT_IDB, o);
    c.writeUInt32LE(total, o + 4);
    c.writeUInt16LE(linkType, o + 8);
    c.writeUInt32LE(snaplen, o + 12);
    o += 16;
    if (name !== undefined) {
      c.writeUInt16LE(IF_NAME, o);
      c.writeUInt16LE(nameLen, o + 2);
      c.write(name, o + 4, 'utf8');
      o += nameOpt;
    }
    c.writeUInt16LE(IF_TSRESOL, o);
    c.writeUInt16LE(1, o + 2);
    c[o + 4] = 9;
    o += 8;
    o += 4; // opt_endofopt (zeros)
    c.writeUInt32LE(total, o);
  }
}
