/**
 * ChunkQueue: the bytes one side of a TCP stream is ahead by, waiting for the other side to
 * send the same offsets, held ZERO COPY where possible.
 *
 * A FIFO of chunks, each either
 * - a reference to bytes in a pool slot (`handle`, absolute offset, length), holding one pool
 *   reference: used when the bytes were delivered from the slot of the segment being fed
 *   (the in-order case: nearly always);
 * - or a copy, in the queue's own ByteQueue: used for bytes delivered from elsewhere (an
 *   out-of-order piece the reassembler kept in another slot). Copies sit in the ByteQueue in
 *   chunk order, so the first copy chunk always starts at its head.
 * Compare and consume walk chunks from the head; a fully consumed reference chunk releases
 * its slot. Chunk bookkeeping is typed arrays grown by doubling (per connection, not per
 * packet); nothing is allocated per chunk.
 */
import type { PacketPool } from '../packet/pool.js';
import { ByteQueue } from './byte-queue.js';

const bufCompare = Buffer.prototype.compare;
const INITIAL_CHUNKS = 8;

export class ChunkQueue {
  readonly #pool: PacketPool;
  #copies = new ByteQueue();
  #handle = new Int32Array(INITIAL_CHUNKS);
  #off = new Int32Array(INITIAL_CHUNKS);
  #len = new Int32Array(INITIAL_CHUNKS);
  /** Ring: first chunk and count. */
  #first = 0;
  #count = 0;
  #bytes = 0;
  #refs = 0;

  constructor(pool: PacketPool) {
    this.#pool = pool;
  }

  /** Bytes queued. */
  get length(): number {
    return this.#bytes;
  }

  /** Chunks holding a pool reference (slots pinned). */
  get pinned(): number {
    return this.#refs;
  }

