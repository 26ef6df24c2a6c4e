/**
 * Writers: write-then-read round trips must reproduce every record exactly, rewriting what we
 * read must give a byte-identical file, and tshark must read our files with the same records
 * (lengths, timestamps, bytes, interfaces, comments) as the shared originals.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasTool } from '../helpers/tools.js';
import { sharedCapture } from '../helpers/paths.js';
import { openCapture } from '../../src/capture/reader.js';
import { PcapngWriter, PcapWriter } from '../../src/capture/writer.js';
import { ourRows, SHARED_FILES, tsharkRows, type Row } from './oracle.js';

const HAVE_TSHARK = hasTool('tshark');
const dir = mkdtempSync(join(tmpdir(), 'capture-rt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const tmp = (ext: string) => join(dir, `w${seq++}.${ext}`);

const IFACES = [
  { linkType: 1, name: 'eth0' },
  { linkType: 101, name: 'raw ip', snaplen: 0 },
  { linkType: 113 },
];
/** The comment (or none) our pcapng copies give record i: lengths 0..9 exercise the padding. */
function commentFor(i: number): string | undefined {
  if (i % 3 === 2) return undefined;
  return i % 5 === 0 ? `pkt ${i} ✓ ünïcode` : 'x'.repeat(i % 10);
}

/** Copy a capture with our reader into a pcap (same link type) or a 3-interface pcapng with comments. */
function copy(src: string, to: 'pcap' | 'pcapng'): string {
  const r = openCapture(src);
  const out = tmp(to);
  if (to === 'pcap') {
    const w = new PcapWriter(out, { linkType: r.linkTypes[0] });
    for (let rec = r.next(); rec; rec = r.next()) w.write(rec.buf, rec.off, rec.capLen, rec.tsSec, rec.tsNsec, rec.origLen);
    w.close();
  } else {
    const w = new PcapngWriter(out, { interfaces: IFACES });
    for (let rec = r.next(); rec; rec = r.next()) {
      w.write(rec.buf, rec.off, rec.capLen, rec.tsSec, rec.tsNsec, { origLen: rec.origLen, ifIndex: rec.index % 3, comment: commentFor(rec.index) });
    }
    w.close();
  }
  r.close();
  return out;
}

/** Rows without file offsets (they differ between containers). */
const sansOffset = (rows: Row[]) => rows.map(({ fileOffset: _, ...rest }) => rest);

describe('write-then-read round trips', () => {
  for (const name of SHARED_FILES) {
    it(name, () => {
      const src = sharedCapture(name);
      const orig = ourRows(src);
      for (const kind of ['pcap', 'pcapng'] as const) {
        const a = copy(src, kind);
        const back = ourRows(a);
        expect(back.error).toBeNull();
        expect(back.format).toBe(kind);
        const expected = orig.rows.map((r, i) =>
          kind === 'pcap' ? r : { ...r, ifIndex: i % 3, comment: commentFor(i) ?? '' },
        );
        expect(sansOffset(back.rows)).toEqual(sansOffset(expected));
        // Rewriting what we read back is byte-identical.
        const b = copy(a, kind);
        expect(readFileSync(b).equals(readFileSync(a))).toBe(true);
      }
    });
  }
});

