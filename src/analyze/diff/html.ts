/**
 * `colo-proxy diff --html FILE`: the diff result as one self-contained page (no network; the
 * report shell of src/report/html.ts). What it shows:
 * - the summary (flows, diverged per cause, benign differences, would-checkpoint figures of
 *   colo-proxy and, when run, QEMU's rules);
 * - an overview timeline in capture time: one row per flow, matched time green, time after the
 *   first divergence in the cause's colour, checkpoint marks where each engine would ask;
 * - per diverged flow: a timeline in stream bytes per direction (bytes matched up to the
 *   divergence offset, diverged after it, checkpoints at their offsets), the divergence facts
 *   and the byte context of both sides (hex + printable);
 * - the identical flows, listed.
 * Every flow section carries `data-flow`, `data-verdict`, `data-cause` and `data-offset` so tools
 * (and the tests) can read the page's DOM.
 */
import { escapeHtml, htmlPage, htmlTable, legend, svgTimeline } from '../../report/html.js';
import type { TimelineMark, TimelineRow, TimelineSpan } from '../../report/html.js';
import type { DiffCause, DiffResult, Divergence, FlowDiff } from './types.js';
import type { FlowCheckpointMark } from './would-checkpoint.js';

/** Most flows drawn in the overview timeline (all are still listed). */
const MAX_OVERVIEW_ROWS = 300;
/** Most diverged flows given a full section (the rest are in the table). */
const MAX_SECTIONS = 500;

const CAUSE_KIND: Record<DiffCause, string> = { payload: 'diverge', missing: 'missing', extra: 'extra', outcome: 'diverge', timing: 'timeout' };

const CSS = `
:root{--qemu-checkpoint:#6c3483}
.k-qemu-checkpoint{fill:var(--qemu-checkpoint);stroke:var(--qemu-checkpoint)}
.flow{border:1px solid var(--line);border-radius:6px;padding:8px 14px;margin:14px 0}
.flow h3{margin:4px 0 8px}
.bytes td{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;white-space:pre}
.figs{display:flex;gap:28px;flex-wrap:wrap}
`;

const LEGEND = [
  { kind: 'match', label: 'bytes / time matched' },
  { kind: 'diverge', label: 'diverged (payload, outcome)' },
  { kind: 'missing', label: 'missing on one side' },
  { kind: 'extra', label: 'extra on one side' },
  { kind: 'timeout', label: 'timing' },
  { kind: 'checkpoint', label: 'colo-proxy checkpoint' },
  { kind: 'qemu-checkpoint', label: 'QEMU-rules checkpoint' },
];

function flowTitle(f: FlowDiff): string {
  return `${f.client} ⇄ ${f.server} (${f.protocol}${f.vlan !== 0 ? `, VLAN ${f.vlan}` : ''})`;
}

function marksOf(f: FlowDiff): FlowCheckpointMark[] {
  const w = f.wouldCheckpoint;
  const m = w?.['checkpoints'];
  return Array.isArray(m) ? (m as FlowCheckpointMark[]) : [];
}

function markTitle(m: FlowCheckpointMark): string {
  const where = m.offset === null ? '' : ` at ${m.offsetUnit === 'datagram' ? 'datagram' : 'byte'} ${m.offset} (${m.direction})`;
  return `${m.engine} checkpoint #${m.checkpoint}: ${m.cause}${where}${m.atEnd ? " (after the capture's end: a held packet timing out)" : ''}`;
}

const markKind = (m: FlowCheckpointMark): string => (m.engine === 'qemu' ? 'qemu-checkpoint' : 'checkpoint');

function fmtTime(ms: number | null): string {
  return ms === null ? '—' : new Date(ms).toISOString();
}

/** Start of the run: the earliest flow start over both sides. */
function runStart(r: DiffResult): number {
  let t = Infinity;
  for (const f of r.flows) for (const s of [f.primary, f.secondary]) if (s !== null && s.startMs < t) t = s.startMs;
  return Number.isFinite(t) ? t : 0;
}

