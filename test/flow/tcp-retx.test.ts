/**
 * Retransmissions of ALREADY-DELIVERED bytes: compared with the retransmission window,
 * differing runs reported, the rest counted as unverified; first wins. Oracles: the original
 * byte stream and the changes the test itself made to each retransmission (a model of the
 * documented window [delivered point − retxWindowBytes, delivered point)); memory figures are
 * derived from the stated charging policy (slot + RETX_ENTRY_OVERHEAD per zero-copy run).
 * Also: end reason 'eof', bounded `tick`, `deadlineMs`, and idle directions timed out by the
 * other direction's traffic.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PIECE_OVERHEAD_BYTES, ReassemblyBudget } from '../../src/flow/tcp-budget.js';
import { TcpReassembler } from '../../src/flow/tcp-reassembler.js';
import { RETX_ENTRY_OVERHEAD } from '../../src/flow/tcp-retx.js';
import { SegmentResult, type ReassemblyLimits } from '../../src/flow/tcp-types.js';
import { PacketPool } from '../../src/packet/pool.js';
import { ACK, FIN, Feeder, RecordingSink, SYN, seqPlus, streamBytes, testPool, type Conflict } from './tcp-harness.js';

const isnArb = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0xffffffff - 20_000, max: 0xffffffff }));

function setup(limits: Partial<ReassemblyLimits>, pooled: boolean, opts: { pool?: PacketPool; budget?: ReassemblyBudget; isn?: number } = {}) {
  const pool = opts.pool ?? testPool();
  const budget = opts.budget ?? new ReassemblyBudget(1 << 30);
  const sink = new RecordingSink();
  const r = new TcpReassembler(pool, sink, limits, budget);
  const f = new Feeder(pool, r, pooled);
  const isn = opts.isn ?? 0;
  f.send(0, isn, SYN);
  /** Send payload at stream offset `off` of direction 0. */
  const at = (off: number, payload: Uint8Array, nowMs = 0, flags = ACK) => f.send(0, seqPlus(isn, 1 + off), flags, payload, nowMs);
  return { pool, budget, sink, r, f, at };
}

/** A copy of stream[s, e) with every byte in [from, to) (stream offsets) changed. */
function changed(stream: Uint8Array, s: number, e: number, from = s, to = e): Uint8Array {
  const b = stream.slice(s, e);
  for (let k = from; k < to; k++) b[k - s] = b[k - s]! ^ 0xa5;
  return b;
}

/** Maximal runs of offsets in [lo, hi) where `payload` (at stream offset s) differs from `stream`. */
function diffRuns(stream: Uint8Array, payload: Uint8Array, s: number, lo: number, hi: number): Conflict[] {
  const runs: Conflict[] = [];
  for (let k = lo; k < hi; k++) {
    if (payload[k - s] === stream[k]) continue;
    const last = runs[runs.length - 1];
    if (last !== undefined && last.offset + last.len === k) last.len++;
    else runs.push({ offset: k, len: 1 });
  }
  return runs;
}

