/**
 * The divergence analyzer core (`analyzeDiff`) on pairs with known ground truth from the
 * workload maker: every injected divergence is found at the right flow, direction, offset
 * and cause (both sequence-space alignments: the secondary's own tap, and behind
 * filter-rewriter), no other flow is blamed, and identical-output pairs with different
 * segmentation / IP IDs / TTL / windows / timestamps report zero divergences with benign
 * counts. Byte context is checked against tshark's own reassembly of the same stream.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeDiff } from '../../src/analyze/diff/analyze.js';
import type { DiffCause, DiffResult, FlowDiff } from '../../src/analyze/diff/types.js';
import { makeWorkload, type GroundTruth, type WorkloadOptions } from '../../src/replay/workload.js';
import { OWN_CAPTURES, sharedCapture } from '../helpers/paths.js';
import { hasTool, tshark } from '../helpers/tools.js';

const tmp = mkdtempSync(join(tmpdir(), 'colo-diff-core-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const DEMO = join(OWN_CAPTURES, 'demo-http.pcapng');
const BULK = join(OWN_CAPTURES, 'bulk-tcp.pcapng');

function run(capture: string, opts: WorkloadOptions): { r: DiffResult; truth: GroundTruth[]; primary: string; secondary: string } {
  const w = makeWorkload(capture, join(tmp, `w${n++}`), opts);
  return { r: analyzeDiff(w.primary, w.secondary), truth: w.manifest.groundTruth, primary: w.primary, secondary: w.secondary };
}

/** The workload kind → the analyzer's cause (the manifest's `cause` is the compare engine's word). */
const CAUSE: Record<GroundTruth['kind'], DiffCause> = { byte: 'payload', udp: 'payload', missing: 'missing', extra: 'extra', late: 'timing', silent: 'missing' };

/** The flow a manifest names ("SERVER-CLIENT/PROTO", server → client). */
function flowOf(r: DiffResult, flow: string): FlowDiff {
  const m = /^(.*)-(.*)\/(TCP|UDP)$/.exec(flow)!;
  const [server, client, proto] = [m[1]!, m[2]!, m[3]!.toLowerCase()];
  const f = r.flows.find((x) => x.server === server && x.client === client && x.protocol === proto);
  expect(f, `flow ${flow} in ${JSON.stringify(r.flows.map((x) => `${x.client} ${x.server}`))}`).toBeDefined();
  return f!;
}

function expectTruth(r: DiffResult, truth: GroundTruth[]): void {
  for (const t of truth) {
    const f = flowOf(r, t.flow);
    expect(f.verdict).toBe('diverged');
    const d = f.divergence!;
    expect({ direction: d.direction, offset: d.offset, unit: d.offsetUnit, cause: d.cause }).toEqual({
      direction: 'server-to-client', offset: t.offset, unit: t.offsetUnit, cause: CAUSE[t.kind],
    });
  }
  // No other flow is blamed.
  expect(r.summary.diverged).toBe(new Set(truth.map((t) => t.flow)).size);
}

describe('identical output, different stacks: zero divergences, benign differences counted', () => {
  const caps = [DEMO, BULK, sharedCapture('http-packets.pcap'), sharedCapture('many-protocols.pcap'), sharedCapture('tcp-reassembly.pcap')];
  for (const cap of caps) {
    for (const rewriteIsn of [false, true]) {
      it(`${cap.split('/').pop()} rewriteIsn=${rewriteIsn}`, () => {
        const { r } = run(cap, { rewriteIsn, seed: 7 });
        expect(r.summary.flows).toBeGreaterThan(0);
        expect(r.flows.filter((f) => f.divergence !== null).map((f) => f.divergence!.detail)).toEqual([]);
        expect(r.summary.diverged).toBe(0);
        expect(r.summary.benign.ipId).toBeGreaterThan(0);
        expect(r.summary.benign.ttl).toBeGreaterThan(0);
        // Flows with a handshake are aligned the way the secondary was captured.
        const hs = r.flows.filter((f) => f.protocol === 'tcp' && f.alignment !== 'midstream');
        for (const f of hs) expect(f.alignment).toBe(rewriteIsn ? 'primary-space' : 'own-space');
      });
    }
  }

  it('segmentation differences are seen (bulk transfer re-segmented with another MSS)', () => {
    const { r } = run(BULK, { seed: 3 });
    expect(r.summary.diverged).toBe(0);
    expect(r.summary.benign.segmentation).toBeGreaterThan(10);
    expect(r.summary.benign.window).toBeGreaterThan(0);
  });
});

