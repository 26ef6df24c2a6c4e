/**
 * Workload maker: the secondary carries the same server bytes as the primary (oracle: the
 * project's reassembler via extractFlows, and the ORIGINAL capture's server streams), segmented
 * and numbered differently (oracle: tshark's dissection), with valid checksums (tshark), and
 * the compare engine run through the real CLI finds nothing on an identical workload and the
 * manifest's ground truth on a workload with an injected byte change.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ColoError } from '../../src/errors.js';
import { extractFlows, type FlowsReport } from '../../src/cli/flows-extract.js';
import { makeWorkload, type WorkloadResult } from '../../src/replay/workload.js';
import { sharedCapture } from '../helpers/paths.js';
import { compareCheckpointLog } from '../helpers/compare-cli.js';
import { hasTool, tshark } from '../helpers/tools.js';

const tmp = mkdtempSync(join(tmpdir(), 'colo-workload-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const dir = (tag: string): string => join(tmp, `${tag}-${n++}`);

/** Server→client stream bytes per connection, keyed by "server|client" ("client|server" order of the report is the tracker's). */
function serverStreams(report: FlowsReport, servers: ReadonlySet<string>): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const c of report.connections) {
    // The tracker calls the first sender the client; in primary/secondary files that is the server.
    const [srv, cli, d] = servers.has(c.client) ? [c.client, c.server, c.clientToServer] : [c.server, c.client, c.serverToClient];
    m.set(`${srv}|${cli}`, readFileSync(join(report.out, d.file)));
  }
  return m;
}

function serversOf(w: WorkloadResult): Set<string> {
  return new Set(w.manifest.connections.map((c) => c.flow.split('-')[0]!));
}

interface Seg { stream: number; len: number; ipId: number }
function segments(file: string): Seg[] {
  return tshark(['-r', file, '-T', 'fields', '-E', 'separator=,', '-e', 'tcp.stream', '-e', 'tcp.len', '-e', 'ip.id', '-Y', 'tcp'])
    .trim().split('\n').filter((l) => l !== '').map((l) => {
      const [s, len, id] = l.split(',');
      return { stream: Number(s), len: Number(len), ipId: Number(id) };
    });
}

function runCompare(w: WorkloadResult, tag: string): Record<string, unknown>[] {
  return compareCheckpointLog(w.primary, w.secondary, dir(tag));
}

/** Per tcp.stream TTLs, "stream/window" values and all TCP timestamp values of a file (tshark). */
function headerFields(f: string): { ttl: Map<string, Set<string>>; win: Set<string>; ts: Set<string> } {
  const rows = tshark(['-r', f, '-Y', 'tcp', '-T', 'fields', '-E', 'separator=,', '-e', 'tcp.stream', '-e', 'ip.ttl', '-e', 'tcp.window_size_value', '-e', 'tcp.options.timestamp.tsval'])
    .trim().split('\n').map((l) => l.split(','));
  const ttl = new Map<string, Set<string>>();
  const win = new Set<string>();
  const ts = new Set<string>();
  for (const [st, t, w, v] of rows) {
    (ttl.get(st!) ?? ttl.set(st!, new Set()).get(st!)!).add(t!);
    win.add(`${st}/${w}`);
    if (v !== undefined && v !== '') ts.add(v);
  }
  return { ttl, win, ts };
}

const HTTP = sharedCapture('http-packets.pcap');
// Captures without capture loss (http-packets.pcap lost 129 KB of one response: both outputs
// show the same hole, and the engine waits for it until compare_timeout).
const CLEAN = ['three_http_streams.pcap', 'one_tcp_stream.pcap', 'tcp-reassembly.pcap', 'many-protocols.pcap'];

