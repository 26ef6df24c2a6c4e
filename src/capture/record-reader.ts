/**
 * What the pcap and pcapng readers share: the chunked file, the reused record, sticky failure
 * (after a damaged record every `next()` repeats the same error, so a caller that catches and
 * retries cannot skip past damage), `close()` and cold-path iteration.
 */
import { CaptureError } from '../errors.js';
import type { ChunkedFile } from './chunk.js';
import { copyRecord, emptyRecord, type CaptureRecord } from './types.js';

export abstract class RecordReader {
  protected readonly file: ChunkedFile;
  protected readonly maxCapLen: number;
  protected readonly rec: CaptureRecord = emptyRecord();
  protected index = 0;
  private failed: CaptureError | null = null;

  protected constructor(file: ChunkedFile, maxCapLen: number) {
    this.file = file;
    this.maxCapLen = maxCapLen;
  }

  get path(): string {
    return this.file.path;
  }

  /** Next record (reused object, valid until the next call), or null at a clean end of file. */
  next(): CaptureRecord | null {
    if (this.failed) throw this.failed;
    try {
      return this.readNext();
    } catch (e) {
      if (e instanceof CaptureError) this.failed = e;
      throw e;
    }
  }

  /** Close the file; a later `next()` throws ERR_CAPTURE_IO. */
  close(): void {
    this.file.close();
    this.failed ??= new CaptureError('ERR_CAPTURE_IO', this.file.path, this.file.fileOffset(this.file.pos), 'reader is closed');
  }

  /** Cold-path iteration: yields independent copies and closes the reader at the end. */
  *[Symbol.iterator](): Iterator<CaptureRecord> {
    try {
      for (let r = this.next(); r !== null; r = this.next()) yield copyRecord(r);
    } finally {
      this.close();
    }
  }

  /** Read the next record; throw a CaptureError (see `fail`) on damage. */
  protected abstract readNext(): CaptureRecord | null;

  /** Throw a CaptureError located at the current read position. */
  protected fail(code: 'ERR_CAPTURE_TRUNCATED' | 'ERR_CAPTURE_FORMAT', msg: string, at = this.file.fileOffset(this.file.pos)): never {
    throw new CaptureError(code, this.file.path, at, msg);
  }
}
