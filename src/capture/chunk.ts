/**
 * Chunked, pull-based file input shared by the capture readers.
 *
 * The file is read with `fs.readSync` (positional) into one reused Buffer. Callers look at
 * `buf[pos, end)`, ask `ensure(n)` for at least n contiguous bytes at `pos`, and advance `pos`
 * themselves. When a refill is needed the unconsumed tail is moved to `HEADROOM` (not to 0),
 * so there are always at least HEADROOM already-consumed bytes before `pos`: together with the
 * record or block header that stays in front of the packet data, this lets link-type
 * normalisation write a synthetic Ethernet header in front of a record without copying it.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CaptureError } from '../errors.js';

/** Bytes always kept free in front of the unconsumed data after a refill. */
export const HEADROOM = 16;

export class ChunkedFile {
  readonly path: string;
  /** The chunk. Replaced (grown) when one record needs more room: re-read it after `ensure`. */
  buf: Buffer;
  /** Next unconsumed byte in `buf`. */
  pos = HEADROOM;
  /** End of valid bytes in `buf`. */
  end = HEADROOM;
  private fd: number;
  /** File offset of buf[0]. */
  private base = -HEADROOM;
  /** File offset of the next byte to read from disk. */
  private readPos = 0;
  private eof = false;

  /** Opens `path`; throws CaptureError ERR_CAPTURE_IO when it cannot. */
  constructor(path: string, chunkSize: number) {
    this.path = path;
    try {
      this.fd = openSync(path, 'r');
    } catch (e) {
      throw new CaptureError('ERR_CAPTURE_IO', path, 0, `cannot open: ${(e as Error).message}`, { cause: e });
    }
    this.buf = Buffer.allocUnsafeSlow(HEADROOM + chunkSize);
  }

  /** File offset of chunk index `i`. */
  fileOffset(i: number): number {
    return this.base + i;
  }

  /** Bytes available at `pos` without reading. */
  get available(): number {
    return this.end - this.pos;
  }

  /**
   * Make at least `n` bytes available at `pos`. Returns false when the file ends first (then
   * everything up to the end of file is available). May move the data and replace `buf`.
   */
  ensure(n: number): boolean {
    if (this.end - this.pos >= n) return true;
    return this.refill(n);
  }

  private refill(n: number): boolean {
    if (this.fd < 0) throw new CaptureError('ERR_CAPTURE_IO', this.path, this.fileOffset(this.pos), 'reader is closed');
    if (this.eof) return false;
    const avail = this.end - this.pos;
    if (HEADROOM + n > this.buf.length) {
      // One record larger than the chunk: grow (at least double) and keep it.
      const grown = Buffer.allocUnsafeSlow(Math.max(HEADROOM + n, this.buf.length * 2));
      this.buf.copy(grown, HEADROOM, this.pos, this.end);
      this.buf = grown;
    } else if (this.pos !== HEADROOM) {
      this.buf.copyWithin(HEADROOM, this.pos, this.end);
    }
    this.base += this.pos - HEADROOM;
    this.pos = HEADROOM;
    this.end = HEADROOM + avail;
    while (this.end - this.pos < n) {
      let got: number;
      try {
        got = readSync(this.fd, this.buf, this.end, this.buf.length - this.end, this.readPos);
      } catch (e) {
        throw new CaptureError('ERR_CAPTURE_IO', this.path, this.readPos, `read failed: ${(e as Error).message}`, { cause: e });
      }
      if (got === 0) {
        this.eof = true;
        return false;
      }
      this.end += got;
      this.readPos += got;
    }
    return true;
  }

  close(): void {
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}
