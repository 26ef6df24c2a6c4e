import { escapeHtml } from './page.js';

export interface TableOptions {
  /** Column indexes rendered right-aligned (numbers). */
  numeric?: readonly number[];
  /** Cells already HTML (not escaped). Default false: every cell is escaped. */
  raw?: boolean;
  /** `id` / `class` attribute for the table element. */
  id?: string;
  className?: string;
}

/** An HTML table; cells are escaped unless `raw`. */
export function htmlTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[], o: TableOptions = {}): string {
  const num = new Set(o.numeric ?? []);
  const cell = (v: string | number): string => (o.raw === true ? String(v) : escapeHtml(String(v)));
  const cls = (i: number): string => (num.has(i) ? ' class="num"' : '');
  const attrs = `${o.id !== undefined ? ` id="${escapeHtml(o.id)}"` : ''}${o.className !== undefined ? ` class="${escapeHtml(o.className)}"` : ''}`;
  const head = `<tr>${headers.map((h, i) => `<th${cls(i)}>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body = rows.map((r) => `<tr>${r.map((v, i) => `<td${cls(i)}>${cell(v)}</td>`).join('')}</tr>`).join('\n');
  return `<table${attrs}>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}
