/**
 * Compare engine, in process: matched TCP (the steady state of a healthy COLO pair), both
 * sides sending the same stream in 1448-byte segments, or the secondary in 1000-byte ones
 * (different segmentation), or the secondary ahead of the primary. Frames/s counts frames of
 * both inputs; B/s is the primary's payload (the protected stream).
 *
 * Baseline, same run: "move frames" — acquire a pool slot, copy a frame in, release it: the
 * floor any proxy pays for getting frames through (no decode, no comparison). The ratio shows
 * what comparison costs on top.
 *
 * Hold latency: from the later of a pair's two arrivals (the frame whose arrival completes
 * the match) to the release of the primary frame, measured per released frame with
 * performance.now() in a separate run (the probe itself costs ~0.1 µs per frame). In process
 * the release happens inside that arrival's call, so this is the engine's own added latency;
 * over sockets, I/O batching adds to it.
 */
import { timedMedian, type BenchRow } from './harness.js';
import { MatchedTcpWorkload, type WorkloadOptions } from './compare-workload.js';
import { PacketPool } from '../src/packet/pool.js';

const BATCH = 2000;

interface Case {
  name: string;
  o: Omit<WorkloadOptions, 'onRelease' | 'beforeFeed'>;
}

const CASES: Case[] = [
  { name: 'matched TCP, same segmentation (1448/1448)', o: { pMss: 1448, sMss: 1448 } },
  { name: 'matched TCP, secondary in 1000-byte segments', o: { pMss: 1448, sMss: 1000 } },
  { name: 'matched TCP, secondary ahead (1448/1000)', o: { pMss: 1448, sMss: 1000, secondaryFirst: true } },
];

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function latency(o: Case['o'], n: number): { p50: number; p99: number } {
  let last = 0;
  const samples = new Float64Array(n * 2);
  let k = 0;
  const w = new MatchedTcpWorkload({
    ...o,
    beforeFeed: () => {
      last = performance.now();
    },
    onRelease: () => {
      if (k < samples.length) samples[k++] = performance.now() - last;
    },
  });
  w.run(2000); // warm up
  k = 0;
  w.run(n);
  const s = samples.subarray(0, k).sort();
  return { p50: percentile(s, 0.5) * 1000, p99: percentile(s, 0.99) * 1000 };
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const suite = 'compare';
  const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 64 }] });
  const tpl = MatchedTcpWorkload.frameTemplate(1448);
  let sink = 0;
  const base = timedMedian(() => {
    sink += MatchedTcpWorkload.moveOnly(pool, tpl, BATCH);
  }, BATCH);
  rows.push({ suite, name: 'move frames (copy-in + release, 1514 B)', opsPerSec: base.opsPerSec, unit: 'frame', bytesPerSec: base.opsPerSec * 1448 });
  for (const c of CASES) {
    const w = new MatchedTcpWorkload(c.o);
    w.run(1000);
    const f0 = w.framesIn;
    const b0 = w.primaryBytes;
    const t0 = performance.now();
    const r = timedMedian(() => w.run(BATCH), BATCH);
    const ms = performance.now() - t0;
    if (w.engine.held.frames > 2 || w.engine.statsSnapshot().checkpoints.requested !== 0) throw new Error(`${c.name}: the workload did not stay matched`);
    const framesPerPrimary = (w.framesIn - f0) / ((w.primaryBytes - b0) / c.o.pMss);
    const lat = latency(c.o, 50_000);
    const bytesPerSec = r.opsPerSec * c.o.pMss;
    rows.push({
      suite,
      name: c.name,
      opsPerSec: r.opsPerSec * framesPerPrimary,
      unit: 'frame',
      bytesPerSec,
      baseline: 'move frames (copy-in + release, 1514 B)',
      note: `${((bytesPerSec * 8) / 1e9).toFixed(2)} Gbit/s protected; hold latency p50 ${lat.p50.toFixed(1)} µs, p99 ${lat.p99.toFixed(1)} µs (${ms.toFixed(0)} ms measured)`,
    });
  }
  if (sink === -1) console.log(sink);
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./harness.js');
  console.log(renderTable(await run()));
}
