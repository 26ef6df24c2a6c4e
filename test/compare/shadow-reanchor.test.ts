/**
 * Shadow mode: after a divergence the engine re-anchors each TCP direction where the bytes that
 * follow line up again (src/compare/resync.ts), so ONE edit of a stream costs ONE checkpoint
 * whatever the two sides' segmentation. Oracle: the construction — the secondary's stream is
 * the primary's with one known edit (substitute / insert / delete a run), so the first
 * differing offset and the number of edits are known; every primary frame must leave exactly
 * once with its bytes (Harness.finish) and nothing may stay held once both sides are done.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Resync, RESYNC_PROOF, RESYNC_WINDOW, RS_BROKEN, RS_END, RS_FORCED, RS_NO_MATCH, RS_PROOF, RS_TAIL, RS_WAIT } from '../../src/compare/resync.js';
import { streamBytes, type Host } from './frames.js';
import { Harness } from './harness.js';
import { Sender } from './sender.js';

const G: Host = { ip: '10.0.0.2', port: 80 };
const C: Host = { ip: '10.0.0.1', port: 40000 };

type Edit = { kind: 'sub' | 'ins' | 'del'; at: number; n: number; fill?: number };

/** The secondary's stream: `base` with the edits applied (offsets in `base`, ascending). */
function edited(base: Uint8Array, edits: Edit[]): Uint8Array {
  const out: number[] = [];
  let i = 0;
  for (const e of edits) {
    while (i < e.at) out.push(base[i++]!);
    if (e.kind === 'sub') {
      for (let k = 0; k < e.n && i < base.length; k++) out.push(base[i++]! ^ (e.fill ?? 0x5a));
    } else if (e.kind === 'ins') {
      for (let k = 0; k < e.n; k++) out.push((0xa5 + k * 7 + (e.fill ?? 0)) & 0xff);
    } else {
      i = Math.min(base.length, i + e.n);
    }
  }
  while (i < base.length) out.push(base[i++]!);
  return Uint8Array.from(out);
}

/** First offset where the two streams differ (or the shorter one's length). */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/** Data frames of `stream` cut into the given segment sizes (cycled), FIN on the last. */
function cut(s: Sender, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const n = s.stream.length;
  for (let off = 0, k = 0; off < n; k++) {
    const len = Math.min(n - off, Math.max(1, sizes[k % sizes.length]!));
    out.push(s.data(off, len, { ipId: k }, off + len === n));
    off += len;
  }
  if (n === 0) out.push(s.fin(0));
  return out;
}

/** The primary's (`pStream`) and secondary's (`sStream`) senders of the test connection, SYN-ACKs fed. */
function openPair(h: Harness, pStream: Uint8Array, sStream: Uint8Array): { P: Sender; S: Sender } {
  const P = new Sender(G, C, 1000, 1001, pStream);
  const S = new Sender(G, C, 77_777, 1001, sStream);
  h.open(P, S);
  return { P, S };
}

/** `n` bytes of a random `period`-byte pattern repeated (like a generated HTTP body). */
function patterned(n: number, period: number, seed: number): Uint8Array {
  const pat = streamBytes(period, seed);
  return Uint8Array.from({ length: n }, (_, i) => pat[i % period]!);
}

/**
 * One random edit of `base` (a property's draw: `where` in [0, 1]): the secondary's stream,
 * the first differing offset and the cause a checkpoint there must name.
 */
function randomEdit(base: Uint8Array, kind: Edit['kind'], where: number, len: number, fill: number): { s: Uint8Array; d: number; cause: 'payload' | 'length' } {
  const n = base.length;
  const at = Math.min(n - (kind === 'ins' ? 0 : 1), Math.floor(where * n));
  const s = edited(base, [{ kind, at: Math.max(0, at), n: len, fill }]);
  const d = firstDiff(base, s);
  return { s, d, cause: d >= Math.min(base.length, s.length) ? 'length' : 'payload' };
}

interface RunResult {
  h: Harness;
  /** Primary frames not released once both sides were fed. */
  heldAfter: number;
}

