/**
 * Behaviour of TcpReassembler on hand-built segment sequences. Expected values come from the
 * RFC 9293 sequence rules (SYN and FIN take one number, ISN + 1 is the first data byte) and
 * from the stream the segments were cut from, never from the reassembler's own output.
 */
import { describe, expect, it } from 'vitest';
import { ReassemblyBudget } from '../../src/flow/tcp-budget.js';
import { TcpReassembler } from '../../src/flow/tcp-reassembler.js';
import { SegmentResult } from '../../src/flow/tcp-types.js';
import { LAYER_PAYLOAD, LAYER_TCP } from '../../src/packet/layer.js';
import { NO_HANDLE } from '../../src/packet/pool.js';
import { PacketView } from '../../src/packet/view.js';
import { ACK, FIN, Feeder, RST, RecordingSink, SYN, leaks, seqPlus, streamBytes, testPool } from './tcp-harness.js';

function setup(pooled = true, limits = {}) {
  const pool = testPool();
  const budget = new ReassemblyBudget(1 << 30);
  const sink = new RecordingSink();
  const r = new TcpReassembler(pool, sink, limits, budget);
  const f = new Feeder(pool, r, pooled);
  return { pool, budget, sink, r, f };
}

const bytesEq = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe('TcpReassembler: offsets and sequence numbers', () => {
  it('offset 0 is ISN+1; in-order data is delivered at once, zero-copy from the segment slot', () => {
    const { pool, sink, r, f } = setup(true);
    const seen: Array<{ buf: Uint8Array; off: number }> = [];
    const isn = 1000;
    f.send(0, isn, SYN);
    const data = streamBytes(300);
    // Feed by hand to check the view identity.
    const h = pool.acquireOrThrow(400);
    const buf = pool.buffer(h);
    buf.set(data, pool.offset(h) + 54);
    const v = f.v;
    v.reset();
    v.layers = LAYER_TCP | LAYER_PAYLOAD;
    v.tcpSeq = isn + 1;
    v.tcpFlags = ACK;
    v.buf = buf;
    v.payloadOff = pool.offset(h) + 54;
    v.payloadLen = 300;
    v.payloadFullLen = 300;
    const origData = sink.data.bind(sink);
    sink.data = (dir, b, off, len, at) => {
      seen.push({ buf: b, off });
      origData(dir, b, off, len, at);
    };
    expect(r.segment(v, 0, h, 0)).toBe(SegmentResult.OK);
    pool.release(h);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.buf).toBe(buf); // the packet's own slab
    expect(seen[0]!.off).toBe(v.payloadOff);
    expect(bytesEq(sink.dirs[0].delivered(), data)).toBe(true);
    expect(r.stats[0].inOrder).toBe(1);
    expect(pool.inUse).toBe(0); // nothing retained for in-order data
  });

  it('out-of-order bytes are held by retaining the handle (pooled) or by one copy (unpooled)', () => {
    for (const pooled of [true, false]) {
      const { pool, sink, r, f } = setup(pooled);
      const data = streamBytes(3000, 7);
      f.send(0, 5, SYN);
      f.send(0, 6 + 1000, ACK, data.subarray(1000, 2000));
      f.send(0, 6 + 2000, ACK, data.subarray(2000, 3000));
      expect(sink.dirs[0].next).toBe(0);
      expect(r.stats[0].bufferedBytes).toBe(2000);
      expect(r.stats[0].bufferedSegments).toBe(2);
      expect(pool.inUse).toBe(2);
      expect(r.stats[0].copiedBytes).toBe(pooled ? 0 : 2000);
      f.send(0, 6, ACK, data.subarray(0, 1000));
      expect(bytesEq(sink.dirs[0].delivered(), data)).toBe(true);
      expect(r.stats[0].outOfOrder).toBe(2);
      expect(r.stats[0].inOrder).toBe(1);
      r.close();
      expect(leaks(pool, r)).toEqual({ poolInUse: 0, budgetUsed: 0, buffered: [0, 0] });
    }
  });

  it('sequence numbers wrapping past 2^32, in and out of order', () => {
    for (const pooled of [true, false]) {
      const { pool, budget, sink, r, f } = setup(pooled);
      const isn = 0xffffffff - 700; // data crosses the wrap at offset 699
      const data = streamBytes(4000, 3);
      f.send(0, isn, SYN);
      const order = [3, 0, 2, 1]; // segments of 1000 bytes
      for (const i of order) f.send(0, seqPlus(isn, 1 + i * 1000), ACK, data.subarray(i * 1000, i * 1000 + 1000));
      expect(bytesEq(sink.dirs[0].delivered(), data)).toBe(true);
      f.send(0, seqPlus(isn, 1 + 4000), FIN | ACK);
      expect(sink.dirs[0].end).toBe('fin');
      expect(r.half(0).finOffset).toBe(4000);
      r.close();
      expect(pool.inUse).toBe(0);
      expect(budget.used).toBe(0);
    }
  });

  it('streams longer than 2^32 bytes: offsets keep counting past 2^32 (sequence wraps twice)', () => {
    const { pool, budget, sink, r, f } = setup(false);
    sink.keepBytes = false;
    const isn = 0xfffff000;
    f.send(0, isn, SYN);
    const chunk = new Uint8Array(65_000);
    // 66_100 × 65_000 ≈ 4.3e9 bytes in order (each data call carries the segment's own bytes).
    const nChunks = 66_100;
    const v = f.v;
    v.reset();
    v.layers = LAYER_TCP | LAYER_PAYLOAD;
    v.tcpFlags = ACK;
    v.buf = chunk;
    v.payloadOff = 0;
    v.payloadLen = chunk.length;
    v.payloadFullLen = chunk.length;
    for (let i = 0; i < nChunks; i++) {
      v.tcpSeq = seqPlus(isn, 1 + i * 65_000);
      r.segment(v, 0, NO_HANDLE, 0);
    }
    const base = nChunks * 65_000;
    expect(base).toBeGreaterThan(2 ** 32);
    expect(sink.dirs[0].next).toBe(base);
    // Now out of order around that point, with real bytes.
    sink.keepBytes = true;
    const tail = streamBytes(3000, 11);
    const got: number[] = [];
    const orig = sink.data.bind(sink);
    sink.data = (dir, b, off, len, at) => {
      for (let i = 0; i < len; i++) got[at - base + i] = b[off + i]!;
      orig(dir, b, off, len, at);
    };
    f.send(0, seqPlus(isn, 1 + base + 2000), ACK, tail.subarray(2000));
    f.send(0, seqPlus(isn, 1 + base + 1000), ACK, tail.subarray(1000, 2000));
    f.send(0, seqPlus(isn, 1 + base), ACK, tail.subarray(0, 1000));
    expect(sink.dirs[0].next).toBe(base + 3000);
    expect(bytesEq(Uint8Array.from(got), tail)).toBe(true);
    expect(sink.dirs[0].errors).toEqual([]);
    r.close();
    expect(pool.inUse).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('mid-stream pick-up: the first data segment is offset 0; earlier bytes count as retransmissions', () => {
    const { sink, r, f } = setup(true);
    const data = streamBytes(600, 5);
    const seq0 = 77_777;
    expect(f.send(0, seq0 - 200, ACK)).toBe(SegmentResult.NO_DATA); // pure ACK does not start the stream
    expect(r.half(0).started).toBe(false);
    expect(f.send(0, seq0, ACK, data.subarray(200, 400))).toBe(SegmentResult.OK);
    expect(r.stats[0].midstream).toBe(1);
    expect(r.half(0).synSeen).toBe(false);
    expect(f.send(0, seq0 - 200, ACK, data.subarray(0, 200))).toBe(SegmentResult.DUPLICATE);
    expect(f.send(0, seq0 + 200, ACK, data.subarray(400, 600))).toBe(SegmentResult.OK);
    expect(bytesEq(sink.dirs[0].delivered(), data.subarray(200))).toBe(true);
    expect(r.stats[0].retransmitted).toBe(1);
  });

  it('data on a SYN (TCP Fast Open) is at offset 0; a retransmitted SYN is a duplicate', () => {
    const { sink, r, f } = setup(false);
    const data = streamBytes(500, 9);
    const isn = 0xfffffff0;
    expect(f.send(0, isn, SYN, data.subarray(0, 100))).toBe(SegmentResult.OK);
    expect(f.send(0, isn, SYN, data.subarray(0, 100))).toBe(SegmentResult.DUPLICATE);
    f.send(0, seqPlus(isn, 101), ACK, data.subarray(100));
    expect(bytesEq(sink.dirs[0].delivered(), data)).toBe(true);
    expect(r.half(0).synSeen).toBe(true);
    expect(r.stats[0].midstream).toBe(0);
  });

  it('each direction is independent (SYN / SYN-ACK, interleaved data)', () => {
    const { sink, f } = setup(true);
    const a = streamBytes(900, 1);
    const b = streamBytes(1300, 2);
    f.send(0, 100, SYN);
    f.send(1, 0xfffffffe, SYN | ACK);
    f.send(1, seqPlus(0xfffffffe, 1 + 650), ACK, b.subarray(650));
    f.send(0, 101, ACK, a.subarray(0, 450));
    f.send(1, 0xffffffff, ACK, b.subarray(0, 650));
    f.send(0, 551, ACK, a.subarray(450));
    expect(bytesEq(sink.dirs[0].delivered(), a)).toBe(true);
    expect(bytesEq(sink.dirs[1].delivered(), b)).toBe(true);
  });
});

describe('TcpReassembler: FIN, RST, close', () => {
  it('end(fin) comes after the last byte, even when the FIN arrives before the data', () => {
    const { sink, r, f } = setup(true);
    const data = streamBytes(200);
    f.send(0, 0, SYN);
    expect(f.send(0, 1 + 200, FIN | ACK)).toBe(SegmentResult.OK);
    expect(sink.dirs[0].end).toBeNull();
    f.send(0, 1 + 100, ACK, data.subarray(100));
    expect(sink.dirs[0].end).toBeNull();
    f.send(0, 1, ACK, data.subarray(0, 100));
    expect(sink.dirs[0].end).toBe('fin');
    expect(sink.dirs[0].next).toBe(200);
    // Anything after the end is counted and dropped.
    expect(f.send(0, 1 + 200, FIN | ACK)).toBe(SegmentResult.AFTER_END);
    expect(r.stats[0].afterEnd).toBe(1);
    expect(r.closed).toBe(false);
  });

  it('FIN with data: the FIN takes the number after the payload; bytes beyond the FIN are dropped', () => {
    const { sink, r, f } = setup(false);
    const data = streamBytes(300);
    f.send(0, 50, SYN);
    f.send(0, 51 + 250, ACK, data.subarray(250, 300)); // buffered, partly beyond the FIN below
    f.send(0, 51, FIN | ACK, data.subarray(0, 280)); // FIN at offset 280
    expect(sink.dirs[0].end).toBe('fin');
    expect(sink.dirs[0].next).toBe(280);
    expect(bytesEq(sink.dirs[0].delivered(), data.subarray(0, 280))).toBe(true);
    expect(r.stats[0].beyondFinBytes).toBe(20);
  });

  it('half-close: one direction ends with FIN while the other keeps delivering', () => {
    const { sink, r, f } = setup(true);
    const a = streamBytes(100, 1);
    const b = streamBytes(3000, 2);
    f.send(0, 0, SYN);
    f.send(1, 500, SYN | ACK);
    f.send(0, 1, FIN | ACK, a);
    expect(sink.dirs[0].end).toBe('fin');
    expect(sink.dirs[1].end).toBeNull();
    f.send(1, 501, ACK, b.subarray(0, 1500));
    f.send(1, 2001, FIN | ACK, b.subarray(1500));
    expect(sink.dirs[1].end).toBe('fin');
    expect(bytesEq(sink.dirs[1].delivered(), b)).toBe(true);
    expect(r.ended).toBe(true);
  });

  it('FIN with a hole pending: nothing ends until close, which reports the gap then end(fin)', () => {
    const { pool, budget, sink, r, f } = setup(true);
    const data = streamBytes(400);
    f.send(0, 0, SYN);
    f.send(0, 1, ACK, data.subarray(0, 100));
    f.send(0, 201, FIN | ACK, data.subarray(200));
    expect(sink.dirs[0].end).toBeNull();
    r.close('timeout');
    expect(sink.dirs[0].gaps).toEqual([{ offset: 100, len: 100, reason: 'timeout' }]);
    expect(sink.dirs[0].end).toBe('fin');
    expect(sink.dirs[1].end).toBe('timeout');
    expect(bytesEq(sink.dirs[0].delivered().subarray(200), data.subarray(200))).toBe(true);
    expect(pool.inUse).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('a hole right before a FIN is also resolved by the hole timeout', () => {
    const { sink, f, r } = setup(true, { holeTimeoutMs: 1000 });
    f.send(0, 0, SYN, undefined, 0);
    f.send(0, 1, ACK, streamBytes(10), 0);
    f.send(0, 1 + 20, FIN | ACK, undefined, 100); // bytes 10..20 never sent
    r.tick(1099);
    expect(sink.dirs[0].end).toBeNull();
    r.tick(1100);
    expect(sink.dirs[0].gaps).toEqual([{ offset: 10, len: 10, reason: 'hole-timeout' }]);
    expect(sink.dirs[0].end).toBe('fin');
  });

  it('RST ends both directions: holes become rst gaps, buffered data is delivered', () => {
    const { pool, budget, sink, r, f } = setup(false);
    const data = streamBytes(500);
    f.send(0, 0, SYN);
    f.send(1, 9000, SYN | ACK);
    f.send(0, 1 + 300, ACK, data.subarray(300));
    expect(f.send(1, 9001, RST | ACK)).toBe(SegmentResult.OK);
    expect(sink.dirs[0].gaps).toEqual([{ offset: 0, len: 300, reason: 'rst' }]);
    expect(bytesEq(sink.dirs[0].delivered().subarray(300), data.subarray(300))).toBe(true);
    expect(sink.dirs[0].end).toBe('rst');
    expect(sink.dirs[1].end).toBe('rst');
    expect(r.closed).toBe(true);
    expect(f.send(0, 1, ACK, data.subarray(0, 300))).toBe(SegmentResult.CLOSED);
    expect(pool.inUse).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('an RST far outside the window is ignored and counted', () => {
    const { sink, r, f } = setup(true, { maxWindowBytes: 1 << 20 });
    f.send(0, 0, SYN);
    f.send(0, 1, ACK, streamBytes(10));
    expect(f.send(0, 1 + (1 << 21), RST)).toBe(SegmentResult.OUT_OF_WINDOW);
    expect(sink.dirs[0].end).toBeNull();
    expect(r.stats[0].rst).toBe(1);
    expect(r.stats[0].outOfWindow).toBe(1);
    f.send(0, 11, ACK, streamBytes(10, 2));
    expect(sink.dirs[0].next).toBe(20);
  });

  it('close is idempotent and ends each direction exactly once', () => {
    const { sink, r } = setup(true);
    r.close('evicted');
    r.close('closed');
    expect(sink.dirs[0].end).toBe('evicted');
    expect(sink.dirs[1].end).toBe('evicted');
    expect(sink.dirs[0].endCalls).toBe(1);
  });

  it('a sink may close from a callback (deferred); feeding re-entrantly throws', () => {
    const { pool, budget, sink, r, f } = setup(true);
    f.send(0, 0, SYN);
    let closedInside = false;
    sink.onData = () => {
      if (!closedInside) {
        closedInside = true;
        r.close('closed');
      }
    };
    const data = streamBytes(300);
    f.send(0, 1 + 100, ACK, data.subarray(100));
    f.send(0, 1, ACK, data.subarray(0, 100)); // delivers 0..300, close requested during the first call
    expect(bytesEq(sink.dirs[0].delivered(), data)).toBe(true);
    expect(sink.dirs[0].end).toBe('closed');
    expect(r.closed).toBe(true);
    expect(pool.inUse).toBe(0);
    expect(budget.used).toBe(0);

    const s2 = setup(true);
    s2.f.send(0, 0, SYN);
    s2.sink.onData = () => {
      s2.f.send(0, 999, ACK, streamBytes(1));
    };
    expect(() => s2.f.send(0, 1, ACK, streamBytes(5))).toThrow(/re-entrantly/);
  });
});

describe('TcpReassembler: retransmissions and overlaps', () => {
  it('retransmissions of delivered data are counted and dropped; partial overlaps deliver only new bytes', () => {
    const { sink, r, f } = setup(true);
    const data = streamBytes(1000);
    f.send(0, 0, SYN);
    f.send(0, 1, ACK, data.subarray(0, 400));
    expect(f.send(0, 1, ACK, data.subarray(0, 400))).toBe(SegmentResult.DUPLICATE);
    expect(f.send(0, 1 + 100, ACK, data.subarray(100, 300))).toBe(SegmentResult.DUPLICATE);
    expect(f.send(0, 1 + 300, ACK, data.subarray(300, 700))).toBe(SegmentResult.OK);
    expect(bytesEq(sink.dirs[0].delivered(), data.subarray(0, 700))).toBe(true);
    expect(r.stats[0].retransmitted).toBe(2);
    expect(r.stats[0].overlapping).toBe(3);
    expect(sink.dirs[0].dataCalls).toBe(2);
  });

  it('first wins against buffered bytes: a conflicting in-order segment is reported, buffered bytes delivered', () => {
    const { sink, r, f } = setup(false);
    const data = streamBytes(400);
    f.send(0, 0, SYN);
    f.send(0, 1 + 100, ACK, data.subarray(100, 200)); // buffered first
    const evil = data.slice(0, 300);
    evil[150] ^= 1;
    evil[151] ^= 1;
    evil[180] ^= 1;
    evil[250] ^= 1; // beyond the buffered piece: not a conflict, these bytes are new
    f.send(0, 1, ACK, evil);
    const want = data.slice(0, 300);
    want[250] ^= 1;
    expect(bytesEq(sink.dirs[0].delivered(), want)).toBe(true);
    expect(sink.dirs[0].conflicts).toEqual([
      { offset: 150, len: 2 },
      { offset: 180, len: 1 },
    ]);
    expect(r.stats[0].conflictBytes).toBe(3);
  });

  it('a segment spanning several buffered pieces fills only the holes between them', () => {
    const { pool, budget, sink, r, f } = setup(true);
    const data = streamBytes(1000);
    f.send(0, 0, SYN);
    for (const o of [100, 300, 500, 700]) f.send(0, 1 + o, ACK, data.subarray(o, o + 100));
    expect(r.stats[0].bufferedSegments).toBe(4);
    f.send(0, 1 + 150, ACK, data.subarray(150, 900)); // holes 200-300, 400-500, 600-700, 800-900
    expect(r.stats[0].bufferedSegments).toBe(8);
    expect(r.stats[0].bufferedBytes).toBe(800); // 4 × 100 held + 4 holes × 100
    f.send(0, 1, ACK, data.subarray(0, 100));
    expect(bytesEq(sink.dirs[0].delivered(), data.subarray(0, 900))).toBe(true);
    r.close();
    expect(pool.inUse).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('a snaplen-truncated segment: the missing tail becomes a truncated gap, then delivery goes on', () => {
    const { sink, r, f } = setup(false);
    const data = streamBytes(3000);
    f.send(0, 0, SYN);
    f.send(0, 1, ACK, data.subarray(0, 200), 0, 1460);
    expect(sink.dirs[0].gaps).toEqual([{ offset: 200, len: 1260, reason: 'truncated' }]);
    f.send(0, 1 + 1460, ACK, data.subarray(1460, 1660));
    expect(sink.dirs[0].next).toBe(1660);
    expect(r.stats[0].truncatedBytes).toBe(1260);
  });

  it('rejects views without TCP, counted', () => {
    const { r } = setup(true);
    const v = new PacketView();
    expect(r.segment(v, 1, NO_HANDLE, 0)).toBe(SegmentResult.NOT_TCP);
    expect(r.stats[1].notTcp).toBe(1);
  });

  it('zero-copy input that is not inside the handle slot is API misuse and throws', () => {
    const { pool, r, f } = setup(true);
    f.send(0, 0, SYN);
    const h = pool.acquireOrThrow(100);
    const v = f.v;
    v.reset();
    v.layers = LAYER_TCP | LAYER_PAYLOAD;
    v.tcpSeq = 1 + 50; // out of order: must be buffered
    v.tcpFlags = ACK;
    v.buf = new Uint8Array(100);
    v.payloadOff = 0;
    v.payloadLen = 10;
    v.payloadFullLen = 10;
    expect(() => r.segment(v, 0, h, 0)).toThrow(/not inside pool handle/);
    pool.release(h);
  });
});