function overview(r: DiffResult, t0: number): string {
  const rows: TimelineRow[] = [];
  const flows = [...r.flows.filter((f) => f.verdict === 'diverged'), ...r.flows.filter((f) => f.verdict !== 'diverged')].slice(0, MAX_OVERVIEW_ROWS);
  for (const f of flows) {
    const sides = [f.primary, f.secondary].filter((s) => s !== null);
    if (sides.length === 0) continue;
    const from = Math.min(...sides.map((s) => s.startMs)) - t0;
    const to = Math.max(...sides.map((s) => s.lastMs)) - t0;
    const spans: TimelineSpan[] = [];
    const d = f.divergence;
    if (d === null) spans.push({ from, to, kind: 'match', title: 'identical' });
    else {
      const at = Math.min(d.primaryMs ?? Infinity, d.secondaryMs ?? Infinity);
      const cut = Number.isFinite(at) ? Math.max(from, Math.min(to, at - t0)) : from;
      if (cut > from) spans.push({ from, to: cut, kind: 'match', title: 'matched' });
      spans.push({ from: cut, to: Math.max(to, cut), kind: CAUSE_KIND[d.cause], title: `${d.cause} at ${d.offsetUnit} ${d.offset} (${d.direction}): ${d.detail}` });
    }
    const marks: TimelineMark[] = marksOf(f).map((m) => ({ at: m.atMs - t0, kind: markKind(m), title: markTitle(m) }));
    rows.push({ label: `#${f.index} ${f.client} ⇄ ${f.server}`, title: flowTitle(f), spans, marks });
  }
  if (rows.length === 0) return '<p>No flows.</p>';
  const more = r.flows.length > rows.length ? `<p class="sub">${r.flows.length - rows.length} more flows are listed below but not drawn.</p>` : '';
  return svgTimeline({ rows, xLabel: 'capture time since the first packet (ms)', title: 'flows over time', id: 'overview' }) + more;
}

/** Stream-space timeline of one diverged flow: one row per direction. */
function byteTimeline(f: FlowDiff, d: Divergence): string {
  const rows: TimelineRow[] = [];
  const unit = d.offsetUnit === 'datagram' ? 'datagram' : 'byte';
  for (const dir of ['client-to-server', 'server-to-client'] as const) {
    const i = dir === 'client-to-server' ? 0 : 1;
    const total =
      unit === 'byte'
        ? Math.max(f.primary?.bytes[i] ?? 0, f.secondary?.bytes[i] ?? 0)
        : Math.max(f.primary?.packets ?? 0, f.secondary?.packets ?? 0);
    const spans: TimelineSpan[] = [];
    if (d.direction === dir) {
      const end = Math.max(total, d.offset + 1);
      if (d.offset > 0) spans.push({ from: 0, to: d.offset, kind: 'match', title: `${unit}s 0–${d.offset} matched` });
      spans.push({ from: d.offset, to: end, kind: CAUSE_KIND[d.cause], title: `${d.cause} from ${unit} ${d.offset}` });
    } else if (total > 0) spans.push({ from: 0, to: total, kind: 'match', title: `${total} ${unit}s matched` });
    const marks: TimelineMark[] = marksOf(f)
      .filter((m) => m.direction === dir && m.offset !== null && (m.offsetUnit ?? 'byte') === unit)
      .map((m) => ({ at: m.offset!, kind: markKind(m), title: markTitle(m) }));
    rows.push({ label: dir, spans, marks });
  }
  return svgTimeline({ rows, xLabel: `stream offset (${unit}s)`, title: `flow #${f.index} in stream space`, start: 0, width: 1000, labelWidth: 150 });
}

function bytesTable(d: Divergence): string {
  const p = d.primaryBytes;
  const s = d.secondaryBytes;
  if (p.hex === '' && s.hex === '') return '<p class="sub">No bytes on either side at that place.</p>';
  const spaced = (hex: string): string => hex.replace(/(..)(?!$)/g, '$1 ');
  return htmlTable(
    ['side', 'from offset', 'hex', 'text'],
    [
      ['primary', p.offset, spaced(p.hex), p.text],
      ['secondary', s.offset, spaced(s.hex), s.text],
    ],
    { numeric: [1], className: 'bytes' },
  );
}

function checkpointTable(marks: FlowCheckpointMark[], t0: number): string {
  if (marks.length === 0) return '<p class="sub">No checkpoint would be requested in this flow.</p>';
  return htmlTable(
    ['engine', 'checkpoint', 'time (ms)', 'cause', 'direction', 'offset'],
    marks.map((m) => [m.engine, m.checkpoint, `${(m.atMs - t0).toFixed(3)}${m.atEnd ? ' (after end)' : ''}`, m.cause, m.direction, m.offset === null ? '—' : `${m.offset}${m.offsetUnit === 'datagram' ? ' (datagram)' : ''}`]),
    { numeric: [1, 2, 5], className: 'checkpoints' },
  );
}

function flowSection(f: FlowDiff, t0: number): string {
  const d = f.divergence!;
  const facts = htmlTable(
    ['cause', 'direction', 'offset', 'side', 'primary time', 'secondary time', 'alignment'],
    [[d.cause, d.direction, `${d.offset}${d.offsetUnit === 'datagram' ? ' (datagram)' : ''}`, d.side, fmtTime(d.primaryMs), fmtTime(d.secondaryMs), f.onlyIn !== undefined ? `only in ${f.onlyIn}` : (f.alignment ?? '—')]],
    { className: 'facts' },
  );
  const attrs = `data-flow="${escapeHtml(`${f.client}-${f.server}/${f.protocol}`)}" data-index="${f.index}" data-verdict="diverged" data-cause="${d.cause}" data-direction="${d.direction}" data-offset="${d.offset}"`;
  return `<section class="flow" id="flow-${f.index}" ${attrs}>
<h3>#${f.index} ${escapeHtml(flowTitle(f))} — <span class="bad">${escapeHtml(d.cause)}</span></h3>
<p>${escapeHtml(d.detail)}</p>
${facts}
${byteTimeline(f, d)}
<h4>Byte context</h4>
${bytesTable(d)}
<h4>Would checkpoint</h4>
${checkpointTable(marksOf(f), t0)}
</section>`;
}

