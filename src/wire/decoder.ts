/**
 * Streaming decoder for the QEMU chardev packet stream (format: `framing.ts`).
 *
 * Design:
 * - Tolerant of any split of the byte stream: the length and vnet fields may arrive one byte
 *   per chunk.
 * - One copy on ingress: the pool slot is acquired as soon as a frame's header is complete
 *   (its size is known), and each data piece is copied straight from the socket's chunk into
 *   the slot. No reassembly buffer, no per-frame allocation.
 * - Every length read from the wire is validated before anything is consumed for it:
 *   `length > maxFrame` → ERR_FRAME_TOO_LONG (QEMU instead accumulates up to 69 632 bytes and
 *   only then notices), `vnet_hdr_len > 20` or `> length` → ERR_FRAME_BAD_VNET_LEN (QEMU does
 *   not check it at all). A bad frame puts the decoder in a failed state: it consumes nothing
 *   more until `reset()`. There is no resynchronisation in this protocol, so the owner closes
 *   the connection and starts the next one with a reset decoder.
 * - Zero-length frames (QEMU never sends them, but its decoder accepts them): by default
 *   skipped and counted in `emptyFrames`; with `emptyFrames: 'error'` they fail the stream
 *   with ERR_FRAME_EMPTY.
 * - Pool exhaustion: `push` returns false and keeps the unconsumed remainder (and any chunk
 *   pushed while paused; copies of them with `transientChunks`, for a reused read buffer). The
 *   owner stops reading and later calls `resume()`, which continues exactly where decoding
 *   stopped: no byte is lost or duplicated.
 */
import { ColoError, FramingError } from '../errors.js';
import type { ColoErrorCode } from '../errors.js';
import { NO_HANDLE } from '../packet/pool.js';
import type { PacketPool } from '../packet/pool.js';
import { DEFAULT_MAX_FRAME, MAX_VNET_HDR_LEN } from './framing.js';

/** Error codes a FrameDecoder can produce. */
export type FramingErrorCode = Extract<ColoErrorCode, 'ERR_FRAME_TOO_LONG' | 'ERR_FRAME_BAD_VNET_LEN' | 'ERR_FRAME_EMPTY'>;

export interface FrameDecoderOptions {
  /** The stream carries the u32 vnet_hdr_len field (QEMU `vnet_hdr_support=on`). */
  vnetHdr: boolean;
  /** Largest `length` accepted; default NET_BUFSIZE (69 632). Must fit the pool's largest slot. */
  maxFrame?: number;
  /** Where frame data is copied. */
  pool: PacketPool;
  /**
   * A complete frame: `handle` holds the data bytes (vnet header + Ethernet frame) and
   * `pool.tag[handle] === vnetHdrLen`. Ownership passes to the callee, which must release it.
   */
  onFrame(handle: number, vnetHdrLen: number): void;
  /** The stream carried a value we refuse; the decoder is now failed until `reset()`. */
  onError(err: FramingError): void;
  /** Policy for zero-length frames: 'skip' (default, counted) or 'error' (ERR_FRAME_EMPTY). */
  emptyFrames?: 'skip' | 'error';
  /**
   * Pushed chunks are only valid during `push` (a reused read buffer): what must be kept while
   * paused is copied. Default false (chunks are kept by reference).
   */
  transientChunks?: boolean;
}

export interface FrameDecoderStats {
  /** Frames delivered to `onFrame`. */
  frames: number;
  /** Stream bytes consumed (headers and data). */
  bytes: number;
  /** Data bytes delivered (sum of frame lengths). */
  dataBytes: number;
  /** Zero-length frames skipped. */
  emptyFrames: number;
  /** Times decoding paused because the pool had no slot. */
  pausedCount: number;
  /** `reset()` calls (one per new connection, typically). */
  resets: number;
  /** Framing errors, by code. */
  errors: Record<FramingErrorCode, number>;
}

const S_LEN = 0;
const S_VNET = 1;
const S_ALLOC = 2;
const S_DATA = 3;
const S_FAILED = 4;

/** Result of `#run`: the whole chunk was dealt with (consumed, or dropped after failure/reset). */
const DONE = -1;

export class FrameDecoder {
  readonly #pool: PacketPool;
  readonly #vnet: boolean;
  readonly #maxFrame: number;
  readonly #onFrame: (handle: number, vnetHdrLen: number) => void;
  readonly #onError: (err: FramingError) => void;
  readonly #rejectEmpty: boolean;
  readonly #copyKept: boolean;

