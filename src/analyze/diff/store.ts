/**
 * What the capture pass keeps: the capture's payload bytes in large shared slabs; per TCP
 * direction the delivered pieces (stream offset, time, frame, header fields, slab position)
 * and the gaps; per datagram direction the datagrams. Record arrays grow by doubling; per
 * packet the cost is one record and one copy of the payload into the slab.
 */
import { ColoError } from '../../errors.js';

/** Streams larger than this are refused (the analyzer holds every stream in memory). */
export const MAX_STREAM_BYTES = 512 * 1024 * 1024;

const NO_RECORDS = new Float64Array(0);
const EMPTY = new Uint8Array(0);

/** Bytes per block of a BlockCache: a RecordArena chunk, a Slab slab. */
export const BLOCK_BYTES = 4 * 1024 * 1024;
/** Bytes per chunk of a RecordArena; larger record arrays get memory of their own. */
const ARENA_CHUNK_BYTES = BLOCK_BYTES;

/**
 * Blocks of BLOCK_BYTES handed out to the stores of one analysis and given back when it is
 * over (nothing of the stores outlives the DiffResult, which holds no view into them), for
 * the next analysis in the process: fresh memory costs page faults and, being external to
 * the JS heap, pushes V8 into extra full garbage collections. Keeps at most `maxBlocks`.
 * Blocks are not zeroed (stores read only what they wrote).
 */
export class BlockCache {
  readonly maxBlocks: number;
  readonly #free: ArrayBuffer[] = [];

  constructor(maxBlocks = 64) {
    this.maxBlocks = maxBlocks;
  }

  /** Blocks held for reuse. */
  get size(): number {
    return this.#free.length;
  }

  /** A block: a kept one, else a new unzeroed one. */
  take(): ArrayBuffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(BLOCK_BYTES).buffer;
  }

  /** Give back blocks from `take` whose views are no longer used. */
  give(blocks: readonly ArrayBuffer[]): void {
    for (const b of blocks) if (this.#free.length < this.maxBlocks && b.byteLength === BLOCK_BYTES) this.#free.push(b);
  }
}

/**
 * Memory for many small record arrays, carved from large chunks: one ArrayBuffer per few MB
 * instead of one per array (thousands of small ArrayBuffers cost an allocation, a free and GC
 * bookkeeping each). Memory is given back only with the arena (a grown array's old block stays).
 */
export class RecordArena {
  /** Chunks taken from the cache (given back by `Slab.release`). */
  readonly blocks: ArrayBuffer[] = [];
  readonly #cache: BlockCache;
  #chunk: ArrayBufferLike = new ArrayBuffer(0);
  #used = 0;

  constructor(cache: BlockCache = new BlockCache(0)) {
    this.#cache = cache;
  }

