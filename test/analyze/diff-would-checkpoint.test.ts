/**
 * "Would checkpoint" (src/analyze/diff/would-checkpoint.ts): the pair replayed through
 * colo-proxy's CompareEngine in shadow mode. Oracles: the workload maker's ground truth (flow,
 * offset, cause of every injected divergence), and `colo-proxy compare` run as a child process
 * on the same pair (its --checkpoint-log), which must report the same checkpoints.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeDiff } from '../../src/analyze/diff/analyze.js';
import { attachWouldCheckpoint, flowTextMatches, parseFlowText, wouldCheckpoint } from '../../src/analyze/diff/would-checkpoint.js';
import { PcapWriter } from '../../src/capture/writer.js';
import { ColoError } from '../../src/errors.js';
import { tcpSegments, udpFrame } from '../../src/replay/frame-builder.js';
import { makeWorkload } from '../../src/replay/workload.js';
import { OWN_CAPTURES, sharedCapture } from '../helpers/paths.js';
import { compareCheckpointLog } from '../helpers/compare-cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'colo-wouldck-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const dir = (tag: string): string => join(tmp, `${tag}-${n++}`);

/** `colo-proxy compare` on the pair: its checkpoint log lines. */
function compareCli(primary: string, secondary: string): Record<string, unknown>[] {
  return compareCheckpointLog(primary, secondary, dir('cli'));
}

describe('wouldCheckpoint: colo-proxy engine on workload pairs', () => {
  for (const [name, rewriteIsn] of [
    ['demo-http.pcapng', true],
    ['demo-http.pcapng', false],
    ['three_http_streams.pcap', true],
    ['tcp-reassembly.pcap', false],
  ] as const) {
    it(`${name}, rewriteIsn ${rewriteIsn}: same output differently segmented → no checkpoint; every primary frame released`, async () => {
      const cap = name === 'demo-http.pcapng' ? join(OWN_CAPTURES, name) : sharedCapture(name);
      const w = makeWorkload(cap, dir('same'), { seed: 4, rewriteIsn });
      const r = await wouldCheckpoint(w.primary, w.secondary);
      expect(r.coloProxy.checkpoints).toBe(0);
      // (tcp-reassembly own-space: the primary's last pure ACK, after its FIN, which the secondary
      // skipped, is held to compare_timeout after the end: `atEnd`, not counted here.)
      expect(r.coloProxy.records.filter((x) => x.atMs <= r.lastMs)).toEqual([]);
      expect(r.frames).toEqual([w.manifest.counts.primaryFrames, w.manifest.counts.secondaryFrames]);
      expect(r.coloProxy.accounting.primary.balanced).toBe(true);
      expect(r.qemu).toBeUndefined();
    }, 30_000);
  }

  it('one injected byte change: the first checkpoint is the ground truth, and `colo-proxy compare` reports the same checkpoints', async () => {
    const w = makeWorkload(sharedCapture('tcp-reassembly.pcap'), dir('byte'), { seed: 9, diverge: [{ kind: 'byte', offset: 1000 }] });
    const gt = w.manifest.groundTruth[0]!;
    const r = await wouldCheckpoint(w.primary, w.secondary);
    expect(r.coloProxy.checkpoints).toBeGreaterThan(0);
    const first = r.coloProxy.records[0]!;
    expect([first.flow, first.offset, first.offsetUnit, first.cause, first.requested]).toEqual([gt.flow, gt.offset, 'byte', 'payload', true]);
    expect(r.coloProxy.byCause.payload).toBeGreaterThanOrEqual(1);
    const cli = compareCli(w.primary, w.secondary);
    // `compare` stops at the end of its input; ours also lets held frames time out after it (atEnd).
    const within = r.coloProxy.records.filter((x) => x.requested && x.atMs <= r.lastMs);
    expect(within.map((x) => [x.flow, x.offset, x.cause])).toEqual(cli.map((x) => [x['flow'], x['offset'], x['cause']]));
    expect(r.coloProxy.checkpoints).toBe(cli.length);
  }, 30_000);

  it('a changed UDP datagram among 100+ flows: one checkpoint at the ground-truth datagram index; attached to exactly that diff flow', async () => {
    const w = makeWorkload(sharedCapture('many-protocols.pcap'), dir('udp'), { seed: 2, diverge: [{ kind: 'udp' }] });
    const gt = w.manifest.groundTruth[0]!;
    const r = await wouldCheckpoint(w.primary, w.secondary);
    expect(r.coloProxy.records.map((x) => [x.flow, x.offset, x.offsetUnit, x.cause])).toEqual([[gt.flow, gt.offset, 'datagram', 'payload']]);
    const result = analyzeDiff(w.primary, w.secondary);
    attachWouldCheckpoint(result, r);
    expect(result.summary.wouldCheckpoint).toMatchObject({ coloProxy: 1 });
    const withCk = result.flows.filter((f) => (f.wouldCheckpoint?.coloProxy ?? 0) > 0);
    expect(withCk.length).toBe(1);
    const t = parseFlowText(gt.flow)!;
    // Ground truth names the flow server → client.
    expect([withCk[0]!.server, withCk[0]!.client, withCk[0]!.protocol]).toEqual([t.a, t.b, 'udp']);
    expect(result.flows.every((f) => f.wouldCheckpoint !== undefined)).toBe(true);
  }, 30_000);

  it('with qemuRules: the QEMU-rules report is there, with its own counts', async () => {
    const w = makeWorkload(sharedCapture('three_http_streams.pcap'), dir('q'), { seed: 5, rewriteIsn: true, diverge: [{ kind: 'byte', offset: 300 }] });
    const r = await wouldCheckpoint(w.primary, w.secondary, { qemuRules: true });
    expect(r.coloProxy.checkpoints).toBe(1);
    expect(r.qemu).toBeDefined();
    expect(r.qemu!.byCause['tcp-payload']).toBeGreaterThanOrEqual(1);
    expect(r.qemu!.records[0]!.flow).toBe(w.manifest.groundTruth[0]!.flow);
  }, 30_000);
});

