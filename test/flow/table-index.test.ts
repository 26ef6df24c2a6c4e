/**
 * The table's building blocks: murmur3 hashing (against published murmur3_x86_32 vectors),
 * KeyIndex chaining with forced full-hash collisions, and the LRU lists.
 */
import { describe, expect, it } from 'vitest';
import { hashWords, randomSeed } from '../../src/flow/hash.js';
import { KeyIndex } from '../../src/flow/key-index.js';
import { LruLists, NO_LIST } from '../../src/flow/lru.js';

/** Little-endian 32-bit words of a string whose length is a multiple of 4 (murmur3 block order). */
function leWords(s: string): Int32Array {
  const b = Buffer.from(s, 'latin1');
  const w = new Int32Array(b.length / 4);
  for (let i = 0; i < w.length; i++) w[i] = b.readInt32LE(4 * i);
  return w;
}

describe('hashWords', () => {
  it('equals murmur3_x86_32 on published test vectors', () => {
    const h = (s: string, seed: number) => hashWords(leWords(s), 0, s.length / 4, seed) >>> 0;
    expect(h('', 0)).toBe(0);
    expect(h('', 1)).toBe(0x514e28b7);
    expect(h('', 0xffffffff)).toBe(0x81f16f39);
    expect(h('\0\0\0\0', 0)).toBe(0x2362f9de);
    expect(h('aaaa', 0x9747b28c)).toBe(0x5a97808a);
    expect(h('abcd', 0x9747b28c)).toBe(0xf0478627);
    expect(h('test', 0)).toBe(0xba6bd213);
  });

  it('random seeds differ', () => {
    expect(new Set([randomSeed(), randomSeed(), randomSeed()]).size).toBe(3);
  });
});

describe('KeyIndex', () => {
  const key = (...w: number[]) => Int32Array.from(w);

  it('keys with the same full hash share a chain and are told apart by their bytes', () => {
    const ix = new KeyIndex(3, 8);
    const H = 42;
    const ids = [0, 1, 2, 3, 4].map((i) => ix.insert(key(i, -1, i * 7), H));
    expect(new Set(ids).size).toBe(5);
    for (let i = 0; i < 5; i++) expect(ix.find(key(i, -1, i * 7), H)).toBe(ids[i]);
    expect(ix.find(key(9, -1, 63), H)).toBe(-1);
    expect(ix.find(key(0, -1, 0), H + 1)).toBe(-1);
    expect(ix.longestChain()).toBe(5);
    // Unlink from the middle, the head and the tail of the chain.
    ix.remove(ids[2]!);
    ix.remove(ids[4]!);
    ix.remove(ids[0]!);
    expect([0, 1, 2, 3, 4].map((i) => ix.find(key(i, -1, i * 7), H))).toEqual([-1, ids[1], -1, ids[3], -1]);
    expect(ix.size).toBe(2);
    expect(() => ix.remove(ids[2]!)).toThrow();
  });

  it('is bounded: insert returns -1 when full; freed ids are reused', () => {
    const ix = new KeyIndex(1, 3);
    expect([ix.insert(key(1), 1), ix.insert(key(2), 2), ix.insert(key(3), 3)]).toEqual([0, 1, 2]);
    expect(ix.insert(key(4), 4)).toBe(-1);
    ix.remove(1);
    expect(ix.insert(key(4), 4)).toBe(1);
    expect(ix.find(key(4), 4)).toBe(1);
    expect(ix.find(key(2), 2)).toBe(-1);
  });
});

describe('LruLists', () => {
  it('keeps per-list order, moves on touch, and unlinks anywhere', () => {
    const l = new LruLists(6, 2);
    for (const id of [0, 1, 2]) l.pushTail(0, id);
    l.pushTail(1, 3);
    const order = (list: number) => {
      const out: number[] = [];
      for (let id = l.head(list); id >= 0; id = l.next(id)) out.push(id);
      return out;
    };
    expect(order(0)).toEqual([0, 1, 2]);
    l.touch(0, 0);
    expect(order(0)).toEqual([1, 2, 0]);
    l.touch(1, 2);
    expect([order(0), order(1)]).toEqual([[1, 0], [3, 2]]);
    l.unlink(0);
    expect(order(0)).toEqual([1]);
    expect(l.listOf(0)).toBe(NO_LIST);
    expect([l.length(0), l.length(1)]).toEqual([1, 2]);
    l.unlink(1);
    expect(l.head(0)).toBe(-1);
  });
});
