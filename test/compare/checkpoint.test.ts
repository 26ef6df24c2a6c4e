/**
 * Checkpoints, timeouts, budgets and backpressure, shadow mode, flow removal, re-entrancy.
 */
import { describe, expect, it } from 'vitest';
import { ShadowCheckpointPort } from '../../src/compare/checkpoint-port.js';
import { ColoError } from '../../src/errors.js';
import { streamBytes, udpFrame, type Host } from './frames.js';
import { Harness, keepsOrder } from './harness.js';
import { Sender } from './sender.js';

const G: Host = { ip: '10.0.0.2', port: 80 };
const C: Host = { ip: '10.0.0.1', port: 40000 };
const C2: Host = { ip: '10.0.0.1', port: 40001 };
const C3: Host = { ip: '10.0.0.1', port: 40002 };

/** A passively opened connection whose SYN-ACKs (both sides) have been fed. */
function opened(h: Harness, cl: Host, n: number, seed: number, t = 0): { P: Sender; S: Sender } {
  const stream = streamBytes(n, seed);
  const P = new Sender(G, cl, 1000, 1001, stream);
  const S = new Sender(G, cl, 77_777, 1001, stream);
  h.p(P.syn(), t);
  h.s(S.syn(), t);
  return { P, S };
}

describe('compare_timeout', () => {
  it('an unmatched primary packet is a timeout divergence at the first scan after compare_timeout', () => {
    const h = new Harness();
    const { P } = opened(h, C, 3000, 1);
    h.engine.tick(0);
    const d = h.p(P.data(0, 1448), 500);
    for (const t of [1000, 2000, 3000, 3600]) h.engine.tick(t);
    expect(h.records).toEqual([]);
    h.engine.tick(4000); // scans at 1000, 2000, 3000, 4000: age 3500 ≥ 3000 only at 4000
    expect(h.records.map((r) => [r.cause, r.side, r.flow, r.offset, r.heldMs])).toEqual([['timeout', 'primary', '10.0.0.2:80-10.0.0.1:40000/TCP', 0, 3500]]);
    expect(h.isReleased(d)).toBe(false);
    h.engine.tick(5000);
    expect(h.records.length).toBe(1); // one record per flow per checkpoint interval
    h.engine.onCheckpointCompleted();
    expect(h.isReleased(d)).toBe(true);
    h.finish();
  });

  it('scan cycle and timeout are configurable; a pending checkpoint is requested again after checkpointRetryMs', () => {
    const h = new Harness({ limits: { compareTimeoutMs: 100, expiredScanCycleMs: 50, checkpointRetryMs: 1000 } });
    h.engine.tick(0);
    h.p(udpFrame(G, C, [1]), 0);
    h.engine.tick(50);
    expect(h.records).toEqual([]);
    h.engine.tick(100);
    expect(h.records.map((r) => [r.cause, r.offset, r.offsetUnit])).toEqual([['timeout', 0, 'datagram']]);
    expect(h.port.requests.length).toBe(1);
    h.engine.tick(1050);
    expect(h.port.requests.length).toBe(1);
    h.engine.tick(1100);
    expect(h.port.requests.length).toBe(2);
    expect(h.port.requests[1]).toBe(null);
    expect(h.engine.statsSnapshot().checkpoints.retried).toBe(1);
    h.finish();
  });

  it('a secondary datagram without partner for compare_timeout is dropped, never a checkpoint', () => {
    const h = new Harness();
    h.engine.tick(0);
    h.s(udpFrame(G, C, [1]), 0);
    h.engine.tick(3000);
    expect(h.records).toEqual([]);
    expect(h.engine.statsSnapshot().secondary.droppedBy).toEqual({ expired: 1 });
    const x = h.p(udpFrame(G, C, [1]), 3001);
    expect(h.isReleased(x)).toBe(false);
    h.finish();
  });
});

