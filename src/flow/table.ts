/**
 * FlowTable: a bounded table of bidirectional IP flows for the hot path.
 *
 * - One entry per conversation: both directions find the same id (keys are normalised, see
 *   key.ts) and `lookup` reports which way the packet went in `table.dir`: 0 = initiator →
 *   responder. The initiator is the sender of the flow's first packet, except when that packet
 *   is a TCP SYN-ACK: then its receiver (it sent the SYN we missed).
 * - Typed arrays only (struct of arrays indexed by flow id), keys compared in place in a key
 *   arena, seeded murmur3 hashing against hash flooding: `lookup` allocates nothing. It
 *   compares the key with the previous lookup's flow first: consecutive packets of one flow
 *   (the common case) skip hashing and the bucket walk.
 * - A `data` slot per flow belongs to the owner (the stage that uses the table: reassembler,
 *   compare…). The table never looks inside it.
 *
 * Limit policy (every limit has a cap, a policy and a counter):
 * - `capacity` = `maxFlows` (default 2^20), lowered to fit `memoryBudgetBytes` (default
 *   256 MiB) if needed. All arrays are allocated up front: 157 bytes per flow plus 8–16 for
 *   hash buckets, i.e. 165 MiB for the default 2^20 flows (BYTES_PER_FLOW, tableBytes();
 *   `stats().memoryBytes` is exact). Owner data hangs off `data` and is not counted.
 * - When full, a new flow first reclaims a few already-expired entries, then evicts the least
 *   recently used flow (one entry, never a wipe; QEMU's colo-compare clears all its 16,384
 *   connections and their queued packets at once). Counted as `removed.evicted`.
 * - Idle timeouts per state (table-options.ts), TCP close after FIN/FIN/ACK or RST plus a
 *   linger. `expire(nowMs, maxWork)` reclaims them incrementally (bounded work per call, no
 *   scanning: one LRU list per state, oldest first). A lookup that finds an expired entry
 *   retires it and starts a new flow, so results never depend on when `expire` last ran.
 * - A TCP SYN (without ACK) on a CLOSED flow is a new connection reusing the ports: the old
 *   entry is retired (reason closed/rst, counted as `portReuse` too) and a new flow starts.
 *
 * Removal contract: `onRemove(id, reason, data)` runs BEFORE the entry is freed or its id
 * reused, for every removal (closed, rst, idle, evicted, cleared). The owner must release
 * what it holds for that flow inside the callback; it cannot refuse or delay the removal, and
 * it must not call back into the table's mutating methods (lookup/expire/remove/clear throw
 * ERR_FLOW_REENTRANT if it does). Read accessors are fine.
 *
 * Time is the caller's `nowMs` (capture time when replaying), never a clock read here.
 * Times are expected not to go backwards; if they do, entries just expire late.
 */
import { ColoError } from '../errors.js';
import { formatEndpoint } from '../packet/addr.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../packet/proto.js';
import type { PacketView } from '../packet/view.js';
import {
  F_INIT_LO,
  F_RST,
  flowStateName,
  STATE_COUNT,
  STATE_ICMP,
  STATE_OTHER,
  STATE_TCP_CLOSED,
  STATE_TCP_CLOSING,
  STATE_TCP_EMBRYONIC,
  STATE_TCP_ESTABLISHED,
  STATE_UDP,
  TCP_ACK,
  TCP_SYN,
  tcpInitialState,
  trackTcp,
  type FlowStateName,
} from './flow-state.js';
import { hashWords, randomSeed } from './hash.js';
import { FLOW_KEY_WORDS, flowKey, keyAddrInto, keyParts, MISS_FRAGMENT, MISS_NOT_IP, SRC_IS_LO } from './key.js';
import { KeyIndex } from './key-index.js';
import { LruLists, NO_LIST } from './lru.js';
import {
  DEFAULT_MAX_FLOWS,
  DEFAULT_MEMORY_BUDGET,
  effectiveCapacity,
  resolveTimeouts,
  type FlowTimeouts,
} from './table-options.js';

