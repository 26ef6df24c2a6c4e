/**
 * The lockstep planner without QEMU. The bound is checked by counting, at every prefix of the
 * plan, how many frames of one side are not yet covered by the bytes (or datagrams) the other
 * side has written on the same connection — computed here directly from the frames, not with
 * the planner's model. The real-QEMU consequence (no silent drops) is in qemu-compare.test.ts.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { ColoError } from '../../src/errors.js';
import { planLockstep } from '../../src/replay/lockstep.js';
import type { FeedFrame, LockstepPlan } from '../../src/replay/lockstep.js';
import { TCP_ACK, tcpFrame, tcpSegments, udpFrame } from '../../src/replay/frame-builder.js';

const data = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 13) & 0xff));

/** A TCP stream on connection `c` (server port 1000 + c) cut at `mss`, frames tagged with times. */
function stream(c: number, bytes: number, mss: number, t0: number, dt: number, meta: Meta[], side: number): FeedFrame[] {
  const segs = tcpSegments({ src: '10.0.0.2', dst: '10.0.0.1', sport: 1000 + c, dport: 40000, seq: 5000, ack: 1 }, data(bytes), mss);
  return segs.map((buf, i) => {
    meta.push({ side, conn: c, end: Math.min((i + 1) * mss, bytes) });
    return { buf, timeMs: t0 + i * dt };
  });
}

interface Meta {
  side: number;
  conn: number;
  /** Stream bytes covered once this frame is written. */
  end: number;
}

/**
 * Walk the plan; after each step count, per connection and side, the written frames whose
 * end offset lies beyond what the other side has written. Returns the largest count seen.
 */
function maxUncovered(plan: LockstepPlan, meta: [Meta[], Meta[]]): number {
  const written = new Map<string, number[]>(); // `${side}:${conn}` → ends of written frames
  const reach = new Map<string, number>(); // bytes written per side:conn
  let worst = 0;
  for (const step of plan.steps) {
    const side = step & 1;
    const m = meta[side][step >>> 1]!;
    const key = `${side}:${m.conn}`;
    const list = written.get(key) ?? [];
    list.push(m.end);
    written.set(key, list);
    reach.set(key, Math.max(reach.get(key) ?? 0, m.end));
    for (const s of [0, 1]) {
      const ends = written.get(`${s}:${m.conn}`) ?? [];
      const other = reach.get(`${1 - s}:${m.conn}`) ?? 0;
      const n = ends.filter((e) => e > other).length;
      if (n > worst) worst = n;
    }
  }
  return worst;
}

function sideOrder(plan: LockstepPlan, side: number): number[] {
  return Array.from(plan.steps)
    .filter((s) => (s & 1) === side)
    .map((s) => s >>> 1);
}

