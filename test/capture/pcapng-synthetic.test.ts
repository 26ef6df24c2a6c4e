/**
 * Hand-built pcapng files (test/capture/build.ts, written from the spec, not from our writer)
 * exercising what the shared captures do not: big-endian sections, several sections, several
 * interfaces with different link types and resolutions (base 10 and base 2), if_tsoffset,
 * OPB / SPB, comments, and blocks that must be skipped. tshark is the oracle.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasTool } from '../helpers/tools.js';
import { openCapture } from '../../src/capture/reader.js';
import type { PcapngReader } from '../../src/capture/pcapng.js';
import { CaptureError } from '../../src/errors.js';
import * as B from './build.js';
import { ourRows, tsharkRows } from './oracle.js';

const dir = mkdtempSync(join(tmpdir(), 'capture-ng-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pkt(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

function section(le: boolean, seed: number): Buffer[] {
  return [
    B.shb(le, [{ code: 4, value: Buffer.from('handmade') }]),
    B.idb(le, 1, 68, [B.tsresol(3), { code: 2, value: Buffer.from('eth0') }]),
    B.idb(le, 101, 100, [B.tsresol(0x80 | 20)]),
    B.idb(le, 113, 0, [B.tsresol(9), B.tsoffset(le, 1000n)]),
    // 10^-12 with a remainder small enough that tshark's 64-bit (rem·10^9) does not overflow.
    B.idb(le, 276, 0, [B.tsresol(12)]),
    B.idb(le, 1, 0, [B.tsresol(0x80 | 32), B.tsoffset(le, -100n)]),
    B.idb(le, 1, 0, []), // default resolution: µs
    B.epb(le, 0, 1700000000123n, pkt(60, seed), 60, [B.comment('hello'), B.comment('second comment ignored')]),
    B.epb(le, 1, (1700000000n << 20n) + 777777n, pkt(61, seed + 1), 1500),
    B.block(le, 4, Buffer.alloc(8)), // NRB (empty)
    B.epb(le, 2, 1700000000123456789n, pkt(62, seed + 2), 62, [B.comment('ünïcødé ✓')]),
    B.epb(le, 3, 10_000_000n * 10n ** 12n + 5_000_000_123n, pkt(63, seed + 3)), // 1e19 units: beyond 2^53
    B.block(le, 5, new B.Bytes(le).u32(0).u32(0).u32(0).done()), // ISB
    B.epb(le, 4, (1700000000n << 32n) + 3000000000n, pkt(64, seed + 4)),
    B.block(le, 0x40000bad, Buffer.from('PEN!custom data')), // custom, do not copy
    B.block(le, 0x99, Buffer.alloc(20)), // unknown type
    B.epb(le, 5, 1700000000999999n, pkt(1, seed + 5)),
    B.spb(le, pkt(68, seed + 6), 90), // sliced by IDB 0's snaplen 68
    B.spb(le, pkt(61, seed + 7), 61),
    B.opb(le, 0, 1700000001000n, pkt(65, seed + 8), 65, [B.comment('obsolete')]),
    B.epb(le, 5, 1700000002000000n, Buffer.alloc(0), 0, [B.comment('a'), B.comment('b')]),
  ];
}

function write(name: string, parts: Buffer[]): string {
  const f = join(dir, name);
  writeFileSync(f, Buffer.concat(parts));
  return f;
}

describe.skipIf(!hasTool('tshark'))('pcapng features vs tshark', () => {
  const cases: [string, Buffer[]][] = [
    ['le.pcapng', section(true, 1)],
    ['be.pcapng', section(false, 2)],
    ['le-be-le.pcapng', [...section(true, 3), ...section(false, 4), ...section(true, 5)]],
  ];
  for (const [name, parts] of cases) {
    it(name, () => {
      const f = write(name, parts);
      const t = tsharkRows(f);
      expect(t.err).toBe('');
      const ours = ourRows(f);
      expect(ours.error).toBeNull();
      expect(ours.rows.length).toBe(t.rows.length);
      expect(ours.rows.map((r) => r.time)).toEqual(t.rows.map((r) => r.time));
      expect(ours.rows).toEqual(t.rows);
      // The comment checks must not pass vacuously.
      expect(ours.rows.filter((r) => r.comment !== '').length).toBeGreaterThanOrEqual(4);
    });
  }
});

describe('pcapng interfaces and sections', () => {
  it('reads the interface list at open and resets it on a new section', () => {
    const f = write('sections.pcapng', [
      B.shb(true), B.idb(true, 1, 0), B.idb(true, 113, 0, [{ code: 2, value: Buffer.from('any') }]),
      B.epb(true, 1, 5n, pkt(20, 1)),
      B.shb(false), B.idb(false, 276, 0),
      B.epb(false, 0, 6n, pkt(20, 2)),
      B.idb(false, 101, 0), // an interface described after packets
      B.epb(false, 1, 7n, pkt(20, 3)),
    ]);
    const r = openCapture(f) as PcapngReader;
    expect(r.format).toBe('pcapng');
    expect(r.linkTypes).toEqual([1, 113]);
    expect(r.interfaces[1]!.name).toBe('any');
    const a = r.next()!;
    expect([a.ifIndex, a.linkType, a.tsSec, a.tsNsec]).toEqual([1, 113, 0, 5000]);
    const b = r.next()!;
    expect(r.linkTypes).toEqual([276]);
    expect(r.sectionCount).toBe(2);
    expect([b.ifIndex, b.linkType, b.index]).toEqual([0, 276, 1]);
    const c = r.next()!;
    expect(r.linkTypes).toEqual([276, 101]);
    expect([c.ifIndex, c.linkType, c.index]).toEqual([1, 101, 2]);
    expect(r.next()).toBeNull();
    expect(r.next()).toBeNull();
    r.close();
  });

  it('refuses a packet on an interface the section does not describe', () => {
    const parts = [B.shb(true), B.idb(true, 1, 0), B.epb(true, 0, 1n, pkt(10, 1)), B.epb(true, 1, 2n, pkt(10, 2))];
    const f = write('badif.pcapng', parts);
    const r = openCapture(f);
    expect(r.next()).not.toBeNull();
    let err: unknown;
    try {
      r.next();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CaptureError);
    expect((err as CaptureError).code).toBe('ERR_CAPTURE_FORMAT');
    expect((err as CaptureError).offset).toBe(parts[0]!.length + parts[1]!.length + parts[2]!.length);
    expect((err as CaptureError).message).toMatch(/interface 1/);
    r.close();
  });

  it('iteration yields independent copies and closes the reader', () => {
    const f = write('iter.pcapng', [B.shb(true), B.idb(true, 1, 0), B.epb(true, 0, 1n, pkt(10, 1)), B.epb(true, 0, 2n, pkt(12, 2))]);
    const r = openCapture(f);
    const all = [...r];
    expect(all.length).toBe(2);
    expect(all[0]).not.toBe(all[1]);
    expect(all[0]!.buf.subarray(all[0]!.off, all[0]!.off + all[0]!.capLen)).toEqual(pkt(10, 1));
    expect(all[1]!.buf.subarray(all[1]!.off, all[1]!.off + all[1]!.capLen)).toEqual(pkt(12, 2));
    expect(() => r.next()).toThrow(CaptureError);
  });
});