describe('makeWorkload on http-packets.pcap', () => {
  const w = makeWorkload(HTTP, dir('http'), { seed: 42 });
  const servers = serversOf(w);

  it('finds the connections and writes both files and the manifest', () => {
    expect(w.manifest.counts.tcpConnections).toBeGreaterThan(5);
    expect(w.manifest.counts.primaryFrames).toBeGreaterThan(100);
    const m = JSON.parse(readFileSync(join(dirname(w.primary), 'manifest.json'), 'utf8')) as { seed: number; counts: unknown };
    expect(m.seed).toBe(42);
    expect(m.counts).toEqual(w.manifest.counts);
    // Frame counts: tshark agrees with the manifest.
    if (hasTool('tshark')) {
      expect(tshark(['-r', w.primary]).trim().split('\n').length).toBe(w.manifest.counts.primaryFrames);
      expect(tshark(['-r', w.secondary]).trim().split('\n').length).toBe(w.manifest.counts.secondaryFrames);
    }
  });

  it('secondary and primary carry the same server bytes per direction, equal to the capture\'s own server streams', () => {
    const orig = serverStreams(extractFlows(HTTP, dir('fo')), servers);
    const p = serverStreams(extractFlows(w.primary, dir('fp')), servers);
    const s = serverStreams(extractFlows(w.secondary, dir('fs')), servers);
    expect(p.size).toBe(w.manifest.counts.tcpConnections);
    expect([...s.keys()].sort()).toEqual([...p.keys()].sort());
    let total = 0;
    for (const [k, pb] of p) {
      expect(pb.length, k).toBeGreaterThan(0);
      expect(s.get(k)!.equals(pb), k).toBe(true);
      expect(orig.get(k)!.equals(pb), k).toBe(true);
      total += pb.length;
    }
    expect(total).toBeGreaterThan(100_000);
  });

  it.skipIf(!hasTool('tshark'))('segmentation and IP IDs differ (tshark dissection)', () => {
    const ps = segments(w.primary);
    const ss = segments(w.secondary);
    const byStream = (segs: Seg[]) => {
      const m = new Map<number, Seg[]>();
      for (const x of segs) (m.get(x.stream) ?? m.set(x.stream, []).get(x.stream)!).push(x);
      return m;
    };
    const pm = byStream(ps);
    const sm = byStream(ss);
    expect(sm.size).toBe(pm.size);
    let segDiff = 0;
    for (const [k, pl] of pm) {
      const sl = sm.get(k) ?? [];
      const pLens = pl.filter((x) => x.len > 0).map((x) => x.len).join();
      const sLens = sl.filter((x) => x.len > 0).map((x) => x.len).join();
      if (pLens !== sLens) segDiff++;
      expect(sl.map((x) => x.ipId).join(), `stream ${k}`).not.toBe(pl.map((x) => x.ipId).join());
    }
    expect(segDiff).toBe(pm.size);
  });

  it.skipIf(!hasTool('tshark'))('TTL and window differ from the primary\'s (tshark)', () => {
    const p = headerFields(w.primary);
    const s = headerFields(w.secondary);
    for (const [st, set] of p.ttl) for (const t of s.ttl.get(st)!) expect(set.has(t), `stream ${st} TTL ${t}`).toBe(false);
    expect([...s.win].filter((x) => p.win.has(x))).toEqual([]);
  });

  it.skipIf(!hasTool('tshark'))('tshark verifies every IP and TCP checksum of both files as good', () => {
    for (const f of [w.primary, w.secondary]) {
      const out = tshark(['-r', f, '-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-T', 'fields', '-e', 'ip.checksum.status', '-e', 'tcp.checksum.status']);
      const lines = out.trim().split('\n');
      expect(lines.length).toBeGreaterThan(100);
      // Status 1 = Good (0 = Bad, 2 = Unverified).
      expect(lines.filter((l) => l !== '1\t1')).toEqual([]);
    }
  });
});

