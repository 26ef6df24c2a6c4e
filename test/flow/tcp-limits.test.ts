/**
 * Limits and adversarial input: every cap has a policy (gap the lowest hole, deliver, free),
 * a counter and a bound that holds at every step. Expected gaps are derived by hand from the
 * stated policy; adversarial checks are timing-free (buffer/pool/tree-height bounds) with a
 * generous wall-clock sanity bound on top.
 */
import { describe, expect, it } from 'vitest';
import { ReassemblyBudget, PIECE_OVERHEAD_BYTES } from '../../src/flow/tcp-budget.js';
import { TcpReassembler } from '../../src/flow/tcp-reassembler.js';
import { resolveLimits, SegmentResult, type ReassemblyLimits } from '../../src/flow/tcp-types.js';
import { PacketPool } from '../../src/packet/pool.js';
import { ACK, Feeder, RecordingSink, SYN, streamBytes, testPool } from './tcp-harness.js';

function setup(limits: Partial<ReassemblyLimits> = {}, pooled = true, pool = testPool(), budget = new ReassemblyBudget(1 << 30)) {
  const sink = new RecordingSink();
  const r = new TcpReassembler(pool, sink, limits, budget);
  const f = new Feeder(pool, r, pooled);
  f.send(0, 0, SYN); // offset x is sequence number 1 + x
  return { pool, budget, sink, r, f };
}

const data = streamBytes(1 << 20, 99);
const piece = (o: number, n: number) => data.subarray(o, o + n);

