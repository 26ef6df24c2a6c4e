import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FramingError } from '../../src/errors.js';
import { PacketPool } from '../../src/packet/pool.js';
import { FramedChannel } from '../../src/wire/connection.js';
import type { DisconnectReason, FramedChannelOptions } from '../../src/wire/connection.js';
import type { Endpoint } from '../../src/wire/endpoint.js';
import { collector, makeFrames, refEncode, sameFrames, smallPool, until } from './frames.js';
import type { TestFrame } from './frames.js';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'colo-chan-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let sockN = 0;
function serverSpec(kind: 'tcp' | 'unix'): string {
  return kind === 'tcp' ? 'tcp:127.0.0.1:0,server' : `unix:${join(dir, `s${sockN++}.sock`)},server`;
}

function rawConnect(ep: Endpoint): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = ep.kind === 'tcp' ? connect({ host: ep.host, port: ep.port }) : connect({ path: ep.path });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.closed) resolve();
    else s.once('close', () => resolve());
  });
}

interface Harness {
  ch: FramedChannel;
  pool: PacketPool;
  frames: TestFrame[];
  errors: Error[];
  events: string[];
}

function channel(endpoint: string, vnetHdr: boolean, extra: Partial<FramedChannelOptions> = {}, pool: PacketPool = smallPool()): Harness {
  const c = collector(pool);
  const errors: Error[] = [];
  const events: string[] = [];
  const ch = new FramedChannel({
    endpoint,
    vnetHdr,
    pool,
    reconnectMs: 20,
    onFrame: c.onFrame,
    onError: (e) => errors.push(e),
    onConnected: () => events.push('connected'),
    onDisconnected: (r: DisconnectReason) => events.push(`disconnected:${r}`),
    ...extra,
  });
  return { ch, pool, frames: c.frames, errors, events };
}

for (const kind of ['tcp', 'unix'] as const) {
  for (const vnet of [false, true]) {
    describe(`FramedChannel over ${kind} (vnet ${vnet ? 'on' : 'off'})`, () => {
      it('server: a peer dropping mid-frame does not pollute the next connection', async () => {
        const h = channel(serverSpec(kind), vnet);
        await h.ch.start();
        const f1 = makeFrames([60, 1514, 70], 1, [vnet ? 12 : 0]);
        const f2 = makeFrames([64, 9000, 61, 65000], 2, [vnet ? 10 : 0]);
        const s1 = await rawConnect(h.ch.address);
        const half = refEncode(makeFrames([1000], 3), vnet).subarray(0, 500);
        s1.write(Buffer.concat([refEncode(f1, vnet), half]));
        await until(() => h.frames.length === 3 && h.pool.inUse === 1, 2000, 'first frames + partial slot');
        s1.destroy();
        await until(() => !h.ch.connected, 2000, 'disconnect');
        expect(h.pool.inUse).toBe(0); // partial frame's slot released at disconnect
        const s2 = await rawConnect(h.ch.address);
        s2.write(refEncode(f2, vnet));
        await until(() => h.frames.length === f1.length + f2.length, 2000, 'second connection frames');
        expect(sameFrames(h.frames, [...f1, ...f2])).toBe(true);
        expect(h.errors).toEqual([]);
        expect(h.ch.stats()).toMatchObject({ connections: 2, disconnects: 1 });
        s2.destroy();
        await h.ch.close();
        expect(h.pool.inUse).toBe(0);
      });

      it('client: reconnects after the peer drops mid-frame and starts clean', async () => {
        const conns: Socket[] = [];
        const srv: Server = createServer((s) => conns.push(s));
        const spec = kind === 'tcp' ? 'tcp:127.0.0.1:0' : join(dir, `c${sockN++}.sock`);
        await new Promise<void>((r) => (kind === 'tcp' ? srv.listen(0, '127.0.0.1', r) : srv.listen(spec, r)));
        const addr = srv.address();
        const endpoint = kind === 'tcp' && addr !== null && typeof addr === 'object' ? `tcp:127.0.0.1:${addr.port}` : `unix:${spec}`;
        const h = channel(endpoint, vnet);
        await h.ch.start();
        await h.ch.whenConnected();
        await until(() => conns.length === 1, 2000, 'accept 1');
        const f1 = makeFrames([100, 200], 4, [vnet ? 12 : 0]);
        conns[0]!.write(Buffer.concat([refEncode(f1, vnet), refEncode(makeFrames([3000], 5), vnet).subarray(0, 1234)]));
        await until(() => h.frames.length === 2, 2000, 'frames on connection 1');
        conns[0]!.destroy();
        await until(() => conns.length === 2 && h.ch.connected, 3000, 'reconnect');
        const f2 = makeFrames([300, 60], 6, [vnet ? 12 : 0]);
        conns[1]!.write(refEncode(f2, vnet));
        await until(() => h.frames.length === 4, 2000, 'frames on connection 2');
        expect(sameFrames(h.frames, [...f1, ...f2])).toBe(true);
        expect(h.events).toEqual(['connected', 'disconnected:peer-closed', 'connected']);
        await h.ch.close();
        for (const c of conns) c.destroy();
        await new Promise<void>((r) => srv.close(() => r()));
        expect(h.pool.inUse).toBe(0);
      });
    });
  }
}

