/**
 * The QEMU 7.2 colo-compare rules model (src/analyze/diff/qemu-rules.ts) against REAL QEMU:
 * the guest-less colo-compare (src/replay/qemu-compare.ts, DO_CHECKPOINT counted on
 * notify_dev) gets the same frames in the same order, one at a time, and every checkpoint it
 * asks for is completed at once with COLO_CHECKPOINT — the model's "instant checkpoint". The
 * model is fed the same frames with the times they were written to QEMU. Both must agree on
 * the number of checkpoint requests and on the number of primary frames released.
 *
 * Step synchronisation (so QEMU has handled a frame before the next one is written, making
 * the order deterministic): after each frame a probe UDP datagram pair on a connection of its
 * own (10.255.255.1 → 10.255.255.2) is written to both inputs; the probe's release on outdev
 * proves both sockets were read up to it. After a DO_CHECKPOINT a primary-only probe is queued
 * and COLO_CHECKPOINT sent; that probe's release proves the flush happened. Probes are
 * neither fed to the model nor counted.
 *
 * Also plain unit tests of the model's rules on hand-made frames (oracle: reference §6).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureMerge } from '../../src/capture/merge.js';
import { PcapWriter } from '../../src/capture/writer.js';
import { QemuRulesModel, qemuRulesFromCaptures, type QemuRulesReport } from '../../src/analyze/diff/qemu-rules.js';
import { QemuColoCompare } from '../../src/replay/qemu-compare.js';
import { qemuAvailable } from '../../src/replay/qemu-process.js';
import { TCP_ACK, TCP_PSH, TCP_SYN, tcpFrame, tcpSegments, udpFrame } from '../../src/replay/frame-builder.js';
import { makeWorkload } from '../../src/replay/workload.js';
import { OWN_CAPTURES, sharedCapture } from '../helpers/paths.js';

const HAVE_QEMU = qemuAvailable();
if (!HAVE_QEMU) console.warn('qemu-system-x86_64 not found: real-QEMU agreement tests skipped');

const tmp = mkdtempSync(join(tmpdir(), 'colo-qrules-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const dir = (tag: string): string => join(tmp, `${tag}-${seq++}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Write frames with their times (ms) to a pcap. */
function writePcap(path: string, frames: { buf: Buffer; tMs: number }[]): string {
  const w = new PcapWriter(path);
  for (const f of frames) {
    const ns = Math.round(f.tMs * 1e6);
    w.write(f.buf, 0, f.buf.length, Math.floor(ns / 1e9), ns % 1e9);
  }
  w.close();
  return path;
}

const PROBE = { src: '10.255.255.1', dst: '10.255.255.2', sport: 9, dport: 9 };
const probeFrame = (k: number, tag: string): Buffer => udpFrame({ ...PROBE, payload: Buffer.from(`${tag}${k}`) });
const isProbe = (b: Uint8Array): boolean => b.length >= 34 && b[12] === 0x08 && b[13] === 0x00 && b[26] === 10 && b[27] === 255 && b[28] === 255 && b[29] === 1;

interface Agreement {
  qemu: { requests: number; released: number; drops: number };
  model: QemuRulesReport;
  feedMs: number;
}

/**
 * Feed the merged pair to real QEMU step by step (completing every checkpoint at once) and to
 * the model with the same times; wait for timeouts at the end.
 */
