/**
 * `bench replay --html FILE`: a self-contained page (the project's report shell,
 * src/report/html.ts) with the results table, one hold-latency histogram per engine × mode and
 * a checkpoint timeline (one row per engine × mode: the measured feed as a span, each requested
 * checkpoint as a mark). The JSON report is embedded as the page's data.
 */
import { escapeHtml, htmlPage, htmlTable, legend, logBins, svgHistogram, svgTimeline } from '../report/html.js';
import type { TimelineRow } from '../report/html.js';
import type { BenchReport, RowDetail } from './bench-report.js';
import { percentile } from './bench-stats.js';

function n(v: number | null, d = 3): string {
  return v === null || Number.isNaN(v) ? '-' : v.toFixed(d);
}

/** The page as a string. `details` is parallel to `report.runs`. */
export function benchHtml(report: BenchReport, details: readonly RowDetail[]): string {
  const rowName = (i: number): string => `${report.runs[i]!.engine} ${report.runs[i]!.mode}`;
  const table = htmlTable(
    ['engine', 'mode', 'runs', 'frames/s', 'min–max', 'Gbit/s', 'hold p50 ms', 'p99 ms', 'p99.9 ms', 'checkpoints', 'causes', 'missed', 'spurious', 'peak RSS MiB', 'pool high water'],
    report.runs.map((r) => [
      r.engine,
      r.mode,
      r.runs,
      Math.round(r.framesPerSec),
      `${Math.round(r.framesPerSecMin)}–${Math.round(r.framesPerSecMax)}`,
      n(r.gbitPerSec),
      n(r.p50HoldMs),
      n(r.p99HoldMs),
      n(r.p999HoldMs),
      r.checkpoints,
      Object.entries(r.causes).map(([k, v]) => `${k} ${v}`).join(', ') || '-',
      r.missed === null ? '-' : `${r.missed}${r.causesKnown ? '' : ' (from counts)'}`,
      r.spurious === null ? '-' : `${r.spurious}${r.causesKnown ? '' : ' (from counts)'}`,
      r.peakRssKiB === null ? '-' : (r.peakRssKiB / 1024).toFixed(0),
      r.poolHighWater ?? '-',
    ]),
    { numeric: [2, 3, 5, 6, 7, 8, 9, 13, 14], id: 'runs' },
  );
  const ratios = Object.entries(report.ratio).map(
    ([mode, r]) => `<li>colo-proxy ${escapeHtml(mode)} / QEMU sockets: frames/s <b>${r.framesPerSec.toFixed(2)}×</b>, p99 hold ${r.p99HoldMs.toFixed(2)}×, checkpoints ${r.checkpoints === null ? '-' : `${r.checkpoints.toFixed(2)}×`}</li>`,
  );
  const hists = details.map((d, i) => {
    const ms = d.holdMs;
    const markers = ms.length > 0 ? [{ at: percentile(ms, 0.5), label: 'p50' }, { at: percentile(ms, 0.99), label: 'p99' }] : [];
    return `<h3>${escapeHtml(rowName(i))}</h3>\n${svgHistogram({ bins: logBins(ms), xLabel: 'hold latency (ms, log scale)', yLabel: 'frames', unit: 'ms', markers, title: `hold latency ${rowName(i)}`, id: `hist-${i}` })}`;
  });
  const rows: TimelineRow[] = details.map((d, i) => ({
    label: rowName(i),
    spans: [{ from: 0, to: Math.max(d.feedMs, d.wallMs), kind: 'data', title: `feed ${d.feedMs.toFixed(1)} ms, burst ${d.wallMs.toFixed(1)} ms` }],
    marks: d.events.map((c) => ({
      at: Number.isFinite(c.atMs) ? Math.max(0, c.atMs) : 0,
      kind: c.requested ? 'checkpoint' : 'diverge',
      title:
        (c.cause === null ? `checkpoint ${c.checkpoint} (cause not reported)` : `${c.requested ? 'checkpoint' : 'joined checkpoint'} ${c.checkpoint}: ${c.cause} ${c.flow ?? ''}${c.offset === null ? '' : ` @${c.offset}`}`) +
        ` at ${c.atMs.toFixed(2)} ms`,
    })),
  }));
  const s = report.settings;
  const w = report.workload;
  const body = [
    `<h1>bench replay: ${escapeHtml(w.name)}</h1>`,
    `<p class="sub">${w.primaryFrames} primary + ${w.secondaryFrames} secondary frames; ${w.groundTruth === null ? 'no ground truth' : `${w.groundTruth} labelled divergence(s)`}; pace ${escapeHtml(s.pace)}; ${s.runs} run(s) per row (median, min–max); warm-up ${s.warmup} frames/side; compare_timeout ${s.compareTimeoutMs} ms, max_queue_size ${s.maxQueueSize}.</p>`,
    '<h2>Results</h2>',
    table,
    ratios.length > 0 ? `<ul id="ratios">${ratios.join('')}</ul>` : '<p id="ratios">No QEMU row: no ratios.</p>',
    '<h2>Hold latency</h2>',
    '<p class="sub">Per released primary frame, from the arrival of the later of the pair to its release (representative run: median frames/s).</p>',
    ...hists,
    '<h2>Checkpoint timeline</h2>',
    legend([{ kind: 'data', label: 'measured feed and release burst' }, { kind: 'checkpoint', label: 'checkpoint requested' }, { kind: 'diverge', label: 'divergence joining a pending checkpoint' }]),
    svgTimeline({ rows, xLabel: 'time since the first write (ms)', title: 'checkpoints per engine and mode', id: 'timeline', start: 0 }),
  ].join('\n');
  return htmlPage({ title: `bench replay ${w.name}`, body, data: report });
}
