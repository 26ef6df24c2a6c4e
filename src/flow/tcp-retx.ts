/**
 * RetxWindow: the most recently DELIVERED bytes of one stream direction, kept so that a
 * retransmission overlapping them can be compared byte for byte. A TcpHalfStream creates one
 * on its first delivery (when `retxWindowBytes > 0`) and clears it when the direction ends.
 *
 * Contents: a FIFO of RUNS, each a contiguous range of stream offsets [start, start + len)
 * whose bytes sit at `bufOff` in `pool.buffer(handle)`, each holding one pool reference. Runs
 * are added in delivery order, so their offsets ascend and never overlap; what lies between
 * two runs was never delivered (a gap) or could not be kept.
 * - Zero copy: a delivered range that lies in a pool slot and fills at least half of it (a
 *   full-size segment in its own slot) is kept by retaining that slot.
 * - Copy: anything else — unpooled input such as a capture reader's chunk, and small segments,
 *   which would pin a whole slot for a few bytes — is appended to the direction's current
 *   COPY SLOT (RETX_COPY_SLOT_BYTES from the pool), extending the last run when contiguous.
 *   Copy slots are packed, so small segments cost their bytes, not a slot each. (The copy
 *   goes through one short-lived typed-array view per slot written: the only allocation.)
 *
 * Extent: the window is [delivered point − limit, delivered point). Runs wholly below it are
 * dropped as delivery (or a gap) advances, and comparisons are clipped to it, so WHICH bytes
 * are compared does not depend on how delivery was split into segments. At most
 * `retxMaxRuns(limit)` runs.
 *
 * Memory policy: everything is charged to the ReassemblyBudget's retransmission share
 * (`tryReserveRetx`): a zero-copy run costs its slot + RETX_ENTRY_OVERHEAD, a copy run
 * RETX_ENTRY_OVERHEAD, a copy slot its slot size (charged once, returned when its last run
 * goes). When the budget refuses, the OLDEST runs are dropped until it accepts (or the window
 * is empty and the new bytes go unkept); when the pool has no slot to copy into, the whole
 * window is dropped (its slots go back to the readers) and the new bytes go unkept. Each such
 * event counts in `retxShrinks`; a later retransmission of bytes not held counts as
 * unverified. The window never holds more than its extent plus one run and one copy slot.
 *
 * Work: `remember` is O(1) amortised plus the copy, when copying; `verify` is
 * O(log runs + bytes compared).
 */
import { diffEnd, firstDiff } from '../packet/bytes.js';
import { NO_HANDLE, type PacketPool } from '../packet/pool.js';
import type { ReassemblyBudget } from './tcp-budget.js';
import type { TcpStreamStats } from './tcp-stats.js';
import type { Dir, StreamSink } from './tcp-types.js';

/** Budget bytes charged per kept run on top of the memory it pins (typed-array bookkeeping). */
export const RETX_ENTRY_OVERHEAD = 32;

/** Size of the pool slots delivered bytes are copied into (capped at the pool's largest slot). */
export const RETX_COPY_SLOT_BYTES = 2048;

const INITIAL_RUNS = 16;

/** Cap on the runs one window keeps: an average of 64 bytes per run over the window, at least 16. */
export function retxMaxRuns(limit: number): number {
  return Math.max(INITIAL_RUNS, Math.ceil(limit / 64));
}

export class RetxWindow {
  /** The window's extent in bytes below the delivered point. */
  readonly limit: number;
  readonly #dir: Dir;
  readonly #pool: PacketPool;
  readonly #budget: ReassemblyBudget;
  readonly #sink: StreamSink;
  readonly #stats: TcpStreamStats;
  readonly #maxRuns: number;
  // The runs: a ring of parallel typed arrays (power-of-two capacity, grown on demand).
  #start: Float64Array;
  #len: Int32Array;
  #handle: Int32Array;
  #bufOff: Float64Array;
  /** Budget bytes this run holds (its copy slot, if any, is charged separately). */
  #charge: Int32Array;
  /** 1 when the run lives in one of our copy slots. */
  #copied: Uint8Array;
  #head = 0;
  #count = 0;
  #mask: number;
  /** The copy slot being filled (we hold one "writer" reference to it), and its free space. */
  #copyH = NO_HANDLE;
  #copyPos = 0;
  #copyEnd = 0;
  /** A differing run found by `verify`, held back so runs split across kept runs are merged. */
  #cAt = 0;
  #cLen = 0;

  constructor(dir: Dir, pool: PacketPool, budget: ReassemblyBudget, sink: StreamSink, stats: TcpStreamStats, limit: number) {
    this.#dir = dir;
    this.#pool = pool;
    this.#budget = budget;
    this.#sink = sink;
    this.#stats = stats;
    this.limit = limit;
    this.#maxRuns = retxMaxRuns(limit);
    this.#start = new Float64Array(INITIAL_RUNS);
    this.#len = new Int32Array(INITIAL_RUNS);
    this.#handle = new Int32Array(INITIAL_RUNS);
    this.#bufOff = new Float64Array(INITIAL_RUNS);
    this.#charge = new Int32Array(INITIAL_RUNS);
    this.#copied = new Uint8Array(INITIAL_RUNS);
    this.#mask = INITIAL_RUNS - 1;
  }

