/**
 * Defragmenter: IPv4 (RFC 791) and IPv6 (RFC 8200 §4.5) reassembly with hard limits.
 *
 * `push(v, nowMs)` takes a decoded fragment. It returns NO_HANDLE while the datagram is
 * incomplete or when the fragment was dropped (`lastDrop` says why, `stats()` counts it),
 * and the pool handle of the whole datagram once the last missing piece arrives. That frame
 * is new (the copy is unavoidable): the first fragment's Ethernet header (VLAN tags included,
 * a vnet header never) and IP header with the fragmentation fields removed, then the whole
 * payload, so `decodeFrame(v, pool.buffer(h), pool.offset(h), pool.length(h))` decodes its
 * transport layer normally. The caller owns that handle and releases it.
 *
 * Fragments are held in pool slots until their datagram completes or dies: copied in
 * (from the Ethernet header to the end of the IP datagram), or, when the caller passes the
 * handle the fragment already lives in, retained without a copy.
 *
 * Limits and their policies (the counter names are `stats()` fields):
 * - `maxDatagrams` (default 1024) datagrams in progress: a new one evicts the oldest
 *   (`datagramsDropped.evicted`).
 * - `maxBytes` (default 4 MiB) of fragment bytes held in all: the oldest other datagrams are
 *   evicted until the new fragment fits (`evicted`); a single datagram that cannot fit is
 *   dropped (`noMemory`).
 * - `maxFragmentsPerDatagram` (default 64): one more drops the datagram (`tooManyFragments`).
 * - Reassembled size: IPv4 header + payload, or IPv6 unfragmentable extension headers +
 *   payload, above 65,535 bytes drops the datagram (`tooLarge`; RFC 8200 §4.5, and the
 *   "ping of death" for IPv4).
 * - Timeout from the first fragment seen (never extended): 30 s IPv4, 60 s IPv6 (RFC 8200
 *   §4.5). Checked by `expire(nowMs)` and lazily when a late fragment arrives (`timeout`).
 * - Overlapping fragments drop the whole datagram (`overlap`): RFC 5722 for IPv6, and the
 *   same for IPv4 on purpose (overlaps are how IDS/firewall evasion works, RFC 1858 / 3128;
 *   a reassembler that picks "first" or "last" would disagree with one of the two guests).
 *   An exact duplicate (same offset, length and bytes) is not an overlap: it is ignored and
 *   counted (`duplicates`), as RFC 8200 §4.5 allows.
 * - Inconsistent tails (two last fragments with different ends, data past the end, a
 *   non-last fragment reaching the end) drop the datagram (`inconsistent`).
 * - A non-last fragment whose length is 0 or not a multiple of 8 is dropped alone
 *   (`badLength`, RFC 8200 §4.5).
 * - Tiny first fragments: the first fragment must hold the whole header chain and transport
 *   header (RFC 7112 for IPv6; RFC 1858 for IPv4 TCP), i.e. it must decode with status OK;
 *   otherwise the datagram is dropped (`tinyFirst`).
 * - A snaplen-truncated fragment cannot be reassembled: the datagram is dropped (`truncated`).
 * - Pool exhausted while holding a fragment or building the result: the datagram is dropped
 *   (`poolExhausted`).
 * Bookkeeping is preallocated: 20 bytes per fragment slot (maxDatagrams × maxFragments, 1.3 MiB
 * with the defaults) plus ~100 bytes per datagram context; fragment bytes live in the pool.
 * After a datagram is dropped, its key stays "poisoned" until its timeout, so its remaining
 * fragments are dropped on arrival (`poisonedFragments`) instead of starting a datagram that
 * can never complete (RFC 5722: "including those not yet received").
 */
import { ColoError } from '../errors.js';
import { LAYER_FRAG, LAYER_IPV4, LAYER_IPV6 } from '../packet/layer.js';
import { NO_HANDLE, type PacketPool } from '../packet/pool.js';
import { NOTE_TRUNCATED_PAYLOAD } from '../packet/reasons.js';
import type { PacketView } from '../packet/view.js';
import { finishIpv4, finishIpv6, MAX_IP_LENGTH, nextHeaderPos } from './defrag-build.js';
import { FRAG_KEY_WORDS, fragKey } from './frag-key.js';
import { hashWords, randomSeed } from './hash.js';
import { KeyIndex } from './key-index.js';
import { LruLists } from './lru.js';

