/**
 * Child-process probe for alloc.test.ts (run with --expose-gc and a large young generation so
 * no scavenge hides allocations): heap growth per frame of the compare engine's steady state
 * (matched TCP, both inputs, different segmentation, held then released), next to a positive
 * control that allocates one small object per frame. Prints JSON.
 */
import { MatchedTcpWorkload } from '../../bench/compare-workload.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

const w = new MatchedTcpWorkload({ pMss: 1448, sMss: 1000 });
w.run(60_000); // warm up: JIT, per-flow objects, queue buffers at their working size
gc();
const N = Number(process.argv[2] ?? 160_000);
const f0 = w.framesIn;
const before = process.memoryUsage().heapUsed;
w.run(N);
const after = process.memoryUsage().heapUsed;
const frames = w.framesIn - f0;

const keep: object[] = [];
gc();
const c0 = process.memoryUsage().heapUsed;
for (let i = 0; i < frames; i++) keep.push({ i });
const c1 = process.memoryUsage().heapUsed;

console.log(
  JSON.stringify({
    perFrame: (after - before) / frames,
    control: (c1 - c0) / frames,
    frames,
    released: w.released,
    held: w.engine.held.frames,
    checkpoints: w.engine.statsSnapshot().checkpoints.requested,
    balanced: (() => {
      const a = w.engine.accounting();
      w.engine.close();
      const b = w.engine.accounting();
      return a.primary.balanced && a.secondary.balanced && b.primary.balanced && b.secondary.balanced && w.pool.inUse === 0;
    })(),
  }),
);
