/**
 * The `flows` command's surface: help, the human-readable table, bad input (exit 2 with a
 * one-line error), and a damaged capture (exit 2, but everything before the damage is still
 * reassembled, written and reported).
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FlowsReport } from '../../src/cli/flows-extract.js';
import { PCAPPP, sharedCapture } from '../helpers/paths.js';
import { cli } from './cli-run.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'colo-flows-cli-'));
}

describe('colo-proxy flows command', () => {
  it('--help documents the options, the file naming and the gap policy', () => {
    const r = cli(['flows', '--help']);
    expect(r.status).toBe(0);
    for (const s of ['--out', '--json', '--quiet', 'SRC.SPORT-DST.DPORT.bin', 'RFC 5952', '-2, -3', 'Gaps', 'Exit status']) expect(r.stdout).toContain(s);
    expect(cli(['--help']).stdout).toContain('flows');
  });

  it('prints a table with one row per connection and a totals line', () => {
    const dir = tmp();
    try {
      const r = cli(['flows', sharedCapture('three_http_streams.pcap'), '--out', dir, '-q']);
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^#\s+client\s+server\s+c→s bytes\s+s→c bytes/);
      // tshark: three TCP streams in this capture.
      expect(lines.slice(1, lines.indexOf('')).filter((l) => /^\d+\s/.test(l)).length).toBe(3);
      expect(lines.at(-1)).toMatch(/^3 TCP connections, \d+ payload bytes written to /);
      expect(readdirSync(dir).length).toBe(6);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad input: a missing capture or a missing --out exits 2 with one line on stderr', () => {
    const dir = tmp();
    try {
      const missing = cli(['flows', join(dir, 'nope.pcap'), '--out', dir]);
      expect(missing.status).toBe(2);
      expect(missing.stderr.trim().split('\n').length).toBe(1);
      expect(missing.stderr).toContain('ENOENT');
      const noOut = cli(['flows', sharedCapture('tcp-reassembly.pcap')]);
      expect(noOut.status).toBe(2);
      expect(noOut.stderr).toContain('--out');
      const notCapture = join(dir, 'text.pcap');
      copyFileSync(join(PCAPPP, 'LICENSE'), notCapture);
      const bad = cli(['flows', notCapture, '--out', join(dir, 'o')]);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/ERR_CAPTURE_FORMAT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a damaged capture: exit 2 with the error, and the connections before the damage are still complete', () => {
    const dir = tmp();
    try {
      const f = join(dir, 'cut.pcap');
      copyFileSync(sharedCapture('tcp-reassembly.pcap'), f);
      // Cutting 10 bytes damages only the last record (an sFlow UDP datagram, not the connection).
      truncateSync(f, statSync(f).size - 10);
      const out = join(dir, 'out');
      const r = cli(['flows', f, '--out', out, '--json', '-q']);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('ERR_CAPTURE_TRUNCATED');
      const rep = JSON.parse(r.stdout) as FlowsReport;
      expect(rep.complete).toBe(false);
      expect(rep.error?.code).toBe('ERR_CAPTURE_TRUNCATED');
      expect(rep.connections.length).toBe(1);
      // PcapPlusPlus's expected sides still match byte for byte.
      for (const name of readdirSync(join(PCAPPP, 'expected_sides'))) {
        const ours = readFileSync(join(out, name.replace(/\.txt$/, '.bin')));
        expect(ours.equals(readFileSync(join(PCAPPP, 'expected_sides', name))), name).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