export interface DefragOptions {
  /** Where fragments are held and results are built. */
  pool: PacketPool;
  maxDatagrams?: number;
  maxFragmentsPerDatagram?: number;
  maxBytes?: number;
  timeoutV4Ms?: number;
  timeoutV6Ms?: number;
  /** Hash seed (default random). */
  seed?: number;
}

/** `lastDrop` values: 0 = not dropped (pending, or the datagram completed). */
export const DEFRAG_OK = 0;
export const DROP_NOT_FRAGMENT = 1;
export const DROP_TRUNCATED = 2;
export const DROP_BAD_LENGTH = 3;
export const DROP_DUPLICATE = 4;
export const DROP_OVERLAP = 5;
export const DROP_INCONSISTENT = 6;
export const DROP_TOO_LARGE = 7;
export const DROP_TOO_MANY_FRAGMENTS = 8;
export const DROP_TINY_FIRST = 9;
export const DROP_POOL_EXHAUSTED = 10;
export const DROP_POISONED = 11;
export const DROP_NO_MEMORY = 12;

export const DefragDrop = {
  OK: DEFRAG_OK,
  NOT_FRAGMENT: DROP_NOT_FRAGMENT,
  TRUNCATED: DROP_TRUNCATED,
  BAD_LENGTH: DROP_BAD_LENGTH,
  DUPLICATE: DROP_DUPLICATE,
  OVERLAP: DROP_OVERLAP,
  INCONSISTENT: DROP_INCONSISTENT,
  TOO_LARGE: DROP_TOO_LARGE,
  TOO_MANY_FRAGMENTS: DROP_TOO_MANY_FRAGMENTS,
  TINY_FIRST: DROP_TINY_FIRST,
  POOL_EXHAUSTED: DROP_POOL_EXHAUSTED,
  POISONED: DROP_POISONED,
  NO_MEMORY: DROP_NO_MEMORY,
} as const;

export interface DefragStats {
  /** Fragments pushed (non-fragments excluded). */
  fragments: number;
  /** Datagrams completed and returned. */
  reassembled: number;
  /** Datagrams in progress now, and keys poisoned now. */
  pending: number;
  poisoned: number;
  /** Fragment bytes held now, and the most ever. */
  heldBytes: number;
  heldHighWater: number;
  heldFragments: number;
  /** Pushes that were dropped alone (the datagram, if any, lives on). */
  notFragment: number;
  badLength: number;
  duplicates: number;
  poisonedFragments: number;
  /** Whole datagrams dropped, by reason. */
  datagramsDropped: {
    overlap: number;
    inconsistent: number;
    tooLarge: number;
    tooManyFragments: number;
    tinyFirst: number;
    truncated: number;
    poolExhausted: number;
    noMemory: number;
    timeout: number;
    evicted: number;
  };
}

const V4 = 0;
const V6 = 1;
const DEFAULT_EXPIRE_WORK = 1024;

function positiveInt(name: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 1 || v > max) throw new ColoError('ERR_INVALID_ARGUMENT', `defrag ${name} must be an integer in 1..${max}, got ${v}`);
  return v;
}

export class Defragmenter {
  /** Why the last `push` returned NO_HANDLE (DROP_*), or DEFRAG_OK. */
  lastDrop = DEFRAG_OK;
  readonly maxDatagrams: number;
  readonly maxFragments: number;
  readonly maxBytes: number;
  readonly timeoutV4Ms: number;
  readonly timeoutV6Ms: number;

  readonly #pool: PacketPool;
  readonly #idx: KeyIndex;
  /** One list per IP version, in creation order (timeouts run from the first fragment). */
  readonly #lru: LruLists;
  readonly #probe = new Int32Array(FRAG_KEY_WORDS);
  readonly #seed: number;

