/**
 * The control plane against real QEMU 7.2 (Debian), guest-less (`-machine none`):
 *
 * 1. QmpClient / QmpCheckpointController on a second QMP monitor of a QEMU instance. The
 *    helper's own minimal QMP client (test/helpers/qemu.ts, on the first monitor) is the
 *    independent observer: it drives `stop`/`cont` and reads back parameters.
 * 2. NotifyDevController vs QEMU's own colo-compare (lab step 4: iothread + three socket
 *    chardevs + notify_dev). The same scripted peer talks to QEMU's compare and to ours; what
 *    each sends back must be byte-identical: the INIT reply, and DO_CHECKPOINT (QEMU's caused
 *    by two differing TCP frames, ours by `request()`). QEMU's reaction to COLO_CHECKPOINT
 *    (release of the held primary frame) shows it is the completion we treat it as.
 *
 * Real COLO checkpoints need a full COLO pair (another test area); here we check what any
 * QEMU does. Each instance runs for well under a few seconds.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { Checkpoint, CheckpointFailure } from '../../src/control/checkpoint.js';
import { NotifyDevController } from '../../src/control/notify-dev.js';
import { QmpCheckpointController } from '../../src/control/qmp-checkpoint.js';
import { QmpClient, QmpError } from '../../src/control/qmp-client.js';
import { createLogger } from '../../src/util/log.js';
import { QemuInstance, QEMU_BIN, QEMU_MISSING, hasQemu } from '../helpers/qemu.js';
import { be16, eth, ip4, ipv4, mac, tcp } from '../packet/build.js';
import { sleep, until } from './fake-qmp.js';
import type { Json } from './fake-qmp.js';
import { NotifyPeer, frameMsg, splitMsgs } from './notify-peer.js';

if (!hasQemu) console.warn(QEMU_MISSING);

const silent = createLogger({ level: 'silent' });

describe.skipIf(!hasQemu)('real QEMU 7.2: QmpClient and QmpCheckpointController', () => {
  let q: QemuInstance;
  let c: QmpClient;
  let ctl: QmpCheckpointController;
  const events: Array<[string, Json, number]> = [];

  beforeAll(async () => {
    q = await QemuInstance.start({
      args: (d) => ['-machine', 'none', '-qmp', `unix:${d}/ctl.sock,server=on,wait=off`],
      waitForPaths: (d) => [`${d}/ctl.sock`],
    });
    c = new QmpClient({ endpoint: `unix:${q.path('ctl.sock')}`, logger: silent, backoff: { initialMs: 10, maxMs: 50 } });
    c.onEvent((n, d, t) => events.push([n, d, t]));
    ctl = new QmpCheckpointController({ qmp: c, logger: silent, startTimeoutMs: 300, completeTimeoutMs: 2000 });
    await c.connect(5000);
  });

  afterAll(async () => {
    await ctl?.close();
    await c?.close();
    await q?.stop();
  });

  it('negotiates; the greeting matches `qemu-system-x86_64 --version`; oob is on', () => {
    const v = /version (\d+)\.(\d+)\.(\d+)/.exec(execFileSync(QEMU_BIN, ['--version'], { encoding: 'utf8' }))!;
    const g = c.greeting!;
    expect([g.version.major, g.version.minor, g.version.micro]).toEqual([Number(v[1]), Number(v[2]), Number(v[3])]);
    expect(g.capabilities).toContain('oob');
    expect(c.oobEnabled).toBe(true);
  });

  it('query-migrate-parameters: x-checkpoint-delay defaults to 20000; migrate-set-parameters round-trips', async () => {
    expect(await ctl.checkpointDelay()).toBe(20000);
    await c.execute('migrate-set-parameters', { 'x-checkpoint-delay': 1234 });
    expect(await ctl.checkpointDelay()).toBe(1234);
    // The independent client agrees.
    const other = (await q.qmp.execute('query-migrate-parameters')) as Record<string, unknown>;
    expect(other['x-checkpoint-delay']).toBe(1234);
  });

  it('stop / cont (driven by another client) arrive as STOP then RESUME; query-status agrees in between', async () => {
    const start = events.length;
    await q.qmp.execute('stop');
    await until(() => events.slice(start).some((e) => e[0] === 'STOP'), 3000, 'STOP');
    expect(await c.execute('query-status')).toMatchObject({ status: 'paused', running: false });
    await q.qmp.execute('cont');
    await until(() => events.slice(start).some((e) => e[0] === 'RESUME'), 3000, 'RESUME');
    expect(await c.execute('query-status')).toMatchObject({ status: 'running', running: true });
    const got = events.slice(start).filter((e) => e[0] === 'STOP' || e[0] === 'RESUME');
    expect(got.map((e) => e[0])).toEqual(['STOP', 'RESUME']);
    expect(got[1]![2]).toBeGreaterThanOrEqual(got[0]![2]);
    // QEMU's timestamps are wall-clock: within a few seconds of ours.
    expect(Math.abs(got[0]![2] - Date.now())).toBeLessThan(10_000);
  });

  it('an unknown command is a typed error with QEMU class and description', async () => {
    const e = await c.execute('no-such-command').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(QmpError);
    expect(e).toMatchObject({ code: 'ERR_QMP', errorClass: 'CommandNotFound', command: 'no-such-command' });
    expect((e as QmpError).desc).toMatch(/no-such-command/);
  });

  it('query-colo-status is "none" outside COLO', async () => {
    expect(await ctl.queryColoStatus()).toEqual({ mode: 'none', lastMode: 'none', reason: 'none' });
  });

  it('outside COLO a request only stores the value: no STOP, so it fails by the start timeout; the value is unchanged', async () => {
    const before = await ctl.checkpointDelay();
    const failed: CheckpointFailure[] = [];
    const off = ctl.onFailed((_c, r) => failed.push(r));
    ctl.request('probe');
    await until(() => failed.length === 1, 3000);
    off();
    expect(failed).toEqual(['timeout']);
    expect(await ctl.checkpointDelay()).toBe(before);
  });

  it('an operator stop/cont looks like a checkpoint to the controller (documented limitation)', async () => {
    const completed: Checkpoint[] = [];
    const off = ctl.onCompleted((cp) => completed.push(cp));
    await q.qmp.execute('stop');
    await q.qmp.execute('cont');
    await until(() => completed.length === 1, 3000);
    off();
    expect(completed[0]!.origin).toBe('periodic');
  });

  it('failover outside COLO: the out-of-band yank is refused (no migration) and tolerated; x-colo-lost-heartbeat errors', async () => {
    const e = await ctl.failover().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(QmpError);
    expect(e).toMatchObject({ code: 'ERR_QMP', errorClass: 'GenericError', command: 'x-colo-lost-heartbeat' });
    // The yank alone, to see what QEMU said to it.
    const y = await c.executeOob('yank', { instances: [{ type: 'migration' }] }).catch((x: unknown) => x);
    expect(y).toMatchObject({ code: 'ERR_QMP', errorClass: 'DeviceNotFound' });
  });

  it('QEMU exiting is surfaced: SHUTDOWN event, disconnect listener, commands fail typed, reconnects keep failing', async () => {
    const lost: QmpError[] = [];
    c.onDisconnected((e) => lost.push(e));
    await q.stop(); // SIGTERM by PID
    await until(() => lost.length === 1, 5000, 'disconnect');
    expect(lost[0]!.code).toBe('ERR_QMP_DISCONNECTED');
    expect(events.some((e) => e[0] === 'SHUTDOWN')).toBe(true);
    const e = await c.execute('query-status').catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_QMP_DISCONNECTED' });
    await until(() => c.stats().connectFailures >= 2, 3000, 'reconnect attempts');
    expect(c.state).toBe('connecting');
  });
});

// ---- notify_dev against QEMU's colo-compare ----

/** An IPv4 TCP frame 10.0.0.1:10000 → 10.0.0.2:80 carrying `payload` at `seq`. */
function tcpFrame(seq: number, payload: string): Buffer {
  const pl = [...Buffer.from(payload, 'latin1')];
  const seg = tcp({ sport: 10000, dport: 80, seq, ack: 1, flags: 0x18, window: 65535 }, pl);
  return Buffer.from(eth(0x0800, ipv4({ proto: 6, id: 1, flags: 2, src: ip4('10.0.0.1'), dst: ip4('10.0.0.2') }, seg), [], mac('52:54:00:00:00:02'), mac('52:54:00:00:00:01')));
}

