/**
 * 32-bit hashing of fixed-size keys held as Int32 words (murmur3_x86_32 over words), seeded
 * per table so a remote sender cannot aim packets at one hash chain (hash flooding).
 */
import { randomFillSync } from 'node:crypto';

const C1 = 0xcc9e2d51 | 0;
const C2 = 0x1b873593 | 0;

/**
 * murmur3_x86_32 of `n` words of `words` starting at `off`, with `seed`. Returns a signed
 * 32-bit integer (callers mask it). Allocation-free; V8 keeps everything in registers.
 */
export function hashWords(words: Int32Array, off: number, n: number, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < n; i++) {
    let k = Math.imul(words[off + i]!, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= n << 2;
  // fmix32: spreads every input bit over the low bits the bucket mask keeps.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/** A fresh random 32-bit seed (cold path: once per table). */
export function randomSeed(): number {
  const b = new Int32Array(1);
  randomFillSync(b);
  return b[0]!;
}
