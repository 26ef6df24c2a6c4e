/**
 * Batching frame encoder for the QEMU chardev packet stream (format: `framing.ts`).
 *
 * Many frames are packed into one output chunk (64 KiB by default) which is handed to a
 * sink in one call: one `socket.write` per small frame is about 20× slower than packing
 * (toolchain notes §3). Chunks are handed off when full and at the end of the current tick
 * (a microtask), or on `flush()`.
 *
 * Chunk reuse: once a chunk is handed to `socket.write`, Node keeps a reference to it until
 * the bytes are written, so it must not be overwritten before then. The sink therefore
 * receives an `onFlushed` callback (pass it as `socket.write`'s callback) and the writer
 * keeps a small ring of chunks: a chunk is reused only after its `onFlushed` ran; when every
 * chunk is in flight a new one is allocated (counted in `chunkAllocs`), up to `maxChunks`.
 * Past that cap frames are dropped (counted in `dropped`): memory stays bounded even if the
 * owner ignores `backpressured`.
 *
 * Frames may span chunk boundaries (the stream does not care where chunks end), so frames up
 * to NET_BUFSIZE fit any chunk size. A frame is either written completely or not at all.
 */
import { ColoError } from '../errors.js';
import type { PacketPool } from '../packet/pool.js';
import { DEFAULT_MAX_FRAME, MAX_VNET_HDR_LEN, encodeFrameHeader, frameHeaderLen } from './framing.js';

/**
 * Receives packed output. Return false to signal backpressure (like `socket.write`); call
 * `onFlushed` once the chunk's bytes have been consumed (synchronous sinks may call it at once).
 */
export type FrameSink = (chunk: Buffer, onFlushed: () => void) => boolean;

export interface FrameWriterOptions {
  /** Write the u32 vnet_hdr_len field (QEMU `vnet_hdr_support=on`). */
  vnetHdr: boolean;
  sink: FrameSink;
  /** Needed only for `writeHandle`. */
  pool?: PacketPool;
  /** Bytes per output chunk; default 65 536. */
  chunkSize?: number;
  /** Chunks allocated up front; default 4. */
  ringSize?: number;
  /** Most chunks ever held (in flight + being filled); default 256 (16 MiB at 64 KiB). */
  maxChunks?: number;
  /** Largest frame accepted; default NET_BUFSIZE (69 632). */
  maxFrame?: number;
  /** Hand off the partial chunk at the end of the current tick; default true. */
  autoFlush?: boolean;
  /** Called by `drained()` when backpressure clears. */
  onDrain?: () => void;
}

export interface FrameWriterStats {
  frames: number;
  /** Stream bytes produced (headers + data). */
  bytes: number;
  /** Sink calls. */
  chunks: number;
  /** Chunks allocated beyond the initial ring because all were in flight. */
  chunkAllocs: number;
  /** Times the sink returned false. */
  backpressureEvents: number;
  /** Frames refused: zero length, longer than maxFrame, or bad vnet_hdr_len. */
  rejected: number;
  /** Frames dropped because `maxChunks` chunks were already in flight. */
  dropped: number;
}

interface Chunk {
  readonly buf: Buffer;
  busy: boolean;
  /** Writer generation this chunk belongs to (a reset detaches chunks still in flight). */
  gen: number;
  readonly done: () => void;
}

export class FrameWriter {
  readonly #sink: FrameSink;
  readonly #pool: PacketPool | undefined;
  readonly #vnet: boolean;
  readonly #hdrLen: number;
  readonly #chunkSize: number;
  readonly #maxChunks: number;
  readonly #maxFrame: number;
  readonly #autoFlush: boolean;
  readonly #onDrain: (() => void) | undefined;
  readonly #flushTask: () => void;

  #ring: Chunk[] = [];
  #inFlight = 0;
  #gen = 0;
  #cur: Chunk | null = null;
  #used = 0;
  #scheduled = false;
  #backpressured = false;

  #frames = 0;
  #bytes = 0;
  #chunks = 0;
  #chunkAllocs = 0;
  #backpressureEvents = 0;
  #rejected = 0;
  #dropped = 0;