export type RemoveReason = 'closed' | 'rst' | 'idle' | 'evicted' | 'cleared';

export interface FlowTableOptions<T> {
  /** Most flows held at once (default 2^20). */
  maxFlows?: number;
  /** Cap on the table's own arrays in bytes (default 256 MiB); lowers the capacity if needed. */
  memoryBudgetBytes?: number;
  timeouts?: Partial<FlowTimeouts>;
  /** Told before any entry goes away; see the removal contract above. */
  onRemove?: (id: number, reason: RemoveReason, data: T | undefined) => void;
  /** Hash seed (default: random per table). Fix it only in tests. */
  seed?: number;
}

/** `table.miss` after a lookup returned -1. */
export const LOOKUP_NOT_IP = 1;
export const LOOKUP_FRAGMENT = 2;
export const LOOKUP_UNDECODED = 3;

export interface FlowTableStats {
  size: number;
  capacity: number;
  highWater: number;
  /** Bytes allocated by the table's arrays (owner data not included). */
  memoryBytes: number;
  lookups: number;
  /** Lookups that found a live entry. */
  hits: number;
  /** Flows created. */
  created: number;
  misses: { notIp: number; fragment: number; undecoded: number };
  removed: Record<RemoveReason, number>;
  /** TCP SYNs that replaced a closed flow on the same ports (also counted in removed). */
  portReuse: number;
  /** Flows per state right now. */
  byState: Record<FlowStateName, number>;
  /** Longest hash chain (scans the buckets: call it sparingly). */
  longestChain: number;
}

/** A cold-path snapshot of one flow. */
export interface FlowInfo {
  id: number;
  /** Creation order (0, 1, 2… over the table's life): stable across id reuse. */
  serial: number;
  proto: number;
  state: FlowStateName | 'NONE';
  ipVersion: 4 | 6;
  vlan: number;
  innerVlan: number;
  /** `"IP:PORT"` (IPv6 in brackets) of the initiator and the responder. */
  initiator: string;
  responder: string;
  createdMs: number;
  lastSeenMs: number;
  /** Indexed by direction: [initiator → responder, responder → initiator]. */
  packets: [number, number];
  /** IP datagram bytes (IP header included, L2 excluded), per direction. */
  bytes: [number, number];
}

/** `#meta` layout: doubles per flow and their offsets. */
const META_STRIDE = 8;
const M_CREATED = 0;
const M_LAST = 1;
const M_TOUCH = 2;
const M_FLAGS = 3;
/** Packets per direction at M_PKTS + dir, bytes at M_BYTES + dir. */
const M_PKTS = 4;
const M_BYTES = 6;

/** Removed entries reclaimed before a new flow evicts a live one. */
const RECLAIM_ON_FULL = 4;
/** Default `expire` work bound. */
const DEFAULT_EXPIRE_WORK = 4096;

export class FlowTable<T = unknown> {
  /** Direction of the last looked-up packet: 0 = initiator → responder, 1 = the reverse. */
  dir: 0 | 1 = 0;
  /** True when the last lookup created its flow. */
  created = false;
  /** Why the last lookup returned -1 (LOOKUP_*), 0 after a hit or creation. */
  miss = 0;
  /** Owner data per flow id; cleared (undefined) when the flow goes. */
  readonly data: (T | undefined)[];
  readonly capacity: number;
  readonly timeouts: Readonly<FlowTimeouts>;

  readonly #idx: KeyIndex;
  readonly #lru: LruLists;
  readonly #probe = new Int32Array(FLOW_KEY_WORDS);
  /** Address bytes for `endpoints` (a Uint8Array stores each word's low byte). */
  readonly #addrScratch = new Uint8Array(16);
  readonly #seed: number;
  readonly #onRemove: ((id: number, reason: RemoveReason, data: T | undefined) => void) | undefined;
  /** Per-state idle timeout, indexed by STATE_*. */
  readonly #timeout = new Float64Array(STATE_COUNT);

