/**
 * The byte context of a divergence never invents bytes: where a side has a hole (bytes it
 * never sent), its hex shows `--` and its text `_`, exactly over the hole; the other side shows
 * the real bytes (checked against the capture's own stream as the workload maker recorded it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeDiff } from '../../src/analyze/diff/analyze.js';
import { makeWorkload } from '../../src/replay/workload.js';
import { OWN_CAPTURES } from '../helpers/paths.js';

const tmp = mkdtempSync(join(tmpdir(), 'colo-diffgap-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('diff byte context around a hole', () => {
  it('missing@100+50 with 16 bytes of context: 16 real bytes, then "--" over the hole; the primary all real', () => {
    const w = makeWorkload(join(OWN_CAPTURES, 'demo-http.pcapng'), join(tmp, 'w'), { seed: 2, rewriteIsn: true, diverge: [{ kind: 'missing', offset: 100, length: 50 }] });
    const r = analyzeDiff(w.primary, w.secondary, { context: 16 });
    const gt = w.manifest.groundTruth[0]!;
    const f = r.flows.find((x) => x.verdict === 'diverged');
    expect(f).toBeDefined();
    const d = f!.divergence!;
    expect([d.cause, d.offset]).toEqual(['missing', gt.offset]);
    const s = d.secondaryBytes;
    const p = d.primaryBytes;
    expect(s.offset).toBe(84);
    expect(s.hex.slice(0, 32)).toMatch(/^[0-9a-f]{32}$/);
    expect(s.hex.slice(32)).toBe('--'.repeat(16));
    expect(s.text.slice(16)).toBe('_'.repeat(16));
    // Before the hole the secondary's bytes are the primary's.
    expect(s.hex.slice(0, 32)).toBe(p.hex.slice(0, 32));
    expect(p.hex).toMatch(/^[0-9a-f]{64}$/);
  });
});
