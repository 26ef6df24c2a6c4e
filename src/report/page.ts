/**
 * Self-contained HTML pages for reports (bench replay, diff): one file, no network, no
 * external scripts, styles or fonts, so a report opens offline and can be mailed around.
 *
 * Every page carries a tiny error trap first in <head>: uncaught errors are recorded on the
 * root element (`data-js-errors`), and `data-ready="1"` is set once the page's own script has
 * run. Headless-browser tests read both from the rendered DOM.
 */

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESC[c]!);
}

/** JSON that is safe inside a <script> element (no `</script>`, no U+2028/9 surprises). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export interface PageOptions {
  /** Page title (plain text). */
  title: string;
  /** Body HTML (already escaped by the caller). */
  body: string;
  /** Extra CSS appended to the base style sheet. */
  css?: string;
  /** Embedded as JSON in `<script type="application/json" id="report-data">` for the page script or for tools. */
  data?: unknown;
  /** Inline page script (runs after the body; may read the data with `reportData()`). */
  script?: string;
}

const BASE_CSS = `
:root{--fg:#1d2330;--muted:#5d6678;--bg:#fff;--line:#d9dde5;--match:#3a9d5d;--diverge:#d64545;--missing:#8e44ad;--extra:#e67e22;--held:#9aa3b2;--timeout:#c0392b;--checkpoint:#f39c12;--gap:#7f8c8d;--data:#4a78c2;--benign:#b7c9e2}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:24px auto;max-width:1180px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.sub{color:var(--muted);margin:0 0 16px}
table{border-collapse:collapse;margin:8px 0 16px;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f4f6f9;font-weight:600}td.num,th.num{text-align:right}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;border-radius:4px}
svg{display:block;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:var(--fg)}svg .axis line,svg .axis path{stroke:#8a93a5}svg .grid{stroke:#eceff4}
.k-match{fill:var(--match)}.k-diverge{fill:var(--diverge)}.k-missing{fill:var(--missing)}.k-extra{fill:var(--extra)}.k-held{fill:var(--held)}.k-timeout{fill:var(--timeout)}.k-checkpoint{fill:var(--checkpoint);stroke:var(--checkpoint)}.k-gap{fill:var(--gap)}.k-data{fill:var(--data)}.k-benign{fill:var(--benign)}
.bar{fill:var(--data)}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px;border-radius:2px}
.ok{color:var(--match)}.bad{color:var(--diverge)}
`;

const TRAP = `(function(){var r=document.documentElement;window.addEventListener('error',function(e){var p=r.getAttribute('data-js-errors');r.setAttribute('data-js-errors',(p?p+' | ':'')+String(e.message||e));});window.addEventListener('unhandledrejection',function(e){var p=r.getAttribute('data-js-errors');r.setAttribute('data-js-errors',(p?p+' | ':'')+'unhandled rejection: '+String(e.reason));});window.reportData=function(){var el=document.getElementById('report-data');return el?JSON.parse(el.textContent):null;};})();`;

/** A complete, self-contained HTML document. */
export function htmlPage(o: PageOptions): string {
  const data = o.data === undefined ? '' : `<script type="application/json" id="report-data">${scriptJson(o.data)}</script>\n`;
  const script = o.script === undefined ? '' : `<script>${o.script.replace(/<\/script/gi, '<\\/script')}</script>\n`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(o.title)}</title>
<script>${TRAP}</script>
<style>${BASE_CSS}${o.css ?? ''}</style>
</head>
<body>
${o.body}
${data}${script}<script>document.documentElement.setAttribute('data-ready','1');</script>
</body>
</html>
`;
}

/** A colour legend for the `k-*` kinds used by the timeline. */
export function legend(kinds: readonly { kind: string; label: string }[]): string {
  return `<div class="legend">${kinds.map((k) => `<span><i class="k-${cssKind(k.kind)}" style="background:var(--${cssKind(k.kind)})"></i>${escapeHtml(k.label)}</span>`).join('')}</div>`;
}

/** A kind name reduced to what a CSS class may hold. */
export function cssKind(kind: string): string {
  return kind.toLowerCase().replace(/[^a-z0-9-]/g, '-');
}
