/**
 * Real kernel traffic: PcapPlusPlus's tcp-reassembly.pcap (one HTTP connection with a
 * retransmission) through the engine's own reader and decoder into the reassembler. Oracles:
 * PcapPlusPlus's expected_sides/*.txt (raw payload per direction) and tshark's relative
 * sequence numbers for the offset of a dropped segment.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCapture, copyRecord, type CaptureRecord } from '../../src/capture/reader.js';
import { toEthernet } from '../../src/capture/linktype.js';
import { ReassemblyBudget } from '../../src/flow/tcp-budget.js';
import { TcpReassembler } from '../../src/flow/tcp-reassembler.js';
import type { ReassemblyLimits } from '../../src/flow/tcp-types.js';
import { decodeFrame } from '../../src/packet/decode.js';
import { formatIP } from '../../src/packet/addr.js';
import { LAYER_TCP } from '../../src/packet/layer.js';
import { NO_HANDLE } from '../../src/packet/pool.js';
import { PacketView } from '../../src/packet/view.js';
import { PCAPPP, sharedCapture } from '../helpers/paths.js';
import { hasTool, tshark } from '../helpers/tools.js';
import { RecordingSink, testPool } from './tcp-harness.js';

const PCAP = sharedCapture('tcp-reassembly.pcap');
const CLIENT = '172.16.133.54.64370';
const SERVER = '23.21.118.18.80';
const expected = [
  readFileSync(resolve(PCAPPP, 'expected_sides', `${CLIENT}-${SERVER}.txt`)),
  readFileSync(resolve(PCAPPP, 'expected_sides', `${SERVER}-${CLIENT}.txt`)),
] as const;

/** Frame number (1-based) → owned copy of the record. */
function loadFrames(): CaptureRecord[] {
  const rd = openCapture(PCAP);
  const out: CaptureRecord[] = [];
  try {
    for (let rec = rd.next(); rec !== null; rec = rd.next()) out.push(copyRecord(rec));
  } finally {
    rd.close();
  }
  return out;
}

/** Direction of a decoded TCP segment of the one connection, or -1 for other traffic. */
function dirOf(v: PacketView): -1 | 0 | 1 {
  if ((v.layers & LAYER_TCP) === 0) return -1;
  const src = `${formatIP(v.buf, v.ipSrcOff, v.ipAddrLen)}.${v.srcPort}`;
  const dst = `${formatIP(v.buf, v.ipDstOff, v.ipAddrLen)}.${v.dstPort}`;
  if (src === CLIENT && dst === SERVER) return 0;
  if (src === SERVER && dst === CLIENT) return 1;
  return -1;
}

const msOf = (r: CaptureRecord) => r.tsSec * 1000 + r.tsNsec / 1e6;

/** Feed records in the given order, pooled (copied into a slot, zero-copy from there) or straight from the buffer. */
function replay(frames: CaptureRecord[], pooled: boolean, limits: Partial<ReassemblyLimits> = {}) {
  const pool = testPool();
  const budget = new ReassemblyBudget(64 << 20);
  const sink = new RecordingSink();
  const r = new TcpReassembler(pool, sink, limits, budget);
  const v = new PacketView();
  for (const rec of frames) {
    expect(toEthernet(rec)).toBe(true);
    if (pooled) {
      const h = pool.copyIn(rec.buf, rec.off, rec.capLen);
      decodeFrame(v, pool.buffer(h), pool.offset(h), rec.capLen, 0, rec.origLen);
      const d = dirOf(v);
      if (d >= 0) r.segment(v, d as 0 | 1, h, msOf(rec));
      pool.release(h);
    } else {
      decodeFrame(v, rec.buf, rec.off, rec.capLen, 0, rec.origLen);
      const d = dirOf(v);
      if (d >= 0) r.segment(v, d as 0 | 1, NO_HANDLE, msOf(rec));
    }
  }
  return { pool, budget, sink, r };
}

