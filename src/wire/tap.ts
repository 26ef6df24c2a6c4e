/**
 * Linux TAP devices as a packet source and sink, through colo-proxy's own N-API addon
 * (`native/tap.cc`, built to `build/Release/tap.node`).
 *
 * Frames move between the kernel and PacketPool slots without copies: a read acquires pool
 * slots, passes the pool's slab and the slots' offsets to ONE native call that reads up to
 * `batch` frames straight into them, then sets the lengths and hands out the handles. Writes
 * pass (slab, offsets, lengths) of the caller's handles to one native call per slab.
 *
 * Readiness comes from a `uv_poll` handle on Node's own event loop (no thread pool: threadpool
 * `fs.read` on a tap is 10–30× slower, toolchain notes §2). The device never throws on the hot
 * path: "nothing pending", pool exhaustion and I/O failures are return values and counters.
 *
 * Ownership: every handle delivered by `readInto`/`onFrames` belongs to the receiver (one
 * reference, release it when done). `write` never takes ownership. Between reads the device
 * keeps up to `batch` empty slots reserved, so that a wake-up with one pending frame does not
 * pay for acquiring and releasing a whole batch; `close()` returns them.
 *
 * With `vnetHdr`, every frame read or written starts with a `vnetHdrLen`-byte virtio-net
 * header; delivered handles carry that length in `pool.tag[h]`.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ColoError } from '../errors.js';
import { NO_HANDLE } from '../packet/pool.js';
import type { PacketPool } from '../packet/pool.js';

/** Options of the native `open`. */
export interface NativeOpenOptions {
  vnetHdr?: boolean;
  /** TUNSETVNETHDRSZ; the kernel default is 10 (struct virtio_net_hdr). */
  vnetHdrLen?: number;
  multiQueue?: boolean;
}

/** A uv_poll watcher on one fd (see native/tap.cc). */
export interface NativePoller {
  /** Stop watching until `resume()` (the callback is not called meanwhile). */
  pause(): void;
  resume(): void;
  /** Stop for good and free the watcher; idempotent. Call before closing the fd. */
  stop(): void;
  /** Keep the event loop alive while watching (the default). */
  ref(): void;
  /** Let the process exit even while watching. */
  unref(): void;
}

/**
 * The addon's exports. Return conventions: single-frame calls give bytes, -1 for "would
 * block" and -errno for other failures; batch calls give a frame count (0 = nothing pending)
 * or -errno when the first frame failed. Arguments are range-checked before any syscall.
 */
export interface TapAddon {
  open(name: string, opts?: NativeOpenOptions): { fd: number; name: string };
  close(fd: number): void;
  read(fd: number, buf: Uint8Array, off: number, cap: number): number;
  write(fd: number, buf: Uint8Array, off: number, len: number): number;
  readBatch(fd: number, slab: Uint8Array, offsets: Int32Array, cap: number, lens: Int32Array, max: number): number;
  writeBatch(fd: number, slab: Uint8Array, offsets: Int32Array, lens: Int32Array, n: number): number;
  /** `cb(status)`: 0 when readable, a negative libuv error code when polling failed. */
  poll(fd: number, cb: (status: number) => void): NativePoller;
  readonly errno: Readonly<Record<'EAGAIN' | 'EIO' | 'EINVAL' | 'EBADF' | 'EBADFD' | 'EPERM', number>>;
}

/** Path of the built addon relative to the package root. */
export const ADDON_REL_PATH = join('build', 'Release', 'tap.node');

let addon: TapAddon | null = null;

/**
 * The folder holding `build/Release/tap.node`: the nearest ancestor of this module that has
 * one (this module runs from `src/wire/` under tsx/vitest and from `dist/src/wire/` when built).
 */
