/**
 * The engine driven through src/control's CheckpointController interface (ControllerPort):
 * completions that arrive asynchronously (the shadow controller completes on a microtask, a
 * QMP controller on RESUME), periodic completions, and failures.
 */
import { describe, expect, it } from 'vitest';
import type { CheckpointController, CheckpointFailureListener, CheckpointListener } from '../../src/control/checkpoint.js';
import { ShadowCheckpointController } from '../../src/control/shadow-checkpoint.js';
import { ControllerPort } from '../../src/compare/checkpoint-port.js';
import { CompareEngine } from '../../src/compare/engine.js';
import type { DivergenceRecord } from '../../src/compare/divergence.js';
import { PacketPool } from '../../src/packet/pool.js';
import { udpFrame, type Host } from './frames.js';

const G: Host = { ip: '10.0.0.2', port: 53 };
const C: Host = { ip: '10.0.0.1', port: 5353 };

function setup(port: ControllerPort) {
  const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 256 }] });
  const released: number[] = [];
  const records: DivergenceRecord[] = [];
  const engine = new CompareEngine({
    pool,
    checkpoint: port,
    onDivergence: (r) => records.push(r),
    release: (h) => {
      released.push(pool.time[h]!);
      pool.release(h);
    },
  });
  let n = 0;
  const load = (f: Uint8Array) => {
    const h = pool.copyIn(f, 0, f.length);
    pool.time[h] = n++;
    return h;
  };
  const done = () => {
    engine.close();
    const a = engine.accounting();
    expect(a.primary.balanced && a.secondary.balanced).toBe(true);
    expect(pool.inUse).toBe(0);
  };
  return { pool, engine, released, records, load, done };
}

/** A controller whose events the test fires by hand. */
class ScriptedController {
  readonly requests: string[] = [];
  readonly #done = new Set<CheckpointListener>();
  readonly #fail = new Set<CheckpointFailureListener>();
  request(cause: string): void {
    this.requests.push(cause);
  }
  onCompleted(cb: CheckpointListener): () => void {
    this.#done.add(cb);
    return () => this.#done.delete(cb);
  }
  onFailed(cb: CheckpointFailureListener): () => void {
    this.#fail.add(cb);
    return () => this.#fail.delete(cb);
  }
  complete(): void {
    for (const cb of this.#done) cb({} as never);
  }
  failNow(): void {
    for (const cb of this.#fail) cb({} as never, 'timeout', null);
  }
}

describe('ControllerPort', () => {
  it("with the control plane's ShadowCheckpointController: the flush follows its (asynchronous) completion", async () => {
    const ctrl = new ShadowCheckpointController();
    const port = new ControllerPort(ctrl, { shadow: true });
    const t = setup(port);
    port.attach(t.engine);
    expect(t.engine.shadow).toBe(true);
    t.engine.primary(t.load(udpFrame(G, C, [1])), 0);
    t.engine.secondary(t.load(udpFrame(G, C, [2])), 0);
    expect(t.records.map((r) => r.cause)).toEqual(['payload']);
    expect(t.released).toEqual([]);
    await new Promise((r) => setTimeout(r, 0));
    expect(t.released).toEqual([0]);
    expect(ctrl.stats().completed).toBe(1);
    expect(t.engine.statsSnapshot().checkpoints).toMatchObject({ requested: 1, completed: 1 });
    t.done();
    await ctrl.close();
  });

  it('periodic completions flush too; a failure is retried at the next scan', () => {
    const ctrl = new ScriptedController();
    const port = new ControllerPort(ctrl as unknown as CheckpointController);
    const t = setup(port);
    const off = port.attach(t.engine);
    t.engine.tick(0);
    t.engine.primary(t.load(udpFrame(G, C, [1])), 0);
    ctrl.complete(); // QEMU's own periodic checkpoint
    expect(t.released).toEqual([0]);
    expect(t.engine.statsSnapshot().checkpoints.unsolicited).toBe(1);
    t.engine.primary(t.load(udpFrame(G, C, [1])), 10);
    t.engine.secondary(t.load(udpFrame(G, C, [3])), 10);
    expect(ctrl.requests).toEqual(['payload 10.0.0.2:53-10.0.0.1:5353/UDP @1']);
    ctrl.failNow();
    expect(t.released).toEqual([0]);
    t.engine.tick(1000);
    expect(ctrl.requests).toEqual(['payload 10.0.0.2:53-10.0.0.1:5353/UDP @1', 'retry']);
    expect(t.engine.statsSnapshot().checkpoints).toMatchObject({ failed: 1, retried: 1 });
    ctrl.complete();
    expect(t.released).toEqual([0, 1]);
    off();
    t.done();
  });
});
