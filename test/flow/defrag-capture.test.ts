/**
 * Reassembly of the shared fragment captures against tshark's own reassembly:
 * - the same number of datagrams, completed by the same frames;
 * - each datagram's IP payload equals tshark's `ip.reassembled.data` / `ipv6.reassembled.data`;
 * - the sender's UDP checksum verifies over our reassembled datagram;
 * - tshark, reading our output frames back, sees whole datagrams (no MF, offset 0, no
 *   Fragment header) with good IPv4 header and UDP checksums.
 * Both input paths are checked: copying from the capture reader, and retaining pool slots.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PcapWriter } from '../../src/capture/writer.js';
import { Defragmenter } from '../../src/flow/defrag.js';
import { CHECKSUM_GOOD, decodeFrame, LAYER_FRAG, PacketView, verifyL4Checksum } from '../../src/packet/index.js';
import { NO_HANDLE, PacketPool } from '../../src/packet/pool.js';
import { sharedCapture } from '../helpers/paths.js';
import { hasTool, tshark } from '../helpers/tools.js';
import { loadFrames } from '../packet/frames.js';

const haveTshark = hasTool('tshark');
const tmp = mkdtempSync(join(tmpdir(), 'colo-defrag-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Out {
  /** Frame number that completed the datagram. */
  no: number;
  frame: Uint8Array;
  /** Hex of the IP payload after all IP headers (what tshark calls reassembled data). */
  dataHex: string;
  udpChecksum: number;
}

function reassemble(name: string, zeroCopy: boolean): { outs: Out[]; leftInPool: number; stats: ReturnType<Defragmenter['stats']> } {
  const pool = new PacketPool();
  const d = new Defragmenter({ pool, seed: 11 });
  const v = new PacketView();
  const w = new PacketView();
  const outs: Out[] = [];
  for (const fr of loadFrames(sharedCapture(name))) {
    let h = NO_HANDLE;
    if (zeroCopy) {
      const slot = pool.copyIn(fr.bytes, 0, fr.bytes.length);
      decodeFrame(v, pool.buffer(slot), pool.offset(slot), pool.length(slot));
      if (v.isFragment) h = d.push(v, fr.no, slot);
      pool.release(slot);
    } else {
      decodeFrame(v, fr.bytes, 0, fr.bytes.length);
      if (v.isFragment) h = d.push(v, fr.no);
    }
    if (h === NO_HANDLE) continue;
    const frame = Uint8Array.from(pool.view(h));
    pool.release(h);
    expect(decodeFrame(w, frame, 0, frame.length)).toBe(0);
    expect(w.layers & LAYER_FRAG).toBe(0);
    const dataOff = w.l3Off + (w.ipVersion === 4 ? w.ipHdrLen : 40 + w.ip6ExtLen);
    outs.push({ no: fr.no, frame, dataHex: Buffer.from(frame.subarray(dataOff, w.ipEnd)).toString('hex'), udpChecksum: verifyL4Checksum(w) });
  }
  const stats = d.stats();
  d.clear();
  return { outs, leftInPool: pool.inUse, stats };
}

const CASES = [
  { name: 'ip4_fragments.pcap', field: 'ip.reassembled.data', datagrams: 6 },
  { name: 'ip6_fragments.pcap', field: 'ipv6.reassembled.data', datagrams: 4 },
] as const;

describe.skipIf(!haveTshark)('reassembly agrees with tshark', () => {
  for (const c of CASES) {
    for (const zeroCopy of [false, true]) {
      it(`${c.name} (${zeroCopy ? 'pool slots retained' : 'copied from the reader'}): same datagrams, same bytes, good UDP checksums`, () => {
        const rows = tshark(['-r', sharedCapture(c.name), '-o', 'ip.defragment:TRUE', '-o', 'ipv6.defragment:TRUE', '-T', 'fields', '-e', 'frame.number', '-e', c.field, '-Y', c.field])
          .trim()
          .split('\n')
          .map((l) => l.split('\t'))
          .map(([no, hex]) => ({ no: Number(no), dataHex: hex! }));
        expect(rows.length).toBe(c.datagrams);
        const { outs, leftInPool, stats } = reassemble(c.name, zeroCopy);
        expect(outs.map((o) => ({ no: o.no, dataHex: o.dataHex }))).toEqual(rows);
        expect(outs.map((o) => o.udpChecksum)).toEqual(outs.map(() => CHECKSUM_GOOD));
        expect(stats.reassembled).toBe(c.datagrams);
        expect(leftInPool).toBe(0);
      });
    }
  }

  it('ip4_fragments.pcap: the retransmitted fragments tshark flags as overlaps are exact duplicates', () => {
    // tshark marks them ip.fragment.overlap without ip.fragment.overlap.conflict.
    const flags = tshark(['-r', sharedCapture('ip4_fragments.pcap'), '-o', 'ip.defragment:TRUE', '-T', 'fields', '-e', 'ip.fragment.overlap', '-e', 'ip.fragment.overlap.conflict', '-Y', 'ip.reassembled.data']);
    const overlapMarks = flags.split(/[\s,]+/).filter((x) => x === '1' || x === 'True').length;
    expect(overlapMarks).toBe(12);
    expect(flags).not.toMatch(/\t\S/); // no conflict column values
    const { stats } = reassemble('ip4_fragments.pcap', false);
    expect(stats.duplicates).toBe(12);
    expect(stats.datagramsDropped.overlap).toBe(0);
  });

  it('tshark reads our reassembled frames as whole datagrams with good checksums', () => {
    const frames = CASES.flatMap((c) => reassemble(c.name, false).outs.map((o) => o.frame));
    const path = join(tmp, 'reassembled.pcap');
    const wr = new PcapWriter(path);
    frames.forEach((f, i) => wr.write(f, 0, f.length, 1_700_000_000 + i, 0));
    wr.close();
    const out = tshark([
      '-r', path, '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
      '-T', 'fields', '-E', 'separator=|',
      '-e', 'ip.flags.mf', '-e', 'ip.frag_offset', '-e', 'ip.checksum.status', '-e', 'ipv6.fraghdr.ident', '-e', 'udp.checksum.status', '-e', 'udp.length',
    ]).trim().split('\n');
    expect(out).toHaveLength(10);
    for (const [i, line] of out.entries()) {
      const [mf, off, ipSum, frag6, udpSum, udpLen] = line.split('|');
      if (i < 6) expect([mf, off]).toEqual(['0', '0']);
      if (i < 6) expect(ipSum).toBe('1');
      expect(frag6).toBe('');
      expect(udpSum).toBe('1');
      expect(Number(udpLen)).toBeGreaterThan(700);
    }
  });
});
