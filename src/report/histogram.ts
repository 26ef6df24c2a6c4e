/**
 * Histograms for reports: bins from samples (log-spaced for latencies, which span decades) and
 * an SVG bar chart.
 */
import { escapeHtml } from './page.js';
import { linear, niceTicks, shortNumber } from './scale.js';

export interface Bin {
  /** Lower and upper bound of the bin (upper exclusive; the last bin is closed). */
  lo: number;
  hi: number;
  count: number;
}

/**
 * Log-spaced bins over the positive samples: `perDecade` bins per factor of 10, from the
 * smallest to the largest sample. Zero and negative samples go into the first bin (they are
 * counted, never dropped). Empty input → no bins.
 */
export function logBins(samples: ArrayLike<number>, perDecade = 10): Bin[] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i]!;
    if (v > 0 && v < min) min = v;
    if (v > max) max = v;
  }
  if (samples.length === 0) return [];
  if (min === Infinity) return [{ lo: 0, hi: 0, count: samples.length }];
  const l0 = Math.floor(Math.log10(min) * perDecade) / perDecade;
  const l1 = Math.max(l0 + 1 / perDecade, Math.ceil(Math.log10(max) * perDecade + 1e-9) / perDecade);
  const n = Math.max(1, Math.round((l1 - l0) * perDecade));
  const bins: Bin[] = [];
  for (let i = 0; i < n; i++) bins.push({ lo: 10 ** (l0 + i / perDecade), hi: 10 ** (l0 + (i + 1) / perDecade), count: 0 });
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i]!;
    const k = v > 0 ? Math.min(n - 1, Math.max(0, Math.floor((Math.log10(v) - l0) * perDecade + 1e-9))) : 0;
    bins[k]!.count++;
  }
  return bins;
}

export interface HistogramOptions {
  bins: readonly Bin[];
  /** Axis labels. */
  xLabel: string;
  yLabel?: string;
  /** Bar tooltip unit after the bounds (e.g. "ms"). */
  unit?: string;
  width?: number;
  height?: number;
  /** Vertical marker lines (e.g. p50 / p99). */
  markers?: readonly { at: number; label: string }[];
  /** Accessible name and `id` of the svg element. */
  title: string;
  id?: string;
}

/** An SVG bar chart of `bins` on a log x axis when bins are log-spaced (bar widths equal). */
export function svgHistogram(o: HistogramOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 260;
  const m = { l: 56, r: 16, t: 16, b: 44 };
  const bins = o.bins;
  const idAttr = o.id !== undefined ? ` id="${escapeHtml(o.id)}"` : '';
  if (bins.length === 0) {
    return `<svg${idAttr} role="img" aria-label="${escapeHtml(o.title)}" viewBox="0 0 ${W} 60" width="${W}" height="60"><text x="8" y="30">no samples</text></svg>`;
  }
  const maxC = Math.max(...bins.map((b) => b.count), 1);
  const y = linear(0, maxC, H - m.b, m.t);
  const bw = (W - m.l - m.r) / bins.length;
  const unit = o.unit ?? '';
  const parts: string[] = [];
  for (const t of niceTicks(0, maxC, 5)) {
    const yy = y(t).toFixed(1);
    parts.push(`<line class="grid" x1="${m.l}" x2="${W - m.r}" y1="${yy}" y2="${yy}"/><text x="${m.l - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${shortNumber(t)}</text>`);
  }
  bins.forEach((b, i) => {
    const x = m.l + i * bw;
    const yy = y(b.count);
    parts.push(
      `<rect class="bar" x="${(x + 0.5).toFixed(1)}" y="${yy.toFixed(1)}" width="${Math.max(0.5, bw - 1).toFixed(1)}" height="${(H - m.b - yy).toFixed(1)}"><title>${escapeHtml(`${fmt(b.lo)}–${fmt(b.hi)} ${unit}: ${b.count}`)}</title></rect>`,
    );
  });
  // x labels: about 8 bin edges.
  const every = Math.max(1, Math.ceil(bins.length / 8));
  for (let i = 0; i <= bins.length; i += every) {
    const edge = i < bins.length ? bins[i]!.lo : bins[bins.length - 1]!.hi;
    parts.push(`<text x="${(m.l + i * bw).toFixed(1)}" y="${H - m.b + 14}" text-anchor="middle">${fmt(edge)}</text>`);
  }
  for (const mk of o.markers ?? []) {
    const i = bins.findIndex((b) => mk.at >= b.lo && mk.at < b.hi);
    const k = i < 0 ? (mk.at < bins[0]!.lo ? 0 : bins.length - 1) : i;
    const b = bins[k]!;
    const frac = b.hi > b.lo && b.lo > 0 ? Math.log(mk.at / b.lo) / Math.log(b.hi / b.lo) : 0.5;
    const x = (m.l + (k + Math.min(1, Math.max(0, frac))) * bw).toFixed(1);
    parts.push(`<line class="k-checkpoint" x1="${x}" x2="${x}" y1="${m.t}" y2="${H - m.b}" stroke-dasharray="4 3"/><text x="${x}" y="${m.t - 3}" text-anchor="middle">${escapeHtml(mk.label)}</text>`);
  }
  parts.push(`<line class="axis" x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#8a93a5"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 6}" text-anchor="middle">${escapeHtml(o.xLabel)}</text>`);
  if (o.yLabel !== undefined) parts.push(`<text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(o.yLabel)}</text>`);
  return `<svg${idAttr} role="img" aria-label="${escapeHtml(o.title)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}"><title>${escapeHtml(o.title)}</title>${parts.join('')}</svg>`;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  if (v >= 100) return shortNumber(Math.round(v));
  return `${+v.toPrecision(2)}`;
}