  /**
   * Append `buf[off, off + n)`. When those bytes lie inside pool slot `h` (pass -1 if there is
   * no candidate), the slot is retained instead of copying.
   */
  append(buf: Uint8Array, off: number, n: number, h: number): void {
    if (n <= 0) return;
    const pool = this.#pool;
    if (h >= 0 && pool.buffer(h) === buf) {
      const so = pool.offset(h);
      if (off >= so && off + n <= so + pool.slotSize(h)) {
        pool.retain(h);
        this.#push(h, off, n);
        this.#refs++;
        return;
      }
    }
    // A copy: extend the last chunk when it is a copy too.
    this.#copies.append(buf, off, n);
    if (this.#count > 0) {
      const last = (this.#first + this.#count - 1) % this.#handle.length;
      if (this.#handle[last]! < 0) {
        this.#len[last] += n;
        this.#bytes += n;
        return;
      }
    }
    this.#push(-1, 0, n);
  }

  /**
   * Compare the first `n` queued bytes (n ≤ length) with `src[off, off + n)`. Returns -1 when
   * equal, else the index of the first differing byte.
   */
  compare(src: Uint8Array, off: number, n: number): number {
    const cap = this.#handle.length;
    const pool = this.#pool;
    const copies = this.#copies;
    let copyAt = copies.headOffset;
    let done = 0;
    for (let c = this.#first; done < n; c = (c + 1) % cap) {
      const h = this.#handle[c]!;
      let len = this.#len[c]!;
      if (len > n - done) len = n - done;
      let b: Uint8Array;
      let bo: number;
      if (h >= 0) {
        b = pool.buffer(h);
        bo = this.#off[c]!;
      } else {
        b = copies.buffer!;
        bo = copyAt;
        copyAt += this.#len[c]!;
      }
      if (bufCompare.call(src, b, bo, bo + len, off + done, off + done + len) !== 0) {
        for (let k = 0; k < len; k++) if (src[off + done + k] !== b[bo + k]) return done + k;
      }
      done += len;
    }
    return -1;
  }

  /** Drop `n` bytes from the head, releasing slots no longer referenced. */
  consume(n: number): void {
    const cap = this.#handle.length;
    this.#bytes -= n;
    while (n > 0) {
      const c = this.#first;
      const len = this.#len[c]!;
      const h = this.#handle[c]!;
      const take = len < n ? len : n;
      if (h < 0) this.#copies.consume(take);
      if (take === len) {
        if (h >= 0) {
          this.#pool.release(h);
          this.#refs--;
        }
        this.#first = (c + 1) % cap;
        this.#count--;
      } else {
        this.#len[c] = len - take;
        if (h >= 0) this.#off[c] += take;
      }
      n -= take;
    }
    if (this.#count === 0) this.#first = 0;
  }

  /**
   * Copy every byte still held by reference into the queue's own store and release those
   * slots (cold path: O(queued bytes)). For when the frames the slots belong to have left the
   * engine (a shadow checkpoint released them) but their bytes must still be compared: a pin
   * then holds a whole slot (up to 64 KiB for a 1-byte tail) that input is waiting for.
   * Returns the slots released.
   */
  unpin(): number {
    const refs = this.#refs;
    if (refs === 0) return 0;
    const cap = this.#handle.length;
    const pool = this.#pool;
    const old = this.#copies;
    const fresh = new ByteQueue();
    let copyAt = old.headOffset;
    for (let k = 0, c = this.#first; k < this.#count; k++, c = (c + 1) % cap) {
      const h = this.#handle[c]!;
      const len = this.#len[c]!;
      if (h >= 0) {
        fresh.append(pool.buffer(h), this.#off[c]!, len);
        pool.release(h);
      } else {
        fresh.append(old.buffer!, copyAt, len);
        copyAt += len;
      }
    }
    this.#copies = fresh;
    this.#first = 0;
    this.#count = 0;
    this.#refs = 0;
    const bytes = this.#bytes;
    this.#bytes = 0;
    if (bytes > 0) this.#push(-1, 0, bytes);
    return refs;
  }

  /** Drop everything (slots released). */
  clear(): void {
    const cap = this.#handle.length;
    for (let i = 0, c = this.#first; i < this.#count; i++, c = (c + 1) % cap) {
      const h = this.#handle[c]!;
      if (h >= 0) this.#pool.release(h);
    }
    this.#first = 0;
    this.#count = 0;
    this.#bytes = 0;
    this.#refs = 0;
    this.#copies.clear();
  }

  /**
   * Where the byte at queue index `i` lives, for records (cold path): sets `at` to its buffer
   * and returns its offset there and, via `avail`, how many bytes follow it in that chunk.
   */
  locate(i: number, out: { buf: Uint8Array | null; off: number; avail: number }): void {
    const cap = this.#handle.length;
    let copyAt = this.#copies.headOffset;
    for (let k = 0, c = this.#first; k < this.#count; k++, c = (c + 1) % cap) {
      const h = this.#handle[c]!;
      const len = this.#len[c]!;
      if (i < len) {
        if (h >= 0) {
          out.buf = this.#pool.buffer(h);
          out.off = this.#off[c]! + i;
        } else {
          out.buf = this.#copies.buffer;
          out.off = copyAt + i;
        }
        out.avail = len - i;
        return;
      }
      i -= len;
      if (h < 0) copyAt += len;
    }
    out.buf = null;
    out.off = 0;
    out.avail = 0;
  }

  #push(h: number, off: number, n: number): void {
    if (this.#count === this.#handle.length) this.#grow();
    const c = (this.#first + this.#count) % this.#handle.length;
    this.#handle[c] = h;
    this.#off[c] = off;
    this.#len[c] = n;
    this.#count++;
    this.#bytes += n;
  }

  #grow(): void {
    const cap = this.#handle.length;
    const h = new Int32Array(cap * 2);
    const o = new Int32Array(cap * 2);
    const l = new Int32Array(cap * 2);
    for (let i = 0; i < this.#count; i++) {
      const c = (this.#first + i) % cap;
      h[i] = this.#handle[c]!;
      o[i] = this.#off[c]!;
      l[i] = this.#len[c]!;
    }
    this.#handle = h;
    this.#off = o;
    this.#len = l;
    this.#first = 0;
  }
}
