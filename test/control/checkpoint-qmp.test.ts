/**
 * QmpCheckpointController against a scripted COLO primary (fake-qmp.ts) that behaves as lab
 * step 3 measured QEMU 7.2: `migrate-set-parameters {"x-checkpoint-delay": N}` in COLO state
 * starts a checkpoint even when N is unchanged, and the primary emits STOP → MIGRATION_PASS →
 * RESUME; the timer's periodic checkpoints emit the same sequence unprompted.
 */
import { describe, it, expect, afterEach } from 'vitest';
import type { Checkpoint, CheckpointFailure } from '../../src/control/checkpoint.js';
import { QmpCheckpointController } from '../../src/control/qmp-checkpoint.js';
import type { ColoExit } from '../../src/control/qmp-checkpoint.js';
import { QmpClient, QmpError } from '../../src/control/qmp-client.js';
import { createLogger } from '../../src/util/log.js';
import { FakeQmp, sleep, until } from './fake-qmp.js';
import type { Ctx, Json } from './fake-qmp.js';

const silent = createLogger({ level: 'silent' });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Primary {
  f: FakeQmp;
  /** The stored x-checkpoint-delay. */
  delay: number;
  /** Values written by migrate-set-parameters, in order. */
  sets: number[];
  /** In COLO state: a set triggers a checkpoint. */
  colo: boolean;
  /** ms after the command: STOP, MIGRATION_PASS; RESUME after `resumeAfter` or when gated. */
  stopAfter: number;
  passAfter: number;
  resumeAfter: number | 'gate' | 'never';
  /** Emit the gated RESUME(s). */
  release(): void;
  /** Answer migrate-set-parameters with this error instead. */
  setError: { class: string; desc: string } | null;
  /** A periodic checkpoint (timer): STOP, PASS, RESUME without a command. */
  periodic(resumeAfter?: number): Promise<void>;
  passes: number;
}

async function primary(init: Partial<Pick<Primary, 'delay' | 'colo' | 'stopAfter' | 'passAfter' | 'resumeAfter'>> = {}): Promise<Primary> {
  const gated: Array<() => void> = [];
  const p: Primary = {
    f: undefined as unknown as FakeQmp,
    delay: init.delay ?? 20000,
    sets: [],
    colo: init.colo ?? true,
    stopAfter: init.stopAfter ?? 3,
    passAfter: init.passAfter ?? 6,
    resumeAfter: init.resumeAfter ?? 30,
    passes: 0,
    setError: null,
    release() {
      for (const g of gated.splice(0)) g();
    },
    async periodic(resumeAfter = 20) {
      p.f.event('STOP');
      await sleep(2);
      p.f.event('MIGRATION_PASS', { pass: ++p.passes });
      await sleep(resumeAfter);
      p.f.event('RESUME');
    },
  };
  const checkpoint = (ctx: Ctx): void => {
    setTimeout(() => ctx.event('STOP'), p.stopAfter);
    setTimeout(() => ctx.event('MIGRATION_PASS', { pass: ++p.passes }), p.passAfter);
    if (p.resumeAfter === 'gate') gated.push(() => ctx.event('RESUME'));
    else if (p.resumeAfter !== 'never') setTimeout(() => ctx.event('RESUME'), p.resumeAfter);
  };
  p.f = await FakeQmp.start({
    handlers: {
      'query-migrate-parameters': (_a, ctx) => ctx.reply({ return: { 'x-checkpoint-delay': p.delay, 'max-bandwidth': 134217728, 'downtime-limit': 300 } }),
      'migrate-set-parameters': (a, ctx) => {
        if (p.setError !== null) {
          ctx.reply({ error: p.setError });
          return;
        }
        const v = a?.['x-checkpoint-delay'];
        if (typeof v === 'number') {
          p.delay = v;
          p.sets.push(v);
        }
        ctx.reply({ return: {} });
        if (p.colo && typeof v === 'number') checkpoint(ctx);
      },
    },
  });
  cleanups.push(() => p.f.close());
  return p;
}

interface Rig {
  qmp: QmpClient;
  ctl: QmpCheckpointController;
  started: Checkpoint[];
  completed: Checkpoint[];
  failed: Array<[Checkpoint, CheckpointFailure, Error | null]>;
  /** Event names as the controller saw them, interleaved with 'started#n' / 'completed#n'. */
  log: string[];
}

