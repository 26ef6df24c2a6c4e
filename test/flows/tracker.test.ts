/**
 * ConnectionTracker in process: the event contract consumers (compare, rewriter, analyzer)
 * rely on, connection lifecycle (FIN, RST, idle, eviction, reuse, finish), non-TCP flows,
 * IP fragments, zero-copy handles and pool hygiene, re-entrancy.
 */
import { describe, expect, it } from 'vitest';
import type { Connection, ConnectionEndReason, ConnectionListener } from '../../src/flow/connection.js';
import { ConnectionTracker, TrackResult, type TrackerOptions } from '../../src/flow/tracker.js';
import type { Dir } from '../../src/flow/tcp-types.js';
import { decodeFrame } from '../../src/packet/decode.js';
import { NO_HANDLE, PacketPool } from '../../src/packet/pool.js';
import { PacketView } from '../../src/packet/view.js';
import { eth, ip4, ipv4, udp } from '../packet/build.js';
import { bytesOf, F, Session, tcpFrame, type Host } from './synth.js';

const A: Host = { ip: '10.1.1.1', port: 40000 };
const B: Host = { ip: '10.2.2.2', port: 80 };
const C: Host = { ip: '10.3.3.3', port: 41000 };

/** Records every event as a line, and the bytes per connection direction. */
class Recorder implements ConnectionListener {
  readonly log: string[] = [];
  readonly bytes = new Map<number, [number[], number[]]>();
  readonly ends = new Map<number, ConnectionEndReason>();
  onData?: () => void;

  start(c: Connection): void {
    this.log.push(`start ${c.serial} ${c.client}>${c.server}`);
    this.bytes.set(c.serial, [[], []]);
  }
  data(c: Connection, dir: Dir, buf: Uint8Array, off: number, len: number, at: number): void {
    this.log.push(`data ${c.serial} ${dir} @${at}+${len}`);
    this.bytes.get(c.serial)![dir].push(...buf.subarray(off, off + len));
    this.onData?.();
  }
  gap(c: Connection, dir: Dir, at: number, len: number, reason: string): void {
    this.log.push(`gap ${c.serial} ${dir} @${at}+${len} ${reason}`);
  }
  directionEnd(c: Connection, dir: Dir, how: string): void {
    this.log.push(`dirend ${c.serial} ${dir} ${how}`);
  }
  datagram(c: Connection, dir: Dir, _buf: Uint8Array, _off: number, len: number): void {
    this.log.push(`datagram ${c.serial} ${dir} ${len}`);
  }
  end(c: Connection, reason: ConnectionEndReason): void {
    this.log.push(`end ${c.serial} ${reason}`);
    this.ends.set(c.serial, reason);
  }
}

/** A tracker fed from built frames; `pooled` copies each frame into a pool slot (zero-copy path). */
function setup(opts: Partial<TrackerOptions> = {}, pooled = false) {
  const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 256 }, { slotSize: 65536, slots: 8 }] });
  const rec = new Recorder();
  const tracker = new ConnectionTracker({ pool, ...opts, table: { maxFlows: 1024, ...opts.table } }, rec);
  const v = new PacketView();
  let now = 1_000;
  const feed = (frame: Uint8Array, advanceMs = 1): number => {
    now += advanceMs;
    if (!pooled) {
      decodeFrame(v, frame, 0, frame.length);
      return tracker.packet(v, now, NO_HANDLE);
    }
    const h = pool.copyIn(frame, 0, frame.length);
    decodeFrame(v, pool.buffer(h), pool.offset(h), frame.length);
    const r = tracker.packet(v, now, h);
    pool.release(h);
    return r;
  };
  return { pool, rec, tracker, feed, now: () => now };
}

