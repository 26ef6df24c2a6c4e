/**
 * Property tests: the oracle is the original byte stream the segments were cut from (and,
 * for conflicts, "the first segment to arrive that covers an offset owns that byte").
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReassemblyBudget } from '../../src/flow/tcp-budget.js';
import { TcpReassembler } from '../../src/flow/tcp-reassembler.js';
import type { ReassemblyLimits } from '../../src/flow/tcp-types.js';
import { ACK, FIN, Feeder, RecordingSink, SYN, seqPlus, testPool } from './tcp-harness.js';

/** ISNs: anywhere, and often just below 2^32 so streams cross the wrap. */
const isnArb = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0xffffffff - 3000, max: 0xffffffff }));

interface Seg {
  off: number;
  len: number;
  /** Replacement bytes (conflict tests), else the stream's own. */
  bytes?: Uint8Array;
}

/** Cut [0, n) at the given points into consecutive segments. */
function cut(n: number, points: number[]): Seg[] {
  const cuts = [...new Set(points.map((p) => p % (n + 1)))].filter((p) => p > 0 && p < n).sort((a, b) => a - b);
  const segs: Seg[] = [];
  let prev = 0;
  for (const c of [...cuts, n]) {
    segs.push({ off: prev, len: c - prev });
    prev = c;
  }
  return n === 0 ? [] : segs;
}

