/**
 * The analyzer's byte store: Slab.append copies exactly (any source alignment,
 * short runs, runs larger than a block) and nothing written later overwrites it; BlockCache
 * hands given-back blocks out again (so a second analysis writes into the first one's
 * memory) and keeps no more than its cap.
 */
import { describe, expect, it } from 'vitest';
import { BLOCK_BYTES, BlockCache, Slab } from '../../src/analyze/diff/store.js';

interface Put {
  src: Uint8Array;
  off: number;
  len: number;
  slab: number;
  at: number;
}

function fill(slab: Slab, n: number, salt: number): Put[] {
  const puts: Put[] = [];
  for (let i = 0; i < n; i++) {
    const ab = new ArrayBuffer(4200);
    const bo = (i * 7) % 13; // every alignment of the source view
    const src = i % 2 === 0 ? Buffer.from(ab, bo, 4096) : new Uint8Array(ab, bo, 4096);
    for (let k = 0; k < src.length; k++) src[k] = (k * 31 + i + salt) & 255;
    const off = (i * 17) % 900;
    const len = i % 5 === 0 ? 1 + (i % 70) : 65 + ((i * 13) % 3000); // callers never append 0 bytes
    slab.append(src, off, len);
    puts.push({ src, off, len, slab: slab.lastSlab, at: slab.lastOff });
  }
  return puts;
}

function check(slab: Slab, puts: Put[]): number {
  let bad = 0;
  for (const p of puts) {
    const d = slab.slabs[p.slab]!;
    if (!Buffer.from(d.buffer, d.byteOffset + p.at, p.len).equals(Buffer.from(p.src.buffer, p.src.byteOffset + p.off, p.len))) bad++;
  }
  return bad;
}

describe('Slab.append', () => {
  it('copies every run exactly, at any alignment, and later runs never overwrite earlier ones', () => {
    const slab = new Slab();
    const puts = fill(slab, 6000, 0);
    // A run larger than a block gets a slab of its own.
    const big = new Uint8Array(BLOCK_BYTES + 5);
    for (let k = 0; k < big.length; k++) big[k] = (k * 7) & 255;
    slab.append(big, 3, big.length - 3);
    puts.push({ src: big, off: 3, len: big.length - 3, slab: slab.lastSlab, at: slab.lastOff });
    puts.push(...fill(slab, 500, 9));
    expect(slab.slabs.length).toBeGreaterThan(2);
    expect(check(slab, puts)).toBe(0);
  });
});

describe('BlockCache', () => {
  it('a released slab\'s blocks serve the next one, whose bytes are then its own', () => {
    const cache = new BlockCache(8);
    const a = new Slab(cache);
    fill(a, 3000, 1);
    const used = new Set(a.slabs.map((s) => s.buffer));
    a.release();
    expect(cache.size).toBe(used.size);
    const b = new Slab(cache);
    const puts = fill(b, 3000, 2);
    expect(b.slabs.some((s) => used.has(s.buffer))).toBe(true);
    expect(check(b, puts)).toBe(0);
  });

  it('keeps at most maxBlocks, only blocks of its size', () => {
    const cache = new BlockCache(2);
    cache.give([cache.take(), cache.take(), cache.take(), new ArrayBuffer(16)]);
    expect(cache.size).toBe(2);
    expect(new BlockCache(0).take().byteLength).toBe(BLOCK_BYTES);
  });
});