describe('ConnectionTracker events', () => {
  it('start, in-order data per direction, each direction\'s end, then the connection\'s end', () => {
    const { rec, tracker, feed } = setup();
    const s = new Session(A, B, 100, 200);
    const up = bytesOf(10, 1);
    const down = bytesOf(20, 2);
    for (const f of [s.segment(0, [], F.SYN), s.segment(1, [], F.SYN | F.ACK), s.segment(0, [], F.ACK), s.segment(0, up), s.segment(1, down)]) {
      expect(feed(f)).toBe(TrackResult.TCP);
    }
    feed(s.segment(0, [], F.FIN | F.ACK));
    feed(s.segment(1, [], F.FIN | F.ACK));
    feed(s.segment(0, [], F.ACK));
    expect(rec.log).toEqual([
      'start 0 10.1.1.1:40000>10.2.2.2:80',
      'data 0 0 @0+10',
      'data 0 1 @0+20',
      'dirend 0 0 fin',
      'dirend 0 1 fin',
    ]);
    // Closed both ways: the flow lingers (late retransmissions), then goes with reason 'closed'.
    expect(tracker.size).toBe(1);
    tracker.expire(1_000_000);
    expect(rec.log.at(-1)).toBe('end 0 closed');
    expect(tracker.size).toBe(0);
    expect(rec.bytes.get(0)).toEqual([[...up], [...down]]);
  });

  it('a flow leaving the table closes its reassembler first: the hole is reported as a gap, the direction ends, then the connection ends', () => {
    const { rec, tracker, feed } = setup();
    const s = new Session(A, B, 100, 200);
    feed(s.segment(0, [], F.SYN));
    const b = s.nxt[0];
    feed(s.at(0, b, bytesOf(10, 1)));
    feed(s.at(0, b + 30, bytesOf(5, 2))); // hole 10..30
    tracker.finish();
    expect(rec.log.slice(1)).toEqual([
      'data 0 0 @0+10',
      'gap 0 0 @10+20 closed',
      'data 0 0 @30+5',
      'dirend 0 0 closed',
      'dirend 0 1 closed',
      'end 0 finished',
    ]);
  });

  it('idle timeout: directions end "timeout", connection "idle"; the next packet on the 4-tuple starts a new connection', () => {
    const { rec, tracker, feed } = setup({ table: { timeouts: { tcpEstablishedMs: 5_000 } } });
    const s = new Session(A, B, 100, 200);
    feed(s.segment(0, bytesOf(10, 1))); // mid-stream
    feed(s.segment(0, bytesOf(10, 2)), 10_000);
    expect(rec.log).toEqual([
      'start 0 10.1.1.1:40000>10.2.2.2:80',
      'data 0 0 @0+10',
      'dirend 0 0 timeout',
      'dirend 0 1 timeout',
      'end 0 idle',
      'start 1 10.1.1.1:40000>10.2.2.2:80',
      'data 1 0 @0+10',
    ]);
    expect(tracker.stats().ended.idle).toBe(1);
  });

  it('LRU eviction when the table is full ends the least recently used connection as "evicted", holes included', () => {
    const { rec, tracker, feed } = setup({ table: { maxFlows: 2 } });
    const s1 = new Session(A, B, 100, 200);
    const s2 = new Session(C, B, 300, 400);
    const s3 = new Session({ ip: '10.4.4.4', port: 42000 }, B, 500, 600);
    feed(s1.segment(0, bytesOf(10, 1)));
    feed(s1.at(0, s1.nxt[0] + 10, bytesOf(10, 2))); // hole 10..20 in connection 0
    feed(s2.segment(0, bytesOf(10, 3)));
    feed(s3.segment(0, bytesOf(10, 4))); // table full: connection 0 (least recently used) goes
    expect(rec.log).toContain('gap 0 0 @10+10 evicted');
    expect(rec.log).toContain('dirend 0 0 evicted');
    expect(rec.ends.get(0)).toBe('evicted');
    expect(rec.ends.has(1)).toBe(false);
    expect(rec.log.indexOf('end 0 evicted')).toBeLessThan(rec.log.indexOf('start 2 10.4.4.4:42000>10.2.2.2:80'));
    expect(tracker.size).toBe(2);
    expect(tracker.stats().table.removed.evicted).toBe(1);
  });

  it('RST ends both directions "rst"; after the linger the connection ends "rst"', () => {
    const { rec, tracker, feed } = setup();
    const s = new Session(A, B, 100, 200);
    feed(s.segment(0, [], F.SYN));
    feed(s.segment(1, [], F.SYN | F.ACK));
    feed(s.segment(1, [], F.RST | F.ACK));
    expect(rec.log.slice(1)).toEqual(['dirend 0 0 rst', 'dirend 0 1 rst']);
    tracker.expire(1_000_000);
    expect(rec.ends.get(0)).toBe('rst');
  });

  it('4-tuple reuse: a SYN with a new ISN on a live connection ends it ("reused") before the new one starts; a retransmitted SYN does not', () => {
    const { rec, tracker, feed } = setup();
    const s = new Session(A, B, 100, 200);
    const syn = s.segment(0, [], F.SYN);
    feed(syn);
    feed(syn); // retransmitted SYN: same connection
    feed(s.segment(1, [], F.SYN | F.ACK));
    feed(s.segment(0, bytesOf(5, 1)));
    const s2 = new Session(A, B, 9999, 8888);
    feed(s2.segment(0, [], F.SYN));
    expect(rec.log).toEqual([
      'start 0 10.1.1.1:40000>10.2.2.2:80',
      'data 0 0 @0+5',
      'dirend 0 0 closed',
      'dirend 0 1 closed',
      'end 0 reused',
      'start 1 10.1.1.1:40000>10.2.2.2:80',
    ]);
    expect(tracker.stats().synReuse).toBe(1);
  });

  it('the old server opening a connection to the old client reuses the 4-tuple with roles swapped', () => {
    const { rec, feed } = setup();
    const s = new Session(A, B, 100, 200);
    feed(s.segment(0, [], F.SYN));
    feed(s.segment(1, [], F.SYN | F.ACK));
    feed(s.segment(1, bytesOf(5, 1)));
    const back = new Session(B, A, 5000, 6000);
    feed(back.segment(0, [], F.SYN));
    expect(rec.log.at(-2)).toBe('end 0 reused');
    expect(rec.log.at(-1)).toBe('start 1 10.2.2.2:80>10.1.1.1:40000');
  });

  it('simultaneous open (a SYN from each side) is one connection; a SYN after a FIN on a mid-stream connection is a new one', () => {
    const { rec, feed } = setup();
    const s = new Session(A, B, 100, 200);
    feed(s.segment(0, [], F.SYN));
    feed(s.segment(1, [], F.SYN));
    feed(s.segment(0, bytesOf(3, 1)));
    expect(rec.log.filter((l) => l.startsWith('start')).length).toBe(1);
    const m = new Session(C, B, 7000, 8000); // picked up mid-stream: B's data is seen first, B is the client
    feed(m.segment(1, bytesOf(4, 2)));
    feed(m.segment(1, [], F.FIN | F.ACK));
    feed(new Session(C, B, 123, 0).segment(0, [], F.SYN));
    expect(rec.log.slice(-4)).toEqual(['dirend 1 0 fin', 'dirend 1 1 closed', 'end 1 reused', 'start 2 10.3.3.3:41000>10.2.2.2:80']);
  });

  it('UDP: a flow per conversation, a datagram event per packet with its direction', () => {
    const { rec, tracker, feed } = setup();
    const dg = (src: string, dst: string, sp: number, dp: number, n: number) =>
      Uint8Array.from(eth(0x0800, ipv4({ proto: 17, src: ip4(src), dst: ip4(dst) }, udp(sp, dp, [...bytesOf(n, n)]))));
    expect(feed(dg('10.0.0.1', '10.0.0.2', 5353, 53, 30))).toBe(TrackResult.DATAGRAM);
    feed(dg('10.0.0.2', '10.0.0.1', 53, 5353, 90));
    feed(dg('10.0.0.1', '10.0.0.2', 5353, 53, 31));
    tracker.finish();
    expect(rec.log).toEqual(['start 0 10.0.0.1:5353>10.0.0.2:53', 'datagram 0 0 30', 'datagram 0 1 90', 'datagram 0 0 31', 'end 0 finished']);
    expect(tracker.stats().otherFlows).toBe(1);
  });

  it('non-IP frames and undecodable IP are counted, not tracked', () => {
    const { tracker, feed } = setup();
    const arp = Uint8Array.from(eth(0x0806, new Array<number>(28).fill(0)));
    expect(feed(arp)).toBe(TrackResult.NOT_IP);
    const badTcp = Uint8Array.from(eth(0x0800, ipv4({ proto: 6, src: ip4('10.0.0.1'), dst: ip4('10.0.0.2') }, [1, 2, 3]))); // 3-byte "TCP header"
    expect(feed(badTcp)).toBe(TrackResult.UNDECODED);
    expect(tracker.size).toBe(0);
  });
});

