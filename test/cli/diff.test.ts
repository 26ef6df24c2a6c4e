/**
 * `colo-proxy diff` end to end (the real command in a child process): exit status 0 / 1 / 2,
 * the documented JSON shape, the terminal table without colour when not on a TTY, one-line
 * errors without a stack trace, and `--export` pcapng files whose packet comments tshark shows.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeWorkload } from '../../src/replay/workload.js';
import { OWN_CAPTURES, ROOT } from '../helpers/paths.js';
import { hasTool, tshark } from '../helpers/tools.js';
import { connFrames, udpFrames, writePcap } from '../analyze/diff-pairs.js';

const CLI = resolve(ROOT, 'src/cli/main.ts');
const DEMO = join(OWN_CAPTURES, 'demo-http.pcapng');
const tmp = mkdtempSync(join(tmpdir(), 'colo-diff-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[], env: Record<string, string> = { NO_COLOR: '1' }): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const same = makeWorkload(DEMO, join(tmp, 'same'), { seed: 3, rewriteIsn: true });
const diverge = makeWorkload(DEMO, join(tmp, 'div'), {
  seed: 3,
  diverge: [{ kind: 'byte', offset: 120, flow: '192.0.2.2:8080-192.0.2.1:33846/TCP' }, { kind: 'missing', offset: 100, length: 50, flow: '192.0.2.2:8080-192.0.2.1:33856/TCP' }, { kind: 'udp' }],
});

interface JsonOut {
  schema: number;
  summary: { flows: number; diverged: number; identical: number; byCause: Record<string, number>; benign: Record<string, number> };
  flows: { client: string; server: string; protocol: string; verdict: string; divergence: { direction: string; offset: number; cause: string; primaryBytes: { hex: string; text: string } } | null }[];
}

describe('colo-proxy diff', () => {
  it('identical output: exit 0, a summary line, no table', () => {
    const r = cli(['diff', same.primary, same.secondary]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^7 flows compared: identical, 7 identical; benign differences \(ignored\): .*segmentation \d+/);
    // The would-checkpoint replay agrees: nothing to checkpoint. No table.
    expect(r.stdout.trim().split('\n')).toEqual([expect.any(String), expect.stringMatching(/^would checkpoint: colo-proxy 0$/)]);
    expect(cli(['diff', '--no-checkpoints', same.primary, same.secondary]).stdout.trim().split('\n')).toHaveLength(1);
  });

  it('diverged output: exit 1, a table naming each diverged flow, no colour when piped', () => {
    const r = cli(['diff', diverge.primary, diverge.secondary], {});
    expect(r.status).toBe(1);
    expect(r.stdout).not.toContain('\x1b[');
    expect(r.stdout).toMatch(/^7 flows compared: 3 diverged, 4 identical/);
    expect(r.stdout).toMatch(/192\.0\.2\.1:33846\s+192\.0\.2\.2:8080\s+server-to-client\s+120\s+payload/);
    expect(r.stdout).toMatch(/192\.0\.2\.1:33856\s+192\.0\.2\.2:8080\s+server-to-client\s+100\s+missing/);
    expect(r.stdout).toMatch(/udp\s+192\.0\.2\.1:39997\s+192\.0\.2\.2:7\s+server-to-client\s+0 \(dgram\)\s+payload/);
  });

  it('--json: the documented schema', () => {
    const r = cli(['diff', '--json', diverge.primary, diverge.secondary]);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout) as JsonOut;
    expect(j.schema).toBe(1);
    expect(j.summary).toMatchObject({ flows: 7, diverged: 3, identical: 4 });
    for (const f of j.flows) {
      expect(f.client).toMatch(/^(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):\d+$/);
      expect(f.server).toMatch(/^(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):\d+$/);
      expect(['tcp', 'udp', 'icmp', 'icmpv6', 'arp', 'nd', 'other']).toContain(f.protocol);
      expect(['identical', 'diverged']).toContain(f.verdict);
      expect(f.divergence === null).toBe(f.verdict === 'identical');
    }
    expect(j.flows.some((f) => f.client.startsWith('['))).toBe(true); // the IPv6 connection
    const f = j.flows.find((x) => x.client === '192.0.2.1:33846')!;
    expect(f.divergence).toMatchObject({ direction: 'server-to-client', offset: 120, cause: 'payload' });
    expect(f.divergence!.primaryBytes.hex).toMatch(/^[0-9a-f]+$/);
  });

  it('--timeout and --context are applied', () => {
    const late = makeWorkload(DEMO, join(tmp, 'late'), { seed: 3, diverge: [{ kind: 'late', offset: 100, delayMs: 1000 }] });
    expect(cli(['diff', late.primary, late.secondary]).status).toBe(0);
    const r = cli(['diff', '--json', '--timeout', '500', '--context', '4', late.primary, late.secondary]);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout) as JsonOut;
    const d = j.flows.find((x) => x.divergence !== null)!.divergence!;
    expect(d.cause).toBe('timing');
    expect(d.primaryBytes.hex).toHaveLength(16);
  });

  describe.skipIf(!hasTool('tshark'))('--export', () => {
    it('pcapng files of the diverging packets whose comments tshark shows', () => {
      const out = join(tmp, 'export');
      const r = cli(['diff', '--export', out, diverge.primary, diverge.secondary]);
      expect(r.status).toBe(1);
      for (const side of ['primary', 'secondary']) {
        const lines = tshark(['-r', join(out, `${side}.pcapng`), '-T', 'fields', '-e', 'tcp.srcport', '-e', 'udp.srcport', '-e', 'frame.comment']).split('\n').filter(Boolean);
        expect(lines.length).toBeGreaterThanOrEqual(side === 'primary' ? 3 : 2);
        const text = lines.join('\n');
        expect(text).toContain('colo-proxy diff: flow #');
        expect(text).toContain('payload at server-to-client offset 120');
        expect(text).toContain('payload at server-to-client datagram 0');
        if (side === 'primary') expect(text).toContain('missing at server-to-client offset 100');
        for (const l of lines) expect(l.split('\t')[2]).toMatch(/^colo-proxy diff: /);
      }
    });
  });

  describe('bad input: one line on stderr, exit 2, no stack trace', () => {
    const good = writePcap(join(tmp, 'good.pcap'), connFrames({ cport: 40001, isn: 1, chunks: ['hi'], end: 'fin' }));
    const cases: [string, () => string[], RegExp][] = [
      ['corrupt capture', () => { const f = join(tmp, 'bad.pcap'); writeFileSync(f, 'garbage garbage garbage'); return [f, good]; }, /unknown capture magic.*ERR_CAPTURE_FORMAT/],
      ['no TCP', () => [writePcap(join(tmp, 'udp.pcap'), udpFrames(['x'])), good], /no TCP segment.*ERR_INVALID_ARGUMENT/],
      ['mismatched link types', () => [good, writePcap(join(tmp, 'raw.pcap'), connFrames({ cport: 40001, isn: 1, chunks: ['hi'], end: 'fin' }), 101)], /link types differ.*ERR_CAPTURE_LINKTYPE/],
      ['missing file', () => [join(tmp, 'nope.pcap'), good], /nope\.pcap.*ERR_CAPTURE_IO/],
      ['truncated capture', () => { const f = join(tmp, 'cut.pcap'); const b = readFileSync(good); writeFileSync(f, b.subarray(0, b.length - 5)); return [good, f]; }, /cut\.pcap.*ERR_CAPTURE_TRUNCATED/],
      ['bad --timeout', () => ['--timeout', 'soon', good, good], /timeout/],
    ];
    for (const [name, args, msg] of cases) {
      it(name, () => {
        const r = cli(['diff', ...args()]);
        expect(r.status).toBe(2);
        expect(r.stdout).toBe('');
        expect(r.stderr).toMatch(msg);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      });
    }
  });
});
