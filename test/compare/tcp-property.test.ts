/**
 * Property tests. Oracle: the construction. Each side is a TCP sender emitting the SAME byte
 * stream, but segmented, acknowledged, retransmitted, reordered, optioned and IP-numbered
 * independently; the compare engine must then request no checkpoint and release every primary
 * frame unchanged in per-flow arrival order. Changing one byte of one side's stream must give
 * exactly one record naming that flow and offset, and no primary frame carrying that byte may
 * leave before the checkpoint completes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ACK, FIN, PSH, SYN, seqAdd, streamBytes, tcpFrame, type FrameOpts, type Host } from './frames.js';
import { Harness, keepsOrder } from './harness.js';

type Mode = 'rewritten' | 'own-tap' | 'active' | 'midstream';

interface SidePlan {
  mss: number;
  /** Per data segment: send a pure ACK before it. */
  acks: boolean[];
  /** Retransmit segment i (mod count) after segment j (mod count). */
  rtx: Array<{ i: number; after: number }>;
  /** Swap data segments k and k+1 (mod count). */
  swaps: number[];
  ts: boolean;
  ipIdBase: number;
  finSeparate: boolean;
  ackAfterFin: boolean;
}

interface FlowPlan {
  n: number;
  seed: number;
  mode: Mode;
  pIsn: number;
  /** Secondary ISN = pIsn + isnDelta (kept far from the stream: random ISNs are far apart). */
  isnDelta: number;
  p: SidePlan;
  s: SidePlan;
}

interface Frame {
  bytes: Uint8Array;
  /** Stream bytes [a, b) it carries (a === b: none). */
  a: number;
  b: number;
}

const sideArb: fc.Arbitrary<SidePlan> = fc.record({
  mss: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 200, max: 1460 })),
  acks: fc.array(fc.boolean(), { maxLength: 40 }),
  rtx: fc.array(fc.record({ i: fc.nat(), after: fc.nat() }), { maxLength: 4 }),
  swaps: fc.array(fc.nat(), { maxLength: 4 }),
  ts: fc.boolean(),
  ipIdBase: fc.integer({ min: 0, max: 0xffff }),
  finSeparate: fc.boolean(),
  ackAfterFin: fc.boolean(),
});

const isnArb = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0xffffffff - 4000, max: 0xffffffff }));

function flowArb(modes: Mode[]): fc.Arbitrary<FlowPlan> {
  return fc.record({
    n: fc.integer({ min: 0, max: 5000 }),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
    mode: fc.constantFrom(...modes),
    pIsn: isnArb,
    isnDelta: fc.integer({ min: 1 << 20, max: 0xffffffff - (1 << 20) }),
    p: sideArb,
    s: sideArb,
  });
}

const GUEST: Host = { ip: '10.1.0.2', port: 80 };

function client(i: number): Host {
  return { ip: '10.1.0.1', port: 40000 + i };
}

/** The frames one side emits for one flow. */
function sideFrames(plan: FlowPlan, side: 'p' | 's', stream: Uint8Array, cl: Host): Frame[] {
  const sp = plan[side];
  const pIsn = plan.pIsn >>> 0;
  const isn = side === 'p' ? pIsn : seqAdd(pIsn, plan.isnDelta);
  // Where offset 0 sits in this side's sequence space (see sender.ts).
  const base = side === 'p' || plan.mode === 'rewritten' || plan.mode === 'midstream' ? seqAdd(pIsn, 1) : seqAdd(isn, 1);
  let ipId = sp.ipIdBase;
  let tsv = side === 'p' ? 1000 : 555_555;
  const opts = (): FrameOpts => {
    ipId = (ipId + 1) & 0xffff;
    tsv++;
    return { ipId, ts: sp.ts ? [tsv, 42] : undefined, window: side === 'p' ? 29200 : 64240 };
  };
  const seg = (a: number, b: number, flags: number): Frame => ({
    bytes: tcpFrame(GUEST, cl, seqAdd(base, a), 1, flags, stream.subarray(a, b), opts()),
    a,
    b,
  });
  const out: Frame[] = [];
  if (plan.mode !== 'midstream') {
    const flags = plan.mode === 'active' ? SYN : SYN | ACK;
    out.push({ bytes: tcpFrame(GUEST, cl, isn, plan.mode === 'active' ? 0 : 1, flags, [], opts()), a: 0, b: 0 });
  }
  const n = stream.length;
  const data: Frame[] = [];
  let k = 0;
  for (let off = 0; off < n; off += sp.mss, k++) {
    const end = Math.min(n, off + sp.mss);
    if (sp.acks[k % Math.max(1, sp.acks.length)]) data.push(seg(off, off, ACK));
    const last = end === n && !sp.finSeparate;
    data.push(seg(off, end, ACK | PSH | (last ? FIN : 0)));
  }
  // Retransmissions: a copy (new IP ID / timestamp) of an earlier data segment, later on.
  const dataIdx = data.map((f, i) => (f.b > f.a ? i : -1)).filter((i) => i >= 0);
  if (dataIdx.length > 0) {
    for (const r of sp.rtx) {
      const src = data[dataIdx[r.i % dataIdx.length]!]!;
      const at = Math.min(data.length, (r.after % data.length) + 1);
      const fin = src.b === n && !sp.finSeparate ? FIN : 0;
      data.splice(at, 0, seg(src.a, src.b, ACK | PSH | fin));
    }
    for (const w of sp.swaps) {
      const i = w % data.length;
      if (i + 1 < data.length) [data[i], data[i + 1]] = [data[i + 1]!, data[i]!];
    }
  }
  out.push(...data);
  if (sp.finSeparate || n === 0) out.push(seg(n, n, FIN | ACK));
  if (sp.ackAfterFin) out.push({ bytes: tcpFrame(GUEST, cl, seqAdd(base, n + 1), 1, ACK, [], opts()), a: n + 1, b: n + 1 });
  return out;
}

