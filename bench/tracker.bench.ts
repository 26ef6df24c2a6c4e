/**
 * Connection tracker rate: every frame of http-packets.pcap and many-protocols.pcap (preloaded,
 * with capture timestamps) through decodeFrame + ConnectionTracker (defrag → flow table →
 * per-connection TCP reassembly → a listener that sums delivered bytes); `finish` after each
 * pass, so every pass creates and ends all its connections. Baseline in the same run: decodeFrame
 * alone over the same frames, so the ratio is the price of tracking and reassembly.
 * http-packets.pcap has reordered segments and holes, so the out-of-order path is included.
 */
import { join } from 'node:path';
import { ConnectionTracker } from '../src/flow/tracker.js';
import { decodeFrame } from '../src/packet/decode.js';
import { PacketPool } from '../src/packet/pool.js';
import { PacketView } from '../src/packet/view.js';
import { timedMedian, type BenchRow } from './harness.js';
import { sharedCapturesDir } from './paths.js';
import { loadCorpus } from './corpus.js';



export async function run(): Promise<BenchRow[]> {
  const pp = sharedCapturesDir();
  const c = loadCorpus([join(pp, 'http-packets.pcap'), join(pp, 'many-protocols.pcap')]);
  const { buf, offs, lens, ms } = c;
  const n = offs.length;
  const v = new PacketView();
  const pool = new PacketPool();
  let sink = 0;
  let delivered = 0;
  const listener = {
    data(_c: unknown, _d: unknown, _b: Uint8Array, _o: number, len: number) {
      delivered += len;
    },
  };

  const decodeOnly = timedMedian(() => {
    for (let i = 0; i < n; i++) {
      decodeFrame(v, buf, offs[i]!, lens[i]!);
      sink += v.srcPort + v.status;
    }
  }, n);
  // One tracker for every pass: `finish` ends all connections, so each pass starts empty.
  const t = new ConnectionTracker({ pool, table: { maxFlows: 4096 } }, listener);
  const tracked = timedMedian(() => {
    for (let i = 0; i < n; i++) {
      decodeFrame(v, buf, offs[i]!, lens[i]!);
      t.packet(v, ms[i]!);
    }
    t.finish();
  }, n);
  if (sink === -1 || delivered === 0) console.error('(unreachable)');
  const perFrame = c.bytes / n;
  const note = `${n} frames, ${(c.bytes / 1e6).toFixed(1)} MB`;
  return [
    { suite: 'tracker', name: 'decode only', opsPerSec: decodeOnly.opsPerSec, unit: 'frames', bytesPerSec: decodeOnly.opsPerSec * perFrame, note },
    { suite: 'tracker', name: 'decode + ConnectionTracker', opsPerSec: tracked.opsPerSec, unit: 'frames', bytesPerSec: tracked.opsPerSec * perFrame, baseline: 'decode only', note: 'defrag, flow table, TCP reassembly, finish' },
  ];
}
