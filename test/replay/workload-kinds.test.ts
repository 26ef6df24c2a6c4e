/**
 * Workload divergence kinds (missing, extra, late, silent, next to byte and udp): the
 * secondary really carries the change (oracles: the project's reassembler via extractFlows,
 * and tshark's dissection), and the compare engine's FIRST report for the divergence is the
 * manifest's flow, offset and cause, with no other flow blamed.
 *
 * The engine is driven on capture time by the project's offline replay (replayCapturePair, the
 * same loop `colo-proxy compare` uses for pcap inputs): the compare_timeout scan runs before
 * each frame is handed over (a live timer fires while the late frame is still in flight), and
 * after the last frame the clock runs on until held frames expire (a live engine's timer keeps
 * running when the traffic stops). The tests at the end check the same through the real CLI.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { extractFlows, type DirectionReport } from '../../src/cli/flows-extract.js';
import type { DivergenceRecord } from '../../src/compare/divergence.js';
import { ColoError } from '../../src/errors.js';
import { makeWorkload, type DivergeSpec, type WorkloadResult } from '../../src/replay/workload.js';
import { OWN_CAPTURES, sharedCapture } from '../helpers/paths.js';
import { compareCheckpointLog, shadowRecords } from '../helpers/compare-cli.js';
import { hasTool, tshark } from '../helpers/tools.js';

const tmp = mkdtempSync(join(tmpdir(), 'colo-wlkinds-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const dir = (tag: string): string => join(tmp, `${tag}-${n++}`);
const DEMO = join(OWN_CAPTURES, 'demo-http.pcapng');

/** Every divergence record (requested or joined) of a shadow-mode engine run over the pair. */
function engineRecords(primary: string, secondary: string, timeoutMs = 3000): Promise<DivergenceRecord[]> {
  return shadowRecords(primary, secondary, { limits: { compareTimeoutMs: timeoutMs, expiredScanCycleMs: 1000, maxFlowHeldPackets: 1024 }, drainMs: timeoutMs + 2000 });
}

/** Server and client endpoint text of a server→client flow text. */
function ends(flow: string): [string, string] {
  const [a, b] = flow.replace(/\/TCP$/, '').split('-');
  return [a!, b!];
}

/** Server→client direction of connection `flow` (server→client flow text) in a workload file. */
function serverDir(file: string, flow: string, tag: string): { bytes: Buffer; d: DirectionReport } {
  const [server, client] = ends(flow);
  const r = extractFlows(file, dir(tag));
  for (const c of r.connections) {
    // The tracker calls the first sender (here the server's SYN-ACK) the client.
    if (c.client === server && c.server === client) return { bytes: readFileSync(join(r.out, c.clientToServer.file)), d: c.clientToServer };
    if (c.server === server && c.client === client) return { bytes: readFileSync(join(r.out, c.serverToClient.file)), d: c.serverToClient };
  }
  throw new Error(`no connection ${flow} in ${file}`);
}


/** Per segment of one flow (server → client, tshark): relative seq, length, epoch time (ms), FIN. */
function segs(file: string, flow: string): { seq: number; len: number; t: number; fin: boolean }[] {
  const [server, client] = ends(flow);
  const hp = (e: string): [string, string] => [e.slice(0, e.lastIndexOf(':')).replace(/^\[|\]$/g, ''), e.slice(e.lastIndexOf(':') + 1)];
  const [host, port] = hp(server);
  const [, cport] = hp(client);
  const ip = host.includes(':') ? 'ipv6' : 'ip';
  return tshark(['-r', file, '-Y', `${ip}.src == ${host} && tcp.srcport == ${port} && tcp.dstport == ${cport}`, '-T', 'fields', '-E', 'separator=,',
    '-e', 'tcp.seq', '-e', 'tcp.len', '-e', 'frame.time_epoch', '-e', 'tcp.flags.fin'])
    .trim().split('\n').filter((l) => l !== '').map((l) => {
      const [s, len, t, fin] = l.split(',');
      return { seq: Number(s), len: Number(len), t: Number(t) * 1000, fin: fin === '1' || fin === 'True' };
    });
}

async function first(w: WorkloadResult): Promise<{ recs: DivergenceRecord[]; gt: WorkloadResult['manifest']['groundTruth'][number] }> {
  const gt = w.manifest.groundTruth[0]!;
  return { recs: await engineRecords(w.primary, w.secondary), gt };
}

