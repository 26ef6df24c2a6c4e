/**
 * Intrusive doubly linked lists over dense ids, several lists sharing one set of links: each
 * id is on at most one list. The flow table keeps one list per timeout class, least recently
 * touched at the head, so expiry only ever looks at list heads. O(1) everything, no
 * allocation after construction.
 *
 * The links can live in the caller's Int32 arena (3 words per id at `off` within each
 * `stride`: prev, next, list + 1), so they share a cache line with the rest of an entry.
 */

/** `listOf(id)` for an id that is on no list. */
export const NO_LIST = 255;
const NONE = -1;

export interface LruStore {
  arr: Int32Array;
  stride: number;
  off: number;
}

export class LruLists {
  readonly #a: Int32Array;
  readonly #s: number;
  readonly #o: number;
  readonly #own: boolean;
  readonly #heads: Int32Array;
  readonly #tails: Int32Array;
  readonly #lens: Int32Array;

  /** `store`: where the links live (default: an array of our own). Its words must start zeroed. */
  constructor(capacity: number, lists: number, store?: LruStore) {
    this.#own = store === undefined;
    this.#a = store?.arr ?? new Int32Array(capacity * 3);
    this.#s = store?.stride ?? 3;
    this.#o = store?.off ?? 0;
    this.#heads = new Int32Array(lists).fill(NONE);
    this.#tails = new Int32Array(lists).fill(NONE);
    this.#lens = new Int32Array(lists);
  }

  /** Bytes of links this object allocated itself (0 when they live in the caller's arena). */
  get byteLength(): number {
    return this.#own ? this.#a.byteLength : 0;
  }

  /** Oldest id of `list`, or -1. */
  head(list: number): number {
    return this.#heads[list]!;
  }

  /** Next id towards the tail (newer), or -1. */
  next(id: number): number {
    return this.#a[id * this.#s + this.#o + 1]!;
  }

  /** The list `id` is on, or NO_LIST. */
  listOf(id: number): number {
    const l = this.#a[id * this.#s + this.#o + 2]!;
    return l === 0 ? NO_LIST : l - 1;
  }

  length(list: number): number {
    return this.#lens[list]!;
  }

  /** Append `id` (on no list) as the newest of `list`. */
  pushTail(list: number, id: number): void {
    const a = this.#a;
    const p = id * this.#s + this.#o;
    const t = this.#tails[list]!;
    a[p] = t;
    a[p + 1] = NONE;
    if (t === NONE) this.#heads[list] = id;
    else a[t * this.#s + this.#o + 1] = id;
    this.#tails[list] = id;
    a[p + 2] = list + 1;
    this.#lens[list]!++;
  }

  /** Take `id` off its list (no-op when it is on none). */
  unlink(id: number): void {
    const a = this.#a;
    const s = this.#s;
    const o = this.#o;
    const p = id * s + o;
    const stored = a[p + 2]!;
    if (stored === 0) return;
    const list = stored - 1;
    const prev = a[p]!;
    const next = a[p + 1]!;
    if (prev === NONE) this.#heads[list] = next;
    else a[prev * s + o + 1] = next;
    if (next === NONE) this.#tails[list] = prev;
    else a[next * s + o] = prev;
    a[p + 2] = 0;
    this.#lens[list]!--;
  }

  /** Make `id` the newest of `list` (moving it from whatever list it was on). */
  touch(list: number, id: number): void {
    if (this.#tails[list] === id && this.#a[id * this.#s + this.#o + 2] === list + 1) return;
    this.unlink(id);
    this.pushTail(list, id);
  }
}