  /** Runs held now. */
  get runs(): number {
    return this.#count;
  }

  /** True while the window holds any pool slot or budget byte (runs or a copy slot). */
  get holds(): boolean {
    return this.#count > 0 || this.#copyH !== NO_HANDLE;
  }

  /**
   * Keep the just-delivered bytes `buf[off, off + len)` at stream offsets [at, at + len) (the
   * delivered point is now `at + len`). `h` is the pool handle whose slot holds them, or
   * NO_HANDLE; a handle whose slot does not hold them is treated as NO_HANDLE (copied).
   */
  remember(buf: Uint8Array, off: number, len: number, at: number, h: number): void {
    this.trim(at + len - this.limit);
    if (h !== NO_HANDLE) {
      const pool = this.#pool;
      const size = pool.slotSize(h);
      if (len * 2 >= size && pool.buffer(h) === buf) {
        const so = pool.offset(h);
        if (off >= so && off + len <= so + size) {
          this.#keep(at, len, h, off, size);
          return;
        }
      }
    }
    this.#copy(buf, off, len, at);
  }

  /**
   * Compare the retransmitted bytes `a[ao, ao + (e − s))`, at stream offsets [s, e) below the
   * delivered point, with the kept bytes at offsets ≥ `floor`; report each run of differing
   * bytes via `sink.overlapConflict` (and count it). Returns how many bytes were compared.
   */
  verify(a: Uint8Array, ao: number, s: number, e: number, floor: number): number {
    const lo = s > floor ? s : floor;
    const count = this.#count;
    if (lo >= e || count === 0) return 0;
    const start = this.#start;
    const len = this.#len;
    const head = this.#head;
    const mask = this.#mask;
    // First run ending after `lo` (run ends ascend).
    let l = 0;
    let r = count;
    while (l < r) {
      const m = (l + r) >>> 1;
      const i = (head + m) & mask;
      if (start[i]! + len[i]! <= lo) l = m + 1;
      else r = m;
    }
    let verified = 0;
    for (let k = l; k < count; k++) {
      const i = (head + k) & mask;
      const rs = start[i]!;
      if (rs >= e) break;
      const re = rs + len[i]!;
      const x0 = rs > lo ? rs : lo;
      const x1 = re < e ? re : e;
      this.#compare(a, ao + (x0 - s), this.#pool.buffer(this.#handle[i]!), this.#bufOff[i]! + (x0 - rs), x1 - x0, x0);
      verified += x1 - x0;
    }
    this.#flush();
    this.#stats.retxVerifiedBytes += verified;
    return verified;
  }

  /** Drop the runs that end at or below `floor` (they fell out of the window). */
  trim(floor: number): void {
    const start = this.#start;
    const len = this.#len;
    while (this.#count > 0) {
      const i = this.#head;
      if (start[i]! + len[i]! > floor) return;
      this.#dropOldest();
    }
  }

