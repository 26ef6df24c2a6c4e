/**
 * Test-only helpers for the TCP reassembler: a recording sink that checks the stream contract
 * (data/gap calls are contiguous from offset 0, end once, nothing after end), and a feeder
 * that turns (seq, flags, bytes) into a PacketView the way decodeFrame would, either from a
 * pool slot (zero copy) or from a plain buffer (NO_HANDLE) that is scribbled over afterwards
 * so any reference the reassembler wrongly kept to it shows up as corrupted output.
 */
import { LAYER_PAYLOAD, LAYER_TCP } from '../../src/packet/layer.js';
import { NO_HANDLE, PacketPool } from '../../src/packet/pool.js';
import { PacketView } from '../../src/packet/view.js';
import type { TcpReassembler } from '../../src/flow/tcp-reassembler.js';
import type { Dir, EndReason, GapReason, SegmentResult, StreamSink } from '../../src/flow/tcp-types.js';

export interface Gap {
  offset: number;
  len: number;
  reason: GapReason;
}

export interface Conflict {
  offset: number;
  len: number;
}

/** What one direction received. */
export class DirRecord {
  /** Delivered bytes, by stream offset (gaps leave zeros; see `covered`). */
  bytes: number[] = [];
  /** Per offset: 'd' delivered, 'g' gap. */
  covered: string[] = [];
  gaps: Gap[] = [];
  conflicts: Conflict[] = [];
  dataCalls = 0;
  /** Offset the next data/gap must start at. */
  next = 0;
  end: EndReason | null = null;
  endCalls = 0;
  /** Contract violations seen (asserted empty by tests). */
  errors: string[] = [];

  delivered(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

export class RecordingSink implements StreamSink {
  readonly dirs: [DirRecord, DirRecord] = [new DirRecord(), new DirRecord()];
  /** Store bytes (off for huge streams, where only offsets/lengths are checked). */
  keepBytes = true;
  /** Optional hooks (re-entrancy tests). */
  onData?: (dir: Dir, streamOffset: number) => void;

  data(dir: Dir, buf: Uint8Array, off: number, len: number, streamOffset: number): void {
    const d = this.dirs[dir];
    if (d.end !== null) d.errors.push(`data after end at ${streamOffset}`);
    if (streamOffset !== d.next) d.errors.push(`data at ${streamOffset}, expected ${d.next}`);
    if (len <= 0) d.errors.push(`empty data call at ${streamOffset}`);
    if (off < 0 || off + len > buf.length) d.errors.push(`data view out of bounds: ${off}+${len} > ${buf.length}`);
    d.dataCalls++;
    if (this.keepBytes) {
      for (let i = 0; i < len; i++) {
        d.bytes[streamOffset + i] = buf[off + i]!;
        d.covered[streamOffset + i] = 'd';
      }
    }
    d.next = streamOffset + len;
    this.onData?.(dir, streamOffset);
  }

  gap(dir: Dir, streamOffset: number, len: number, reason: GapReason): void {
    const d = this.dirs[dir];
    if (d.end !== null) d.errors.push(`gap after end at ${streamOffset}`);
    if (streamOffset !== d.next) d.errors.push(`gap at ${streamOffset}, expected ${d.next}`);
    if (len <= 0) d.errors.push(`empty gap at ${streamOffset}`);
    d.gaps.push({ offset: streamOffset, len, reason });
    if (this.keepBytes) for (let i = 0; i < len; i++) d.covered[streamOffset + i] = 'g';
    d.next = streamOffset + len;
  }

  overlapConflict(dir: Dir, streamOffset: number, len: number): void {
    this.dirs[dir].conflicts.push({ offset: streamOffset, len });
  }

  end(dir: Dir, how: EndReason): void {
    const d = this.dirs[dir];
    d.endCalls++;
    if (d.end !== null) d.errors.push(`second end (${how})`);
    d.end = how;
  }
}

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const ACK = 0x10;

/** A small pool for tests (plenty of 2 KiB slots plus a few big ones). */
export function testPool(slots2k = 4096, slotsBig = 16): PacketPool {
  return new PacketPool({
    classes: [
      { slotSize: 2048, slots: slots2k },
      { slotSize: 69_632, slots: slotsBig },
    ],
  });
}

/** Feeds segments into a reassembler, pooled (zero copy) or unpooled (copied on buffering). */
export class Feeder {
  readonly v = new PacketView();
  constructor(
    readonly pool: PacketPool,
    readonly r: TcpReassembler,
    public pooled: boolean,
  ) {}

  /** Feed `payload` as a segment with sequence number `seq` (u32) and `flags`. */
  send(dir: Dir, seq: number, flags: number, payload: Uint8Array = new Uint8Array(0), nowMs = 0, fullLen = payload.length): SegmentResult {
    const v = this.v;
    v.reset();
    v.layers = LAYER_TCP | LAYER_PAYLOAD;
    v.tcpSeq = seq >>> 0;
    v.tcpFlags = flags;
    v.payloadLen = payload.length;
    v.payloadFullLen = fullLen;
    if (this.pooled) {
      // Header room before the payload, like a real frame in a slot.
      const h = this.pool.acquireOrThrow(54 + payload.length);
      const buf = this.pool.buffer(h);
      const base = this.pool.offset(h);
      buf.fill(0xcc, base, base + 54);
      buf.set(payload, base + 54);
      v.buf = buf;
      v.payloadOff = base + 54;
      const res = this.r.segment(v, dir, h, nowMs);
      this.pool.release(h);
      return res;
    }
    const buf = new Uint8Array(payload.length + 60);
    buf.set(payload, 40);
    v.buf = buf;
    v.payloadOff = 40;
    const res = this.r.segment(v, dir, NO_HANDLE, nowMs);
    buf.fill(0xee); // the reassembler must not keep pointing here
    return res;
  }
}

/** Deterministic pseudo-random bytes (a stream whose every byte position is distinguishable). */
export function streamBytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** `a + n` in 32-bit sequence space (test-side, written independently of src/flow/tcp-seq.ts). */
export function seqPlus(a: number, n: number): number {
  return Number((BigInt(a) + BigInt(n)) % 4294967296n);
}

/** Assert-friendly summary of a direction's contract violations plus pool/budget leaks. */
export function leaks(pool: PacketPool, r: TcpReassembler): { poolInUse: number; budgetUsed: number; buffered: number[] } {
  return { poolInUse: pool.inUse, budgetUsed: r.budget.used, buffered: [r.stats[0].bufferedBytes, r.stats[1].bufferedBytes] };
}
