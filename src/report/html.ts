/**
 * Report building blocks (one way to make a report page): a self-contained page shell, tables,
 * a histogram and a timeline as inline SVG. Used by `bench replay --html` and `diff --html`.
 */
export { escapeHtml, htmlPage, legend, scriptJson, cssKind } from './page.js';
export type { PageOptions } from './page.js';
export { htmlTable } from './table.js';
export type { TableOptions } from './table.js';
export { logBins, svgHistogram } from './histogram.js';
export type { Bin, HistogramOptions } from './histogram.js';
export { svgTimeline } from './timeline.js';
export type { TimelineMark, TimelineOptions, TimelineRow, TimelineSpan } from './timeline.js';
export { niceTicks, shortNumber } from './scale.js';
