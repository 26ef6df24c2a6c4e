/**
 * Link-type normalisation. Raw-IP, SLL and SLL2 captures are made from the Ethernet frames of
 * shared captures (headers laid out per tcpdump.org/linktypes.html), read back and normalised;
 * the result must be the original frame's L3 bytes behind the right EtherType and the
 * documented synthetic MACs. tshark must decode our cooked files to the same addresses as the
 * originals, and the normalised frames (re-written as Ethernet) too. Names are checked
 * against tcpdump's.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasTool } from '../helpers/tools.js';
import { sharedCapture } from '../helpers/paths.js';
import { linkTypeName, toEthernet } from '../../src/capture/linktype.js';
import { openCapture } from '../../src/capture/reader.js';
import { PcapWriter } from '../../src/capture/writer.js';
import type { CaptureRecord } from '../../src/capture/types.js';

const dir = mkdtempSync(join(tmpdir(), 'capture-lt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const tmp = () => join(dir, `l${seq++}.pcap`);

interface Frame {
  data: Buffer; // the whole Ethernet frame
  origLen: number;
  tsSec: number;
  tsNsec: number;
}

function frames(name: string): Frame[] {
  const out: Frame[] = [];
  const r = openCapture(sharedCapture(name));
  expect(r.linkTypes).toEqual([1]);
  for (let rec = r.next(); rec; rec = r.next()) {
    if (rec.capLen < 14) continue;
    out.push({ data: Buffer.from(rec.buf.subarray(rec.off, rec.off + rec.capLen)), origLen: rec.origLen, tsSec: rec.tsSec, tsNsec: rec.tsNsec });
  }
  r.close();
  return out;
}

const etherType = (f: Frame) => f.data.readUInt16BE(12);
const isIp = (f: Frame) => etherType(f) === 0x0800 || etherType(f) === 0x86dd;

type Kind = 'raw' | 'ipv4' | 'ipv6' | 'raw12' | 'sll' | 'sll2';
const LT: Record<Kind, number> = { raw: 101, ipv4: 228, ipv6: 229, raw12: 12, sll: 113, sll2: 276 };

/** The cooked header a Linux capture would have put in front of this frame's L3 bytes. */
function cookedHeader(kind: Kind, f: Frame, i: number): Buffer {
  const src = f.data.subarray(6, 12);
  if (kind === 'sll') {
    const h = Buffer.alloc(16);
    h.writeUInt16BE(i % 2 ? 4 : 0, 0); // outgoing / to us
    h.writeUInt16BE(1, 2); // ARPHRD_ETHER
    h.writeUInt16BE(6, 4);
    src.copy(h, 6);
    h.writeUInt16BE(etherType(f), 14);
    return h;
  }
  if (kind === 'sll2') {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(etherType(f), 0);
    h.writeUInt32BE(3, 4); // ifindex
    h.writeUInt16BE(1, 8);
    h[10] = i % 2 ? 4 : 0;
    h[11] = 6;
    src.copy(h, 12);
    return h;
  }
  return Buffer.alloc(0);
}

function wants(kind: Kind, f: Frame): boolean {
  // 802.3 length-field frames have no EtherType (Linux would cook them as ETH_P_802_2).
  if (kind === 'sll' || kind === 'sll2') return etherType(f) >= 0x0600;
  if (kind === 'ipv4') return etherType(f) === 0x0800;
  if (kind === 'ipv6') return etherType(f) === 0x86dd;
  return isIp(f);
}

function makeCooked(kind: Kind, fs: Frame[]): { file: string; used: Frame[] } {
  const file = tmp();
  const w = new PcapWriter(file, { linkType: LT[kind] });
  const used: Frame[] = [];
  fs.forEach((f, i) => {
    if (!wants(kind, f)) return;
    const d = Buffer.concat([cookedHeader(kind, f, i), f.data.subarray(14)]);
    w.write(d, 0, d.length, f.tsSec, f.tsNsec, f.origLen - 14 + (d.length - (f.data.length - 14)));
    used.push(f);
  });
  w.close();
  return { file, used };
}