function summaryHtml(r: DiffResult): string {
  const s = r.summary;
  const causes = (Object.entries(s.byCause) as [string, number][]).filter(([, n]) => n > 0);
  const benign = (Object.entries(s.benign) as [string, number][]).filter(([, n]) => n > 0);
  const w = s.wouldCheckpoint;
  const byCause = (x: unknown): string =>
    x !== null && typeof x === 'object'
      ? (Object.entries(x as Record<string, number>).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none')
      : '—';
  const ckRows: (string | number)[][] = [];
  if (w !== undefined) {
    const end = (v: unknown): number => (typeof v === 'number' ? v : 0);
    ckRows.push(['colo-proxy (shadow)', w.coloProxy, byCause(w['coloProxyByCause']), end(w['coloProxyAtEnd'])]);
    if (w.qemu !== undefined) ckRows.push(['QEMU 7.2 colo-compare rules (model)', w.qemu, byCause(w['qemuByCause']), end(w['qemuAtEnd'])]);
  }
  return `<div class="figs">
<div>${htmlTable(['flows', 'identical', 'diverged'], [[s.flows, s.identical, s.diverged]], { numeric: [0, 1, 2], id: 'summary' })}</div>
<div>${htmlTable(['cause', 'flows'], causes.length > 0 ? causes : [['none', 0]], { numeric: [1], id: 'causes' })}</div>
<div>${htmlTable(['benign (ignored by COLO)', 'count'], benign.length > 0 ? benign : [['none', 0]], { numeric: [1], id: 'benign' })}</div>
</div>
${w === undefined ? '<p class="sub">Would-checkpoint replay not run.</p>' : `<h3>Would checkpoint</h3>${htmlTable(['engine', 'checkpoints', 'by cause', "after the capture's end"], ckRows, { numeric: [1, 3], id: 'would-checkpoint' })}`}`;
}

/** The whole page for a diff result (with `wouldCheckpoint` filled when it was run). */
export function renderDiffHtml(r: DiffResult): string {
  const t0 = runStart(r);
  const diverged = r.flows.filter((f) => f.verdict === 'diverged');
  const identical = r.flows.filter((f) => f.verdict !== 'diverged');
  const sections = diverged.slice(0, MAX_SECTIONS).map((f) => flowSection(f, t0));
  if (diverged.length > MAX_SECTIONS) sections.push(`<p class="sub">${diverged.length - MAX_SECTIONS} more diverged flows: see the JSON output.</p>`);
  const identRows = identical.map((f) => [f.index, f.protocol, f.client, f.server, f.primary?.packets ?? 0, f.secondary?.packets ?? 0, f.alignment ?? '—']);
  const identTable = identical.length === 0 ? '<p>None.</p>' : htmlTable(['#', 'proto', 'client', 'server', 'primary packets', 'secondary packets', 'alignment'], identRows, { numeric: [0, 4, 5], id: 'identical' });
  const body = `<h1>colo-proxy diff</h1>
<p class="sub">primary <code>${escapeHtml(r.primary.file)}</code> (${r.primary.packets} packets) vs secondary <code>${escapeHtml(r.secondary.file)}</code> (${r.secondary.packets} packets); timing threshold ${r.options.timeoutMs} ms.</p>
${summaryHtml(r)}
<h2>Timeline</h2>
${legend(LEGEND)}
${overview(r, t0)}
<h2>Diverged flows (${diverged.length})</h2>
${sections.length > 0 ? sections.join('\n') : '<p class="ok">None: every flow carried the same output.</p>'}
<h2>Identical flows (${identical.length})</h2>
${identTable}`;
  const data = {
    summary: r.summary,
    flows: r.flows.map((f) => ({ index: f.index, client: f.client, server: f.server, protocol: f.protocol, verdict: f.verdict, divergence: f.divergence === null ? null : { cause: f.divergence.cause, direction: f.divergence.direction, offset: f.divergence.offset } })),
  };
  // The page works without script; this only records what it drew, for tools.
  const script = `var d=reportData();document.documentElement.setAttribute('data-flows',String(d.flows.length));document.documentElement.setAttribute('data-sections',String(document.querySelectorAll('section.flow').length));`;
  return htmlPage({ title: `colo-proxy diff: ${r.summary.diverged} of ${r.summary.flows} flows diverged`, body, css: CSS, data, script });
}