describe('FramedChannel connection policy', () => {
  it('a bad frame resets only that connection; another channel keeps flowing; the next peer works', async () => {
    const pool = smallPool();
    const a = channel(serverSpec('tcp'), true, {}, pool);
    const b = channel(serverSpec('unix'), true, {}, pool);
    await a.ch.start();
    await b.ch.start();
    const sa = await rawConnect(a.ch.address);
    const sb = await rawConnect(b.ch.address);
    const good = makeFrames([60, 70], 7, [12]);
    const goodBytes = refEncode(good, true);
    const badHdr = Buffer.from([0, 0, 0, 60, 0, 0, 0, 21]); // vnet_hdr_len 21 > 20
    sa.write(Buffer.concat([goodBytes, badHdr, Buffer.alloc(60), goodBytes]));
    await closed(sa); // we closed it
    expect(a.frames.length).toBe(2);
    expect(a.errors.length).toBe(1);
    const e = a.errors[0] as FramingError;
    expect(e).toBeInstanceOf(FramingError);
    expect(e.code).toBe('ERR_FRAME_BAD_VNET_LEN');
    expect(e.value).toBe(21);
    expect(e.streamOffset).toBe(goodBytes.length);
    expect(a.events).toEqual(['connected', 'disconnected:framing-error']);
    // B is untouched.
    sb.write(goodBytes);
    await until(() => b.frames.length === 2, 2000, 'B frames');
    expect(b.errors).toEqual([]);
    expect(b.ch.connected).toBe(true);
    // A accepts a new peer with a fresh decoder.
    const sa2 = await rawConnect(a.ch.address);
    sa2.write(goodBytes);
    await until(() => a.frames.length === 4, 2000, 'A frames after reconnect');
    expect(sameFrames(a.frames, [...good, ...good])).toBe(true);
    expect(a.ch.stats()).toMatchObject({ framingErrors: 1, connections: 2 });
    expect(a.ch.stats().decoder.errors.ERR_FRAME_BAD_VNET_LEN).toBe(1);
    sa2.destroy();
    sb.destroy();
    await a.ch.close();
    await b.ch.close();
    expect(pool.inUse).toBe(0);
  });

  it('a client channel reconnects after a framing error', async () => {
    const conns: Socket[] = [];
    const srv = createServer((s) => conns.push(s));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    const h = channel(`tcp:127.0.0.1:${port}`, false, { maxFrame: 1000 });
    await h.ch.start();
    await until(() => conns.length === 1, 2000, 'connect');
    conns[0]!.write(Buffer.from([0, 0, 0x10, 0])); // 4096 > maxFrame
    await until(() => conns.length === 2, 3000, 'reconnect after error');
    expect(h.errors.map((e) => (e as FramingError).code)).toEqual(['ERR_FRAME_TOO_LONG']);
    const f = makeFrames([999], 8);
    conns[1]!.write(refEncode(f, false));
    await until(() => h.frames.length === 1, 2000, 'frame after reconnect');
    expect(sameFrames(h.frames, f)).toBe(true);
    await h.ch.close();
    for (const c of conns) c.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  });

  it('a server accepts one peer at a time: a second concurrent peer is refused and counted', async () => {
    const h = channel(serverSpec('unix'), false);
    await h.ch.start();
    const s1 = await rawConnect(h.ch.address);
    await until(() => h.ch.connected, 2000, 'first peer');
    const s2 = await rawConnect(h.ch.address);
    await closed(s2);
    expect(h.ch.stats().refused).toBe(1);
    // The first peer still works.
    const f = makeFrames([80], 9);
    s1.write(refEncode(f, false));
    await until(() => h.frames.length === 1, 2000, 'frame from first peer');
    s1.destroy();
    await until(() => !h.ch.connected, 2000, 'first peer gone');
    const s3 = await rawConnect(h.ch.address);
    s3.write(refEncode(f, false));
    await until(() => h.frames.length === 2, 2000, 'frame from third peer');
    expect(h.ch.stats()).toMatchObject({ connections: 2, refused: 1 });
    s3.destroy();
    await h.ch.close();
  });

  it('channel to channel: frames written (buffer and pool handle) arrive byte-identical both ways', async () => {
    const pool = smallPool(256, 16);
    const srv = channel(serverSpec('tcp'), true, {}, pool);
    await srv.ch.start();
    const ep = srv.ch.address;
    const cli = channel(`tcp:127.0.0.1:${ep.kind === 'tcp' ? ep.port : 0}`, true, {}, pool);
    await cli.ch.start();
    await cli.ch.whenConnected();
    await srv.ch.whenConnected();
    const frames = makeFrames([60, 61, 1514, 9000, 65000, 69632, ...Array.from({ length: 200 }, (_, i) => 60 + i * 7)], 10, [0, 10, 12, 20]);
    for (const [i, f] of frames.entries()) {
      if (i % 2 === 0) expect(cli.ch.writeFrame(f.data, 0, f.data.length, f.vnetLen)).toBe(true);
      else {
        const hd = pool.copyIn(f.data, 0, f.data.length);
        pool.tag[hd] = f.vnetLen;
        expect(cli.ch.writeHandle(hd)).toBe(true);
        pool.release(hd);
      }
    }
    await until(() => srv.frames.length === frames.length, 5000, 'all frames at the server');
    expect(sameFrames(srv.frames, frames)).toBe(true);
    for (const f of frames.slice(0, 20)) srv.ch.writeFrame(f.data, 0, f.data.length, f.vnetLen);
    await until(() => cli.frames.length === 20, 5000, 'frames back at the client');
    expect(sameFrames(cli.frames, frames.slice(0, 20))).toBe(true);
    await cli.ch.close();
    await srv.ch.close();
    expect(pool.inUse).toBe(0);
  });

  it('pauses the socket when the pool is exhausted and resumes without loss', async () => {
    const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 2 }] });
    const got: TestFrame[] = [];
    const held: number[] = [];
    const ch = new FramedChannel({
      endpoint: serverSpec('tcp'),
      vnetHdr: false,
      pool,
      maxFrame: 2048,
      onFrame: (h, v) => {
        got.push({ data: Buffer.from(pool.view(h)), vnetLen: v });
        held.push(h);
      },
    });
    await ch.start();
    const s = await rawConnect(ch.address);
    const frames = makeFrames(Array.from({ length: 600 }, (_, i) => 60 + ((i * 13) % 1400)), 11);
    s.write(refEncode(frames, false));
    // Slow consumer: release one held frame per timer tick.
    const timer = setInterval(() => {
      for (let i = 0; i < 8 && held.length > 0; i++) pool.release(held.shift()!);
    }, 1);
    await until(() => got.length === frames.length, 10_000, 'all frames through a 2-slot pool');
    clearInterval(timer);
    while (held.length > 0) pool.release(held.shift()!);
    expect(sameFrames(got, frames)).toBe(true);
    expect(ch.stats().decoder.pausedCount).toBeGreaterThan(0);
    s.destroy();
    await ch.close();
    expect(pool.inUse).toBe(0);
  });

  /**
   * The peer sends 600 frames and leaves at once while the channel's 2-slot pool is full (the
   * consumer frees 8 slots a millisecond): every frame must still arrive, in order, and then the
   * disconnect be seen. `role`: which side the channel is; `readBuffer`: the client's reused
   * read buffer (Node onread) instead of the default read path.
   */
  async function burstThenLeave(role: 'client' | 'server', readBuffer: number | undefined, lenStep: number, seed: number): Promise<void> {
    const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 2 }] });
    const got: TestFrame[] = [];
    const held: number[] = [];
    const frames = makeFrames(Array.from({ length: 600 }, (_, i) => 60 + ((i * lenStep) % 1400)), seed);
    const path = join(dir, `c${sockN++}.sock`);
    let server: Server | null = null;
    if (role === 'client') {
      server = createServer((sock) => sock.end(refEncode(frames, false)));
      await new Promise<void>((r) => server!.listen(path, () => r()));
    }
    const ch = new FramedChannel({
      endpoint: role === 'client' ? `unix:${path}` : `unix:${path},server`,
      vnetHdr: false,
      pool,
      maxFrame: 2048,
      ...(role === 'client' ? { reconnectMs: 60_000 } : {}),
      ...(readBuffer !== undefined ? { readBuffer } : {}),
      onFrame: (h, v) => {
        got.push({ data: Buffer.from(pool.view(h)), vnetLen: v });
        held.push(h);
      },
    });
    await ch.start();
    if (role === 'server') {
      const peer = connect(path);
      await new Promise<void>((r) => peer.on('connect', () => r()));
      peer.end(refEncode(frames, false));
    }
    const timer = setInterval(() => {
      for (let i = 0; i < 8 && held.length > 0; i++) pool.release(held.shift()!);
    }, 1);
    await until(() => got.length === frames.length, 10_000, `all frames through a 2-slot pool (${role})`);
    clearInterval(timer);
    while (held.length > 0) pool.release(held.shift()!);
    expect(sameFrames(got, frames)).toBe(true);
    expect(ch.stats().decoder.pausedCount).toBeGreaterThan(0);
    // The peer ended the stream: the channel must notice (onread sockets still see EOF).
    await until(() => ch.stats().disconnects === 1, 5000, `peer close seen by the ${role}`);
    await ch.close();
    if (server !== null) await new Promise<void>((r) => server!.close(() => r()));
    expect(pool.inUse).toBe(0);
  }

  it('client (reused read buffer): pool exhaustion pauses and resumes without loss, EOF still seen', () => burstThenLeave('client', 65_536, 13, 17));
  it('client (default read path): the peer sends a burst and leaves while the pool is full: every frame still delivered, then the disconnect', () =>
    burstThenLeave('client', undefined, 13, 17));
  it('server: the peer writes a burst and leaves while the pool is full: every frame still delivered, then the disconnect', () => burstThenLeave('server', undefined, 29, 23));

  for (const [rx, tx] of [
    [true, false],
    [false, true],
  ] as const) {
    it(`separate vnet settings per direction (receive ${rx ? 'with' : 'without'}, send ${tx ? 'with' : 'without'} the field)`, async () => {
      // vnetHdr says the opposite of both overrides: the overrides must win.
      const h = channel(serverSpec('unix'), !rx, { receiveVnetHdr: rx, sendVnetHdr: tx });
      await h.ch.start();
      const s = await rawConnect(h.ch.address);
      let rxBytes = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        rxBytes = Buffer.concat([rxBytes, c]);
      });
      await h.ch.whenConnected();
      const inbound = makeFrames([60, 61, 1500], 21, [0, 10, 12]).map((f) => (rx ? f : { ...f, vnetLen: 0 }));
      s.write(refEncode(inbound, rx));
      await until(() => h.frames.length === inbound.length, 3000, 'inbound frames');
      expect(sameFrames(h.frames, inbound)).toBe(true);
      const outbound = makeFrames([64, 65], 22, [0, 12]).map((f) => (tx ? f : { ...f, vnetLen: 0 }));
      for (const f of outbound) expect(h.ch.writeFrame(f.data, 0, f.data.length, f.vnetLen)).toBe(true);
      h.ch.flush();
      const want = refEncode(outbound, tx);
      await until(() => rxBytes.length >= want.length, 3000, 'outbound bytes');
      expect(rxBytes).toEqual(want);
      expect(h.errors).toEqual([]);
      s.destroy();
      await h.ch.close();
    });
  }

  it('pauseReading (set before the peer connects) stops delivery until resumeReading; nothing is lost', async () => {
    const h = channel(serverSpec('unix'), false);
    await h.ch.start();
    h.ch.pauseReading();
    expect(h.ch.readingPaused).toBe(true);
    const s = await rawConnect(h.ch.address);
    await h.ch.whenConnected();
    const frames = makeFrames([60, 200, 1400, 70], 23);
    s.write(refEncode(frames, false));
    await new Promise((r) => setTimeout(r, 50));
    expect(h.frames).toHaveLength(0);
    h.ch.resumeReading();
    expect(h.ch.readingPaused).toBe(false);
    await until(() => h.frames.length === frames.length, 3000, 'frames after resume');
    expect(sameFrames(h.frames, frames)).toBe(true);
    s.destroy();
    await h.ch.close();
    expect(h.pool.inUse).toBe(0);
  });

  it('exposes writer backpressure and signals drain', async () => {
    let peer: Socket | null = null;
    const srv = createServer((s) => {
      peer = s;
      s.pause(); // do not read: the kernel buffers fill up
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    let drains = 0;
    const h = channel(`tcp:127.0.0.1:${port}`, false, { onDrain: () => drains++ });
    await h.ch.start();
    await h.ch.whenConnected();
    const f = Buffer.alloc(1400, 3);
    let written = 0;
    while (!h.ch.backpressured && written < 200_000) {
      h.ch.writeFrame(f, 0, f.length);
      written++;
      if (written % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(h.ch.backpressured).toBe(true);
    let received = 0;
    peer!.on('data', (c: Buffer) => {
      received += c.length;
    });
    peer!.resume();
    await until(() => drains === 1, 5000, 'drain');
    expect(h.ch.backpressured).toBe(false);
    h.ch.flush();
    await until(() => received === h.ch.stats().writer.bytes, 5000, 'everything written arrives');
    await h.ch.close();
    peer!.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  });

  it('drops and counts frames written while no peer is connected', async () => {
    const h = channel(serverSpec('unix'), false);
    await h.ch.start();
    expect(h.ch.writeFrame(Buffer.alloc(60), 0, 60)).toBe(false);
    expect(h.ch.stats().notConnectedDrops).toBe(1);
    const waiting = h.ch.whenConnected();
    await h.ch.close();
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_CHANNEL_CLOSED' });
    expect(h.ch.writeFrame(Buffer.alloc(60), 0, 60)).toBe(false);
  });

  it('a client keeps retrying while nothing listens, reporting the failure once', async () => {
    const path = join(dir, `absent${sockN++}.sock`);
    const h = channel(`unix:${path}`, false);
    await h.ch.start();
    await until(() => h.ch.stats().connectFailures >= 3, 3000, 'retries');
    expect(h.errors.length).toBe(1);
    expect((h.errors[0] as NodeJS.ErrnoException).code).toBe('ENOENT');
    // Now a listener appears: the channel connects.
    const srv = createServer(() => {});
    await new Promise<void>((r) => srv.listen(path, r));
    await h.ch.whenConnected();
    await h.ch.close();
    await new Promise<void>((r) => srv.close(() => r()));
  });
});