/** What the normalised frame must be: zero destination, documented source, original EtherType and L3 bytes. */
function expectedFrame(f: Frame, kind: Kind): Buffer {
  const cooked = kind === 'sll' || kind === 'sll2';
  return Buffer.concat([Buffer.alloc(6), cooked ? f.data.subarray(6, 12) : Buffer.alloc(6), f.data.subarray(12)]);
}

function expectNormalised(rec: CaptureRecord, f: Frame, kind: Kind): void {
  const ok = toEthernet(rec);
  const got = rec.buf.subarray(rec.off, rec.off + rec.capLen);
  // One cheap comparison per record; the detailed ones only when it fails.
  if (ok && rec.linkType === 1 && rec.origLen === f.origLen && got.equals(expectedFrame(f, kind))) return;
  expect(ok).toBe(true);
  expect(rec.linkType).toBe(1);
  expect(rec.origLen).toBe(f.origLen);
  expect(got).toEqual(expectedFrame(f, kind));
}

const SOURCES = ['http-packets2.pcap', 'ipv6.pcapng', 'nanosecs_big_endian.pcap', 'many-protocols.pcap', 'ip6_fragments.pcap'];
const KINDS: Kind[] = ['raw', 'raw12', 'ipv4', 'ipv6', 'sll', 'sll2'];

describe('toEthernet on generated raw-IP / SLL / SLL2 captures', () => {
  for (const src of SOURCES) {
    it(src, () => {
      const fs = frames(src);
      for (const kind of KINDS) {
        const { file, used } = makeCooked(kind, fs);
        if (kind === 'sll' || kind === 'raw') expect(used.length).toBeGreaterThan(0);
        if (src === 'many-protocols.pcap' && kind === 'sll') {
          // Non-IP EtherTypes (ARP, VLAN...) are covered, and 802.3 frames were left out.
          expect(used.some((f) => !isIp(f))).toBe(true);
          expect(used.length).toBeLessThan(fs.length);
        }
        for (const chunkSize of [undefined, 64]) {
          const r = openCapture(file, chunkSize ? { chunkSize } : {});
          expect(r.linkTypes).toEqual([LT[kind]]);
          let i = 0;
          for (let rec = r.next(); rec; rec = r.next(), i++) expectNormalised(rec, used[i]!, kind);
          expect(i).toBe(used.length);
          r.close();
        }
      }
    });
  }

  it('copies made by iteration can be normalised too', () => {
    const fs = frames('nanosecs_big_endian.pcap');
    const { file, used } = makeCooked('raw', fs);
    const all = [...openCapture(file)];
    all.forEach((rec, i) => expectNormalised(rec, used[i]!, 'raw'));
  });
});

