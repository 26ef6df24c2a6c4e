import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { PacketPool, NO_HANDLE, DEFAULT_CLASSES, NET_BUFSIZE } from '../../src/packet/pool.js';
import { ColoError } from '../../src/errors.js';

function small(): PacketPool {
  return new PacketPool({ classes: [{ slotSize: 64, slots: 4 }, { slotSize: 256, slots: 2 }] });
}

describe('PacketPool', () => {
  it('hands out distinct, non-overlapping slots of the best-fitting class', () => {
    const pool = small();
    const hs = [pool.acquire(10), pool.acquire(64), pool.acquire(1), pool.acquire(0)];
    const ranges = hs.map((h) => [pool.buffer(h), pool.offset(h), pool.slotSize(h)] as const);
    for (const [, , size] of ranges) expect(size).toBe(64);
    const offs = ranges.map((r) => r[1]).sort((a, b) => a - b);
    for (let i = 1; i < offs.length; i++) expect(offs[i]! - offs[i - 1]!).toBeGreaterThanOrEqual(64);
    expect(new Set(hs).size).toBe(4);
    const big = pool.acquire(65);
    expect(pool.slotSize(big)).toBe(256);
    for (const h of [...hs, big]) pool.release(h);
    expect(pool.inUse).toBe(0);
  });

  it('writes through to the slab without copies: view() shares memory with buffer()', () => {
    const pool = small();
    const h = pool.copyIn(Buffer.from('hello world'), 6, 5);
    expect(pool.length(h)).toBe(5);
    expect(pool.view(h).toString()).toBe('world');
    pool.buffer(h)[pool.offset(h)] = 'W'.charCodeAt(0);
    expect(pool.view(h).toString()).toBe('World');
    pool.release(h);
  });

  it('spills into a larger class when the best fit is full, and counts it', () => {
    const pool = small();
    const a = [0, 1, 2, 3].map(() => pool.acquire(32));
    const s = pool.acquire(32);
    expect(s).not.toBe(NO_HANDLE);
    expect(pool.slotSize(s)).toBe(256);
    expect(pool.stats().spills).toBe(1);
    for (const h of [...a, s]) pool.release(h);
  });

  it('returns NO_HANDLE when exhausted, counts the failure, and corrupts nothing', () => {
    const pool = small();
    const held: number[] = [];
    for (let i = 0; i < 6; i++) held.push(pool.acquire(10));
    expect(held).not.toContain(NO_HANDLE);
    // Fill each with a distinct byte so corruption would show.
    held.forEach((h, i) => pool.buffer(h).fill(i + 1, pool.offset(h), pool.offset(h) + 10));
    expect(pool.acquire(10)).toBe(NO_HANDLE);
    expect(pool.acquire(200)).toBe(NO_HANDLE);
    expect(pool.stats().allocFailures).toBe(2);
    expect(() => pool.acquireOrThrow(5)).toThrowError(expect.objectContaining({ code: 'ERR_POOL_EXHAUSTED' }) as Error);
    held.forEach((h, i) => {
      const v = pool.view(h);
      expect([...v.subarray(0, 10)].every((b) => b === i + 1)).toBe(true);
    });
    for (const h of held) pool.release(h);
    expect(pool.inUse).toBe(0);
    expect(pool.acquire(10)).not.toBe(NO_HANDLE);
  });

  it('rejects sizes above the largest class as a programming error', () => {
    const pool = small();
    expect(() => pool.acquire(257)).toThrowError(ColoError);
    expect(() => pool.acquire(-1)).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }) as Error);
  });

  it('reference counts: a retained slot survives one release and frees on the last', () => {
    const pool = small();
    const h = pool.acquire(10);
    pool.retain(h);
    pool.release(h);
    expect(pool.refCount(h)).toBe(1);
    expect(pool.inUse).toBe(1);
    pool.release(h);
    expect(pool.refCount(h)).toBe(0);
    expect(pool.inUse).toBe(0);
  });

  it('double release and unknown handles throw ERR_POOL_BAD_HANDLE and leave the free list intact', () => {
    const pool = small();
    const h = pool.acquire(10);
    pool.release(h);
    expect(() => pool.release(h)).toThrowError(expect.objectContaining({ code: 'ERR_POOL_BAD_HANDLE' }) as Error);
    expect(() => pool.retain(h)).toThrowError(expect.objectContaining({ code: 'ERR_POOL_BAD_HANDLE' }) as Error);
    expect(() => pool.release(999)).toThrowError(expect.objectContaining({ code: 'ERR_POOL_BAD_HANDLE' }) as Error);
    expect(() => pool.release(NO_HANDLE)).toThrowError(expect.objectContaining({ code: 'ERR_POOL_BAD_HANDLE' }) as Error);
    // Had the double release pushed the slot twice, two acquires would return the same handle.
    const all = new Set<number>();
    for (let i = 0; i < 6; i++) all.add(pool.acquire(10));
    expect(all.size).toBe(6);
    expect(all.has(NO_HANDLE)).toBe(false);
  });

  it('tracks high water per class and overall', () => {
    const pool = small();
    const a = pool.acquire(10);
    const b = pool.acquire(100);
    const c = pool.acquire(10);
    pool.release(a);
    pool.release(c);
    const st = pool.stats();
    expect(st.highWater).toBe(3);
    expect(st.inUse).toBe(1);
    expect(st.classes[0]).toMatchObject({ slotSize: 64, inUse: 0, highWater: 2 });
    expect(st.classes[1]).toMatchObject({ slotSize: 256, inUse: 1, highWater: 1 });
    pool.release(b);
  });

  it('whenAvailable fires after a release (backpressure relief), once', async () => {
    const pool = small();
    const held = [0, 1, 2, 3, 4, 5].map(() => pool.acquire(10));
    expect(pool.acquire(10)).toBe(NO_HANDLE);
    let calls = 0;
    pool.whenAvailable(() => calls++);
    await Promise.resolve();
    expect(calls).toBe(0);
    pool.release(held.pop()!);
    pool.release(held.pop()!);
    await new Promise((r) => setImmediate(r));
    expect(calls).toBe(1);
    for (const h of held) pool.release(h);
  });

  it('validates its configuration', () => {
    expect(() => new PacketPool({ classes: [] })).toThrowError(expect.objectContaining({ code: 'ERR_POOL_CONFIG' }) as Error);
    expect(() => new PacketPool({ classes: [{ slotSize: 128, slots: 1 }, { slotSize: 64, slots: 1 }] })).toThrowError(/ascend/);
    expect(() => new PacketPool({ classes: [{ slotSize: 0, slots: 1 }] })).toThrowError(/positive/);
  });

  it('default classes hold a QEMU NET_BUFSIZE frame', () => {
    const pool = new PacketPool();
    expect(DEFAULT_CLASSES.at(-1)!.slotSize).toBe(NET_BUFSIZE);
    const h = pool.acquire(NET_BUFSIZE);
    expect(pool.length(h)).toBe(NET_BUFSIZE);
    pool.release(h);
    expect(pool.inUse).toBe(0);
  });

  it('property: any interleaving of acquire/retain/release keeps accounting exact and ends with zero in use', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ op: fc.constantFrom('acq', 'ret', 'rel'), size: fc.integer({ min: 0, max: 256 }), pick: fc.nat() }), { maxLength: 200 }),
        (ops) => {
          const pool = small();
          const refs = new Map<number, number>();
          for (const o of ops) {
            const live = [...refs.keys()];
            if (o.op === 'acq') {
              const h = pool.acquire(o.size);
              if (h === NO_HANDLE) {
                expect(live.length).toBeGreaterThan(0);
              } else {
                expect(refs.has(h)).toBe(false);
                refs.set(h, 1);
              }
            } else if (live.length > 0) {
              const h = live[o.pick % live.length]!;
              if (o.op === 'ret') {
                pool.retain(h);
                refs.set(h, refs.get(h)! + 1);
              } else {
                pool.release(h);
                const n = refs.get(h)! - 1;
                if (n === 0) refs.delete(h);
                else refs.set(h, n);
              }
            }
            expect(pool.inUse).toBe(refs.size);
          }
          for (const [h, n] of refs) for (let i = 0; i < n; i++) pool.release(h);
          expect(pool.inUse).toBe(0);
          const st = pool.stats();
          expect(st.acquires).toBe(st.releases);
        },
      ),
      { numRuns: 300 },
    );
  });
});