  // Per datagram context.
  readonly #created: Float64Array;
  readonly #count: Int32Array;
  /** Reassembled payload length once the last fragment is known, else -1. */
  readonly #total: Int32Array;
  /** Largest fragment end seen. */
  readonly #maxEnd: Int32Array;
  /** Payload bytes held (fragments never overlap, so equal to `total` means complete). */
  readonly #recv: Int32Array;
  readonly #held: Int32Array;
  readonly #poison: Uint8Array;
  /** From the first fragment: bytes before the payload in the output (L2 + L3 headers)… */
  readonly #hdrLen: Int32Array;
  /** …the IP header's offset within them… */
  readonly #l3Rel: Int32Array;
  /** …and for IPv6 the Next Header byte to patch and its new value. */
  readonly #nhRel: Int32Array;
  readonly #nhVal: Uint8Array;

  // Per fragment, `maxFragments` slots per context, sorted by offset.
  readonly #fOff: Int32Array;
  readonly #fLen: Int32Array;
  readonly #fHandle: Int32Array;
  /** Absolute offsets in `pool.buffer(handle)` of the held frame's start and of the fragment data. */
  readonly #fFrame: Int32Array;
  readonly #fData: Int32Array;

  #heldBytes = 0;
  #heldHigh = 0;
  #heldFragments = 0;
  #poisonedNow = 0;
  #fragments = 0;
  #reassembled = 0;
  #notFragment = 0;
  #badLength = 0;
  #duplicates = 0;
  #poisonedFragments = 0;
  readonly #dd = { overlap: 0, inconsistent: 0, tooLarge: 0, tooManyFragments: 0, tinyFirst: 0, truncated: 0, poolExhausted: 0, noMemory: 0, timeout: 0, evicted: 0 };