/** The engine's first record is the ground truth; no other flow is blamed. */
function expectFound(recs: DivergenceRecord[], gt: { flow: string; offset: number; cause: string; offsetUnit: string }): void {
  expect(recs.length).toBeGreaterThan(0);
  expect([recs[0]!.flow, recs[0]!.offset, recs[0]!.offsetUnit, recs[0]!.cause]).toEqual([gt.flow, gt.offset, gt.offsetUnit, gt.cause]);
  expect(recs.filter((r) => r.flow !== gt.flow)).toEqual([]);
}

const make = (cap: string, d: DivergeSpec, seed = 5): WorkloadResult => makeWorkload(cap, dir(d.kind), { seed, diverge: [d] });

describe('the secondary carries each divergence (reassembler and tshark oracles)', () => {
  it('missing: a hole of exactly [offset, offset+len) in the secondary stream, everything else equal to the primary', () => {
    const w = make(DEMO, { kind: 'missing', offset: 20_000, length: 1448 });
    const gt = w.manifest.groundTruth[0]!;
    expect(gt).toMatchObject({ kind: 'missing', offset: 20_000, length: 1448, cause: 'timeout', offsetUnit: 'byte' });
    const p = serverDir(w.primary, gt.flow, 'mp');
    const s = serverDir(w.secondary, gt.flow, 'ms');
    expect(p.d.gapList).toEqual([]);
    expect(s.d.gapList.map((g) => [g.offset, g.len])).toEqual([[20_000, 1448]]);
    expect(s.bytes.equals(Buffer.concat([p.bytes.subarray(0, 20_000), p.bytes.subarray(21_448)]))).toBe(true);
  });

  it('extra: LEN inserted bytes at offset, each differing from the byte it displaces; the rest shifted, FIN too', () => {
    const w = make(DEMO, { kind: 'extra', offset: 10_000, length: 16 });
    const gt = w.manifest.groundTruth[0]!;
    expect(gt).toMatchObject({ kind: 'extra', offset: 10_000, length: 16, cause: 'payload' });
    const p = serverDir(w.primary, gt.flow, 'ep');
    const s = serverDir(w.secondary, gt.flow, 'es');
    expect(s.bytes.length).toBe(p.bytes.length + 16);
    expect(s.bytes.subarray(0, 10_000).equals(p.bytes.subarray(0, 10_000))).toBe(true);
    expect(s.bytes.subarray(10_016).equals(p.bytes.subarray(10_000))).toBe(true);
    for (let i = 0; i < 16; i++) expect(s.bytes[10_000 + i]).not.toBe(p.bytes[10_000 + i]);
    if (hasTool('tshark')) {
      const fin = (f: string): number => segs(f, gt.flow).find((x) => x.fin)!.seq;
      expect(fin(w.secondary) - fin(w.primary)).toBe(16);
    }
  });

  it('extra appended at the stream end: the manifest expects length, the secondary ends 5 bytes later', () => {
    const probe = makeWorkload(DEMO, dir('probe'));
    const c = probe.manifest.connections[0]!;
    const w = make(DEMO, { kind: 'extra', flow: c.flow, offset: c.bytes, length: 5 });
    expect(w.manifest.groundTruth[0]).toMatchObject({ flow: c.flow, offset: c.bytes, cause: 'length' });
    const s = serverDir(w.secondary, c.flow, 'eas');
    expect(s.bytes.length).toBe(c.bytes + 5);
  });

  it.skipIf(!hasTool('tshark'))('late: the same bytes; every secondary frame of the flow from offset on is at least delayMs after the primary\'s, the ones before are not', () => {
    const w = make(DEMO, { kind: 'late', offset: 1000, delayMs: 4500 });
    const gt = w.manifest.groundTruth[0]!;
    expect(gt).toMatchObject({ kind: 'late', offset: 1000, delayMs: 4500, cause: 'timeout' });
    const srv = gt.flow;
    expect(serverDir(w.secondary, srv, 'ls').bytes.equals(serverDir(w.primary, srv, 'lp').bytes)).toBe(true);
    const p = segs(w.primary, srv).filter((x) => x.len > 0);
    const s = segs(w.secondary, srv).filter((x) => x.len > 0);
    const pAt = (off: number): number => p.find((x) => x.seq - 1 <= off && off < x.seq - 1 + x.len)!.t;
    const before = s.filter((x) => x.seq - 1 < 1000);
    const after = s.filter((x) => x.seq - 1 >= 1000);
    expect(before.length).toBeGreaterThan(0);
    expect(after.length).toBeGreaterThan(0);
    // A segment boundary at the offset: no secondary segment straddles it.
    expect(s.some((x) => x.seq - 1 < 1000 && x.seq - 1 + x.len > 1000)).toBe(false);
    for (const x of before) expect(x.t - pAt(x.seq - 1)).toBeLessThan(100);
    for (const x of after) expect(x.t - pAt(x.seq - 1)).toBeGreaterThanOrEqual(4500);
    // The manifest's time of the divergence is the primary frame carrying byte 1000.
    expect(gt.primaryTimeMs).toBeCloseTo(pAt(1000), 3);
  });

  it.skipIf(!hasTool('tshark'))('silent: the secondary stream stops at offset and carries no FIN for the flow', () => {
    const w = make(DEMO, { kind: 'silent', offset: 5000 });
    const gt = w.manifest.groundTruth[0]!;
    expect(gt).toMatchObject({ kind: 'silent', offset: 5000, cause: 'timeout' });
    const srv = gt.flow;
    const p = serverDir(w.primary, srv, 'sp');
    const s = serverDir(w.secondary, srv, 'ss');
    expect(s.bytes.equals(p.bytes.subarray(0, 5000))).toBe(true);
    expect(segs(w.secondary, srv).some((x) => x.fin)).toBe(false);
    expect(segs(w.primary, srv).some((x) => x.fin)).toBe(true);
  });
});