  /** A Float64Array of `n` elements, NOT zeroed (records are written before they are read). */
  f64(n: number): Float64Array {
    const bytes = n * 8;
    if (bytes > ARENA_CHUNK_BYTES / 4) return new Float64Array(n);
    if (this.#used + bytes > this.#chunk.byteLength) {
      // Unzeroed: zeroing 4 MiB that is about to be overwritten costs as much as using it.
      const b = this.#cache.take();
      this.blocks.push(b);
      this.#chunk = b;
      this.#used = 0;
    }
    const a = new Float64Array(this.#chunk, this.#used, n);
    this.#used += bytes;
    return a;
  }

  /**
   * `a` (from `f64`) grown to `n` elements in place when it is the latest block and its chunk
   * has room (a stream whose records arrive in a run: no copy, no abandoned block), else null.
   */
  growInPlace(a: Float64Array, n: number): Float64Array | null {
    const end = a.byteOffset + a.byteLength;
    const extra = (n - a.length) * 8;
    if (a.buffer !== this.#chunk || end !== this.#used || this.#used + extra > this.#chunk.byteLength) return null;
    this.#used += extra;
    return new Float64Array(this.#chunk, a.byteOffset, n);
  }
}

/** A growable Float64Array of fixed-stride records (nothing allocated until the first record). */
export class F64Records {
  data: Float64Array = NO_RECORDS;
  /** Records held. */
  count = 0;
  readonly stride: number;
  readonly #initial: number;
  readonly #arena: RecordArena | null;

  constructor(stride: number, initial = 8, arena: RecordArena | null = null) {
    this.stride = stride;
    this.#initial = initial;
    this.#arena = arena;
  }

  /** Room for one more record; returns its base index. */
  add(): number {
    const base = this.count * this.stride;
    if (base + this.stride > this.data.length) {
      const len = Math.max(this.data.length * 2, this.stride * this.#initial);
      const arena = this.#arena;
      const grown = arena !== null && this.data.length > 0 ? arena.growInPlace(this.data, len) : null;
      if (grown !== null) this.data = grown;
      else {
        const n = arena !== null ? arena.f64(len) : new Float64Array(len);
        n.set(this.data);
        this.data = n;
      }
    }
    this.count++;
    return base;
  }
}

/** Bytes per slab of a capture's shared byte store. */
const SLAB_BYTES = BLOCK_BYTES;

/**
 * One capture's payload bytes, appended in arrival order into large slabs shared by every
 * flow (no per-stream growth and copying while reading; a stream is laid out contiguously
 * only around a divergence, see StreamStore.range).
 */
export class Slab {
  readonly slabs: Uint8Array[] = [];
  /** Where the capture's stores keep their records. */
  readonly records: RecordArena;
  readonly #cache: BlockCache;
  /** Slabs taken from the cache (given back by `release`). */
  readonly #blocks: ArrayBuffer[] = [];
  #cur: Uint8Array = new Uint8Array(0);
  #pos = 0;
  /** Index of the slab the last `append` wrote to, and where. */
  lastSlab = -1;
  lastOff = 0;
  /** A plain Uint8Array over the last source buffer (Buffer.subarray is slower: it builds a Buffer). */
  #src: Uint8Array = EMPTY;
  #alias: Uint8Array = EMPTY;

  /** `cache`: where slabs and record chunks come from (default: none kept, always new memory). */
  constructor(cache: BlockCache = new BlockCache(0)) {
    this.#cache = cache;
    this.records = new RecordArena(cache);
  }

  /**
   * Give this capture's slabs and record chunks back to its cache. Only when nothing reads
   * the stores any more (the analysis is over): their memory is handed out again.
   */
  release(): void {
    this.#cache.give(this.#blocks);
    this.#cache.give(this.records.blocks);
    this.#blocks.length = 0;
    this.records.blocks.length = 0;
  }

  /**
   * Make `buf` (a whole capture file held in memory, never modified or moved while the pass
   * runs) a slab of its own: payload bytes already in it are referenced, not copied. Returns
   * its slab index.
   */
  adopt(buf: Uint8Array): number {
    // A plain Uint8Array view: subarray() on it is cheaper than on a Buffer.
    this.slabs.push(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
    // Later appends must not write into the adopted buffer: start a fresh slab for them.
    this.#cur = EMPTY;
    this.#pos = 0;
    return this.slabs.length - 1;
  }

  /**
   * Copy `src[off, off + len)` into the current slab (`lastSlab`, `lastOff` say where). Longer
   * runs go through TypedArray.set on a subarray view: one small allocation, but faster than
   * a word-by-word copy loop (measured).
   */
  append(src: Uint8Array, off: number, len: number): void {
    if (this.#pos + len > this.#cur.length) {
      if (len <= SLAB_BYTES) {
        const b = this.#cache.take();
        this.#blocks.push(b);
        this.#cur = new Uint8Array(b);
      } else this.#cur = new Uint8Array(len);
      this.slabs.push(this.#cur);
      this.#pos = 0;
    }
    const dst = this.#cur;
    const at = this.#pos;
    if (len <= 64) for (let i = 0; i < len; i++) dst[at + i] = src[off + i]!;
    else {
      if (src !== this.#src) {
        this.#src = src;
        this.#alias = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
      }
      dst.set(this.#alias.subarray(off, off + len), at);
    }
    this.#pos = at + len;
    this.lastSlab = this.slabs.length - 1;
    this.lastOff = at;
  }
}

/** Fields per delivery record (see StreamStore.deliveries). */
export const DELIVERY_STRIDE = 10;
/**
 * Slab index of a delivery whose bytes were found equal to the twin stream's at the same
 * offsets while the capture was read (StreamStore.twin): not stored, read from the twin.
 */
export const BORROWED = -1;

/** Buffer's in-place range compare, on plain Uint8Arrays too (no subarray views per call). */
const compareRange = Buffer.prototype.compare as (this: Uint8Array, target: Uint8Array, targetStart: number, targetEnd: number, sourceStart: number, sourceEnd: number) => number;
/** Fields per datagram record (see DatagramStore.items). */
export const DATAGRAM_STRIDE = 7;

/** One TCP direction of one capture. */
export class StreamStore {
  /** Where the bytes live (shared by the capture's flows). */
  readonly slab: Slab;
  /** Stream extent delivered (data and gaps). */
  len = 0;
  /** Gaps as [offset, len] pairs, in offset order. */
  readonly gaps: number[] = [];
  /**
   * Deliveries, in offset order: [stream offset, time ms, frame record number, IP ID, TTL,
   * TCP window, TCP options print, slab index, slab offset, length] of the packet that
   * delivered them (benign-difference detection compares packets starting at the same offset).
   */
  readonly deliveries: F64Records;
  /** Packets that delivered new payload. */
  dataPackets = 0;
  /** Frame record number of the last packet counted in `dataPackets`. */
  lastFrame = -1;
  /** How the direction ended ('fin', 'rst', 'eof', …) or null. */
  end: string | null = null;
  /** TCP segments seen in this direction (any flags), retransmitted segments. */
  segments = 0;
  retransmitted = 0;
  /** Time and frame of the end (FIN/RST) packet, when one ended it. */
  endMs = -1;
  endFrame = -1;
  /**
   * The other capture's store of the same stream, when this one was compared with it while
   * being read (the secondary against its tentatively matched primary flow): bytes
   * [0, matchedTo) were delivered without a gap, equal to the twin's at the same offsets
   * (which has no gap there either), and are not stored here (BORROWED deliveries).
   */
  twin: StreamStore | null = null;
  matchedTo = 0;
  /** Still comparing deliveries with the twin (cleared at the first difference or gap). */
  matching = false;
  /**
   * First offset below `matchedTo` where the same bytes were delivered more than
   * `timingTimeoutMs` apart on the two sides (compare-tcp's timing rule), or -1.
   */
  timingFrom = -1;
  timingTimeoutMs = -1;
  /**
   * compare-tcp's benign counts over [0, matchedTo), gathered while matching: deliveries of
   * either side starting where the other has none (`segmentation`, before the end cut
   * tcpBenign applies), and field differences of those starting at the same offset.
   */
  readonly matchedBenign = { segmentation: 0, ipId: 0, ttl: 0, window: 0, tcpOptions: 0 };
  /** Twin delivery holding `matchedTo` (advance-only cursor of `matchNext`). */
  #twinAt = 0;

  constructor(slab: Slab) {
    this.slab = slab;
    this.deliveries = new F64Records(DELIVERY_STRIDE, 32, slab.records);
  }

  /** Compare this store's in-order bytes with `twin` from offset 0 on (see `twin`). */
  pairWith(twin: StreamStore, timeoutMs: number): void {
    this.twin = twin;
    this.matching = true;
    this.matchedTo = 0;
    this.#twinAt = 0;
    this.timingFrom = -1;
    this.timingTimeoutMs = timeoutMs;
    const mb = this.matchedBenign;
    mb.segmentation = mb.ipId = mb.ttl = mb.window = mb.tcpOptions = 0;
  }

  /**
   * While `matching`: are the `len` bytes at `buf[off]`, delivered at stream offset
   * `matchedTo` by this store's delivery record `rb` (all fields but the slab position already
   * written), the twin's bytes there (all delivered, no gap)? Advances `matchedTo` when they
   * are (noting the first timing difference and the benign counts on the way); stops matching
   * otherwise. Allocates nothing (compares in place).
   */
  matchNext(buf: Uint8Array, off: number, len: number, rb: number): boolean {
    const t = this.twin!;
    const own = this.deliveries.data;
    const ms = own[rb + 1]!;
    const mb = this.matchedBenign;
    const start = this.matchedTo;
    const d = t.deliveries.data;
    const n = t.deliveries.count;
    const slabs = t.slab.slabs;
    let pos = this.matchedTo;
    const end = pos + len;
    let i = this.#twinAt;
    while (pos < end) {
      while (i < n && d[i * DELIVERY_STRIDE]! + d[i * DELIVERY_STRIDE + 9]! <= pos) i++;
      const b = i * DELIVERY_STRIDE;
      if (i >= n || d[b]! > pos || d[b + 7]! === BORROWED) {
        this.matching = false;
        return false;
      }
      const pieceEnd = d[b]! + d[b + 9]!;
      const e = pieceEnd < end ? pieceEnd : end;
      const src = slabs[d[b + 7]!]!;
      const so = d[b + 8]! + (pos - d[b]!);
      const bo = off + (pos - this.matchedTo);
      const k = e - pos;
      let same = true;
      if (k <= 32) {
        for (let x = 0; x < k; x++) {
          if (src[so + x] !== buf[bo + x]) {
            same = false;
            break;
          }
        }
      } else same = compareRange.call(src, buf, bo, bo + k, so, so + k) === 0;
      if (!same) {
        this.matching = false;
        return false;
      }
      // `pos` is a timing boundary: this delivery's start, or the start of a twin piece in it.
      if (this.timingFrom < 0 && Math.abs(ms - d[b + 1]!) > this.timingTimeoutMs) this.timingFrom = pos;
      // Benign counts (tcpBenign's merge by start offset): this delivery's start pairs with a
      // twin piece starting there or stands alone; twin pieces starting inside it stand alone.
      if (d[b]! === start) {
        if (d[b + 3] !== own[rb + 3]) mb.ipId++;
        if (d[b + 4] !== own[rb + 4]) mb.ttl++;
        if (d[b + 5] !== own[rb + 5]) mb.window++;
        if (d[b + 6] !== own[rb + 6]) mb.tcpOptions++;
      } else mb.segmentation++;
      pos = e;
    }
    this.#twinAt = i;
    this.matchedTo = end;
    return true;
  }

  get length(): number {
    return this.len;
  }

  /**
   * Stream bytes [from, to) as a new array (zeros where nothing was delivered: gaps, or past
   * the end). Cold path: only around divergences, never the whole stream on the identical path.
   */
  range(from: number, to: number): Uint8Array {
    if (to - from > MAX_STREAM_BYTES) throw new ColoError('ERR_INVALID_ARGUMENT', `a stream range of ${to - from} bytes is more than the analyzer copies at once (${MAX_STREAM_BYTES})`);
    const out = new Uint8Array(Math.max(0, to - from));
    this.#copyInto(out, from, to);
    return out;
  }

  /** Copy stream bytes [from, to) into `out` at `out[0]` (only where delivered). */
  #copyInto(out: Uint8Array, from: number, to: number): void {
    const d = this.deliveries.data;
    const slabs = this.slab.slabs;
    for (let i = Math.max(0, this.deliveryAt(from)); i < this.deliveries.count; i++) {
      const b = i * DELIVERY_STRIDE;
      const start = d[b]!;
      if (start >= to) break;
      const end = start + d[b + 9]!;
      const a = Math.max(start, from);
      const e = Math.min(end, to);
      if (e <= a) continue;
      if (d[b + 7]! === BORROWED) {
        this.twin!.#copyInto(out.subarray(a - from), a, e);
        continue;
      }
      const src = slabs[d[b + 7]!]!;
      const o = d[b + 8]! + (a - start);
      out.set(src.subarray(o, o + (e - a)), a - from);
    }
  }

  /** Index of the delivery holding stream offset `o` (the last one starting at or before it), -1 if none. */
  deliveryAt(o: number): number {
    const d = this.deliveries.data;
    let lo = 0;
    let hi = this.deliveries.count - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (d[mid * DELIVERY_STRIDE]! <= o) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }

  /** Time (ms) at which stream offset `o` was delivered, or null. */
  timeAt(o: number): number | null {
    const i = this.deliveryAt(o);
    return i < 0 ? null : this.deliveries.data[i * DELIVERY_STRIDE + 1]!;
  }

  /** Frame record number that delivered stream offset `o`, or -1. */
  frameAt(o: number): number {
    const i = this.deliveryAt(o);
    return i < 0 ? -1 : this.deliveries.data[i * DELIVERY_STRIDE + 2]!;
  }
}

/** One datagram direction of one capture (UDP, ICMP, other IP, ARP). */
export class DatagramStore {
  readonly slab: Slab;
  /** Payload bytes held. */
  bytes = 0;
  /** Per datagram: [slab offset, length, time ms, frame record number, IP ID, TTL, slab index]. */
  readonly items: F64Records;

  constructor(slab: Slab) {
    this.slab = slab;
    this.items = new F64Records(DATAGRAM_STRIDE, 8, slab.records);
  }

  get count(): number {
    return this.items.count;
  }

  payload(i: number): Uint8Array {
    const d = this.items.data;
    const b = i * DATAGRAM_STRIDE;
    const o = d[b]!;
    const len = d[b + 1]!;
    return len === 0 ? EMPTY : this.slab.slabs[d[b + 6]!]!.subarray(o, o + len);
  }

  timeOf(i: number): number {
    return this.items.data[i * DATAGRAM_STRIDE + 2]!;
  }

  frameOf(i: number): number {
    return this.items.data[i * DATAGRAM_STRIDE + 3]!;
  }

  push(buf: Uint8Array, off: number, len: number, ms: number, frame: number, ipId: number, ttl: number): void {
    if (len > 0) this.slab.append(buf, off, len);
    this.bytes += len;
    const b = this.items.add();
    const d = this.items.data;
    d[b] = len > 0 ? this.slab.lastOff : 0;
    d[b + 1] = len;
    d[b + 6] = len > 0 ? this.slab.lastSlab : 0;
    d[b + 2] = ms;
    d[b + 3] = frame;
    d[b + 4] = ipId;
    d[b + 5] = ttl;
  }
}