interface Fed {
  flow: number;
  frame: Frame;
  primary: boolean;
}

/** Merge the lists in an order driven by `picks`, keeping each list's own order. */
function merge(lists: Array<Omit<Fed, 'frame'> & { frames: Frame[] }>, picks: number[]): Fed[] {
  const pos = lists.map(() => 0);
  const out: Fed[] = [];
  let k = 0;
  for (;;) {
    const open = lists.map((l, i) => (pos[i]! < l.frames.length ? i : -1)).filter((i) => i >= 0);
    if (open.length === 0) return out;
    const li = open[(picks[k++ % Math.max(1, picks.length)] ?? 0) % open.length]!;
    const l = lists[li]!;
    out.push({ flow: l.flow, primary: l.primary, frame: l.frames[pos[li]!++]! });
  }
}

function run(plans: FlowPlan[], picks: number[], mutate?: { flow: number; offset: number; side: 'p' | 's' }) {
  const lists: Array<Omit<Fed, 'frame'> & { frames: Frame[] }> = [];
  plans.forEach((plan, i) => {
    const stream = streamBytes(plan.n, plan.seed);
    for (const side of ['p', 's'] as const) {
      let st = stream;
      if (mutate && mutate.flow === i && mutate.side === side) {
        st = Uint8Array.from(stream);
        st[mutate.offset] ^= 0x5a;
      }
      lists.push({ flow: i, primary: side === 'p', frames: sideFrames(plan, side, st, client(i)) });
    }
  });
  const order = merge(lists, picks);
  // Budgets are tested elsewhere; here only comparison decides. Every frame may be held at
  // once (1-byte segments, a divergence early on): the test pool holds them all with more
  // than half its slots to spare (the slot-class budget, test/compare/pool-pressure.test.ts).
  const h = new Harness({ limits: { maxFlowHeldPackets: 1 << 20, maxHeldPackets: 1 << 20 }, poolSlots: 2 * order.length + 64 });
  const perFlow: number[][] = plans.map(() => []);
  const carriers: number[] = [];
  order.forEach((f, t) => {
    if (f.primary) {
      const idx = h.p(f.frame.bytes, t);
      perFlow[f.flow]!.push(idx);
      if (mutate && f.flow === mutate.flow && f.frame.a <= mutate.offset && mutate.offset < f.frame.b) carriers.push(idx);
    } else {
      h.s(f.frame.bytes, t);
    }
  });
  return { h, perFlow, carriers };
}

describe('compare properties', () => {
  it('same streams, independently segmented/timed/optioned on each side: no checkpoint, output = input in per-flow order', () => {
    fc.assert(
      fc.property(fc.array(flowArb(['rewritten', 'own-tap', 'active', 'midstream']), { minLength: 1, maxLength: 3 }), fc.array(fc.nat(), { maxLength: 64 }), (plans, picks) => {
        const { h, perFlow } = run(plans, picks);
        expect(h.records).toEqual([]);
        expect(h.port.requests).toEqual([]);
        // Everything went out by comparison alone (nothing waits for a checkpoint or close).
        expect(h.engine.held.frames).toBe(0);
        const order = h.releasedIndices();
        for (const idx of perFlow) expect(keepsOrder(order, idx)).toBe(true);
        h.finish();
      }),
      { numRuns: 150 },
    );
  });

  it('one changed byte (either side): exactly one record naming flow and offset; its frames held until the checkpoint', () => {
    fc.assert(
      fc.property(
        fc.array(flowArb(['rewritten', 'own-tap', 'active']), { minLength: 1, maxLength: 3 }),
        fc.array(fc.nat(), { maxLength: 64 }),
        fc.nat(),
        fc.nat(),
        fc.constantFrom('p' as const, 's' as const),
        (plans, picks, fi, oi, side) => {
          const flow = fi % plans.length;
          const plan = plans[flow]!;
          if (plan.n === 0) plan.n = 1;
          const offset = oi % plan.n;
          const { h, carriers } = run(plans, picks, { flow, offset, side });
          expect(h.records.length).toBe(1);
          const r = h.records[0]!;
          expect([r.cause, r.flow, r.offset, r.offsetUnit]).toEqual(['payload', `10.1.0.2:80-10.1.0.1:${40000 + flow}/TCP`, offset, 'byte']);
          expect(h.port.requests.length).toBe(1);
          expect(carriers.length).toBeGreaterThan(0);
          for (const c of carriers) expect(h.isReleased(c)).toBe(false);
          h.checkAccounting();
          h.engine.onCheckpointCompleted();
          for (const c of carriers) expect(h.isReleased(c)).toBe(true);
          expect(h.engine.held.frames).toBe(0);
          h.finish();
        },
      ),
      { numRuns: 150 },
    );
  });
});
