/**
 * Pool acquire/release cost against the allocation it replaces (Buffer.allocUnsafe per packet)
 * and a copy into a fresh Buffer, measured in the same run.
 */
import { PacketPool } from '../src/packet/pool.js';
import { timedMedian, type BenchRow } from './harness.js';

export async function run(): Promise<BenchRow[]> {
  const pool = new PacketPool();
  const src = Buffer.alloc(1500, 7);
  const N = 10_000;
  let sink = 0;
  const hs = new Int32Array(64);

  const alloc = timedMedian(() => {
    for (let i = 0; i < N; i++) {
      const b = Buffer.allocUnsafe(1500);
      b[0] = i;
      sink += b[0]!;
    }
  }, N);
  const acq = timedMedian(() => {
    for (let i = 0; i < N; i++) {
      const h = pool.acquire(1500);
      pool.buffer(h)[pool.offset(h)] = i;
      sink += pool.buffer(h)[pool.offset(h)]!;
      pool.release(h);
    }
  }, N);
  // Many in flight at once, as when a compare stage holds packets.
  const acqBatch = timedMedian(() => {
    for (let r = 0; r < N / 64; r++) {
      for (let i = 0; i < 64; i++) hs[i] = pool.acquire(1500);
      for (let i = 0; i < 64; i++) pool.release(hs[i]!);
    }
  }, N);
  const copyAlloc = timedMedian(() => {
    for (let i = 0; i < N; i++) sink += Buffer.from(src)[3]!;
  }, N);
  const copyPool = timedMedian(() => {
    for (let i = 0; i < N; i++) {
      const h = pool.copyIn(src, 0, 1500);
      sink += pool.buffer(h)[pool.offset(h) + 3]!;
      pool.release(h);
    }
  }, N);
  if (sink === -1 || pool.inUse !== 0) throw new Error('pool bench leaked');
  const s = 'pool';
  return [
    { suite: s, name: 'Buffer.allocUnsafe(1500)', opsPerSec: alloc.opsPerSec, unit: 'pkt' },
    { suite: s, name: 'acquire+release', opsPerSec: acq.opsPerSec, unit: 'pkt', baseline: 'Buffer.allocUnsafe(1500)' },
    { suite: s, name: 'acquire×64 then release×64', opsPerSec: acqBatch.opsPerSec, unit: 'pkt', baseline: 'Buffer.allocUnsafe(1500)' },
    { suite: s, name: 'Buffer.from(1500 B copy)', opsPerSec: copyAlloc.opsPerSec, unit: 'pkt', bytesPerSec: copyAlloc.opsPerSec * 1500 },
    { suite: s, name: 'copyIn(1500 B)+release', opsPerSec: copyPool.opsPerSec, unit: 'pkt', bytesPerSec: copyPool.opsPerSec * 1500, baseline: 'Buffer.from(1500 B copy)' },
  ];
}
