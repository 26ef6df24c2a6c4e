/**
 * Truncated and corrupt captures: the reader must return exactly the complete records before
 * the damage, then throw CaptureError with the right code and the file offset of the damaged
 * record (block). Expected offsets come from tshark (frame.file_off) and from the format specs;
 * tshark on the same damaged file is a second oracle for how many records precede the damage.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasTool } from '../helpers/tools.js';
import { sharedCapture } from '../helpers/paths.js';
import { openCapture } from '../../src/capture/reader.js';
import { CaptureError } from '../../src/errors.js';
import * as B from './build.js';
import { SHARED_FILES, tsharkRows, type Row } from './oracle.js';

const HAVE_TSHARK = hasTool('tshark');
const dir = mkdtempSync(join(tmpdir(), 'capture-err-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let seq = 0;
function save(bytes: Buffer): string {
  const f = join(dir, `f${seq++}.cap`);
  writeFileSync(f, bytes);
  return f;
}

interface Outcome {
  offsets: number[];
  error: CaptureError | null;
  atOpen: boolean;
}

/** Read with our reader (small chunks too, so errors are met across refills). */
function readAll(file: string, chunkSize?: number): Outcome {
  let r;
  try {
    r = openCapture(file, chunkSize ? { chunkSize } : {});
  } catch (e) {
    if (!(e instanceof CaptureError)) throw e;
    return { offsets: [], error: e, atOpen: true };
  }
  const offsets: number[] = [];
  try {
    for (let rec = r.next(); rec; rec = r.next()) offsets.push(rec.fileOffset);
  } catch (e) {
    if (!(e instanceof CaptureError)) throw e;
    // The error is sticky: asking again gives the same error, no more records.
    expect(() => r.next()).toThrow(e);
    r.close();
    return { offsets, error: e, atOpen: false };
  }
  r.close();
  return { offsets, error: null, atOpen: false };
}

function expectError(o: Outcome, code: string, offset: number, before: number[], atOpen = false): void {
  expect(o.error, 'an error was raised').not.toBeNull();
  expect(o.error!.code).toBe(code);
  expect(o.error!.offset).toBe(offset);
  expect(o.atOpen).toBe(atOpen);
  expect(o.offsets).toEqual(before);
}

const isNg = (name: string) => name.endsWith('.pcapng');
/** Bytes from a record's start to its data: pcap record header 16, pcapng EPB 28 (spec layouts). */
const dataStart = (name: string) => (isNg(name) ? 28 : 16);

describe.skipIf(!HAVE_TSHARK)('truncated shared captures', () => {
  for (const name of SHARED_FILES) {
    it(name, () => {
      const src = sharedCapture(name);
      const bytes = readFileSync(src);
      const rows: Row[] = tsharkRows(src).rows;
      const offs = rows.map((r) => r.fileOffset);
      const n = rows.length;

      // Empty file and a cut inside the file header / section header block: refused at open.
      for (const cut of [0, 3, 10, isNg(name) ? 40 : 23]) {
        expectError(readAll(save(bytes.subarray(0, cut))), 'ERR_CAPTURE_TRUNCATED', 0, [], true);
      }

      for (const k of new Set([0, 1, n >> 1, n - 1])) {
        const off = offs[k]!;
        const before = offs.slice(0, k);
        // Clean cut at a record boundary: just fewer records.
        const clean = readAll(save(bytes.subarray(0, off)));
        expect(clean.error).toBeNull();
        expect(clean.offsets).toEqual(before);
        // Inside the record (block) header, and inside the record data.
        const cuts = [off + 5, off + dataStart(name) + (rows[k]!.capLen >> 1)];
        for (const cut of cuts) {
          const f = save(bytes.subarray(0, cut));
          expectError(readAll(f), 'ERR_CAPTURE_TRUNCATED', off, before);
          expectError(readAll(f, 7), 'ERR_CAPTURE_TRUNCATED', off, before);
        }
      }
      // Last byte missing.
      expectError(readAll(save(bytes.subarray(0, bytes.length - 1))), 'ERR_CAPTURE_TRUNCATED', offs[n - 1]!, offs.slice(0, n - 1));

      // tshark on a damaged copy: same number of complete records, and it also calls it cut short.
      const k = n >> 1;
      const f = save(bytes.subarray(0, offs[k]! + dataStart(name) + (rows[k]!.capLen >> 1)));
      const t = tsharkRows(f);
      expect(t.err).toMatch(/cut short/);
      expect(t.rows.map((r) => r.fileOffset)).toEqual(readAll(f).offsets);
    });
  }
});

/** Patch a copy of `bytes`. */
function patched(bytes: Buffer, fn: (b: Buffer) => void): Buffer {
  const b = Buffer.from(bytes);
  fn(b);
  return b;
}

