/**
 * An SVG timeline: one row per item (a flow, a run), spans coloured by kind (matched bytes,
 * divergence, held…) and point marks (checkpoints). The x axis is whatever the caller measures
 * in: milliseconds for a bench run, stream bytes or capture time for a diff.
 */
import { cssKind, escapeHtml } from './page.js';
import { linear, niceTicks, shortNumber } from './scale.js';

export interface TimelineSpan {
  from: number;
  to: number;
  /** CSS kind: match, diverge, missing, extra, held, timeout, gap, data, benign (or any [a-z0-9-] name styled by the caller). */
  kind: string;
  /** Tooltip text. */
  title?: string;
}

export interface TimelineMark {
  at: number;
  kind: string;
  title?: string;
}

export interface TimelineRow {
  label: string;
  /** Tooltip for the label (e.g. the full flow text). */
  title?: string;
  spans: readonly TimelineSpan[];
  marks?: readonly TimelineMark[];
}

export interface TimelineOptions {
  rows: readonly TimelineRow[];
  /** x range; defaults to the extent of the spans and marks. */
  start?: number;
  end?: number;
  /** Axis caption, e.g. "time since start (ms)". */
  xLabel: string;
  title: string;
  id?: string;
  width?: number;
  /** Width reserved for row labels. */
  labelWidth?: number;
}

const ROW_H = 22;

/** Render the timeline as an inline SVG element. Each row is a `<g class="row" data-label=…>`. */
export function svgTimeline(o: TimelineOptions): string {
  const W = o.width ?? 1100;
  const lw = o.labelWidth ?? 260;
  const m = { l: lw, r: 16, t: 10, b: 40 };
  let lo = o.start ?? Infinity;
  let hi = o.end ?? -Infinity;
  if (o.start === undefined || o.end === undefined) {
    for (const r of o.rows) {
      for (const s of r.spans) {
        if (o.start === undefined) lo = Math.min(lo, s.from);
        if (o.end === undefined) hi = Math.max(hi, s.to);
      }
      for (const k of r.marks ?? []) {
        if (o.start === undefined) lo = Math.min(lo, k.at);
        if (o.end === undefined) hi = Math.max(hi, k.at);
      }
    }
  }
  if (!Number.isFinite(lo)) lo = 0;
  if (!Number.isFinite(hi) || hi <= lo) hi = lo + 1;
  const H = m.t + o.rows.length * ROW_H + m.b;
  const x = linear(lo, hi, m.l, W - m.r);
  const cx = (v: number): number => Math.min(W - m.r, Math.max(m.l, x(v)));
  const idAttr = o.id !== undefined ? ` id="${escapeHtml(o.id)}"` : '';
  const parts: string[] = [];
  const ticks = niceTicks(lo, hi, 8);
  for (const t of ticks) {
    const xx = x(t).toFixed(1);
    parts.push(`<line class="grid" x1="${xx}" x2="${xx}" y1="${m.t}" y2="${H - m.b}"/><text x="${xx}" y="${H - m.b + 14}" text-anchor="middle">${shortNumber(t)}</text>`);
  }
  o.rows.forEach((r, i) => {
    const y = m.t + i * ROW_H;
    const g: string[] = [];
    const label = r.label.length > 40 ? `${r.label.slice(0, 39)}…` : r.label;
    g.push(`<text x="${m.l - 8}" y="${y + ROW_H / 2}" text-anchor="end" dominant-baseline="middle"><title>${escapeHtml(r.title ?? r.label)}</title>${escapeHtml(label)}</text>`);
    g.push(`<rect x="${m.l}" y="${y + 4}" width="${W - m.r - m.l}" height="${ROW_H - 8}" fill="#f3f5f8"/>`);
    for (const s of r.spans) {
      const x0 = cx(s.from);
      const w = Math.max(1, cx(s.to) - x0);
      const tip = s.title !== undefined ? `<title>${escapeHtml(s.title)}</title>` : '';
      g.push(`<rect class="span k-${cssKind(s.kind)}" data-kind="${escapeHtml(s.kind)}" x="${x0.toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="${ROW_H - 8}">${tip}</rect>`);
    }
    for (const k of r.marks ?? []) {
      const xx = cx(k.at).toFixed(1);
      const tip = k.title !== undefined ? `<title>${escapeHtml(k.title)}</title>` : '';
      g.push(
        `<g class="mark k-${cssKind(k.kind)}" data-kind="${escapeHtml(k.kind)}">${tip}<line x1="${xx}" x2="${xx}" y1="${y + 1}" y2="${y + ROW_H - 1}" stroke-width="2" style="stroke:var(--${cssKind(k.kind)})"/><path d="M${xx} ${y + 1} l-4 -0.01 l4 6 l4 -6 z"/></g>`,
      );
    }
    parts.push(`<g class="row" data-label="${escapeHtml(r.label)}">${g.join('')}</g>`);
  });
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#8a93a5"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle">${escapeHtml(o.xLabel)}</text>`);
  return `<svg${idAttr} role="img" aria-label="${escapeHtml(o.title)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}"><title>${escapeHtml(o.title)}</title>${parts.join('')}</svg>`;
}