describe('ConnectionTracker memory and handles', () => {
  for (const pooled of [false, true]) {
    it(`${pooled ? 'pooled (zero-copy) handles' : 'unpooled bytes'}: reordered data is right, and nothing stays in the pool or the budget afterwards`, () => {
      const { pool, rec, tracker, feed } = setup({}, pooled);
      const s = new Session(A, B, 0xffff_fff0, 200);
      const data = bytesOf(6000, 7);
      feed(s.segment(0, [], F.SYN));
      const b = s.nxt[0];
      for (const off of [5000, 3000, 4000, 1000, 2000]) feed(s.at(0, b + off, data.subarray(off, off + 1000)));
      // Five pieces wait behind the hole at 0: held in the pool and charged to the budget.
      expect(pool.inUse).toBeGreaterThan(0);
      expect(tracker.budget.used).toBeGreaterThan(0);
      feed(s.at(0, b, data.subarray(0, 1000)));
      expect(pool.inUse).toBe(0);
      expect(tracker.budget.used).toBe(0);
      tracker.finish();
      expect(rec.bytes.get(0)![0]).toEqual([...data]);
      expect(pool.inUse).toBe(0);
      expect(tracker.budget.used).toBe(0);
    });
  }

  it('IPv4 fragments: the rebuilt datagram is tracked and its pool slot released', () => {
    const { pool, rec, tracker, feed } = setup();
    const s = new Session(A, B, 100, 200);
    const full = s.segment(0, bytesOf(1600, 3)); // Ethernet + IPv4 + TCP + 1600 bytes
    const l3 = full.subarray(14);
    const hl = 20;
    const payload = [...l3.subarray(hl)];
    const frag = (from: number, to: number, more: boolean) =>
      Uint8Array.from(eth(0x0800, ipv4({ proto: 6, src: ip4(A.ip), dst: ip4(B.ip), id: 7, flags: more ? 1 : 0, fragUnits: from / 8 }, payload.slice(from, to))));
    expect(feed(frag(800, payload.length, false))).toBe(TrackResult.FRAGMENT);
    expect(feed(frag(0, 800, true))).toBe(TrackResult.TCP);
    expect(tracker.stats().reassembledDatagrams).toBe(1);
    tracker.finish();
    expect(rec.bytes.get(0)![0]).toEqual([...bytesOf(1600, 3)]);
    expect(pool.inUse).toBe(0);
  });

  it('a listener calling back into the tracker gets ERR_FLOW_REENTRANT', () => {
    const { rec, tracker, feed } = setup();
    const s = new Session(A, B, 100, 200);
    rec.onData = () => tracker.expire(0);
    expect(() => feed(s.segment(0, bytesOf(5, 1)))).toThrow(expect.objectContaining({ code: 'ERR_FLOW_REENTRANT' }));
  });

  it('remove(c) ends one connection now ("cleared") and leaves the others', () => {
    const { rec, tracker, feed } = setup();
    let first: Connection | undefined;
    rec.start = function (c) {
      first ??= c;
      Recorder.prototype.start.call(this, c);
    };
    feed(tcpFrame(A, B, 1, 0, F.ACK | F.PSH, [1, 2, 3]));
    feed(tcpFrame(C, B, 1, 0, F.ACK | F.PSH, [4, 5]));
    tracker.remove(first!);
    expect(rec.ends.get(0)).toBe('cleared');
    expect(tracker.size).toBe(1);
    expect(first!.summary().dirs[0].bytes).toBe(3);
  });
});
