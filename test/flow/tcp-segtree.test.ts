/**
 * PieceTree against a plain sorted-array model (the oracle): random inserts of disjoint keys,
 * delete-min, floor and ceiling; plus the free list reusing nodes without growing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NIL, PieceTree } from '../../src/flow/tcp-segtree.js';

describe('PieceTree', () => {
  it('matches a sorted-array model under random insert / removeMin / floor / ceil', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ op: fc.constant('ins' as const), k: fc.integer({ min: 0, max: 5000 }) }), fc.record({ op: fc.constant('pop' as const), k: fc.constant(0) })), { maxLength: 400 }),
        fc.array(fc.integer({ min: -10, max: 5010 }), { minLength: 1, maxLength: 20 }),
        (ops, probes) => {
          const t = new PieceTree(1000);
          const model: number[] = [];
          for (const { op, k } of ops) {
            if (op === 'ins') {
              if (model.includes(k)) continue; // keys are disjoint piece starts
              t.insert(k, 1, 7, k * 2, 0);
              model.push(k);
              model.sort((a, b) => a - b);
            } else {
              const m = t.min();
              if (model.length === 0) {
                expect(m).toBe(NIL);
                continue;
              }
              expect(t.start[m]).toBe(model[0]);
              expect(t.bufOff[m]).toBe(model[0]! * 2);
              t.removeMin();
              model.shift();
            }
            expect(t.count).toBe(model.length);
          }
          for (const p of probes) {
            const fl = model.filter((x) => x <= p).pop();
            const ce = model.find((x) => x >= p);
            const f = t.floor(p);
            const c = t.ceil(p);
            expect(f === NIL ? undefined : t.start[f]).toBe(fl);
            expect(c === NIL ? undefined : t.start[c]).toBe(ce);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('grows by doubling up to maxNodes, then recycles freed nodes', () => {
    const t = new PieceTree(100);
    for (let i = 0; i < 100; i++) t.insert(i * 10, 5, 0, 0, 0);
    expect(t.capacity).toBe(100);
    for (let round = 0; round < 50; round++) {
      t.removeMin();
      t.insert(10_000 + round * 10, 5, 0, 0, 0);
    }
    expect(t.capacity).toBe(100);
    expect(t.count).toBe(100);
    expect(t.start[t.min()]).toBe(500);
  });
});
