/**
 * Zero-copy packet pool.
 *
 * Packets live in a few large preallocated slabs, one per size class. A packet is a *handle*:
 * a small integer naming one slot. Its bytes are `pool.buffer(h)` from `pool.offset(h)` for
 * `pool.length(h)` bytes; no per-packet Buffer or view object exists unless a cold path asks
 * for one with `pool.view(h)`. Each slot has a reference count; the last `release` returns it
 * to its class's free list (an Int32Array stack, so acquire/release allocate nothing).
 *
 * Limit policy (stated once, relied on everywhere):
 * - The pool never grows past its configured slots: that is the hard memory cap.
 * - `acquire` on a full class first spills into the next larger class with a free slot
 *   (counted in `spills`); when nothing fits it returns NO_HANDLE and counts an allocation
 *   failure. It never evicts or overwrites a slot in use. Callers must apply backpressure
 *   (stop reading) and may register `whenAvailable` to be told when a slot frees up.
 * - A size larger than the largest class is a programming error (lengths are validated
 *   against the wire maximum before acquiring) and throws ERR_INVALID_ARGUMENT.
 * - Releasing a free slot or an unknown handle throws ERR_POOL_BAD_HANDLE instead of
 *   corrupting the free list.
 */
import { ColoError } from '../errors.js';

export const NO_HANDLE = -1;

export interface SizeClass {
  /** Bytes per slot. */
  slotSize: number;
  /** Number of slots (the cap for this class). */
  slots: number;
}

export interface PoolOptions {
  /** Size classes in ascending slot size. Defaults: 2 KiB × 16384 and 68 KiB × 256. */
  classes?: readonly SizeClass[];
}

/** QEMU's NET_BUFSIZE: the largest frame on a chardev stream (vnet header + Ethernet frame). */
export const NET_BUFSIZE = 69_632;

export const DEFAULT_CLASSES: readonly SizeClass[] = Object.freeze([
  { slotSize: 2048, slots: 16_384 },
  { slotSize: NET_BUFSIZE, slots: 256 },
]);

export interface ClassStats {
  slotSize: number;
  slots: number;
  inUse: number;
  highWater: number;
}

export interface PoolStats {
  /** Slots currently referenced. */
  inUse: number;
  /** Largest `inUse` ever seen. */
  highWater: number;
  /** Total slots across all classes. */
  capacity: number;
  /** Acquires that returned NO_HANDLE because nothing fit. */
  allocFailures: number;
  /** Acquires served by a larger class because the best-fitting one was full. */
  spills: number;
  acquires: number;
  releases: number;
  /** Bytes reserved by the slabs (the pool's memory cap). */
  reservedBytes: number;
  classes: ClassStats[];
}

interface ClassState {
  readonly slotSize: number;
  readonly slots: number;
  /** First global handle of this class. */
  readonly base: number;
  readonly slab: Buffer;
  /** Free slot stack (local slot indices). */
  readonly free: Int32Array;
  top: number;
  inUse: number;
  highWater: number;
}

export class PacketPool {
  readonly #classes: ClassState[];
  /** Per-handle reference count; 0 = free. */
  readonly #refs: Int32Array;
  /** Per-handle valid byte length. */
  readonly #lens: Int32Array;
  /** Per-handle caller tag (e.g. the vnet header length); reset to 0 on acquire. */
  readonly tag: Int32Array;
  /** Per-handle timestamp slot (caller-defined unit, e.g. arrival ms); reset to 0 on acquire. */
  readonly time: Float64Array;
  readonly capacity: number;
  readonly maxSlotSize: number;
  #inUse = 0;
  #highWater = 0;
  #allocFailures = 0;
  #spills = 0;
  #acquires = 0;
  #releases = 0;
  #waiters: Array<() => void> = [];
  #notifyScheduled = false;

