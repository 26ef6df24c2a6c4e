/**
 * `colo-proxy bench replay` end to end (the real command in a child process, which itself
 * runs `colo-proxy compare` and QEMU's colo-compare): JSON shape, the QEMU row and ratios, the
 * HTML report in headless Chromium, a plain primary/secondary pair, and bad input.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { makeWorkload } from '../../src/replay/workload.js';
import { qemuAvailable } from '../../src/replay/qemu-process.js';
import { ROOT, OWN_CAPTURES } from '../helpers/paths.js';
import { hasChromium, loadInChromium, screenshot } from '../helpers/chromium.js';

const CLI = resolve(ROOT, 'src/cli/main.ts');
const HAVE_QEMU = qemuAvailable();
if (!HAVE_QEMU) console.warn('qemu-system-x86_64 not found: bench replay --against-qemu test skipped');

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface JsonRow {
  engine: string;
  mode: string;
  runs: number;
  framesPerSec: number;
  framesPerSecMin: number;
  framesPerSecMax: number;
  gbitPerSec: number;
  p50HoldMs: number;
  p99HoldMs: number;
  p999HoldMs: number;
  checkpoints: number;
  causes: Record<string, number>;
  causesKnown: boolean;
  missed: number | null;
  spurious: number | null;
  peakRssKiB: number | null;
  poolHighWater: number | null;
  problems: string[];
}
interface JsonReport {
  workload: { name: string; primaryFrames: number; secondaryFrames: number; groundTruth: number | null };
  settings: { runs: number; pace: string; compareTimeoutMs: number };
  runs: JsonRow[];
  ratio: Record<string, { framesPerSec: number; p99HoldMs: number; checkpoints: number | null }>;
}

const tmp = mkdtempSync(join(tmpdir(), 'colo-bench-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const HTTP = join(OWN_CAPTURES, 'demo-http.pcapng');
let divDir = '';
beforeAll(() => {
  // filter-rewriter style (secondary data in the primary's sequence space), as QEMU needs.
  divDir = join(tmp, 'div');
  makeWorkload(HTTP, divDir, { seed: 6, rewriteIsn: true, diverge: [{ kind: 'byte', offset: 200 }] });
});

describe('colo-proxy bench replay', () => {
  it.skipIf(!HAVE_QEMU)('--against-qemu --json: both colo-proxy modes and the QEMU row with its checkpoint count, ratios per mode; --html loads in Chromium', async () => {
    const html = join(tmp, 'report.html');
    const r = cli(['bench', 'replay', divDir, '--against-qemu', '--runs', '1', '--warmup', '100', '--compare-timeout', '400', '--json', '-q', '--html', html]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as JsonReport;
    expect(j.workload).toMatchObject({ name: 'div', groundTruth: 1 });
    expect(j.settings).toMatchObject({ runs: 1, pace: 'topspeed', compareTimeoutMs: 400 });
    expect(j.runs.map((x) => `${x.engine}/${x.mode}`)).toEqual(['colo-proxy/in-process', 'colo-proxy/sockets', 'qemu/sockets']);
    for (const row of j.runs) {
      for (const k of ['framesPerSec', 'framesPerSecMin', 'framesPerSecMax', 'gbitPerSec', 'p50HoldMs', 'p99HoldMs', 'p999HoldMs', 'checkpoints'] as const) {
        expect(typeof row[k], `${row.engine}/${row.mode} ${k}`).toBe('number');
        expect(row[k]).toBeGreaterThanOrEqual(0);
      }
      expect(row.framesPerSecMin).toBeLessThanOrEqual(row.framesPerSec);
      expect(row.framesPerSec).toBeLessThanOrEqual(row.framesPerSecMax);
      expect(row.problems).toEqual([]);
      expect(row.peakRssKiB).toBeGreaterThan(1000);
    }
    const [inproc, sock, qemu] = j.runs;
    expect(inproc!.missed).toBe(0);
    expect(sock!.missed).toBe(0);
    expect(inproc!.causes.payload).toBeGreaterThanOrEqual(1);
    // QEMU: the differing byte makes it ask (DO_CHECKPOINT on notify_dev); no causes.
    expect(qemu!.checkpoints).toBeGreaterThanOrEqual(1);
    expect(qemu!.causesKnown).toBe(false);
    expect(qemu!.causes).toEqual({ unknown: qemu!.checkpoints });
    expect(qemu!.missed).toBe(0);
    expect(qemu!.poolHighWater).toBeNull();
    expect(Object.keys(j.ratio).sort()).toEqual(['in-process', 'sockets']);
    expect(j.ratio['sockets']!.framesPerSec).toBeCloseTo(sock!.framesPerSec / qemu!.framesPerSec, 6);
    expect(j.ratio['sockets']!.checkpoints).toBeCloseTo(sock!.checkpoints / qemu!.checkpoints, 6);

    // The page: self-contained, renders without errors, shows every run.
    const page = readFileSync(html, 'utf8');
    expect(page).not.toMatch(/(src|href)="https?:/);
    if (!hasChromium()) return;
    const { dom, errors, ready } = await loadInChromium(html);
    expect(errors).toEqual([]);
    expect(ready).toBe(true);
    const table = /<table id="runs">[\s\S]*?<\/table>/.exec(dom)?.[0] ?? '';
    expect((table.match(/<tr>/g) ?? []).length).toBe(4);
    for (const e of ['colo-proxy', 'qemu']) expect(table).toContain(`<td>${e}</td>`);
    expect(dom).toContain('id="hist-2"');
    expect(dom).toContain('id="timeline"');
    expect(dom).toContain('colo-proxy sockets / QEMU sockets');
    if (process.env['COLO_SCREENSHOT']) await screenshot(html, process.env['COLO_SCREENSHOT']);
  }, 120_000);

  it('a plain --primary/--secondary pair: runs, with missed/spurious not scored; the table names the rows', () => {
    const r = cli(['bench', 'replay', '--primary', join(divDir, 'primary.pcap'), '--secondary', join(divDir, 'secondary.pcap'), '--mode', 'in-process', '--runs', '2', '--warmup', '0', '--compare-timeout', '400', '-q']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('primary.pcap + secondary.pcap');
    expect(r.stdout).toContain('no ground truth');
    expect(r.stdout).toMatch(/^colo-proxy\s+in-process\s+[\d.]+k \(/m);
    expect(r.stdout).not.toMatch(/^colo-proxy\s+sockets/m);
    const j = JSON.parse(cli(['bench', 'replay', '--primary', join(divDir, 'primary.pcap'), '--secondary', join(divDir, 'secondary.pcap'), '--mode', 'in-process', '--runs', '1', '--warmup', '0', '--json', '-q']).stdout) as JsonReport;
    expect(j.workload.groundTruth).toBeNull();
    expect(j.runs[0]).toMatchObject({ missed: null, spurious: null, runs: 1 });
  }, 60_000);

  it('bad input: one line naming the problem, exit status 2', () => {
    const cases: [string[], RegExp][] = [
      [['bench', 'replay'], /missing WORKLOAD/],
      [['bench', 'replay', join(tmp, 'nope')], /not a directory/],
      [['bench', 'replay', divDir, '--primary', 'x.pcap', '--secondary', 'y.pcap'], /not both/],
      [['bench', 'replay', '--primary', 'x.pcap'], /go together/],
      [['bench', 'replay', divDir, '--pace', 'fast'], /--pace: bad pace "fast"/],
      [['bench', 'replay', divDir, '--pps', '100', '--multiplier', '2'], /at most one of/],
      [['bench', 'replay', divDir, '--mode', 'remote'], /--mode: expected/],
    ];
    for (const [args, re] of cases) {
      const r = cli(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  }, 60_000);
});
