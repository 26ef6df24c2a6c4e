/**
 * EntryStore: every frame the compare engine holds, as a row of preallocated typed arrays
 * (struct of arrays, ids from a free-list stack): nothing is allocated per packet.
 *
 * An entry is one held frame: a primary frame waiting to be released, or a secondary frame
 * waiting for its partner. Each entry sits on:
 * - at most one per-flow queue (`next`): a flow's held primary frames in arrival order (the
 *   release order); see `FlowQueue`;
 * - at most one auxiliary list (`aux`): primary datagrams waiting for a partner, secondary
 *   datagrams / TCP segments waiting, primary fragments waiting for their datagram;
 * - one of two age lists (doubly linked): every held primary entry in arrival order (timeout
 *   scan, checkpoint flush order) or every held secondary entry (expiry).
 *
 * Capacity: every entry holds at least one pool reference, so the pool's slot count bounds
 * the entries in use; the store is sized from it and `alloc` throwing means a bug.
 */
import { ColoError } from '../errors.js';
import { NO_HANDLE } from '../packet/pool.js';

export const NIL = -1;

/** Entry kinds. */
export const K_TCP = 1;
export const K_DGRAM = 2;
/** A primary IP fragment: waiting for its datagram (staging), or a member of a completed one. */
export const K_FRAG = 3;
/** A secondary TCP segment waiting until its stream can be aligned. */
export const K_S_PENDING = 4;
/** A secondary datagram waiting for its primary partner. */
export const K_S_DGRAM = 5;

/** Entry flags. TCP: which control flags the segment carries. */
export const EF_SYN = 1 << 0;
export const EF_FIN = 1 << 1;
export const EF_RST = 1 << 2;
/** TCP segment without payload, SYN, FIN or RST. */
export const EF_PURE = 1 << 3;
/** TCP segment seen before its direction had a stream origin (nothing to compare it with). */
export const EF_NO_ORIGIN = 1 << 4;
/** Datagram paired with an equal secondary datagram. */
export const EF_MATCHED = 1 << 5;
/** Datagram paired with a different one: waits for the checkpoint. */
export const EF_MISMATCH = 1 << 6;
/** Fragment member of a completed datagram (`holder` names the entry that decides). */
export const EF_MEMBER = 1 << 7;

/** Age lists. */
export const AGE_NONE = 0;
export const AGE_PRIMARY = 1;
export const AGE_SECONDARY = 2;

/** Per-flow queue bookkeeping (kept by each flow object). */
export interface FlowQueue {
  qHead: number;
  qTail: number;
  /** Primary entries queued. */
  qCount: number;
  /** Their frame bytes. */
  qBytes: number;
}

export class EntryStore {
  readonly capacity: number;
  /** The pool handle released to the consumer (primary) or to the pool (secondary). */
  readonly handle: Int32Array;
  /** An engine-owned handle holding the bytes to compare (a reassembled datagram), or NO_HANDLE. */
  readonly cmpHandle: Int32Array;
  /** Absolute offset / length of the compared bytes in the compare buffer (datagrams). */
  readonly cmpOff: Int32Array;
  readonly cmpLen: Int32Array;
  /** Owner flow reference (engine-defined; negative values are special queues). */
  readonly flowRef: Int32Array;
  readonly dir: Uint8Array;
  readonly kind: Uint8Array;
  readonly flags: Uint16Array;
  /** TCP: the connection incarnation (ordinal) the segment belongs to. */
  readonly gen: Int32Array;
  /** TCP: sequence-space offsets relative to the incarnation's origin: first unit, end of data, end (incl. FIN). */
  readonly start: Float64Array;
  readonly dataEnd: Float64Array;
  readonly end: Float64Array;
  /** Datagrams: index of the datagram in its flow direction. */
  readonly index: Float64Array;
  /** Arrival time (ms). */
  readonly arrival: Float64Array;
  /** Frame bytes charged to the held budgets. */
  readonly bytes: Int32Array;
  /** Fragment key hash (staging). */
  readonly keyHash: Int32Array;
  /** Member → the entry whose state decides its release. */
  readonly holder: Int32Array;
  /** Per-flow queue link. */
  readonly next: Int32Array;
  /** Auxiliary list link. */
  readonly aux: Int32Array;
  readonly agePrev: Int32Array;
  readonly ageNext: Int32Array;
  readonly ageList: Uint8Array;