describe('retransmissions of delivered bytes (property, against a model of the window)', () => {
  it('every changed byte inside the window is reported as exact runs, older bytes are counted unverified, delivery is unchanged', () => {
    const opArb = fc.record({
      retx: fc.boolean(),
      a: fc.nat(),
      b: fc.nat(),
      flips: fc.array(fc.nat(), { maxLength: 6 }),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12_000 }),
        fc.integer({ min: 1, max: 0xffff }),
        fc.constantFrom(1, 700, 3000, 65_536),
        fc.array(opArb, { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        isnArb,
        (n, seed, win, ops, pooled, isn) => {
          const stream = streamBytes(n, seed);
          const { pool, budget, sink, r, at } = setup({ retxWindowBytes: win, retxArmAfter: 0 }, pooled, { isn });
          let D = 0; // the model's delivered point
          const want: Conflict[] = [];
          let retxSegments = 0;
          let retxBytes = 0;
          let verified = 0;
          for (const op of ops) {
            if (!op.retx || D === 0) {
              if (D === n) continue;
              const len = Math.min(1 + (op.a % 3000), n - D);
              at(D, stream.subarray(D, D + len));
              D += len;
            } else {
              // [s, e): starts below D, may run up to 500 new bytes past it (those are the
              // stream's own and get delivered); flips only change bytes below D.
              const s = op.a % D;
              const maxE = Math.min(n, D + 500);
              const e = s + 1 + (op.b % (maxE - s));
              const hi = Math.min(e, D);
              const payload = stream.slice(s, e);
              for (const x of op.flips) payload[(x % (hi - s))] ^= 1 + (x % 255);
              const lo = Math.max(s, D - win);
              want.push(...diffRuns(stream, payload, s, lo, hi));
              retxSegments++;
              retxBytes += hi - s;
              verified += Math.max(0, hi - lo);
              at(s, payload);
              D = Math.max(D, e);
            }
            // Bounded: the window plus at most one segment straddling its floor.
            expect(r.stats[0].retxHeldBytes).toBeLessThanOrEqual(win + 3000);
          }
          const d = sink.dirs[0];
          const st = r.stats[0];
          expect(d.errors).toEqual([]);
          expect(d.gaps).toEqual([]);
          expect(d.next).toBe(D);
          expect(Buffer.from(d.delivered()).equals(Buffer.from(stream.subarray(0, D)))).toBe(true); // first wins
          expect(d.conflicts).toEqual(want);
          expect(st.overlapConflicts).toBe(want.length);
          expect(st.retxSegments).toBe(retxSegments);
          expect(st.retxBytes).toBe(retxBytes);
          expect(st.retxVerifiedBytes).toBe(verified);
          expect(st.retxUnverifiedBytes).toBe(retxBytes - verified);
          expect(st.retxConflictBytes).toBe(want.reduce((x, c) => x + c.len, 0));
          expect(st.conflictBytes).toBe(st.retxConflictBytes);
          expect(st.retxShrinks).toBe(0); // no memory pressure here
          r.close('eof');
          expect(d.end).toBe('eof');
          expect(st.retxHeldBytes).toBe(0);
          expect(pool.inUse).toBe(0);
          expect(budget.used).toBe(0);
          expect(budget.retxUsed).toBe(0);
        },
      ),
      { numRuns: 250 },
    );
  });
});