  constructor(opts: DefragOptions) {
    this.#pool = opts.pool;
    this.maxDatagrams = positiveInt('maxDatagrams', opts.maxDatagrams ?? 1024, 1 << 20);
    this.maxFragments = positiveInt('maxFragmentsPerDatagram', opts.maxFragmentsPerDatagram ?? 64, 8192);
    this.maxBytes = positiveInt('maxBytes', opts.maxBytes ?? 4 * 1024 * 1024, 2 ** 31 - 1);
    this.timeoutV4Ms = opts.timeoutV4Ms ?? 30_000;
    this.timeoutV6Ms = opts.timeoutV6Ms ?? 60_000;
    if (!(this.timeoutV4Ms > 0 && this.timeoutV6Ms > 0)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `defrag timeouts must be positive (got ${this.timeoutV4Ms} / ${this.timeoutV6Ms} ms)`);
    }
    this.#seed = opts.seed ?? randomSeed();
    const n = this.maxDatagrams;
    this.#idx = new KeyIndex(FRAG_KEY_WORDS, n);
    this.#lru = new LruLists(n, 2);
    this.#created = new Float64Array(n);
    this.#count = new Int32Array(n);
    this.#total = new Int32Array(n);
    this.#maxEnd = new Int32Array(n);
    this.#recv = new Int32Array(n);
    this.#held = new Int32Array(n);
    this.#poison = new Uint8Array(n);
    this.#hdrLen = new Int32Array(n);
    this.#l3Rel = new Int32Array(n);
    this.#nhRel = new Int32Array(n);
    this.#nhVal = new Uint8Array(n);
    const nf = n * this.maxFragments;
    this.#fOff = new Int32Array(nf);
    this.#fLen = new Int32Array(nf);
    this.#fHandle = new Int32Array(nf);
    this.#fFrame = new Int32Array(nf);
    this.#fData = new Int32Array(nf);
  }

  /**
   * Add fragment `v` (decoded by `decodeFrame`) seen at `nowMs`. Returns the handle of the
   * reassembled datagram when this fragment completes one, else NO_HANDLE (`lastDrop` is
   * DEFRAG_OK when the fragment was kept, else the DROP_* reason).
   *
   * @param handle the pool handle whose slot holds `v.buf`'s frame, if any: the fragment is
   *   then retained instead of copied (the caller keeps its own reference and releases it).
   */
  push(v: PacketView, nowMs: number, handle = NO_HANDLE): number {
    this.lastDrop = DEFRAG_OK;
    const layers = v.layers;
    if ((layers & LAYER_FRAG) === 0 || (layers & (LAYER_IPV4 | LAYER_IPV6)) === 0) {
      this.#notFragment++;
      return this.#drop(DROP_NOT_FRAGMENT);
    }
    this.#fragments++;
    const v6 = v.ipVersion === 6;
    const off = v.fragOffset;
    const mf = v.moreFragments;
    const dataStart = v6 ? v.ip6FragHdrOff + 8 : v.l3Off + v.ipHdrLen;
    const len = v.ipEnd - dataStart;
    const end = off + len;

    const probe = this.#probe;
    fragKey(v, probe);
    const hash = hashWords(probe, 0, FRAG_KEY_WORDS, this.#seed);
    let ctx = this.#idx.find(probe, hash);
    if (ctx >= 0 && nowMs - this.#created[ctx]! >= (v6 ? this.timeoutV6Ms : this.timeoutV4Ms)) {
      this.#expireCtx(ctx);
      ctx = -1;
    }
    if (ctx < 0) ctx = this.#newContext(probe, hash, v6, nowMs);
    if (this.#poison[ctx] === 1) {
      this.#poisonedFragments++;
      return this.#drop(DROP_POISONED);
    }
    if ((v.notes & NOTE_TRUNCATED_PAYLOAD) !== 0) return this.#dropDatagram(ctx, DROP_TRUNCATED);
    if (mf && (len === 0 || (len & 7) !== 0)) {
      this.#badLength++;
      this.#freeIfEmpty(ctx);
      return this.#drop(DROP_BAD_LENGTH);
    }
    // The reassembled length field must fit 16 bits (checked again with the first fragment's header).
    const lenBase = v6 ? v.ip6FragHdrOff - v.l3Off - 40 : v.ipHdrLen;
    if (lenBase + end > MAX_IP_LENGTH) return this.#dropDatagram(ctx, DROP_TOO_LARGE);
    if (off === 0 && v.status !== 0) return this.#dropDatagram(ctx, DROP_TINY_FIRST);
    const total = this.#total[ctx]!;
    if (mf ? total >= 0 && end >= total : (total >= 0 && total !== end) || this.#maxEnd[ctx]! > end) {
      return this.#dropDatagram(ctx, DROP_INCONSISTENT);
    }

    // Sorted insert position: after every fragment starting at or before `off`.
    const base = ctx * this.maxFragments;
    const count = this.#count[ctx]!;
    const fOff = this.#fOff;
    const fLen = this.#fLen;
    let pos = count;
    while (pos > 0 && fOff[base + pos - 1]! > off) pos--;
    if (pos > 0) {
      const p = base + pos - 1;
      if (fOff[p] === off && fLen[p] === len && len > 0) {
        if (this.#sameBytes(p, v.buf, dataStart, len)) {
          this.#duplicates++;
          return this.#drop(DROP_DUPLICATE);
        }
        return this.#dropDatagram(ctx, DROP_OVERLAP);
      }
      if (fOff[p]! + fLen[p]! > off) return this.#dropDatagram(ctx, DROP_OVERLAP);
    }
    if (pos < count && end > fOff[base + pos]!) return this.#dropDatagram(ctx, DROP_OVERLAP);
    if (count === this.maxFragments) return this.#dropDatagram(ctx, DROP_TOO_MANY_FRAGMENTS);

    // Memory: make room by evicting older datagrams.
    const frameStart = v.ethOff;
    const need = v.ipEnd - frameStart;
    while (this.#heldBytes + need > this.maxBytes) {
      const victim = this.#oldest(ctx);
      if (victim < 0) return this.#dropDatagram(ctx, DROP_NO_MEMORY);
      this.#dd.evicted++;
      this.#freeContext(victim);
    }

    // Hold the fragment: retain the caller's slot, or copy the frame into a new one.
    const pool = this.#pool;
    let h: number;
    let abs: number;
    if (handle !== NO_HANDLE && pool.refCount(handle) > 0 && pool.buffer(handle) === v.buf) {
      pool.retain(handle);
      h = handle;
      abs = frameStart;
    } else {
      h = pool.copyIn(v.buf, frameStart, need);
      if (h === NO_HANDLE) return this.#dropDatagram(ctx, DROP_POOL_EXHAUSTED);
      abs = pool.offset(h);
    }
    for (let i = base + count; i > base + pos; i--) {
      fOff[i] = fOff[i - 1]!;
      fLen[i] = fLen[i - 1]!;
      this.#fHandle[i] = this.#fHandle[i - 1]!;
      this.#fFrame[i] = this.#fFrame[i - 1]!;
      this.#fData[i] = this.#fData[i - 1]!;
    }
    const at = base + pos;
    fOff[at] = off;
    fLen[at] = len;
    this.#fHandle[at] = h;
    this.#fFrame[at] = abs;
    this.#fData[at] = abs + (dataStart - frameStart);
    this.#count[ctx] = count + 1;
    this.#recv[ctx] += len;
    this.#held[ctx] += need;
    this.#heldBytes += need;
    this.#heldFragments++;
    if (this.#heldBytes > this.#heldHigh) this.#heldHigh = this.#heldBytes;
    if (end > this.#maxEnd[ctx]!) this.#maxEnd[ctx] = end;
    if (!mf) this.#total[ctx] = end;
    if (off === 0) {
      if (v6) {
        const fh = v.ip6FragHdrOff;
        const nhPos = nextHeaderPos(v.buf, v.l3Off, fh);
        if (nhPos < 0) return this.#dropDatagram(ctx, DROP_TINY_FIRST);
        this.#hdrLen[ctx] = fh - frameStart;
        this.#nhRel[ctx] = nhPos - frameStart;
        this.#nhVal[ctx] = v.buf[fh]!;
      } else {
        this.#hdrLen[ctx] = dataStart - frameStart;
      }
      this.#l3Rel[ctx] = v.l3Off - frameStart;
    }
    const t = this.#total[ctx]!;
    if (t >= 0 && this.#recv[ctx] === t) return this.#assemble(ctx, v6, nowMs);
    return NO_HANDLE;
  }

  /**
   * Drop datagrams whose time ran out at `nowMs` (at most `maxWork`, default 1024); returns
   * how many contexts went (poisoned keys included).
   */
  expire(nowMs: number, maxWork = DEFAULT_EXPIRE_WORK): number {
    let done = 0;
    const lru = this.#lru;
    for (let list = 0; list < 2; list++) {
      const limit = list === V6 ? this.timeoutV6Ms : this.timeoutV4Ms;
      for (let c = lru.head(list); c >= 0 && done < maxWork; c = lru.head(list)) {
        if (nowMs - this.#created[c]! < limit) break;
        this.#expireCtx(c);
        done++;
      }
    }
    return done;
  }

  /** Drop everything held (e.g. at shutdown); nothing is counted as a drop. */
  clear(): void {
    const live = this.#idx.live;
    for (let c = 0; c < this.maxDatagrams; c++) if (live[c] === 1) this.#freeContext(c);
  }

  stats(): DefragStats {
    return {
      fragments: this.#fragments,
      reassembled: this.#reassembled,
      pending: this.#idx.size - this.#poisonedNow,
      poisoned: this.#poisonedNow,
      heldBytes: this.#heldBytes,
      heldHighWater: this.#heldHigh,
      heldFragments: this.#heldFragments,
      notFragment: this.#notFragment,
      badLength: this.#badLength,
      duplicates: this.#duplicates,
      poisonedFragments: this.#poisonedFragments,
      datagramsDropped: { ...this.#dd },
    };
  }

  // ---- internals ----

  #drop(reason: number): number {
    this.lastDrop = reason;
    return NO_HANDLE;
  }

  #newContext(probe: Int32Array, hash: number, v6: boolean, nowMs: number): number {
    if (this.#idx.size === this.maxDatagrams) {
      // Reclaim timed-out contexts first, then evict the oldest.
      if (this.expire(nowMs, 4) === 0) {
        const victim = this.#oldest(-1);
        if (this.#poison[victim] === 0) this.#dd.evicted++;
        this.#freeContext(victim);
      }
    }
    const c = this.#idx.insert(probe, hash);
    this.#lru.pushTail(v6 ? V6 : V4, c);
    this.#created[c] = nowMs;
    this.#count[c] = 0;
    this.#total[c] = -1;
    this.#maxEnd[c] = 0;
    this.#recv[c] = 0;
    this.#held[c] = 0;
    this.#poison[c] = 0;
    this.#hdrLen[c] = -1;
    return c;
  }

  /** The oldest context other than `except` (-1 when there is none). */
  #oldest(except: number): number {
    const lru = this.#lru;
    let best = -1;
    for (let list = 0; list < 2; list++) {
      let c = lru.head(list);
      if (c === except) c = lru.next(c);
      if (c >= 0 && (best < 0 || this.#created[c]! < this.#created[best]!)) best = c;
    }
    return best;
  }

  /** Release a context's fragments; keep the context as a poisoned key until its timeout. */
  #dropDatagram(ctx: number, reason: number): number {
    const dd = this.#dd;
    switch (reason) {
      case DROP_OVERLAP: dd.overlap++; break;
      case DROP_INCONSISTENT: dd.inconsistent++; break;
      case DROP_TOO_LARGE: dd.tooLarge++; break;
      case DROP_TOO_MANY_FRAGMENTS: dd.tooManyFragments++; break;
      case DROP_TINY_FIRST: dd.tinyFirst++; break;
      case DROP_TRUNCATED: dd.truncated++; break;
      case DROP_POOL_EXHAUSTED: dd.poolExhausted++; break;
      case DROP_NO_MEMORY: dd.noMemory++; break;
    }
    this.#releaseFragments(ctx);
    this.#poison[ctx] = 1;
    this.#poisonedNow++;
    return this.#drop(reason);
  }

  #expireCtx(ctx: number): void {
    if (this.#poison[ctx] === 0) this.#dd.timeout++;
    this.#freeContext(ctx);
  }

  #freeIfEmpty(ctx: number): void {
    if (this.#count[ctx] === 0 && this.#total[ctx] === -1 && this.#poison[ctx] === 0) this.#freeContext(ctx);
  }

  #releaseFragments(ctx: number): void {
    const base = ctx * this.maxFragments;
    const n = this.#count[ctx]!;
    for (let i = 0; i < n; i++) this.#pool.release(this.#fHandle[base + i]!);
    this.#heldFragments -= n;
    this.#heldBytes -= this.#held[ctx]!;
    this.#count[ctx] = 0;
    this.#held[ctx] = 0;
    this.#recv[ctx] = 0;
  }

  #freeContext(ctx: number): void {
    this.#releaseFragments(ctx);
    if (this.#poison[ctx] === 1) {
      this.#poison[ctx] = 0;
      this.#poisonedNow--;
    }
    this.#lru.unlink(ctx);
    this.#idx.remove(ctx);
  }

  #sameBytes(p: number, b: Uint8Array, at: number, len: number): boolean {
    const src = this.#pool.buffer(this.#fHandle[p]!);
    const o = this.#fData[p]!;
    for (let i = 0; i < len; i++) if (src[o + i] !== b[at + i]) return false;
    return true;
  }

  /** Every byte is here: build the datagram in a new slot and free the context. */
  #assemble(ctx: number, v6: boolean, nowMs: number): number {
    const pool = this.#pool;
    const base = ctx * this.maxFragments;
    const total = this.#total[ctx]!;
    const hdrLen = this.#hdrLen[ctx]!;
    const l3Rel = this.#l3Rel[ctx]!;
    const lenBase = v6 ? hdrLen - l3Rel - 40 : hdrLen - l3Rel;
    if (lenBase + total > MAX_IP_LENGTH) return this.#dropDatagram(ctx, DROP_TOO_LARGE);
    const outLen = hdrLen + total;
    const h = outLen <= pool.maxSlotSize ? pool.acquire(outLen) : NO_HANDLE;
    if (h === NO_HANDLE) return this.#dropDatagram(ctx, DROP_POOL_EXHAUSTED);
    const dst = pool.buffer(h);
    const o = pool.offset(h);
    // Fragment 0 starts at offset 0 (complete coverage): its frame gives the headers.
    const first = this.#fHandle[base]!;
    pool.buffer(first).copy(dst, o, this.#fFrame[base]!, this.#fFrame[base]! + hdrLen);
    const n = this.#count[ctx]!;
    for (let i = 0; i < n; i++) {
      const f = base + i;
      const d = this.#fData[f]!;
      pool.buffer(this.#fHandle[f]!).copy(dst, o + hdrLen + this.#fOff[f]!, d, d + this.#fLen[f]!);
    }
    if (v6) finishIpv6(dst, o + l3Rel, o + this.#nhRel[ctx]!, this.#nhVal[ctx]!, lenBase, total);
    else finishIpv4(dst, o + l3Rel, hdrLen - l3Rel, total);
    pool.time[h] = nowMs;
    this.#reassembled++;
    this.#freeContext(ctx);
    return h;
  }
}