describe('makeWorkload through colo-proxy compare (CLI, offline pcap inputs)', () => {
  for (const name of CLEAN) {
    for (const rewriteIsn of [false, true]) {
      it(`${name}, rewriteIsn ${rewriteIsn}: identical workload gives zero checkpoints`, () => {
        const w = makeWorkload(sharedCapture(name), dir('clean'), { seed: 3, rewriteIsn });
        expect(w.manifest.counts.secondaryFrames).toBeGreaterThan(0);
        expect(runCompare(w, 'cmp')).toEqual([]);
      }, 30_000);
    }
  }

  const injectOne = (): { flow: string; cps: Record<string, unknown>[] } => {
    const cap = sharedCapture('three_http_streams.pcap');
    const probe = makeWorkload(cap, dir('probe'));
    const target = probe.manifest.connections[1]!;
    const w = makeWorkload(cap, dir('div'), { seed: 5, diverge: [{ kind: 'byte', flow: target.flow, offset: 300 }] });
    expect(w.manifest.groundTruth).toEqual([{ kind: 'byte', flow: target.flow, offset: 300, offsetUnit: 'byte', primaryTimeMs: expect.any(Number), cause: 'payload' }]);
    return { flow: target.flow, cps: runCompare(w, 'cmpdiv') };
  };

  it('one injected byte change: the first checkpoint is exactly the manifest\'s flow, offset and cause; no other flow is blamed', () => {
    const { flow, cps } = injectOne();
    expect(cps.length).toBeGreaterThan(0);
    expect([cps[0]!.flow, cps[0]!.offset, cps[0]!.offsetUnit, cps[0]!.cause]).toEqual([flow, 300, 'byte', 'payload']);
    expect(cps.every((c) => c.flow === flow && (c.offset as number) >= 300)).toBe(true);
  }, 30_000);

  it('a changed UDP datagram gives exactly one checkpoint at the manifest\'s flow and datagram index (many-protocols.pcap: 100+ TCP and UDP flows)', () => {
    const w = makeWorkload(sharedCapture('many-protocols.pcap'), dir('udpdiv'), { seed: 2, diverge: [{ kind: 'udp' }] });
    const gt = w.manifest.groundTruth[0]!;
    expect(gt.flow).toMatch(/\/UDP$/);
    const cps = runCompare(w, 'cmpudp');
    expect(cps.map((c) => [c.flow, c.offset, c.offsetUnit, c.cause])).toEqual([[gt.flow, gt.offset, 'datagram', 'payload']]);
  }, 30_000);

  // The two sides are segmented differently: after the checkpoint the shadow re-anchor must
  // pick the alignment from the bytes that follow, or a spurious 'length' checkpoint follows at
  // the FIN (test/compare/shadow-reanchor.test.ts covers the engine side).
  it('one injected byte change gives exactly ONE checkpoint (shadow re-anchor chosen from the following bytes)', () => {
    const { flow, cps } = injectOne();
    expect(cps.map((c) => [c.flow, c.offset, c.offsetUnit, c.cause])).toEqual([[flow, 300, 'byte', 'payload']]);
  }, 30_000);

  it('a byte change mid-stream of a multi-segment response: the first checkpoint is the ground truth, no other flow is blamed', () => {
    const w = makeWorkload(sharedCapture('tcp-reassembly.pcap'), dir('div2'), { seed: 9, diverge: [{ kind: 'byte', offset: 1000 }] });
    const gt = w.manifest.groundTruth[0]!;
    const cps = runCompare(w, 'cmpdiv2');
    expect(cps.length).toBeGreaterThan(0);
    expect([cps[0]!.flow, cps[0]!.offset, cps[0]!.cause]).toEqual([gt.flow, gt.offset, 'payload']);
    expect(cps.every((c) => c.flow === gt.flow && (c.offset as number) >= gt.offset)).toBe(true);
  }, 30_000);
});

describe('makeWorkload options', () => {
  const cap = sharedCapture('tcp-reassembly.pcap');
  it('is deterministic per seed and varies with it', () => {
    const a = makeWorkload(cap, dir('s'), { seed: 11 });
    const b = makeWorkload(cap, dir('s'), { seed: 11 });
    const c = makeWorkload(cap, dir('s'), { seed: 12 });
    expect(readFileSync(a.secondary).equals(readFileSync(b.secondary))).toBe(true);
    expect(readFileSync(a.secondary).equals(readFileSync(c.secondary))).toBe(false);
    // The primary is the capture's server frames, whatever the seed.
    expect(readFileSync(a.primary).equals(readFileSync(c.primary))).toBe(true);
  });

  it.skipIf(!hasTool('tshark'))('TCP timestamp values are the secondary\'s own (three_http_streams.pcap, tshark)', () => {
    const w = makeWorkload(sharedCapture('three_http_streams.pcap'), dir('ts'), { seed: 4 });
    const p = headerFields(w.primary).ts;
    const s = headerFields(w.secondary).ts;
    expect(p.size).toBeGreaterThan(3);
    expect(s.size).toBeGreaterThan(3);
    expect([...s].filter((x) => p.has(x))).toEqual([]);
  });

  it('rejects a divergence it cannot place, naming the value', () => {
    expect(() => makeWorkload(cap, dir('bad'), { diverge: [{ kind: 'byte', offset: 10_000_000 }] })).toThrow(ColoError);
    expect(() => makeWorkload(cap, dir('bad'), { diverge: [{ kind: 'byte', flow: 'nope', offset: 0 }] })).toThrow(/nope/);
  });
});
