/**
 * "No allocation per in-order segment", measured: a child Node process with --expose-gc
 * feeds 200 000 in-order segments and reports heap growth per segment, next to a positive
 * control that allocates one small object per iteration. Measured with the default limits
 * (retransmission window not armed), with the window armed on pooled input (runs kept zero
 * copy: still nothing allocated), and armed on unpooled input (bytes copied into the window
 * through a short-lived typed-array view per copy, at most two per segment: bounded, not zero).
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';

type Probe = { perSegment: number; control: number; delivered: number; expected: number; inOrder: number; held: number; poolInUse: number; budgetUsed: number };

function probe(mode: string): Probe {
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', '--min-semi-space-size=128', '--max-semi-space-size=128', '--import', 'tsx', resolve(ROOT, 'test/flow/tcp-alloc-probe.ts'), mode],
    { cwd: ROOT, encoding: 'utf8' },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as Probe;
}

describe('in-order fast path', () => {
  it('allocates nothing per segment (heap growth ≪ one object per segment)', () => {
    const r = probe('default');
    expect(r.delivered).toBe(r.expected);
    expect(r.inOrder).toBe(400_000);
    expect(r.control).toBeGreaterThan(12); // the method does see a 16+ byte object per iteration
    expect(r.perSegment).toBeLessThan(1);
    expect(r.held).toBe(0); // never retransmitted: no window
  });

  it('with the retransmission window armed, pooled input: still nothing per segment (runs are kept zero copy)', () => {
    const r = probe('armed');
    expect(r.delivered).toBe(r.expected);
    expect(r.control).toBeGreaterThan(12);
    expect(r.perSegment).toBeLessThan(1);
    // The window holds the last 64 KiB (whole segments): ⌈65536 / 1448⌉ = 46 runs, 1448 B each.
    expect(r.held).toBe(46 * 1448);
    expect(r.budgetUsed).toBeGreaterThan(0);
  });

  it('with the window armed, unpooled input: a short-lived view per copy (≤ 2 per segment), bounded', () => {
    const r = probe('armed-unpooled');
    expect(r.delivered).toBe(r.expected);
    expect(r.control).toBeGreaterThan(12);
    // One typed-array view (~100 B) per copy; a segment straddling two copy slots takes two.
    expect(r.perSegment).toBeLessThan(300);
    // Copied bytes are packed into 2 KiB slots: the window's 64 KiB (+ the part of the oldest
    // segment still inside it) in at most 34 slots, plus the probe's own slot.
    expect(r.held).toBeLessThanOrEqual(65536 + 1448);
    expect(r.poolInUse).toBeLessThanOrEqual(1 + 34);
  });
});
