/**
 * `colo-proxy flows` on hand-made captures whose content the test itself decides: the
 * expected bytes are the payloads the test sent, and tshark (where it has an opinion) checks
 * the same capture. Covers naming (IPv6 RFC 5952 text, reused 4-tuples), alignment
 * (reordering, duplicates, overlaps, sequence wrap, mid-stream pick-up, IP fragments), gap
 * and RST policies, and the counters' definitions.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConnectionReport, DirectionReport } from '../../src/cli/flows-extract.js';
import { eth, ip4, ipv4, naiveL4Checksum, set16, tcp } from '../packet/build.js';
import { hasTool } from '../helpers/tools.js';
import { runFlows, type FlowsRun } from './cli-run.js';
import { bytesOf, F, Session, SynthCapture, type Host } from './synth.js';
import { stripMissingMarkers, tsharkFollow, tsharkStreams } from './tshark-oracle.js';

const TSHARK = hasTool('tshark');
const tmp = mkdtempSync(join(tmpdir(), 'colo-flows-synth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let captureNo = 0;
function capture(build: (cap: SynthCapture) => void): string {
  const path = join(tmp, `c${captureNo++}.pcap`);
  const cap = new SynthCapture(path);
  build(cap);
  cap.close();
  return path;
}

/** Run flows on `path` and hand the run to `fn`, cleaning up after. */
function withFlows(path: string, fn: (run: FlowsRun) => void): void {
  const run = runFlows(path);
  try {
    fn(run);
  } finally {
    run.cleanup();
  }
}

/** tshark's follow output of each stream in order: [bytes from its first sender, bytes back]. */
function tsharkBytes(path: string): { first: [string, string]; a: Buffer; b: Buffer }[] {
  const streams = tsharkStreams(path);
  const ids = [...streams.keys()].sort((x, y) => x - y);
  const f = tsharkFollow(path, ids);
  return ids.map((id) => ({ first: streams.get(id)!.first, a: f.get(id)!.fromFirst, b: f.get(id)!.fromOther }));
}

