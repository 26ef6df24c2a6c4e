/**
 * Shadow mode on a real workload: the bundled demo HTTP capture turned into a primary /
 * secondary pair by the workload maker (src/replay/workload.ts: an independent stack's
 * re-segmentation, ISN, timing, with ONE labelled divergence), replayed through the engine by
 * the project's offline replay, as `bench replay --mode in-process` and `diff` do. Oracle: the
 * maker's ground truth (flow, stream offset, the cause the engine should report) — one edit of
 * a stream costs exactly one checkpoint, and nothing may stay held.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ShadowCheckpointPort } from '../../src/compare/checkpoint-port.js';
import type { DivergenceRecord } from '../../src/compare/divergence.js';
import { CompareEngine } from '../../src/compare/engine.js';
import { replayCapturePair } from '../../src/compare/offline-replay.js';
import { PacketPool } from '../../src/packet/pool.js';
import { makeWorkload, parseDivergeSpec } from '../../src/replay/workload.js';
import { OWN_CAPTURES } from '../helpers/paths.js';

const tmp = mkdtempSync(join(tmpdir(), 'colo-shadow-wl-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

async function replay(spec: string): Promise<{ records: DivergenceRecord[]; truth: { flow: string; offset: number; cause: string }; engine: CompareEngine; pool: PacketPool }> {
  const out = join(tmp, `w${n++}`);
  const wl = makeWorkload(join(OWN_CAPTURES, 'demo-http.pcapng'), out, { diverge: [parseDivergeSpec(spec)] });
  expect(wl.manifest.groundTruth.length).toBe(1);
  const truth = wl.manifest.groundTruth[0]!;
  const pool = new PacketPool();
  const port = new ShadowCheckpointPort();
  const records: DivergenceRecord[] = [];
  const engine = new CompareEngine({ pool, checkpoint: port, release: (h) => pool.release(h), onDivergence: (r) => records.push(r) });
  port.attach(engine);
  // Run the clock on past the last frame so anything still held would time out.
  await replayCapturePair(wl.primary, wl.secondary, pool, engine, { drainMs: 10_000 });
  return { records, truth, engine, pool };
}

describe('shadow mode on the demo-http workload: one divergence, one checkpoint', () => {
  // The 60 KB response (a generated a–z body: repetitive) leaves the primary in five large
  // segments long before the secondary's 1024-byte ones.
  for (const spec of ['extra@10000+16', 'extra@30000+40', 'byte@20000', 'missing@10000+10']) {
    it(spec, async () => {
      const { records, truth, engine, pool } = await replay(spec);
      expect(records.filter((r) => r.requested).map((r) => [r.cause, r.flow, r.offset])).toEqual([[truth.cause, truth.flow, truth.offset]]);
      expect(engine.held.frames).toBe(0);
      expect(engine.accounting().primary.balanced).toBe(true);
      engine.close();
      expect(pool.inUse).toBe(0);
    });
  }
});