async function runAgainstQemu(primary: string, secondary: string, compareTimeout: number, scanCycle: number, completeCheckpoints = true): Promise<Agreement> {
  const probesOut = new Set<string>();
  let released = 0;
  const cmp = await QemuColoCompare.start({
    compareTimeout,
    expiredScanCycle: scanCycle,
    onRelease: (h) => {
      const b = cmp.pool.view(h);
      if (isProbe(b)) probesOut.add(Buffer.from(b.subarray(42)).toString());
      else released++;
      cmp.pool.release(h);
    },
  });
  const model = new QemuRulesModel({ compareTimeoutMs: compareTimeout, expiredScanCycleMs: scanCycle, timerOriginMs: performance.now(), completion: completeCheckpoints ? 'instant' : 'never' });
  let probesIn = 0;
  let seen = 0;
  const until = async (cond: () => boolean, what: string): Promise<void> => {
    const deadline = performance.now() + 5000;
    while (!cond()) {
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(0.5);
    }
  };
  /** Both sockets read up to here. */
  const sync = async (): Promise<void> => {
    const k = probesIn++;
    const f = probeFrame(k, 'x');
    cmp.primary.writeFrame(f, 0, f.length);
    cmp.secondary.writeFrame(f, 0, f.length);
    cmp.primary.flush();
    cmp.secondary.flush();
    await until(() => probesOut.has(`x${k}`), `probe x${k}`);
  };
  /** Complete every DO_CHECKPOINT seen so far with COLO_CHECKPOINT and wait for the flush. */
  const complete = async (): Promise<void> => {
    await sleep(2); // DO_CHECKPOINT travels on its own socket (written before the probe was released)
    while (cmp.checkpointRequests > seen) {
      seen = cmp.checkpointRequests;
      const k = probesIn++;
      const y = probeFrame(k, 'y');
      cmp.primary.writeFrame(y, 0, y.length);
      cmp.primary.flush();
      // The next sync pair proves y is queued; then the flush must release it.
      await sync();
      cmp.checkpointDone();
      await until(() => probesOut.has(`y${k}`), 'the checkpoint flush');
      await sleep(1);
    }
  };
  try {
    const merge = new CaptureMerge([primary, secondary]);
    const t0 = performance.now();
    try {
      for (let i = merge.next(); i >= 0; i = merge.next()) {
        const r = merge.record(i);
        const buf = Buffer.from(r.buf.subarray(r.off, r.off + r.capLen));
        const t = performance.now();
        if (i === 0) {
          cmp.primary.writeFrame(buf, 0, buf.length);
          model.primary(buf, 0, buf.length, 0, t);
        } else {
          cmp.secondary.writeFrame(buf, 0, buf.length);
          model.secondary(buf, 0, buf.length, 0, t);
        }
        await sync();
        if (completeCheckpoints) await complete();
      }
    } finally {
      merge.close();
    }
    const feedMs = performance.now() - t0;
    if (!completeCheckpoints) {
      // Nobody checkpoints: count the DO_CHECKPOINTs of the feed (well before any timeout).
      await sleep(20);
      model.advance(performance.now());
      return { qemu: { requests: cmp.checkpointRequests, released, drops: cmp.drops }, model: model.report(), feedMs };
    }
    // Whatever is still queued reaches compare_timeout: let both run their scans.
    const end = performance.now() + compareTimeout + 4 * scanCycle;
    while (performance.now() < end) {
      await sleep(Math.min(10, scanCycle / 4));
      await complete();
    }
    model.advance(performance.now());
    return { qemu: { requests: cmp.checkpointRequests, released, drops: cmp.drops }, model: model.report(), feedMs };
  } finally {
    await cmp.stop();
  }
}

/** Short workloads: fed step by step they stay well under compare_timeout. */
const COMPARE_TIMEOUT = 3000;
const SCAN = 100;

function expectAgreement(a: Agreement): void {
  // The feed must stay under compare_timeout, else mid-feed scans depend on timer phase.
  expect(a.feedMs).toBeLessThan(COMPARE_TIMEOUT - 2 * SCAN);
  if (process.env.D_LOG) console.log(JSON.stringify({ qemu: a.qemu, model: { requests: a.model.requests, byCause: a.model.byCause, released: a.model.primary.released, uncompared: a.model.primary.uncompared }, feedMs: Math.round(a.feedMs) }));
  expect(a.qemu.drops).toBe(0);
  expect({ requests: a.model.requests, released: a.model.primary.released + a.model.primary.uncompared }).toEqual({ requests: a.qemu.requests, released: a.qemu.released });
}

