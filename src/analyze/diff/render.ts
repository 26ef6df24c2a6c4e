/**
 * Terminal rendering of a DiffResult: one summary line, then a table of the diverged flows
 * (and, per flow, the byte context). Colour only when asked (the CLI asks on a TTY without
 * NO_COLOR).
 */
import type { BenignCounts, DiffResult, FlowDiff } from './types.js';

const RED = '\x1b[31m';
const GREEN = '\x1b[32m';
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

function benignText(b: BenignCounts): string {
  const parts = (Object.entries(b) as [string, number][]).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

/** The summary line. */
export function summaryLine(r: DiffResult, colour: boolean): string {
  const s = r.summary;
  const paint = (c: string, t: string): string => (colour ? `${c}${t}${RESET}` : t);
  const verdict = s.diverged === 0 ? paint(GREEN, 'identical') : paint(RED, `${s.diverged} diverged`);
  return `${s.flows} flows compared: ${verdict}, ${s.identical} identical; benign differences (ignored): ${benignText(s.benign)}`;
}

function row(f: FlowDiff): string[] {
  const d = f.divergence!;
  return [String(f.index), f.protocol, f.client, f.server, d.direction, `${d.offset}${d.offsetUnit === 'datagram' ? ' (dgram)' : ''}`, d.cause, f.onlyIn ? `only in ${f.onlyIn}` : f.alignment ?? '-'];
}

function causes(by: Record<string, number> | undefined): string {
  const parts = Object.entries(by ?? {}).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/** The would-checkpoint line (only when that replay ran). */
export function checkpointLine(r: DiffResult): string | null {
  const w = r.summary.wouldCheckpoint;
  if (w === undefined) return null;
  let s = `would checkpoint: colo-proxy ${w.coloProxy}${causes(w.coloProxyByCause)}`;
  if (w.qemu !== undefined) s += `; QEMU rules ${w.qemu}${causes(w.qemuByCause)}`;
  return s;
}

/** The whole terminal report. */
export function renderDiff(r: DiffResult, colour: boolean): string {
  const lines = [summaryLine(r, colour)];
  const ck = checkpointLine(r);
  if (ck !== null) lines.push(ck);
  const bad = r.flows.filter((f) => f.divergence !== null);
  if (bad.length === 0) return lines.join('\n');
  const head = ['#', 'proto', 'client', 'server', 'direction', 'offset', 'cause', 'alignment'];
  const rows = bad.map(row);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)));
  const fmt = (x: string[]): string => x.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  lines.push('', colour ? `${DIM}${fmt(head)}${RESET}` : fmt(head));
  for (const x of rows) lines.push(colour ? `${RED}${fmt(x)}${RESET}` : fmt(x));
  lines.push('');
  for (const f of bad) {
    const d = f.divergence!;
    lines.push(`#${f.index}: ${d.detail}`);
    const t = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());
    lines.push(`    time      primary ${t(d.primaryMs)}  secondary ${t(d.secondaryMs)}`);
    if (d.primaryBytes.hex !== '' || d.secondaryBytes.hex !== '') {
      lines.push(`    primary   @${d.primaryBytes.offset}: ${d.primaryBytes.hex}  ${JSON.stringify(d.primaryBytes.text)}`);
      lines.push(`    secondary @${d.secondaryBytes.offset}: ${d.secondaryBytes.hex}  ${JSON.stringify(d.secondaryBytes.text)}`);
    }
  }
  return lines.join('\n');
}
