/**
 * The tap addon and TapDevice against the real kernel. Every scenario runs in a child process
 * inside a throwaway network namespace (`unshare -n`: it vanishes with the child, nothing to
 * clean up). Oracles: RFC 826 / 791 / 768 byte layouts, the virtio-net header layout, the
 * kernel's own interface counters and flags as reported by iproute2, and the bytes we sent.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findAddonPath } from '../../src/wire/tap.js';
import { ROOT } from '../helpers/paths.js';
import { hasTool, isRoot } from '../helpers/tools.js';

const CHILD = join(ROOT, 'test', 'native', 'tap-child.ts');
const skip = !isRoot
  ? 'not root: tap tests need CAP_NET_ADMIN'
  : !hasTool('unshare') || !hasTool('ip')
    ? 'unshare or ip (util-linux/iproute2) missing'
    : !existsSync('/dev/net/tun')
      ? '/dev/net/tun missing'
      : null;
if (skip !== null) console.warn(`test/native: skipped: ${skip}`);

type Json = Record<string, any>;

function runChild(scenario: string, prefix: string[] = []): Json {
  const r = spawnSync('unshare', ['-n', ...prefix, process.execPath, '--import', 'tsx', CHILD, scenario], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let out: Json;
  try {
    out = JSON.parse(line) as Json;
  } catch {
    throw new Error(`scenario ${scenario}: no JSON (status ${r.status}): ${r.stdout}\n${r.stderr}`);
  }
  if (out.crashed) throw new Error(`scenario ${scenario} crashed: ${JSON.stringify(out.crashed)}\n${out.stack}`);
  return out;
}

const hex = (s: string) => Buffer.from(s, 'hex');
const macBytes = (mac: string) => Buffer.from(mac.replaceAll(':', ''), 'hex');
const OUR_MAC = macBytes('02:00:00:00:00:02');

/** RFC 1071 ones'-complement sum over an IPv4 header: 0xffff when the checksum is right. */
function ipv4HeaderSumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

/** Check an ARP reply (RFC 826) from the kernel at 192.0.2.1/tapMac to us at 192.0.2.2. */
function expectArpReply(f: Buffer, tapMac: string): void {
  const mac = macBytes(tapMac);
  expect(f.length).toBeGreaterThanOrEqual(42);
  expect(f.subarray(0, 6)).toEqual(OUR_MAC); // Ethernet dst
  expect(f.subarray(6, 12)).toEqual(mac); // Ethernet src
  expect(f.readUInt16BE(12)).toBe(0x0806);
  expect(f.readUInt16BE(14)).toBe(1); // htype Ethernet
  expect(f.readUInt16BE(16)).toBe(0x0800); // ptype IPv4
  expect([f[18], f[19]]).toEqual([6, 4]);
  expect(f.readUInt16BE(20)).toBe(2); // reply
  expect(f.subarray(22, 28)).toEqual(mac); // sender hw = the tap's MAC per iproute2
  expect([...f.subarray(28, 32)]).toEqual([192, 0, 2, 1]);
  expect(f.subarray(32, 38)).toEqual(OUR_MAC);
  expect([...f.subarray(38, 42)]).toEqual([192, 0, 2, 2]);
}

