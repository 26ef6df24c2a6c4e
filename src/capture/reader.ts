/**
 * Entry point for reading captures: `openCapture` sniffs the magic and returns the matching
 * pull-based reader (classic pcap or pcapng).
 */
import { CaptureError, ColoError } from '../errors.js';
import { u32 } from './bytes.js';
import { ChunkedFile } from './chunk.js';
import { PCAP_MAGIC_NS, PCAP_MAGIC_US, PcapReader } from './pcap.js';
import { BT_SHB, PcapngReader } from './pcapng.js';
import { CHUNK_SIZE_DEFAULT, MAX_CAPLEN_DEFAULT, type CaptureReader, type OpenCaptureOptions } from './types.js';

export type { CaptureFormat, CaptureReader, CaptureRecord, OpenCaptureOptions } from './types.js';
export { MAX_CAPLEN_DEFAULT, CHUNK_SIZE_DEFAULT, copyRecord } from './types.js';
export { PcapReader } from './pcap.js';
export { PcapngReader, type PcapngInterface } from './pcapng.js';

/**
 * Open a capture file and detect its format from the first four bytes.
 *
 * Throws `CaptureError` at open only for problems before the first record: unreadable file
 * (ERR_CAPTURE_IO), unknown magic or bad file/section header (ERR_CAPTURE_FORMAT), file too
 * short for its header (ERR_CAPTURE_TRUNCATED). Problems with records surface from `next()`.
 */
export function openCapture(path: string, opts: OpenCaptureOptions = {}): CaptureReader {
  const chunkSize = opts.chunkSize ?? CHUNK_SIZE_DEFAULT;
  const maxCapLen = opts.maxCapLen ?? MAX_CAPLEN_DEFAULT;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new ColoError('ERR_INVALID_ARGUMENT', `chunkSize must be a positive integer, got ${chunkSize}`);
  if (!Number.isInteger(maxCapLen) || maxCapLen < 0) throw new ColoError('ERR_INVALID_ARGUMENT', `maxCapLen must be a non-negative integer, got ${maxCapLen}`);
  const file = new ChunkedFile(path, chunkSize);
  try {
    if (!file.ensure(4)) {
      throw new CaptureError('ERR_CAPTURE_TRUNCATED', path, 0, `file is ${file.available} bytes long, too short for any capture header`);
    }
    const be = u32(file.buf, file.pos, false);
    const le = u32(file.buf, file.pos, true);
    if (be === BT_SHB) return new PcapngReader(file, maxCapLen);
    if (be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS || le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS) return new PcapReader(file, maxCapLen);
    throw new CaptureError('ERR_CAPTURE_FORMAT', path, 0, `unknown capture magic 0x${be.toString(16).padStart(8, '0')} (neither pcap nor pcapng)`);
  } catch (e) {
    file.close();
    throw e;
  }
}
