/**
 * The replay bench's pure parts: the checkpoint scorer on hand-made records, percentiles and
 * spread, the pairing of primary frames with the secondary frame that completes them, and the
 * output frame matcher.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapWriter } from '../../src/capture/writer.js';
import { tshark } from '../helpers/tools.js';
import { causeCounts, checkpointCount, scoreCheckpoints, scoreCounts, type CheckpointEvent } from '../../src/replay/bench-score.js';
import { percentile, spread } from '../../src/replay/bench-stats.js';
import { FrameMatcher, pairedWarmup, partners, warmupFrames } from '../../src/replay/bench-workload.js';
import { TCP_ACK, TCP_PSH, TCP_SYN, tcpFrame, udpFrame } from '../../src/replay/frame-builder.js';
import type { GroundTruth } from '../../src/replay/workload.js';

const FLOW_A = '192.0.2.2:8080-192.0.2.1:33846/TCP';
const FLOW_B = '192.0.2.2:8080-192.0.2.1:33850/TCP';
const FLOW_U = '192.0.2.2:7-192.0.2.1:39997/UDP';

const gt = (flow: string, offset: number, unit: 'byte' | 'datagram' = 'byte'): GroundTruth => ({ kind: unit === 'byte' ? 'byte' : 'udp', flow, offset, offsetUnit: unit, cause: 'payload', primaryTimeMs: 0 });
// Each call is a checkpoint of its own (the requesting record); `joined` adds a record to the last one.
let nextCp = 1;
const cp = (flow: string | null, offset: number | null, cause: string | null = 'payload', unit: 'byte' | 'datagram' | null = 'byte'): CheckpointEvent => ({
  atMs: 0,
  checkpoint: nextCp++,
  requested: true,
  cause,
  flow,
  offset,
  offsetUnit: offset === null ? null : unit,
});
const joined = (flow: string, offset: number): CheckpointEvent => ({ atMs: 0, checkpoint: nextCp - 1, requested: false, cause: 'payload', flow, offset, offsetUnit: 'byte' });

describe('scoreCheckpoints', () => {
  it('no truth, no checkpoints: nothing missed, nothing spurious', () => {
    expect(scoreCheckpoints([], [])).toMatchObject({ found: 0, missed: 0, spurious: 0 });
  });

  it('a checkpoint naming the flow at the offset finds the entry', () => {
    const s = scoreCheckpoints([gt(FLOW_A, 300)], [cp(FLOW_A, 300)]);
    expect(s).toMatchObject({ checkpoints: 1, found: 1, missed: 0, spurious: 0, foundBy: [0], explains: [[0]] });
  });

  it('offset window: within 64 KiB either way by default, configurable', () => {
    expect(scoreCheckpoints([gt(FLOW_A, 100_000)], [cp(FLOW_A, 100_000 - 65_536)]).missed).toBe(0);
    expect(scoreCheckpoints([gt(FLOW_A, 100_000)], [cp(FLOW_A, 100_000 + 65_537)]).missed).toBe(1);
    expect(scoreCheckpoints([gt(FLOW_A, 300)], [cp(FLOW_A, 310)], { byteWindow: 5 })).toMatchObject({ missed: 1, spurious: 1 });
  });

  it('another flow (or the reverse direction) does not count', () => {
    const rev = '192.0.2.1:33846-192.0.2.2:8080/TCP';
    expect(scoreCheckpoints([gt(FLOW_A, 300)], [cp(FLOW_B, 300), cp(rev, 300)])).toMatchObject({ found: 0, missed: 1, spurious: 2 });
  });

  it('datagrams match the same index only (default window 0), and units must agree', () => {
    expect(scoreCheckpoints([gt(FLOW_U, 2, 'datagram')], [cp(FLOW_U, 2, 'payload', 'datagram')]).missed).toBe(0);
    expect(scoreCheckpoints([gt(FLOW_U, 2, 'datagram')], [cp(FLOW_U, 3, 'payload', 'datagram')]).missed).toBe(1);
    expect(scoreCheckpoints([gt(FLOW_U, 2, 'datagram')], [cp(FLOW_U, 3, 'payload', 'datagram')], { datagramWindow: 1 }).missed).toBe(0);
    expect(scoreCheckpoints([gt(FLOW_A, 2)], [cp(FLOW_A, 2, 'payload', 'datagram')]).missed).toBe(1);
  });

  it('a flow-level checkpoint without offset (timeout) finds an entry of its flow', () => {
    expect(scoreCheckpoints([gt(FLOW_B, 20_000)], [cp(FLOW_B, null, 'timeout')])).toMatchObject({ missed: 0, spurious: 0 });
  });

  it('one to one: a second checkpoint for the same divergence is spurious', () => {
    const s = scoreCheckpoints([gt(FLOW_A, 300)], [cp(FLOW_A, 300), cp(FLOW_A, 424, 'length')]);
    expect(s).toMatchObject({ found: 1, missed: 0, spurious: 1, explains: [[0], []] });
  });

  it('records that joined a pending checkpoint count for it: one checkpoint can find several divergences', () => {
    const truth = [gt(FLOW_A, 300), gt(FLOW_B, 10_000)];
    const events = [cp(FLOW_A, 300), joined(FLOW_B, 10_000)];
    expect(scoreCheckpoints(truth, events)).toMatchObject({ checkpoints: 1, found: 2, missed: 0, spurious: 0, explains: [[0, 1]] });
    // A checkpoint requested for noise but joined by a real divergence is not spurious.
    expect(scoreCheckpoints([gt(FLOW_B, 10_000)], [cp(FLOW_A, 5), joined(FLOW_B, 10_000)])).toMatchObject({ checkpoints: 1, missed: 0, spurious: 0 });
    // Joined records do not make checkpoints of their own.
    expect(checkpointCount(events)).toBe(1);
    expect(causeCounts(events)).toEqual({ payload: 1 });
  });

  it('two divergences on one flow need two checkpoints; order of claims follows the checkpoints', () => {
    const truth = [gt(FLOW_A, 300), gt(FLOW_A, 5000)];
    expect(scoreCheckpoints(truth, [cp(FLOW_A, 300)])).toMatchObject({ found: 1, missed: 1, spurious: 0 });
    expect(scoreCheckpoints(truth, [cp(FLOW_A, 300), cp(FLOW_A, 5000)])).toMatchObject({ found: 2, missed: 0, spurious: 0 });
  });

  it('flow text is compared case-insensitively (IPv6 hex)', () => {
    const f = '[2001:DB8::2]:8080-[2001:db8::1]:44984/TCP';
    expect(scoreCheckpoints([gt(f.toLowerCase(), 10)], [cp(f, 10)]).missed).toBe(0);
  });

  it('counts only (QEMU): lower bounds both ways', () => {
    expect(scoreCounts(3, 1)).toEqual({ missed: 2, spurious: 0 });
    expect(scoreCounts(1, 5)).toEqual({ missed: 0, spurious: 4 });
    expect(scoreCounts(0, 0)).toEqual({ missed: 0, spurious: 0 });
  });

  it('causeCounts groups by cause, unknown when absent', () => {
    expect(causeCounts([cp(FLOW_A, 1), cp(FLOW_A, 2, 'length'), cp(FLOW_A, 3), cp(null, null, null)])).toEqual({ payload: 2, length: 1, unknown: 1 });
  });
});

describe('percentile and spread', () => {
  it('nearest rank on sorted samples', () => {
    const s = Float64Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(percentile(s, 0.5)).toBe(500);
    expect(percentile(s, 0.99)).toBe(990);
    expect(percentile(s, 0.999)).toBe(999);
    expect(percentile(s, 1)).toBe(1000);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBeNaN();
  });

  it('median (upper middle) and min–max, ignoring non-finite values', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3 });
    expect(spread([4, 1, 3, 2])).toEqual({ median: 3, min: 1, max: 4 });
    expect(spread([5, NaN, Infinity])).toEqual({ median: 5, min: 5, max: 5 });
    expect(spread([]).median).toBeNaN();
  });
});

describe('partners: which secondary frame completes each primary frame', () => {
  const base = { src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 5000 } as const;
  const data = (seq: number, n: number): Buffer => tcpFrame({ ...base, seq, ack: 1, flags: TCP_PSH | TCP_ACK, payload: Buffer.alloc(n, 0x41) });

  it('TCP: by stream progress, whatever the segmentation and ISN; no-payload frames get -1', () => {
    // Primary: SYN-ACK, 3 × 1000 bytes. Secondary (own ISN): SYN-ACK, 1500, 1500.
    const p = [tcpFrame({ ...base, seq: 100, flags: TCP_SYN | TCP_ACK }), data(101, 1000), data(1101, 1000), data(2101, 1000)].map((buf) => ({ buf }));
    const s = [tcpFrame({ ...base, seq: 9000, flags: TCP_SYN | TCP_ACK }), data(9001, 1500), data(10501, 1500)].map((buf) => ({ buf }));
    expect([...partners(p, s)]).toEqual([-1, 1, 2, 2]);
  });

  it('TCP: a retransmission does not advance (-1); a secondary that never covers gives -1', () => {
    const p = [data(1, 1000), data(1, 1000), data(1001, 1000)].map((buf) => ({ buf }));
    const s = [data(1, 1000)].map((buf) => ({ buf }));
    expect([...partners(p, s)]).toEqual([0, -1, -1]);
  });

  it('UDP: the datagram with the same ordinal on the same flow; other flows do not mix', () => {
    const u = (dport: number, b: number): Buffer => udpFrame({ src: '10.0.0.2', dst: '10.0.0.1', sport: 53, dport, payload: Buffer.from([b]) });
    const p = [u(1000, 1), u(2000, 2), u(1000, 3)].map((buf) => ({ buf }));
    const s = [u(2000, 2), u(1000, 1), u(1000, 3)].map((buf) => ({ buf }));
    expect([...partners(p, s)]).toEqual([1, 0, 2]);
  });
});

describe('FrameMatcher', () => {
  it('finds each primary frame by its bytes, duplicates first-in first-out, unknown → -1', () => {
    const a = tcpFrame({ src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 1, seq: 1, payload: Buffer.alloc(200, 1) });
    const b = tcpFrame({ src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 1, seq: 201, payload: Buffer.alloc(200, 2) });
    // Same first 96 bytes and length as b, differing later: must not be confused with b.
    const b2 = Buffer.from(b);
    b2[150] = 0x99;
    const m = new FrameMatcher([{ buf: a }, { buf: b }, { buf: a }]);
    expect(m.match(b2, 0, b2.length)).toBe(-1);
    expect(m.match(a, 0, a.length)).toBe(0);
    const padded = Buffer.concat([Buffer.alloc(7), b]);
    expect(m.match(padded, 7, b.length)).toBe(1);
    expect(m.match(a, 0, a.length)).toBe(2);
    expect(m.match(a, 0, a.length)).toBe(-1);
  });
});

describe('warmupFrames', () => {
  it('copies the TCP/UDP frames on other ports with checksums still valid (tshark), at least n frames', () => {
    const dir = mkdtempSync(join(tmpdir(), 'colo-bench-warm-'));
    try {
      const v4 = { src: '10.0.0.2', dst: '10.0.0.1' } as const;
      const v6 = { src: '2001:db8::2', dst: '2001:db8::1' } as const;
      const prim = [
        tcpFrame({ ...v4, sport: 80, dport: 40000, seq: 7, ack: 9, flags: TCP_PSH | TCP_ACK, payload: Buffer.from('hello world') }),
        udpFrame({ ...v4, sport: 53, dport: 33333, payload: Buffer.from('dns?') }),
        tcpFrame({ ...v6, sport: 8080, dport: 50000, seq: 1, ack: 2, flags: TCP_ACK, payload: Buffer.from('v6 data') }),
        udpFrame({ ...v6, sport: 7, dport: 65535, payload: Buffer.from([1, 2, 3]) }),
      ].map((buf, i) => (i === 3 ? { buf: Buffer.concat([Buffer.alloc(5), buf]), off: 5, len: buf.length } : { buf }));
      const warm = warmupFrames(prim, 10);
      expect(warm.length).toBe(10); // 2 copies of 4 frames, then 2 of the third
      const status = (frames: { buf: Buffer; off?: number; len?: number }[], name: string): string[][] => {
        const file = join(dir, name);
        const pw = new PcapWriter(file);
        for (const f of frames) pw.write(f.buf, f.off ?? 0, f.len ?? f.buf.length, 1, 0);
        pw.close();
        return tshark(['-r', file, '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-e', 'tcp.checksum.status', '-e', 'udp.checksum.status', '-e', 'tcp.srcport', '-e', 'udp.srcport', '-e', 'tcp.dstport', '-e', 'udp.dstport'])
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => l.split('\t').filter((x) => x !== ''));
      };
      // The builder's frames are valid (status 1 = good), and so are the copies.
      for (const r of status(prim, 'orig.pcap')) expect(r[0]).toBe('1');
      const rows = status(warm, 'warm.pcap');
      expect(rows).toHaveLength(10);
      for (const r of rows) expect(r[0]).toBe('1');
      // Every copy is on a port pair no original uses.
      const orig = new Set(['80-40000', '53-33333', '8080-50000', '7-65535']);
      for (const r of rows) expect(orig.has(`${r[1]}-${r[2]}`)).toBe(false);
      expect(new Set(rows.map((r) => `${r[1]}-${r[2]}`)).size).toBe(10);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never reuses a port pair of the workload (either direction) or of another copy; reaches large n', () => {
    // Ports chosen so that some XOR constants would map one flow onto the other.
    const a = tcpFrame({ src: '10.0.0.2', dst: '10.0.0.1', sport: 0x1000, dport: 0x2000, seq: 1, payload: Buffer.from('a') });
    const b = tcpFrame({ src: '10.0.0.2', dst: '10.0.0.1', sport: 0x1010, dport: 0x2010, seq: 1, payload: Buffer.from('b') });
    const c = tcpFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 0x2020, dport: 0x1020, seq: 1, payload: Buffer.from('c') });
    const warm = warmupFrames([a, b, c].map((buf) => ({ buf })), 1200);
    expect(warm).toHaveLength(1200);
    const pairs = warm.map((f) => `${f.buf.readUInt16BE(34)}-${f.buf.readUInt16BE(36)}`);
    expect(new Set(pairs).size).toBe(1200);
    for (const orig of ['4096-8192', '4112-8208', '8224-4128', '8192-4096', '8208-4112', '4128-8224']) expect(pairs).not.toContain(orig);
  });

  it('falls back to synthetic TCP when the workload has no TCP/UDP frame; 0 → none', () => {
    expect(warmupFrames([{ buf: Buffer.alloc(60) }], 8).length).toBe(4 + 8);
    expect(warmupFrames([], 0)).toEqual([]);
  });
});

describe('pairedWarmup', () => {
  const v4 = { src: '10.0.0.2', dst: '10.0.0.1' } as const;
  const data = Buffer.alloc(3000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  const seg = (sport: number, dport: number, seq: number, a: number, b: number): Buffer => tcpFrame({ ...v4, sport, dport, seq: seq + a, ack: 1, flags: TCP_PSH | TCP_ACK, payload: data.subarray(a, b) });
  // The same stream, segmented differently on each side (2 vs 3 segments), plus a datagram
  // and a frame without ports (not copied).
  const prim = [seg(80, 40000, 100, 0, 1500), seg(80, 40000, 100, 1500, 3000), udpFrame({ ...v4, sport: 53, dport: 33333, payload: Buffer.from('dns?') }), Buffer.alloc(60)].map((buf) => ({ buf }));
  const sec = [seg(80, 40000, 100, 0, 1000), seg(80, 40000, 100, 1000, 2000), seg(80, 40000, 100, 2000, 3000), udpFrame({ ...v4, sport: 53, dport: 33333, payload: Buffer.from('dns?') })].map((buf) => ({ buf }));
  const ports = (b: Buffer): string => `${b.readUInt16BE(34)}-${b.readUInt16BE(36)}`;

  it('whole copies of both sides, each side keeping its segmentation; one copy pairs up like the workload; checksums valid (tshark)', () => {
    const copies = pairedWarmup(prim, sec, 7)!;
    // 3 TCP/UDP primary frames per copy: 3 copies reach 7.
    expect(copies).toHaveLength(3);
    const seen = new Set<string>(['80-40000', '40000-80', '53-33333', '33333-53']);
    for (const c of copies) {
      expect(c.primary).toHaveLength(3);
      expect(c.secondary).toHaveLength(4);
      // Same per-flow ports on both sides of a copy, new to the workload and to other copies.
      expect(c.secondary.map((f) => ports(f.buf))).toEqual([ports(c.primary[0]!.buf), ports(c.primary[0]!.buf), ports(c.primary[0]!.buf), ports(c.primary[2]!.buf)]);
      for (const f of [c.primary[0]!, c.primary[2]!]) {
        expect(seen.has(ports(f.buf))).toBe(false);
        seen.add(ports(f.buf));
      }
      // Bytes other than ports and checksum unchanged: payloads and lengths.
      c.secondary.forEach((f, i) => {
        expect(f.buf.length).toBe(sec[i]!.buf.length);
        expect(f.buf.subarray(54).equals(sec[i]!.buf.subarray(54)) || i === 3).toBe(true);
      });
      expect(Array.from(partners(c.primary, c.secondary))).toEqual(Array.from(partners(prim.slice(0, 3), sec)));
    }
    const dir = mkdtempSync(join(tmpdir(), 'colo-bench-pwarm-'));
    try {
      const file = join(dir, 'w.pcap');
      const pw = new PcapWriter(file);
      for (const c of copies) for (const f of [...c.primary, ...c.secondary]) pw.write(f.buf, 0, f.buf.length, 1, 0);
      pw.close();
      const rows = tshark(['-r', file, '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-e', 'tcp.checksum.status', '-e', 'udp.checksum.status'])
        .split('\n')
        .filter((l) => l.trim() !== '');
      expect(rows).toHaveLength(21);
      for (const r of rows) expect(r.trim()).toBe('1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('null without TCP/UDP primary frames; 0 → no copy', () => {
    expect(pairedWarmup([{ buf: Buffer.alloc(60) }], sec, 10)).toBeNull();
    expect(pairedWarmup(prim, sec, 0)).toEqual([]);
  });
});