describe.skipIf(!HAVE_QEMU)('QEMU rules model = real QEMU 7.2 colo-compare (checkpoint count, released frames)', () => {
  const cases: { name: string; make: () => { primary: string; secondary: string }; atLeast: number }[] = [
    {
      name: 'demo-http.pcapng workload, secondary in the primary sequence space (filter-rewriter)',
      make: () => makeWorkload(`${OWN_CAPTURES}/demo-http.pcapng`, dir('demo'), { seed: 3, rewriteIsn: true }),
      atLeast: 0,
    },
    {
      name: 'demo-http.pcapng workload, secondary in its own sequence space (no rewriter)',
      make: () => makeWorkload(`${OWN_CAPTURES}/demo-http.pcapng`, dir('demo-own'), { seed: 3, rewriteIsn: false }),
      atLeast: 1,
    },
    {
      name: 'tcp-reassembly.pcap re-segmented, short frames padded alike on both sides',
      make: () => makeWorkload(sharedCapture('tcp-reassembly.pcap'), dir('reasm'), { seed: 3, rewriteIsn: true }),
      atLeast: 0,
    },
    {
      name: 'tcp-reassembly.pcap with one injected byte change',
      make: () => makeWorkload(sharedCapture('tcp-reassembly.pcap'), dir('reasm-div'), { seed: 9, rewriteIsn: true, diverge: [{ kind: 'byte', offset: 1000 }] }),
      atLeast: 1,
    },
    {
      name: 'three_http_streams.pcap, identical output',
      make: () => makeWorkload(sharedCapture('three_http_streams.pcap'), dir('three'), { seed: 5, rewriteIsn: true }),
      atLeast: 0,
    },
    {
      name: 'synthetic: identical TCP, re-segmented TCP, UDP burst (newest-first pairing), a changed UDP datagram, IP-ID-only difference on UDP',
      make: () => syntheticPair(dir('synth')),
      atLeast: 2,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const w = c.make();
      const a = await runAgainstQemu(w.primary, w.secondary, COMPARE_TIMEOUT, SCAN);
      expectAgreement(a);
      expect(a.qemu.requests).toBeGreaterThanOrEqual(c.atLeast);
      // The same pair through the capture-time driver gives a count of the same order (timing differs).
      expect(qemuRulesFromCaptures(w.primary, w.secondary).requests).toBeGreaterThanOrEqual(c.atLeast);
    }, 60_000);
  }
});

describe.skipIf(!HAVE_QEMU)('QEMU rules model = real QEMU when nobody checkpoints (DO_CHECKPOINT repeated per packet)', () => {
  for (const c of [
    { name: 'tcp-reassembly.pcap with one injected byte change', make: () => makeWorkload(sharedCapture('tcp-reassembly.pcap'), dir('n-div'), { seed: 9, rewriteIsn: true, diverge: [{ kind: 'byte', offset: 1000 }] }) },
    { name: 'synthetic pair (TCP, UDP burst, changed datagram)', make: () => syntheticPair(dir('n-synth')) },
  ]) {
    it(c.name, async () => {
      const w = c.make();
      const a = await runAgainstQemu(w.primary, w.secondary, COMPARE_TIMEOUT, SCAN, false);
      expectAgreement(a);
      expect(a.model.checkpoints).toBe(0);
      // Every later packet of a mismatched connection asks again: more requests than mismatches.
      expect(a.qemu.requests).toBeGreaterThan(1);
    }, 60_000);
  }
});

