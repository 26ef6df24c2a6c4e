/**
 * `colo-proxy diff --html`: the page loads in headless Chromium (network cut off) without
 * errors, its script ran, and its DOM shows every diverged flow with the offset and cause of
 * the result (ground truth from the workload maker), the byte context, the checkpoint marks,
 * and lists every identical flow. Also through the CLI (exit 1, the file written).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeDiff } from '../../src/analyze/diff/analyze.js';
import { renderDiffHtml } from '../../src/analyze/diff/html.js';
import type { DiffResult } from '../../src/analyze/diff/types.js';
import { attachWouldCheckpoint, wouldCheckpoint } from '../../src/analyze/diff/would-checkpoint.js';
import { makeWorkload } from '../../src/replay/workload.js';
import { hasChromium, loadInChromium } from '../helpers/chromium.js';
import { ROOT, sharedCapture } from '../helpers/paths.js';

const HAVE_CHROMIUM = hasChromium();
if (!HAVE_CHROMIUM) console.warn('chromium not found: HTML rendering tests skipped');

const tmp = mkdtempSync(join(tmpdir(), 'colo-diffhtml-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Attribute values of `attr` on every `<section class="flow" …>` of the DOM. */
function sections(dom: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const m of dom.matchAll(/<section class="flow"([^>]*)>/g)) {
    const attrs: Record<string, string> = {};
    for (const a of m[1]!.matchAll(/([a-z-]+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
    out.set(attrs['data-index']!, attrs);
  }
  return out;
}

async function build(tag: string, capture: string, opts: Parameters<typeof makeWorkload>[2]): Promise<{ result: DiffResult; file: string; html: string }> {
  const w = makeWorkload(capture, join(tmp, tag), opts);
  const result = analyzeDiff(w.primary, w.secondary);
  attachWouldCheckpoint(result, await wouldCheckpoint(w.primary, w.secondary, { qemuRules: true }));
  const html = renderDiffHtml(result);
  const file = join(tmp, `${tag}.html`);
  writeFileSync(file, html);
  return { result, file, html };
}

describe('diff --html page', () => {
  it('self-contained: no external references, data embedded', async () => {
    const { html, result } = await build('static', sharedCapture('three_http_streams.pcap'), { seed: 5, rewriteIsn: true, diverge: [{ kind: 'byte', offset: 300 }] });
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:|\/\/)/i);
    expect(html).not.toMatch(/@import|url\(/i);
    const data = JSON.parse(/<script type="application\/json" id="report-data">([^<]*)<\/script>/.exec(html)![1]!) as { flows: unknown[] };
    expect(data.flows.length).toBe(result.flows.length);
  }, 30_000);

  it.skipIf(!HAVE_CHROMIUM)('one byte change among 3 flows: loads without errors; the diverged flow shows offset, cause, bytes and checkpoints; identical flows listed', async () => {
    const { result, file } = await build('byte', sharedCapture('three_http_streams.pcap'), { seed: 5, rewriteIsn: true, diverge: [{ kind: 'byte', offset: 300 }] });
    expect(result.summary.diverged).toBe(1);
    const page = await loadInChromium(file);
    expect(page.errors).toEqual([]);
    expect(page.ready).toBe(true);
    expect(page.console.filter((l) => /error|refused|violat/i.test(l))).toEqual([]);
    const root = /<html[^>]*>/.exec(page.dom)![0];
    expect(root).toContain(`data-flows="${result.flows.length}"`);
    expect(root).toContain('data-sections="1"');
    const secs = sections(page.dom);
    const bad = result.flows.find((f) => f.verdict === 'diverged')!;
    expect(secs.get(String(bad.index))).toMatchObject({ 'data-cause': 'payload', 'data-offset': '300', 'data-direction': 'server-to-client', 'data-verdict': 'diverged' });
    // Byte context: the primary's hex at the divergence, spaced by the page.
    const hex = bad.divergence!.primaryBytes.hex.slice(0, 8).replace(/(..)(?!$)/g, '$1 ');
    expect(page.dom).toContain(hex);
    // Checkpoint marks of both engines in the flow's timelines.
    expect(page.dom).toMatch(/class="mark k-checkpoint"/);
    expect(page.dom).toMatch(/class="mark k-qemu-checkpoint"/);
    // Identical flows listed by endpoint.
    const identical = /<table id="identical">[\s\S]*?<\/table>/.exec(page.dom)![0];
    for (const f of result.flows.filter((x) => x.verdict === 'identical')) expect(identical).toContain(f.client);
    // The overview timeline draws a row per flow.
    expect((page.dom.match(/<g class="row"/g) ?? []).length).toBeGreaterThanOrEqual(result.flows.length);
  }, 60_000);

  it.skipIf(!HAVE_CHROMIUM)('a changed UDP datagram among 100+ flows: exactly that flow has a section (datagram index); every identical flow listed', async () => {
    const { result, file } = await build('udp', sharedCapture('many-protocols.pcap'), { seed: 2, diverge: [{ kind: 'udp' }] });
    const page = await loadInChromium(file);
    expect(page.errors).toEqual([]);
    expect(page.ready).toBe(true);
    const secs = sections(page.dom);
    const bad = result.flows.filter((f) => f.verdict === 'diverged');
    expect([...secs.keys()].sort()).toEqual(bad.map((f) => String(f.index)).sort());
    for (const f of bad) expect(secs.get(String(f.index))).toMatchObject({ 'data-cause': f.divergence!.cause, 'data-offset': String(f.divergence!.offset) });
    expect(bad.some((f) => f.protocol === 'udp' && f.divergence!.offsetUnit === 'datagram')).toBe(true);
    const identical = /<table id="identical">[\s\S]*?<\/table>/.exec(page.dom)![0];
    const listed = (identical.match(/<tr>/g) ?? []).length - 1;
    expect(listed).toBe(result.flows.filter((f) => f.verdict === 'identical').length);
  }, 60_000);

  it('through the CLI: --html FILE --qemu-rules writes the page, exit status 1 for a diverged pair', () => {
    const w = makeWorkload(sharedCapture('three_http_streams.pcap'), join(tmp, 'cli'), { seed: 5, diverge: [{ kind: 'byte', offset: 300 }] });
    const out = join(tmp, 'cli.html');
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'diff', w.primary, w.secondary, '--qemu-rules', '--html', out, '--json'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    expect(r.status).toBe(1);
    expect(existsSync(out)).toBe(true);
    const json = JSON.parse(r.stdout) as DiffResult;
    expect(json.summary.wouldCheckpoint).toMatchObject({ coloProxy: 1 });
    expect(typeof json.summary.wouldCheckpoint!.qemu).toBe('number');
    expect(readFileSync(out, 'utf8')).toContain('data-offset="300"');
    // --no-checkpoints: no replay, no figures.
    const r2 = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'diff', w.primary, w.secondary, '--no-checkpoints', '--json'], { cwd: ROOT, encoding: 'utf8' });
    expect(r2.status).toBe(1);
    expect((JSON.parse(r2.stdout) as DiffResult).summary.wouldCheckpoint).toBeUndefined();
  }, 60_000);
});