function shuffle<T>(a: T[], keys: number[]): T[] {
  const out = a.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = (keys[i % keys.length]! >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function payloadOf(stream: Uint8Array, s: Seg): Uint8Array {
  return s.bytes ?? stream.subarray(s.off, s.off + s.len);
}

const streamArb = fc.uint8Array({ minLength: 1, maxLength: 2500 });

describe('TCP reassembly properties', () => {
  it('shuffled, duplicated, overlapping (same bytes) segments reassemble to the original stream', () => {
    fc.assert(
      fc.property(
        streamArb,
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.array(fc.record({ a: fc.nat(), b: fc.nat() }), { maxLength: 12 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 64 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        isnArb,
        fc.boolean(),
        fc.boolean(),
        (stream, points, overlaps, shuffleKeys, dupIdx, isn, pooled, withFin) => {
          const n = stream.length;
          const segs = cut(n, points);
          for (const i of dupIdx) segs.push({ ...segs[i % segs.length]! });
          for (const { a, b } of overlaps) {
            const s = a % n;
            const e = s + 1 + (b % (n - s));
            segs.push({ off: s, len: e - s });
          }
          const order = shuffle(segs, shuffleKeys);
          const pool = testPool();
          const budget = new ReassemblyBudget(1 << 30);
          const sink = new RecordingSink();
          const r = new TcpReassembler(pool, sink, {}, budget);
          const f = new Feeder(pool, r, pooled);
          f.send(0, isn, SYN);
          f.send(1, 12345, SYN | ACK);
          const finPos = withFin ? shuffleKeys[0]! % (order.length + 1) : -1;
          order.forEach((s, i) => {
            if (i === finPos) f.send(0, seqPlus(isn, 1 + n), FIN | ACK);
            f.send(0, seqPlus(isn, 1 + s.off), ACK, payloadOf(stream, s));
          });
          if (finPos === order.length) f.send(0, seqPlus(isn, 1 + n), FIN | ACK);
          const d = sink.dirs[0];
          expect(d.errors).toEqual([]);
          // Everything was delivered before close: no gaps, no conflicts.
          expect(d.next).toBe(n);
          expect(Buffer.from(d.delivered()).equals(Buffer.from(stream))).toBe(true);
          if (withFin) expect(d.end).toBe('fin');
          else expect(d.end).toBeNull();
          expect(r.stats[0].bufferedBytes).toBe(0);
          r.close('closed');
          expect(d.gaps).toEqual([]);
          expect(d.conflicts).toEqual([]);
          expect(d.end).toBe(withFin ? 'fin' : 'closed');
          expect(d.endCalls).toBe(1);
          expect(sink.dirs[1].end).toBe('closed');
          expect(r.stats[0].deliveredBytes).toBe(n);
          expect(pool.inUse).toBe(0);
          expect(budget.used).toBe(0);
          if (pooled) expect(r.stats[0].copiedBytes).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a different-bytes overlap is reported where the bytes differ, and the first arrival wins', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 1500 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.nat(),
        fc.nat(),
        fc.array(fc.nat(), { minLength: 1, maxLength: 32 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 64 }),
        fc.nat(),
        isnArb,
        fc.boolean(),
        (stream, points, a, b, shuffleKeys, flips, badPos, isn, pooled) => {
          const n = stream.length;
          const segs = cut(n, points);
          // The bad segment: [s, e) with s ≥ 1, some bytes flipped (at least one).
          const s = 1 + (a % (n - 1));
          const e = s + 1 + (b % (n - s));
          const bad = stream.slice(s, e);
          let flipped = 0;
          for (let i = 0; i < bad.length; i++) {
            if (flips[i % flips.length]) {
              bad[i] = bad[i]! ^ 0x5a;
              flipped++;
            }
          }
          if (flipped === 0) bad[0] = bad[0]! ^ 0xff;
          // Hold every segment starting at 0 back to the very end, so nothing past offset 0 is
          // delivered before all other segments are buffered (every overlap is then compared).
          const head = segs.filter((x) => x.off === 0);
          const rest = shuffle(
            segs.filter((x) => x.off !== 0),
            shuffleKeys,
          );
          const order: Seg[] = [...rest];
          order.splice(badPos % (rest.length + 1), 0, { off: s, len: e - s, bytes: bad });
          order.push(...head);

          // Oracle: the first arrival covering an offset owns that byte.
          const owner = new Int32Array(n).fill(-1);
          order.forEach((x, i) => {
            for (let k = x.off; k < x.off + x.len; k++) if (owner[k] === -1) owner[k] = i;
          });
          const expected = new Uint8Array(n);
          for (let k = 0; k < n; k++) {
            const x = order[owner[k]!]!;
            expected[k] = payloadOf(stream, x)[k - x.off]!;
          }
          // Offsets where the bad copy differs and another segment also covers them.
          const expectConflict = new Set<number>();
          for (let k = s; k < e; k++) if (bad[k - s] !== stream[k]) expectConflict.add(k);

          const pool = testPool();
          const budget = new ReassemblyBudget(1 << 30);
          const sink = new RecordingSink();
          const r = new TcpReassembler(pool, sink, {}, budget);
          const f = new Feeder(pool, r, pooled);
          f.send(0, isn, SYN);
          for (const x of order) f.send(0, seqPlus(isn, 1 + x.off), ACK, payloadOf(stream, x));
          r.close('closed');
          const d = sink.dirs[0];
          expect(d.errors).toEqual([]);
          expect(d.gaps).toEqual([]);
          expect(Buffer.from(d.delivered()).equals(Buffer.from(expected))).toBe(true);
          const got = new Set<number>();
          for (const c of d.conflicts) for (let k = c.offset; k < c.offset + c.len; k++) got.add(k);
          expect([...got].sort((x, y) => x - y)).toEqual([...expectConflict].sort((x, y) => x - y));
          expect(r.stats[0].overlapConflicts).toBe(d.conflicts.length);
          expect(pool.inUse).toBe(0);
          expect(budget.used).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('dropping one segment yields exactly one gap of its offset/length at close, the rest delivered', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 2, maxLength: 2500 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 30 }),
        fc.nat(),
        fc.array(fc.nat(), { minLength: 1, maxLength: 64 }),
        isnArb,
        fc.boolean(),
        fc.constantFrom('closed', 'timeout', 'evicted') as fc.Arbitrary<'closed' | 'timeout' | 'evicted'>,
        (stream, points, dropIdx, shuffleKeys, isn, pooled, how) => {
          const n = stream.length;
          const segs = cut(n, points);
          const dropped = segs[dropIdx % segs.length]!;
          const order = shuffle(
            segs.filter((x) => x !== dropped),
            shuffleKeys,
          );
          const pool = testPool();
          const budget = new ReassemblyBudget(1 << 30);
          const sink = new RecordingSink();
          const r = new TcpReassembler(pool, sink, {}, budget);
          const f = new Feeder(pool, r, pooled);
          f.send(0, isn, SYN);
          for (const x of order) f.send(0, seqPlus(isn, 1 + x.off), ACK, payloadOf(stream, x));
          // The FIN tells how long the stream is, so a dropped tail is a known hole too.
          f.send(0, seqPlus(isn, 1 + n), FIN | ACK);
          const d = sink.dirs[0];
          expect(d.end).toBeNull(); // the hole keeps the FIN pending
          r.close(how);
          expect(d.errors).toEqual([]);
          expect(d.gaps).toEqual([{ offset: dropped.off, len: dropped.len, reason: how }]);
          expect(d.end).toBe('fin');
          for (let k = 0; k < n; k++) {
            const inGap = k >= dropped.off && k < dropped.off + dropped.len;
            expect(d.covered[k]).toBe(inGap ? 'g' : 'd');
            if (!inGap && d.bytes[k] !== stream[k]) expect.fail(`byte ${k} differs`);
          }
          expect(r.stats[0].gaps).toBe(1);
          expect(r.stats[0].gapBytes).toBe(dropped.len);
          expect(pool.inUse).toBe(0);
          expect(budget.used).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('under any limits, data and gaps tile the stream in order and every delivered byte is right', () => {
    const limitsArb: fc.Arbitrary<Partial<ReassemblyLimits>> = fc.record({
      maxOooBytes: fc.integer({ min: 0, max: 3000 }),
      maxOooSegments: fc.integer({ min: 0, max: 12 }),
    });
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 2500 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.array(fc.record({ a: fc.nat(), b: fc.nat() }), { maxLength: 8 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 64 }),
        limitsArb,
        fc.integer({ min: 0, max: 30_000 }), // a piece costs ≥ 2 KiB + overhead (its slot)
        isnArb,
        fc.boolean(),
        (stream, points, overlaps, shuffleKeys, limits, budgetBytes, isn, pooled) => {
          const n = stream.length;
          const segs = cut(n, points);
          for (const { a, b } of overlaps) {
            const s = a % n;
            segs.push({ off: s, len: 1 + (b % (n - s)) });
          }
          const order = shuffle(segs, shuffleKeys);
          const pool = testPool();
          const budget = new ReassemblyBudget(budgetBytes);
          const sink = new RecordingSink();
          const r = new TcpReassembler(pool, sink, limits, budget);
          const f = new Feeder(pool, r, pooled);
          f.send(0, isn, SYN);
          for (const x of order) {
            f.send(0, seqPlus(isn, 1 + x.off), ACK, payloadOf(stream, x));
            expect(r.stats[0].bufferedBytes).toBeLessThanOrEqual(limits.maxOooBytes!);
            expect(r.stats[0].bufferedSegments).toBeLessThanOrEqual(limits.maxOooSegments!);
            expect(budget.used).toBeLessThanOrEqual(budgetBytes);
          }
          f.send(0, seqPlus(isn, 1 + n), FIN | ACK);
          r.close('closed');
          const d = sink.dirs[0];
          expect(d.errors).toEqual([]);
          expect(d.next).toBe(n);
          expect(d.end).toBe('fin');
          let gapBytes = 0;
          for (const g of d.gaps) {
            gapBytes += g.len;
            expect(['byte-cap', 'segment-cap', 'memcap', 'closed']).toContain(g.reason);
          }
          for (let k = 0; k < n; k++) if (d.covered[k] === 'd' && d.bytes[k] !== stream[k]) expect.fail(`byte ${k} differs`);
          expect(r.stats[0].deliveredBytes + gapBytes).toBe(n);
          expect(d.conflicts).toEqual([]);
          expect(pool.inUse).toBe(0);
          expect(budget.used).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
