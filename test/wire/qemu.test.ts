/**
 * The framing against real QEMU 7.2 (guest-less: pc machine under TCG, no disk, no kernel;
 * the BIOS just idles). QEMU is the independent oracle: our encoder's frames are parsed by
 * QEMU's decoder (netdev / filter-redirector indev) and re-encoded by QEMU's own encoder
 * (filter-mirror / filter-redirector outdev) before our decoder sees them.
 *
 * Topology per instance (vnet_hdr_support = off or on on all filters):
 *   hn0: -netdev stream|socket (QEMU listens; our FrameWriter connects) + rtl8139 peer
 *        filter-mirror m0 queue=tx outdev=mirror0 → our decoder
 *   hn1: -netdev stream (nobody connects)
 *        filter-redirector r0 queue=tx indev=in0   ← our writer
 *        filter-redirector r1 queue=tx outdev=out0 → our decoder (listed after r0)
 *
 * Why rtl8139: a netdev without a peer NIC drops packets before filters run, and QEMU only
 * reads the netdev while the peer can receive; an e1000 with no driver can't, so the socket
 * backend stalls after a few frames. rtl8139 reports "can receive" while its receiver is
 * disabled (then drops the frame), so every frame reaches the filters. The first test checks
 * the no-peer case.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PacketPool } from '../../src/packet/pool.js';
import { FramedChannel } from '../../src/wire/connection.js';
import { FrameDecoder } from '../../src/wire/decoder.js';
import { collector, makeFrames, refEncode, sameFrames, until } from './frames.js';
import type { Collector, TestFrame } from './frames.js';
import { QemuInstance, QEMU_MISSING, freeTcpPort, hasQemu } from '../helpers/qemu.js';

if (!hasQemu) console.warn(QEMU_MISSING);

const MACHINE = ['-accel', 'tcg', '-m', '32'];
const NIC = (netdev: string) => ['-device', `rtl8139,netdev=${netdev},romfile=`];

function pool(): PacketPool {
  return new PacketPool({
    classes: [
      { slotSize: 2048, slots: 2048 },
      { slotSize: 69_632, slots: 64 },
    ],
  });
}

interface Side {
  ch: FramedChannel;
  c: Collector;
}

/** A client FramedChannel decoding into a collector (and able to write). */
function side(endpoint: string, vnetHdr: boolean, p: PacketPool): Side {
  const c = collector(p);
  const ch = new FramedChannel({ endpoint, vnetHdr, pool: p, reconnectMs: 50, onFrame: c.onFrame, onError: c.onError });
  return { ch, c };
}

/** Send frames through `w` (stream never carries the vnet field when `w` is a netdev). */
function send(w: FramedChannel, frames: readonly TestFrame[]): void {
  for (const f of frames) {
    if (!w.writeFrame(f.data, 0, f.data.length, f.vnetLen)) throw new Error('write refused');
  }
  w.flush();
}

// Mixed sizes: 60-byte minimum frames, MTU, jumbo, near-64 KiB, and the 69 632 maximum.
const MIXED = [60, 60, 64, 1514, 9000, 60, 65000, 69_632, 61, 1500, ...Array.from({ length: 150 }, (_, i) => 60 + ((i * 97) % 1455))];

describe.skipIf(!hasQemu)('real QEMU: a netdev with no peer NIC', () => {
  it('drops packets before filter-mirror sees them (why the tests attach an rtl8139)', async () => {
    const q = await QemuInstance.start({
      args: (d) => [
        ...MACHINE,
        '-netdev', `stream,id=hn0,server=on,addr.type=unix,addr.path=${d}/net.sock`,
        '-chardev', `socket,id=mirror0,path=${d}/mirror.sock,server=on,wait=off`,
        '-object', 'filter-mirror,id=m0,netdev=hn0,queue=tx,outdev=mirror0',
      ],
      waitForPaths: (d) => [`${d}/net.sock`, `${d}/mirror.sock`],
    });
    const p = pool();
    const mirror = side(`unix:${q.path('mirror.sock')}`, false, p);
    const net = side(`unix:${q.path('net.sock')}`, false, p);
    try {
      await mirror.ch.start();
      await q.waitChardevConnected('mirror0');
      await net.ch.start();
      await net.ch.whenConnected();
      send(net.ch, makeFrames([60, 100, 1514], 1));
      await new Promise((r) => setTimeout(r, 500));
      expect(mirror.c.frames.length).toBe(0);
    } finally {
      await mirror.ch.close();
      await net.ch.close();
      await q.stop();
    }
    expect(p.inUse).toBe(0);
  });
});