describe('the compare engine reports each kind as the manifest says (first record, no other flow blamed)', () => {
  const cases: [string, string, DivergeSpec][] = [
    ['demo-http', DEMO, { kind: 'byte', offset: 1000 }],
    ['demo-http', DEMO, { kind: 'missing', offset: 20_000, length: 1448 }],
    ['demo-http', DEMO, { kind: 'missing', offset: 0, length: 100 }],
    ['demo-http', DEMO, { kind: 'extra', offset: 10_000, length: 16 }],
    ['demo-http', DEMO, { kind: 'extra', offset: 0, length: 3 }],
    ['demo-http', DEMO, { kind: 'late', offset: 1000 }],
    ['demo-http', DEMO, { kind: 'late', offset: 0 }],
    ['demo-http', DEMO, { kind: 'silent', offset: 5000 }],
    ['demo-http', DEMO, { kind: 'silent', offset: 0 }],
    ['demo-http', DEMO, { kind: 'udp', index: 0 }],
    ['tcp-reassembly', sharedCapture('tcp-reassembly.pcap'), { kind: 'missing', offset: 3000, length: 500 }],
    ['tcp-reassembly', sharedCapture('tcp-reassembly.pcap'), { kind: 'extra', offset: 2500, length: 40 }],
    ['tcp-reassembly', sharedCapture('tcp-reassembly.pcap'), { kind: 'late', offset: 1500, delayMs: 4000 }],
    ['three_http_streams', sharedCapture('three_http_streams.pcap'), { kind: 'silent', offset: 200 }],
  ];
  for (const [name, cap, d] of cases) {
    it(`${name} ${JSON.stringify(d)}`, async () => {
      const { recs, gt } = await first(make(cap, d));
      expectFound(recs, gt);
    }, 30_000);
  }

  it('extra appended at the end: length at the primary\'s FIN offset', async () => {
    const probe = makeWorkload(DEMO, dir('probe'));
    const c = probe.manifest.connections[1]!;
    const { recs, gt } = await first(make(DEMO, { kind: 'extra', flow: c.flow, offset: c.bytes, length: 5 }));
    expect(gt.cause).toBe('length');
    expectFound(recs, gt);
  });

  it('with rewriteIsn too (missing and extra)', async () => {
    for (const d of [{ kind: 'missing', offset: 2000, length: 10 }, { kind: 'extra', offset: 2000, length: 10 }] as DivergeSpec[]) {
      const w = makeWorkload(DEMO, dir('isn'), { seed: 8, rewriteIsn: true, diverge: [d] });
      expectFound(await engineRecords(w.primary, w.secondary), w.manifest.groundTruth[0]!);
    }
  });

  it('a late delay inside compare_timeout is no divergence (the engine waits for it)', async () => {
    const w = make(DEMO, { kind: 'late', offset: 1000, delayMs: 2000 });
    expect(await engineRecords(w.primary, w.secondary)).toEqual([]);
  });
});

