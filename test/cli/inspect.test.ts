/**
 * `colo-proxy inspect` end to end (the real command in a child process), checked against
 * tshark's own counts of the same files.
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOT, OWN_CAPTURES, sharedCapture } from '../helpers/paths.js';
import { hasTool, tshark } from '../helpers/tools.js';

const CLI = resolve(ROOT, 'src/cli/main.ts');

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface Summary {
  packets: number;
  bytes: number;
  complete: boolean;
  flowsByProtocol: Record<string, number>;
  protocols: Record<string, number>;
  error: { code: string; offset: number } | null;
}

function inspectJson(file: string): Summary {
  const r = cli(['inspect', '--json', '-q', file]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as Summary;
}

const tsharkCount = (file: string, filter?: string): number =>
  tshark(['-r', file, '-T', 'fields', '-e', 'frame.number', ...(filter ? ['-Y', filter] : [])]).split('\n').filter((l) => l.trim() !== '').length;

const tsharkConversations = (file: string, proto: 'tcp' | 'udp'): number =>
  tshark(['-r', file, '-q', '-z', `conv,${proto}`]).split('\n').filter((l) => l.includes('<->')).length;

describe.skipIf(!hasTool('tshark'))('colo-proxy inspect agrees with tshark', () => {
  const files = [resolve(OWN_CAPTURES, 'demo-http.pcapng'), sharedCapture('http-packets.pcap'), sharedCapture('many-protocols.pcap')];
  for (const file of files) {
    it(`counts records, bytes, protocols and conversations of ${file.split('/').pop()}`, () => {
      const s = inspectJson(file);
      expect(s.complete).toBe(true);
      expect(s.packets).toBe(tsharkCount(file));
      const capLens = tshark(['-r', file, '-T', 'fields', '-e', 'frame.cap_len']).split('\n').filter(Boolean).map(Number);
      expect(s.bytes).toBe(capLens.reduce((a, b) => a + b, 0));
      // Frames whose outermost transport is TCP / ARP (ICMP errors embed TCP headers, so
      // tshark's plain "tcp" filter would also match those: exclude them).
      expect(s.protocols['tcp']).toBe(tsharkCount(file, 'tcp && !icmp && !icmpv6'));
      expect(s.protocols['arp']).toBe(tsharkCount(file, 'arp'));
      expect(s.flowsByProtocol['tcp'] ?? 0).toBe(tsharkConversations(file, 'tcp'));
    });
  }

  it('counts the demo capture\'s UDP conversations like tshark', () => {
    const file = resolve(OWN_CAPTURES, 'demo-http.pcapng');
    expect(inspectJson(file).flowsByProtocol['udp']).toBe(tsharkConversations(file, 'udp'));
  });
});

describe('colo-proxy inspect on bad input', () => {
  it.skipIf(!hasTool('tshark'))('reports a damaged record with its file offset, exit 2, and still counts what came before', () => {
    const dir = mkdtempSync(join(tmpdir(), 'colo-inspect-'));
    try {
      const f = join(dir, 'cut.pcap');
      copyFileSync(sharedCapture('tcp-reassembly.pcap'), f);
      const size = statSync(f).size;
      truncateSync(f, size - 10);
      const r = cli(['inspect', '--json', '-q', f]);
      expect(r.status).toBe(2);
      const s = JSON.parse(r.stdout) as Summary;
      expect(s.complete).toBe(false);
      expect(s.error?.code).toBe('ERR_CAPTURE_TRUNCATED');
      // Cutting 10 bytes damages the last record only: every record before it is counted.
      expect(s.packets).toBe(tsharkCount(sharedCapture('tcp-reassembly.pcap')) - 1);
      expect(s.error!.offset).toBeGreaterThan(0);
      expect(s.error!.offset).toBeLessThan(size);
      expect(r.stderr).toMatch(/byte offset \d+/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a missing file and a bad option value without a stack trace', () => {
    const a = cli(['inspect', '/nonexistent/capture.pcap']);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/nonexistent\/capture\.pcap/);
    expect(a.stderr).not.toMatch(/\n\s+at /);
    const b = cli(['inspect', '--vnet-hdr-len', '99', 'x.pcap']);
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/from 0 to 20/);
  });

  it('rejects a file that is not a capture', () => {
    const r = cli(['inspect', resolve(ROOT, 'package.json')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/ERR_CAPTURE_FORMAT/);
  });

  it('has --help on the command and the subcommand', () => {
    expect(cli(['--help']).stdout).toMatch(/inspect/);
    const h = cli(['inspect', '--help']);
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/--json/);
  });
});