describe.skipIf(skip !== null)('tap addon (real kernel, throwaway namespace)', () => {
  it('the addon is built and found from src/', () => {
    expect(findAddonPath()).toBe(join(ROOT, 'build', 'Release', 'tap.node'));
  });

  it('an ARP request written through the tap is answered by the kernel, read back via poll', () => {
    const r = runChild('arp');
    expect(r.outcome).toBe('reply');
    expect(r.written).toBe(1);
    const arp = (r.frames as string[]).map(hex).filter((f) => f.readUInt16BE(12) === 0x0806);
    expect(arp.length).toBeGreaterThanOrEqual(1);
    expectArpReply(arp[0]!, r.tapMac);
    expect(r.stats.framesOut).toBe(1);
    expect(r.stats.bytesOut).toBe(60);
    expect(r.inUseAfterClose).toBe(0);
  });

  it('batched reads deliver kernel-sent frames intact and in order; batched writes reach the kernel', () => {
    const r = runChild('batch');
    expect(r.emptyRead).toBe(-1); // EAGAIN is a value, not an exception
    expect(r.emptyBatch).toBe(0);
    expect(r.perCall).toEqual([64, 36, 0]);
    expect(r.txDelta).toBe(100); // the kernel's own count of frames handed to us
    const sent = r.sent as string[];
    const frames = (r.frames as string[]).map(hex);
    expect(frames).toHaveLength(100);
    frames.forEach((f, i) => {
      expect(f.subarray(0, 6)).toEqual(macBytes(r.neighMac));
      expect(f.subarray(6, 12)).toEqual(macBytes(r.tapMac));
      expect(f.readUInt16BE(12)).toBe(0x0800);
      const ip = f.subarray(14, 34);
      expect(ip[0]).toBe(0x45);
      expect(ip[9]).toBe(17);
      expect(ipv4HeaderSumOk(ip)).toBe(true);
      expect([...ip.subarray(12, 16)]).toEqual([192, 0, 2, 1]);
      expect([...ip.subarray(16, 20)]).toEqual([192, 0, 2, 99]);
      expect(f.readUInt16BE(36)).toBe(9999);
      expect(f.readUInt16BE(38)).toBe(8 + sent[i]!.length);
      expect(f.toString('latin1', 42)).toBe(sent[i]);
    });
    // Writes: 50 × 60 B from one slab, 50 × 200 B from another; runs of ≤16 per native call.
    expect(r.slabsUsed).toBe(2);
    expect(r.consumed).toBe(100);
    expect(r.rxDelta).toBe(100);
    expect(r.rxBytesDelta).toBe(50 * 60 + 50 * 200);
    expect(r.wstats.writeCalls).toBe(2 * Math.ceil(50 / 16));
    expect(r.wstats.framesOut).toBe(100);
    expect(r.poolInUse).toBe(0);
  });

  it('pool exhaustion pauses polling and resumes when slots free up, losing nothing', () => {
    const r = runChild('backpressure');
    expect(r.outcome).toBe('all');
    expect(r.payloads).toEqual(r.sent);
    expect(r.maxHeld).toBeLessThanOrEqual(r.capacity);
    expect(r.stats.poolStalls).toBeGreaterThan(0);
    expect(r.inUseAfterClose).toBe(0);
  });

  it('frames that fill frameCapacity are dropped as possibly cut, shorter ones delivered', () => {
    const r = runChild('truncate');
    // UDP payloads 400, 10, 85, 86, 1000, 20 → frames 442, 52, 127, 128, 1042, 62 against capacity 128.
    expect(r.lens).toEqual([52, 127, 62]);
    expect(r.stats.truncated).toBe(3);
    expect(r.inUse).toBe(0);
  });

  it('the poll watcher: stop inside the callback, a second watcher, pause/resume, throwing callbacks', () => {
    const r = runChild('poll');
    expect(r.calls1).toBe(1);
    expect(r.callsWhilePaused).toBe(0);
    expect(r.calls2).toBeGreaterThanOrEqual(1);
    expect(r.frames2).toBe(2);
    expect(r.afterStop).toMatch(/stopped/);
    expect(r.caught).toEqual(['boom from poll callback']);
  });

  it('vnet_hdr on: iproute2 sees the flag and every frame carries a 10-byte virtio_net_hdr', () => {
    const r = runChild('vnet');
    expect(r.link).toMatch(/tun type tap pi off vnet_hdr on/);
    expect(r.vnetHdrLen).toBe(10);
    const udp = hex(r.udp);
    // 10-byte header + 14 Ethernet + 20 IPv4 + 8 UDP + 18-byte payload.
    expect(udp.length).toBe(10 + 14 + 20 + 8 + 18);
    expect(udp[1]).toBe(0); // gso_type VIRTIO_NET_HDR_GSO_NONE: no offloads negotiated
    expect(udp.subarray(10, 16)).toEqual(macBytes(r.neighMac));
    expect(udp.readUInt16BE(10 + 12)).toBe(0x0800);
    expect(r.udpTag).toBe(10);
    expect(r.written).toBe(1);
    expect(r.stats.bytesOut).toBe(70);
    const reply = hex(r.reply);
    expect(reply.length).toBeGreaterThanOrEqual(10 + 42);
    expect(reply[1]).toBe(0);
    expectArpReply(reply.subarray(10), r.tapMac);
  });

  it('bad names, non-tap names, busy devices and down links give clear typed results', () => {
    const r = runChild('errors');
    expect(r.tooLong).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(r.tooLong.message).toContain('a-very-long-tap-name');
    expect(r.slash).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(r.notTap).toMatchObject({ kind: 'TapError', code: 'ERR_TAP', errno: 'EINVAL', syscall: 'ioctl(TUNSETIFF)', device: 'lo' });
    expect(r.rawTooLong.kind).toBe('RangeError');
    expect(r.rawBadArgs.kind).toBe('RangeError'); // out-of-bounds offsets refused before any read
    expect(r.busy).toMatchObject({ code: 'ERR_TAP', errno: 'EBUSY' });
    expect(r.mq2).toEqual({ ok: true });
    expect(r.rawDown).toBe(-r.errno.EIO); // link down: the kernel refuses with EIO, no throw
    expect(r.consumed).toBe(1);
    expect(r.downStats).toMatchObject({ writeErrors: 1, framesOut: 0, lastErrno: r.errno.EIO });
    expect(r.kernelName).toMatch(/^tap\d+$/);
    expect(r.inUse).toBe(0);
  });

  it.skipIf(!hasTool('setpriv'))('without CAP_NET_ADMIN, open fails with ERR_TAP / EPERM and says why', () => {
    const r = runChild('noperm', ['setpriv', '--bounding-set=-net_admin', '--inh-caps=-net_admin']);
    expect(r).toMatchObject({ kind: 'TapError', code: 'ERR_TAP', errno: 'EPERM', syscall: 'ioctl(TUNSETIFF)' });
    expect(r.message).toContain('CAP_NET_ADMIN');
  });
});
