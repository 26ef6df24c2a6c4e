/**
 * Every shared reference capture, read by our reader, must agree with tshark record by record:
 * file offset, interface, captured and original length, timestamp (printed by tshark with 9
 * decimals, so exact to the file's resolution), and the MD5 of the captured bytes.
 * Reading with tiny chunks (forcing compaction and growth) must give the same answer.
 */
import { describe, expect, it } from 'vitest';
import { hasTool } from '../helpers/tools.js';
import { sharedCapture } from '../helpers/paths.js';
import { ourRows, SHARED_FILES, tsharkRows } from './oracle.js';

const HAVE_TSHARK = hasTool('tshark');

describe.skipIf(!HAVE_TSHARK)('reader agrees with tshark on every shared capture', () => {
  it('found the shared captures', () => {
    expect(SHARED_FILES.length).toBeGreaterThanOrEqual(13);
    expect(SHARED_FILES).toContain('ipv6.pcapng');
    expect(SHARED_FILES).toContain('nanosecs_big_endian.pcap');
  });

  for (const name of SHARED_FILES) {
    it(name, () => {
      const file = sharedCapture(name);
      const t = tsharkRows(file);
      expect(t.err).toBe('');
      expect(t.rows.length).toBeGreaterThan(0);
      const ours = ourRows(file);
      expect(ours.error).toBeNull();
      expect(ours.format).toBe(name.endsWith('.pcapng') ? 'pcapng' : 'pcap');
      expect(ours.rows.length).toBe(t.rows.length);
      // Compare column-wise first for readable failures, then the whole rows.
      expect(ours.rows.map((r) => r.capLen)).toEqual(t.rows.map((r) => r.capLen));
      expect(ours.rows.map((r) => r.origLen)).toEqual(t.rows.map((r) => r.origLen));
      expect(ours.rows.map((r) => r.time)).toEqual(t.rows.map((r) => r.time));
      expect(ours.rows).toEqual(t.rows);
    });
  }

  it('gives identical results with chunk sizes that force compaction and growth', () => {
    for (const name of ['ipv6.pcapng', 'nanosecs_big_endian.pcap', 'microsecs_big_endian.pcap', 'one_tcp_stream.pcap']) {
      const file = sharedCapture(name);
      const ref = ourRows(file).rows;
      for (const chunkSize of [1, 17, 100, 1500, 4096]) {
        const r = ourRows(file, { chunkSize });
        expect(r.error).toBeNull();
        expect(r.rows).toEqual(ref);
      }
    }
  });
});
