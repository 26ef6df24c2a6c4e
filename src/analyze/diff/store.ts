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

/** A growable Float64Array of fixed-stride records (nothing allocated until the first record). */
export class F64Records {
  data: Float64Array = NO_RECORDS;
  /** Records held. */
  count = 0;
  readonly stride: number;
  readonly #initial: number;

  constructor(stride: number, initial = 8) {
    this.stride = stride;
    this.#initial = initial;
  }

  /** Room for one more record; returns its base index. */
  add(): number {
    const base = this.count * this.stride;
    if (base + this.stride > this.data.length) {
      const n = new Float64Array(Math.max(this.data.length * 2, this.stride * this.#initial));
      n.set(this.data);
      this.data = n;
    }
    this.count++;
    return base;
  }
}

/** Bytes per slab of a capture's shared byte store. */
const SLAB_BYTES = 4 * 1024 * 1024;

/**
 * One capture's payload bytes, appended in arrival order into large slabs shared by every
 * flow (no per-stream growth and copying while reading; a stream is laid out contiguously
 * only around a divergence, see StreamStore.range).
 */
export class Slab {
  readonly slabs: Uint8Array[] = [];
  #cur: Uint8Array = new Uint8Array(0);
  #pos = 0;
  /** Index of the slab the last `append` wrote to, and where. */
  lastSlab = -1;
  lastOff = 0;
  /** A plain Uint8Array over the last source buffer (Buffer.subarray is slower: it builds a Buffer). */
  #src: Uint8Array = EMPTY;
  #alias: Uint8Array = EMPTY;

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

  append(src: Uint8Array, off: number, len: number): void {
    if (this.#pos + len > this.#cur.length) {
      this.#cur = new Uint8Array(Math.max(SLAB_BYTES, len));
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
  readonly deliveries = new F64Records(DELIVERY_STRIDE, 32);
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

  constructor(slab: Slab) {
    this.slab = slab;
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
      const src = slabs[d[b + 7]!]!;
      const o = d[b + 8]! + (a - start);
      out.set(src.subarray(o, o + (e - a)), a - from);
    }
    return out;
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
  readonly items = new F64Records(DATAGRAM_STRIDE);

  constructor(slab: Slab) {
    this.slab = slab;
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
