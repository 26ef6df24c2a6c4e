/**
 * PieceTree: the out-of-order buffer of one stream direction — a set of NON-OVERLAPPING byte
 * pieces keyed by stream offset, each pointing into a pool slot (handle + byte offset).
 *
 * It is a treap (binary search tree by key, heap by random priority): expected O(log n)
 * insert, floor/ceiling and delete-min, whatever order the keys arrive in. Nodes live in
 * parallel typed arrays with a free list, so inserting and removing allocate nothing; the
 * arrays start small and double up to `maxNodes` (growth happens only on the out-of-order
 * path, amortised). Priorities come from a xorshift generator seeded randomly per tree, so a
 * peer choosing sequence numbers cannot predict the shape and force a degenerate tree.
 */
export const NIL = -1;

const INITIAL_NODES = 8;

export class PieceTree {
  /** Stream offset of the piece's first byte (the key). */
  start: Float64Array;
  /** Piece length in bytes (≥ 1). */
  len: Int32Array;
  /** Pool handle holding the bytes (one reference per piece). */
  handle: Int32Array;
  /** Offset of the piece's first byte inside `pool.buffer(handle)`. */
  bufOff: Float64Array;
  /** Arrival time (ms) of the segment that created the piece. */
  time: Float64Array;
  #left: Int32Array;
  #right: Int32Array;
  #prio: Int32Array;
  #root = NIL;
  #count = 0;
  /** Free-list head, chained through #right. */
  #free = NIL;
  #rng: number;
  readonly maxNodes: number;

  constructor(maxNodes: number) {
    this.maxNodes = maxNodes;
    const n = Math.min(INITIAL_NODES, Math.max(maxNodes, 1));
    this.start = new Float64Array(n);
    this.len = new Int32Array(n);
    this.handle = new Int32Array(n);
    this.bufOff = new Float64Array(n);
    this.time = new Float64Array(n);
    this.#left = new Int32Array(n);
    this.#right = new Int32Array(n);
    this.#prio = new Int32Array(n);
    this.#chainFree(0, n);
    // Never 0 (xorshift's fixed point).
    this.#rng = ((Math.random() * 0x7fffffff) | 0) | 1;
  }

  get count(): number {
    return this.#count;
  }

  get capacity(): number {
    return this.start.length;
  }

  /**
   * Insert a piece; the caller guarantees it overlaps no existing piece and that `count <
   * maxNodes`. Returns the node id.
   */
  insert(start: number, len: number, handle: number, bufOff: number, time: number): number {
    if (this.#free === NIL) this.#grow();
    const n = this.#free;
    this.#free = this.#right[n]!;
    this.start[n] = start;
    this.len[n] = len;
    this.handle[n] = handle;
    this.bufOff[n] = bufOff;
    this.time[n] = time;
    this.#left[n] = NIL;
    this.#right[n] = NIL;
    let x = this.#rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rng = x;
    this.#prio[n] = x;
    this.#root = this.#insertAt(this.#root, n);
    this.#count++;
    return n;
  }

  /** Node with the smallest key, or NIL. */
  min(): number {
    let t = this.#root;
    if (t === NIL) return NIL;
    const left = this.#left;
    while (left[t] !== NIL) t = left[t]!;
    return t;
  }

  /** Remove the node with the smallest key (its fields stay readable until the next insert). */
  removeMin(): void {
    const left = this.#left;
    let parent = NIL;
    let t = this.#root;
    if (t === NIL) return;
    while (left[t] !== NIL) {
      parent = t;
      t = left[t]!;
    }
    // The minimum has no left child: splice its right subtree into its place.
    if (parent === NIL) this.#root = this.#right[t]!;
    else left[parent] = this.#right[t]!;
    this.#right[t] = this.#free;
    this.#free = t;
    this.#count--;
  }

  /** Node with the largest key ≤ `k`, or NIL. */
  floor(k: number): number {
    let t = this.#root;
    let best = NIL;
    const start = this.start;
    while (t !== NIL) {
      if (start[t]! <= k) {
        best = t;
        t = this.#right[t]!;
      } else {
        t = this.#left[t]!;
      }
    }
    return best;
  }

  /** Node with the smallest key ≥ `k`, or NIL. */
  ceil(k: number): number {
    let t = this.#root;
    let best = NIL;
    const start = this.start;
    while (t !== NIL) {
      if (start[t]! >= k) {
        best = t;
        t = this.#left[t]!;
      } else {
        t = this.#right[t]!;
      }
    }
    return best;
  }

  /** Height of the tree (tests and diagnostics only: O(n)). */
  height(): number {
    const h = (t: number): number => (t === NIL ? 0 : 1 + Math.max(h(this.#left[t]!), h(this.#right[t]!)));
    return h(this.#root);
  }

  #insertAt(t: number, n: number): number {
    if (t === NIL) return n;
    if (this.#prio[n]! > this.#prio[t]!) {
      this.#split(t, this.start[n]!);
      this.#left[n] = this.#splitL;
      this.#right[n] = this.#splitR;
      return n;
    }
    if (this.start[n]! < this.start[t]!) this.#left[t] = this.#insertAt(this.#left[t]!, n);
    else this.#right[t] = this.#insertAt(this.#right[t]!, n);
    return t;
  }

  // Results of #split (two return values without allocating).
  #splitL = NIL;
  #splitR = NIL;

  /** Split subtree `t` into keys < k (#splitL) and keys ≥ k (#splitR). */
  #split(t: number, k: number): void {
    if (t === NIL) {
      this.#splitL = NIL;
      this.#splitR = NIL;
      return;
    }
    if (this.start[t]! < k) {
      this.#split(this.#right[t]!, k);
      this.#right[t] = this.#splitL;
      this.#splitL = t;
    } else {
      this.#split(this.#left[t]!, k);
      this.#left[t] = this.#splitR;
      this.#splitR = t;
    }
  }

  #grow(): void {
    const old = this.start.length;
    // Double, clamped to maxNodes (callers keep count ≤ maxNodes; the max() only keeps a
    // broken caller from spinning).
    const n = Math.max(old + 1, Math.min(old * 2, this.maxNodes));
    const g64 = (a: Float64Array): Float64Array => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    const g32 = (a: Int32Array): Int32Array => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.start = g64(this.start);
    this.len = g32(this.len);
    this.handle = g32(this.handle);
    this.bufOff = g64(this.bufOff);
    this.time = g64(this.time);
    this.#left = g32(this.#left);
    this.#right = g32(this.#right);
    this.#prio = g32(this.#prio);
    this.#chainFree(old, n);
  }

  #chainFree(from: number, to: number): void {
    for (let i = to - 1; i >= from; i--) {
      this.#right[i] = this.#free;
      this.#free = i;
    }
  }
}