/**
 * One passively opened connection in shadow mode: primary sends `pStream` cut in `pSizes`,
 * secondary `sStream` cut in `sSizes`, merged by `picks` (true = primary next, cycled).
 */
function run(pStream: Uint8Array, sStream: Uint8Array, pSizes: number[], sSizes: number[], picks: boolean[] = [true, false]): RunResult {
  // Budgets are tested elsewhere (one-byte segments would pass the frame budget); here only comparison decides.
  const h = new Harness({ shadow: true, limits: { maxFlowHeldPackets: 1 << 20, maxHeldPackets: 1 << 20 } });
  const { P, S } = openPair(h, pStream, sStream);
  const pf = cut(P, pSizes);
  const sf = cut(S, sSizes);
  let i = 0;
  let j = 0;
  for (let k = 0; i < pf.length || j < sf.length; k++) {
    const wantP = picks[k % picks.length]!;
    if ((wantP && i < pf.length) || j >= sf.length) h.p(pf[i++]!);
    else h.s(sf[j++]!);
  }
  return { h, heldAfter: h.engine.held.frames };
}

function expectOne(r: RunResult, offset: number, cause: 'payload' | 'length'): void {
  expect(r.h.records.map((x) => [x.cause, x.offset])).toEqual([[cause, offset]]);
  expect(r.h.port.requests.length).toBe(1);
  expect(r.heldAfter).toBe(0);
  r.h.finish();
}

const SEGS: Array<[string, number[], number[]]> = [
  ['1448 vs 1000', [1448], [1000]],
  ['1000 vs 1448', [1000], [1448]],
  ['536 vs 1460', [536], [1460]],
  ['uneven 700,1448,90 vs 333,1200', [700, 1448, 90], [333, 1200]],
  ['1 vs 1448 (one-byte segments)', [1], [1448]],
];
/** Without the one-byte segmentation (9000 frames a run): for the loops over many edits. */
const SEGS_FAST = SEGS.filter(([, ps]) => ps[0] !== 1);
const PICKS: Array<[string, boolean[]]> = [
  ['alternating', [true, false]],
  ['primary runs ahead', [true, true, true, false]],
  ['secondary runs ahead', [false, false, false, true]],
];

