/**
 * `colo-proxy workload make` end to end (the real command in a child process): files and
 * manifest, the summary and --json, strict --diverge parsing, and the bundled workloads in
 * captures/workloads being exactly what scripts/make-bundled-workloads.sh produces.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { WorkloadManifest } from '../../src/replay/workload.js';
import { OWN_CAPTURES, ROOT } from '../helpers/paths.js';
import { hasTool, tshark } from '../helpers/tools.js';

const CLI = resolve(ROOT, 'src/cli/main.ts');
const DEMO = 'captures/demo-http.pcapng';
const tmp = mkdtempSync(join(tmpdir(), 'colo-wlcli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const dir = (): string => join(tmp, `w${n++}`);

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('colo-proxy workload make', () => {
  it('writes the pair and the manifest; --json prints that manifest', () => {
    const out = dir();
    const r = cli(['workload', 'make', DEMO, '--out', out, '--seed', '9', '--json', '--diverge', 'byte@300', '-d', 'missing@20000+1448', '-d', 'udp#0']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const printed = JSON.parse(r.stdout) as WorkloadManifest;
    const file = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as WorkloadManifest;
    expect(printed).toEqual(file);
    expect(readdirSync(out).sort()).toEqual(['manifest.json', 'primary.pcap', 'secondary.pcap']);
    expect(file.seed).toBe(9);
    expect(file.groundTruth.map((g) => [g.kind, g.offset, g.cause])).toEqual([['byte', 300, 'payload'], ['missing', 20000, 'timeout'], ['udp', 0, 'payload']]);
    // Independent count: tshark reads both files with as many frames as the manifest says.
    if (hasTool('tshark')) {
      const count = (f: string): number => tshark(['-r', f, '-T', 'fields', '-e', 'frame.number']).split('\n').filter((l) => l.trim() !== '').length;
      expect(count(join(out, 'primary.pcap'))).toBe(file.counts.primaryFrames);
      expect(count(join(out, 'secondary.pcap'))).toBe(file.counts.secondaryFrames);
    }
  });

  it('prints a summary naming each divergence\'s flow, offset and expected cause', () => {
    const r = cli(['workload', 'make', DEMO, '--out', dir(), '-d', 'late@1000+5000', '--rewrite-isn', '--jitter-us', '50']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/29 primary frames, \d+ secondary frames; 5 TCP connections, 2 UDP flows/);
    expect(r.stdout).toMatch(/jitter 50 µs, ISN rewritten/);
    expect(r.stdout).toMatch(/divergence late@1000\+5000: 192\.0\.2\.2:8080-192\.0\.2\.1:\d+\/TCP byte 1000 → expect cause timeout/);
  });

  it('refuses a bad --diverge naming the spec, exit 2, before writing anything', () => {
    for (const [spec, re] of [['byte@x', /byte@OFF/], ['missing@5', /needs a length/], ['bogus@1', /unknown kind/], ['udp#1:1.2.3.4:5-6.7.8.9:10/TCP', /UDP flow text/]] as const) {
      const out = dir();
      const r = cli(['workload', 'make', DEMO, '--out', out, '--diverge', spec]);
      expect(r.status, spec).toBe(2);
      expect(r.stderr).toContain(`"${spec}"`);
      expect(r.stderr).toMatch(re);
      expect(() => readdirSync(out)).toThrow();
    }
  });

  it('names a divergence that does not fit the capture, and a missing capture, without a stack trace', () => {
    const a = cli(['workload', 'make', DEMO, '--out', dir(), '-d', 'silent@99999999']);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/offset 99999999/);
    expect(a.stderr).not.toMatch(/\n\s+at /);
    const b = cli(['workload', 'make', '/nonexistent/x.pcap', '--out', dir()]);
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/nonexistent\/x\.pcap/);
    const c = cli(['workload', 'make', DEMO]);
    expect(c.status).toBe(2);
    expect(c.stderr).toMatch(/--out/);
  });

  it('documents the spec grammar in --help', () => {
    const h = cli(['workload', 'make', '--help']);
    expect(h.status).toBe(0);
    for (const form of ['byte@OFF', 'missing@OFF+LEN', 'extra@OFF+LEN', 'late@OFF[+MS]', 'silent@OFF', 'udp[#I]']) expect(h.stdout).toContain(form);
    expect(cli(['workload', '--help']).stdout).toMatch(/make/);
  });
});

describe('bundled workloads', () => {
  it('scripts/make-bundled-workloads.sh regenerates captures/workloads byte for byte', () => {
    const out = dir();
    const r = spawnSync('bash', [join(ROOT, 'scripts/make-bundled-workloads.sh'), out], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const names = ['http-identical', 'bulk', 'http-diverge'];
    expect(readdirSync(out).sort()).toEqual([...names].sort());
    expect(readdirSync(join(OWN_CAPTURES, 'workloads')).sort()).toEqual([...names].sort());
    for (const name of names) {
      for (const f of ['primary.pcap', 'secondary.pcap', 'manifest.json']) {
        const fresh = readFileSync(join(out, name, f));
        const bundled = readFileSync(join(OWN_CAPTURES, 'workloads', name, f));
        expect(fresh.equals(bundled), `${name}/${f}`).toBe(true);
      }
    }
  }, 60_000);
});
