/**
 * `colo-proxy flows` against PcapPlusPlus's own expected reassembly output (its
 * TcpReassembly tests, shipped with the shared captures):
 * - expected_sides/: tcp-reassembly.pcap, one file per direction, raw payload bytes, named
 *   SRCIP.SRCPORT-DSTIP.DSTPORT.txt — our SAME-NAMED .bin files must be identical.
 * - expected_multiple_streams/: the 12 connections of http-packets.pcap, one file per
 *   connection holding BOTH directions interleaved in the order PcapPlusPlus delivered them,
 *   with "[N bytes missing]" where it gave up on a hole. The interleaving is not ours to
 *   reproduce: PcapPlusPlus declares a hole lost as soon as the other side sends data, we wait
 *   for the connection's end or the hole timeout, so pieces come out in a different order
 *   around holes. What must hold is that each expected file is an interleaving of our two
 *   direction files, each with the same "[N bytes missing]" markers at our gaps — i.e. the
 *   same bytes, the same gaps at the same places, in each direction. (tshark checks each
 *   direction separately in tshark.test.ts.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DirectionReport } from '../../src/cli/flows-extract.js';
import { PCAPPP, sharedCapture } from '../helpers/paths.js';
import { pairKey, runFlows } from './cli-run.js';

/** PcapPlusPlus's endpoint text (`IP.PORT`) → ours (`IP:PORT`), IPv4 only (all its files are IPv4). */
function colonEndpoint(dotted: string): string {
  const i = dotted.lastIndexOf('.');
  return `${dotted.slice(0, i)}:${dotted.slice(i + 1)}`;
}

/** Our direction file with PcapPlusPlus-style gap markers put back where the bytes are missing. */
function withMarkers(file: Buffer, d: DirectionReport): Buffer {
  expect(d.gapList.length).toBe(d.gaps);
  const parts: Buffer[] = [];
  let at = 0;
  for (const g of d.gapList) {
    parts.push(file.subarray(at, g.fileOffset), Buffer.from(`[${g.len} bytes missing]`));
    at = g.fileOffset;
  }
  parts.push(file.subarray(at));
  return Buffer.concat(parts);
}

function matchLen(a: Buffer, ai: number, e: Buffer, ei: number): number {
  let n = 0;
  while (ai + n < a.length && ei + n < e.length && a[ai + n] === e[ei + n]) n++;
  return n;
}

/**
 * Is `e` an interleaving of `a` and `b` (each consumed in order)? Greedy, taking the longer
 * match at each step. It can only err towards "no" (a wrong choice dead-ends), never accept a
 * file that is not an interleaving. Returns the offset in `e` where it got stuck, or -1.
 */
function interleaveFailsAt(e: Buffer, a: Buffer, b: Buffer): number {
  let i = 0;
  let j = 0;
  let p = 0;
  while (p < e.length) {
    const la = matchLen(a, i, e, p);
    const lb = matchLen(b, j, e, p);
    if (la === 0 && lb === 0) return p;
    if (la >= lb) {
      i += la;
      p += la;
    } else {
      j += lb;
      p += lb;
    }
  }
  return i === a.length && j === b.length ? -1 : p;
}

describe('flows agrees with PcapPlusPlus expected output', () => {
  it('tcp-reassembly.pcap: expected_sides, file for file and byte for byte (same names, .bin for .txt)', () => {
    const run = runFlows(sharedCapture('tcp-reassembly.pcap'));
    try {
      const expectedDir = join(PCAPPP, 'expected_sides');
      const expected = readdirSync(expectedDir).filter((f) => f.endsWith('.txt')).sort();
      expect(expected.length).toBe(2);
      expect(readdirSync(run.dir).sort()).toEqual(expected.map((f) => f.replace(/\.txt$/, '.bin')));
      for (const f of expected) {
        const ours = readFileSync(join(run.dir, f.replace(/\.txt$/, '.bin')));
        const theirs = readFileSync(join(expectedDir, f));
        expect(ours.length, f).toBe(theirs.length);
        expect(ours.equals(theirs), f).toBe(true);
      }
      const [c] = run.report.connections;
      expect(run.report.connections.length).toBe(1);
      expect(c!.clientToServer.gaps + c!.serverToClient.gaps).toBe(0);
    } finally {
      run.cleanup();
    }
  });

  it('http-packets.pcap: each of the 12 expected_multiple_streams files interleaves our two direction files, gaps marked alike', () => {
    const run = runFlows(sharedCapture('http-packets.pcap'));
    try {
      const expectedDir = join(PCAPPP, 'expected_multiple_streams');
      const expected = readdirSync(expectedDir).filter((f) => f.endsWith('.txt')).sort();
      expect(expected.length).toBe(12);
      expect(run.report.connections.length).toBe(12);
      let markers = 0;
      for (const f of expected) {
        const [a, b] = f.replace(/\.txt$/, '').split('-') as [string, string];
        const key = pairKey(colonEndpoint(a), colonEndpoint(b));
        const cs = run.report.connections.filter((c) => pairKey(c.client, c.server) === key);
        expect(cs.length, f).toBe(1);
        const c = cs[0]!;
        // PcapPlusPlus names the file after the side that sent the first packet: our client.
        expect(c.client, f).toBe(colonEndpoint(a));
        const e = readFileSync(join(expectedDir, f));
        const ca = withMarkers(run.file(c.clientToServer), c.clientToServer);
        const cb = withMarkers(run.file(c.serverToClient), c.serverToClient);
        expect(ca.length + cb.length, `${f}: total length`).toBe(e.length);
        expect(interleaveFailsAt(e, ca, cb), `${f}: offset where the expected file stops being an interleaving of ours`).toBe(-1);
        markers += (e.toString('latin1').match(/\[\d+ bytes missing\]/g) ?? []).length;
      }
      // The capture loses data in six connections: the gap check above is exercised.
      expect(markers).toBeGreaterThan(0);
    } finally {
      run.cleanup();
    }
  });
});
