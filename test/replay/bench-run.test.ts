/**
 * The replay bench core end to end on small workloads made from the bundled demo capture:
 * colo-proxy in process and over sockets (the real `compare` command in a child process).
 * Oracles: the workload maker's ground truth (checked against tshark in workload.test.ts) and
 * the capture's own timestamps (tshark) for pacing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeWorkload, type DivergeSpec } from '../../src/replay/workload.js';
import { loadBenchWorkload } from '../../src/replay/bench-workload.js';
import { runReplayBench } from '../../src/replay/bench-replay.js';
import { OWN_CAPTURES } from '../helpers/paths.js';
import { tshark } from '../helpers/tools.js';

const HTTP = join(OWN_CAPTURES, 'demo-http.pcapng');
const tmp = mkdtempSync(join(tmpdir(), 'colo-bench-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Small compare_timeout: the wait for stragglers after each run stays short.
const ENGINE = { compareTimeoutMs: 400, expiredScanCycleMs: 100 };

describe('bench replay core', () => {
  it('identical output: colo-proxy requests no checkpoint, in process and over sockets (0 missed, 0 spurious)', async () => {
    const dir = join(tmp, 'ident');
    makeWorkload(HTTP, dir, { seed: 4 });
    const w = loadBenchWorkload({ dir });
    expect(w.manifest?.groundTruth).toEqual([]);
    const { report } = await runReplayBench({ workload: w, modes: ['in-process', 'sockets'], againstQemu: false, runs: 1, warmup: 100, engine: ENGINE });
    expect(report.runs.map((r) => [r.engine, r.mode])).toEqual([
      ['colo-proxy', 'in-process'],
      ['colo-proxy', 'sockets'],
    ]);
    for (const r of report.runs) {
      expect(r.problems).toEqual([]);
      expect(r).toMatchObject({ checkpoints: 0, missed: 0, spurious: 0, unreleased: 0, causesKnown: true });
      expect(r.framesPerSec).toBeGreaterThan(0);
      expect(r.p50HoldMs).toBeGreaterThanOrEqual(0);
      expect(r.p99HoldMs).toBeGreaterThanOrEqual(r.p50HoldMs);
      expect(r.p999HoldMs).toBeGreaterThanOrEqual(r.p99HoldMs);
      expect(r.peakRssKiB).toBeGreaterThan(1000);
    }
    expect(report.runs[0]!.poolHighWater).toBeGreaterThan(0);
    expect(report.ratio).toEqual({});
  }, 60_000);

  // The bundled identical-output workloads (captures/workloads, made by scripts/make-bundled-workloads.sh).
  for (const name of ['http-identical', 'bulk']) {
    const dir = join(OWN_CAPTURES, 'workloads', name);
    it.skipIf(!existsSync(join(dir, 'manifest.json')))(`bundled ${name}: no checkpoint, nothing missed or spurious, every frame released, in process and over sockets`, async () => {
      const w = loadBenchWorkload({ dir });
      expect(w.manifest!.groundTruth).toEqual([]);
      const { report } = await runReplayBench({ workload: w, modes: ['in-process', 'sockets'], againstQemu: false, runs: 1, warmup: 500, engine: ENGINE });
      for (const r of report.runs) {
        expect(r.problems).toEqual([]);
        expect(r).toMatchObject({ checkpoints: 0, missed: 0, spurious: 0, unreleased: 0 });
      }
    }, 60_000);
  }

  /** A workload from demo-http with `diverge`, run through both colo-proxy modes. */
  async function divergeRun(name: string, diverge: DivergeSpec[]) {
    const dir = join(tmp, name);
    makeWorkload(HTTP, dir, { seed: 4, diverge });
    const w = loadBenchWorkload({ dir });
    expect(w.manifest!.groundTruth.map((g) => g.kind)).toEqual(diverge.map((d) => d.kind));
    const r = await runReplayBench({ workload: w, modes: ['in-process', 'sockets'], againstQemu: false, runs: 1, warmup: 100, engine: ENGINE });
    return { w, ...r };
  }

  // Each kind on its own workload: a checkpoint releases everything held, so a second
  // divergence whose primary was flushed by the first one's checkpoint before its secondary
  // arrived cannot be seen (docs/bench.md).
  for (const [name, spec] of [
    ['a changed TCP byte', { kind: 'byte', offset: 200 }],
    ['a changed UDP datagram', { kind: 'udp' }],
  ] as const) {
    it(`injected divergence (${name}): every ground-truth entry is found, in process and over sockets`, async () => {
      const { w, report, details } = await divergeRun(spec.kind, [spec]);
      for (const [i, r] of report.runs.entries()) {
        expect(r.problems).toEqual([]);
        expect(r.missed).toBe(0);
        expect(r.checkpoints).toBeGreaterThanOrEqual(1);
        // The checkpoints name the flow and offset of the ground truth.
        const g = w.manifest!.groundTruth[0]!;
        expect(details[i]!.events[0]).toMatchObject({ flow: g.flow, offset: g.offset, cause: 'payload', requested: true });
        expect(details[i]!.events[0]!.atMs).toBeGreaterThanOrEqual(0);
      }
    }, 60_000);
  }

  // Before the shadow re-anchor fix in src/compare (tcp-conn.ts), a TCP byte divergence was
  // followed by a second, spurious 'length' checkpoint at the connection's FIN.
  it('a single byte divergence causes exactly one checkpoint (no spurious second one)', async () => {
    const { report } = await divergeRun('byte-once', [{ kind: 'byte', offset: 200 }]);
    for (const r of report.runs) expect(r).toMatchObject({ checkpoints: 1, missed: 0, spurious: 0 });
  }, 60_000);

  it('pacing: --pps spreads the primary frames; capture timing × 0.5 takes twice the capture span (loose)', async () => {
    const dir = join(tmp, 'pace');
    makeWorkload(HTTP, dir, { seed: 4 });
    const w = loadBenchWorkload({ dir });
    const n = w.primary.length;
    const run = async (pace: { pps?: number; speed?: number }): Promise<number> => {
      const { details } = await runReplayBench({ workload: w, modes: ['in-process'], againstQemu: false, runs: 1, warmup: 0, pace, engine: ENGINE });
      return details[0]!.feedMs;
    };
    const top = await run({});
    const pps = 400;
    const paced = await run({ pps });
    expect(paced).toBeGreaterThanOrEqual(((n - 1) * 1000) / pps - 5);
    expect(paced).toBeGreaterThan(top);
    // The capture span of both files, from tshark.
    const times = [join(dir, 'primary.pcap'), join(dir, 'secondary.pcap')].flatMap((f) => tshark(['-r', f, '-T', 'fields', '-e', 'frame.time_epoch']).split('\n').filter((l) => l.trim() !== '').map(Number));
    const spanMs = (Math.max(...times) - Math.min(...times)) * 1000;
    const slow = await run({ speed: 0.5 });
    expect(slow).toBeGreaterThanOrEqual(spanMs * 2 * 0.9);
    expect(slow).toBeLessThan(spanMs * 2 + 2000);
  }, 60_000);
});
