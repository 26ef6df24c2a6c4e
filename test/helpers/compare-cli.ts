/**
 * The compare engine on two captures, two ways: `colo-proxy compare` through the real CLI, and
 * the engine in shadow mode in this process.
 *
 * `colo-proxy compare` on two captures through the real CLI (pcap: endpoints): the lines of
 * its `--checkpoint-log` (one DivergenceRecord per checkpoint request). Used by tests that
 * check the CLI agrees with the engine and with workload ground truth.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ShadowCheckpointPort } from '../../src/compare/checkpoint-port.js';
import type { DivergenceRecord } from '../../src/compare/divergence.js';
import { CompareEngine } from '../../src/compare/engine.js';
import type { CompareLimits } from '../../src/compare/limits.js';
import { replayCapturePair } from '../../src/compare/offline-replay.js';
import { PacketPool } from '../../src/packet/pool.js';
import { ROOT } from './paths.js';

export function compareCheckpointLog(primary: string, secondary: string, workDir: string): Record<string, unknown>[] {
  mkdirSync(workDir, { recursive: true });
  const log = join(workDir, 'checkpoints.jsonl');
  execFileSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'compare', '--primary_in', `pcap:${primary}`, '--secondary_in', `pcap:${secondary}`, '--outdev', `pcap:${join(workDir, 'out.pcap')}`, '--checkpoint-log', log, '-q'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Every divergence record (requested or joined) of a shadow-mode engine run over two captures
 * through the project's offline replay, the clock run on `drainMs` past the last frame so
 * anything still held times out as on a live link.
 */
export async function shadowRecords(primary: string, secondary: string, opts: { limits?: Partial<CompareLimits>; drainMs: number }): Promise<DivergenceRecord[]> {
  const pool = new PacketPool();
  const port = new ShadowCheckpointPort();
  const out: DivergenceRecord[] = [];
  const engine = new CompareEngine({
    pool,
    checkpoint: port,
    ...(opts.limits !== undefined ? { limits: opts.limits } : {}),
    release: (h) => pool.release(h),
    onDivergence: (r) => out.push(r),
    onBackpressure: () => {},
  });
  port.attach(engine);
  await replayCapturePair(primary, secondary, pool, engine, { drainMs: opts.drainMs });
  engine.close();
  return out;
}