describe('checkpoint completion', () => {
  it('releases every held packet in arrival order (per-flow order kept), drops the held secondary data', () => {
    const h = new Harness();
    const a = opened(h, C, 5000, 2);
    const b = opened(h, C2, 5000, 3);
    const order: number[] = [];
    const perFlow: number[][] = [[], [], []];
    for (let i = 0; i < 3; i++) {
      for (const [k, x] of [a, b].entries()) {
        const idx = h.p(x.P.data(i * 1000, 1000));
        order.push(idx);
        perFlow[k]!.push(idx);
      }
      const u = h.p(udpFrame(G, C3, [i]));
      order.push(u);
      perFlow[2]!.push(u);
    }
    h.s(udpFrame(G, { ip: '10.0.0.1', port: 9 }, [1])); // waits for a partner
    h.s(b.S.data(4000, 500)); // out of order: buffered by the secondary's reassembler
    expect(h.engine.held.frames).toBe(order.length);
    h.engine.onCheckpointCompleted();
    const rel = h.releasedIndices();
    expect(rel.slice(2)).toEqual(order); // [0, 1] are the SYN-ACKs
    for (const f of perFlow) expect(keepsOrder(rel, f)).toBe(true);
    const st = h.engine.statsSnapshot();
    expect(st.checkpoints).toMatchObject({ requested: 0, completed: 1, unsolicited: 1 });
    expect(st.secondary.droppedBy).toEqual({ checkpoint: 1 });
    expect(st.secondary.held).toBe(0);
    h.finish();
  });

  it('coalesces divergences while a checkpoint is pending; each still gets a record', () => {
    const h = new Harness();
    h.p(udpFrame(G, C, [1]));
    h.s(udpFrame(G, C, [2]));
    h.p(udpFrame(G, C2, [1]));
    h.s(udpFrame(G, C2, [3]));
    expect(h.records.map((r) => [r.requested, r.checkpoint])).toEqual([
      [true, 1],
      [false, 1],
    ]);
    expect(h.port.requests.length).toBe(1);
    h.engine.onCheckpointCompleted();
    h.p(udpFrame(G, C, [1]));
    h.s(udpFrame(G, C, [4]));
    expect(h.records.map((r) => [r.requested, r.checkpoint])[2]).toEqual([true, 2]);
    expect(h.port.requests.length).toBe(2);
    h.finish();
  });
});

describe('held budgets and backpressure', () => {
  it('per-flow bytes: checkpoint + backpressure, later frames still held (never dropped), resume on completion', () => {
    const events: boolean[] = [];
    const h = new Harness({ limits: { maxFlowHeldBytes: 4000 }, onBackpressure: (p) => events.push(p) });
    const { P } = opened(h, C, 10_000, 4);
    const idx = [0, 1, 2, 3, 4].map((i) => h.p(P.data(i * 1448, 1448)));
    expect(h.records.map((r) => [r.cause, r.side, r.offset])).toEqual([['budget', 'primary', 0]]);
    expect(h.engine.wantsInput()).toBe(false);
    expect(events).toEqual([true]);
    expect(h.engine.held.frames).toBe(5);
    expect(h.engine.statsSnapshot().budget.flowBytesHits).toBe(1);
    h.engine.onCheckpointCompleted();
    expect(idx.every((i) => h.isReleased(i))).toBe(true);
    expect(h.engine.wantsInput()).toBe(true);
    expect(events).toEqual([true, false]);
    h.finish();
  });

  it('global frame budget across flows', () => {
    const h = new Harness({ limits: { maxHeldPackets: 3 } });
    for (const c of [C, C2, C3]) h.p(udpFrame(G, c, [1]));
    expect(h.records).toEqual([]);
    h.p(udpFrame(G, C, [2]));
    expect(h.records.map((r) => r.cause)).toEqual(['budget']);
    expect(h.engine.statsSnapshot().budget.globalPacketsHits).toBe(1);
    expect(h.engine.wantsInput()).toBe(false);
    h.engine.onCheckpointCompleted();
    expect(h.engine.wantsInput()).toBe(true);
    h.finish();
  });

  it('a secondary far ahead of the primary is bounded by the flow budget', () => {
    const h = new Harness({ limits: { maxFlowHeldBytes: 3000 } });
    const { P, S } = opened(h, C, 10_000, 5);
    h.p(P.data(0, 100));
    for (let i = 0; i < 4; i++) h.s(S.data(i * 1000, 1000));
    expect(h.records.map((r) => [r.cause, r.side])).toEqual([['budget', 'secondary']]);
    const st = h.engine.statsSnapshot();
    expect(st.secondary.heldBytes).toBeLessThanOrEqual(3000);
    h.finish();
  });
});