  /**
   * Hot per-flow numbers, META_STRIDE (8) doubles = one 64-byte line per flow: created,
   * lastSeen, touch order (the eviction victim is the smallest among the state-list heads),
   * F_* flags, packets and bytes per direction. Keys, hash chain and LRU links share the
   * other line (KeyIndex arena), so a hit touches two lines plus a bucket head.
   */
  readonly #meta: Float64Array;
  readonly #finSeq: Int32Array;
  readonly #serial: Float64Array;

  /** Id returned by the last successful lookup (a hint only: `KeyIndex.holds` checks it), -1 none. */
  #lastId = -1;
  #touchSeq = 0;
  #serialSeq = 0;
  #busy = false;
  #expireStart = 0;

  #highWater = 0;
  #lookups = 0;
  #hits = 0;
  #createdCount = 0;
  #missNotIp = 0;
  #missFragment = 0;
  #missUndecoded = 0;
  #portReuse = 0;
  readonly #removed: Record<RemoveReason, number> = { closed: 0, rst: 0, idle: 0, evicted: 0, cleared: 0 };

  constructor(opts: FlowTableOptions<T> = {}) {
    const cap = effectiveCapacity(opts.maxFlows ?? DEFAULT_MAX_FLOWS, opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET);
    this.capacity = cap;
    const t = resolveTimeouts(opts.timeouts);
    this.timeouts = Object.freeze(t);
    const to = this.#timeout;
    to[STATE_TCP_EMBRYONIC] = t.tcpEmbryonicMs;
    to[STATE_TCP_ESTABLISHED] = t.tcpEstablishedMs;
    to[STATE_TCP_CLOSING] = t.tcpClosingMs;
    to[STATE_TCP_CLOSED] = t.tcpCloseLingerMs;
    to[STATE_UDP] = t.udpMs;
    to[STATE_ICMP] = t.icmpMs;
    to[STATE_OTHER] = t.otherMs;
    this.#seed = opts.seed ?? randomSeed();
    this.#onRemove = opts.onRemove;
    // 11 key words + hash + link + 3 LRU words = 16 words: one cache line per entry.
    this.#idx = new KeyIndex(FLOW_KEY_WORDS, cap, 3);
    this.#lru = new LruLists(cap, STATE_COUNT, { arr: this.#idx.keys, stride: this.#idx.stride, off: this.#idx.extraOff });
    this.#meta = new Float64Array(META_STRIDE * cap);
    this.#finSeq = new Int32Array(2 * cap);
    this.#serial = new Float64Array(cap);
    this.data = new Array<T | undefined>(cap).fill(undefined);
  }

  /** Flows held now. */
  get size(): number {
    return this.#idx.size;
  }

