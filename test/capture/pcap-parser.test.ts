/**
 * pcap-parser (an independent classic-pcap parser, µs magic only) must agree with our reader
 * on count, lengths, timestamps and bytes for every shared classic-pcap file it can read.
 */
import { describe, expect, it } from 'vitest';
import pcapParser from 'pcap-parser';
import type { PcapPacket } from 'pcap-parser';
import { sharedCapture } from '../helpers/paths.js';
import { openCapture } from '../../src/capture/reader.js';
import { SHARED_FILES } from './oracle.js';

function parseAll(file: string): Promise<PcapPacket[]> {
  return new Promise((resolve, reject) => {
    const out: PcapPacket[] = [];
    const p = pcapParser.parse(file);
    p.on('packet', (pk) => out.push(pk));
    p.on('error', reject);
    p.on('end', () => resolve(out));
  });
}

// pcap-parser understands only the microsecond magic (it rejects a1b23c4d and pcapng).
const READABLE = SHARED_FILES.filter((f) => f.endsWith('.pcap') && f !== 'nanosecs_big_endian.pcap');

describe('reader agrees with pcap-parser', () => {
  it('covers the classic-pcap µs files, both byte orders', () => {
    expect(READABLE).toContain('microsecs_big_endian.pcap');
    expect(READABLE.length).toBeGreaterThanOrEqual(11);
  });

  for (const name of READABLE) {
    it(name, async () => {
      const file = sharedCapture(name);
      const theirs = await parseAll(file);
      const r = openCapture(file);
      let i = 0;
      for (let rec = r.next(); rec; rec = r.next(), i++) {
        const t = theirs[i];
        expect(t, `record ${i} exists in pcap-parser's output`).toBeDefined();
        expect(rec.capLen).toBe(t!.header.capturedLength);
        expect(rec.origLen).toBe(t!.header.originalLength);
        expect(rec.tsSec).toBe(t!.header.timestampSeconds);
        expect(rec.tsNsec).toBe(t!.header.timestampMicroseconds * 1000);
        // Byte comparison without slicing our buffer.
        expect(rec.buf.compare(t!.data, 0, t!.data.length, rec.off, rec.off + rec.capLen)).toBe(0);
      }
      r.close();
      expect(i).toBe(theirs.length);
    });
  }
});
