/**
 * `colo-proxy compare` on two captures through the real CLI (pcap: endpoints): the lines of
 * its `--checkpoint-log` (one DivergenceRecord per checkpoint request). Used by tests that
 * check the CLI agrees with the engine and with workload ground truth.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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