/** A small pair exercising several rules at once, in one capture pair. */
function syntheticPair(d: string): { primary: string; secondary: string } {
  const p: { buf: Buffer; tMs: number }[] = [];
  const s: { buf: Buffer; tMs: number }[] = [];
  const T = 1_700_000_000_000;
  const data = Buffer.from(Array.from({ length: 6000 }, (_, i) => (i * 13) & 0xff));
  // 1: identical TCP stream.
  const a = { src: '10.1.0.2', dst: '10.1.0.1', sport: 80, dport: 40001, seq: 5000, ack: 77, ttl: 64 };
  tcpSegments(a, data, 1448).forEach((f, i) => {
    p.push({ buf: f, tMs: T + i });
    s.push({ buf: Buffer.from(f), tMs: T + i + 0.1 });
  });
  // 2: same bytes, segmented 1000 vs 1448 (QEMU's leftover secondary segment times out).
  const b = { ...a, dport: 40002 };
  tcpSegments(b, data, 1000).forEach((f, i) => p.push({ buf: f, tMs: T + 20 + i }));
  tcpSegments(b, data, 1448).forEach((f, i) => s.push({ buf: f, tMs: T + 20.05 + i * 1.5 }));
  // 3: UDP burst of two different datagrams before either secondary (newest-first pairing).
  const u = { src: '10.1.0.2', dst: '10.1.0.1', sport: 53, dport: 40003 };
  p.push({ buf: udpFrame({ ...u, payload: Buffer.from('first answer') }), tMs: T + 40 });
  p.push({ buf: udpFrame({ ...u, payload: Buffer.from('second answer!') }), tMs: T + 41 });
  s.push({ buf: udpFrame({ ...u, payload: Buffer.from('first answer') }), tMs: T + 42 });
  s.push({ buf: udpFrame({ ...u, payload: Buffer.from('second answer!') }), tMs: T + 43 });
  // 4: a changed UDP datagram.
  const v = { ...u, dport: 40004 };
  p.push({ buf: udpFrame({ ...v, payload: Buffer.from('time: 1000.01') }), tMs: T + 50 });
  s.push({ buf: udpFrame({ ...v, payload: Buffer.from('time: 1000.02') }), tMs: T + 51 });
  // 5: UDP with only IP ID / TTL different (never compared by QEMU).
  const x = { ...u, dport: 40005 };
  p.push({ buf: udpFrame({ ...x, payload: Buffer.from('same'), ipId: 1, ttl: 64 }), tMs: T + 60 });
  s.push({ buf: udpFrame({ ...x, payload: Buffer.from('same'), ipId: 2, ttl: 63 }), tMs: T + 61 });
  p.sort((m, n) => m.tMs - n.tMs);
  s.sort((m, n) => m.tMs - n.tMs);
  return { primary: writePcap(`${d}-p.pcap`, p), secondary: writePcap(`${d}-s.pcap`, s) };
}

