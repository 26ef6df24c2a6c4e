import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { escapeHtml, htmlPage, htmlTable, logBins, scriptJson, svgHistogram, svgTimeline } from '../../src/report/html.js';
import { hasChromium, loadInChromium } from '../helpers/chromium.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('report building blocks', () => {
  it('escapes text and keeps embedded JSON inert', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    const j = scriptJson({ s: '</script><script>alert(1)</script>', u: '\u2028' });
    expect(j).not.toContain('</script');
    expect(JSON.parse(j)).toEqual({ s: '</script><script>alert(1)</script>', u: '\u2028' });
  });

  it('log bins count every sample, zeros and negatives in the first bin', () => {
    const samples = [0, -1, 0.001, 0.002, 0.01, 0.5, 1, 1, 9.9, 10, 250];
    const bins = logBins(samples, 5);
    expect(bins.reduce((a, b) => a + b.count, 0)).toBe(samples.length);
    for (let i = 1; i < bins.length; i++) expect(bins[i]!.lo).toBeCloseTo(bins[i - 1]!.hi, 9);
    expect(bins[0]!.lo).toBeLessThanOrEqual(0.001);
    expect(bins[bins.length - 1]!.hi).toBeGreaterThanOrEqual(250);
    // 250 lands in the last bin, 0.001 (and 0, -1) in the first.
    expect(bins[bins.length - 1]!.count).toBe(1);
    expect(bins[0]!.count).toBe(3);
    expect(logBins([], 5)).toEqual([]);
  });

  it('a table escapes its cells unless raw', () => {
    const t = htmlTable(['a', 'b'], [['<x>', 1]], { numeric: [1] });
    expect(t).toContain('&lt;x&gt;');
    expect(t).toContain('<td class="num">1</td>');
    expect(htmlTable(['a'], [['<b>y</b>']], { raw: true })).toContain('<b>y</b>');
  });
});

describe.skipIf(!hasChromium())('a report page in headless Chromium', () => {
  it('renders offline: charts, rows, data, and no script errors', async () => {
    const hist = svgHistogram({ id: 'h', title: 'latency', bins: logBins([0.1, 0.2, 0.2, 3, 40], 4), xLabel: 'ms', unit: 'ms', markers: [{ at: 0.2, label: 'p50' }] });
    const tl = svgTimeline({
      id: 't',
      title: 'flows',
      xLabel: 'bytes',
      rows: [
        { label: 'flow-a', spans: [{ from: 0, to: 100, kind: 'match' }, { from: 100, to: 120, kind: 'diverge', title: '<evil>' }], marks: [{ at: 100, kind: 'checkpoint', title: 'ckpt 1' }] },
        { label: 'flow-b', spans: [{ from: 0, to: 50, kind: 'match' }] },
      ],
    });
    const page = htmlPage({
      title: 'test <report>',
      body: `<h1>${escapeHtml('test <report>')}</h1>${hist}${tl}<p id="out"></p>`,
      data: { n: 2, s: '</script>' },
      script: `document.getElementById('out').textContent = 'rows=' + document.querySelectorAll('#t g.row').length + ' n=' + reportData().n + ' s=' + reportData().s;`,
    });
    const f = join(dir, 'page.html');
    writeFileSync(f, page);
    const r = await loadInChromium(f);
    expect(r.errors).toEqual([]);
    expect(r.ready).toBe(true);
    expect(r.dom).toContain('rows=2 n=2 s=&lt;/script&gt;');
    expect(r.dom).toContain('data-label="flow-a"');
    expect(r.dom).toContain('data-kind="diverge"');
    expect(r.dom.match(/<rect class="bar"/g)?.length).toBeGreaterThan(0);
  });

  it('reports a script error (the check can fail)', async () => {
    const f = join(dir, 'bad.html');
    writeFileSync(f, htmlPage({ title: 'bad', body: '<p>x</p>', script: 'notDefinedAnywhere();' }));
    const r = await loadInChromium(f);
    expect(r.errors.join(' ')).toMatch(/notDefinedAnywhere/);
    expect(r.ready).toBe(true);
  });
});
