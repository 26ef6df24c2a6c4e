/**
 * `colo-proxy diff` colours its table only on a terminal, and never with NO_COLOR set: run in a
 * real pseudo-terminal (util-linux `script`), with and without NO_COLOR.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OWN_CAPTURES, ROOT } from '../helpers/paths.js';
import { hasTool } from '../helpers/tools.js';

const W = join(OWN_CAPTURES, 'workloads', 'http-diverge');
const CLI = join(ROOT, 'src', 'cli', 'main.ts');

/** Run the diff of the bundled diverging workload on a pty; returns what the terminal got. */
function onTty(noColor: boolean): { status: number | null; out: string } {
  const cmd = `${process.execPath} --import tsx ${CLI} diff --no-checkpoints ${join(W, 'primary.pcap')} ${join(W, 'secondary.pcap')}`;
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm' };
  delete env['NO_COLOR'];
  if (noColor) env['NO_COLOR'] = '1';
  // -e: the command's exit status; -q: no "Script started" lines; log to /dev/null.
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: ROOT, encoding: 'utf8', env, timeout: 60_000 });
  return { status: r.status, out: r.stdout };
}

describe.skipIf(!hasTool('script'))('diff output on a terminal', () => {
  it('colours the diverged rows on a TTY', () => {
    const r = onTty(false);
    expect(r.status).toBe(1);
    expect(r.out).toContain('\x1b[31m'); // red rows
    expect(r.out).toMatch(/5 diverged/);
  });

  it('no colour at all on a TTY with NO_COLOR set', () => {
    const r = onTty(true);
    expect(r.status).toBe(1);
    expect(r.out).not.toContain('\x1b[');
    expect(r.out).toMatch(/5 diverged/);
  });
});