  readonly #free: Int32Array;
  #top: number;
  #inUse = 0;
  #highWater = 0;
  /** Age list heads/tails, indexed by AGE_PRIMARY / AGE_SECONDARY. */
  readonly #ageHead = new Int32Array(3).fill(NIL);
  readonly #ageTail = new Int32Array(3).fill(NIL);
  readonly #ageCount = new Int32Array(3);

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new ColoError('ERR_INVALID_ARGUMENT', `entry store capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.handle = new Int32Array(capacity);
    this.cmpHandle = new Int32Array(capacity);
    this.cmpOff = new Int32Array(capacity);
    this.cmpLen = new Int32Array(capacity);
    this.flowRef = new Int32Array(capacity);
    this.dir = new Uint8Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.flags = new Uint16Array(capacity);
    this.gen = new Int32Array(capacity);
    this.start = new Float64Array(capacity);
    this.dataEnd = new Float64Array(capacity);
    this.end = new Float64Array(capacity);
    this.index = new Float64Array(capacity);
    this.arrival = new Float64Array(capacity);
    this.bytes = new Int32Array(capacity);
    this.keyHash = new Int32Array(capacity);
    this.holder = new Int32Array(capacity);
    this.next = new Int32Array(capacity);
    this.aux = new Int32Array(capacity);
    this.agePrev = new Int32Array(capacity);
    this.ageNext = new Int32Array(capacity);
    this.ageList = new Uint8Array(capacity);
    this.#free = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.#free[i] = capacity - 1 - i;
    this.#top = capacity;
  }

  get inUse(): number {
    return this.#inUse;
  }

  get highWater(): number {
    return this.#highWater;
  }

  /** A fresh entry with every field reset; throws only if the store is exhausted (a bug: see above). */
  alloc(kind: number, handle: number, flowRef: number, dir: number, nowMs: number, bytes: number): number {
    if (this.#top === 0) throw new ColoError('ERR_INVALID_ARGUMENT', `compare entry store exhausted (${this.capacity} entries): more held frames than pool slots`);
    const e = this.#free[--this.#top]!;
    this.#inUse++;
    if (this.#inUse > this.#highWater) this.#highWater = this.#inUse;
    this.kind[e] = kind;
    this.handle[e] = handle;
    this.cmpHandle[e] = NO_HANDLE;
    this.cmpOff[e] = 0;
    this.cmpLen[e] = 0;
    this.flowRef[e] = flowRef;
    this.dir[e] = dir;
    this.flags[e] = 0;
    this.gen[e] = 0;
    this.start[e] = 0;
    this.dataEnd[e] = 0;
    this.end[e] = 0;
    this.index[e] = 0;
    this.arrival[e] = nowMs;
    this.bytes[e] = bytes;
    this.keyHash[e] = 0;
    this.holder[e] = NIL;
    this.next[e] = NIL;
    this.aux[e] = NIL;
    this.agePrev[e] = NIL;
    this.ageNext[e] = NIL;
    this.ageList[e] = AGE_NONE;
    return e;
  }

  /** Return an entry (unlinked from its age list first; the caller unlinked it from the others). */
  free(e: number): void {
    if (this.ageList[e] !== AGE_NONE) this.ageUnlink(e);
    this.kind[e] = 0;
    this.#free[this.#top++] = e;
    this.#inUse--;
  }

  // ---- age lists ----

  agePush(list: number, e: number): void {
    const t = this.#ageTail[list]!;
    this.agePrev[e] = t;
    this.ageNext[e] = NIL;
    if (t === NIL) this.#ageHead[list] = e;
    else this.ageNext[t] = e;
    this.#ageTail[list] = e;
    this.ageList[e] = list;
    this.#ageCount[list]++;
  }

  ageUnlink(e: number): void {
    const list = this.ageList[e]!;
    const p = this.agePrev[e]!;
    const n = this.ageNext[e]!;
    if (p === NIL) this.#ageHead[list] = n;
    else this.ageNext[p] = n;
    if (n === NIL) this.#ageTail[list] = p;
    else this.agePrev[n] = p;
    this.agePrev[e] = NIL;
    this.ageNext[e] = NIL;
    this.ageList[e] = AGE_NONE;
    this.#ageCount[list]--;
  }

  ageHead(list: number): number {
    return this.#ageHead[list]!;
  }

  ageCount(list: number): number {
    return this.#ageCount[list]!;
  }

  // ---- per-flow queues ----

  qPush(q: FlowQueue, e: number): void {
    this.next[e] = NIL;
    if (q.qTail === NIL) q.qHead = e;
    else this.next[q.qTail] = e;
    q.qTail = e;
    q.qCount++;
    q.qBytes += this.bytes[e]!;
  }

  /** Remove and return the queue's head (NIL when empty). */
  qShift(q: FlowQueue): number {
    const e = q.qHead;
    if (e === NIL) return NIL;
    q.qHead = this.next[e]!;
    if (q.qHead === NIL) q.qTail = NIL;
    this.next[e] = NIL;
    q.qCount--;
    q.qBytes -= this.bytes[e]!;
    return e;
  }
}

/** A singly linked FIFO through `EntryStore.aux` (head/tail kept by its owner). */
export interface AuxFifo {
  head: number;
  tail: number;
  count: number;
  bytes: number;
}

export function newAuxFifo(): AuxFifo {
  return { head: NIL, tail: NIL, count: 0, bytes: 0 };
}

export function auxPush(s: EntryStore, f: AuxFifo, e: number): void {
  s.aux[e] = NIL;
  if (f.tail === NIL) f.head = e;
  else s.aux[f.tail] = e;
  f.tail = e;
  f.count++;
  f.bytes += s.bytes[e]!;
}

export function auxShift(s: EntryStore, f: AuxFifo): number {
  const e = f.head;
  if (e === NIL) return NIL;
  f.head = s.aux[e]!;
  if (f.head === NIL) f.tail = NIL;
  s.aux[e] = NIL;
  f.count--;
  f.bytes -= s.bytes[e]!;
  return e;
}

/** Remove `e` from anywhere in `f` (walks the list: for the rare out-of-order removal). False if absent. */
export function auxRemove(s: EntryStore, f: AuxFifo, e: number): boolean {
  let prev = NIL;
  for (let x = f.head; x !== NIL; x = s.aux[x]!) {
    if (x === e) {
      const n = s.aux[x]!;
      if (prev === NIL) f.head = n;
      else s.aux[prev] = n;
      if (f.tail === x) f.tail = prev;
      s.aux[x] = NIL;
      f.count--;
      f.bytes -= s.bytes[x]!;
      return true;
    }
    prev = x;
  }
  return false;
}

/** Forget a FIFO's contents without touching the entries (they were freed or moved by the caller). */
export function auxReset(f: AuxFifo): void {
  f.head = NIL;
  f.tail = NIL;
  f.count = 0;
  f.bytes = 0;
}