describe('wouldCheckpoint: time and bad input', () => {
  const T = 1_700_000_000;
  function write(path: string, frames: Buffer[], t0 = T): string {
    const wr = new PcapWriter(path);
    frames.forEach((f, i) => wr.write(f, 0, f.length, t0, i * 1000));
    wr.close();
    return path;
  }
  const base = { src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 40000, seq: 1000, ack: 1 };
  const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => i & 0xff));

  it('primary data the secondary never sends: held, then a timeout checkpoint once the clock runs on after the capture (not with drainMs 0)', async () => {
    const d = dir('silent');
    const p = write(`${d}-p.pcap`, tcpSegments(base, bytes, 1000));
    const s = write(`${d}-s.pcap`, [udpFrame({ src: '10.9.9.9', dst: '10.9.9.8', sport: 1, dport: 2, payload: Buffer.from('x') })]);
    const r = await wouldCheckpoint(p, s);
    // Within the capture nothing timed out yet (3 ms of traffic); after it, the held data does.
    expect(r.coloProxy.checkpoints).toBe(0);
    expect(r.coloProxy.atEnd).toBe(1);
    expect(r.coloProxy.records[0]).toMatchObject({ cause: 'timeout', flow: '10.0.0.2:80-10.0.0.1:40000/TCP', offset: 0 });
    expect(r.coloProxy.records[0]!.atMs).toBeGreaterThanOrEqual(r.lastMs + 3000);
    const r0 = await wouldCheckpoint(p, s, { drainMs: 0 });
    expect([r0.coloProxy.checkpoints, r0.coloProxy.atEnd]).toEqual([0, 0]);
  });

  it('a truncated capture: a ColoError naming the problem, not a crash', async () => {
    const d = dir('trunc');
    const p = write(`${d}-p.pcap`, tcpSegments(base, bytes, 1000));
    const full = readFileSync(p);
    const cut = `${d}-cut.pcap`;
    writeFileSync(cut, full.subarray(0, full.length - 100));
    const err = await wouldCheckpoint(p, cut).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ColoError);
    expect((err as Error).message.length).toBeGreaterThan(0);
  });
});

describe('flow text mapping', () => {
  it('parses IPv4 and bracketed IPv6 flow text and matches either direction', () => {
    expect(parseFlowText('10.0.0.2:80-10.0.0.1:40000/TCP')).toEqual({ a: '10.0.0.2:80', b: '10.0.0.1:40000', proto: 'tcp' });
    expect(parseFlowText('[2001:db8::2]:53-[2001:db8::1]:5353/UDP')).toEqual({ a: '[2001:db8::2]:53', b: '[2001:db8::1]:5353', proto: 'udp' });
    expect(parseFlowText('garbage')).toBeNull();
    const f = { client: '10.0.0.1:40000', server: '10.0.0.2:80', protocol: 'tcp' as const };
    expect(flowTextMatches('10.0.0.2:80-10.0.0.1:40000/TCP', f)).toBe(true);
    expect(flowTextMatches('10.0.0.1:40000-10.0.0.2:80/TCP', f)).toBe(true);
    expect(flowTextMatches('10.0.0.1:40000-10.0.0.2:80/UDP', f)).toBe(false);
    expect(flowTextMatches('10.0.0.1:40001-10.0.0.2:80/TCP', f)).toBe(false);
  });
});
