/**
 * A matched TCP workload for the compare engine, shared by bench/compare.bench.ts and the
 * allocation probe (test/compare/alloc-probe.ts): one passively opened connection whose
 * primary and secondary send the same byte stream, each cut into its own segment size, with
 * different IP IDs, TTLs and TCP timestamps (what differs between two real VMs). The
 * secondary's data is in the primary's sequence space and its SYN-ACK has its own ISN, as
 * QEMU's filter-rewriter leaves them.
 *
 * Frames are written into pool slots from a template (one copy, then the sequence number
 * patched in place), like a socket reader does: nothing is allocated per frame.
 */
import { CompareEngine } from '../src/compare/engine.js';
import type { CheckpointPort } from '../src/compare/checkpoint-port.js';
import { NO_HANDLE, PacketPool } from '../src/packet/pool.js';

/** Ethernet (14) + IPv4 (20) + TCP with NOP NOP timestamps (32). */
export const HDR = 66;
const SEQ_OFF = 38;
const ISN_P = 0xfff0_0000; // the run crosses the 2^32 wrap
const ISN_S = 0x1234_5678;

const bufCopy = Buffer.prototype.copy;

function template(payload: number, ipId: number, ttl: number, tsVal: number, flags: number, seq: number): Buffer {
  const f = Buffer.alloc(HDR + payload, 0x61);
  f.set([0x52, 0x54, 0, 0, 0, 1, 0x52, 0x54, 0, 0, 0, 2, 0x08, 0x00], 0);
  const tot = 20 + 32 + payload;
  f.set([0x45, 0, tot >> 8, tot & 0xff, ipId >> 8, ipId & 0xff, 0x40, 0, ttl, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1], 14);
  f.set([0, 80, 0x9c, 0x40], 34);
  f.writeUInt32BE(seq >>> 0, SEQ_OFF);
  f.writeUInt32BE(1, 42);
  f.set([0x80, flags, 0xff, 0xff, 0, 0, 0, 0, 1, 1, 8, 10], 46);
  f.writeUInt32BE(tsVal, 58);
  f.writeUInt32BE(7, 62);
  return f;
}

export interface WorkloadOptions {
  /** Primary / secondary segment payload sizes. */
  pMss: number;
  sMss: number;
  /** The secondary's segments covering a primary segment arrive before it (default: after). */
  secondaryFirst?: boolean;
  /** Called with each released handle (then released to the pool by the workload). */
  onRelease?: (h: number) => void;
  /** Called right before each frame is given to the engine (latency probes). */
  beforeFeed?: () => void;
  poolSlots?: number;
}

const nullPort: CheckpointPort = {
  request(): void {
    throw new Error('matched workload: unexpected checkpoint request');
  },
};

export class MatchedTcpWorkload {
  readonly pool: PacketPool;
  readonly engine: CompareEngine;
  released = 0;
  framesIn = 0;
  readonly #o: WorkloadOptions;
  readonly #pTpl: Buffer;
  readonly #sTpl: Buffer;
  #pOff = 0;
  #sOff = 0;
  #t = 0;

  constructor(o: WorkloadOptions) {
    this.#o = o;
    this.pool = new PacketPool({ classes: [{ slotSize: 2048, slots: o.poolSlots ?? 4096 }] });
    const pool = this.pool;
    const onRelease = o.onRelease;
    this.engine = new CompareEngine({
      pool,
      checkpoint: nullPort,
      limits: { maxFlowHeldPackets: 1 << 20, maxHeldPackets: 1 << 20 },
      seed: 7,
      release: (h) => {
        this.released++;
        if (onRelease !== undefined) onRelease(h);
        pool.release(h);
      },
    });
    this.#pTpl = template(o.pMss, 1, 64, 1000, 0x18, ISN_P);
    this.#sTpl = template(o.sMss, 30_000, 63, 777_777, 0x18, ISN_P);
    // Handshake: both SYN-ACKs (the secondary's with its own ISN).
    this.#seq = ISN_P;
    this.#feed(true, template(0, 0, 64, 1, 0x12, ISN_P), 0);
    this.#seq = ISN_S;
    this.#feed(false, template(0, 0, 64, 1, 0x12, ISN_S), 0);
  }

  /** Sequence number of the next frame to feed (a field: passed as an argument it would be boxed). */
  #seq = 0;

  #feed(primary: boolean, tpl: Buffer, len: number): number {
    const pool = this.pool;
    const n = HDR + len;
    const h = pool.acquire(n);
    if (h === NO_HANDLE) throw new Error('workload pool exhausted');
    const b = pool.buffer(h);
    const o = pool.offset(h);
    bufCopy.call(tpl, b, o, 0, n);
    const s = this.#seq >>> 0;
    b[o + SEQ_OFF] = s >>> 24;
    b[o + SEQ_OFF + 1] = (s >>> 16) & 0xff;
    b[o + SEQ_OFF + 2] = (s >>> 8) & 0xff;
    b[o + SEQ_OFF + 3] = s & 0xff;
    this.framesIn++;
    const before = this.#o.beforeFeed;
    if (before !== undefined) before();
    if (primary) this.engine.primary(h, this.#t);
    else this.engine.secondary(h, this.#t);
    return h;
  }

  #secondaryUpTo(end: number): void {
    const mss = this.#o.sMss;
    while (this.#sOff < end) {
      this.#seq = ISN_P + 1 + (this.#sOff % 4294967296);
      this.#feed(false, this.#sTpl, mss);
      this.#sOff += mss;
    }
  }

  /** Feed `n` primary segments and the secondary segments covering them. */
  run(n: number): void {
    const mss = this.#o.pMss;
    const first = this.#o.secondaryFirst === true;
    for (let i = 0; i < n; i++) {
      const start = this.#pOff;
      const end = start + mss;
      if (first) this.#secondaryUpTo(end);
      this.#seq = ISN_P + 1 + (start % 4294967296);
      this.#feed(true, this.#pTpl, mss);
      if (!first) this.#secondaryUpTo(end);
      this.#pOff = end;
      this.#t++; // integer ms: a fractional time would be boxed at every call (the caller's cost, not the engine's)
    }
  }

  /** Primary payload bytes fed so far. */
  get primaryBytes(): number {
    return this.#pOff;
  }

  /** The cost floor of moving frames: acquire a slot, copy a frame in, patch it, release it. */
  static moveOnly(pool: PacketPool, tpl: Buffer, count: number): number {
    let sum = 0;
    const n = tpl.length;
    for (let i = 0; i < count; i++) {
      const h = pool.acquire(n);
      const b = pool.buffer(h);
      const o = pool.offset(h);
      bufCopy.call(tpl, b, o, 0, n);
      b[o + SEQ_OFF + 3] = i & 0xff;
      sum += b[o + SEQ_OFF]!;
      pool.release(h);
    }
    return sum;
  }

  /** A primary-sized frame template (for `moveOnly`). */
  static frameTemplate(mss: number): Buffer {
    return template(mss, 1, 64, 1000, 0x18, ISN_P);
  }
}