describe('QEMU rules model: rules on hand-made frames (reference §6)', () => {
  const base = { src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 40000, ack: 1 };
  const bytes = Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 7) & 0xff));
  const feed = (m: QemuRulesModel, side: 'p' | 's', f: Buffer, t: number): void => (side === 'p' ? m.primary(f, 0, f.length, 0, t) : m.secondary(f, 0, f.length, 0, t));

  it('different segmentation matches piecewise; the leftover secondary segment times out (one request, old-packet)', () => {
    const m = new QemuRulesModel({ compareTimeoutMs: 300, expiredScanCycleMs: 50, timerOriginMs: 0 });
    const p = tcpSegments({ ...base, seq: 1000 }, bytes, 700);
    const s = tcpSegments({ ...base, seq: 1000 }, bytes, 1400);
    let t = 1;
    for (const f of s) feed(m, 's', f, t++);
    for (const f of p) feed(m, 'p', f, t++);
    expect(m.report().requests).toBe(0);
    expect(m.report().primary.released).toBe(p.length);
    m.advance(t + 400);
    const r = m.report();
    expect(r.records.map((x) => x.cause)).toEqual(['old-packet']);
    expect(r.requests).toBe(1);
  });

  it('a changed byte: request at the primary segment holding it, stream offset from the SYN', () => {
    const m = new QemuRulesModel({ timerOriginMs: 0 });
    const syn = tcpFrame({ ...base, seq: 999, flags: TCP_SYN | TCP_ACK });
    const p = tcpSegments({ ...base, seq: 1000 }, bytes, 1000);
    const changed = Buffer.from(bytes);
    changed[2500] ^= 0xff;
    const s = tcpSegments({ ...base, seq: 1000 }, changed, 1000);
    feed(m, 'p', syn, 1);
    feed(m, 's', syn, 2);
    for (let i = 0; i < p.length; i++) {
      feed(m, 'p', p[i]!, 10 + i);
      feed(m, 's', s[i]!, 10.5 + i);
    }
    const r = m.report();
    expect(r.records[0]).toMatchObject({ cause: 'tcp-payload', offset: 2000, offsetUnit: 'byte', flow: '10.0.0.2:80-10.0.0.1:40000/TCP' });
    // Instant checkpoint flushes; the next pair matches again: one request only.
    expect(r.requests).toBe(1);
  });

  it('equal bytes but the primary ACKs more than the secondary has: tcp-unacked', () => {
    const m = new QemuRulesModel({ timerOriginMs: 0 });
    const d = bytes.subarray(0, 100);
    feed(m, 's', tcpFrame({ ...base, seq: 1000, ack: 50, flags: TCP_ACK | TCP_PSH, payload: d }), 1);
    feed(m, 'p', tcpFrame({ ...base, seq: 1000, ack: 60, flags: TCP_ACK | TCP_PSH, payload: d.subarray(0, 40) }), 2);
    expect(m.report().records.map((x) => x.cause)).toEqual(['tcp-unacked']);
  });

  it('UDP: newest-first pairing makes a burst mismatch; IP ID / TTL are not compared; non-IPv4 is never compared', () => {
    const m = new QemuRulesModel({ timerOriginMs: 0 });
    const u = { src: '10.0.0.2', dst: '10.0.0.1', sport: 53, dport: 5353 };
    feed(m, 'p', udpFrame({ ...u, payload: Buffer.from('a') }), 1);
    feed(m, 'p', udpFrame({ ...u, payload: Buffer.from('bb') }), 2);
    feed(m, 's', udpFrame({ ...u, payload: Buffer.from('a') }), 3);
    expect(m.report().records.map((x) => [x.cause, x.offset])).toEqual([['packet-different', 1]]);
    const m2 = new QemuRulesModel({ timerOriginMs: 0 });
    feed(m2, 'p', udpFrame({ ...u, payload: Buffer.from('same'), ipId: 5, ttl: 64 }), 1);
    feed(m2, 's', udpFrame({ ...u, payload: Buffer.from('same'), ipId: 9, ttl: 1 }), 2);
    const v6 = udpFrame({ src: '2001:db8::2', dst: '2001:db8::1', sport: 1, dport: 2, payload: Buffer.from('x') });
    feed(m2, 'p', v6, 3);
    feed(m2, 's', udpFrame({ src: '2001:db8::2', dst: '2001:db8::1', sport: 1, dport: 2, payload: Buffer.from('y') }), 4);
    const r = m2.report();
    expect(r.requests).toBe(0);
    expect(r.primary).toMatchObject({ released: 1, uncompared: 1 });
    expect(r.secondary.discarded).toBe(1);
  });

  it('max_queue_size: the (max + 2)th queued primary packet is dropped silently, no request', () => {
    const m = new QemuRulesModel({ maxQueueSize: 4, timerOriginMs: 0 });
    const p = tcpSegments({ ...base, seq: 1000 }, bytes, 100);
    for (let i = 0; i < 7; i++) feed(m, 'p', p[i]!, i);
    const r = m.report();
    expect(r.primary.dropped).toBe(2);
    expect(r.requests).toBe(0);
  });
});
