/**
 * Classic pcap header details the shared captures do not exercise (layouts from
 * draft-ietf-opsawg-pcap), the µs writer mode (read back by pcap-parser), and the reader's
 * zero-copy contract (one reused record object, records are views into one chunk).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import pcapParser from 'pcap-parser';
import type { PcapPacket } from 'pcap-parser';
import { openCapture, type PcapReader } from '../../src/capture/reader.js';
import { PcapWriter } from '../../src/capture/writer.js';
import { sharedCapture } from '../helpers/paths.js';
import * as B from './build.js';

const dir = mkdtempSync(join(tmpdir(), 'capture-hdr-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
function save(b: Buffer): string {
  const f = join(dir, `h${seq++}.pcap`);
  writeFileSync(f, b);
  return f;
}

describe('classic pcap header fields', () => {
  for (const le of [true, false]) {
    it(`FCS bits in the link-type field are masked off (${le ? 'LE' : 'BE'})`, () => {
      // F bit (26) set, FCS length 2 × 16-bit words in bits 28..31, link type 1.
      const f = save(Buffer.concat([B.pcapHeader(le, false, 65535, 0x24000001), B.pcapRecord(le, 5, 6, Buffer.alloc(64, 1))]));
      const r = openCapture(f) as PcapReader;
      expect(r.linkTypes).toEqual([1]);
      expect(r.fcsLength).toBe(4);
      expect(r.snaplen).toBe(65535);
      const rec = r.next()!;
      expect([rec.linkType, rec.capLen, rec.tsSec, rec.tsNsec]).toEqual([1, 64, 5, 6000]);
      r.close();
    });
  }

  it('out-of-range fractions carry into the seconds', () => {
    const us = save(Buffer.concat([B.pcapHeader(true, false, 65535, 1), B.pcapRecord(true, 1000, 1_500_000, Buffer.alloc(1))]));
    const ns = save(Buffer.concat([B.pcapHeader(false, true, 65535, 1), B.pcapRecord(false, 1000, 2_999_999_999, Buffer.alloc(1))]));
    const [a] = [...openCapture(us)];
    expect([a!.tsSec, a!.tsNsec]).toEqual([1001, 500_000_000]);
    const [b] = [...openCapture(ns)];
    expect([b!.tsSec, b!.tsNsec]).toEqual([1002, 999_999_999]);
  });

  it('one reused record object, data viewed in one chunk', () => {
    const r = openCapture(sharedCapture('http-packets2.pcap'));
    const a = r.next()!;
    const firstBuf = a.buf;
    const b = r.next()!;
    expect(b).toBe(a);
    expect(b.buf).toBe(firstBuf);
    // The record header sits right before the data: incl_len at off-8 (little-endian file).
    expect(b.buf.readUInt32LE(b.off - 8)).toBe(b.capLen);
    r.close();
  });
});

describe('PcapWriter µs mode', () => {
  it('is readable by pcap-parser with the same records', async () => {
    const src = openCapture(sharedCapture('nanosecs_big_endian.pcap'));
    const f = join(dir, 'us.pcap');
    const w = new PcapWriter(f, { resolution: 'us' });
    const want: [number, number, Buffer][] = [];
    for (let rec = src.next(); rec; rec = src.next()) {
      w.write(rec.buf, rec.off, rec.capLen, rec.tsSec, rec.tsNsec);
      want.push([rec.tsSec, Math.floor(rec.tsNsec / 1000), Buffer.from(rec.buf.subarray(rec.off, rec.off + rec.capLen))]);
    }
    w.close();
    src.close();
    const got = await new Promise<PcapPacket[]>((res, rej) => {
      const out: PcapPacket[] = [];
      const p = pcapParser.parse(f);
      p.on('packet', (x) => out.push(x));
      p.on('error', rej);
      p.on('end', () => res(out));
    });
    expect(got.map((p) => [p.header.timestampSeconds, p.header.timestampMicroseconds, p.data])).toEqual(want);
    expect(want.some(([, us]) => us !== 0)).toBe(true);
  });
});
