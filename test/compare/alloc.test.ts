/**
 * "Nothing allocated per packet", measured on the compare engine's steady state: a child
 * process with --expose-gc runs the matched-TCP workload (both inputs, 1448- vs 1000-byte
 * segments: decode, flow lookup, two reassemblers, byte comparison, hold and release) and
 * reports heap growth per frame next to a positive control allocating one object per frame.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';

describe('compare hot path', () => {
  it('allocates nothing per frame in the matched steady state', () => {
    const out = execFileSync(
      process.execPath,
      ['--expose-gc', '--min-semi-space-size=256', '--max-semi-space-size=256', '--import', 'tsx', resolve(ROOT, 'test/compare/alloc-probe.ts')],
      { cwd: ROOT, encoding: 'utf8' },
    );
    const r = JSON.parse(out.trim().split('\n').pop()!) as { perFrame: number; control: number; frames: number; released: number; held: number; checkpoints: number; balanced: boolean };
    expect(r.balanced).toBe(true);
    expect(r.checkpoints).toBe(0);
    expect(r.held).toBeLessThanOrEqual(1);
    expect(r.control).toBeGreaterThan(12); // the method sees a 16+ byte object per frame
    expect(r.perFrame).toBeLessThan(1);
  });
});