describe('tcp-reassembly.pcap (real connection) against PcapPlusPlus expected sides', () => {
  it('streamed straight from the reader (NO_HANDLE): both directions match byte for byte, both FINs end them', () => {
    const pool = testPool();
    const budget = new ReassemblyBudget(64 << 20);
    const sink = new RecordingSink();
    const r = new TcpReassembler(pool, sink, {}, budget);
    const v = new PacketView();
    const rd = openCapture(PCAP);
    for (let rec = rd.next(); rec !== null; rec = rd.next()) {
      toEthernet(rec);
      decodeFrame(v, rec.buf, rec.off, rec.capLen, 0, rec.origLen);
      const d = dirOf(v);
      if (d >= 0) r.segment(v, d as 0 | 1, NO_HANDLE, msOf(rec));
    }
    rd.close();
    for (const d of [0, 1] as const) {
      expect(sink.dirs[d].errors).toEqual([]);
      expect(Buffer.from(sink.dirs[d].delivered()).equals(expected[d])).toBe(true);
      expect(sink.dirs[d].end).toBe('fin');
      expect(sink.dirs[d].gaps).toEqual([]);
    }
    // tshark flags frame 10 as a retransmission of frame 9's 593 bytes.
    expect(r.stats[0].retransmitted).toBe(1);
    expect(r.stats[0].conflictBytes).toBe(0);
    expect(r.ended).toBe(true);
    r.close();
    expect(pool.inUse).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('pooled (zero copy) and reordered in windows of 8 frames: same bytes', () => {
    const frames = loadFrames();
    const head = frames.slice(0, 2); // SYN, SYN-ACK
    const rest = frames.slice(2);
    const reordered: CaptureRecord[] = [...head];
    for (let i = 0; i < rest.length; i += 8) reordered.push(...rest.slice(i, i + 8).reverse());
    for (const pooled of [true, false]) {
      const { pool, budget, sink, r } = replay(reordered, pooled);
      for (const d of [0, 1] as const) {
        expect(sink.dirs[d].errors).toEqual([]);
        expect(Buffer.from(sink.dirs[d].delivered()).equals(expected[d])).toBe(true);
        expect(sink.dirs[d].end).toBe('fin');
      }
      expect(r.stats[0].outOfOrder + r.stats[1].outOfOrder).toBeGreaterThan(0);
      if (pooled) expect(r.stats[0].copiedBytes + r.stats[1].copiedBytes).toBe(0);
      r.close();
      expect(pool.inUse).toBe(0);
      expect(budget.used).toBe(0);
    }
  });

  it.skipIf(!hasTool('tshark'))('a dropped frame becomes exactly one gap at the offset tshark gives it', () => {
    const frames = loadFrames();
    const drop = 12; // server → client, 1460 bytes, 0.47 s into the capture
    const [relSeq, len] = tshark(['-r', PCAP, '-Y', `frame.number==${drop}`, '-T', 'fields', '-e', 'tcp.seq', '-e', 'tcp.len'])
      .trim()
      .split('\t')
      .map(Number) as [number, number];
    const gapOff = relSeq - 1; // tshark's relative seq 1 is the first byte after the SYN
    const kept = frames.filter((_, i) => i + 1 !== drop);
    // Without a hole timeout the FIN waits behind the hole until close; with the default 30 s
    // timeout the hole is given up when a segment arrives 30 s later (the capture lasts 116 s).
    for (const [limits, reason] of [
      [{ holeTimeoutMs: 0 }, 'closed'],
      [{}, 'hole-timeout'],
    ] as const) {
      const { pool, budget, sink, r } = replay(kept, true, limits);
      const d1 = sink.dirs[1];
      expect(d1.end).toBe(reason === 'closed' ? null : 'fin');
      expect(Buffer.from(sink.dirs[0].delivered()).equals(expected[0])).toBe(true);
      r.close('closed');
      expect(d1.errors).toEqual([]);
      expect(d1.gaps).toEqual([{ offset: gapOff, len, reason }]);
      expect(d1.end).toBe('fin');
      const got = Buffer.from(d1.delivered());
      expect(got.length).toBe(expected[1].length);
      expect(got.subarray(0, gapOff).equals(expected[1].subarray(0, gapOff))).toBe(true);
      expect(got.subarray(gapOff + len).equals(expected[1].subarray(gapOff + len))).toBe(true);
      expect(pool.inUse).toBe(0);
      expect(budget.used).toBe(0);
    }
  });
});