  /**
   * Find (or create) the flow of decoded packet `v` at time `nowMs` and account the packet to
   * it. Returns the flow id (0..capacity-1), with `dir` and `created` describing the packet,
   * or -1 when the packet is not a flow (`miss` says why): not IPv4/IPv6, an IP fragment
   * (reassemble with Defragmenter first, then look up the whole datagram, so a datagram
   * counts once and a fragment without ports never makes a flow), or a header above IP that
   * failed to decode (ports unknown).
   */
  lookup(v: PacketView, nowMs: number): number {
    if (this.#busy) this.#reentrant();
    this.#lookups++;
    const probe = this.#probe;
    const k = flowKey(v, probe);
    if (k < 0) {
      if (k === MISS_NOT_IP) {
        this.#missNotIp++;
        this.miss = LOOKUP_NOT_IP;
      } else if (k === MISS_FRAGMENT) {
        this.#missFragment++;
        this.miss = LOOKUP_FRAGMENT;
      } else {
        this.#missUndecoded++;
        this.miss = LOOKUP_UNDECODED;
      }
      return -1;
    }
    this.miss = 0;
    const isTcp = v.ipProto === IPPROTO_TCP;
    const tcpFlags = isTcp ? v.tcpFlags : 0;
    const meta = this.#meta;
    const idx = this.#idx;
    // Consecutive packets mostly belong to one flow: check the last hit before hashing.
    const last = this.#lastId;
    let hash: number;
    let id: number;
    if (last >= 0 && idx.holds(last, probe)) {
      id = last;
      hash = idx.hashOf(last);
    } else {
      hash = hashWords(probe, 0, FLOW_KEY_WORDS, this.#seed);
      id = idx.find(probe, hash);
    }
    if (id >= 0) {
      const st = this.#lru.listOf(id);
      if (nowMs - meta[id * META_STRIDE + M_LAST]! >= this.#timeout[st]!) {
        this.#remove(id, this.#expiryReason(id, st));
        id = -1;
      } else if (st === STATE_TCP_CLOSED && (tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) {
        this.#portReuse++;
        this.#remove(id, this.#expiryReason(id, st));
        id = -1;
      }
    }
    let state: number;
    if (id < 0) {
      id = this.#create(probe, hash, nowMs);
      // The initiator sent this packet, unless it is a SYN-ACK (its receiver sent the SYN).
      const initIsSrc = (tcpFlags & (TCP_SYN | TCP_ACK)) !== (TCP_SYN | TCP_ACK);
      const srcLo = k === SRC_IS_LO;
      meta[id * META_STRIDE + M_FLAGS] = initIsSrc === srcLo ? F_INIT_LO : 0;
      state = isTcp ? tcpInitialState(tcpFlags) : v.ipProto === IPPROTO_UDP ? STATE_UDP : v.ipProto === IPPROTO_ICMP || v.ipProto === IPPROTO_ICMPV6 ? STATE_ICMP : STATE_OTHER;
      this.created = true;
    } else {
      state = this.#lru.listOf(id);
      this.#hits++;
      this.created = false;
    }
    const m = id * META_STRIDE;
    const fl = meta[m + M_FLAGS]!;
    const dir = (k === SRC_IS_LO) === ((fl & F_INIT_LO) !== 0) ? 0 : 1;
    this.dir = dir;
    meta[m + M_PKTS + dir]++;
    meta[m + M_BYTES + dir] += v.ipTotalLen;
    if (nowMs > meta[m + M_LAST]!) meta[m + M_LAST] = nowMs;
    meta[m + M_TOUCH] = ++this.#touchSeq;
    if (isTcp) {
      const both = meta[m + M_PKTS]! > 0 && meta[m + M_PKTS + 1]! > 0;
      const r = trackTcp(fl, this.#finSeq, id, dir, v, state, both);
      meta[m + M_FLAGS] = r & 0xff;
      state = r >>> 8;
    }
    this.#lru.touch(state, id);
    this.#lastId = id;
    return id;
  }

  /**
   * Retire entries whose idle time (or close linger) has run out at `nowMs`, at most
   * `maxWork` of them (default 4096); returns how many went. Call it periodically; anything
   * left over is taken by the next call (or lazily by lookups that hit expired entries).
   */
  expire(nowMs: number, maxWork = DEFAULT_EXPIRE_WORK): number {
    if (this.#busy) this.#reentrant();
    let done = 0;
    const lru = this.#lru;
    const start = this.#expireStart;
    // Rotate the first state so a large backlog in one state cannot starve the others.
    this.#expireStart = (start + 1) % STATE_COUNT;
    for (let i = 0; i < STATE_COUNT && done < maxWork; i++) {
      const st = (start + i) % STATE_COUNT;
      const limit = this.#timeout[st]!;
      for (let id = lru.head(st); id >= 0 && done < maxWork; id = lru.head(st)) {
        if (nowMs - this.#meta[id * META_STRIDE + M_LAST]! < limit) break;
        this.#remove(id, this.#expiryReason(id, st));
        done++;
      }
    }
    return done;
  }

  /** Remove one flow now (the owner's decision); `onRemove` is told with reason 'cleared'. */
  remove(id: number): void {
    if (this.#busy) this.#reentrant();
    if (!this.isLive(id)) throw new ColoError('ERR_INVALID_ARGUMENT', `flow ${id} is not live`);
    this.#remove(id, 'cleared');
  }

  /** Remove every flow, telling the owner about each ('cleared'). */
  clear(): void {
    if (this.#busy) this.#reentrant();
    const live = this.#idx.live;
    const bound = this.#idx.idBound;
    for (let id = 0; id < bound; id++) if (live[id] === 1) this.#remove(id, 'cleared');
  }

  // ---- accessors (hot: plain array reads) ----

  isLive(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.capacity && this.#idx.live[id] === 1;
  }

  /** IP protocol number. */
  proto(id: number): number {
    return this.#idx.keys[id * this.#idx.stride]! >>> 24;
  }

  /** STATE_* number (see flow-state.ts). */
  state(id: number): number {
    const s = this.#lru.listOf(id);
    return s === NO_LIST ? -1 : s;
  }

  createdAt(id: number): number {
    return this.#meta[id * META_STRIDE + M_CREATED]!;
  }

  lastSeen(id: number): number {
    return this.#meta[id * META_STRIDE + M_LAST]!;
  }

  /** Creation order over the table's life (ids are reused, serials never). */
  serial(id: number): number {
    return this.#serial[id]!;
  }

  packets(id: number, dir: 0 | 1): number {
    return this.#meta[id * META_STRIDE + M_PKTS + dir]!;
  }

  /** IP datagram bytes (IP header included) seen in direction `dir`. */
  bytes(id: number, dir: 0 | 1): number {
    return this.#meta[id * META_STRIDE + M_BYTES + dir]!;
  }

  /** The per-flow F_* bits (flow-state.ts): initiator side, FIN/ACK each way, RST. */
  flowFlags(id: number): number {
    return this.#meta[id * META_STRIDE + M_FLAGS]!;
  }

  /** Call `fn` with every live flow id (in id order). `fn` may remove flows. */
  forEach(fn: (id: number) => void): void {
    const live = this.#idx.live;
    const bound = this.#idx.idBound;
    for (let id = 0; id < bound; id++) if (live[id] === 1) fn(id);
  }

  // ---- cold path ----

  /** `"IP:PORT"` of the initiator and the responder (IPv6 in brackets). Allocates. */
  endpoints(id: number): { initiator: string; responder: string } {
    this.#checkLive(id);
    // Straight from the key words through one scratch array (called once per connection).
    const keys = this.#idx.keys;
    const base = id * this.#idx.stride;
    const ports = keys[base + 2]!;
    const a = this.#addrScratch;
    const lo = formatEndpoint(a, 0, keyAddrInto(keys, base, false, a), ports >>> 16);
    const hi = formatEndpoint(a, 0, keyAddrInto(keys, base, true, a), ports & 0xffff);
    return (this.flowFlags(id) & F_INIT_LO) !== 0 ? { initiator: lo, responder: hi } : { initiator: hi, responder: lo };
  }

  /** Everything about one flow as a plain object. Allocates. */
  info(id: number): FlowInfo {
    this.#checkLive(id);
    const p = keyParts(this.#idx.keys, id * this.#idx.stride);
    const ep = this.endpoints(id);
    return {
      id,
      serial: this.#serial[id]!,
      proto: p.proto,
      state: flowStateName(this.state(id)),
      ipVersion: p.v6 ? 6 : 4,
      vlan: p.vlan0,
      innerVlan: p.vlan1,
      initiator: ep.initiator,
      responder: ep.responder,
      createdMs: this.createdAt(id),
      lastSeenMs: this.lastSeen(id),
      packets: [this.packets(id, 0), this.packets(id, 1)],
      bytes: [this.bytes(id, 0), this.bytes(id, 1)],
    };
  }

  stats(): FlowTableStats {
    const byState = {} as Record<FlowStateName, number>;
    for (let s = 0; s < STATE_COUNT; s++) byState[flowStateName(s) as FlowStateName] = this.#lru.length(s);
    return {
      size: this.size,
      capacity: this.capacity,
      highWater: this.#highWater,
      memoryBytes: this.memoryBytes,
      lookups: this.#lookups,
      hits: this.#hits,
      created: this.#createdCount,
      misses: { notIp: this.#missNotIp, fragment: this.#missFragment, undecoded: this.#missUndecoded },
      removed: { ...this.#removed },
      portReuse: this.#portReuse,
      byState,
      longestChain: this.#idx.longestChain(),
    };
  }

  /** Bytes allocated by the table's arrays (8 bytes per `data` slot counted for the pointers). */
  get memoryBytes(): number {
    return (
      this.#idx.byteLength +
      this.#lru.byteLength +
      this.#meta.byteLength +
      this.#finSeq.byteLength +
      this.#serial.byteLength +
      this.capacity * 8
    );
  }

  // ---- internals ----

  #create(probe: Int32Array, hash: number, nowMs: number): number {
    if (this.#idx.size === this.capacity) this.#makeRoom(nowMs);
    const id = this.#idx.insert(probe, hash);
    const meta = this.#meta;
    const m = id * META_STRIDE;
    meta[m + M_CREATED] = nowMs;
    meta[m + M_LAST] = nowMs;
    meta[m + M_FLAGS] = 0;
    meta[m + M_PKTS] = 0;
    meta[m + M_PKTS + 1] = 0;
    meta[m + M_BYTES] = 0;
    meta[m + M_BYTES + 1] = 0;
    this.#serial[id] = this.#serialSeq++;
    this.#finSeq[2 * id] = 0;
    this.#finSeq[2 * id + 1] = 0;
    this.#createdCount++;
    if (this.#idx.size > this.#highWater) this.#highWater = this.#idx.size;
    return id;
  }

  /** Full: reclaim a few expired entries, else evict the least recently touched flow. */
  #makeRoom(nowMs: number): void {
    if (this.expire(nowMs, RECLAIM_ON_FULL) > 0) return;
    const lru = this.#lru;
    let victim = -1;
    let oldest = Infinity;
    for (let s = 0; s < STATE_COUNT; s++) {
      const h = lru.head(s);
      if (h >= 0 && this.#meta[h * META_STRIDE + M_TOUCH]! < oldest) {
        oldest = this.#meta[h * META_STRIDE + M_TOUCH]!;
        victim = h;
      }
    }
    this.#remove(victim, 'evicted');
  }

  #expiryReason(id: number, state: number): RemoveReason {
    if (state !== STATE_TCP_CLOSED) return 'idle';
    return (this.flowFlags(id) & F_RST) !== 0 ? 'rst' : 'closed';
  }

  #remove(id: number, reason: RemoveReason): void {
    const cb = this.#onRemove;
    try {
      if (cb !== undefined) {
        this.#busy = true;
        cb(id, reason, this.data[id]);
      }
    } finally {
      this.#busy = false;
      this.#removed[reason]++;
      this.#lru.unlink(id);
      this.#idx.remove(id);
      this.data[id] = undefined;
    }
  }

  #checkLive(id: number): void {
    if (!this.isLive(id)) throw new ColoError('ERR_INVALID_ARGUMENT', `flow ${id} is not live`);
  }

  #reentrant(): never {
    throw new ColoError('ERR_FLOW_REENTRANT', 'flow table: onRemove must not call lookup/expire/remove/clear');
  }
}