describe('planLockstep', () => {
  it('a lagging secondary (same segmentation) is never left more than maxAhead frames behind', () => {
    const meta: [Meta[], Meta[]] = [[], []];
    // The secondary's frames come 1 s later: merging by time alone would write all 300 primary frames first.
    const p = stream(0, 300 * 1000, 1000, 0, 1, meta[0], 0);
    const s = stream(0, 300 * 1000, 1000, 1000, 1, meta[1], 1);
    const loose = planLockstep(p, s, { maxAhead: 1_000_000 });
    expect(loose.order).toBe('time');
    expect(maxUncovered(loose, meta)).toBe(300); // the check can fail
    const plan = planLockstep(p, s, { maxAhead: 8 });
    expect(maxUncovered(plan, meta)).toBeLessThanOrEqual(8);
    expect(plan.overruns).toBe(0);
    expect(plan.maxPending[0]).toBe(8);
  });

  it('different segmentation is bounded in frames, not misread as one side racing ahead', () => {
    const meta: [Meta[], Meta[]] = [[], []];
    // Primary 1400-byte segments, secondary 700-byte segments of the same 280 000 bytes.
    const p = stream(0, 280_000, 1400, 0, 2, meta[0], 0);
    const s = stream(0, 280_000, 700, 0, 1, meta[1], 1);
    for (const order of ['time', 'alternate'] as const) {
      const plan = planLockstep(p, s, { maxAhead: 16, order });
      expect(maxUncovered(plan, meta), order).toBeLessThanOrEqual(16);
      expect(plan.overruns, order).toBe(0);
    }
    // Alternating equal frame counts without the model lets the primary run away (2:1 bytes per frame).
    const naive = planLockstep(p, s, { maxAhead: 1_000_000, order: 'alternate', chunk: 16 });
    expect(maxUncovered(naive, meta)).toBeGreaterThan(16);
  });

  it('keeps each side in its own order and writes every frame once (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(3), fc.integer({ min: 1, max: 3 })), { minLength: 1, maxLength: 40 }),
        fc.array(fc.tuple(fc.nat(3), fc.integer({ min: 1, max: 3 })), { minLength: 0, maxLength: 40 }),
        fc.integer({ min: 1, max: 10 }),
        fc.constantFrom('time' as const, 'alternate' as const),
        (pa, sa, maxAhead, order) => {
          // Frames: (connection, segments of 100 bytes); times interleave arbitrarily.
          const mk = (arr: Array<[number, number]>, side: number): FeedFrame[] => {
            const seqs = new Map<number, number>();
            return arr.map(([c, k], i) => {
              const seq = seqs.get(c) ?? 1;
              seqs.set(c, seq + k * 100);
              return { buf: tcpFrame({ src: '10.0.0.2', dst: '10.0.0.1', sport: 2000 + c, dport: 1, seq, payload: data(k * 100) }), timeMs: i * 3 + side };
            });
          };
          const p = mk(pa, 0);
          const s = mk(sa, 1);
          const plan = planLockstep(p, s, { maxAhead, order, chunk: 3 });
          expect(sideOrder(plan, 0)).toEqual(p.map((_, i) => i));
          expect(sideOrder(plan, 1)).toEqual(s.map((_, i) => i));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('with a silent secondary the excess is counted as overruns, exactly', () => {
    const meta: [Meta[], Meta[]] = [[], []];
    const p = stream(0, 100 * 500, 500, 0, 1, meta[0], 0);
    const s = stream(0, 20 * 500, 500, 0, 1, meta[1], 1); // stops after 20 segments
    const plan = planLockstep(p, s, { maxAhead: 10 });
    // 20 matched + 10 pending within the bound; the other 70 could not be held back.
    expect(plan.overruns).toBe(70);
  });

  it('connections are bounded separately: a lead on one never holds back another', () => {
    const meta: [Meta[], Meta[]] = [[], []];
    // Primary: connection 1 far ahead in time; connection 2 interleaved with the secondary.
    const p = [...stream(1, 50 * 100, 100, 0, 1, meta[0], 0), ...stream(2, 50 * 100, 100, 100, 1, meta[0], 0)];
    const s = [...stream(1, 50 * 100, 100, 500, 1, meta[1], 1), ...stream(2, 50 * 100, 100, 100, 1, meta[1], 1)];
    const plan = planLockstep(p, s, { maxAhead: 5 });
    expect(plan.connections).toBe(2);
    expect(plan.overruns).toBe(0);
    expect(maxUncovered(plan, meta)).toBeLessThanOrEqual(5);
  });

  it('frames colo-compare does not queue (IPv6 here) are never held back', () => {
    const p = Array.from({ length: 50 }, (_, i) => ({ buf: tcpFrame({ src: '2001:db8::2', dst: '2001:db8::1', sport: 80, dport: 1, seq: 1 + i * 10, payload: data(10) }) }));
    const plan = planLockstep(p, [], { maxAhead: 1 });
    expect(plan.overruns).toBe(0);
    expect(plan.unqueued).toEqual([50, 0]);
    expect(plan.connections).toBe(0);
  });

  it('payload-less frames stay pending until the other side sends after them (colo-compare §6.6)', () => {
    const base = { src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 1, ack: 1 };
    const p = [{ buf: tcpFrame({ ...base, seq: 1, payload: data(100) }) }, ...Array.from({ length: 5 }, () => ({ buf: tcpFrame({ ...base, seq: 101, flags: TCP_ACK }) }))];
    const s = [{ buf: tcpFrame({ ...base, seq: 1, payload: data(100) }) }];
    const plan = planLockstep(p, s, { maxAhead: 3, order: 'alternate', chunk: 1 });
    // data/data match; then the pure ACKs pile up: 3 within the bound, 2 beyond it.
    expect(plan.overruns).toBe(2);
    expect(plan.maxPending[0]).toBe(5);
  });

  it('UDP datagrams pair one to one', () => {
    const u = (i: number, t: number) => ({ buf: udpFrame({ src: '10.0.0.2', dst: '10.0.0.1', sport: 53, dport: 1000, payload: data(20 + i) }), timeMs: t });
    const p = Array.from({ length: 40 }, (_, i) => u(i, i));
    const s = Array.from({ length: 40 }, (_, i) => u(i, 1000 + i));
    const plan = planLockstep(p, s, { maxAhead: 4 });
    let lead = 0;
    let worst = 0;
    for (const st of plan.steps) {
      lead += (st & 1) === 0 ? 1 : -1;
      worst = Math.max(worst, Math.abs(lead));
    }
    expect(worst).toBe(4);
    expect(plan.overruns).toBe(0);
  });

  it('without a bound in play, time order is a stable merge (ties: primary first)', () => {
    const u = (t: number) => ({ buf: udpFrame({ src: '10.0.0.2', dst: '10.0.0.1', sport: 1, dport: 2 }), timeMs: t });
    const p = [u(1), u(3), u(3), u(7)];
    const s = [u(0), u(3), u(5), u(8)];
    const plan = planLockstep(p, s, { maxAhead: 100 });
    const got = Array.from(plan.steps, (st) => `${st & 1 ? 'S' : 'P'}${st >>> 1}`);
    expect(got).toEqual(['S0', 'P0', 'P1', 'P2', 'S1', 'S2', 'P3', 'S3']);
  });

  it('rejects bad options', () => {
    const f = [{ buf: udpFrame({ src: '10.0.0.2', dst: '10.0.0.1', sport: 1, dport: 2 }) }];
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (e) {
        return (e as ColoError).code;
      }
      return undefined;
    };
    expect(code(() => planLockstep(f, f, { maxAhead: 0 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => planLockstep(f, f, { maxAhead: 1, order: 'time' }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => planLockstep(f, f, { maxAhead: 1, chunk: 0 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(planLockstep(f, f, { maxAhead: 1 }).order).toBe('alternate');
  });
});