  /** Drop everything and return every pool reference and budget byte. */
  clear(): void {
    while (this.#count > 0) this.#dropOldest();
    this.#releaseCopySlot();
  }

  // ---- internals ----

  #keep(at: number, len: number, h: number, off: number, slotSize: number): void {
    const charge = slotSize + RETX_ENTRY_OVERHEAD;
    if (!this.#room(charge)) return;
    this.#pool.retain(h);
    this.#push(at, len, h, off, charge, 0);
  }

  #copy(buf: Uint8Array, off: number, len: number, at: number): void {
    const pool = this.#pool;
    while (len > 0) {
      if (this.#copyPos >= this.#copyEnd && !this.#newCopySlot()) return;
      const room = this.#copyEnd - this.#copyPos;
      const n = len < room ? len : room;
      const h = this.#copyH;
      const pos = this.#copyPos;
      const c = this.#count;
      const t = (this.#head + c - 1) & this.#mask;
      if (c > 0 && this.#copied[t] === 1 && this.#handle[t] === h && this.#start[t]! + this.#len[t]! === at && this.#bufOff[t]! + this.#len[t]! === pos) {
        this.#len[t]! += n;
        this.#held(n);
      } else {
        // #room may drop old runs, never the copy slot (our writer reference keeps it).
        if (!this.#room(RETX_ENTRY_OVERHEAD)) return;
        pool.retain(h);
        this.#push(at, n, h, pos, RETX_ENTRY_OVERHEAD, 1);
      }
      pool.buffer(h).set(buf.subarray(off, off + n), pos);
      this.#copyPos = pos + n;
      at += n;
      off += n;
      len -= n;
    }
  }

  /**
   * Make room for one more run charged `charge`: drop the oldest runs while the run cap or the
   * budget says no. False (counted) when even an empty window cannot have it.
   */
  #room(charge: number): boolean {
    let shrunk = false;
    if (this.#count >= this.#maxRuns) {
      this.#dropOldest();
      shrunk = true;
    }
    while (!this.#budget.tryReserveRetx(charge)) {
      if (this.#count === 0) {
        this.#stats.retxShrinks++;
        return false;
      }
      this.#dropOldest();
      shrunk = true;
    }
    if (shrunk) this.#stats.retxShrinks++;
    return true;
  }

  /** Start a fresh copy slot (see the memory policy). False when none could be had. */
  #newCopySlot(): boolean {
    this.#releaseCopySlot();
    const pool = this.#pool;
    const h = pool.acquire(RETX_COPY_SLOT_BYTES < pool.maxSlotSize ? RETX_COPY_SLOT_BYTES : pool.maxSlotSize);
    if (h === NO_HANDLE) {
      // The pool is exhausted: the readers need slots more than we do.
      this.#stats.retxShrinks++;
      while (this.#count > 0) this.#dropOldest();
      return false;
    }
    const size = pool.slotSize(h);
    let shrunk = false;
    while (!this.#budget.tryReserveRetx(size)) {
      if (this.#count === 0) {
        pool.release(h);
        this.#stats.retxShrinks++;
        return false;
      }
      this.#dropOldest();
      shrunk = true;
    }
    if (shrunk) this.#stats.retxShrinks++;
    this.#copyH = h;
    this.#copyPos = pool.offset(h);
    this.#copyEnd = this.#copyPos + size;
    return true;
  }

  #releaseCopySlot(): void {
    const h = this.#copyH;
    if (h === NO_HANDLE) return;
    this.#copyH = NO_HANDLE;
    this.#copyPos = 0;
    this.#copyEnd = 0;
    this.#unref(h, true);
  }

  /** Drop one reference to `h`; a copy slot's charge goes back with its last reference. */
  #unref(h: number, copied: boolean): void {
    const pool = this.#pool;
    if (copied && pool.refCount(h) === 1) this.#budget.releaseRetx(pool.slotSize(h));
    pool.release(h);
  }

  #push(at: number, len: number, h: number, bufOff: number, charge: number, copied: number): void {
    if (this.#count === this.#start.length) this.#grow();
    const i = (this.#head + this.#count) & this.#mask;
    this.#start[i] = at;
    this.#len[i] = len;
    this.#handle[i] = h;
    this.#bufOff[i] = bufOff;
    this.#charge[i] = charge;
    this.#copied[i] = copied;
    this.#count++;
    this.#held(len);
  }

  #held(n: number): void {
    const st = this.#stats;
    st.retxHeldBytes += n;
    if (st.retxHeldBytes > st.retxHighWaterBytes) st.retxHighWaterBytes = st.retxHeldBytes;
  }

  #dropOldest(): void {
    const i = this.#head;
    this.#stats.retxHeldBytes -= this.#len[i]!;
    this.#budget.releaseRetx(this.#charge[i]!);
    this.#unref(this.#handle[i]!, this.#copied[i] === 1);
    this.#head = (i + 1) & this.#mask;
    this.#count--;
  }

  /** Double the ring (runs stay in FIFO order, re-laid out from index 0). */
  #grow(): void {
    const old = this.#start.length;
    const n = old * 2;
    const head = this.#head;
    const mask = this.#mask;
    const start = new Float64Array(n);
    const len = new Int32Array(n);
    const handle = new Int32Array(n);
    const bufOff = new Float64Array(n);
    const charge = new Int32Array(n);
    const copied = new Uint8Array(n);
    for (let k = 0; k < this.#count; k++) {
      const i = (head + k) & mask;
      start[k] = this.#start[i]!;
      len[k] = this.#len[i]!;
      handle[k] = this.#handle[i]!;
      bufOff[k] = this.#bufOff[i]!;
      charge[k] = this.#charge[i]!;
      copied[k] = this.#copied[i]!;
    }
    this.#start = start;
    this.#len = len;
    this.#handle = handle;
    this.#bufOff = bufOff;
    this.#charge = charge;
    this.#copied = copied;
    this.#head = 0;
    this.#mask = n - 1;
  }

  /** Compare `n` bytes; merge each differing run into the pending one or flush and start anew. */
  #compare(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number, at: number): void {
    for (let s = firstDiff(a, ao, b, bo, 0, n); s < n; ) {
      const e = diffEnd(a, ao, b, bo, s, n);
      if (this.#cLen > 0 && this.#cAt + this.#cLen === at + s) {
        this.#cLen += e - s;
      } else {
        this.#flush();
        this.#cAt = at + s;
        this.#cLen = e - s;
      }
      s = firstDiff(a, ao, b, bo, e, n);
    }
  }

  #flush(): void {
    const n = this.#cLen;
    if (n === 0) return;
    this.#cLen = 0;
    const st = this.#stats;
    st.overlapConflicts++;
    st.conflictBytes += n;
    st.retxConflictBytes += n;
    this.#sink.overlapConflict?.(this.#dir, this.#cAt, n);
  }
}
