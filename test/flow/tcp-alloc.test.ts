/**
 * "No allocation per in-order segment", measured: a child Node process with --expose-gc
 * feeds 200 000 in-order segments and reports heap growth per segment, next to a positive
 * control that allocates one small object per iteration.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';

describe('in-order fast path', () => {
  it('allocates nothing per segment (heap growth ≪ one object per segment)', () => {
    const out = execFileSync(
      process.execPath,
      ['--expose-gc', '--min-semi-space-size=128', '--max-semi-space-size=128', '--import', 'tsx', resolve(ROOT, 'test/flow/tcp-alloc-probe.ts')],
      { cwd: ROOT, encoding: 'utf8' },
    );
    const r = JSON.parse(out.trim().split('\n').pop()!) as { perSegment: number; control: number; delivered: number; expected: number; inOrder: number };
    expect(r.delivered).toBe(r.expected);
    expect(r.inOrder).toBe(400_000);
    expect(r.control).toBeGreaterThan(12); // the method does see a 16+ byte object per iteration
    expect(r.perSegment).toBeLessThan(1);
  });
});
