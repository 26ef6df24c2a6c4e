import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CaptureMerge, recordTimeMs } from '../../src/capture/merge.js';
import { openCapture } from '../../src/capture/reader.js';
import { OWN_CAPTURES, sharedCapture } from '../helpers/paths.js';

interface Rec { t: number; sec: number; nsec: number; md5: string; index: number }

function readAll(path: string): Rec[] {
  const out: Rec[] = [];
  const r = openCapture(path);
  for (let x = r.next(); x !== null; x = r.next()) {
    out.push({ t: recordTimeMs(x), sec: x.tsSec, nsec: x.tsNsec, index: x.index, md5: createHash('md5').update(x.buf.subarray(x.off, x.off + x.capLen)).digest('hex') });
  }
  r.close();
  return out;
}

describe('CaptureMerge', () => {
  it('interleaves two captures in timestamp order, each in file order, bytes untouched', () => {
    const a = sharedCapture('tcp-reassembly.pcap');
    const b = sharedCapture('http-packets.pcap');
    const ra = readAll(a);
    const rb = readAll(b);
    const m = new CaptureMerge([a, b]);
    const seen: Rec[][] = [[], []];
    let prev = { sec: -Infinity, nsec: 0 };
    for (let i = m.next(); i >= 0; i = m.next()) {
      const x = m.record(i);
      expect(x.tsSec > prev.sec || (x.tsSec === prev.sec && x.tsNsec >= prev.nsec)).toBe(true);
      prev = { sec: x.tsSec, nsec: x.tsNsec };
      seen[i]!.push({ t: recordTimeMs(x), sec: x.tsSec, nsec: x.tsNsec, index: x.index, md5: createHash('md5').update(x.buf.subarray(x.off, x.off + x.capLen)).digest('hex') });
    }
    m.close();
    // Only valid if each file is itself in time order; check that assumption too.
    const sorted = (rs: Rec[]) => rs.every((r, i) => i === 0 || r.sec > rs[i - 1]!.sec || (r.sec === rs[i - 1]!.sec && r.nsec >= rs[i - 1]!.nsec));
    expect(sorted(ra) && sorted(rb)).toBe(true);
    expect(seen[0]).toEqual(ra);
    expect(seen[1]).toEqual(rb);
    expect(m.stats().map((s) => s.records)).toEqual([ra.length, rb.length]);
  });

  it('breaks timestamp ties by source order (a file merged with itself alternates 0, 1)', () => {
    const f = resolve(OWN_CAPTURES, 'demo-http.pcapng');
    const n = readAll(f).length;
    const m = new CaptureMerge([f, f]);
    const order: number[] = [];
    for (let i = m.next(); i >= 0; i = m.next()) order.push(i);
    m.close();
    expect(order.length).toBe(2 * n);
    for (let k = 0; k < order.length; k += 2) expect([order[k], order[k + 1]]).toEqual([0, 1]);
  });

  it('skips and counts records that cannot be Ethernet', () => {
    const m = new CaptureMerge([sharedCapture('microsecs_big_endian.pcap')]);
    expect(m.next()).toBe(-1);
    const st = m.stats()[0]!;
    expect(st.records).toBeGreaterThan(0);
    expect(st.notEthernet).toBe(st.records);
    m.close();
  });

  it('surfaces a damaged source as a CaptureError after returning every complete record before it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'colo-merge-'));
    try {
      const f = join(dir, 'cut.pcap');
      copyFileSync(sharedCapture('tcp-reassembly.pcap'), f);
      truncateSync(f, statSync(f).size - 7);
      const complete = readAll(sharedCapture('tcp-reassembly.pcap')).length - 1;
      const m = new CaptureMerge([f]);
      let got = 0;
      expect(() => {
        for (let i = m.next(); i >= 0; i = m.next()) got++;
      }).toThrowError(expect.objectContaining({ code: 'ERR_CAPTURE_TRUNCATED' }) as Error);
      expect(got).toBe(complete);
      m.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a non-capture path with a typed error', () => {
    expect(() => new CaptureMerge([sharedCapture('tcp-reassembly.pcap'), resolve(OWN_CAPTURES, '..', 'package.json')])).toThrowError(
      expect.objectContaining({ code: 'ERR_CAPTURE_FORMAT' }) as Error,
    );
  });
});