describe('reassembly limits', () => {
  it('segment cap: the lowest hole becomes a segment-cap gap and the data after it is delivered', () => {
    for (const pooled of [true, false]) {
      const { pool, budget, sink, r, f } = setup({ maxOooSegments: 4 }, pooled);
      for (const o of [100, 200, 300, 400]) f.send(0, 1 + o, ACK, piece(o, 10));
      expect(sink.dirs[0].gaps).toEqual([]);
      f.send(0, 1 + 500, ACK, piece(500, 10));
      expect(sink.dirs[0].gaps).toEqual([{ offset: 0, len: 100, reason: 'segment-cap' }]);
      expect(sink.dirs[0].next).toBe(110);
      expect(r.stats[0].bufferedSegments).toBe(4);
      expect(r.stats[0].highWaterSegments).toBe(4);
      expect(r.stats[0].segmentCapHits).toBe(1);
      expect(Buffer.from(sink.dirs[0].delivered().subarray(100, 110)).equals(Buffer.from(piece(100, 10)))).toBe(true);
      r.close();
      expect(pool.inUse).toBe(0);
      expect(budget.used).toBe(0);
    }
  });

  it('byte cap: same policy, reason byte-cap', () => {
    const { sink, r, f } = setup({ maxOooBytes: 100 });
    f.send(0, 1 + 100, ACK, piece(100, 50));
    f.send(0, 1 + 200, ACK, piece(200, 50));
    f.send(0, 1 + 300, ACK, piece(300, 50));
    expect(sink.dirs[0].gaps).toEqual([{ offset: 0, len: 100, reason: 'byte-cap' }]);
    expect(sink.dirs[0].next).toBe(150);
    expect(r.stats[0].bufferedBytes).toBe(100);
    expect(r.stats[0].byteCapHits).toBe(1);
  });

  it('a new segment below every buffered piece: the gap stops at the new segment, which is delivered', () => {
    const { sink, r, f } = setup({ maxOooBytes: 100 });
    f.send(0, 1 + 500, ACK, piece(500, 100));
    f.send(0, 1 + 200, ACK, piece(200, 50));
    expect(sink.dirs[0].gaps).toEqual([{ offset: 0, len: 200, reason: 'byte-cap' }]);
    expect(sink.dirs[0].next).toBe(250);
    expect(r.stats[0].bufferedBytes).toBe(100);
  });

  it('a segment larger than the cap on its own ends up delivered after a gap', () => {
    const { sink, r, f } = setup({ maxOooBytes: 10, maxOooSegments: 0 });
    f.send(0, 1 + 40, ACK, piece(40, 60));
    expect(sink.dirs[0].gaps).toEqual([{ offset: 0, len: 40, reason: 'segment-cap' }]);
    expect(sink.dirs[0].next).toBe(100);
    expect(r.stats[0].highWaterBytes).toBe(0);
  });

  it('global budget shared by reassemblers: a refusal makes the asker gap and deliver (memcap)', () => {
    const pool = testPool();
    // Each piece pins one 2 KiB slot (the Feeder puts a segment in the smallest class).
    const budget = new ReassemblyBudget(2 * (2048 + PIECE_OVERHEAD_BYTES));
    const a = setup({}, true, pool, budget);
    const b = setup({}, true, pool, budget);
    a.f.send(0, 1 + 1000, ACK, piece(1000, 100));
    a.f.send(0, 1 + 2000, ACK, piece(2000, 100));
    expect(budget.used).toBe(budget.maxBytes);
    b.f.send(0, 1 + 300, ACK, piece(300, 100));
    expect(budget.refusals).toBe(1);
    expect(b.r.stats[0].memcapHits).toBe(1);
    expect(b.sink.dirs[0].gaps).toEqual([{ offset: 0, len: 300, reason: 'memcap' }]);
    expect(b.sink.dirs[0].next).toBe(400);
    expect(a.sink.dirs[0].gaps).toEqual([]); // the other connection keeps its data
    expect(budget.highWater).toBe(budget.maxBytes);
    a.r.close();
    b.r.close();
    expect(budget.used).toBe(0);
    expect(pool.inUse).toBe(0);
  });

  it('pool exhaustion when copying unpooled bytes: counted as memcap, gap, delivery goes on', () => {
    const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 2 }] });
    const { sink, r, f } = setup({}, false, pool);
    f.send(0, 1 + 100, ACK, piece(100, 10));
    f.send(0, 1 + 200, ACK, piece(200, 10));
    expect(pool.inUse).toBe(2);
    f.send(0, 1 + 300, ACK, piece(300, 10));
    expect(pool.stats().allocFailures).toBe(1);
    expect(r.stats[0].memcapHits).toBe(1);
    expect(sink.dirs[0].gaps).toEqual([{ offset: 0, len: 100, reason: 'memcap' }]);
    expect(sink.dirs[0].next).toBe(110);
    expect(r.stats[0].bufferedSegments).toBe(2);
    r.close();
    expect(pool.inUse).toBe(0);
  });

  it('far-ahead and far-behind sequence numbers are rejected, counted, never buffered', () => {
    const { pool, sink, r, f } = setup({ maxWindowBytes: 1 << 20 });
    f.send(0, 1, ACK, piece(0, 10));
    expect(f.send(0, 1 + 10 + (1 << 20), ACK, piece(0, 10))).toBe(SegmentResult.OK); // exactly at the edge
    expect(f.send(0, 1 + 10 + (1 << 20) + 1, ACK, piece(0, 10))).toBe(SegmentResult.OUT_OF_WINDOW);
    expect(f.send(0, (1 + 10 - (1 << 20) - 1) >>> 0, ACK, piece(0, 10))).toBe(SegmentResult.OUT_OF_WINDOW);
    expect(f.send(0, 0x80000000, ACK, piece(0, 10))).toBe(SegmentResult.OUT_OF_WINDOW);
    expect(r.stats[0].outOfWindow).toBe(3);
    expect(r.stats[0].bufferedSegments).toBe(1);
    expect(sink.dirs[0].next).toBe(10);
    r.close();
    expect(pool.inUse).toBe(0);
  });

  it('hole timeout: a hole older than holeTimeoutMs becomes a gap on the next segment or tick', () => {
    const { sink, r, f } = setup({ holeTimeoutMs: 1000 });
    f.send(0, 1 + 100, ACK, piece(100, 10), 0);
    f.send(0, 1 + 300, ACK, piece(300, 10), 500);
    f.send(0, 1 + 400, ACK, piece(400, 10), 999);
    expect(sink.dirs[0].gaps).toEqual([]);
    r.tick(1000); // the piece at 100 has waited 1000 ms; the one at 300 only 500
    expect(sink.dirs[0].gaps).toEqual([{ offset: 0, len: 100, reason: 'hole-timeout' }]);
    expect(sink.dirs[0].next).toBe(110);
    f.send(0, 1 + 500, ACK, piece(500, 10), 2000); // a segment also triggers the check
    expect(sink.dirs[0].gaps.map((g) => g.offset)).toEqual([0, 110, 310]);
    expect(r.stats[0].holeTimeouts).toBe(3);
  });

  it('bad limit values are rejected with a typed error naming the value', () => {
    expect(() => resolveLimits({ maxWindowBytes: 0x80000000 })).toThrow(/maxWindowBytes.*2147483648/);
    expect(() => resolveLimits({ maxOooBytes: -1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => new ReassemblyBudget(-5)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});

describe('adversarial input keeps memory bounded and work O(n log n)', () => {
  const logBound = (n: number) => 4 * Math.ceil(Math.log2(n + 1)) + 8;

  it('50 000 tiny out-of-order segments at random offsets: buffered pieces ≤ cap, tree height O(log n)', () => {
    const cap = 4096;
    const { pool, budget, r, f } = setup({ maxOooSegments: cap });
    let x = 12345;
    const t0 = performance.now();
    let maxHeight = 0;
    for (let i = 0; i < 50_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const o = 1 + (x % 1_000_000);
      f.send(0, 1 + o, ACK, piece(o, 1));
      expect(r.stats[0].bufferedSegments).toBeLessThanOrEqual(cap);
      // Plus the retransmission window (armed by the first offset below the delivered point):
      // its tiny runs (≤ retxMaxRuns of them) are packed into 2 KiB copy slots, so it pins at
      // most ⌈held / 2 KiB⌉ slots plus the one being filled.
      const held = r.stats[0].retxHeldBytes;
      expect(held).toBeLessThanOrEqual(65536);
      expect(pool.inUse).toBeLessThanOrEqual(cap + Math.ceil(held / 2048) + 1);
      if (i % 5000 === 4999) maxHeight = Math.max(maxHeight, r.half(0).treeHeight());
    }
    expect(maxHeight).toBeLessThanOrEqual(logBound(cap));
    expect(r.stats[0].segmentCapHits).toBeGreaterThan(0);
    expect(performance.now() - t0).toBeLessThan(20_000);
    r.close();
    expect(pool.inUse).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('ascending and descending arrival orders (worst cases for a plain BST) stay balanced', () => {
    for (const dir of [1, -1]) {
      const { r, f } = setup({ maxOooSegments: 8192 }, true, testPool(9000));
      const n = 8000;
      for (let i = 0; i < n; i++) {
        const k = dir > 0 ? i : n - 1 - i;
        f.send(0, 1 + 10 + 2 * k, ACK, piece(10 + 2 * k, 1));
      }
      expect(r.stats[0].bufferedSegments).toBe(n);
      expect(r.half(0).treeHeight()).toBeLessThanOrEqual(logBound(n));
      r.close();
    }
  });

  it('endless overlaps of the same range: buffered bytes and pool slots do not grow', () => {
    const { pool, budget, sink, r, f } = setup();
    f.send(0, 1 + 1000, ACK, piece(1000, 1000));
    const evil = piece(1000, 1000).slice();
    evil[500] ^= 0xff;
    for (let i = 0; i < 20_000; i++) {
      const shift = i % 7;
      if (i % 2 === 0) f.send(0, 1 + 1000 + shift, ACK, piece(1000 + shift, 900));
      else f.send(0, 1 + 1000, ACK, evil);
      expect(r.stats[0].bufferedBytes).toBe(1000);
      expect(pool.inUse).toBe(1);
    }
    expect(r.stats[0].retransmitted).toBe(20_000);
    expect(sink.dirs[0].conflicts).toHaveLength(10_000);
    expect(sink.dirs[0].conflicts[0]).toEqual({ offset: 1500, len: 1 });
    r.close();
    expect(pool.inUse).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('a big segment repeatedly covering 2000 tiny pieces: work per segment is linear in its length', () => {
    const { pool, r, f } = setup();
    for (let o = 1000; o < 5000; o += 2) f.send(0, 1 + o, ACK, piece(o, 1));
    expect(r.stats[0].bufferedSegments).toBe(2000);
    f.send(0, 1 + 1000, ACK, piece(1000, 4000)); // fills the 2000 one-byte holes
    expect(r.stats[0].bufferedSegments).toBe(4000);
    const t0 = performance.now();
    for (let i = 0; i < 300; i++) f.send(0, 1 + 1000, ACK, piece(1000, 4000));
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(r.stats[0].bufferedSegments).toBe(4000);
    expect(r.stats[0].bufferedBytes).toBe(4000);
    expect(pool.inUse).toBe(2001);
    r.close();
    expect(pool.inUse).toBe(0);
  });

  it('a flood of far-ahead sequence numbers buffers nothing', () => {
    const { pool, r, f } = setup();
    let x = 7;
    for (let i = 0; i < 100_000; i++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      const seq = (1 + (1 << 30) + 1 + (x % 0x3fff0000)) >>> 0; // beyond 1 GiB ahead, below 2^31
      f.send(0, seq, ACK, piece(0, 100));
    }
    expect(r.stats[0].outOfWindow).toBe(100_000);
    expect(r.stats[0].bufferedBytes).toBe(0);
    expect(pool.inUse).toBe(0);
  });
});