describe('shadow re-anchor: one edit, one checkpoint', () => {
  const base = streamBytes(9000, 77);

  for (const [sname, ps, ss] of SEGS) {
    for (const [pname, picks] of PICKS) {
      it(`payload change of 1 and of 40 bytes, segmentation ${sname}, ${pname}`, () => {
        for (const n of [1, 40]) {
          const s = edited(base, [{ kind: 'sub', at: 3001, n }]);
          expectOne(run(base, s, ps, ss, picks), 3001, 'payload');
        }
      });
    }
  }

  for (const n of [1, 3, 31, 32, 33, 200, 1500, 3000]) {
    it(`secondary has ${n} extra byte(s) inserted mid-stream (several segmentations)`, () => {
      const s = edited(base, [{ kind: 'ins', at: 4000, n }]);
      for (const [, ps, ss] of SEGS_FAST) {
        for (const [, picks] of PICKS) {
          const r = run(base, s, ps, ss, picks);
          expectOne(r, firstDiff(base, s), 'payload');
        }
      }
    });

    it(`secondary misses ${n} byte(s) mid-stream (several segmentations)`, () => {
      const s = edited(base, [{ kind: 'del', at: 4000, n }]);
      for (const [, ps, ss] of SEGS_FAST) {
        for (const [, picks] of PICKS) {
          const r = run(base, s, ps, ss, picks);
          expectOne(r, firstDiff(base, s), 'payload');
        }
      }
    });
  }

  it('extra or missing bytes at the very end: one length divergence, FINs released', () => {
    for (const e of [{ kind: 'ins', at: 9000, n: 50 }, { kind: 'del', at: 8950, n: 50 }] as Edit[]) {
      const s = edited(base, [e]);
      for (const [, ps, ss] of SEGS) {
        const r = run(base, s, ps, ss);
        const st = r.h.engine.statsSnapshot();
        expectOne(r, Math.min(base.length, s.length), 'length');
        expect(st.reanchorBy.end).toBe(1);
      }
    }
  });

  it('an edit in the last bytes (tail shorter than the proof): decided at both FINs', () => {
    const s = edited(base, [{ kind: 'sub', at: 8990, n: 3 }]);
    for (const [, ps, ss] of SEGS) {
      const r = run(base, s, ps, ss);
      const st = r.h.engine.statsSnapshot();
      expectOne(r, 8990, 'payload');
      expect(st.reanchorBy.end + st.reanchorBy.tail).toBe(1);
    }
  });

  it('a changed run replaced by one of another length (time=1234 → time=98765) mid-stream', () => {
    const a = Buffer.from('HTTP/1.0 200 OK\r\n\r\ntime=1234 and then a long enough common continuation of the body, more than a proof');
    const b = Buffer.from('HTTP/1.0 200 OK\r\n\r\ntime=98765 and then a long enough common continuation of the body, more than a proof');
    for (const [, ps, ss] of [['', [7], [5]], ['', [100], [3]], ['', [1], [1]]] as Array<[string, number[], number[]]>) {
      const r = run(Uint8Array.from(a), Uint8Array.from(b), ps, ss);
      expect(r.h.engine.statsSnapshot().reanchorBy.shift).toBe(1);
      expectOne(r, 24, 'payload');
    }
  });

  it('two changes far apart: exactly two checkpoints, at their offsets', () => {
    const s = edited(base, [
      { kind: 'sub', at: 1000, n: 2 },
      { kind: 'ins', at: 6000, n: 10 },
    ]);
    for (const [, ps, ss] of SEGS_FAST) {
      for (const [, picks] of PICKS) {
        const r = run(base, s, ps, ss, picks);
        expect(r.h.records.map((x) => [x.cause, x.offset])).toEqual([
          ['payload', 1000],
          ['payload', 6000],
        ]);
        expect(r.heldAfter).toBe(0);
        r.h.finish();
      }
    }
  });

  it('a secondary that differs entirely (more than the window): re-anchored at its own ends, accounting intact', () => {
    const other = streamBytes(9000, 999);
    const r = run(base, other, [1448], [1000]);
    expect(r.h.records.length).toBeGreaterThanOrEqual(1);
    expect(r.h.records[0]!.offset).toBe(0);
    expect(r.h.engine.statsSnapshot().reanchorBy.ownEnds).toBeGreaterThanOrEqual(1);
    r.h.finish();
  });
});

/** `n` bytes of the generated-body pattern (a–z repeated, as the demo HTTP server sends). */
function alphabet(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => 0x61 + (i % 26));
}

