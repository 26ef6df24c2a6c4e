/**
 * What the COLO pair harness needs from the machine: the guest kernel + initramfs that
 * `scripts/guest/fetch.sh` prepares outside the repository, and the shared lab's LD_PRELOAD
 * workaround for QEMU 7.2 under TCG, compiled into a cache directory (never into the repo).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOT } from './paths.js';
import { hasTool, isRoot } from './tools.js';

/** Where fetch.sh puts the guest unless told otherwise (env COLO_GUEST_DIR overrides). */
export const DEFAULT_GUEST_DIR = '/var/cache/colo-proxy/guest';
/** The command that prepares the guest assets (the skip message prints it). */
export const FETCH_COMMAND = 'bash scripts/guest/fetch.sh';
/**
 * QEMU 7.2 + TCG deadlocks at the first COLO checkpoint and loses dirty pages without this
 * preload (shared lab README, "Findings" 2-4). Used in place, compiled to a cache dir.
 */
export const SHIM_SOURCE = resolve(ROOT, '..', 'shared', 'lab', 'shim', 'condwait_fix.c');

export interface GuestAssets {
  kernel: string;
  initrd: string;
}

export function guestDir(): string {
  return process.env.COLO_GUEST_DIR ?? DEFAULT_GUEST_DIR;
}

/** The kernel and initramfs listed in `<dir>/assets.env`, or null when absent or incomplete. */
export function findGuestAssets(dir: string = guestDir()): GuestAssets | null {
  const envFile = join(dir, 'assets.env');
  if (!existsSync(envFile)) return null;
  const kv = new Map<string, string>();
  for (const line of readFileSync(envFile, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const kernel = kv.get('KERNEL');
  const initrd = kv.get('INITRD');
  if (kernel === undefined || initrd === undefined || !existsSync(kernel) || !existsSync(initrd)) return null;
  return { kernel, initrd };
}

/** Why a real COLO pair cannot run here (a message saying what to do), or null. */
export function coloPairSkipReason(): string | null {
  if (!isRoot) return 'not root: the COLO pair needs network namespaces and tap devices (run as root)';
  if (!hasTool('qemu-system-x86_64')) return 'qemu-system-x86_64 not found on PATH (apt-get install qemu-system-x86)';
  if (!hasTool('ip')) return '`ip` (iproute2) not found';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun missing: no tap devices';
  if (!existsSync(SHIM_SOURCE)) return `the QEMU 7.2 TCG workaround source ${SHIM_SOURCE} is missing`;
  if (!hasTool('gcc')) return 'gcc not found: needed to build the QEMU 7.2 TCG workaround (apt-get install gcc)';
  if (findGuestAssets() === null) return `guest assets not found in ${guestDir()}: run \`${FETCH_COMMAND}\` first`;
  return null;
}

/**
 * Compile the shim once per source version into `<cache>/shim/` (the guest dir's parent, or
 * the temp dir when that is not writable) and return the .so path. Written to a temp name and
 * renamed, so concurrent test files never load a half-written library.
 */
export function buildShim(): string {
  const src = readFileSync(SHIM_SOURCE);
  const hash = createHash('sha256').update(src).digest('hex').slice(0, 16);
  for (const base of [resolve(guestDir(), '..', 'shim'), join(tmpdir(), 'colo-proxy-shim')]) {
    const so = join(base, `condwait_fix-${hash}.so`);
    if (existsSync(so)) return so;
    try {
      mkdirSync(base, { recursive: true });
    } catch {
      continue;
    }
    const tmp = `${so}.${process.pid}.tmp`;
    try {
      execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', tmp, SHIM_SOURCE, '-ldl'], { stdio: ['ignore', 'ignore', 'pipe'] });
      renameSync(tmp, so);
      return so;
    } catch (err) {
      rmSync(tmp, { force: true });
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
      throw new Error(`could not build ${SHIM_SOURCE} into ${so}: ${stderr || String(err)}`);
    }
  }
  throw new Error('no writable directory for the QEMU workaround shim');
}