describe('shadow mode (checkpoints complete at once, no resync)', () => {
  it('one diverging flow never makes another flow look diverged', () => {
    const h = new Harness({ shadow: true });
    // Flow A: two responses; the first differs in content and length (like /cgi-bin/time).
    const r1p = Uint8Array.from(Buffer.from('HTTP/1.0 200 OK\r\n\r\ntime=1234'));
    const r1s = Uint8Array.from(Buffer.from('HTTP/1.0 200 OK\r\n\r\ntime=98765'));
    const r2 = Uint8Array.from(Buffer.from('HTTP/1.0 200 OK\r\n\r\ncounter=7'));
    const A_P = new Sender(G, C, 500, 501, new Uint8Array(0));
    const A_S = new Sender(G, C, 90_000, 501, new Uint8Array(0));
    h.p(A_P.syn());
    h.s(A_S.syn());
    // Flow B: equal streams; the primary is ahead when A diverges.
    const b = opened(h, C2, 6000, 6);
    const bHeld = [0, 1, 2].map((i) => h.p(b.P.data(i * 1448, 1448)));
    h.s(b.S.data(0, 1000));
    h.p(A_P.data(0, r1p.length, {}, false, r1p));
    h.s(A_S.data(0, r1s.length, {}, false, r1s));
    expect(h.records.map((r) => [r.cause, r.flow])).toEqual([['payload', '10.0.0.2:80-10.0.0.1:40000/TCP']]);
    // The shadow checkpoint released B's held frames...
    expect(bHeld.every((i) => h.isReleased(i))).toBe(true);
    // ...but kept B's alignment: its secondary catches up without a divergence.
    h.s(b.S.data(1000, 3344));
    const bMore = h.p(b.P.data(4344, 1656, {}, true));
    h.s(b.S.data(4344, 1656, {}, true));
    expect(h.isReleased(bMore)).toBe(true);
    // A was re-anchored at both sides' ends: the next response compares cleanly.
    const a2 = h.p(A_P.data(r1p.length, r2.length, {}, false, r2));
    h.s(A_S.data(r1s.length, r2.length, {}, false, r2));
    expect(h.isReleased(a2)).toBe(true);
    expect(h.records.length).toBe(1);
    expect(h.engine.statsSnapshot().checkpoints).toMatchObject({ requested: 1, completed: 1 });
    h.finish();
  });

  it('datagrams released by a shadow checkpoint keep the FIFO aligned when their partners come late', () => {
    const port = new ShadowCheckpointPort();
    const h = new Harness({ port });
    expect(h.engine.shadow).toBe(true);
    h.p(udpFrame(G, C2, [1]));
    h.s(udpFrame(G, C2, [2])); // diverges: shadow checkpoint now
    const x = h.p(udpFrame(G, C, [5]));
    const y = h.p(udpFrame(G, C, [6]));
    h.p(udpFrame(G, C2, [1]));
    h.s(udpFrame(G, C2, [3])); // second divergence: releases x and y unpaired
    expect(h.isReleased(x) && h.isReleased(y)).toBe(true);
    h.s(udpFrame(G, C, [5]));
    h.s(udpFrame(G, C, [6]));
    const z = h.p(udpFrame(G, C, [7]));
    h.s(udpFrame(G, C, [7]));
    expect(h.isReleased(z)).toBe(true);
    expect(h.records.length).toBe(2);
    expect(port.requests).toBe(2);
    expect(h.engine.statsSnapshot().secondary.droppedBy).toEqual({ 'ghost-partner': 2 });
    h.finish();
  });
});

describe('flow removal while packets are held', () => {
  it('evicted flow: its held packets wait for the checkpoint (requested), never dropped', () => {
    const h = new Harness({ limits: { maxFlows: 2 } });
    const a = h.p(udpFrame(G, C, [1]), 0);
    h.p(udpFrame(G, C2, [1]), 1);
    h.p(udpFrame(G, C3, [1]), 2); // evicts the flow of `a` (least recently used)
    expect(h.records.map((r) => [r.cause, r.flow])).toEqual([['flow-removed', '10.0.0.2:80-10.0.0.1:40000/UDP']]);
    expect(h.isReleased(a)).toBe(false);
    expect(h.engine.statsSnapshot().orphaned).toEqual({ frames: 1, flows: 1 });
    h.engine.onCheckpointCompleted();
    expect(h.isReleased(a)).toBe(true);
    h.finish();
  });
});

describe('engine contract', () => {
  it('callbacks must not re-enter the engine', () => {
    let h!: Harness;
    h = new Harness({
      release: (handle) => {
        h.pool.release(handle);
        h.engine.tick(0);
      },
    });
    let err: unknown;
    try {
      h.p(udpFrame(G, C, [1]).subarray(0, 20));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ColoError);
    expect((err as ColoError).code).toBe('ERR_COMPARE_REENTRANT');
    h.checkAccounting();
    h.engine.close();
    h.checkAccounting();
    expect(h.pool.inUse).toBe(0);
  });

  it('after close, frames pass through uncompared and are counted', () => {
    const h = new Harness();
    h.engine.close();
    const a = h.p(udpFrame(G, C, [1]));
    h.s(udpFrame(G, C, [1]));
    expect(h.isReleased(a)).toBe(true);
    expect(h.engine.statsSnapshot().primary.unparseableBy).toEqual({ ENGINE_CLOSED: 1 });
    h.finish();
  });
});