describe('placement errors name the problem', () => {
  it('rejects divergences that do not fit or collide', () => {
    const probe = makeWorkload(DEMO, dir('probe'));
    const c = probe.manifest.connections[0]!;
    const bad = (d: DivergeSpec[]): (() => unknown) => () => makeWorkload(DEMO, dir('bad'), { diverge: d });
    expect(bad([{ kind: 'missing', flow: c.flow, offset: c.bytes - 10, length: 20 }])).toThrow(/does not fit/);
    expect(bad([{ kind: 'extra', flow: c.flow, offset: c.bytes + 1, length: 2 }])).toThrow(ColoError);
    expect(bad([{ kind: 'silent', offset: 10_000_000 }])).toThrow(/no TCP connection with a captured server byte at offset 10000000/);
    expect(bad([{ kind: 'missing', flow: c.flow, offset: 0, length: 10 }, { kind: 'late', flow: c.flow, offset: 100 }])).toThrow(/only one on its connection/);
    expect(bad([{ kind: 'byte', flow: c.flow, offset: 0 }, { kind: 'silent', flow: c.flow, offset: 100 }])).toThrow(/only one on its connection/);
    expect(bad([{ kind: 'late', flow: c.flow, offset: 0, delayMs: 0 }])).toThrow(/delay/);
  });

  it('default flows: each structural divergence goes to the first connection that fits and has none yet', () => {
    const w = makeWorkload(DEMO, dir('dflt'), { diverge: [{ kind: 'byte', offset: 100 }, { kind: 'silent', offset: 100 }, { kind: 'missing', offset: 100, length: 1 }] });
    const flows = w.manifest.groundTruth.map((g) => g.flow);
    expect(new Set(flows).size).toBe(3);
    expect(flows[0]).toBe(w.manifest.connections[0]!.flow);
  });
});

/** Checkpoint requests of `colo-proxy compare` on pcap inputs (the real CLI). */
function cliCheckpoints(w: WorkloadResult): Record<string, unknown>[] {
  return compareCheckpointLog(w.primary, w.secondary, dir('cli'));
}

describe('through colo-proxy compare with pcap inputs (CLI)', () => {
  const check = (w: WorkloadResult): void => {
    const gt = w.manifest.groundTruth[0]!;
    const cps = cliCheckpoints(w);
    expect(cps.length).toBeGreaterThan(0);
    expect([cps[0]!.flow, cps[0]!.offset, cps[0]!.cause]).toEqual([gt.flow, gt.offset, gt.cause]);
    expect(cps.filter((c) => c.flow !== gt.flow)).toEqual([]);
  };
  it('extra: first checkpoint is the ground truth', () => check(make(DEMO, { kind: 'extra', offset: 10_000, length: 16 })), 30_000);

  it('late: first checkpoint is the ground truth', () => check(make(DEMO, { kind: 'late', offset: 1000 })), 30_000);
  it('missing: first checkpoint is the ground truth', () => check(make(DEMO, { kind: 'missing', offset: 20_000, length: 1448 })), 30_000);
  it('silent: first checkpoint is the ground truth', () => check(make(DEMO, { kind: 'silent', offset: 5000 })), 30_000);
});

describe('bundled workloads (captures/workloads) against the engine', () => {
  const W = join(OWN_CAPTURES, 'workloads');
  const pair = (name: string): [string, string] => [join(W, name, 'primary.pcap'), join(W, name, 'secondary.pcap')];

  for (const name of ['http-identical', 'bulk']) {
    it(`${name}: no divergence record at all`, async () => {
      const m = JSON.parse(readFileSync(join(W, name, 'manifest.json'), 'utf8')) as { groundTruth: unknown[] };
      expect(m.groundTruth).toEqual([]);
      expect(await engineRecords(...pair(name))).toEqual([]);
    }, 30_000);
  }

  it('http-diverge: every ground-truth divergence is the first record of its flow, exactly; no other flow is blamed', async () => {
    const m = JSON.parse(readFileSync(join(W, 'http-diverge', 'manifest.json'), 'utf8')) as WorkloadResult['manifest'];
    expect(new Set(m.groundTruth.map((g) => g.kind))).toEqual(new Set(['byte', 'missing', 'extra', 'late', 'silent']));
    expect(new Set(m.groundTruth.map((g) => g.flow)).size).toBe(m.groundTruth.length);
    const recs = await engineRecords(...pair('http-diverge'));
    for (const g of m.groundTruth) {
      const r = recs.find((x) => x.flow === g.flow);
      expect(r, g.flow).toBeDefined();
      expect([r!.offset, r!.offsetUnit, r!.cause], `${g.kind} on ${g.flow}`).toEqual([g.offset, g.offsetUnit, g.cause]);
    }
    expect(recs.filter((r) => !m.groundTruth.some((g) => g.flow === r.flow))).toEqual([]);
  }, 30_000);
});