  constructor(options: PoolOptions = {}) {
    const classes = options.classes ?? DEFAULT_CLASSES;
    if (classes.length === 0) throw new ColoError('ERR_POOL_CONFIG', 'pool needs at least one size class');
    let base = 0;
    let prev = 0;
    this.#classes = classes.map((c, i) => {
      if (!Number.isInteger(c.slotSize) || c.slotSize <= 0 || !Number.isInteger(c.slots) || c.slots <= 0) {
        throw new ColoError('ERR_POOL_CONFIG', `size class ${i}: slotSize and slots must be positive integers (got ${c.slotSize} × ${c.slots})`);
      }
      if (c.slotSize <= prev) {
        throw new ColoError('ERR_POOL_CONFIG', `size class ${i}: slot sizes must ascend (got ${c.slotSize} after ${prev})`);
      }
      prev = c.slotSize;
      const free = new Int32Array(c.slots);
      // Lowest slot on top of the stack so a fresh pool hands out slots in address order.
      for (let s = 0; s < c.slots; s++) free[s] = c.slots - 1 - s;
      const st: ClassState = {
        slotSize: c.slotSize,
        slots: c.slots,
        base,
        slab: Buffer.allocUnsafeSlow(c.slotSize * c.slots),
        free,
        top: c.slots,
        inUse: 0,
        highWater: 0,
      };
      base += c.slots;
      return st;
    });
    this.capacity = base;
    this.maxSlotSize = prev;
    this.#refs = new Int32Array(base);
    this.#lens = new Int32Array(base);
    this.tag = new Int32Array(base);
    this.time = new Float64Array(base);
  }

  /**
   * Take a slot able to hold `size` bytes, with reference count 1 and length `size`.
   * Returns NO_HANDLE when the pool is exhausted (see the limit policy above).
   */
  acquire(size: number): number {
    if (!(size >= 0 && size <= this.maxSlotSize)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `packet size ${size} is outside 0..${this.maxSlotSize}`);
    }
    const classes = this.#classes;
    let spilled = false;
    for (let i = 0; i < classes.length; i++) {
      const c = classes[i]!;
      if (c.slotSize < size) continue;
      if (c.top === 0) {
        spilled = true;
        continue;
      }
      const slot = c.free[--c.top]!;
      const h = c.base + slot;
      this.#refs[h] = 1;
      this.#lens[h] = size;
      this.tag[h] = 0;
      this.time[h] = 0;
      c.inUse++;
      if (c.inUse > c.highWater) c.highWater = c.inUse;
      this.#inUse++;
      if (this.#inUse > this.#highWater) this.#highWater = this.#inUse;
      this.#acquires++;
      if (spilled) this.#spills++;
      return h;
    }
    this.#allocFailures++;
    return NO_HANDLE;
  }

  /** Like `acquire`, but throws ERR_POOL_EXHAUSTED instead of returning NO_HANDLE (for cold paths). */
  acquireOrThrow(size: number): number {
    const h = this.acquire(size);
    if (h === NO_HANDLE) {
      throw new ColoError('ERR_POOL_EXHAUSTED', `packet pool exhausted: ${this.#inUse}/${this.capacity} slots in use, none fits ${size} bytes`);
    }
    return h;
  }

  /** Copy `len` bytes of `src` at `srcOff` into a new slot. NO_HANDLE when exhausted. */
  copyIn(src: Uint8Array, srcOff: number, len: number): number {
    const h = this.acquire(len);
    if (h === NO_HANDLE) return h;
    const c = this.#classOf(h);
    c.slab.set(src.subarray(srcOff, srcOff + len), (h - c.base) * c.slotSize);
    return h;
  }

  retain(h: number): void {
    this.#check(h);
    this.#refs[h]!++;
  }

  /** Drop one reference; the slot returns to its free list when none remain. */
  release(h: number): void {
    this.#check(h);
    const r = --this.#refs[h]!;
    if (r > 0) return;
    const c = this.#classOf(h);
    c.free[c.top++] = h - c.base;
    c.inUse--;
    this.#inUse--;
    this.#releases++;
    if (this.#waiters.length > 0 && !this.#notifyScheduled) {
      this.#notifyScheduled = true;
      queueMicrotask(() => this.#notify());
    }
  }

  /** Reference count of a handle (0 for a free slot). */
  refCount(h: number): number {
    if (!(h >= 0 && h < this.capacity)) return 0;
    return this.#refs[h]!;
  }

  /** The slab holding this handle's bytes. */
  buffer(h: number): Buffer {
    return this.#classOf(h).slab;
  }

  /** Offset of this handle's first byte within `buffer(h)`. */
  offset(h: number): number {
    const c = this.#classOf(h);
    return (h - c.base) * c.slotSize;
  }

  length(h: number): number {
    return this.#lens[h]!;
  }

  /** True when more than half the slots of `h`'s size class are in use (budget checks). */
  classOverHalf(h: number): boolean {
    const c = this.#classOf(h);
    return c.inUse * 2 > c.slots;
  }

  /** Capacity of this handle's slot. */
  slotSize(h: number): number {
    return this.#classOf(h).slotSize;
  }

  /** Set the valid length (e.g. after filling a slot acquired at its maximum size). */
  setLength(h: number, len: number): void {
    const c = this.#classOf(h);
    if (!(len >= 0 && len <= c.slotSize)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `length ${len} does not fit a ${c.slotSize}-byte slot`);
    }
    this.#lens[h] = len;
  }

  /** A Buffer view of the packet (allocates a view object: for cold paths and I/O only). */
  view(h: number): Buffer {
    const c = this.#classOf(h);
    const off = (h - c.base) * c.slotSize;
    return c.slab.subarray(off, off + this.#lens[h]!);
  }

  /** Call `cb` once, soon after the next slot is released (backpressure relief). */
  whenAvailable(cb: () => void): void {
    this.#waiters.push(cb);
  }

  get inUse(): number {
    return this.#inUse;
  }

  stats(): PoolStats {
    let reserved = 0;
    for (const c of this.#classes) reserved += c.slotSize * c.slots;
    return {
      inUse: this.#inUse,
      highWater: this.#highWater,
      capacity: this.capacity,
      allocFailures: this.#allocFailures,
      spills: this.#spills,
      acquires: this.#acquires,
      releases: this.#releases,
      reservedBytes: reserved,
      classes: this.#classes.map((c) => ({ slotSize: c.slotSize, slots: c.slots, inUse: c.inUse, highWater: c.highWater })),
    };
  }

  #notify(): void {
    this.#notifyScheduled = false;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #classOf(h: number): ClassState {
    const classes = this.#classes;
    for (let i = classes.length - 1; i >= 0; i--) {
      const c = classes[i]!;
      if (h >= c.base) {
        if (h < c.base + c.slots) return c;
        break;
      }
    }
    throw new ColoError('ERR_POOL_BAD_HANDLE', `not a handle of this pool: ${h}`);
  }

  #check(h: number): void {
    if (!(Number.isInteger(h) && h >= 0 && h < this.capacity)) {
      throw new ColoError('ERR_POOL_BAD_HANDLE', `not a handle of this pool: ${h}`);
    }
    if (this.#refs[h]! <= 0) {
      throw new ColoError('ERR_POOL_BAD_HANDLE', `handle ${h} is not in use (double release or use after release)`);
    }
  }
}
