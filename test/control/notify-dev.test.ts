/**
 * NotifyDevController (our compare's side of the Xen notify_dev protocol, reference §2.2)
 * against a scripted peer over real unix sockets, with vnet_hdr_support off and on. Expected
 * bytes are built by hand from the layout (notify-peer.ts), not with src/wire.
 * ShadowCheckpointController is checked at the end.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Checkpoint, CheckpointFailure } from '../../src/control/checkpoint.js';
import { NotifyDevController } from '../../src/control/notify-dev.js';
import { encodeNotifyMessage } from '../../src/control/notify-protocol.js';
import type { NotifyDevOptions } from '../../src/control/notify-dev.js';
import { ShadowCheckpointController } from '../../src/control/shadow-checkpoint.js';
import { createLogger } from '../../src/util/log.js';
import { sleep, until } from './fake-qmp.js';
import { NotifyPeer, frameMsg } from './notify-peer.js';

let dir = '';
let n = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'colo-notify-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const silent = createLogger({ level: 'silent' });
const sockPath = (): string => join(dir, `n${n++}.sock`);

interface Rig {
  ctl: NotifyDevController;
  peer: NotifyPeer;
  started: Checkpoint[];
  completed: Checkpoint[];
  failed: Array<[Checkpoint, CheckpointFailure]>;
  logLines: string[];
}

/** Peer listens, controller connects (the usual QEMU layout is the other way; both work). */
async function rig(opts: Partial<NotifyDevOptions> = {}): Promise<Rig> {
  const path = sockPath();
  const peer = await NotifyPeer.listen(path);
  const logLines: string[] = [];
  const ctl = new NotifyDevController({
    endpoint: `unix:${path}`,
    reconnectMs: 20,
    logger: createLogger({ level: 'debug', write: (l) => logLines.push(l) }),
    ...opts,
  });
  const r: Rig = { ctl, peer, started: [], completed: [], failed: [], logLines };
  ctl.onStarted((cp) => r.started.push(cp));
  ctl.onCompleted((cp) => r.completed.push(cp));
  ctl.onFailed((cp, reason) => r.failed.push([cp, reason]));
  cleanups.push(async () => {
    await ctl.close();
    await peer.close();
  });
  await ctl.start();
  await until(() => peer.connected && ctl.connected);
  return r;
}

const DO_CHECKPOINT = Buffer.from('0000000d' + Buffer.from('DO_CHECKPOINT').toString('hex'), 'hex');