describe('shadow re-anchor: repetitive data longer than the search window', () => {
  // The primary's response is out long before the secondary's (a whole 60 KB body against
  // the secondary's first 1024-byte segments, as in the demo-http workload): the ends are far
  // apart when both sides have filled the search window, and lining them up would pick a
  // shift tens of KB away.
  const body = alphabet(60_000);
  const edits: Array<[string, Edit]> = [
    ['16 bytes inserted', { kind: 'ins', at: 10_000, n: 16 }],
    ['42 bytes inserted (more than the period)', { kind: 'ins', at: 10_000, n: 42 }],
    ['10 bytes missing', { kind: 'del', at: 10_000, n: 10 }],
    ['50 bytes missing (more than the period)', { kind: 'del', at: 10_000, n: 50 }],
    ['3 bytes changed', { kind: 'sub', at: 10_000, n: 3 }],
  ];
  const orders: Array<[string, (pf: Uint8Array[], sf: Uint8Array[]) => Array<[boolean, Uint8Array]>]> = [
    ['primary all first', (pf, sf) => [...pf.map((f) => [true, f] as [boolean, Uint8Array]), ...sf.map((f) => [false, f] as [boolean, Uint8Array])]],
    ['secondary all first', (pf, sf) => [...sf.map((f) => [false, f] as [boolean, Uint8Array]), ...pf.map((f) => [true, f] as [boolean, Uint8Array])]],
    [
      'primary one segment ahead of ten',
      (pf, sf) => {
        const out: Array<[boolean, Uint8Array]> = [];
        for (let i = 0, j = 0; i < pf.length || j < sf.length; ) {
          if (i < pf.length) out.push([true, pf[i++]!]);
          for (let k = 0; k < 10 && j < sf.length; k++) out.push([false, sf[j++]!]);
        }
        return out;
      },
    ],
  ];
  for (const [ename, e] of edits) {
    for (const [oname, order] of orders) {
      it(`${ename}, ${oname}: one checkpoint at the edit`, () => {
        const s = edited(body, [e]);
        const h = new Harness({ shadow: true });
        const { P, S } = openPair(h, body, s);
        for (const [isP, f] of order(cut(P, [1448]), cut(S, [1024]))) {
          if (isP) h.p(f);
          else h.s(f);
        }
        expectOne({ h, heldAfter: h.engine.held.frames }, firstDiff(body, s), 'payload');
      });
    }
  }

  it('property: a random pattern of 1–64 bytes, 5–30 KB, one random edit, the primary far ahead: one checkpoint', () => {
    const segArb = fc.array(fc.integer({ min: 200, max: 1460 }), { minLength: 1, maxLength: 3 });
    fc.assert(
      fc.property(
        fc.integer({ min: 5000, max: 30_000 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.constantFrom('sub' as const, 'ins' as const, 'del' as const),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 255 }),
        segArb,
        fc.integer({ min: 2, max: 40 }),
        (n, period, seed, kind, where, len, fill, ss, lead) => {
          const base = patterned(n, period, seed);
          const { s, d, cause } = randomEdit(base, kind, where, len, fill);
          fc.pre(!(d === base.length && d === s.length));
          // The primary sends `lead` segments for each of the secondary's.
          const picks = [...(new Array(lead).fill(true) as boolean[]), false];
          expectOne(run(base, s, [1448], ss, picks), d, cause);
        },
      ),
      { numRuns: 60, seed: 27112026 },
    );
  });
});

describe('shadow re-anchor: timing', () => {
  it('a checkpoint completing later decides from everything kept meanwhile; changed frames wait for it', () => {
    const base = streamBytes(6000, 5);
    const s = edited(base, [{ kind: 'ins', at: 2500, n: 7 }]);
    const h = new Harness({ shadow: true, autoComplete: false });
    const { P, S } = openPair(h, base, s);
    const pf = cut(P, [1000]);
    const sf = cut(S, [1448]);
    const idx = pf.map((f) => h.p(f));
    for (const f of sf) h.s(f);
    expect(h.records.map((x) => [x.cause, x.offset])).toEqual([['payload', 2500]]);
    // Frames from the one carrying offset 2500 on are held until the checkpoint completes.
    expect(idx.slice(0, 2).every((i) => h.isReleased(i))).toBe(true);
    expect(idx.slice(2).some((i) => h.isReleased(i))).toBe(false);
    h.engine.onCheckpointCompleted();
    expect(h.engine.held.frames).toBe(0);
    // The alignment found (7 bytes shifted) holds for what follows: the FINs matched.
    expect(h.engine.statsSnapshot().reanchorBy).toMatchObject({ shift: 1, ownEnds: 0 });
    expect(h.records.length).toBe(1);
    h.finish();
  });

  it('short different answers and nothing else: the held reply waits, then compare_timeout decides without a second checkpoint', () => {
    const h = new Harness({ shadow: true });
    const A_P = new Sender(G, C, 500, 501, new Uint8Array(0));
    const A_S = new Sender(G, C, 90_000, 501, new Uint8Array(0));
    h.p(A_P.syn(), 0);
    h.s(A_S.syn(), 0);
    h.engine.tick(0);
    const r1p = Uint8Array.from(Buffer.from('time=1234'));
    const r1s = Uint8Array.from(Buffer.from('time=98765'));
    const ok = Uint8Array.from(Buffer.from('ok'));
    h.p(A_P.data(0, r1p.length, {}, false, r1p), 10);
    h.s(A_S.data(0, r1s.length, {}, false, r1s), 10);
    expect(h.records.length).toBe(1);
    const a2 = h.p(A_P.data(r1p.length, 2, {}, false, ok), 20);
    h.s(A_S.data(r1s.length, 2, {}, false, ok), 20);
    // Two equal bytes prove nothing yet: the reply waits.
    expect(h.isReleased(a2)).toBe(false);
    h.engine.tick(2000);
    expect(h.isReleased(a2)).toBe(false);
    h.engine.tick(3020);
    expect(h.isReleased(a2)).toBe(true);
    expect(h.records.length).toBe(1);
    expect(h.engine.statsSnapshot().reanchorBy.forced).toBe(1);
    // The forced alignment (ends) holds: the next reply compares cleanly.
    const a3 = h.p(A_P.data(r1p.length + 2, 2, {}, false, ok), 3100);
    h.s(A_S.data(r1s.length + 2, 2, {}, false, ok), 3100);
    expect(h.isReleased(a3)).toBe(true);
    h.finish();
  });

  it('real-checkpoint mode keeps no bytes: the connection restarts from the primary', () => {
    const base = streamBytes(4000, 8);
    const s = edited(base, [{ kind: 'ins', at: 1000, n: 5 }]);
    const h = new Harness({ shadow: false, autoComplete: true });
    const { P, S } = openPair(h, base, s);
    for (const f of cut(P, [1448])) h.p(f);
    for (const f of cut(S, [1000])) h.s(f);
    expect(h.records[0]!.offset).toBe(1000);
    expect(h.engine.statsSnapshot().reanchorBy).toEqual({ shift: 0, tail: 0, end: 0, forced: 0, ownEnds: 0 });
    expect(h.engine.statsSnapshot().alignment.restarted).toBeGreaterThan(0);
    h.finish();
  });
});