  constructor(options: FrameWriterOptions) {
    const chunkSize = options.chunkSize ?? 65_536;
    const ringSize = options.ringSize ?? 4;
    const maxChunks = options.maxChunks ?? 256;
    const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    if (!(Number.isInteger(chunkSize) && chunkSize >= 16)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `chunkSize must be an integer >= 16, got ${chunkSize}`);
    }
    if (!(Number.isInteger(ringSize) && ringSize >= 1 && Number.isInteger(maxChunks) && maxChunks >= ringSize)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `need 1 <= ringSize <= maxChunks, got ringSize ${ringSize}, maxChunks ${maxChunks}`);
    }
    if (!(Number.isInteger(maxFrame) && maxFrame >= 1 && maxFrame <= 0xffffffff)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `maxFrame must be an integer 1..4294967295, got ${maxFrame}`);
    }
    this.#sink = options.sink;
    this.#pool = options.pool;
    this.#vnet = options.vnetHdr;
    this.#hdrLen = frameHeaderLen(options.vnetHdr);
    this.#chunkSize = chunkSize;
    this.#maxChunks = maxChunks;
    this.#maxFrame = maxFrame;
    this.#autoFlush = options.autoFlush ?? true;
    this.#onDrain = options.onDrain;
    this.#flushTask = () => {
      this.#scheduled = false;
      this.flush();
    };
    for (let i = 0; i < ringSize; i++) this.#ring.push(this.#newChunk());
  }

  /** True after the sink returned false, until `drained()`. Stop producing while it is set. */
  get backpressured(): boolean {
    return this.#backpressured;
  }

  /** Bytes packed but not yet handed to the sink. */
  get buffered(): number {
    return this.#used;
  }

  /**
   * Append one frame whose data (vnet header + Ethernet frame) is `len` bytes of `src` at
   * `off`. Returns false, writing nothing, when the frame is refused (zero length, longer
   * than maxFrame, vnet_hdr_len > 20 or > len) or dropped at the chunk cap.
   */
  writeFrame(src: Buffer, off: number, len: number, vnetHdrLen = 0): boolean {
    if (!(len > 0 && len <= this.#maxFrame && off >= 0 && off + len <= src.length)) {
      this.#rejected++;
      return false;
    }
    if (this.#vnet && !(vnetHdrLen >= 0 && vnetHdrLen <= MAX_VNET_HDR_LEN && vnetHdrLen <= len)) {
      this.#rejected++;
      return false;
    }
    const total = this.#hdrLen + len;
    if (!this.#reserve(total)) {
      this.#dropped++;
      return false;
    }
    let cur = this.#cur!;
    if (this.#chunkSize - this.#used < this.#hdrLen) {
      // Keep headers whole within a chunk (simpler; costs at most 7 bytes of slack).
      this.#handOff();
      cur = this.#take();
    }
    this.#used = encodeFrameHeader(cur.buf, this.#used, len, vnetHdrLen, this.#vnet);
    let p = off;
    let left = len;
    while (left > 0) {
      let room = this.#chunkSize - this.#used;
      if (room === 0) {
        this.#handOff();
        cur = this.#take();
        room = this.#chunkSize;
      }
      const n = left < room ? left : room;
      src.copy(cur.buf, this.#used, p, p + n);
      this.#used += n;
      p += n;
      left -= n;
    }
    this.#frames++;
    this.#bytes += total;
    if (this.#used === this.#chunkSize) this.#handOff();
    else if (this.#autoFlush && !this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flushTask);
    }
    return true;
  }

  /**
   * Append the frame held by pool handle `h` (vnet_hdr_len from `pool.tag[h]`). The handle
   * is not released: the bytes are copied, so the caller may release it right after.
   */
  writeHandle(h: number): boolean {
    const pool = this.#pool;
    if (pool === undefined) throw new ColoError('ERR_INVALID_ARGUMENT', 'FrameWriter.writeHandle needs the `pool` option');
    return this.writeFrame(pool.buffer(h), pool.offset(h), pool.length(h), pool.tag[h]!);
  }

  /** Hand the partially filled chunk to the sink now. */
  flush(): void {
    if (this.#cur !== null && this.#used > 0) this.#handOff();
  }

  /** Tell the writer the sink drained (e.g. from the socket's 'drain' event). */
  drained(): void {
    if (!this.#backpressured) return;
    this.#backpressured = false;
    this.#onDrain?.();
  }

  /**
   * Discard bytes not yet handed to the sink and forget chunks still in flight (their owner
   * keeps them alive until written). Call it when the connection changes, so a frame begun for
   * the old connection never leaks into the new one.
   */
  reset(): void {
    this.#gen++;
    this.#ring = this.#ring.filter((c) => !c.busy);
    for (const c of this.#ring) c.gen = this.#gen;
    this.#inFlight = 0;
    this.#cur = null;
    this.#used = 0;
    this.#backpressured = false;
  }

  stats(): FrameWriterStats {
    return {
      frames: this.#frames,
      bytes: this.#bytes,
      chunks: this.#chunks,
      chunkAllocs: this.#chunkAllocs,
      backpressureEvents: this.#backpressureEvents,
      rejected: this.#rejected,
      dropped: this.#dropped,
    };
  }

  #newChunk(): Chunk {
    const c: Chunk = {
      buf: Buffer.allocUnsafeSlow(this.#chunkSize),
      busy: false,
      gen: this.#gen,
      done: () => {
        if (!c.busy) return;
        c.busy = false;
        if (c.gen === this.#gen) this.#inFlight--;
      },
    };
    return c;
  }

  /** Ensure the chunks needed for `total` more bytes can be had; sets `#cur`. */
  #reserve(total: number): boolean {
    const room = this.#cur === null ? 0 : this.#chunkSize - this.#used;
    // Worst case: one extra chunk because the header did not fit the current one.
    const need = total <= room ? 0 : Math.ceil((total - room) / this.#chunkSize) + 1;
    if (need > 0) {
      const idle = this.#ring.length - this.#inFlight - (this.#cur === null ? 0 : 1);
      if (idle + (this.#maxChunks - this.#ring.length) < need) return false;
    }
    if (this.#cur === null) this.#take();
    return true;
  }

  /** Make an idle chunk current (allocating one if all are in flight). */
  #take(): Chunk {
    const ring = this.#ring;
    let c: Chunk | undefined;
    for (let i = 0; i < ring.length; i++) {
      const x = ring[i]!;
      if (!x.busy && x !== this.#cur) {
        c = x;
        break;
      }
    }
    if (c === undefined) {
      c = this.#newChunk();
      ring.push(c);
      this.#chunkAllocs++;
    }
    this.#cur = c;
    this.#used = 0;
    return c;
  }

  #handOff(): void {
    const c = this.#cur!;
    const n = this.#used;
    this.#cur = null;
    this.#used = 0;
    c.busy = true;
    this.#inFlight++;
    this.#chunks++;
    const ok = this.#sink(n === this.#chunkSize ? c.buf : c.buf.subarray(0, n), c.done);
    if (!ok && !this.#backpressured) {
      this.#backpressured = true;
      this.#backpressureEvents++;
    }
  }
}
