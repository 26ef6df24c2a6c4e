/**
 * Direction files for `colo-proxy flows`: each connection direction's reassembled bytes are
 * appended to its own file in the output folder.
 *
 * A capture can hold far more concurrent connections than a process may keep open files,
 * so no descriptor stays open: each direction buffers its bytes (a buffer that doubles from
 * 1 KiB up to FLUSH_BYTES) and appends them to its file when the buffer is full, when the
 * direction ends, or when all buffers together pass `maxPendingBytes` (then every pending
 * buffer is written out). The file is created empty when the connection starts, so a
 * direction without payload still has its (empty) file and a stale file from an earlier run
 * is replaced.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const FIRST_BUFFER = 1024;
/** A direction's buffer is written out once it holds this many bytes. */
const FLUSH_BYTES = 256 * 1024;
const DEFAULT_MAX_PENDING = 64 * 1024 * 1024;

/** One direction's output file. */
export class DirectionFile {
  readonly name: string;
  readonly path: string;
  /** Bytes appended so far (written or pending). */
  size = 0;
  /** @internal */
  buf: Buffer | null = null;
  /** @internal */
  used = 0;
  /** @internal index in the writer's pending list, -1 when not listed. */
  pendingIdx = -1;

  constructor(dir: string, name: string) {
    this.name = name;
    this.path = join(dir, name);
  }
}

export class StreamFiles {
  readonly dir: string;
  readonly #maxPending: number;
  /** Directions holding unwritten bytes. */
  readonly #pending: DirectionFile[] = [];
  /** Bytes allocated by all pending buffers. */
  #pendingAlloc = 0;
  /** Write calls made (for tests and stats). */
  flushes = 0;

  constructor(dir: string, maxPendingBytes = DEFAULT_MAX_PENDING) {
    this.dir = dir;
    this.#maxPending = maxPendingBytes;
  }

  /** Create (or truncate) the file `name` and return its handle. */
  create(name: string): DirectionFile {
    const f = new DirectionFile(this.dir, name);
    writeFileSync(f.path, '');
    return f;
  }

  /** Append `src[off, off + len)` (copied: the caller's view may be reused after the call). */
  append(f: DirectionFile, src: Uint8Array, off: number, len: number): void {
    f.size += len;
    while (len > 0) {
      let b = f.buf;
      if (b === null || f.used === b.length) {
        if (b !== null && b.length >= FLUSH_BYTES) {
          this.flush(f);
          b = f.buf;
        }
        b = this.#grow(f, len);
      }
      const n = Math.min(len, b.length - f.used);
      b.set(src.subarray(off, off + n), f.used);
      f.used += n;
      off += n;
      len -= n;
    }
    if (f.used >= FLUSH_BYTES) this.flush(f);
    if (this.#pendingAlloc > this.#maxPending) this.flushAll();
  }

  /** Write out `f`'s pending bytes and free its buffer. */
  flush(f: DirectionFile): void {
    if (f.buf !== null) {
      if (f.used > 0) {
        appendFileSync(f.path, f.buf.subarray(0, f.used));
        this.flushes++;
      }
      this.#pendingAlloc -= f.buf.length;
      f.buf = null;
      f.used = 0;
    }
    const i = f.pendingIdx;
    if (i >= 0) {
      // Swap-remove from the pending list.
      const last = this.#pending.pop()!;
      if (last !== f) {
        this.#pending[i] = last;
        last.pendingIdx = i;
      }
      f.pendingIdx = -1;
    }
  }

  /** Write out every pending buffer. */
  flushAll(): void {
    while (this.#pending.length > 0) this.flush(this.#pending[this.#pending.length - 1]!);
  }

  /** A bigger buffer for `f` (keeping its pending bytes), sized for `need` more bytes. */
  #grow(f: DirectionFile, need: number): Buffer {
    const old = f.buf;
    let size = old === null ? FIRST_BUFFER : old.length * 2;
    while (size < f.used + need && size < FLUSH_BYTES) size *= 2;
    if (size > FLUSH_BYTES) size = FLUSH_BYTES;
    const b = Buffer.allocUnsafe(size);
    if (old !== null) {
      old.copy(b, 0, 0, f.used);
      this.#pendingAlloc -= old.length;
    }
    this.#pendingAlloc += size;
    f.buf = b;
    if (f.pendingIdx < 0) {
      f.pendingIdx = this.#pending.length;
      this.#pending.push(f);
    }
    return b;
  }
}