async function rig(p: Primary, opts: { startTimeoutMs?: number; completeTimeoutMs?: number } = {}): Promise<Rig> {
  const qmp = new QmpClient({ endpoint: p.f.endpoint, logger: silent, backoff: { initialMs: 10, maxMs: 20 } });
  const r: Rig = { qmp, ctl: undefined as unknown as QmpCheckpointController, started: [], completed: [], failed: [], log: [] };
  qmp.onEvent((n) => r.log.push(n));
  r.ctl = new QmpCheckpointController({ qmp, logger: silent, ...opts });
  r.ctl.onStarted((cp) => {
    r.started.push(cp);
    r.log.push(`started#${cp.id}`);
  });
  r.ctl.onCompleted((cp) => {
    r.completed.push(cp);
    r.log.push(`completed#${cp.id}`);
  });
  r.ctl.onFailed((cp, reason, err) => r.failed.push([cp, reason, err]));
  cleanups.push(async () => {
    await r.ctl.close();
    await qmp.close();
  });
  await qmp.connect(2000);
  return r;
}

describe('QmpCheckpointController: requested checkpoints', () => {
  it('re-sends the CURRENT x-checkpoint-delay and completes exactly once, at RESUME', async () => {
    const p = await primary({ delay: 1234, resumeAfter: 'gate' });
    const r = await rig(p);
    r.ctl.request('mismatch');
    expect(r.ctl.state).toBe('requested');
    expect(r.started).toHaveLength(0); // never synchronously
    await until(() => r.log.includes('MIGRATION_PASS'));
    expect(r.ctl.state).toBe('in-progress');
    expect(r.started).toHaveLength(1);
    expect(r.completed).toHaveLength(0); // not at STOP, not at MIGRATION_PASS
    await sleep(20);
    expect(r.completed).toHaveLength(0);
    p.release();
    await until(() => r.completed.length === 1);
    expect(r.log).toEqual(['STOP', 'started#1', 'MIGRATION_PASS', 'RESUME', 'completed#1']);
    expect(p.sets).toEqual([1234]);
    expect(p.f.commands(1)).toEqual(['qmp_capabilities', 'query-migrate-parameters', 'migrate-set-parameters']);
    const cp = r.completed[0]!;
    expect(cp).toMatchObject({ origin: 'requested', cause: 'mismatch', coalesced: 0, failure: null });
    expect(cp.requestedAt <= cp.startedAt && cp.startedAt <= cp.passAt && cp.passAt <= cp.completedAt).toBe(true);
    const s = r.ctl.stats();
    expect(s).toMatchObject({ state: 'idle', requested: 1, coalesced: 0, sent: 1, started: 1, completed: 1, periodic: 0, failed: 0, passes: 1 });
    expect(s.timings.requestToStart.count).toBe(1);
    expect(s.timings.requestToPass.lastMs).toBeGreaterThanOrEqual(s.timings.requestToStart.lastMs);
    expect(s.timings.requestToComplete.lastMs).toBeGreaterThanOrEqual(s.timings.requestToPass.lastMs);
    await sleep(30);
    expect(r.completed).toHaveLength(1);
  });

  it('follows the operator: a changed delay is re-sent as changed', async () => {
    const p = await primary({ delay: 500 });
    const r = await rig(p);
    r.ctl.request('a');
    await until(() => r.completed.length === 1);
    p.delay = 777; // e.g. set by the operator meanwhile
    r.ctl.request('b');
    await until(() => r.completed.length === 2);
    expect(p.sets).toEqual([500, 777]);
  });

  it('coalesces requests while one is pending (requested or in progress)', async () => {
    const p = await primary({ resumeAfter: 'gate' });
    const r = await rig(p);
    r.ctl.request('first');
    r.ctl.request('second'); // still 'requested'
    await until(() => r.ctl.state === 'in-progress');
    r.ctl.request('third');
    r.ctl.request('fourth');
    p.release();
    await until(() => r.completed.length === 1);
    expect(p.sets).toHaveLength(1);
    expect(r.completed[0]).toMatchObject({ cause: 'first', coalesced: 3 });
    expect(r.ctl.stats()).toMatchObject({ requested: 4, coalesced: 3, sent: 1, completed: 1 });
    // After completion a new request is a new checkpoint.
    r.ctl.request('fifth');
    await until(() => r.ctl.state === 'in-progress');
    p.release();
    await until(() => r.completed.length === 2);
    expect(p.sets).toHaveLength(2);
  });

  it('a listener may request again from onCompleted', async () => {
    const p = await primary();
    const r = await rig(p);
    let again = true;
    r.ctl.onCompleted(() => {
      if (again) {
        again = false;
        r.ctl.request('from-listener');
      }
    });
    r.ctl.request('first');
    await until(() => r.completed.length === 2);
    expect(r.completed.map((c) => c.cause)).toEqual(['first', 'from-listener']);
  });
});