for (const vnet of [false, true]) {
  describe(`NotifyDevController, vnet_hdr_support=${vnet ? 'on' : 'off'}`, () => {
    it('sends DO_CHECKPOINT as [BE32 13]["DO_CHECKPOINT"], never with a vnet field', async () => {
      const r = await rig({ vnetHdrSupport: vnet });
      r.ctl.request('mismatch');
      expect(r.ctl.state).toBe('requested');
      await until(() => r.peer.rx.length >= 17);
      expect(r.peer.rx).toEqual(DO_CHECKPOINT);
      expect(encodeNotifyMessage('DO_CHECKPOINT')).toEqual(DO_CHECKPOINT);
      expect(r.ctl.state).toBe('in-progress');
      expect(r.started).toHaveLength(1);
    });

    it('answers COLO_USERSPACE_PROXY_INIT (framed as QEMU expects for this mode) with COLO_COMPARE_GET_XEN_INIT', async () => {
      const r = await rig({ vnetHdrSupport: vnet });
      r.peer.write(frameMsg('COLO_USERSPACE_PROXY_INIT', vnet));
      await until(() => r.peer.rx.length > 0);
      await sleep(10);
      expect(r.peer.rx).toEqual(frameMsg('COLO_COMPARE_GET_XEN_INIT')); // no vnet field, ever
      expect(r.ctl.stats().initRequests).toBe(1);
    });

    it('COLO_CHECKPOINT completes the pending checkpoint; coalesced requests send nothing more', async () => {
      const r = await rig({ vnetHdrSupport: vnet });
      r.ctl.request('a');
      r.ctl.request('b');
      await until(() => r.ctl.state === 'in-progress');
      r.ctl.request('c');
      await sleep(10);
      expect(r.peer.messages()).toEqual(['DO_CHECKPOINT']);
      expect(r.completed).toHaveLength(0);
      r.peer.write(frameMsg('COLO_CHECKPOINT', vnet));
      await until(() => r.completed.length === 1);
      expect(r.completed[0]).toMatchObject({ origin: 'requested', cause: 'a', coalesced: 2 });
      expect(r.ctl.state).toBe('idle');
      r.ctl.request('d');
      await until(() => r.peer.messages().length === 2);
      expect(r.ctl.stats()).toMatchObject({ requested: 4, coalesced: 2, sent: 2, completed: 1 });
    });

    it('parses messages split byte by byte, and several in one write', async () => {
      const r = await rig({ vnetHdrSupport: vnet });
      r.ctl.request('a');
      await until(() => r.ctl.state === 'in-progress');
      await r.peer.writeSlowly(Buffer.concat([frameMsg('COLO_USERSPACE_PROXY_INIT', vnet), frameMsg('COLO_CHECKPOINT', vnet)]));
      await until(() => r.completed.length === 1);
      expect(r.peer.messages()).toEqual(['DO_CHECKPOINT', 'COLO_COMPARE_GET_XEN_INIT']);
      r.peer.write(Buffer.concat([frameMsg('COLO_CHECKPOINT', vnet), frameMsg('COLO_CHECKPOINT', vnet)]));
      await until(() => r.completed.length === 3);
      expect(r.completed.map((c) => c.origin)).toEqual(['requested', 'periodic', 'periodic']);
    });

    it('an unrequested COLO_CHECKPOINT is a periodic checkpoint (started + completed)', async () => {
      const r = await rig({ vnetHdrSupport: vnet });
      r.peer.write(frameMsg('COLO_CHECKPOINT', vnet));
      await until(() => r.completed.length === 1);
      expect(r.started).toHaveLength(1);
      expect(r.completed[0]!.origin).toBe('periodic');
      expect(r.ctl.stats()).toMatchObject({ periodic: 1, requested: 0 });
      expect(r.peer.rx.length).toBe(0);
    });

    it('unknown commands and near-misses are logged and counted, not acted on', async () => {
      const r = await rig({ vnetHdrSupport: vnet });
      r.ctl.request('a');
      await until(() => r.ctl.state === 'in-progress');
      for (const m of ['HELLO', 'COLO_CHECKPOINT\0', 'colo_checkpoint', 'COLO_CHECKPOIN', '']) r.peer.write(frameMsg(m, vnet));
      r.peer.write(frameMsg('x'.repeat(1024), vnet)); // longest accepted
      await until(() => r.ctl.stats().unknownCommands === 5);
      expect(r.completed).toHaveLength(0);
      expect(r.ctl.state).toBe('in-progress');
      // The empty frame is skipped by the decoder (QEMU never sends one).
      expect(r.logLines.filter((l) => l.includes('unsupported instruction'))).toHaveLength(5);
      expect(r.logLines.some((l) => l.includes('"message":"HELLO"'))).toBe(true);
    });

    it('a message over 1 KiB is a framing error: connection reset, then reconnected', async () => {
      const r = await rig({ vnetHdrSupport: vnet });
      r.peer.write(frameMsg('y'.repeat(1025), vnet));
      await until(() => r.ctl.stats().framingErrors === 1);
      await until(() => r.peer.connections === 2 && r.ctl.connected);
      r.peer.write(frameMsg('COLO_USERSPACE_PROXY_INIT', vnet));
      await until(() => r.peer.messages().length === 1);
      expect(r.peer.messages()).toEqual(['COLO_COMPARE_GET_XEN_INIT']);
    });

    it('no COLO_CHECKPOINT → timeout → failed (held packets stay held)', async () => {
      const r = await rig({ vnetHdrSupport: vnet, completeTimeoutMs: 60 });
      r.ctl.request('a');
      await until(() => r.failed.length === 1);
      expect(r.failed[0]![1]).toBe('timeout');
      expect(r.completed).toHaveLength(0);
      expect(r.ctl.state).toBe('idle');
    });
  });
}

describe('NotifyDevController: the vnet asymmetry', () => {
  it("with vnet on and receiveVnet 'qemu', a peer framing without the vnet field breaks the stream (as with QEMU)", async () => {
    const r = await rig({ vnetHdrSupport: true });
    expect(r.ctl.receivesVnetField).toBe(true);
    // "COLO" read as vnet_hdr_len 0x434f4c4f > 20: framing error, connection reset.
    r.peer.write(frameMsg('COLO_USERSPACE_PROXY_INIT', false));
    await until(() => r.ctl.stats().framingErrors === 1);
    expect(r.ctl.stats().initRequests).toBe(0);
  });

  it("receiveVnet 'never' uses plain framing both ways even with vnet on", async () => {
    const r = await rig({ vnetHdrSupport: true, receiveVnet: 'never' });
    expect(r.ctl.receivesVnetField).toBe(false);
    r.peer.write(frameMsg('COLO_USERSPACE_PROXY_INIT', false));
    await until(() => r.peer.messages().length === 1);
    expect(r.peer.messages()).toEqual(['COLO_COMPARE_GET_XEN_INIT']);
  });

  it('vnet header bytes (vnet_hdr_len > 0) are skipped before matching', async () => {
    const r = await rig({ vnetHdrSupport: true });
    r.peer.write(frameMsg('\x01\x02\x03\x04COLO_USERSPACE_PROXY_INIT', true, 4));
    await until(() => r.peer.messages().length === 1);
    expect(r.peer.messages()).toEqual(['COLO_COMPARE_GET_XEN_INIT']);
  });
});

