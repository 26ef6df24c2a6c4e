import { execFileSync, spawnSync } from 'node:child_process';

/** True when `cmd` is on PATH. Tests that need a real tool skip with a clear message otherwise. */
export function hasTool(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Run tshark and return stdout (throws with stderr on failure). */
export function tshark(args: string[]): string {
  return execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** True while a process with this PID exists (and is not a zombie already reaped). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