describe('Resync.decide (unit)', () => {
  const bytes = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s));
  const mk = (p: string, s: string): Resync => {
    const r = new Resync(100, 200, 1 << 20);
    r.add(0, bytes(p), 0, p.length, 100);
    r.add(1, bytes(s), 0, s.length, 200);
    r.settled = true;
    return r;
  };
  const tail = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop'; // 42 > RESYNC_PROOF

  it('finds substitution, insertion, deletion and length-changing replacement by proof', () => {
    const cases: Array<[string, string, number, number]> = [
      ['x' + tail, 'y' + tail, 1, 1],
      [tail, '12345' + tail, 0, 5],
      ['12345' + tail, tail, 5, 0],
      ['1234' + tail, '98765' + tail, 4, 5],
    ];
    for (const [p, s, a, b] of cases) {
      const r = mk(p, s);
      expect(r.decide(false, false, false)).toBe(RS_PROOF);
      expect([r.a, r.b]).toEqual([a, b]);
    }
  });

  it('repetitive data fits several shifts: it waits for the streams\' ends, which pick the shift that lines them up', () => {
    // Period 42: P[1, 33) occurs in S at 1 and a period later; mid-stream nothing is decided …
    const periodic = tail.repeat(4);
    const r = mk('x' + periodic, 'y' + periodic);
    expect(r.decide(false, false, false)).toBe(RS_WAIT);
    // … the FINs decide: the cheapest proof that lines the ends up.
    expect(r.decide(true, true, false)).toBe(RS_PROOF);
    expect([r.a, r.b]).toEqual([1, 1]);
    // The same bytes, but S ends one period later: 42 bytes were inserted, not 1 changed.
    const r2 = mk('x' + periodic, 'y' + tail + periodic);
    expect(r2.decide(true, true, false)).toBe(RS_PROOF);
    expect(r2.b - r2.a).toBe(tail.length);
    // Forced before the ends are known: each side's own end (less the equal tail).
    const f = mk('x' + periodic, 'y' + periodic);
    expect(f.decide(false, false, true)).toBe(RS_FORCED);
    expect([f.a, f.b]).toEqual([1, 1]);
  });

  it('the cheapest alignment wins: 40 missing bytes (40, 0), not a later copy', () => {
    const r2 = mk('x'.repeat(40) + tail, tail + 'y'.repeat(30) + 'Z' + tail.slice(1));
    expect(r2.decide(false, false, false)).toBe(RS_PROOF);
    expect([r2.a, r2.b]).toEqual([40, 0]);
  });

  it('a cheap candidate is not accepted while a cheaper one can still appear', () => {
    // (4, 5) costs 5: accepted as soon as both sides hold the 36 bytes that rule out anything cheaper.
    const r = new Resync(0, 0, 1 << 20);
    r.settled = true;
    const p = bytes('1234' + tail);
    r.add(0, p, 0, p.length, 0);
    r.add(1, bytes('98765' + tail.slice(0, 33)), 0, 38, 0);
    expect(r.decide(false, false, false)).toBe(RS_PROOF);
    expect([r.a, r.b]).toEqual([4, 5]);
    const w = new Resync(0, 0, 1 << 20);
    const long = streamBytes(200, 9);
    w.add(0, long, 100, 100, 0);
    w.add(1, long, 60, 33 + 40, 0); // S = P shifted by 40 (insertion): cost 40, needs 71 bytes of P
    expect(w.decide(false, false, false)).toBe(RS_PROOF);
    expect([w.a, w.b]).toEqual([0, 40]);
    const w2 = new Resync(0, 0, 1 << 20);
    w2.add(0, long, 100, 50, 0);
    w2.add(1, long, 60, 33 + 40, 0);
    expect(w2.decide(false, false, false)).toBe(RS_WAIT);
    expect(w2.decide(true, false, false)).toBe(RS_PROOF);
  });

  it('incremental: bytes added after a failed search still find the proof', () => {
    const r = new Resync(0, 0, 1 << 20);
    r.settled = true;
    r.add(0, bytes('x' + tail), 0, 1 + tail.length, 0);
    r.add(1, bytes('yy'), 0, 2, 0);
    expect(r.decide(false, false, false)).toBe(RS_WAIT);
    r.add(1, bytes(tail.slice(0, 20)), 0, 20, 2);
    expect(r.decide(false, false, false)).toBe(RS_WAIT);
    r.add(1, bytes(tail.slice(20)), 0, tail.length - 20, 22);
    expect(r.decide(false, false, false)).toBe(RS_PROOF);
    expect([r.a, r.b]).toEqual([1, 2]);
  });

  it('tail: ends lined up with ≥ 16 equal bytes; fewer wait; FINs or force decide at the ends', () => {
    expect(mk('1234' + tail.slice(0, 20), '98765' + tail.slice(0, 20)).decide(false, false, false)).toBe(RS_TAIL);
    const short = mk('1234ok', '98765ok');
    expect(short.decide(false, false, false)).toBe(RS_WAIT);
    expect(short.decide(true, false, false)).toBe(RS_WAIT);
    expect(short.decide(true, true, false)).toBe(RS_END);
    expect([short.a, short.b]).toEqual([4, 5]);
    const f = mk('1234ok', '98765ok');
    expect(f.decide(false, false, true)).toBe(RS_FORCED);
    expect([f.a, f.b]).toEqual([4, 5]);
  });

  it('more than the cap breaks it (own ends); a skipped range too', () => {
    const big = new Uint8Array(RESYNC_WINDOW * 2 + 1);
    const r = new Resync(0, 0, RESYNC_WINDOW * 2);
    r.add(0, big, 0, RESYNC_WINDOW * 2, 0);
    expect(r.broken).toBe(false);
    r.add(0, big, 0, 1, RESYNC_WINDOW * 2);
    expect(r.broken).toBe(true);
    expect(r.decide(false, false, false)).toBe(RS_BROKEN);
    const g = new Resync(0, 0, 1 << 20);
    g.add(1, bytes('abc'), 0, 3, 10);
    expect(g.broken).toBe(true);
    expect(RESYNC_PROOF).toBeLessThan(RESYNC_WINDOW);
  });

  it('repetitive data past the window with the ends far apart: waits; the cheapest shift once the ends agree with it, or the FINs', () => {
    const body = alphabet(20_000);
    const ins = Uint8Array.from({ length: 16 }, (_, i) => 0xd0 + i);
    const mkLong = (sLen: number): Resync => {
      const r = new Resync(0, 0, 1 << 20);
      r.settled = true;
      r.add(0, body, 0, body.length, 0); // the primary has sent it all
      r.add(1, ins, 0, 16, 0);
      r.add(1, body, 0, sLen, 16);
      return r;
    };
    // Both past the window, the secondary far behind: lining up the ends would be a shift of
    // thousands of bytes; the cheapest candidate (16 inserted) is ambiguous (periodic data).
    const r = mkLong(RESYNC_WINDOW + 300);
    expect(r.decide(false, false, false)).toBe(RS_WAIT);
    // The secondary catches up: its end now agrees with the cheapest shift.
    r.add(1, body, RESYNC_WINDOW + 300, body.length - (RESYNC_WINDOW + 300), 16 + RESYNC_WINDOW + 300);
    expect(r.decide(false, false, false)).toBe(RS_PROOF);
    expect([r.a, r.b]).toEqual([0, 16]);
    // Or the FINs decide (the secondary's stream then ends where the shift says).
    const f = mkLong(RESYNC_WINDOW + 300);
    expect(f.decide(false, false, false)).toBe(RS_WAIT);
    f.add(1, body, RESYNC_WINDOW + 300, body.length - (RESYNC_WINDOW + 300), 16 + RESYNC_WINDOW + 300);
    expect(f.decide(true, true, false)).toBe(RS_PROOF);
    expect([f.a, f.b]).toEqual([0, 16]);
    // 50 missing bytes (more than the 26-byte period): the cheapest shift (24 missing) never
    // agrees with the ends, only the FINs tell.
    const d = new Resync(0, 0, 1 << 20);
    d.settled = true;
    d.add(0, body, 0, body.length, 0);
    d.add(1, body, 50, body.length - 50, 0);
    expect(d.decide(false, false, false)).toBe(RS_WAIT);
    expect(d.decide(true, true, false)).toBe(RS_PROOF);
    expect([d.a, d.b]).toEqual([50, 0]);
  });

  it('both sides past the search window without a proof: own ends (no match)', () => {
    const r = new Resync(0, 0, 1 << 20);
    const p = streamBytes(RESYNC_WINDOW + 10, 1);
    const s = streamBytes(RESYNC_WINDOW - 10, 2);
    r.add(0, p, 0, p.length, 0);
    r.add(1, s, 0, s.length, 0);
    expect(r.decide(false, false, false)).toBe(RS_WAIT);
    const s2 = streamBytes(20, 3);
    r.add(1, s2, 0, 20, s.length);
    expect(r.decide(false, false, false)).toBe(RS_NO_MATCH);
    expect([r.a, r.b]).toEqual([r.np, r.ns]);
  });
});