describe.skipIf(!HAVE_TSHARK)('tshark reads what we write', () => {
  for (const name of ['http-packets2.pcap', 'nanosecs_big_endian.pcap', 'ipv6.pcapng', 'microsecs_big_endian.pcap']) {
    it(name, () => {
      const src = sharedCapture(name);
      const ref = tsharkRows(src);
      expect(ref.rows.length).toBeGreaterThan(0);
      const asPcap = tsharkRows(copy(src, 'pcap'));
      expect(asPcap.err).toBe('');
      expect(sansOffset(asPcap.rows)).toEqual(sansOffset(ref.rows));
      const ng = copy(src, 'pcapng');
      const asNg = tsharkRows(ng);
      expect(asNg.err).toBe('');
      expect(sansOffset(asNg.rows)).toEqual(sansOffset(ref.rows.map((r, i) => ({ ...r, ifIndex: i % 3, comment: commentFor(i) ?? '' }))));
      const names = spawnSync('tshark', ['-r', ng, '-T', 'fields', '-e', 'frame.interface_name', '-c', '3'], { encoding: 'utf8' }).stdout.trim().split('\n');
      expect(names).toEqual(['eth0', 'raw ip', 'unknown']); // tshark's word for an unnamed interface
    });
  }

  it('snaplen cuts records, keeps the wire length; odd timestamps survive', () => {
    const pkt = Buffer.alloc(300, 0xab);
    const f = tmp('pcap');
    const w = new PcapWriter(f, { snaplen: 100, linkType: 1 });
    w.write(pkt, 0, 300, 0, 0);
    w.write(pkt, 10, 50, 4294967295, 999_999_999, 1500);
    w.write(pkt, 0, 100, 1_700_000_000, 1);
    w.close();
    const g = tmp('pcapng');
    const n = new PcapngWriter(g, { interfaces: [{ linkType: 1, snaplen: 100 }] });
    n.write(pkt, 0, 300, 0, 0);
    n.write(pkt, 10, 50, 4294967295, 999_999_999, { origLen: 1500 });
    n.write(pkt, 0, 100, 1_700_000_000, 1, { comment: '' });
    n.close();
    for (const file of [f, g]) {
      const t = tsharkRows(file);
      expect(t.err).toBe('');
      expect(t.rows.map((r) => [r.capLen, r.origLen, r.time])).toEqual([
        [100, 300, '0.000000000'],
        [50, 1500, '4294967295.999999999'],
        [100, 100, '1700000000.000000001'],
      ]);
      expect(sansOffset(ourRows(file, undefined, false).rows)).toEqual(sansOffset(t.rows));
    }
  });
});

describe('writer details', () => {
  it('records bigger than the output chunk go straight to the file', () => {
    const big = Buffer.alloc(700_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff;
    for (const kind of ['pcap', 'pcapng'] as const) {
      const f = tmp(kind);
      const w = kind === 'pcap' ? new PcapWriter(f, { snaplen: 1 << 20 }) : new PcapngWriter(f, { interfaces: [{ linkType: 1, snaplen: 0 }] });
      for (let i = 0; i < 3; i++) {
        if (w instanceof PcapWriter) w.write(big, i, big.length - i, 10, i);
        else w.write(big, i, big.length - i, 10, i, { comment: `big ${i}` });
      }
      w.close();
      // Default 262144 limit refuses them; a larger limit reads them (the chunk grows).
      expect(() => openCapture(f).next()).toThrow(/more than the 262144 limit/);
      const r = openCapture(f, { maxCapLen: 1 << 20 });
      for (let i = 0; i < 3; i++) {
        const rec = r.next()!;
        expect(rec.capLen).toBe(big.length - i);
        expect(rec.buf.compare(big, i, big.length, rec.off, rec.off + rec.capLen)).toBe(0);
        expect(rec.tsNsec).toBe(i);
      }
      expect(r.next()).toBeNull();
      r.close();
    }
  });

  it('rejects bad arguments with ERR_INVALID_ARGUMENT', () => {
    const buf = Buffer.alloc(10);
    const w = new PcapngWriter(tmp('pcapng'), { interfaces: [{ linkType: 1 }] });
    const bad = (fn: () => void) => expect(fn).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    bad(() => w.write(buf, 0, 10, -1, 0));
    bad(() => w.write(buf, 0, 10, 1.5, 0));
    bad(() => w.write(buf, 0, 10, 0, 1e9));
    bad(() => w.write(buf, 5, 10, 0, 0));
    bad(() => w.write(buf, 0, 10, 0, 0, { ifIndex: 1 }));
    bad(() => w.write(buf, 0, 10, 0, 0, { comment: 'x'.repeat(65536) }));
    w.write(buf, 0, 10, 0, 0, { comment: 'y'.repeat(65535) });
    w.close();
    bad(() => w.write(buf, 0, 10, 0, 0));
    bad(() => new PcapngWriter(tmp('pcapng'), { interfaces: [] }));
    bad(() => new PcapWriter(tmp('pcap'), { snaplen: -1 }));
    expect(() => new PcapWriter(join(dir, 'no', 'such', 'dir.pcap'))).toThrow(expect.objectContaining({ code: 'ERR_CAPTURE_IO' }));
  });
});