/** The packet stream framing, built by hand: BE32 len [+ BE32 vnet len] + (vnet bytes + frame). */
function packetFrame(frame: Buffer, vnetLen: number | null): Buffer {
  const data = Buffer.concat([Buffer.alloc(vnetLen ?? 0), frame]);
  const h = Buffer.from([...be32(data.length), ...(vnetLen === null ? [] : be32(vnetLen))]);
  return Buffer.concat([h, data]);
}

function be32(v: number): number[] {
  return [...be16(v >>> 16), ...be16(v & 0xffff)];
}

function rawConnect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

for (const vnet of [false, true]) {
  describe.skipIf(!hasQemu)(`real QEMU 7.2 colo-compare notify_dev vs NotifyDevController, vnet_hdr_support=${vnet ? 'on' : 'off'}`, () => {
    let q: QemuInstance;
    const socks: Socket[] = [];
    let qemuPeer: NotifyPeer;
    let ourPeer: NotifyPeer;
    let ours: NotifyDevController;
    const ourCompleted: Checkpoint[] = [];
    let out = Buffer.alloc(0);
    let pri: Socket;
    let sec: Socket;
    const VNET = 12; // virtio_net_hdr_mrg_rxbuf, as the lab's tap produced
    const pf = (f: Buffer): Buffer => packetFrame(f, vnet ? VNET : null);

    beforeAll(async () => {
      const V = vnet ? ',vnet_hdr_support=on' : '';
      q = await QemuInstance.start({
        args: (d) => [
          '-machine', 'none',
          '-object', 'iothread,id=iothread1',
          '-chardev', `socket,id=pri,path=${d}/pri.sock,server=on,wait=off`,
          '-chardev', `socket,id=sec,path=${d}/sec.sock,server=on,wait=off`,
          '-chardev', `socket,id=out,path=${d}/out.sock,server=on,wait=off`,
          '-chardev', `socket,id=notify,path=${d}/notify.sock,server=on,wait=off`,
          '-object', `colo-compare,id=comp0,primary_in=pri,secondary_in=sec,outdev=out,iothread=iothread1,notify_dev=notify${V}`,
        ],
        waitForPaths: (d) => ['pri', 'sec', 'out', 'notify'].map((n) => `${d}/${n}.sock`),
      });
      pri = await rawConnect(q.path('pri.sock'));
      sec = await rawConnect(q.path('sec.sock'));
      const o = await rawConnect(q.path('out.sock'));
      o.on('data', (d: Buffer) => {
        out = Buffer.concat([out, d]);
      });
      socks.push(pri, sec, o);
      qemuPeer = await NotifyPeer.connect(q.path('notify.sock'));
      for (const id of ['pri', 'sec', 'out', 'notify']) await q.waitChardevConnected(id);

      ourPeer = await NotifyPeer.listen(q.path('ours.sock'));
      ours = new NotifyDevController({ endpoint: `unix:${q.path('ours.sock')}`, vnetHdrSupport: vnet, logger: silent, reconnectMs: 20 });
      ours.onCompleted((cp) => ourCompleted.push(cp));
      await ours.start();
      await until(() => ourPeer.connected && ours.connected);
    });

    afterAll(async () => {
      await ours?.close();
      await ourPeer?.close();
      await qemuPeer?.close();
      for (const s of socks) s.destroy();
      await q?.stop();
    });

    it('COLO_USERSPACE_PROXY_INIT: QEMU and we answer with the same bytes', async () => {
      const init = frameMsg('COLO_USERSPACE_PROXY_INIT', vnet); // with the vnet field when vnet is on
      qemuPeer.write(init);
      ourPeer.write(init);
      await until(() => qemuPeer.rx.length >= 29 && ourPeer.rx.length >= 29, 3000, 'INIT replies');
      await sleep(50);
      expect(qemuPeer.rx).toEqual(frameMsg('COLO_COMPARE_GET_XEN_INIT')); // never a vnet field
      expect(ourPeer.rx).toEqual(qemuPeer.rx);
    });

    it('DO_CHECKPOINT: QEMU (two differing TCP frames) and we (request()) send the same bytes', async () => {
      qemuPeer.rx = Buffer.alloc(0);
      ourPeer.rx = Buffer.alloc(0);
      pri.write(pf(tcpFrame(1000, 'same-0001'.repeat(10))));
      sec.write(pf(tcpFrame(1000, 'DIFF-0001'.repeat(10))));
      ours.request('mismatch');
      await until(() => qemuPeer.rx.length >= 17 && ourPeer.rx.length >= 17, 3000, 'DO_CHECKPOINT from both');
      expect(qemuPeer.rx.subarray(0, 17)).toEqual(Buffer.from('0000000d444f5f434845434b504f494e54', 'hex'));
      expect(ourPeer.rx).toEqual(qemuPeer.rx.subarray(0, 17));
      // QEMU may repeat it (every re-seen mismatch); every message is DO_CHECKPOINT, unframed by vnet.
      expect(new Set(splitMsgs(qemuPeer.rx.subarray(0, qemuPeer.rx.length - (qemuPeer.rx.length % 17))))).toEqual(new Set(['DO_CHECKPOINT']));
      // The differing primary frame is held by QEMU.
      expect(out.length).toBe(0);
    });

    it('COLO_CHECKPOINT: QEMU releases the held primary frame (= completion); ours completes the checkpoint', async () => {
      const done = frameMsg('COLO_CHECKPOINT', vnet);
      qemuPeer.write(done);
      ourPeer.write(done);
      const want = pf(tcpFrame(1000, 'same-0001'.repeat(10)));
      await until(() => out.length >= want.length && ourCompleted.length === 1, 3000, 'release + completion');
      expect(out).toEqual(want);
      expect(ourCompleted[0]).toMatchObject({ origin: 'requested', cause: 'mismatch' });
    });

    if (vnet) {
      it('QEMU parses notify_dev input WITH the vnet field: an INIT framed without it gets no answer', async () => {
        qemuPeer.rx = Buffer.alloc(0);
        qemuPeer.write(frameMsg('COLO_USERSPACE_PROXY_INIT', false));
        await sleep(300);
        expect(qemuPeer.rx.length).toBe(0);
      });
    }
  });
}