describe('shadow re-anchor: property', () => {
  it('random stream, random segmentations and order, one random edit: one checkpoint at the first differing offset, every frame released once', () => {
    const segArb = fc.array(fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 200, max: 1460 })), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6000 }),
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.constantFrom('sub' as const, 'ins' as const, 'del' as const),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 255 }),
        segArb,
        segArb,
        fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
        (n, seed, kind, where, len, fill, ps, ss, picks) => {
          const base = streamBytes(n, seed);
          const { s, d, cause } = randomEdit(base, kind, where, len, fill);
          expectOne(run(base, s, ps, ss, picks), d, cause);
        },
      ),
      { numRuns: 300, seed: 20261127 },
    );
  });

  it('the same on repetitive data (a random pattern of 1–64 bytes repeated, like a generated HTTP body)', () => {
    const segArb = fc.array(fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 200, max: 1460 })), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4000 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.constantFrom('sub' as const, 'ins' as const, 'del' as const),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 255 }),
        segArb,
        segArb,
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        (n, period, seed, kind, where, len, fill, ps, ss, picks) => {
          const base = patterned(n, period, seed);
          const { s, d, cause } = randomEdit(base, kind, where, len, fill);
          // An edit that leaves the streams equal (e.g. deleting whole periods at the end is a length change, fine; an insertion equal to the pattern is not an edit at all).
          fc.pre(!(d === base.length && d === s.length));
          expectOne(run(base, s, ps, ss, picks), d, cause);
        },
      ),
      { numRuns: 300, seed: 11272026 },
    );
  });
});
