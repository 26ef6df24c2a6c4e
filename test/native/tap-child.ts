/**
 * Tap scenarios run in a child process inside a throwaway network namespace
 * (`unshare -n node --import tsx test/native/tap-child.ts SCENARIO`): creating taps in the
 * test runner's own namespace is not allowed. Prints one JSON line with what it observed;
 * the test file judges it against independent oracles (RFC layouts, kernel counters, iproute2).
 */
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { ColoError } from '../../src/errors.js';
import { PacketPool } from '../../src/packet/pool.js';
import { TapDevice, loadTapAddon, READ_POOL_EXHAUSTED, TapError } from '../../src/wire/tap.js';

const DEV = 'ctap0';
const OUR_MAC = [0x02, 0, 0, 0, 0, 0x02];
const NEIGH_MAC = '02:00:00:00:00:99';

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

/** Interface facts from iproute2 over netlink (sysfs here would show the host namespace). */
function linkInfo(dev: string): { address: string; stats64: { rx: { packets: number; bytes: number }; tx: { packets: number; bytes: number } } } {
  return JSON.parse(sh('ip', ['-j', '-s', 'link', 'show', 'dev', dev]))[0];
}

function counter(dev: string, name: 'rx_packets' | 'rx_bytes' | 'tx_packets'): number {
  const s = linkInfo(dev).stats64;
  return name === 'rx_packets' ? s.rx.packets : name === 'rx_bytes' ? s.rx.bytes : s.tx.packets;
}

function macOf(dev: string): string {
  return linkInfo(dev).address;
}

/** Bring the tap up with 192.0.2.1/24, no IPv6 (no MLD/ND chatter) and a static neighbour. */
function configure(dev: string): void {
  sh('sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
  sh('ip', ['link', 'set', dev, 'up']);
  sh('ip', ['addr', 'add', '192.0.2.1/24', 'dev', dev]);
  sh('ip', ['neigh', 'replace', '192.0.2.99', 'lladdr', NEIGH_MAC, 'dev', dev, 'nud', 'permanent']);
}

/** RFC 826 ARP request for 192.0.2.1 from 192.0.2.2 / 02:00:00:00:00:02, padded to 60 bytes. */
function arpRequest(into: Buffer, off: number): number {
  const f = into.subarray(off, off + 60);
  f.fill(0);
  f.fill(0xff, 0, 6);
  Buffer.from(OUR_MAC).copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  f.writeUInt16BE(1, 14); // htype Ethernet
  f.writeUInt16BE(0x0800, 16); // ptype IPv4
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(1, 20); // request
  Buffer.from(OUR_MAC).copy(f, 22);
  Buffer.from([192, 0, 2, 2]).copy(f, 28);
  Buffer.from([192, 0, 2, 1]).copy(f, 38);
  return 60;
}

async function sendUdp(count: number): Promise<string[]> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '192.0.2.1', r));
  const sent: string[] = [];
  for (let i = 0; i < count; i++) {
    const msg = `colo-tap-test-${i.toString().padStart(4, '0')}`;
    sent.push(msg);
    await new Promise<void>((r, j) => sock.send(msg, 9999, '192.0.2.99', (e) => (e ? j(e) : r())));
  }
  sock.close();
  return sent;
}

const until = (ms: number) => new Promise((r) => setTimeout(r, ms));

function errInfo(e: unknown): Record<string, unknown> {
  if (e instanceof TapError) return { kind: 'TapError', code: e.code, errno: e.errnoCode, syscall: e.syscall, device: e.device, message: e.message };
  if (e instanceof ColoError) return { kind: 'ColoError', code: e.code, message: e.message };
  const x = e as Error;
  return { kind: x.constructor.name, message: x.message };
}