export function findAddonPath(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = join(dir, ADDON_REL_PATH);
    if (existsSync(p)) return p;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** Load the addon once; throws ColoError ERR_TAP_ADDON when it is not built or does not load. */
export function loadTapAddon(): TapAddon {
  if (addon !== null) return addon;
  const path = findAddonPath();
  if (path === null) {
    throw new ColoError(
      'ERR_TAP_ADDON',
      `tap addon not built: no ${ADDON_REL_PATH} above ${dirname(fileURLToPath(import.meta.url))} (run "npm ci" or "npm run build:native"; needs a C++ toolchain)`,
    );
  }
  try {
    addon = createRequire(import.meta.url)(path) as TapAddon;
  } catch (err) {
    throw new ColoError('ERR_TAP_ADDON', `tap addon ${path} failed to load: ${(err as Error).message}`, { cause: err });
  }
  return addon;
}

/** A tap system call failed; `errno`/`errnoCode`/`syscall` come from the kernel's answer. */
export class TapError extends ColoError {
  readonly device: string;
  readonly errno: number;
  /** Symbolic errno, e.g. "EPERM". */
  readonly errnoCode: string;
  readonly syscall: string;
  constructor(device: string, errno: number, errnoCode: string, syscall: string, message: string, options?: { cause?: unknown }) {
    super('ERR_TAP', message, options);
    this.name = 'TapError';
    this.device = device;
    this.errno = errno;
    this.errnoCode = errnoCode;
    this.syscall = syscall;
  }
}

/** Why a failure probably happened, for the errors people actually hit. */
function hint(code: string): string {
  switch (code) {
    case 'EPERM':
    case 'EACCES':
      return ' — creating or attaching a tap needs CAP_NET_ADMIN (run as root)';
    case 'ENOENT':
    case 'ENODEV':
      return ' — /dev/net/tun is missing (kernel without CONFIG_TUN, or a container without the device)';
    case 'EBUSY':
      return ' — the device is already attached to another fd (open every queue with multiQueue)';
    case 'EINVAL':
      return ' — the name belongs to an interface that is not a tap, or its flags (vnet_hdr/multi_queue) differ';
    default:
      return '';
  }
}

interface NativeSysError {
  errno?: unknown;
  code?: unknown;
  syscall?: unknown;
  message?: unknown;
}

function toTapError(device: string, err: unknown): ColoError {
  const e = err as NativeSysError;
  if (typeof e.errno === 'number' && typeof e.code === 'string' && typeof e.syscall === 'string') {
    return new TapError(device, e.errno, e.code, e.syscall, `tap "${device}": ${e.syscall} failed: ${e.code}${hint(e.code)}`, { cause: err });
  }
  return new ColoError('ERR_INVALID_ARGUMENT', `tap "${device}": ${String(e.message ?? err)}`, { cause: err });
}

/** Longest interface name (IFNAMSIZ - 1). */
export const MAX_IFNAME = 15;

/**
 * Check an interface name the way the kernel's dev_valid_name does (plus the length limit the
 * kernel would otherwise hit by truncation). The empty string asks the kernel for "tap%d".
 */
export function checkTapName(name: string): void {
  const bytes = Buffer.byteLength(name);
  if (bytes > MAX_IFNAME) {
    throw new ColoError('ERR_INVALID_ARGUMENT', `tap name "${name}" is ${bytes} bytes; interface names have at most ${MAX_IFNAME}`);
  }
  if (name === '.' || name === '..' || /[\s/:\0]/.test(name)) {
    throw new ColoError('ERR_INVALID_ARGUMENT', `tap name "${name}" is not a valid interface name (no "/", ":", whitespace, "." or "..")`);
  }
}

export interface TapOptions {
  /** Frames carry a virtio-net header (IFF_VNET_HDR). */
  vnetHdr?: boolean;
  /** virtio-net header length with `vnetHdr`: 10 (default) or 12 (QEMU mergeable buffers). */
  vnetHdrLen?: number;
  /** IFF_MULTI_QUEUE: several fds may attach to the same device. */
  multiQueue?: boolean;
  /**
   * Bytes reserved per frame read (vnet header included). The kernel cuts longer frames to
   * this size without saying so, so a frame that fills all of it is dropped and counted as
   * `truncated`: the largest frame accepted is frameCapacity - 1 bytes. Default
   * min(2048, pool.maxSlotSize): an MTU-1500 frame with a VLAN tag and a vnet header fits.
   */
  frameCapacity?: number;
  /** Most frames per native read call (and slots kept in reserve); default 64. */
  batch?: number;
  /** Most frames read per readiness callback before yielding to the event loop; default 256. */
  budget?: number;
}

export interface TapStats {
  framesIn: number;
  bytesIn: number;
  framesOut: number;
  bytesOut: number;
  /** Native read calls (batched). */
  readCalls: number;
  writeCalls: number;
  /** Frames that filled `frameCapacity` (possibly cut by the kernel), dropped on read. */
  truncated: number;
  readErrors: number;
  /** Frames the kernel refused (EIO while down, EINVAL for runts…); they count as consumed. */
  writeErrors: number;
  /** Times reading stopped because the pool had no free slot. */
  poolStalls: number;
  /** errno of the most recent read or write failure (0 if none). */
  lastErrno: number;
}

/** `readInto` result: the pool had no free slot, nothing was read. */
export const READ_POOL_EXHAUSTED = -1;

/** Receives frames read by `onFrames`: `handles[0..count)` now belong to the callee. */
export type FrameHandler = (handles: Int32Array, count: number) => void;

export class TapDevice {
  /** Interface name as the kernel reports it. */
  readonly name: string;
  readonly fd: number;
  /** Bytes of virtio-net header before each frame (0 without `vnetHdr`). */
  readonly vnetHdrLen: number;
  readonly frameCapacity: number;
  readonly batch: number;
  readonly stats: TapStats = {
    framesIn: 0,
    bytesIn: 0,
    framesOut: 0,
    bytesOut: 0,
    readCalls: 0,
    writeCalls: 0,
    truncated: 0,
    readErrors: 0,
    writeErrors: 0,
    poolStalls: 0,
    lastErrno: 0,
  };
  readonly #native: TapAddon;
  readonly #pool: PacketPool;
  readonly #budget: number;
  /** Reserved empty slots, used from the top. */
  readonly #spare: Int32Array;
  /** Offset and slab of each reserved slot, looked up once when it is reserved. */
  readonly #spareOff: Int32Array;
  readonly #spareSlab: Buffer[];
  #nSpare = 0;
  readonly #rOffs: Int32Array;
  readonly #rLens: Int32Array;
  readonly #wOffs: Int32Array;
  readonly #wLens: Int32Array;
  /** Handles delivered by onFrames (reused every callback). */
  readonly #delivery: Int32Array;
  /** Raw frame count of the last native read (before dropping truncated frames). */
  #lastRaw = 0;
  /** Frames the last native read had room for. */
  #lastAsked = 0;
  #poller: NativePoller | null = null;
  #handler: FrameHandler | null = null;
  #onError: ((err: TapError) => void) | null = null;
  #stalled = false;
  #closed = false;

  private constructor(native: TapAddon, pool: PacketPool, fd: number, name: string, vnetHdrLen: number, frameCapacity: number, batch: number, budget: number) {
    this.#native = native;
    this.#pool = pool;
    this.fd = fd;
    this.name = name;
    this.vnetHdrLen = vnetHdrLen;
    this.frameCapacity = frameCapacity;
    this.batch = batch;
    this.#budget = budget;
    this.#spare = new Int32Array(batch);
    this.#spareOff = new Int32Array(batch);
    this.#spareSlab = new Array<Buffer>(batch);
    this.#rOffs = new Int32Array(batch);
    this.#rLens = new Int32Array(batch);
    this.#wOffs = new Int32Array(batch);
    this.#wLens = new Int32Array(batch);
    this.#delivery = new Int32Array(batch);
  }

  /**
   * Create (or attach to) tap `name` — non-blocking, close-on-exec, IFF_TAP|IFF_NO_PI — whose
   * frames live in `pool`. Throws ERR_INVALID_ARGUMENT for bad names/options, ERR_TAP (a
   * TapError with the errno) when the kernel refuses, ERR_TAP_ADDON when the addon is missing.
   */
  static open(name: string, pool: PacketPool, opts: TapOptions = {}): TapDevice {
    checkTapName(name);
    const vnet = opts.vnetHdr === true;
    const vnetHdrLen = vnet ? (opts.vnetHdrLen ?? 10) : 0;
    if (vnet && !(Number.isInteger(vnetHdrLen) && vnetHdrLen >= 10 && vnetHdrLen <= 64)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `vnetHdrLen must be an integer in 10..64, got ${vnetHdrLen}`);
    }
    const cap = opts.frameCapacity ?? Math.min(2048, pool.maxSlotSize);
    if (!(Number.isInteger(cap) && cap >= 60 + vnetHdrLen && cap <= pool.maxSlotSize)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `frameCapacity ${cap} must be an integer in ${60 + vnetHdrLen}..${pool.maxSlotSize} (the pool's largest slot)`);
    }
    const batch = opts.batch ?? 64;
    const budget = opts.budget ?? 256;
    if (!(Number.isInteger(batch) && batch >= 1 && batch <= 4096)) throw new ColoError('ERR_INVALID_ARGUMENT', `batch ${batch} must be an integer in 1..4096`);
    if (!(Number.isInteger(budget) && budget >= 1)) throw new ColoError('ERR_INVALID_ARGUMENT', `budget ${budget} must be a positive integer`);
    const native = loadTapAddon();
    let r: { fd: number; name: string };
    try {
      r = native.open(name, vnet ? { vnetHdr: true, vnetHdrLen, multiQueue: opts.multiQueue === true } : { multiQueue: opts.multiQueue === true });
    } catch (err) {
      throw toTapError(name === '' ? 'tap%d' : name, err);
    }
    return new TapDevice(native, pool, r.fd, r.name, vnetHdrLen, cap, batch, budget);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Empty slots currently reserved by the device (returned by `close()`). */
  get reserved(): number {
    return this.#nSpare;
  }

  /**
   * Read up to `max` pending frames (at most `batch`) in one native call into pool slots;
   * their handles go to `out[0..n)`, with lengths set, `pool.tag[h]` = vnetHdrLen and
   * `pool.time[h]` = arrival (epoch ms). Returns n ≥ 0 (0: nothing pending),
   * READ_POOL_EXHAUSTED when no slot was free, or -errno when the read failed.
   */
  readInto(out: Int32Array, max: number = out.length): number {
    if (this.#closed) return -this.#native.errno.EBADF;
    const want = Math.min(max, this.batch, out.length);
    if (want <= 0) return 0;
    const pool = this.#pool;
    const cap = this.frameCapacity;
    // Top up the reserve; stop at exhaustion (a partial batch still reads).
    while (this.#nSpare < want) {
      const h = pool.acquire(cap);
      if (h === NO_HANDLE) break;
      const i = this.#nSpare++;
      this.#spare[i] = h;
      this.#spareOff[i] = pool.offset(h);
      this.#spareSlab[i] = pool.buffer(h);
    }
    if (this.#nSpare === 0) {
      this.#lastRaw = 0;
      this.stats.poolStalls++;
      return READ_POOL_EXHAUSTED;
    }
    // One native call needs one slab: take reserved slots from the top while they share it
    // (slots from a spill class sit in another slab and go in the next call).
    const top = this.#nSpare - 1;
    const slabs = this.#spareSlab;
    const slab = slabs[top]!;
    let k = 0;
    while (k < want && k <= top && slabs[top - k] === slab) {
      this.#rOffs[k] = this.#spareOff[top - k]!;
      k++;
    }
    this.stats.readCalls++;
    this.#lastAsked = k;
    const n = this.#native.readBatch(this.fd, slab, this.#rOffs, cap, this.#rLens, k);
    if (n < 0) {
      this.#lastRaw = 0;
      this.stats.readErrors++;
      this.stats.lastErrno = -n;
      return n;
    }
    this.#lastRaw = n;
    const now = Date.now();
    let delivered = 0;
    for (let i = 0; i < n; i++) {
      const h = this.#spare[top - i]!;
      const len = this.#rLens[i]!;
      if (len >= cap) {
        // tun cuts a longer frame to the buffer size without telling: a frame that filled the
        // whole buffer may have been cut, so it is dropped (hence the largest frame is cap-1).
        this.stats.truncated++;
        pool.release(h);
        continue;
      }
      pool.setLength(h, len);
      pool.tag[h] = this.vnetHdrLen;
      pool.time[h] = now;
      out[delivered++] = h;
      this.stats.bytesIn += len;
    }
    this.#nSpare -= n;
    this.stats.framesIn += delivered;
    return delivered;
  }

  /**
   * Write `handles[0..count)` in order (each frame including its vnet header when `vnetHdr`),
   * batching consecutive handles of the same slab into one native call. Returns how many
   * handles from the front were consumed: written, or refused by the kernel (counted in
   * `writeErrors`). Fewer than `count` means the kernel queue was full (EAGAIN): retry the
   * rest later. Ownership of the handles stays with the caller.
   */
  write(handles: ArrayLike<number>, count: number = handles.length): number {
    if (this.#closed) return 0;
    const pool = this.#pool;
    const n = Math.min(count, handles.length);
    let i = 0;
    while (i < n) {
      const slab = pool.buffer(handles[i]!);
      let k = 0;
      let bytes = 0;
      while (i + k < n && k < this.batch) {
        const h = handles[i + k]!;
        if (pool.buffer(h) !== slab) break;
        this.#wOffs[k] = pool.offset(h);
        const len = pool.length(h);
        this.#wLens[k] = len;
        bytes += len;
        k++;
      }
      this.stats.writeCalls++;
      const r = this.#native.writeBatch(this.fd, slab, this.#wOffs, this.#wLens, k);
      if (r === k) {
        this.stats.framesOut += k;
        this.stats.bytesOut += bytes;
        i += k;
        continue;
      }
      if (r >= 0) {
        // Queue full: count what went out and stop.
        for (let j = 0; j < r; j++) this.stats.bytesOut += this.#wLens[j]!;
        this.stats.framesOut += r;
        return i + r;
      }
      // The first frame of this run was refused: drop it and carry on with the rest.
      this.stats.writeErrors++;
      this.stats.lastErrno = -r;
      i++;
    }
    return n;
  }

  /**
   * Event-driven reading: whenever the device is readable, read up to `budget` frames in
   * batches and call `handler(handles, count)` per batch (the array is reused: copy what you
   * keep; the handles themselves are yours). When the pool runs dry, polling pauses until
   * `pool.whenAvailable` fires (libuv polls level-triggered, so an undrained fd would spin).
   * A read failure pauses polling and calls `onError` (default: rethrow as uncaught).
   */
  onFrames(handler: FrameHandler, onError?: (err: TapError) => void): void {
    if (this.#closed) throw new ColoError('ERR_TAP', `tap "${this.name}" is closed`);
    if (this.#poller !== null) throw new ColoError('ERR_TAP', `tap "${this.name}" already has a frame handler (call stopReading() first)`);
    this.#handler = handler;
    this.#onError = onError ?? null;
    this.#poller = this.#native.poll(this.fd, this.#onReadable);
  }

  /** Stop event-driven reading (frames stay queued in the kernel, up to its queue length). */
  stopReading(): void {
    this.#poller?.stop();
    this.#poller = null;
    this.#handler = null;
    this.#stalled = false;
  }

  /** Let the process exit while this device is being polled. */
  unref(): void {
    this.#poller?.unref();
  }

  readonly #onReadable = (status: number): void => {
    if (this.#poller === null || this.#handler === null) return;
    if (status < 0) {
      this.#fail(-status, 'poll');
      return;
    }
    const handler = this.#handler;
    let budget = this.#budget;
    while (budget > 0 && this.#handler === handler) {
      const want = budget < this.batch ? budget : this.batch;
      const n = this.readInto(this.#delivery, want);
      if (n >= 0) {
        // Budget counts frames taken from the kernel, dropped ones included, so a flood of
        // oversized frames cannot hold the event loop.
        budget -= this.#lastRaw;
        if (n > 0) handler(this.#delivery, n);
        if (this.#lastRaw < this.#lastAsked) return; // drained
        continue;
      }
      if (n === READ_POOL_EXHAUSTED) {
        this.#stall();
        return;
      }
      this.#fail(-n, 'read');
      return;
    }
  };

  #stall(): void {
    if (this.#stalled || this.#poller === null) return;
    this.#stalled = true;
    this.#poller.pause();
    const poller = this.#poller;
    this.#pool.whenAvailable(() => {
      // Ignore a wake-up for a poller that was stopped or replaced meanwhile.
      if (this.#poller !== poller || !this.#stalled) return;
      this.#stalled = false;
      poller.resume();
    });
  }

  #fail(errno: number, syscall: string): void {
    this.#poller?.pause();
    const code = errnoName(errno);
    const err = new TapError(this.name, errno, code, syscall, `tap "${this.name}": ${syscall} failed: ${code}; reading paused`);
    const cb = this.#onError;
    if (cb !== null) cb(err);
    else throw err;
  }

  /** Stop reading, return reserved slots to the pool and close the fd. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.stopReading();
    this.#closed = true;
    for (let i = 0; i < this.#nSpare; i++) this.#pool.release(this.#spare[i]!);
    this.#nSpare = 0;
    try {
      this.#native.close(this.fd);
    } catch (err) {
      throw toTapError(this.name, err);
    }
  }
}

/** Symbolic name of an errno for messages (falls back to the number). */
function errnoName(errno: number): string {
  for (const [k, v] of Object.entries(osConstants.errno)) if (v === errno) return k;
  return `errno ${errno}`;
}
