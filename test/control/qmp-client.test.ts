/**
 * QmpClient against a scripted QMP server (fake-qmp.ts): negotiation, ids, errors, events,
 * timeouts, disconnects, reconnect with backoff, line limits and malformed input.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { QmpClient, QmpError } from '../../src/control/qmp-client.js';
import type { QmpClientOptions } from '../../src/control/qmp-client.js';
import { createLogger } from '../../src/util/log.js';
import { FakeQmp, sleep, until } from './fake-qmp.js';
import type { FakeQmpOptions, Json } from './fake-qmp.js';

const silent = createLogger({ level: 'silent' });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fake(opts: FakeQmpOptions = {}): Promise<FakeQmp> {
  const f = await FakeQmp.start(opts);
  cleanups.push(() => f.close());
  return f;
}

function client(endpoint: string, extra: Partial<QmpClientOptions> = {}): QmpClient {
  const c = new QmpClient({ endpoint, logger: silent, backoff: { initialMs: 10, maxMs: 40 }, ...extra });
  cleanups.push(() => c.close());
  return c;
}

async function rejection(p: Promise<unknown>): Promise<QmpError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof QmpError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

describe('QmpClient: negotiation', () => {
  it('reads the greeting and enables oob when offered (capabilities first, with an id)', async () => {
    const f = await fake({ capabilities: ['oob'] });
    const c = client(f.endpoint);
    const g = await c.connect(2000);
    expect(g.version).toEqual({ major: 7, minor: 2, micro: 22, package: 'fake 7.2' });
    expect(g.capabilities).toEqual(['oob']);
    expect(c.state).toBe('ready');
    expect(c.oobEnabled).toBe(true);
    expect(f.received[0]!.msg).toEqual({ execute: 'qmp_capabilities', arguments: { enable: ['oob'] }, id: expect.any(Number) });
  });

  it('sends bare qmp_capabilities when oob is not offered, or not wanted', async () => {
    const f = await fake({ capabilities: [] });
    const c = client(f.endpoint);
    await c.connect(2000);
    expect(f.received[0]!.msg['arguments']).toBeUndefined();
    expect(c.oobEnabled).toBe(false);
    const f2 = await fake({ capabilities: ['oob'] });
    const c2 = client(f2.endpoint, { oob: false });
    await c2.connect(2000);
    expect(f2.received[0]!.msg['arguments']).toBeUndefined();
    expect(c2.oobEnabled).toBe(false);
  });

  it('works over TCP too', async () => {
    const f = await fake({ transport: 'tcp', handlers: { 'query-status': (_a, ctx) => ctx.reply({ return: { status: 'running', running: true } }) } });
    const c = client(f.endpoint);
    await c.connect(2000);
    expect(await c.execute('query-status')).toEqual({ status: 'running', running: true });
  });

  it('times out a server that never greets, and retries', async () => {
    const f = await fake({ noGreeting: true });
    const c = client(f.endpoint, { handshakeTimeoutMs: 50 });
    const e = await rejection(c.connect(400));
    expect(e.code).toBe('ERR_QMP_TIMEOUT');
    expect(f.connections).toBeGreaterThanOrEqual(2); // handshake timeout → reset → reconnect
    expect(c.stats().handshakeFailures).toBeGreaterThanOrEqual(1);
  });

  it('treats a wrong greeting as a protocol error', async () => {
    const f = await fake({ greetingLine: '{"hello": 1}' });
    const c = client(f.endpoint, { reconnect: false });
    const e = await rejection(c.connect(1000));
    expect(e.code).toBe('ERR_QMP_DISCONNECTED');
    expect((e.cause as QmpError).code).toBe('ERR_QMP_PROTOCOL');
    expect(c.state).toBe('disconnected');
    expect(c.stats().protocolErrors).toBe(1);
  });

  it('without reconnect, a refused connection rejects connect()', async () => {
    const c = client('unix:/nonexistent/dir/qmp.sock', { reconnect: false });
    const e = await rejection(c.connect(1000));
    expect(e.code).toBe('ERR_QMP_DISCONNECTED');
    expect(c.stats().connectFailures).toBe(1);
  });
});

describe('QmpClient: commands', () => {
  it('matches replies by id, even answered out of order', async () => {
    const held: Array<() => void> = [];
    const f = await fake({
      handlers: {
        echo: (a, ctx) => {
          held.push(() => ctx.reply({ return: { echoed: a?.['v'] } }));
          if (held.length === 3) for (const r of held.splice(0).reverse()) r();
        },
      },
    });
    const c = client(f.endpoint);
    await c.connect(2000);
    const ps = [c.execute('echo', { v: 1 }), c.execute('echo', { v: 2 }), c.execute('echo', { v: 3 })];
    expect(await Promise.all(ps)).toEqual([{ echoed: 1 }, { echoed: 2 }, { echoed: 3 }]);
    const ids = f.received.filter((r) => r.msg['execute'] === 'echo').map((r) => r.msg['id']);
    expect(new Set(ids).size).toBe(3);
  });

  it('an error reply becomes QmpError ERR_QMP with class, desc and command', async () => {
    const f = await fake();
    const c = client(f.endpoint);
    await c.connect(2000);
    const e = await rejection(c.execute('no-such-command'));
    expect(e).toBeInstanceOf(QmpError);
    expect(e.code).toBe('ERR_QMP');
    expect(e.errorClass).toBe('CommandNotFound');
    expect(e.desc).toBe('The command no-such-command has not been found');
    expect(e.command).toBe('no-such-command');
    expect(c.stats().errors).toBe(1);
  });

  it('matches an id-less reply to the oldest pending command', async () => {
    const f = await fake({ handlers: { a: () => {}, b: () => {} } });
    const c = client(f.endpoint);
    await c.connect(2000);
    const pa = c.execute('a');
    const pb = c.execute('b');
    await until(() => f.commands().includes('b'));
    f.writeRaw('{"error": {"class": "GenericError", "desc": "JSON parse error"}}\r\n');
    const e = await rejection(pa);
    expect(e.command).toBe('a');
    f.writeRaw(`{"return": 7, "id": ${String(f.received.find((r) => r.msg['execute'] === 'b')!.msg['id'])}}\r\n`);
    expect(await pb).toBe(7);
  });

  it('times a command out, ignores the late reply, and keeps working', async () => {
    let late: (() => void) | null = null;
    const f = await fake({
      handlers: {
        slow: (_a, ctx) => {
          late = () => ctx.reply({ return: 'late' });
        },
        fast: (_a, ctx) => ctx.reply({ return: 'fast' }),
      },
    });
    const c = client(f.endpoint, { commandTimeoutMs: 5000 });
    await c.connect(2000);
    const t0 = performance.now();
    const e = await rejection(c.execute('slow', undefined, { timeoutMs: 60 }));
    expect(e.code).toBe('ERR_QMP_TIMEOUT');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    late!();
    expect(await c.execute('fast')).toBe('fast');
    expect(c.stats()).toMatchObject({ timeouts: 1, lateReplies: 1 });
    expect(c.state).toBe('ready');
  });

  it('exec-oob is sent as such when oob is on, refused when it is off', async () => {
    const f = await fake({ handlers: { yank: (_a, ctx) => ctx.reply({ return: {} }) } });
    const c = client(f.endpoint);
    await c.connect(2000);
    await c.executeOob('yank', { instances: [{ type: 'migration' }] });
    const m = f.received.at(-1)!.msg;
    expect(m).toEqual({ 'exec-oob': 'yank', arguments: { instances: [{ type: 'migration' }] }, id: expect.any(Number) });
    const f2 = await fake({ capabilities: [] });
    const c2 = client(f2.endpoint);
    await c2.connect(2000);
    await expect(c2.executeOob('yank')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('refuses commands while not connected and after close, at once', async () => {
    const f = await fake();
    const c = client(f.endpoint);
    const e0 = await rejection(c.execute('query-status'));
    expect(e0.code).toBe('ERR_QMP_DISCONNECTED');
    await c.connect(2000);
    await c.close();
    const e1 = await rejection(c.execute('query-status'));
    expect(e1.code).toBe('ERR_QMP_DISCONNECTED');
    const n = f.connections;
    await sleep(60);
    expect(f.connections).toBe(n); // no reconnect after close
  });

  it('close() fails pending commands', async () => {
    const f = await fake({ handlers: { hang: () => {} } });
    const c = client(f.endpoint);
    await c.connect(2000);
    const p = rejection(c.execute('hang'));
    await until(() => f.commands().includes('hang'));
    await c.close();
    expect((await p).code).toBe('ERR_QMP_DISCONNECTED');
  });
});

describe('QmpClient: events', () => {
  it('delivers events in order with QEMU timestamps and data', async () => {
    const f = await fake();
    const c = client(f.endpoint);
    const got: Array<[string, Json, number]> = [];
    c.onEvent((n, d, t) => got.push([n, d, t]));
    await c.connect(2000);
    f.writeRaw('{"timestamp": {"seconds": 1700000000, "microseconds": 250000}, "event": "STOP"}\r\n');
    f.writeRaw('{"timestamp": {"seconds": 1700000000, "microseconds": 260500}, "event": "MIGRATION_PASS", "data": {"pass": 3}}\r\n');
    f.writeRaw('{"timestamp": {"seconds": 1700000001, "microseconds": 0}, "event": "RESUME"}\r\n');
    await until(() => got.length === 3);
    expect(got).toEqual([
      ['STOP', {}, 1_700_000_000_250],
      ['MIGRATION_PASS', { pass: 3 }, 1_700_000_000_260.5],
      ['RESUME', {}, 1_700_000_001_000],
    ]);
    expect(c.stats().events).toBe(3);
  });

  it('parses messages split anywhere and several per chunk (UTF-8 split too)', async () => {
    const f = await fake();
    const c = client(f.endpoint);
    const got: Array<[string, Json]> = [];
    c.onEvent((n, d) => got.push([n, d]));
    await c.connect(2000);
    const text =
      '{"event": "A", "data": {"s": "é€😀"}, "timestamp": {"seconds": 1, "microseconds": 0}}\r\n' +
      '{"event": "B", "timestamp": {"seconds": 1, "microseconds": 0}}\n\r\n' +
      '{"event": "C", "timestamp": {"seconds": 1, "microseconds": 0}}\r\n';
    const bytes = Buffer.from(text, 'utf8');
    for (let i = 0; i < bytes.length; i++) {
      f.writeRaw(bytes.subarray(i, i + 1));
      if (i % 7 === 0) await sleep(0);
    }
    await until(() => got.length === 3);
    expect(got).toEqual([
      ['A', { s: 'é€😀' }],
      ['B', {}],
      ['C', {}],
    ]);
  });

  it('a throwing listener does not break the stream', async () => {
    const f = await fake();
    const c = client(f.endpoint);
    const got: string[] = [];
    c.onEvent(() => {
      throw new Error('boom');
    });
    c.onEvent((n) => got.push(n));
    await c.connect(2000);
    f.event('X');
    f.event('Y');
    await until(() => got.length === 2);
    expect(c.stats().listenerErrors).toBe(2);
    expect(c.state).toBe('ready');
  });
});

describe('QmpClient: disconnects and protocol errors', () => {
  it('a disconnect mid-command fails it with ERR_QMP_DISCONNECTED; the client reconnects, re-negotiates and keeps its listeners', async () => {
    const f = await fake({
      handlers: {
        die: (_a, ctx) => ctx.drop(),
        ok: (_a, ctx) => ctx.reply({ return: ctx.conn }),
      },
    });
    const c = client(f.endpoint);
    const events: string[] = [];
    const connected: boolean[] = [];
    const lost: QmpError[] = [];
    c.onEvent((n) => events.push(n));
    c.onConnected((_g, re) => connected.push(re));
    c.onDisconnected((e) => lost.push(e));
    await c.connect(2000);
    const e = await rejection(c.execute('die'));
    expect(e.code).toBe('ERR_QMP_DISCONNECTED');
    expect(e.command).toBe('die');
    await c.whenReady(2000);
    expect(await c.execute('ok')).toBe(2);
    expect(f.commands(2)[0]).toBe('qmp_capabilities');
    f.event('AFTER_RECONNECT');
    await until(() => events.length === 1);
    expect(events).toEqual(['AFTER_RECONNECT']);
    expect(connected).toEqual([false, true]);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.code).toBe('ERR_QMP_DISCONNECTED');
    expect(c.stats()).toMatchObject({ connects: 2, disconnects: 1 });
  });

  it('an over-long line resets the connection (pending fails, cause ERR_QMP_PROTOCOL), then reconnects', async () => {
    const f = await fake({ handlers: { hang: () => {} } });
    const c = client(f.endpoint, { maxLineBytes: 1024 });
    const lost: QmpError[] = [];
    c.onDisconnected((e) => lost.push(e));
    await c.connect(2000);
    const p = c.execute('hang');
    await until(() => f.commands().includes('hang'));
    f.writeRaw('{"event": "BIG", "data": {"x": "' + 'a'.repeat(2000)); // no newline: over the limit
    const e = await rejection(p);
    expect(e.code).toBe('ERR_QMP_DISCONNECTED');
    expect((e.cause as QmpError).code).toBe('ERR_QMP_PROTOCOL');
    await until(() => lost.length === 1);
    expect((lost[0]!.cause as QmpError).code).toBe('ERR_QMP_PROTOCOL');
    await c.whenReady(2000);
    expect(f.connections).toBe(2);
    expect(c.stats().protocolErrors).toBe(1);
  });

  it('a complete line over the limit is refused too; one just at the limit is accepted', async () => {
    const f = await fake();
    const c = client(f.endpoint, { maxLineBytes: 200 });
    const got: Json[] = [];
    c.onEvent((_n, d) => got.push(d));
    await c.connect(2000);
    const head = '{"event":"E","data":{"x":"';
    const tail = '"}}';
    const exact = head + 'a'.repeat(200 - head.length - tail.length) + tail;
    expect(exact.length).toBe(200);
    f.writeRaw(exact + '\n');
    await until(() => got.length === 1);
    f.writeRaw(head + 'a'.repeat(200 - head.length - tail.length + 1) + tail + '\n');
    await until(() => c.stats().protocolErrors === 1);
    await c.whenReady(2000);
    expect(f.connections).toBe(2);
  });

  it('malformed JSON and non-object messages reset the connection cleanly', async () => {
    const f = await fake({ handlers: { ok: (_a, ctx) => ctx.reply({ return: 1 }) } });
    const c = client(f.endpoint);
    await c.connect(2000);
    f.writeRaw('{"event": "X", oops}\r\n');
    await until(() => c.stats().protocolErrors === 1);
    await c.whenReady(2000);
    expect(await c.execute('ok')).toBe(1);
    f.writeRaw('[1,2,3]\r\n');
    await until(() => c.stats().protocolErrors === 2);
    await c.whenReady(2000);
    expect(await c.execute('ok')).toBe(1);
    expect(f.connections).toBe(3);
  });

  it('reconnects with growing backoff while the server is away, and resets the backoff after success', async () => {
    const f = await fake();
    const c = client(f.endpoint, { backoff: { initialMs: 20, maxMs: 5000, factor: 2 } });
    await c.connect(2000);
    const lost = new Promise<void>((r) => c.onDisconnected(() => r()));
    await f.stopListening();
    await lost;
    // Attempts 20, 60, 140, 300 ms after the drop all fail; the next waits 320 ms (and the
    // one after that would wait 640 ms).
    await until(() => c.stats().connectFailures >= 4, 3000, '4 failed attempts');
    await f.listen();
    await c.whenReady(3000);
    expect(c.stats().connects).toBe(2);
    // After success the delay is back to 20 ms: a drop reconnects quickly (not after >= 640 ms).
    const t0 = performance.now();
    f.drop();
    await until(() => c.state !== 'ready');
    await c.whenReady(2000);
    expect(performance.now() - t0).toBeLessThan(400);
    expect(c.stats().connects).toBe(3);
  });

  it('backoff delays grow between attempts (measured)', async () => {
    const c = client('unix:/nonexistent/dir/qmp.sock', { backoff: { initialMs: 15, maxMs: 120, factor: 2 } });
    c.start();
    const t0 = performance.now();
    await until(() => c.stats().connectFailures >= 5, 3000);
    // Attempts at 0, 15, 45, 105, 225 ms: the 5th failure cannot come before ~225 ms.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(200);
    expect(performance.now() - t0).toBeLessThan(1500);
  });
});