  #state = S_LEN;
  /** Bytes still missing from the current length/vnet field. */
  #fieldLeft = 4;
  /** Big-endian accumulator of the current field. */
  #acc = 0;
  #length = 0;
  #vnetLen = 0;
  #handle = NO_HANDLE;
  #slab: Buffer | null = null;
  /** Absolute write position in `#slab` for the next data byte. */
  #slotPos = 0;
  #dataLeft = 0;
  /** Bytes consumed from the current stream (since the last reset). */
  #streamPos = 0;
  /** Stream offset of the current frame's first header byte. */
  #frameStart = 0;
  /** Incremented by `reset()`: a callback that resets us invalidates the chunk being decoded. */
  #gen = 0;
  #paused = false;
  /** Chunks (from `#pendingPos` in the first) not yet consumed while paused. */
  #pending: Buffer[] = [];
  #pendingPos = 0;

  #frames = 0;
  #bytes = 0;
  #dataBytes = 0;
  #emptyFrames = 0;
  #pausedCount = 0;
  #resets = 0;
  #errTooLong = 0;
  #errBadVnet = 0;
  #errEmpty = 0;

  constructor(options: FrameDecoderOptions) {
    const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    if (!(Number.isInteger(maxFrame) && maxFrame >= 0 && maxFrame <= 0xffffffff)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `maxFrame must be an integer 0..4294967295, got ${maxFrame}`);
    }
    if (maxFrame > options.pool.maxSlotSize) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `maxFrame ${maxFrame} exceeds the pool's largest slot (${options.pool.maxSlotSize} bytes)`);
    }
    this.#pool = options.pool;
    this.#vnet = options.vnetHdr;
    this.#maxFrame = maxFrame;
    this.#onFrame = options.onFrame;
    this.#onError = options.onError;
    this.#rejectEmpty = options.emptyFrames === 'error';
    this.#copyKept = options.transientChunks === true;
  }

  /** Whether the stream carries the vnet_hdr_len field. */
  get vnetHdr(): boolean {
    return this.#vnet;
  }

  get maxFrame(): number {
    return this.#maxFrame;
  }

  /** True while waiting for a pool slot (see `resume`). */
  get paused(): boolean {
    return this.#paused;
  }

  /** True after a framing error, until `reset()`. */
  get failed(): boolean {
    return this.#state === S_FAILED;
  }

  /** Bytes consumed from the current stream since the last reset. */
  get streamOffset(): number {
    return this.#streamPos;
  }

  /** True when the decoder sits between frames (no partial header or data pending). */
  get atFrameBoundary(): boolean {
    return this.#state === S_LEN && this.#fieldLeft === 4 && !this.#paused;
  }

  /**
   * Feed the next chunk of the stream. Returns false when decoding paused because the pool
   * is exhausted: the unconsumed remainder is kept (as is every chunk pushed while paused);
   * stop reading and call `resume()` once slots are available. In the failed state the chunk
   * is discarded and true is returned (the owner has been told through `onError`).
   */
  push(chunk: Buffer): boolean {
    if (this.#state === S_FAILED) return true;
    if (this.#paused) {
      this.#pending.push(this.#copyKept ? Buffer.from(chunk) : chunk);
      return false;
    }
    const pos = this.#run(chunk, 0);
    if (pos === DONE) return true;
    this.#paused = true;
    this.#pausedCount++;
    if (this.#copyKept) {
      // Only the unconsumed remainder (rare path: the pool ran out).
      this.#pending.push(Buffer.from(chunk.subarray(pos)));
      this.#pendingPos = 0;
    } else {
      this.#pending.push(chunk);
      this.#pendingPos = pos;
    }
    return false;
  }

  /**
   * Continue after a pause. Returns true when every kept byte has been decoded (the owner may
   * read again), false when the pool is still exhausted (stay paused and retry later).
   */
  resume(): boolean {
    if (!this.#paused) return true;
    const gen = this.#gen;
    while (this.#pending.length > 0) {
      const chunk = this.#pending[0]!;
      const pos = this.#run(chunk, this.#pendingPos);
      if (gen !== this.#gen) return true; // reset from a callback: nothing kept any more
      if (this.#state === S_FAILED) {
        this.#dropPending();
        return true;
      }
      if (pos !== DONE) {
        this.#pendingPos = pos;
        return false;
      }
      this.#pending.shift();
      this.#pendingPos = 0;
    }
    this.#paused = false;
    return true;
  }

  /**
   * Forget the current stream: drop any partial frame (releasing its slot), kept chunks and
   * the failed state. Call it for every new connection. Statistics are kept.
   */
  reset(): void {
    this.#gen++;
    this.#resets++;
    if (this.#handle !== NO_HANDLE) {
      const h = this.#handle;
      this.#handle = NO_HANDLE;
      this.#pool.release(h);
    }
    this.#slab = null;
    this.#dropPending();
    this.#toLength();
    this.#streamPos = 0;
    this.#frameStart = 0;
  }

  stats(): FrameDecoderStats {
    return {
      frames: this.#frames,
      bytes: this.#bytes,
      dataBytes: this.#dataBytes,
      emptyFrames: this.#emptyFrames,
      pausedCount: this.#pausedCount,
      resets: this.#resets,
      errors: {
        ERR_FRAME_TOO_LONG: this.#errTooLong,
        ERR_FRAME_BAD_VNET_LEN: this.#errBadVnet,
        ERR_FRAME_EMPTY: this.#errEmpty,
      },
    };
  }

  #dropPending(): void {
    this.#pending.length = 0;
    this.#pendingPos = 0;
    this.#paused = false;
  }

  #toLength(): void {
    this.#state = S_LEN;
    this.#fieldLeft = 4;
    this.#acc = 0;
    this.#frameStart = this.#streamPos;
  }

  /**
   * Decode `c` from `p`. Returns DONE when the chunk is used up (or must be dropped: failure
   * or a reset from a callback), or the position where decoding stopped for want of a slot.
   */
  #run(c: Buffer, p: number): number {
    const end = c.length;
    const gen = this.#gen;
    for (;;) {
      const state = this.#state;
      if (state === S_DATA) {
        const avail = end - p;
        const n = avail < this.#dataLeft ? avail : this.#dataLeft;
        if (n > 0) {
          c.copy(this.#slab!, this.#slotPos, p, p + n);
          this.#slotPos += n;
          this.#dataLeft -= n;
          this.#streamPos += n;
          this.#bytes += n;
          p += n;
        }
        if (this.#dataLeft > 0) return DONE;
        const h = this.#handle;
        const vnetLen = this.#vnetLen;
        this.#handle = NO_HANDLE;
        this.#slab = null;
        this.#pool.tag[h] = vnetLen;
        this.#frames++;
        this.#dataBytes += this.#length;
        this.#toLength();
        this.#onFrame(h, vnetLen);
        if (gen !== this.#gen || this.#state === S_FAILED || p === end) return DONE;
        continue;
      }
      if (state === S_LEN || state === S_VNET) {
        let v: number;
        if (this.#fieldLeft === 4 && end - p >= 4) {
          // Fast path: the whole field is in this chunk.
          v = c[p]! * 0x1000000 + ((c[p + 1]! << 16) | (c[p + 2]! << 8) | c[p + 3]!);
          p += 4;
          this.#streamPos += 4;
          this.#bytes += 4;
        } else {
          let acc = this.#acc;
          let left = this.#fieldLeft;
          while (left > 0 && p < end) {
            acc = acc * 256 + c[p++]!;
            left--;
            this.#streamPos++;
            this.#bytes++;
          }
          if (left > 0) {
            this.#acc = acc;
            this.#fieldLeft = left;
            return DONE;
          }
          v = acc;
        }
        if (state === S_LEN) {
          if (v > this.#maxFrame) {
            this.#fail('ERR_FRAME_TOO_LONG', v, `frame length ${v} exceeds the maximum ${this.#maxFrame}`);
            return DONE;
          }
          this.#length = v;
          if (this.#vnet) {
            this.#state = S_VNET;
            this.#fieldLeft = 4;
            this.#acc = 0;
            continue;
          }
          this.#vnetLen = 0;
        } else {
          if (v > MAX_VNET_HDR_LEN || v > this.#length) {
            this.#fail(
              'ERR_FRAME_BAD_VNET_LEN',
              v,
              `vnet_hdr_len ${v} is invalid for a ${this.#length}-byte frame (must be <= ${MAX_VNET_HDR_LEN} and <= the frame length)`,
            );
            return DONE;
          }
          this.#vnetLen = v;
        }
        if (this.#length === 0) {
          if (this.#rejectEmpty) {
            this.#fail('ERR_FRAME_EMPTY', 0, 'zero-length frame');
            return DONE;
          }
          this.#emptyFrames++;
          this.#toLength();
          if (p === end) return DONE;
          continue;
        }
        this.#state = S_ALLOC;
        // fall through to the slot acquisition below
      }
      if (this.#state === S_ALLOC) {
        const h = this.#pool.acquire(this.#length);
        if (h === NO_HANDLE) return p;
        this.#handle = h;
        this.#slab = this.#pool.buffer(h);
        this.#slotPos = this.#pool.offset(h);
        this.#dataLeft = this.#length;
        this.#state = S_DATA;
        continue;
      }
      return DONE; // S_FAILED
    }
  }

  #fail(code: FramingErrorCode, value: number, what: string): void {
    this.#state = S_FAILED;
    if (code === 'ERR_FRAME_TOO_LONG') this.#errTooLong++;
    else if (code === 'ERR_FRAME_BAD_VNET_LEN') this.#errBadVnet++;
    else this.#errEmpty++;
    const at = this.#frameStart;
    this.#onError(new FramingError(code, value, at, `framed stream: ${what} (frame header at stream offset ${at})`));
  }
}