describe('QmpCheckpointController: periodic checkpoints', () => {
  it('reports an unrequested STOP/PASS/RESUME as a periodic checkpoint (onStarted + onCompleted), sending nothing', async () => {
    const p = await primary();
    const r = await rig(p);
    await p.periodic();
    await until(() => r.completed.length === 1);
    expect(r.started[0]).toMatchObject({ origin: 'periodic', cause: 'periodic' });
    expect(r.completed[0]!.origin).toBe('periodic');
    expect(Number.isNaN(r.completed[0]!.requestedAt)).toBe(true);
    expect(p.f.commands(1)).toEqual(['qmp_capabilities']);
    const s = r.ctl.stats();
    expect(s).toMatchObject({ requested: 0, periodic: 1, started: 1, completed: 1 });
    expect(s.timings.startToComplete.count).toBe(1);
    expect(s.timings.requestToComplete.count).toBe(0);
  });

  it('a request during a periodic checkpoint is coalesced into it', async () => {
    const p = await primary();
    const r = await rig(p);
    const done = p.periodic(40);
    await until(() => r.ctl.state === 'in-progress');
    r.ctl.request('mismatch');
    await done;
    await until(() => r.completed.length === 1);
    expect(p.sets).toEqual([]);
    expect(r.completed[0]).toMatchObject({ origin: 'periodic', coalesced: 1 });
    expect(r.ctl.stats()).toMatchObject({ requested: 1, coalesced: 1, sent: 0, periodic: 1 });
  });
});

describe('QmpCheckpointController: failures', () => {
  it('STOP without RESUME: times out → failed; a later RESUME still completes it as "late"', async () => {
    const p = await primary({ resumeAfter: 'never' });
    const r = await rig(p, { completeTimeoutMs: 80 });
    const t0 = performance.now();
    r.ctl.request('x');
    await until(() => r.failed.length === 1);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(75);
    const [cp, reason, err] = r.failed[0]!;
    expect(reason).toBe('timeout');
    expect(err?.message).toMatch(/no RESUME within 80 ms/);
    expect(cp.failure).toBe('timeout');
    expect(Number.isNaN(cp.startedAt)).toBe(false);
    expect(r.completed).toHaveLength(0);
    expect(r.ctl.state).toBe('idle');
    p.f.event('RESUME');
    await until(() => r.completed.length === 1);
    expect(r.completed[0]!.origin).toBe('late');
    expect(r.ctl.stats()).toMatchObject({ failed: 1, late: 1, completed: 1 });
    expect(r.ctl.stats().failures.timeout).toBe(1);
  });

  it('no STOP at all (not in COLO: the set only stores the value) → start timeout', async () => {
    const p = await primary({ colo: false });
    const r = await rig(p, { startTimeoutMs: 60 });
    r.ctl.request('x');
    await until(() => r.failed.length === 1);
    expect(r.failed[0]![1]).toBe('timeout');
    expect(r.failed[0]![2]?.message).toMatch(/no STOP/);
    expect(r.started).toHaveLength(0);
    // A stray RESUME (e.g. `cont`) is no completion.
    p.f.event('RESUME');
    await sleep(20);
    expect(r.completed).toHaveLength(0);
    expect(r.ctl.stats().strayResumes).toBe(1);
  });

  it('COLO_EXIT fails the pending checkpoint; later requests fail at once until COLO is entered again', async () => {
    const p = await primary({ resumeAfter: 'never' });
    const r = await rig(p);
    const exits: ColoExit[] = [];
    r.ctl.onColoExit((e) => exits.push(e));
    r.ctl.request('x');
    await until(() => r.ctl.state === 'in-progress');
    p.f.event('COLO_EXIT', { mode: 'primary', reason: 'request' });
    await until(() => r.failed.length === 1);
    expect(r.failed[0]![1]).toBe('colo-exit');
    expect(exits).toEqual([{ mode: 'primary', reason: 'request' }]);
    expect(r.ctl.coloActive).toBe(false);
    // The primary now runs alone: its RESUME is no checkpoint.
    p.f.event('RESUME');
    const setsBefore = p.sets.length;
    r.ctl.request('y');
    expect(r.failed).toHaveLength(1); // deferred, never synchronous
    await until(() => r.failed.length === 2);
    expect(r.failed[1]![1]).toBe('colo-exit');
    expect(p.sets.length).toBe(setsBefore);
    expect(r.completed).toHaveLength(0);
    // Re-protection: MIGRATION status colo re-arms the trigger.
    p.f.event('MIGRATION', { status: 'colo' });
    await until(() => r.ctl.coloActive);
    p.resumeAfter = 20;
    r.ctl.request('z');
    await until(() => r.completed.length === 1);
    expect(r.ctl.stats().failures['colo-exit']).toBe(2);
  });

  it('an error reply to migrate-set-parameters → request-failed with the QmpError', async () => {
    const p = await primary();
    p.setError = { class: 'GenericError', desc: 'Parameter x-checkpoint-delay expects uint32' };
    const r = await rig(p);
    r.ctl.request('x');
    await until(() => r.failed.length === 1);
    const [, reason, err] = r.failed[0]!;
    expect(reason).toBe('request-failed');
    expect(err).toBeInstanceOf(QmpError);
    expect((err as QmpError).errorClass).toBe('GenericError');
  });

  it('QMP connection lost mid-checkpoint → disconnected; after the reconnect requests work again', async () => {
    const p = await primary({ resumeAfter: 'never' });
    const r = await rig(p);
    r.ctl.request('x');
    await until(() => r.ctl.state === 'in-progress');
    p.f.drop();
    await until(() => r.failed.length === 1);
    expect(r.failed[0]![1]).toBe('disconnected');
    await r.qmp.whenReady(2000);
    p.resumeAfter = 10;
    r.ctl.request('y');
    await until(() => r.completed.length === 1);
    expect(r.completed[0]!.cause).toBe('y');
  });

  it('a request while QMP is down fails as disconnected', async () => {
    const p = await primary();
    const r = await rig(p);
    await p.f.stopListening();
    await until(() => r.qmp.state !== 'ready');
    r.ctl.request('x');
    await until(() => r.failed.length === 1);
    expect(r.failed[0]![1]).toBe('disconnected');
  });

  it('close() fails the pending checkpoint with "closed"', async () => {
    const p = await primary({ resumeAfter: 'never' });
    const r = await rig(p);
    r.ctl.request('x');
    await until(() => r.ctl.state === 'in-progress');
    await r.ctl.close();
    expect(r.failed.map((f) => f[1])).toEqual(['closed']);
  });
});