describe('toEthernet refuses what it cannot normalise, untouched', () => {
  function snapshot(rec: CaptureRecord) {
    const { buf, ...fields } = rec;
    return { ...fields, buf, bytes: Buffer.from(buf.subarray(Math.max(0, rec.off - 20), rec.off + rec.capLen)) };
  }
  function refuse(rec: CaptureRecord): void {
    const before = snapshot(rec);
    expect(toEthernet(rec)).toBe(false);
    const after = snapshot(rec);
    expect(after.buf).toBe(before.buf); // same buffer object (not deep-compared: it is the 1 MiB chunk)
    expect({ ...after, buf: null }).toEqual({ ...before, buf: null });
  }
  const rec = (linkType: number, data: number[] | Buffer, off = 20): CaptureRecord => {
    const buf = Buffer.alloc(off + data.length + 4, 0x55);
    Buffer.from(data).copy(buf, off);
    return { buf, off, capLen: data.length, origLen: data.length, tsSec: 1, tsNsec: 2, linkType, ifIndex: 0, index: 0, fileOffset: 0, comment: null };
  };

  it('Linux netlink (microsecs_big_endian.pcap)', () => {
    const r = openCapture(sharedCapture('microsecs_big_endian.pcap'));
    expect(r.linkTypes).toEqual([253]);
    let n = 0;
    for (let x = r.next(); x; x = r.next(), n++) refuse(x);
    expect(n).toBe(13);
    r.close();
  });

  it('bad or short inputs', () => {
    const sll = Buffer.alloc(16);
    sll.writeUInt16BE(824, 2); // ARPHRD_NETLINK
    sll.writeUInt16BE(0x0800, 14);
    refuse(rec(113, sll));
    const llc = Buffer.alloc(20);
    llc.writeUInt16BE(1, 2);
    llc.writeUInt16BE(0x0004, 14); // ETH_P_802_2: not an EtherType
    refuse(rec(113, llc));
    refuse(rec(113, Buffer.alloc(15)));
    refuse(rec(276, Buffer.alloc(19)));
    refuse(rec(101, [0x50, 0, 0, 0])); // IP version 5
    refuse(rec(101, []));
    refuse(rec(101, [0x45, 0, 0, 20], 13)); // no room for the header before the data
    refuse(rec(105, [1, 2, 3])); // 802.11
    const eth = rec(1, [1, 2, 3]);
    const before = snapshot(eth);
    expect(toEthernet(eth)).toBe(true);
    expect(snapshot(eth)).toEqual(before);
  });

  it('SLL with a non-6-byte address gets a zero source MAC', () => {
    const d = Buffer.alloc(16 + 20);
    d.writeUInt16BE(772, 2); // ARPHRD_LOOPBACK
    d.writeUInt16BE(0, 4); // halen 0
    d.fill(0x77, 6, 14);
    d.writeUInt16BE(0x0800, 14);
    d[16] = 0x45;
    const r = rec(113, d);
    expect(toEthernet(r)).toBe(true);
    expect(r.buf.subarray(r.off, r.off + 14)).toEqual(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0]));
    expect(r.capLen).toBe(34);
  });
});

function addresses(file: string): string[] {
  const r = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'ipv6.src', '-e', 'ipv6.dst', '-e', 'arp.src.proto_ipv4'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  expect(r.status).toBe(0);
  return r.stdout.trim().split('\n');
}

describe.skipIf(!hasTool('tshark'))('tshark decodes our cooked captures like the originals', () => {
  for (const src of ['http-packets2.pcap', 'ipv6.pcapng', 'nanosecs_big_endian.pcap', 'many-protocols.pcap']) {
    it(src, () => {
      const fs = frames(src);
      // The original addresses, restricted to frames of at least 14 bytes (all of them here).
      const orig = addresses(sharedCapture(src));
      expect(orig.length).toBe(fs.length);
      expect(orig.some((l) => /\d/.test(l))).toBe(true);
      for (const kind of ['sll', 'sll2', 'raw'] as Kind[]) {
        const { file, used } = makeCooked(kind, fs);
        const want = orig.filter((_, i) => wants(kind, fs[i]!));
        expect(addresses(file)).toEqual(want);
        // Normalise and write as Ethernet: tshark must still see the same addresses.
        const eth = tmp();
        const w = new PcapWriter(eth, { linkType: 1 });
        const r = openCapture(file);
        for (let rec = r.next(); rec; rec = r.next()) {
          expect(toEthernet(rec)).toBe(true);
          w.write(rec.buf, rec.off, rec.capLen, rec.tsSec, rec.tsNsec, rec.origLen);
        }
        r.close();
        w.close();
        expect(addresses(eth)).toEqual(want);
        expect(used.length).toBe(want.length);
      }
    });
  }
});

describe.skipIf(!hasTool('tcpdump'))('linkTypeName matches tcpdump', () => {
  it('for common link types', () => {
    for (const lt of [0, 1, 6, 9, 10, 12, 50, 51, 101, 104, 105, 108, 113, 117, 127, 189, 192, 195, 220, 227, 228, 229, 231, 239, 249, 253, 276]) {
      const f = tmp();
      new PcapWriter(f, { linkType: lt }).close();
      const out = spawnSync('tcpdump', ['-r', f], { encoding: 'utf8' }).stderr;
      const m = /link-type (\S+) /.exec(out);
      expect(m, `tcpdump names ${lt}`).not.toBeNull();
      expect(linkTypeName(lt)).toBe(m![1]);
    }
    expect(linkTypeName(65000)).toBe('LINKTYPE_65000');
  });
});