const ep = (h: Host): string => (h.ip.includes(':') ? `[${new URL(`http://[${h.ip}]/`).hostname.slice(1, -1)}]:${h.port}` : `${h.ip}:${h.port}`);
/** File-name text of an endpoint; IPv6 through the WHATWG URL serialiser (RFC 5952 compression, lowercase). */
const fileEp = (h: Host): string => `${h.ip.includes(':') ? new URL(`http://[${h.ip}]/`).hostname.slice(1, -1) : h.ip}.${h.port}`;

const A: Host = { ip: '10.1.1.1', port: 40000 };
const B: Host = { ip: '10.2.2.2', port: 80 };

describe('naming: SRC.SPORT-DST.DPORT.bin, RFC 5952 IPv6, -2/-3 for a reused 4-tuple', () => {
  // Sessions on the same two endpoints: closed normally; reopened (new ISN after the close);
  // reopened again WITHOUT closing (a SYN with a different ISN); then the old server
  // connecting to the old client. Plus an IPv6 connection with two zero runs of equal length.
  const C6: Host = { ip: '2001:0db8:0000:0000:0001:0000:0000:0002', port: 50000 };
  const S6: Host = { ip: '2001:0db8:0000:0000:0000:0000:0000:0001', port: 443 };
  const plan: { client: Host; server: Host; isn: [number, number]; close: boolean }[] = [
    { client: A, server: B, isn: [1000, 5000], close: true },
    { client: A, server: B, isn: [900_000, 7000], close: false },
    { client: A, server: B, isn: [123_456_789, 99], close: true },
    { client: B, server: A, isn: [4242, 4343], close: true },
    { client: C6, server: S6, isn: [1, 2], close: true },
  ];
  const sent: [Uint8Array, Uint8Array][] = [];
  const path = capture((cap) => {
    plan.forEach((p, i) => {
      const s = new Session(p.client, p.server, p.isn[0], p.isn[1]);
      const pay: [Uint8Array, Uint8Array] = [bytesOf(100 + i, 10 * i + 1), bytesOf(300 + i, 10 * i + 2)];
      sent.push(pay);
      s.handshake(cap);
      cap.frame(s.segment(0, pay[0]));
      cap.frame(s.segment(1, pay[1]));
      if (p.close) s.close(cap);
    });
  });

  it('names every direction file as documented, numbering reuse in start order', () => {
    withFlows(path, (run) => {
      const cs = run.report.connections;
      expect(cs.map((c) => [c.client, c.server])).toEqual(plan.map((p) => [ep(p.client), ep(p.server)]));
      const names = (c: Host, s: Host, n: number) => [`${fileEp(c)}-${fileEp(s)}${n > 1 ? `-${n}` : ''}.bin`, `${fileEp(s)}-${fileEp(c)}${n > 1 ? `-${n}` : ''}.bin`];
      const expected = [names(A, B, 1), names(A, B, 2), names(A, B, 3), names(B, A, 4), names(C6, S6, 1)];
      expect(cs.map((c) => [c.clientToServer.file, c.serverToClient.file])).toEqual(expected);
      expect(readdirSync(run.dir).sort()).toEqual(expected.flat().sort());
      expect(cs[4]!.clientToServer.file).toBe('2001:db8::1:0:0:2.50000-2001:db8::1.443.bin');
      cs.forEach((c, i) => {
        expect(run.file(c.clientToServer).equals(sent[i]![0])).toBe(true);
        expect(run.file(c.serverToClient).equals(sent[i]![1])).toBe(true);
      });
      // The connection replaced by a new SYN (no close) ended as 'reused'.
      expect(cs[1]!.endReason).toBe('reused');
      expect(cs[0]!.clientToServer.end).toBe('fin');
    });
  });

  it.skipIf(!TSHARK)('tshark splits the same five streams and follows the same bytes', () => {
    const t = tsharkBytes(path);
    expect(t.length).toBe(plan.length);
    t.forEach((s, i) => {
      expect(s.first).toEqual([ep(plan[i]!.client), ep(plan[i]!.server)]);
      expect(s.a.equals(sent[i]![0])).toBe(true);
      expect(s.b.equals(sent[i]![1])).toBe(true);
    });
  });
});

describe('alignment', () => {
  it('reordered, duplicated and overlapping (same bytes) segments across the 2^32 sequence wrap reassemble to the original; tshark agrees', () => {
    const data = bytesOf(20_000, 77);
    const isn = 0xffff_ff00; // the stream crosses 2^32 after 255 bytes
    const path = capture((cap) => {
      const s = new Session(A, B, isn, 42);
      s.handshake(cap);
      const base = s.nxt[0];
      // Segments of 1..1400 bytes, each window of 6 sent in reverse, every 5th sent twice,
      // every 7th followed by a segment overlapping it and the next one.
      const segs: [number, number][] = [];
      for (let off = 0, k = 0; off < data.length; k++) {
        const len = Math.min(data.length - off, 1 + ((k * 7919) % 1400));
        segs.push([off, len]);
        off += len;
      }
      const frame = (off: number, len: number) => s.at(0, base + off, data.subarray(off, off + len));
      for (let i = 0; i < segs.length; i += 6) {
        const win = segs.slice(i, i + 6).reverse();
        win.forEach(([off, len], j) => {
          cap.frame(frame(off, len));
          if ((i + j) % 5 === 0) cap.frame(frame(off, len));
          if ((i + j) % 7 === 0 && off + len + 10 <= data.length) cap.frame(frame(Math.max(0, off - 10), len + 20 > data.length - off ? len : len + 10));
        });
      }
      s.nxt[0] = (base + data.length) >>> 0;
      cap.frame(s.segment(1, [], F.ACK));
      s.close(cap);
    });
    withFlows(path, (run) => {
      const [c] = run.report.connections;
      const d = c!.clientToServer;
      expect(run.file(d).equals(Buffer.from(data))).toBe(true);
      expect(d.gaps).toBe(0);
      expect(d.overlapConflicts).toBe(0);
      expect(d.outOfOrder).toBeGreaterThan(0);
      expect(d.retransmitted).toBeGreaterThan(0);
      expect(d.end).toBe('fin');
    });
    if (TSHARK) expect(tsharkBytes(path)[0]!.a.equals(Buffer.from(data))).toBe(true);
  });

  it('counts segments by the documented definitions (in order / out of order / retransmitted / overlapping)', () => {
    const data = bytesOf(40, 5);
    const path = capture((cap) => {
      const s = new Session(A, B, 7, 9);
      s.handshake(cap);
      const b = s.nxt[0];
      const seg = (from: number, to: number) => cap.frame(s.at(0, b + from, data.subarray(from, to)));
      seg(0, 10); //  in order
      seg(20, 30); // out of order: buffered behind the hole 10..20
      seg(10, 20); // in order, fills the hole (the buffered piece follows)
      seg(0, 10); //  retransmitted (nothing new), overlapping
      seg(5, 15); //  retransmitted, overlapping
      seg(25, 40); // overlapping 25..30, new bytes 30..40 in order
    });
    withFlows(path, (run) => {
      const d = run.report.connections[0]!.clientToServer;
      expect(run.file(d).equals(Buffer.from(data))).toBe(true);
      // SYN + ACK + 6 data segments from the client.
      expect(d.segments).toBe(8);
      expect(d.outOfOrder).toBe(1);
      expect(d.retransmitted).toBe(2);
      expect(d.overlapping).toBe(3);
      expect(d.gaps).toBe(0);
      expect(d.end).toBe('closed'); // no FIN: the capture ended with the connection open
    });
  });

  it('mid-stream pick-up (no handshake): the first packet\'s sender is the client, offsets start at the first data; tshark agrees', () => {
    const up = bytesOf(500, 1);
    const down = bytesOf(3000, 2);
    const path = capture((cap) => {
      const s = new Session(B, A, 0x8000_0000, 0x1234_5678); // the server's data is seen first
      cap.frame(s.segment(0, down.subarray(0, 1000)));
      cap.frame(s.segment(1, up));
      cap.frame(s.segment(0, down.subarray(1000)));
    });
    withFlows(path, (run) => {
      const [c] = run.report.connections;
      expect(c!.client).toBe(ep(B));
      expect(run.file(c!.clientToServer).equals(Buffer.from(down))).toBe(true);
      expect(run.file(c!.serverToClient).equals(Buffer.from(up))).toBe(true);
      expect(c!.clientToServer.midstream).toBe(true);
    });
    if (TSHARK) {
      const [t] = tsharkBytes(path);
      expect(t!.first[0]).toBe(ep(B));
      expect(t!.a.equals(Buffer.from(down))).toBe(true);
      expect(t!.b.equals(Buffer.from(up))).toBe(true);
    }
  });

  it('a TCP segment split into IPv4 fragments (delivered out of order) is defragmented first; tshark agrees', () => {
    const data = bytesOf(3000, 3);
    const path = capture((cap) => {
      const s = new Session(A, B, 100, 200);
      s.handshake(cap);
      cap.frame(s.segment(0, data.subarray(0, 1000)));
      // The next 2000 bytes in one TCP segment, carried by three IPv4 fragments.
      const seq = s.nxt[0];
      const seg = tcp({ sport: A.port, dport: B.port, seq, ack: s.nxt[1], flags: F.ACK | F.PSH, window: 65535 }, [...data.subarray(1000)]);
      set16(seg, 16, naiveL4Checksum(ip4(A.ip), ip4(B.ip), 6, seg));
      const frag = (from: number, to: number, more: boolean) =>
        Uint8Array.from(eth(0x0800, ipv4({ proto: 6, src: ip4(A.ip), dst: ip4(B.ip), id: 0x4242, flags: more ? 1 : 0, fragUnits: from / 8 }, seg.slice(from, to))));
      cap.frame(frag(1504, seg.length, false));
      cap.frame(frag(0, 752, true));
      cap.frame(frag(752, 1504, true));
      s.nxt[0] = (seq + 2000) >>> 0;
      s.close(cap);
    });
    withFlows(path, (run) => {
      const d = run.report.connections[0]!.clientToServer;
      expect(run.file(d).equals(Buffer.from(data))).toBe(true);
      expect(run.report.engine.reassembledDatagrams).toBe(1);
      expect(d.end).toBe('fin');
    });
    if (TSHARK) expect(tsharkBytes(path)[0]!.a.equals(Buffer.from(data))).toBe(true);
  });
});

describe('gaps, conflicts and RST (where tshark differs, the test says why)', () => {
  const lossy = (acked: boolean) => {
    const data = bytesOf(5000, 9);
    const lost: [number, number] = [2000, 3000];
    const path = capture((cap) => {
      const s = new Session(A, B, 555, 666);
      if (acked) s.handshake(cap);
      const b = acked ? s.nxt[0] : 555;
      for (let off = 0; off < data.length; off += 1000) {
        if (off !== lost[0]) cap.frame(s.at(0, b + off, data.subarray(off, off + 1000)));
      }
      s.nxt[0] = (b + data.length) >>> 0;
      // The receiver acknowledges everything (the segment was lost after the capture point).
      if (acked) cap.frame(s.segment(1, [], F.ACK));
    });
    return { data, lost, path };
  };

  it('a lost segment the receiver ACKed: nothing in the file, one gap with its offsets; tshark marks the same hole', () => {
    const { data, lost, path } = lossy(true);
    withFlows(path, (run) => {
      const d = run.report.connections[0]!.clientToServer;
      const expected = Buffer.concat([data.subarray(0, lost[0]), data.subarray(lost[1])]);
      expect(run.file(d).equals(expected)).toBe(true);
      expect(d.gaps).toBe(1);
      expect(d.gapList).toEqual([{ offset: lost[0], fileOffset: lost[0], len: lost[1] - lost[0], reason: 'closed' }]);
      if (TSHARK) {
        const t = stripMissingMarkers(tsharkBytes(path)[0]!.a);
        expect(t.markers).toEqual([{ fileOffset: lost[0], len: lost[1] - lost[0] }]);
        expect(t.bytes.equals(expected)).toBe(true);
      }
    });
  });

  it('a lost segment nobody ACKed (one-way capture): we deliver past the gap; tshark holds the data behind it forever and prints only what precedes it', () => {
    const { data, lost, path } = lossy(false);
    withFlows(path, (run) => {
      const d = run.report.connections[0]!.clientToServer;
      expect(run.file(d).equals(Buffer.concat([data.subarray(0, lost[0]), data.subarray(lost[1])]))).toBe(true);
      expect(d.gapList).toEqual([{ offset: lost[0], fileOffset: lost[0], len: lost[1] - lost[0], reason: 'closed' }]);
      if (TSHARK) {
        const t = stripMissingMarkers(tsharkBytes(path)[0]!.a);
        expect(t.markers).toEqual([]);
        expect(t.bytes.equals(Buffer.from(data.subarray(0, lost[0])))).toBe(true);
      }
    });
  });

  it('overlaps with different bytes: first copy wins everywhere and each differing run is listed; tshark instead lets a later IN-ORDER segment beat buffered data', () => {
    const enc = (t: string) => Buffer.from(t);
    const path = capture((cap) => {
      const s = new Session(A, B, 0xffff_fff0, 5000);
      s.handshake(cap);
      const b = s.nxt[0];
      cap.frame(s.at(0, b, enc('AAAAAAAAAA'))); //         0..10 delivered
      cap.frame(s.at(0, b + 20, enc('CCCCCCCCCC'))); //    20..30 buffered
      cap.frame(s.at(0, b + 15, enc('YYYYYZZZZZZZZZZ'))); // 15..20 buffered (new), 20..30 differs from C
      cap.frame(s.at(0, b + 10, enc('BBBBBBBBBB'))); //    10..20 in order: 15..20 differs from Y
      s.nxt[0] = (b + 30) >>> 0;
      s.close(cap);
    });
    withFlows(path, (run) => {
      const d = run.report.connections[0]!.clientToServer;
      const ours = run.file(d).toString();
      expect(ours).toBe('AAAAAAAAAABBBBBYYYYYCCCCCCCCCC');
      expect(d.overlapConflicts).toBe(2);
      expect(d.conflictBytes).toBe(15);
      expect([...d.conflictList].sort((x, y) => x.offset - y.offset)).toEqual([
        { offset: 15, len: 5 },
        { offset: 20, len: 10 },
      ]);
      if (TSHARK) {
        // tshark keeps the first of two BUFFERED copies (C over Z) but trims buffered data
        // under a newly in-order segment (B over Y): first-wins or last-wins depending on
        // timing. It may differ from us only inside the ranges we report as conflicts.
        const t = tsharkBytes(path)[0]!.a.toString();
        expect(t.length).toBe(ours.length);
        for (let i = 0; i < ours.length; i++) {
          if (t[i] !== ours[i]) expect(d.conflictList.some((c) => i >= c.offset && i < c.offset + c.len), `offset ${i}`).toBe(true);
        }
        expect(t).toBe('AAAAAAAAAABBBBBBBBBBCCCCCCCCCC');
      }
    });
  });

  it('a retransmission of already-delivered bytes is compared: every byte compared, the differing run reported, first copy kept', () => {
    const enc = (t: string) => Buffer.from(t);
    const path = capture((cap) => {
      const s = new Session(A, B, 1000, 5000);
      s.handshake(cap);
      const b = s.nxt[0];
      cap.frame(s.at(0, b, enc('hello world, '))); //      0..13 delivered
      cap.frame(s.at(0, b + 13, enc('and goodbye'))); // 13..24 delivered
      cap.frame(s.at(0, b, enc('hello world, '))); //      same bytes again: verified
      cap.frame(s.at(0, b + 13, enc('and GOODbye'))); // retransmission with 4 bytes changed
      s.nxt[0] = (b + 24) >>> 0;
      s.close(cap);
    });
    withFlows(path, (run) => {
      const d = run.report.connections[0]!.clientToServer;
      expect(run.file(d).toString()).toBe('hello world, and goodbye');
      expect(d.retransmitted).toBe(2);
      // Verified = compared against the delivered copy (the differing run included).
      expect(d.retxVerifiedBytes).toBe(13 + 11);
      expect(d.retxUnverifiedBytes).toBe(0);
      expect(d.overlapConflicts).toBe(1);
      expect(d.conflictList).toEqual([{ offset: 17, len: 4 }]);
    });
  });

  it('data crossing a RST is not part of the stream (the connection ended at the RST); tshark appends it', () => {
    const up = bytesOf(300, 1);
    const down = bytesOf(400, 2);
    const late = bytesOf(50, 3);
    const path = capture((cap) => {
      const s = new Session(A, B, 10, 20);
      s.handshake(cap);
      cap.frame(s.segment(0, up));
      cap.frame(s.segment(1, down));
      cap.frame(s.segment(0, [], F.RST | F.ACK)); // client aborts
      cap.frame(s.segment(1, late)); //              server data already in flight
    });
    withFlows(path, (run) => {
      const c = run.report.connections[0]!;
      expect(run.file(c.clientToServer).equals(Buffer.from(up))).toBe(true);
      expect(run.file(c.serverToClient).equals(Buffer.from(down))).toBe(true);
      expect(c.clientToServer.end).toBe('rst');
      expect(c.serverToClient.end).toBe('rst');
      expect(c.serverToClient.afterEnd).toBe(1);
      if (TSHARK) expect(tsharkBytes(path)[0]!.b.equals(Buffer.concat([down, late]))).toBe(true);
    });
  });
});

describe('every connection direction reported', () => {
  it('a connection without payload still gets its two (empty) files and a row', () => {
    const path = capture((cap) => {
      const s = new Session(A, B, 1, 2);
      s.handshake(cap);
      s.close(cap);
    });
    withFlows(path, (run) => {
      const [c] = run.report.connections as [ConnectionReport];
      const dirs: DirectionReport[] = [c.clientToServer, c.serverToClient];
      for (const d of dirs) {
        expect(run.file(d).length).toBe(0);
        expect(d.end).toBe('fin');
      }
      expect(readdirSync(run.dir).length).toBe(2);
    });
  });
});
