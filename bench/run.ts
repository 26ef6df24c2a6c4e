/**
 * `npm run bench`: runs the default set (the bundled replay workloads, colo-proxy against
 * QEMU's colo-compare when QEMU is installed, plus the engine's in-process compare and decode
 * figures and the diff analyzer), `npm run bench -- all` every suite, or the suites named on the
 * command line; prints one table. Every measured row sits next to a baseline from the same
 * run, with the ratio. `--json` prints the rows as JSON instead.
 */
import { renderTable, type BenchRow } from './harness.js';

type Suite = () => Promise<BenchRow[]>;
const SUITES: Record<string, () => Promise<{ run: Suite }>> = {
  pool: () => import('./pool.bench.js'),
  decode: () => import('./decode.bench.js'),
  capture: () => import('./capture.bench.js'),
  framing: () => import('./framing.bench.js'),
  reassembly: () => import('./reassembly.bench.js'),
  flowtable: () => import('./flowtable.bench.js'),
  tracker: () => import('./tracker.bench.js'),
  micro: () => import('./micro.bench.js'),
  tap: () => import('./tap.bench.js'),
  replay: () => import('./replay.bench.js'),
  compare: () => import('./compare.bench.js'),
  'compare-sockets': () => import('./compare-sockets.bench.js'),
  workload: () => import('./workload.bench.js'),
  diff: () => import('./diff.bench.js'),
};
/** What a newcomer's `npm run bench` runs: the main job first, a few minutes in all. */
const DEFAULT = ['workload', 'compare', 'decode', 'diff'];

const args = process.argv.slice(2);
const json = args.includes('--json');
const named = args.filter((a) => !a.startsWith('--'));
const wanted = named.length === 0 ? DEFAULT : named.includes('all') ? Object.keys(SUITES) : named;
const unknown = wanted.filter((w) => !(w in SUITES));
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; known: ${Object.keys(SUITES).join(', ')}`);
  process.exit(2);
}
const rows: BenchRow[] = [];
for (const name of wanted) {
  process.stderr.write(`bench: ${name}…\n`);
  const mod = await SUITES[name]!();
  rows.push(...(await mod.run()));
}
if (json) console.log(JSON.stringify({ node: process.version, rows }, null, 2));
else console.log(`node ${process.version}, ${new Date().toISOString()}\n\n${renderTable(rows)}`);
