/**
 * Tap write/read call costs: write-only frames/s into a lone tap whose frames the kernel
 * drops (ethertype 0x88b5, nobody listens), native writeBatch×64 and TapDevice.write against
 * `fs.writeSync` per frame as the baseline; and the cost of an empty read (EAGAIN), native
 * (returns -1) against `fs.readSync` (throws). Measured in a child process inside a throwaway
 * network namespace (`unshare -n`), so nothing touches the host's interfaces. Needs root;
 * returns [] otherwise.
 */
import { spawnSync } from 'node:child_process';
import { readSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PacketPool } from '../src/packet/pool.js';
import { TapDevice, findAddonPath, loadTapAddon } from '../src/wire/tap.js';
import { timedMedian, type BenchRow } from './harness.js';

const CHILD_FLAG = '--tap-bench-child';
/** Set in the child's environment: the child never spawns another one. */
const CHILD_ENV = 'COLO_TAP_BENCH_CHILD';

/**
 * The loader flags of this process (e.g. `--import tsx` when run from source), without
 * anything else: `-e`/`-p` scripts would run again in the child.
 */
function loaderArgs(execArgv: readonly string[]): string[] {
  const withValue = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader', '--conditions', '-C']);
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    const name = a.split('=')[0]!;
    if (!withValue.has(name)) continue;
    if (a.includes('=')) out.push(a);
    else if (i + 1 < execArgv.length) out.push(a, execArgv[++i]!);
  }
  return out;
}
const SELF = fileURLToPath(import.meta.url);
const SUITE = 'tap';

export async function run(): Promise<BenchRow[]> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    process.stderr.write('bench tap: skipped (not root: creating a tap needs CAP_NET_ADMIN)\n');
    return [];
  }
  if (findAddonPath() === null) {
    process.stderr.write('bench tap: skipped (addon not built: npm run build:native)\n');
    return [];
  }
  if (process.env[CHILD_ENV] !== undefined) throw new Error('bench tap: run() called inside its own child');
  const r = spawnSync('unshare', ['-n', process.execPath, ...loaderArgs(process.execArgv), SELF, CHILD_FLAG], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, [CHILD_ENV]: '1' },
  });
  if (r.status !== 0) {
    process.stderr.write(`bench tap: child failed (${r.status ?? r.error?.message}): ${r.stderr}\n`);
    return [];
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as BenchRow[];
}

function child(): BenchRow[] {
  const addon = loadTapAddon();
  const pool = new PacketPool();
  const tap = TapDevice.open('btap0', pool, { batch: 64 });
  spawnSync('sysctl', ['-qw', 'net.ipv6.conf.btap0.disable_ipv6=1']);
  const up = spawnSync('ip', ['link', 'set', 'btap0', 'up']);
  if (up.status !== 0) throw new Error(`ip link set up failed: ${up.stderr}`);
  const fd = tap.fd;
  const N = 64;
  const rows: BenchRow[] = [];

  for (const size of [60, 1514]) {
    // One slab with N frames (the addon's view) and N pool handles (the wrapper's view).
    const slab = Buffer.alloc(N * 2048);
    const offs = new Int32Array(N);
    const lens = new Int32Array(N).fill(size);
    const handles = new Int32Array(N);
    for (let i = 0; i < N; i++) {
      offs[i] = i * 2048;
      const f = slab.subarray(offs[i]!, offs[i]! + size);
      f.fill(0xff, 0, 6); // broadcast; unknown ethertype → dropped by the stack
      f.writeUInt16BE(0x88b5, 12);
      f.fill(i, 14);
      handles[i] = pool.copyIn(f, 0, size);
    }
    const frames = slab.subarray(0, size); // fs.writeSync needs a view per frame: made once
    let errors = 0;
    const fsW = timedMedian(() => {
      for (let i = 0; i < N; i++) writeSync(fd, frames, 0, size);
    }, N);
    const one = timedMedian(() => {
      for (let i = 0; i < N; i++) if (addon.write(fd, slab, offs[i]!, size) !== size) errors++;
    }, N);
    const batch = timedMedian(() => {
      if (addon.writeBatch(fd, slab, offs, lens, N) !== N) errors++;
    }, N);
    const dev = timedMedian(() => {
      if (tap.write(handles, N) !== N) errors++;
    }, N);
    for (let i = 0; i < N; i++) pool.release(handles[i]!);
    const note = errors > 0 ? `${errors} short writes` : undefined;
    const base = `fs.writeSync ${size} B`;
    rows.push(
      { suite: SUITE, name: base, opsPerSec: fsW.opsPerSec, unit: 'frame', bytesPerSec: fsW.opsPerSec * size },
      { suite: SUITE, name: `native write ${size} B`, opsPerSec: one.opsPerSec, unit: 'frame', bytesPerSec: one.opsPerSec * size, baseline: base, note },
      { suite: SUITE, name: `native writeBatch×64 ${size} B`, opsPerSec: batch.opsPerSec, unit: 'frame', bytesPerSec: batch.opsPerSec * size, baseline: base, note },
      { suite: SUITE, name: `TapDevice.write×64 ${size} B`, opsPerSec: dev.opsPerSec, unit: 'frame', bytesPerSec: dev.opsPerSec * size, baseline: base, note },
    );
  }

  // Empty reads: what a readiness check costs when nothing is pending.
  const buf = Buffer.alloc(2048);
  const offs = new Int32Array(64).map((_, i) => i * 2048);
  const slab = Buffer.alloc(64 * 2048);
  const lens = new Int32Array(64);
  const out = new Int32Array(64);
  const E = 1000;
  let sink = 0;
  const fsR = timedMedian(() => {
    for (let i = 0; i < E; i++) {
      try {
        sink += readSync(tap.fd, buf, 0, 2048, null);
      } catch {
        sink--;
      }
    }
  }, E);
  const natR = timedMedian(() => {
    for (let i = 0; i < E; i++) sink += addon.read(tap.fd, buf, 0, 2048);
  }, E);
  const natB = timedMedian(() => {
    for (let i = 0; i < E; i++) sink += addon.readBatch(tap.fd, slab, offs, 2048, lens, 64);
  }, E);
  const devR = timedMedian(() => {
    for (let i = 0; i < E; i++) sink += tap.readInto(out);
  }, E);
  if (sink === 42) process.stderr.write('');
  const base = 'empty fs.readSync (EAGAIN throws)';
  rows.push(
    { suite: SUITE, name: base, opsPerSec: fsR.opsPerSec, unit: 'call' },
    { suite: SUITE, name: 'empty native read (-1)', opsPerSec: natR.opsPerSec, unit: 'call', baseline: base },
    { suite: SUITE, name: 'empty native readBatch×64 (0)', opsPerSec: natB.opsPerSec, unit: 'call', baseline: base },
    { suite: SUITE, name: 'empty TapDevice.readInto (0)', opsPerSec: devR.opsPerSec, unit: 'call', baseline: base },
  );
  tap.close();
  return rows;
}

if (process.env[CHILD_ENV] !== undefined && process.argv.includes(CHILD_FLAG) && process.argv[1] === SELF) {
  process.stdout.write(JSON.stringify(child()) + '\n');
}