describe.skipIf(!HAVE_TSHARK)('corrupt classic pcap', () => {
  for (const name of ['three_http_streams.pcap', 'microsecs_big_endian.pcap', 'nanosecs_big_endian.pcap']) {
    it(`${name}: impossible captured length, bad magic, bad version`, () => {
      const src = sharedCapture(name);
      const bytes = readFileSync(src);
      const le = bytes.readUInt32LE(0) === 0xa1b2c3d4 || bytes.readUInt32LE(0) === 0xa1b23c4d;
      const offs = tsharkRows(src).rows.map((r) => r.fileOffset);
      const k = Math.min(5, offs.length - 2);
      // incl_len of record k (offset 8 in the record header) claims 300000 bytes.
      const f = save(patched(bytes, (b) => (le ? b.writeUInt32LE(300000, offs[k]! + 8) : b.writeUInt32BE(300000, offs[k]! + 8))));
      const o = readAll(f);
      expectError(o, 'ERR_CAPTURE_FORMAT', offs[k]!, offs.slice(0, k));
      expect(o.error!.message).toContain(`record ${k} claims 300000 captured bytes, more than the 262144 limit`);
      const t = tsharkRows(f);
      expect(t.err).toMatch(/300000-byte packet/);
      expect(t.rows.length).toBe(k);

      const badMagic = save(patched(bytes, (b) => b.writeUInt32BE(0xdeadbeef, 0)));
      expectError(readAll(badMagic), 'ERR_CAPTURE_FORMAT', 0, [], true);
      expect(readAll(badMagic).error!.message).toMatch(/deadbeef/);
      expect(tsharkRows(badMagic).status).not.toBe(0);

      const badVersion = save(patched(bytes, (b) => (le ? b.writeUInt16LE(3, 4) : b.writeUInt16BE(3, 4))));
      expectError(readAll(badVersion), 'ERR_CAPTURE_FORMAT', 4, [], true);
    });
  }

  it('a stricter maxCapLen is honoured', () => {
    const src = sharedCapture('three_http_streams.pcap');
    const r = openCapture(src, { maxCapLen: 100 });
    let n = 0;
    try {
      for (let rec = r.next(); rec; rec = r.next()) n++;
    } catch (e) {
      expect((e as CaptureError).code).toBe('ERR_CAPTURE_FORMAT');
      expect((e as CaptureError).message).toMatch(/more than the 100 limit/);
    }
    r.close();
    // tshark's lengths say how many records fit under 100 bytes before the first bigger one.
    const lens = tsharkRows(src).rows.map((x) => x.capLen);
    expect(n).toBe(lens.findIndex((l) => l > 100));
  });
});

describe.skipIf(!HAVE_TSHARK)('corrupt pcapng', () => {
  const src = sharedCapture('ipv6.pcapng');
  const bytes = readFileSync(src);
  const offs = tsharkRows(src).rows.map((r) => r.fileOffset);
  const k = 7;
  const blockLen = bytes.readUInt32LE(offs[k]! + 4);

  const cases: [string, (b: Buffer) => void, RegExp][] = [
    ['length not a multiple of 4', (b) => b.writeUInt32LE(blockLen + 2, offs[k]! + 4), /not a multiple of 4/],
    ['length below the minimum', (b) => b.writeUInt32LE(8, offs[k]! + 4), /less than the minimum 32/],
    ['trailing length mismatch', (b) => b.writeUInt32LE(blockLen + 4, offs[k]! + blockLen - 4), /trailing length/],
    ['captured length larger than the block', (b) => b.writeUInt32LE(blockLen, offs[k]! + 20), /has room for/],
    ['captured length over the limit', (b) => b.writeUInt32LE(300000, offs[k]! + 20), /claims 300000 captured bytes, more than the 262144 limit/],
    ['absurd block length', (b) => b.writeUInt32LE(0x7ffffff0, offs[k]! + 4), /more than the \d+ limit/],
    ['undescribed interface', (b) => b.writeUInt32LE(3, offs[k]! + 8), /interface 3/],
  ];
  for (const [what, fn, msg] of cases) {
    it(what, () => {
      const f = save(patched(bytes, fn));
      const o = readAll(f);
      expectError(o, 'ERR_CAPTURE_FORMAT', offs[k]!, offs.slice(0, k));
      expect(o.error!.message).toMatch(msg);
      expectError(readAll(f, 64), 'ERR_CAPTURE_FORMAT', offs[k]!, offs.slice(0, k));
      // tshark also stops at that block.
      const t = tsharkRows(f);
      expect(t.err).not.toBe('');
      expect(t.rows.length).toBe(k);
    });
  }

  it('bad byte-order magic in the section header is refused at open', () => {
    const f = save(patched(bytes, (b) => b.writeUInt32LE(0x11223344, 8)));
    expectError(readAll(f), 'ERR_CAPTURE_FORMAT', 0, [], true);
  });

  it('a bad second section header is reported at its own offset', () => {
    const good = [B.shb(true), B.idb(true, 1, 0), B.epb(true, 0, 1n, Buffer.alloc(20))];
    const bad = patched(B.shb(false), (b) => b.writeUInt16BE(2, 12)); // major version 2
    const at = Buffer.concat(good).length;
    const o = readAll(save(Buffer.concat([...good, bad, B.idb(false, 1, 0), B.epb(false, 0, 1n, Buffer.alloc(20))])));
    expectError(o, 'ERR_CAPTURE_FORMAT', at, [at - good[2]!.length]);
    expect(o.error!.message).toMatch(/version 2/);
  });

  it('a damaged interface block right after the section header surfaces from next(), not open', () => {
    const f = save(Buffer.concat([B.shb(true), patched(B.idb(true, 1, 0), (b) => b.writeUInt32LE(24, 16)), B.epb(true, 0, 1n, Buffer.alloc(20))]));
    const o = readAll(f);
    expectError(o, 'ERR_CAPTURE_FORMAT', B.shb(true).length, []);
  });

  it('unknown magic and non-existent file', () => {
    expectError(readAll(save(Buffer.from('GIF89a not a capture at all'))), 'ERR_CAPTURE_FORMAT', 0, [], true);
    expect(() => openCapture(join(dir, 'missing.pcap'))).toThrow(expect.objectContaining({ code: 'ERR_CAPTURE_IO' }));
  });
});