describe('retransmissions under random budget pressure (property)', () => {
  it('the share is never exceeded, every reported run is a real change inside the window, delivery is unchanged, all memory returns', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20_000 }),
        fc.integer({ min: 0, max: 12_000 }),
        fc.array(fc.record({ retx: fc.boolean(), a: fc.nat(), b: fc.nat(), flip: fc.nat() }), { minLength: 1, maxLength: 50 }),
        fc.boolean(),
        (n, share, ops, pooled) => {
          const stream = streamBytes(n, n);
          const budget = new ReassemblyBudget(1 << 30, share);
          const { pool, sink, r, at } = setup({ retxArmAfter: 0, retxWindowBytes: 8192 }, pooled, { budget });
          let D = 0;
          const changedAt = new Set<number>();
          for (const op of ops) {
            if (!op.retx || D === 0) {
              if (D === n) continue;
              const len = Math.min(1 + (op.a % 2500), n - D);
              at(D, stream.subarray(D, D + len));
              D += len;
            } else {
              const s = op.a % D;
              const e = s + 1 + (op.b % (D - s));
              const payload = stream.slice(s, e);
              const k = s + (op.flip % (e - s));
              payload[k - s] ^= 0x81;
              const before = sink.dirs[0].conflicts.length;
              at(s, payload);
              for (const c of sink.dirs[0].conflicts.slice(before)) {
                expect(c).toEqual({ offset: k, len: 1 }); // the one byte changed, nothing else
                expect(k).toBeGreaterThanOrEqual(D - 8192);
              }
              changedAt.add(k);
            }
            expect(budget.retxUsed).toBeLessThanOrEqual(share);
          }
          const st = r.stats[0];
          expect(sink.dirs[0].errors).toEqual([]);
          expect(sink.dirs[0].gaps).toEqual([]);
          expect(Buffer.from(sink.dirs[0].delivered()).equals(Buffer.from(stream.subarray(0, D)))).toBe(true);
          expect(st.retxVerifiedBytes + st.retxUnverifiedBytes).toBe(st.retxBytes);
          if (share === 0) expect(st.retxVerifiedBytes).toBe(0);
          r.close();
          expect(pool.inUse).toBe(0);
          expect(budget.used).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('retransmission window policies', () => {
  const MSS = 1448;
  const stream = streamBytes(200_000, 77);
  const seg = (i: number) => stream.subarray(i * MSS, (i + 1) * MSS);

  for (const pooled of [true, false]) {
    it(`default arming (${pooled ? 'pooled' : 'unpooled'}): nothing is held until the first retransmission, which is unverified; later ones are compared`, () => {
      const { pool, budget, sink, r, at } = setup({}, pooled);
      for (let i = 0; i < 100; i++) at(i * MSS, seg(i));
      expect(pool.inUse).toBe(0);
      expect(budget.used).toBe(0);
      expect(r.stats[0].retxHeldBytes).toBe(0);
      // First retransmission, with different bytes: nothing to compare with (counted).
      expect(at(99 * MSS, changed(stream, 99 * MSS, 100 * MSS))).toBe(SegmentResult.DUPLICATE);
      expect(r.stats[0].retxUnverifiedBytes).toBe(MSS);
      expect(sink.dirs[0].conflicts).toEqual([]);
      // Armed now: new deliveries are kept, and a changed retransmission of them is reported.
      for (let i = 100; i < 110; i++) at(i * MSS, seg(i));
      at(108 * MSS + 10, changed(stream, 108 * MSS + 10, 109 * MSS + 20, 109 * MSS - 5, 109 * MSS + 7));
      expect(sink.dirs[0].conflicts).toEqual([{ offset: 109 * MSS - 5, len: 12 }]);
      expect(r.stats[0].retxVerifiedBytes).toBe(MSS + 10);
      expect(Buffer.from(sink.dirs[0].delivered()).equals(Buffer.from(stream.subarray(0, 110 * MSS)))).toBe(true);
      r.close();
      expect(pool.inUse).toBe(0);
      expect(budget.used).toBe(0);
    });
  }

  it('budget pressure (pooled, zero copy): the window keeps only what its share pays for — the newest runs — and delivery is untouched', () => {
    const run = 2048 + RETX_ENTRY_OVERHEAD; // one MSS segment in its own 2 KiB slot
    const budget = new ReassemblyBudget(1 << 30, 3 * run);
    const { pool, sink, r, at } = setup({ retxArmAfter: 0 }, true, { budget });
    for (let i = 0; i < 10; i++) {
      at(i * MSS, seg(i));
      expect(budget.retxUsed).toBeLessThanOrEqual(3 * run);
      expect(r.stats[0].retxHeldBytes).toBe(Math.min(i + 1, 3) * MSS);
    }
    expect(r.stats[0].retxShrinks).toBe(7); // segments 4..10 each pushed out the oldest
    expect(pool.inUse).toBe(3); // the window's three retained slots
    // Retransmit segments 5..9 with every byte changed: 7..9 are held (one merged run), 5..6 not.
    at(5 * MSS, changed(stream, 5 * MSS, 10 * MSS));
    expect(sink.dirs[0].conflicts).toEqual([{ offset: 7 * MSS, len: 3 * MSS }]);
    expect(r.stats[0].retxVerifiedBytes).toBe(3 * MSS);
    expect(r.stats[0].retxUnverifiedBytes).toBe(2 * MSS);
    expect(Buffer.from(sink.dirs[0].delivered()).equals(Buffer.from(stream.subarray(0, 10 * MSS)))).toBe(true);
    expect(sink.dirs[0].gaps).toEqual([]);
    r.close();
    expect(pool.inUse).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('budget pressure (unpooled, copies): the share is never exceeded, the newest bytes stay verifiable, the oldest do not', () => {
    const share = 2 * 2048 + 4 * RETX_ENTRY_OVERHEAD;
    const budget = new ReassemblyBudget(1 << 30, share);
    const { pool, sink, r, at } = setup({ retxArmAfter: 0 }, false, { budget });
    for (let i = 0; i < 20; i++) {
      at(i * 1000, stream.subarray(i * 1000, (i + 1) * 1000));
      expect(budget.retxUsed).toBeLessThanOrEqual(share);
    }
    expect(r.stats[0].retxShrinks).toBeGreaterThan(0);
    at(19_000, changed(stream, 19_000, 20_000)); // newest: held
    expect(sink.dirs[0].conflicts).toEqual([{ offset: 19_000, len: 1000 }]);
    at(0, changed(stream, 0, 1000)); // oldest: dropped long ago
    expect(sink.dirs[0].conflicts).toHaveLength(1);
    expect(r.stats[0].retxVerifiedBytes).toBe(1000);
    expect(r.stats[0].retxUnverifiedBytes).toBe(1000);
    expect(Buffer.from(sink.dirs[0].delivered()).equals(Buffer.from(stream.subarray(0, 20_000)))).toBe(true);
    r.close();
    expect(pool.inUse).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('out-of-order data beats the window: when the budget refuses a piece, the window is dropped instead of declaring a memcap gap', () => {
    const max = 4 * (2048 + PIECE_OVERHEAD_BYTES);
    const budget = new ReassemblyBudget(max, max);
    const { pool, sink, r, at } = setup({ retxArmAfter: 0 }, true, { budget });
    for (let i = 0; i < 10; i++) at(i * MSS, seg(i));
    expect(r.stats[0].retxHeldBytes).toBe(4 * MSS); // ⌊max / (2048 + 32)⌋ runs
    at(11 * MSS, seg(11)); // a hole at segment 10: the piece needs budget the window holds
    expect(r.stats[0].memcapHits).toBe(0);
    expect(r.stats[0].bufferedSegments).toBe(1);
    expect(r.stats[0].retxHeldBytes).toBe(0);
    at(10 * MSS, seg(10)); // fills the hole: both delivered, kept again
    expect(sink.dirs[0].gaps).toEqual([]);
    expect(Buffer.from(sink.dirs[0].delivered()).equals(Buffer.from(stream.subarray(0, 12 * MSS)))).toBe(true);
    expect(r.stats[0].retxHeldBytes).toBe(2 * MSS);
    r.close();
    expect(pool.inUse).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('pool exhaustion: the window gives its slots back (dropped, counted), delivery and out-of-order copying go on', () => {
    const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 3 }] });
    const { sink, r, at } = setup({ retxArmAfter: 0 }, false, { pool });
    for (let i = 0; i < 20; i++) at(i * 1000, stream.subarray(i * 1000, (i + 1) * 1000));
    expect(pool.stats().allocFailures).toBeGreaterThan(0);
    expect(r.stats[0].retxShrinks).toBeGreaterThan(0);
    expect(pool.inUse).toBeLessThanOrEqual(3);
    // An out-of-order segment must be copied into the pool: the window yields its slots.
    at(21_000, stream.subarray(21_000, 22_000));
    expect(r.stats[0].memcapHits).toBe(0);
    expect(r.stats[0].bufferedSegments).toBe(1);
    at(20_000, stream.subarray(20_000, 21_000));
    expect(sink.dirs[0].gaps).toEqual([]);
    expect(Buffer.from(sink.dirs[0].delivered()).equals(Buffer.from(stream.subarray(0, 22_000)))).toBe(true);
    r.close();
    expect(pool.inUse).toBe(0);
  });

  it('bytes inside a gap cannot be verified; the delivered bytes on both sides of it can', () => {
    for (const pooled of [true, false]) {
      const { pool, budget, sink, r, at } = setup({ retxArmAfter: 0, holeTimeoutMs: 1000 }, pooled);
      at(0, stream.subarray(0, 1000), 0);
      at(2000, stream.subarray(2000, 3000), 0);
      r.tick(1000);
      expect(sink.dirs[0].gaps).toEqual([{ offset: 1000, len: 1000, reason: 'hole-timeout' }]);
      at(500, changed(stream, 500, 2500), 1001);
      expect(sink.dirs[0].conflicts).toEqual([
        { offset: 500, len: 500 },
        { offset: 2000, len: 500 },
      ]);
      expect(r.stats[0].retxVerifiedBytes).toBe(1000);
      expect(r.stats[0].retxUnverifiedBytes).toBe(1000);
      r.close();
      expect(pool.inUse).toBe(0);
      expect(budget.used).toBe(0);
    }
  });

  it('a retransmission after the direction ended (FIN) is counted unverified; the window was freed at the end', () => {
    const { pool, budget, sink, r, at } = setup({ retxArmAfter: 0 }, true);
    at(0, stream.subarray(0, 1000));
    at(1000, new Uint8Array(0), 0, FIN | ACK);
    expect(sink.dirs[0].end).toBe('fin');
    expect(pool.inUse).toBe(0);
    expect(budget.used).toBe(0);
    expect(at(500, changed(stream, 500, 1000), 0, FIN | ACK)).toBe(SegmentResult.AFTER_END);
    expect(r.stats[0].retxSegments).toBe(1);
    expect(r.stats[0].retxUnverifiedBytes).toBe(500);
    expect(sink.dirs[0].conflicts).toEqual([]);
  });

  it('retxWindowBytes 0 disables the window: retransmissions are only counted', () => {
    const { pool, sink, r, at } = setup({ retxWindowBytes: 0, retxArmAfter: 0 }, true);
    at(0, stream.subarray(0, 1000));
    expect(pool.inUse).toBe(0);
    at(0, changed(stream, 0, 1000));
    expect(sink.dirs[0].conflicts).toEqual([]);
    expect(r.stats[0].retxUnverifiedBytes).toBe(1000);
  });

  it('bad window limits and budget shares are rejected with typed errors', () => {
    expect(() => new TcpReassembler(testPool(), new RecordingSink(), { retxWindowBytes: -1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => new TcpReassembler(testPool(), new RecordingSink(), { retxArmAfter: 1.5 })).toThrow(/retxArmAfter.*1\.5/);
    expect(() => new ReassemblyBudget(100, 101)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(new ReassemblyBudget(101).retxMaxBytes).toBe(50);
    expect(new ReassemblyBudget(Infinity).retxMaxBytes).toBe(Infinity);
  });
});

describe('end of input and hole timeouts of idle directions', () => {
  const data = streamBytes(10_000, 5);

  it("close('eof') ends open directions with 'eof' and reports remaining holes with reason 'eof'", () => {
    const { sink, r, f, at } = setup({}, true);
    f.send(1, 5000, SYN | ACK);
    at(0, data.subarray(0, 100));
    at(200, data.subarray(200, 300));
    r.close('eof');
    expect(sink.dirs[0].gaps).toEqual([{ offset: 100, len: 100, reason: 'eof' }]);
    expect(sink.dirs[0].end).toBe('eof');
    expect(sink.dirs[1].end).toBe('eof');
  });

  it('tick(now, maxHoles) resolves at most maxHoles holes per call; deadlineMs says when the next one is due', () => {
    const { sink, r, at } = setup({ holeTimeoutMs: 1000 }, true);
    expect(r.deadlineMs).toBe(Infinity);
    at(100, data.subarray(100, 110), 0);
    at(300, data.subarray(300, 310), 200);
    at(500, data.subarray(500, 510), 400);
    expect(r.deadlineMs).toBe(1000);
    expect(r.tick(999)).toBe(0);
    expect(r.tick(5000, 1)).toBe(1);
    expect(sink.dirs[0].gaps.map((g) => g.offset)).toEqual([0]);
    expect(r.deadlineMs).toBe(1200);
    expect(r.tick(5000, 1)).toBe(1);
    expect(r.deadlineMs).toBe(1400);
    expect(r.tick(5000)).toBe(1);
    expect(sink.dirs[0].gaps.map((g) => [g.offset, g.reason])).toEqual([
      [0, 'hole-timeout'],
      [110, 'hole-timeout'],
      [310, 'hole-timeout'],
    ]);
    expect(r.deadlineMs).toBe(Infinity);
    expect(r.tick(10_000)).toBe(0);
  });

  it('a FIN waiting behind a hole: due at FIN time + timeout, then the direction ends', () => {
    const { sink, r, at } = setup({ holeTimeoutMs: 1000 }, true);
    at(0, data.subarray(0, 10), 0);
    at(50, new Uint8Array(0), 100, FIN | ACK);
    expect(r.deadlineMs).toBe(1100);
    expect(r.tick(1099)).toBe(0);
    expect(r.tick(1100)).toBe(1);
    expect(sink.dirs[0].gaps).toEqual([{ offset: 10, len: 40, reason: 'hole-timeout' }]);
    expect(sink.dirs[0].end).toBe('fin');
    expect(r.deadlineMs).toBe(Infinity);
  });

  it("an idle direction's hole times out on the OTHER direction's segments too", () => {
    const { sink, r, f, at } = setup({ holeTimeoutMs: 1000 }, true);
    at(100, data.subarray(100, 110), 0);
    f.send(1, 7000, SYN | ACK, new Uint8Array(0), 500);
    expect(sink.dirs[0].gaps).toEqual([]);
    f.send(1, 7001, ACK, data.subarray(0, 10), 1000);
    expect(sink.dirs[0].gaps).toEqual([{ offset: 0, len: 100, reason: 'hole-timeout' }]);
    expect(sink.dirs[0].next).toBe(110);
    r.close();
    expect(r.deadlineMs).toBe(Infinity);
  });
});
