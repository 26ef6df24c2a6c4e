/**
 * Runs the real `colo-proxy flows` command in a child process (what users run) and loads what
 * it produced: the JSON report and the direction files.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ConnectionReport, DirectionReport, FlowsReport } from '../../src/cli/flows-extract.js';
import { ROOT } from '../helpers/paths.js';

const CLI = resolve(ROOT, 'src/cli/main.ts');

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function cli(args: string[]): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 30, env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export interface FlowsRun {
  dir: string;
  report: FlowsReport;
  /** Bytes of a direction's file. */
  file(d: DirectionReport): Buffer;
  cleanup(): void;
}

/** `flows CAPTURE --out TMP --json -q`; expects exit 0 and a clean stderr. */
export function runFlows(capture: string, extra: string[] = []): FlowsRun {
  const dir = mkdtempSync(join(tmpdir(), 'colo-flows-'));
  const r = cli(['flows', capture, '--out', dir, '--json', '-q', ...extra]);
  if (r.status !== 0 || r.stderr !== '') {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`flows ${capture} exited ${r.status}: ${r.stderr}`);
  }
  const report = JSON.parse(r.stdout) as FlowsReport;
  return {
    dir,
    report,
    file: (d) => readFileSync(join(dir, d.file)),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The direction of `c` whose sender is `src` (`"IP:PORT"`). */
export function directionFrom(c: ConnectionReport, src: string): DirectionReport {
  if (src === c.client) return c.clientToServer;
  if (src === c.server) return c.serverToClient;
  throw new Error(`${src} is neither end of connection ${c.serial} (${c.client} ↔ ${c.server})`);
}

/** Unordered endpoint pair, the key tshark streams and our connections are matched on. */
export function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/**
 * A direction's stream rebuilt from its file and gap list: `have[i]` says whether stream
 * offset i was delivered (else it lies in a gap). Throws if the gap list and the file disagree.
 */
export function streamOf(file: Buffer, d: DirectionReport): { bytes: Buffer; have: Uint8Array } {
  const total = file.length + d.gapBytes;
  const bytes = Buffer.alloc(total);
  const have = new Uint8Array(total);
  let fo = 0;
  let so = 0;
  for (const g of d.gapList) {
    if (g.fileOffset < fo || g.offset - so !== g.fileOffset - fo) throw new Error(`gap list inconsistent at stream offset ${g.offset}`);
    file.copy(bytes, so, fo, g.fileOffset);
    have.fill(1, so, g.offset);
    so = g.offset + g.len;
    fo = g.fileOffset;
  }
  file.copy(bytes, so, fo);
  have.fill(1, so, so + file.length - fo);
  return { bytes, have };
}