describe('injected divergences are found at the right flow, offset and cause', () => {
  const single: [string, WorkloadOptions['diverge']][] = [
    ['byte', [{ kind: 'byte', offset: 100 }]],
    ['byte at 0', [{ kind: 'byte', offset: 0 }]],
    ['missing', [{ kind: 'missing', offset: 100, length: 50 }]],
    ['extra', [{ kind: 'extra', offset: 100, length: 10 }]],
    ['late', [{ kind: 'late', offset: 100 }]],
    ['silent', [{ kind: 'silent', offset: 100 }]],
    ['udp', [{ kind: 'udp' }]],
  ];
  for (const [name, diverge] of single) {
    for (const rewriteIsn of [false, true]) {
      it(`${name} (rewriteIsn=${rewriteIsn})`, () => {
        const { r, truth } = run(DEMO, { rewriteIsn, diverge, seed: 11 });
        expect(truth.length).toBe(diverge!.length);
        expectTruth(r, truth);
      });
    }
  }

  it('several divergences on different flows at once (the bundled http-diverge workload recipe)', () => {
    const diverge: WorkloadOptions['diverge'] = [
      { kind: 'byte', offset: 300, flow: '192.0.2.2:8080-192.0.2.1:33846/TCP' },
      { kind: 'extra', offset: 10000, length: 16, flow: '192.0.2.2:8080-192.0.2.1:33850/TCP' },
      { kind: 'missing', offset: 100, length: 50, flow: '192.0.2.2:8080-192.0.2.1:33856/TCP' },
      { kind: 'silent', offset: 5000, flow: '[2001:db8::2]:8080-[2001:db8::1]:44984/TCP' },
      { kind: 'late', offset: 1000, flow: '198.51.100.2:8080-192.0.2.1:45714/TCP' },
      { kind: 'udp' },
    ];
    for (const rewriteIsn of [false, true]) {
      const { r, truth } = run(DEMO, { rewriteIsn, diverge, seed: 5 });
      expectTruth(r, truth);
      expect(r.summary.byCause).toEqual({ payload: 2, missing: 2, extra: 1, outcome: 0, timing: 1 });
    }
  });

  it('payload copied into slabs (captures read in chunks, the default) gives the same result as in-place', () => {
    const w = makeWorkload(BULK, join(tmp, `w${n++}`), { seed: 9, rewriteIsn: true, diverge: [{ kind: 'byte', offset: 300_000 }, { kind: 'missing', offset: 100_000, length: 3000 }] });
    const inPlace = analyzeDiff(w.primary, w.secondary, { wholeFileMax: 1 << 30 });
    const copied = analyzeDiff(w.primary, w.secondary);
    // Again, on slabs and record chunks the first analysis gave back (BlockCache).
    expect(analyzeDiff(w.primary, w.secondary).flows).toEqual(inPlace.flows);
    expect(copied.flows).toEqual(inPlace.flows);
    expect(copied.summary.diverged).toBeGreaterThan(0);
  });

  it('a byte flip deep in a bulk stream: exact offset, both timestamps, differing byte in the context', () => {
    const { r, truth } = run(BULK, { diverge: [{ kind: 'byte', offset: 500_000 }], seed: 2 });
    expectTruth(r, truth);
    const d = flowOf(r, truth[0]!.flow).divergence!;
    expect(d.primaryMs).not.toBeNull();
    expect(d.secondaryMs).not.toBeNull();
    expect(Math.abs(d.secondaryMs! - d.primaryMs!)).toBeLessThan(50);
    const k = 500_000 - d.primaryBytes.offset;
    const pb = parseInt(d.primaryBytes.hex.slice(2 * k, 2 * k + 2), 16);
    const sb = parseInt(d.secondaryBytes.hex.slice(2 * k, 2 * k + 2), 16);
    expect(sb).toBe(pb ^ 0xff);
    expect(d.primaryBytes.hex.slice(0, 2 * k)).toBe(d.secondaryBytes.hex.slice(0, 2 * k));
  });

  it('--timeout decides what counts as late', () => {
    const w = makeWorkload(DEMO, join(tmp, `w${n++}`), { diverge: [{ kind: 'late', offset: 100, delayMs: 1000 }] });
    expect(analyzeDiff(w.primary, w.secondary, { timeoutMs: 3000 }).summary.diverged).toBe(0);
    const r = analyzeDiff(w.primary, w.secondary, { timeoutMs: 500 });
    expectTruth(r, w.manifest.groundTruth);
  });
});

describe.skipIf(!hasTool('tshark'))('byte context agrees with tshark', () => {
  it('the primary context is the server stream tshark reassembles, at that offset', () => {
    const { r, truth, primary } = run(DEMO, { diverge: [{ kind: 'byte', offset: 120 }], seed: 4 });
    const f = flowOf(r, truth[0]!.flow);
    const d = f.divergence!;
    // Find tshark's stream index of that connection, then follow it raw.
    const [, clientPort] = f.client.split(/:(?=\d+$)/);
    const idx = tshark(['-r', primary, '-Y', `tcp.port == ${clientPort}`, '-T', 'fields', '-e', 'tcp.stream']).split('\n')[0]!.trim();
    const out = tshark(['-r', primary, '-q', '-z', `follow,tcp,raw,${idx}`]);
    // The primary capture holds the server's frames only, so every data line of the raw
    // follow output is the server's (node 0, not indented).
    expect(out).toContain(`Node 0: ${f.server}`);
    const hex = out.split('\n').filter((l) => /^[0-9a-f]+$/.test(l)).join('');
    expect(hex.length).toBeGreaterThan(2 * (d.primaryBytes.offset + d.primaryBytes.hex.length / 2));
    expect(d.primaryBytes.hex).toBe(hex.slice(2 * d.primaryBytes.offset, 2 * d.primaryBytes.offset + d.primaryBytes.hex.length));
  });
});