const scenarios: Record<string, () => Promise<unknown>> = {
  /** ARP request written through the tap; the kernel's reply read back via poll. */
  async arp() {
    const pool = new PacketPool();
    const tap = TapDevice.open(DEV, pool);
    configure(DEV);
    const tapMac = macOf(DEV);
    const frames: string[] = [];
    let resolveReply!: () => void;
    const gotReply = new Promise<void>((r) => (resolveReply = r));
    tap.onFrames((hs, n) => {
      for (let i = 0; i < n; i++) {
        const h = hs[i]!;
        const b = pool.buffer(h);
        const off = pool.offset(h);
        frames.push(b.toString('hex', off, off + pool.length(h)));
        if (b.readUInt16BE(off + 12) === 0x0806) resolveReply();
        pool.release(h);
      }
    });
    const h = pool.acquire(60);
    arpRequest(pool.buffer(h), pool.offset(h));
    const written = tap.write([h]);
    pool.release(h);
    const timeout = until(3000).then(() => 'timeout');
    const outcome = await Promise.race([gotReply.then(() => 'reply'), timeout]);
    const stats = { ...tap.stats };
    tap.close();
    return { outcome, written, frames, tapMac, stats, inUseAfterClose: pool.inUse };
  },

  /** Batched reads of kernel-sent UDP frames and batched writes, checked by kernel counters. */
  async batch() {
    const addon = loadTapAddon();
    const pool = new PacketPool();
    const tap = TapDevice.open(DEV, pool, { batch: 64 });
    configure(DEV);
    const tapMac = macOf(DEV);
    const emptyRead = addon.read(tap.fd, Buffer.alloc(2048), 0, 2048);
    const emptyBatch = addon.readBatch(tap.fd, Buffer.alloc(4096), new Int32Array([0, 2048]), 2048, new Int32Array(2), 2);
    const txBefore = counter(DEV, 'tx_packets');
    const sent = await sendUdp(100);
    await until(100);
    const out = new Int32Array(64);
    const perCall: number[] = [];
    const frames: string[] = [];
    for (;;) {
      const n = tap.readInto(out);
      perCall.push(n);
      if (n <= 0) break;
      for (let i = 0; i < n; i++) {
        const h = out[i]!;
        frames.push(pool.view(h).toString('hex'));
        pool.release(h);
      }
    }
    // tun counts a frame as transmitted when userspace reads it.
    const txDelta = counter(DEV, 'tx_packets') - txBefore;
    // Writes: 100 frames of ethertype 0x88b5 to the tap's own MAC, half from a second slab.
    const small = new PacketPool({ classes: [{ slotSize: 128, slots: 50 }, { slotSize: 2048, slots: 60 }] });
    const wtap = TapDevice.open('ctap1', small, { batch: 16 });
    sh('ip', ['link', 'set', 'ctap1', 'up']);
    const mac = Buffer.from(macOf('ctap1').replaceAll(':', ''), 'hex');
    const hs: number[] = [];
    const slabs = new Set<Buffer>();
    for (let i = 0; i < 100; i++) {
      const h = small.acquire(i < 50 ? 60 : 200);
      const b = small.buffer(h);
      const o = small.offset(h);
      mac.copy(b, o);
      Buffer.from(OUR_MAC).copy(b, o + 6);
      b.writeUInt16BE(0x88b5, o + 12);
      b.fill(i, o + 14, o + small.length(h));
      hs.push(h);
      slabs.add(b);
    }
    const rxBefore = counter('ctap1', 'rx_packets');
    const rxBytesBefore = counter('ctap1', 'rx_bytes');
    const consumed = wtap.write(hs);
    const rxDelta = counter('ctap1', 'rx_packets') - rxBefore;
    const rxBytesDelta = counter('ctap1', 'rx_bytes') - rxBytesBefore;
    const wstats = { ...wtap.stats };
    for (const h of hs) small.release(h);
    tap.close();
    wtap.close();
    return {
      emptyRead,
      emptyBatch,
      sent,
      txDelta,
      perCall,
      frames,
      neighMac: NEIGH_MAC,
      tapMac,
      consumed,
      rxDelta,
      rxBytesDelta,
      slabsUsed: slabs.size,
      wstats,
      poolInUse: pool.inUse + small.inUse,
    };
  },

  /** Pool exhaustion pauses polling; releasing slots resumes it and nothing is lost. */
  async backpressure() {
    const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 16 }] });
    const tap = TapDevice.open(DEV, pool, { batch: 8 });
    configure(DEV);
    const held: number[] = [];
    const payloads: string[] = [];
    let maxHeld = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    tap.onFrames((hs, n) => {
      for (let i = 0; i < n; i++) {
        const h = hs[i]!;
        held.push(h);
        payloads.push(pool.buffer(h).toString('latin1', pool.offset(h) + 42, pool.offset(h) + pool.length(h)));
      }
      maxHeld = Math.max(maxHeld, held.length);
      if (payloads.length >= 100) done();
    });
    // Release everything we hold every 30 ms: the consumer is slower than the kernel.
    const drain = setInterval(() => {
      for (const h of held.splice(0)) pool.release(h);
    }, 30);
    const sent = await sendUdp(100);
    const outcome = await Promise.race([all.then(() => 'all'), until(5000).then(() => 'timeout')]);
    clearInterval(drain);
    for (const h of held.splice(0)) pool.release(h);
    const stats = { ...tap.stats };
    tap.close();
    return { outcome, sent, payloads, maxHeld, capacity: pool.capacity, stats, inUseAfterClose: pool.inUse };
  },

  /** IFF_VNET_HDR: every frame read or written carries a 10-byte virtio_net_hdr first. */
  async vnet() {
    const pool = new PacketPool();
    const tap = TapDevice.open(DEV, pool, { vnetHdr: true });
    configure(DEV);
    const tapMac = macOf(DEV);
    const link = sh('ip', ['-d', 'link', 'show', DEV]);
    await sendUdp(1);
    await until(50);
    const out = new Int32Array(8);
    const n = tap.readInto(out);
    const udp = n > 0 ? pool.view(out[0]!).toString('hex') : '';
    const udpTag = n > 0 ? pool.tag[out[0]!] : -1;
    for (let i = 0; i < n; i++) pool.release(out[i]!);
    // ARP request behind a zeroed vnet header (flags 0, GSO_NONE).
    const h = pool.acquire(70);
    pool.buffer(h).fill(0, pool.offset(h), pool.offset(h) + 10);
    arpRequest(pool.buffer(h), pool.offset(h) + 10);
    const written = tap.write([h]);
    pool.release(h);
    let reply = '';
    for (let t = 0; t < 100 && reply === ''; t++) {
      await until(10);
      const m = tap.readInto(out);
      for (let i = 0; i < m; i++) {
        const v = pool.view(out[i]!);
        if (v.readUInt16BE(10 + 12) === 0x0806) reply = v.toString('hex');
        pool.release(out[i]!);
      }
    }
    const stats = { ...tap.stats };
    tap.close();
    return { link, udp, udpTag, written, reply, neighMac: NEIGH_MAC, tapMac, stats, vnetHdrLen: tap.vnetHdrLen };
  },

  /** Frames longer than frameCapacity are dropped and counted, never delivered cut short. */
  async truncate() {
    const pool = new PacketPool();
    const tap = TapDevice.open(DEV, pool, { frameCapacity: 128 });
    configure(DEV);
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '192.0.2.1', r));
    for (const size of [400, 10, 85, 86, 1000, 20]) {
      await new Promise<void>((r, j) => sock.send(Buffer.alloc(size, 0x61), 9999, '192.0.2.99', (e) => (e ? j(e) : r())));
    }
    sock.close();
    await until(50);
    const out = new Int32Array(8);
    const n = tap.readInto(out);
    const lens: number[] = [];
    for (let i = 0; i < n; i++) {
      lens.push(pool.length(out[i]!));
      pool.release(out[i]!);
    }
    const stats = { ...tap.stats };
    tap.close();
    return { n, lens, stats, inUse: pool.inUse };
  },

  /** The raw poll watcher: stop() inside its own callback, a second watcher on the same fd, pause/resume, throwing callbacks. */
  async poll() {
    const addon = loadTapAddon();
    const pool = new PacketPool();
    const tap = TapDevice.open(DEV, pool);
    configure(DEV);
    const buf = Buffer.alloc(2048);
    const drain = () => {
      let n = 0;
      while (addon.read(tap.fd, buf, 0, 2048) >= 0) n++;
      return n;
    };
    // 1. stop() from inside the callback: exactly one call.
    let calls1 = 0;
    const p1 = addon.poll(tap.fd, () => {
      calls1++;
      drain();
      p1.stop();
    });
    await sendUdp(3);
    await until(100);
    // 2. A new watcher on the same fd; paused while frames arrive, then resumed.
    let calls2 = 0;
    let frames2 = 0;
    const p2 = addon.poll(tap.fd, (status) => {
      if (status === 0) calls2++;
      frames2 += drain();
    });
    p2.pause();
    await sendUdp(2);
    await until(100);
    const callsWhilePaused = calls2;
    p2.resume();
    await until(100);
    p2.stop();
    p2.stop(); // idempotent
    let afterStop = 'no error';
    try {
      p2.resume();
    } catch (e) {
      afterStop = (e as Error).message;
    }
    // 3. A throwing callback surfaces as uncaughtException, like any event callback.
    const caught: string[] = [];
    process.on('uncaughtException', (e) => caught.push(e.message));
    const p3 = addon.poll(tap.fd, () => {
      drain();
      p3.stop();
      throw new Error('boom from poll callback');
    });
    await sendUdp(1);
    await until(100);
    tap.close();
    return { calls1, calls2, frames2, callsWhilePaused, afterStop, caught };
  },

  /** Typed errors for names and kernel refusals; I/O failures as return values. */
  async errors() {
    const pool = new PacketPool();
    const addon = loadTapAddon();
    const tryOpen = (name: string, opts = {}) => {
      try {
        TapDevice.open(name, pool, opts).close();
        return { ok: true };
      } catch (e) {
        return errInfo(e);
      }
    };
    const tooLong = tryOpen('a-very-long-tap-name');
    const slash = tryOpen('bad/name');
    const notTap = tryOpen('lo');
    let rawTooLong: unknown;
    try {
      addon.open('a-very-long-tap-name');
      rawTooLong = { ok: true };
    } catch (e) {
      rawTooLong = errInfo(e);
    }
    let rawBadArgs: unknown;
    try {
      addon.readBatch(0, Buffer.alloc(100), new Int32Array([50]), 100, new Int32Array(1), 1);
      rawBadArgs = { ok: true };
    } catch (e) {
      rawBadArgs = errInfo(e);
    }
    // The same name twice: EBUSY without multi-queue, fine with it.
    const first = TapDevice.open('ctap2', pool);
    const busy = tryOpen('ctap2');
    first.close();
    const mq1 = TapDevice.open('ctap3', pool, { multiQueue: true });
    const mq2 = tryOpen('ctap3', { multiQueue: true });
    mq1.close();
    // Writing to a tap whose link is down: the kernel says EIO; no exception.
    const down = TapDevice.open('ctap4', pool);
    const h = pool.acquire(60);
    arpRequest(pool.buffer(h), pool.offset(h));
    const rawDown = addon.write(down.fd, pool.buffer(h), pool.offset(h), 60);
    const consumed = down.write([h]);
    pool.release(h);
    const downStats = { ...down.stats };
    down.close();
    const emptyName = TapDevice.open('', pool);
    const kernelName = emptyName.name;
    emptyName.close();
    return { tooLong, slash, notTap, rawTooLong, rawBadArgs, busy, mq2, rawDown, consumed, downStats, errno: addon.errno, kernelName, inUse: pool.inUse, READ_POOL_EXHAUSTED };
  },

  /** Run without CAP_NET_ADMIN (setpriv drops it): opening must fail with a clear error. */
  async noperm() {
    const pool = new PacketPool();
    try {
      TapDevice.open(DEV, pool).close();
      return { ok: true };
    } catch (e) {
      return errInfo(e);
    }
  },
};

const name = process.argv[2] ?? '';
const fn = scenarios[name];
if (fn === undefined) {
  console.error(`unknown scenario "${name}"; known: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
fn().then(
  (r) => {
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  },
  (e: unknown) => {
    process.stdout.write(JSON.stringify({ crashed: errInfo(e), stack: (e as Error).stack }) + '\n');
    process.exit(1);
  },
);