describe('NotifyDevController: connection handling', () => {
  it('a request made while no peer is connected is sent once one connects', async () => {
    const path = sockPath();
    const ctl = new NotifyDevController({ endpoint: `unix:${path}`, reconnectMs: 10, logger: silent });
    cleanups.push(() => ctl.close());
    await ctl.start();
    ctl.request('early');
    await sleep(30);
    expect(ctl.state).toBe('requested');
    const peer = await NotifyPeer.listen(path);
    cleanups.push(() => peer.close());
    await until(() => peer.rx.length === 17);
    expect(peer.rx).toEqual(DO_CHECKPOINT);
    expect(ctl.state).toBe('in-progress');
  });

  it('...and fails by the start timeout if none connects', async () => {
    const ctl = new NotifyDevController({ endpoint: `unix:${sockPath()}`, reconnectMs: 10, startTimeoutMs: 50, logger: silent });
    cleanups.push(() => ctl.close());
    const failed: CheckpointFailure[] = [];
    ctl.onFailed((_c, reason) => failed.push(reason));
    await ctl.start();
    ctl.request('x');
    await until(() => failed.length === 1);
    expect(failed).toEqual(['timeout']);
  });

  it('peer lost while in progress → failed "disconnected"; the client reconnects', async () => {
    const r = await rig();
    r.ctl.request('a');
    await until(() => r.ctl.state === 'in-progress');
    r.peer.drop();
    await until(() => r.failed.length === 1);
    expect(r.failed[0]![1]).toBe('disconnected');
    await until(() => r.peer.connections === 2 && r.ctl.connected);
    r.ctl.request('b');
    await until(() => r.peer.messages().length === 1);
  });

  it('as a server (",server"): the peer connects to us; a half message from a dropped peer does not leak', async () => {
    const path = sockPath();
    const ctl = new NotifyDevController({ endpoint: `unix:${path},server`, logger: silent });
    const completed: Checkpoint[] = [];
    ctl.onCompleted((cp) => completed.push(cp));
    cleanups.push(() => ctl.close());
    await ctl.start();
    const p1 = await NotifyPeer.connect(path);
    await until(() => ctl.connected);
    p1.write(frameMsg('COLO_CHECKPOINT').subarray(0, 7)); // partial
    await sleep(10);
    await p1.close();
    await until(() => !ctl.connected);
    const p2 = await NotifyPeer.connect(path);
    cleanups.push(() => p2.close());
    await until(() => ctl.connected);
    p2.write(frameMsg('COLO_USERSPACE_PROXY_INIT'));
    await until(() => p2.messages().length === 1);
    expect(p2.messages()).toEqual(['COLO_COMPARE_GET_XEN_INIT']);
    expect(completed).toHaveLength(0);
  });
});

describe('ShadowCheckpointController', () => {
  it('completes every request on the next microtask, coalescing within the same run', async () => {
    const ctl = new ShadowCheckpointController({ logger: silent });
    const order: string[] = [];
    ctl.onStarted((cp) => order.push(`started#${cp.id}`));
    ctl.onCompleted((cp) => order.push(`completed#${cp.id}:${cp.coalesced}`));
    ctl.request('a');
    ctl.request('b');
    expect(ctl.state).toBe('requested');
    expect(order).toEqual([]);
    await Promise.resolve();
    expect(order).toEqual(['started#1', 'completed#1:1']);
    expect(ctl.state).toBe('idle');
    ctl.request('c');
    await Promise.resolve();
    expect(order).toEqual(['started#1', 'completed#1:1', 'started#2', 'completed#2:0']);
    expect(ctl.stats()).toMatchObject({ requested: 3, coalesced: 1, sent: 2, completed: 2, failed: 0, periodic: 0 });
    await ctl.close();
    const failed: CheckpointFailure[] = [];
    ctl.onFailed((_c, reason) => failed.push(reason));
    ctl.request('after-close');
    await Promise.resolve();
    expect(failed).toEqual(['closed']);
  });
});