for (const vnet of [false, true]) {
  describe.skipIf(!hasQemu)(`real QEMU 7.2 filters, vnet_hdr_support=${vnet ? 'on' : 'off'}`, () => {
    const V = vnet ? ',vnet_hdr_support=on' : '';
    let q: QemuInstance;
    let netPort = 0;
    let inPort = 0;
    const p = pool();
    let net: Side; // our writer into the netdev backend (plain framing, never a vnet field)
    let mirror: Side; // filter-mirror output
    let rin: Side; // filter-redirector indev (we write)
    let rout: Side; // filter-redirector outdev (we read)

    beforeAll(async () => {
      // vnet off: netdev stream over unix, chardevs over unix.
      // vnet on:  netdev socket over TCP, redirector indev over TCP (covers both transports).
      netPort = await freeTcpPort();
      inPort = await freeTcpPort();
      q = await QemuInstance.start({
        args: (d) => [
          ...MACHINE,
          ...(vnet
            ? ['-netdev', `socket,id=hn0,listen=127.0.0.1:${netPort}`]
            : ['-netdev', `stream,id=hn0,server=on,addr.type=unix,addr.path=${d}/net.sock`]),
          ...NIC('hn0'),
          '-chardev', `socket,id=mirror0,path=${d}/mirror.sock,server=on,wait=off`,
          '-object', `filter-mirror,id=m0,netdev=hn0,queue=tx,outdev=mirror0${V}`,
          '-netdev', `stream,id=hn1,server=on,addr.type=unix,addr.path=${d}/net1.sock`,
          ...NIC('hn1'),
          ...(vnet
            ? ['-chardev', `socket,id=in0,host=127.0.0.1,port=${inPort},server=on,wait=off`]
            : ['-chardev', `socket,id=in0,path=${d}/in.sock,server=on,wait=off`]),
          '-chardev', `socket,id=out0,path=${d}/out.sock,server=on,wait=off`,
          '-object', `filter-redirector,id=r0,netdev=hn1,queue=tx,indev=in0${V}`,
          '-object', `filter-redirector,id=r1,netdev=hn1,queue=tx,outdev=out0${V}`,
        ],
        waitForPaths: (d) => [`${d}/mirror.sock`, `${d}/out.sock`, `${d}/net1.sock`],
      });
      net = side(vnet ? `tcp:127.0.0.1:${netPort}` : `unix:${q.path('net.sock')}`, false, p);
      mirror = side(`unix:${q.path('mirror.sock')}`, vnet, p);
      rin = side(vnet ? `tcp:127.0.0.1:${inPort}` : `unix:${q.path('in.sock')}`, vnet, p);
      rout = side(`unix:${q.path('out.sock')}`, vnet, p);
      for (const s of [net, mirror, rin, rout]) await s.ch.start();
      await q.waitChardevConnected('mirror0');
      await q.waitChardevConnected('in0');
      await q.waitChardevConnected('out0');
      await net.ch.whenConnected();
    });

    afterAll(async () => {
      for (const s of [net, mirror, rin, rout]) await s?.ch.close();
      await q?.stop();
      expect(p.inUse).toBe(0);
    });

    it('raw bytes on the mirror socket have the documented layout (4- or 8-byte header)', async () => {
      // Look at the bytes without our decoder: swap our channel for a raw socket.
      await mirror.ch.close();
      await q.waitChardevDisconnected('mirror0');
      const raw = await new Promise<Socket>((resolve, reject) => {
        const s = connect({ path: q.path('mirror.sock') });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
      await q.waitChardevConnected('mirror0');
      const got: Buffer[] = [];
      raw.on('data', (c: Buffer) => got.push(c));
      const f = makeFrames([60], 42)[0]!;
      send(net.ch, [f]);
      const want = Buffer.concat([Buffer.from(vnet ? [0, 0, 0, 60, 0, 0, 0, 0] : [0, 0, 0, 60]), f.data]);
      await until(() => Buffer.concat(got).length >= want.length, 3000, 'raw mirror bytes');
      expect(Buffer.concat(got).equals(want)).toBe(true);
      raw.destroy();
      await q.waitChardevDisconnected('mirror0');
      // Our decoder again, for the next tests.
      mirror = side(`unix:${q.path('mirror.sock')}`, vnet, p);
      await mirror.ch.start();
      await mirror.ch.whenConnected();
      await q.waitChardevConnected('mirror0');
    });

    it('our encoder → netdev backend → filter-mirror → our decoder: byte-identical', async () => {
      const frames = makeFrames(MIXED, vnet ? 101 : 100);
      const start = mirror.c.frames.length;
      send(net.ch, frames);
      await until(() => mirror.c.frames.length - start === frames.length, 5000, 'mirrored frames');
      const got = mirror.c.frames.slice(start);
      // vnet on: the 8-byte form with vnet_hdr_len = the netdev's (0 for a socket backend).
      expect(sameFrames(got, frames.map((f) => ({ data: f.data, vnetLen: 0 })))).toBe(true);
      expect(mirror.c.errors).toEqual([]);
    });

    it('our encoder → filter-redirector indev → redirector outdev → our decoder: byte-identical', async () => {
      // vnet on: QEMU parses the vnet field on input but ignores it; the outdev writes the
      // netdev's vnet_hdr_len (0). So send assorted values and expect 0 back.
      const frames = makeFrames(MIXED, vnet ? 201 : 200, vnet ? [0, 12, 10, 20] : [0]);
      const start = rout.c.frames.length;
      send(rin.ch, frames);
      await until(() => rout.c.frames.length - start === frames.length, 5000, 'redirected frames');
      const got = rout.c.frames.slice(start);
      expect(sameFrames(got, frames.map((f) => ({ data: f.data, vnetLen: 0 })))).toBe(true);
      expect(rout.c.errors).toEqual([]);
    });

    it('a QEMU chardev connection we reset is re-accepted; the new connection decodes clean', async () => {
      const before = mirror.ch.stats();
      mirror.ch.dropConnection();
      await until(() => mirror.ch.stats().connections === before.connections + 1, 3000, 'our reconnect');
      // Until QEMU has noticed the old connection is gone it may still mirror into it, so
      // probe until a frame arrives on the new connection.
      const probe = makeFrames([60], 299);
      const n0 = mirror.c.frames.length;
      await until(() => {
        if (mirror.c.frames.length === n0) send(net.ch, probe);
        return mirror.c.frames.length > n0;
      }, 3000, 'first frame on the new connection');
      await new Promise((r) => setTimeout(r, 50)); // let stray probes land
      const frames = makeFrames([60, 1514, 60, 9000], vnet ? 301 : 300);
      const start = mirror.c.frames.length;
      send(net.ch, frames);
      await until(() => mirror.c.frames.length - start === frames.length, 5000, 'frames after reconnect');
      expect(sameFrames(mirror.c.frames.slice(start), frames.map((f) => ({ data: f.data, vnetLen: 0 })))).toBe(true);
      expect(mirror.c.errors).toEqual([]);
      expect(mirror.ch.stats().decoder.resets).toBeGreaterThan(before.decoder.resets);
    });

    it('QEMU 7.2 filter-redirector never reads its indev again after a reconnect (reference §5)', async () => {
      rin.ch.dropConnection();
      await until(() => rin.ch.stats().connections === 2, 3000, 'our reconnect to in0');
      await q.waitChardevConnected('in0');
      const start = rout.c.frames.length;
      for (let i = 0; i < 5; i++) {
        send(rin.ch, makeFrames([60, 100], 310 + i));
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(rout.c.frames.length).toBe(start);
      expect(rin.ch.stats().writer.frames).toBeGreaterThan(0);
    });
  });
}

describe.skipIf(!hasQemu)('real QEMU: reconnecting client chardev and over-long frames', () => {
  let q: QemuInstance;
  const p = pool();
  let ours: FramedChannel; // our server; QEMU's mirror chardev is the client (reconnect=1)
  const oc = collector(p);
  let net: Side;
  let rawIn: Socket; // raw connection to the redirector indev (we need to write bogus bytes)
  let rout: Side;
  let dir = '';

  beforeAll(async () => {
    // Our server must exist before QEMU starts, so its path can't live in QEMU's temp dir.
    dir = mkdtempSync(join(tmpdir(), 'colo-wire-srv-'));
    ours = new FramedChannel({ endpoint: `unix:${dir}/ours.sock,server`, vnetHdr: false, pool: p, onFrame: oc.onFrame, onError: oc.onError });
    await ours.start();
    q = await QemuInstance.start({
      args: (d) => [
        ...MACHINE,
        '-netdev', `stream,id=hn0,server=on,addr.type=unix,addr.path=${d}/net.sock`,
        ...NIC('hn0'),
        '-chardev', `socket,id=mc,path=${dir}/ours.sock,reconnect=1`,
        '-object', 'filter-mirror,id=m0,netdev=hn0,queue=tx,outdev=mc',
        '-netdev', `stream,id=hn1,server=on,addr.type=unix,addr.path=${d}/net1.sock`,
          ...NIC('hn1'),
        '-chardev', `socket,id=in0,path=${d}/in.sock,server=on,wait=off`,
        '-chardev', `socket,id=out0,path=${d}/out.sock,server=on,wait=off`,
        '-object', 'filter-redirector,id=r0,netdev=hn1,queue=tx,indev=in0',
        '-object', 'filter-redirector,id=r1,netdev=hn1,queue=tx,outdev=out0',
      ],
      waitForPaths: (d) => [`${d}/net.sock`, `${d}/in.sock`, `${d}/out.sock`],
    });
    net = side(`unix:${q.path('net.sock')}`, false, p);
    rout = side(`unix:${q.path('out.sock')}`, false, p);
    for (const s of [net, rout]) await s.ch.start();
    rawIn = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ path: q.path('in.sock') });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    await ours.whenConnected();
    await q.waitChardevConnected('mc');
    await q.waitChardevConnected('in0');
    await q.waitChardevConnected('out0');
    await net.ch.whenConnected();
  });

  afterAll(async () => {
    for (const s of [net, rout]) await s?.ch.close();
    rawIn?.destroy();
    await ours?.close();
    await q?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(p.inUse).toBe(0);
  });

  it('our server re-accepts QEMU (reconnect=1) after we drop the connection', async () => {
    const f1 = makeFrames([60, 1514], 400);
    send(net.ch, f1);
    await until(() => oc.frames.length === 2, 3000, 'frames on the first QEMU connection');
    ours.dropConnection();
    await until(() => ours.stats().connections === 2, 4000, 'QEMU reconnects');
    await q.waitChardevConnected('mc');
    const f2 = makeFrames([61, 9000, 60], 401);
    send(net.ch, f2);
    await until(() => oc.frames.length === 5, 3000, 'frames on the second QEMU connection');
    expect(sameFrames(oc.frames, [...f1, ...f2])).toBe(true);
    expect(ours.stats().refused).toBe(0);
  });

  it('QEMU 7.2 swallows an over-long frame on a redirector indev (nothing out, peer not told, socket left open); ours rejects it at once', async () => {
    // Sanity: the path works first (over the same connection: a 7.2 redirector never reads
    // a reconnected indev, see above).
    rawIn.write(refEncode(makeFrames([100], 500), false));
    await until(() => rout.c.frames.length === 1, 3000, 'frame through the redirector');
    // Now announce 100 000 bytes (> NET_BUFSIZE), send them, then a valid frame.
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32BE(100_000, 0);
    const bogus = Buffer.concat([hdr, Buffer.alloc(100_000, 0x5a), refEncode(makeFrames([80], 501), false)]);
    rawIn.write(bogus);
    await new Promise((r) => setTimeout(r, 700));
    // QEMU: neither frame comes out (its indev stops reading after the decoder error), the
    // peer is told nothing and the connection stays open; only QEMU's stderr says why.
    expect(rout.c.frames.length).toBe(1);
    expect(rawIn.closed).toBe(false);
    expect(q.exited).toBe(false);
    expect(q.stderr).toMatch(/oversized packet received/);
    // Our decoder on the same bytes: an immediate, located error after 4 bytes.
    const dp = pool();
    const c = collector(dp);
    const d = new FrameDecoder({ vnetHdr: false, pool: dp, onFrame: c.onFrame, onError: c.onError });
    d.push(bogus);
    expect(c.errors.map((e) => [e.code, e.value, e.streamOffset])).toEqual([['ERR_FRAME_TOO_LONG', 100_000, 0]]);
    expect(d.streamOffset).toBe(4);
    expect(c.frames.length).toBe(0);
  });
});