describe('QmpCheckpointController: status and failover', () => {
  it('queryColoStatus narrows the reply; checkpointDelay reads the parameter', async () => {
    const p = await primary({ delay: 4321 });
    p.f.handlers['query-colo-status'] = (_a, ctx) => ctx.reply({ return: { 'last-mode': 'none', mode: 'primary', reason: 'none' } });
    const r = await rig(p);
    expect(await r.ctl.queryColoStatus()).toEqual({ mode: 'primary', lastMode: 'none', reason: 'none' });
    expect(await r.ctl.checkpointDelay()).toBe(4321);
    p.f.handlers['query-migrate-parameters'] = (_a, ctx) => ctx.reply({ return: { 'max-bandwidth': 1 } });
    await expect(r.ctl.checkpointDelay()).rejects.toMatchObject({ code: 'ERR_QMP_PROTOCOL' });
  });

  it('failover: yank the migration out-of-band, then x-colo-lost-heartbeat; a refused yank is tolerated', async () => {
    const p = await primary({ resumeAfter: 'never' });
    const seen: Json[] = [];
    p.f.handlers['yank'] = (a, ctx) => {
      seen.push(a ?? {});
      ctx.reply({ error: { class: 'DeviceNotFound', desc: 'Instance not found' } });
    };
    p.f.handlers['x-colo-lost-heartbeat'] = (_a, ctx) => {
      ctx.reply({ return: {} });
      ctx.event('COLO_EXIT', { mode: 'primary', reason: 'request' });
    };
    const r = await rig(p);
    r.ctl.request('x');
    await until(() => r.ctl.state === 'in-progress');
    const res = await r.ctl.failover();
    expect(res.yankMode).toBe('oob');
    expect(res.yanked).toBe(false);
    expect(res.yankError?.errorClass).toBe('DeviceNotFound');
    expect(seen).toEqual([{ instances: [{ type: 'migration' }] }]);
    const msgs = p.f.received.map((x) => x.msg);
    const iy = msgs.findIndex((m) => m['exec-oob'] === 'yank');
    const ih = msgs.findIndex((m) => m['execute'] === 'x-colo-lost-heartbeat');
    expect(iy).toBeGreaterThan(0);
    expect(ih).toBeGreaterThan(iy);
    await until(() => r.failed.length === 1);
    expect(r.failed[0]![1]).toBe('colo-exit');
  });

  it('failover propagates an x-colo-lost-heartbeat error', async () => {
    const p = await primary();
    p.f.handlers['yank'] = (_a, ctx) => ctx.reply({ return: {} });
    p.f.handlers['x-colo-lost-heartbeat'] = (_a, ctx) => ctx.reply({ error: { class: 'GenericError', desc: "The feature 'colo' is not enabled" } });
    const r = await rig(p);
    await expect(r.ctl.failover()).rejects.toMatchObject({ code: 'ERR_QMP', desc: "The feature 'colo' is not enabled" });
  });
});
