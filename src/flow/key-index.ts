/**
 * KeyIndex: a fixed-capacity hash index of fixed-size keys, for the flow table and the
 * defragmenter. Ids are dense integers 0..capacity-1 that callers use to index their own
 * struct-of-arrays metadata.
 *
 * Layout: one Int32 arena, `stride` words per id: the key (`words`), its full 32-bit hash,
 * the chain link to the next id in its bucket, then `extraWords` for the owner (the flow
 * table keeps its LRU links and flags there). With stride 16 an entry is one 64-byte cache
 * line, so a lookup that hits touches the bucket head and one line. Keys are compared in
 * place, and only when the stored hash matches. Buckets: a power of two ≥ 2 × capacity
 * (average chain ≤ 0.5 besides the hit). Free ids come from a stack of released ids first,
 * then from never-used ids in ascending order, so a fresh index touches its arena front to
 * back (untouched pages stay virtual).
 *
 * Nothing here allocates after construction.
 */
import { ColoError } from '../errors.js';

const NONE = -1;

export class KeyIndex {
  /** Int32 words per key. */
  readonly words: number;
  /** Int32 words per id in `keys` (key + hash + link + extra). */
  readonly stride: number;
  /** Offset within an id's stride of the owner's extra words. */
  readonly extraOff: number;
  readonly capacity: number;
  /** The arena: key of `id` at `keys[id * stride .. + words)`, then hash, link, extra words. */
  readonly keys: Int32Array;
  /** 1 while an id holds a key. */
  readonly live: Uint8Array;
  readonly #heads: Int32Array;
  readonly #mask: number;
  readonly #free: Int32Array;
  #freeTop = 0;
  #fresh = 0;
  #size = 0;

  constructor(words: number, capacity: number, extraWords = 0) {
    if (!Number.isInteger(words) || words < 1) throw new ColoError('ERR_INVALID_ARGUMENT', `key words must be a positive integer, got ${words}`);
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 26) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `index capacity must be an integer in 1..${1 << 26}, got ${capacity}`);
    }
    this.words = words;
    this.stride = words + 2 + extraWords;
    this.extraOff = words + 2;
    this.capacity = capacity;
    this.keys = new Int32Array(capacity * this.stride);
    this.live = new Uint8Array(capacity);
    let nb = 2;
    while (nb < capacity * 2) nb *= 2;
    this.#heads = new Int32Array(nb).fill(NONE);
    this.#mask = nb - 1;
    this.#free = new Int32Array(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Every live id is below this (ids ever handed out): scans stop here, not at `capacity`. */
  get idBound(): number {
    return this.#fresh;
  }

  /** Bucket count (a power of two). */
  get buckets(): number {
    return this.#mask + 1;
  }

  /** Bytes held by this index's arrays. */
  get byteLength(): number {
    return this.keys.byteLength + this.live.byteLength + this.#heads.byteLength + this.#free.byteLength;
  }

  /** The stored hash of a live id. */
  hashOf(id: number): number {
    return this.keys[id * this.stride + this.words]!;
  }

  /** Id of the key equal to `probe[0 .. words)` with hash `hash`, or -1. */
  find(probe: Int32Array, hash: number): number {
    const w = this.words;
    const s = this.stride;
    const keys = this.keys;
    for (let id = this.#heads[hash & this.#mask]!; id !== NONE; ) {
      const base = id * s;
      if (keys[base + w] === hash) {
        let i = 0;
        while (i < w && keys[base + i] === probe[i]) i++;
        if (i === w) return id;
      }
      id = keys[base + w + 1]!;
    }
    return NONE;
  }

  /**
   * True when `id` is live and holds the key `probe[0 .. words)`: lets a caller that expects
   * the same key again (consecutive packets of one flow) skip hashing and the bucket walk.
   */
  holds(id: number, probe: Int32Array): boolean {
    if (this.live[id] !== 1) return false;
    const keys = this.keys;
    const base = id * this.stride;
    const w = this.words;
    for (let i = 0; i < w; i++) if (keys[base + i] !== probe[i]) return false;
    return true;
  }

  /**
   * Store `probe` (which must not be present) under a free id and return it; -1 when the
   * index is full (the caller evicts first: the index has no policy of its own).
   */
  insert(probe: Int32Array, hash: number): number {
    let id: number;
    if (this.#freeTop > 0) id = this.#free[--this.#freeTop]!;
    else if (this.#fresh < this.capacity) id = this.#fresh++;
    else return NONE;
    const w = this.words;
    const base = id * this.stride;
    const keys = this.keys;
    for (let i = 0; i < w; i++) keys[base + i] = probe[i]!;
    keys[base + w] = hash;
    const b = hash & this.#mask;
    keys[base + w + 1] = this.#heads[b]!;
    this.#heads[b] = id;
    this.live[id] = 1;
    this.#size++;
    return id;
  }

  /** Remove a live id (its key words are left as they were; `live` says it is free). */
  remove(id: number): void {
    if (this.live[id] !== 1) throw new ColoError('ERR_INVALID_ARGUMENT', `key index: id ${id} is not live`);
    const keys = this.keys;
    const s = this.stride;
    const link = this.words + 1;
    const b = keys[id * s + this.words]! & this.#mask;
    let cur = this.#heads[b]!;
    if (cur === id) {
      this.#heads[b] = keys[id * s + link]!;
    } else {
      while (keys[cur * s + link] !== id) cur = keys[cur * s + link]!;
      keys[cur * s + link] = keys[id * s + link]!;
    }
    this.live[id] = 0;
    this.#free[this.#freeTop++] = id;
    this.#size--;
  }

  /** Longest bucket chain (cold: scans every bucket; for tests and stats). */
  longestChain(): number {
    let best = 0;
    const link = this.words + 1;
    for (let b = 0; b <= this.#mask; b++) {
      let n = 0;
      for (let id = this.#heads[b]!; id !== NONE; id = this.keys[id * this.stride + link]!) n++;
      if (n > best) best = n;
    }
    return best;
  }
}
