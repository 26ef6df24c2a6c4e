/**
 * Where a live replay (`colo-proxy replay`) puts frames: a QEMU-framed socket (the chardev
 * stream a filter-redirector or colo-compare reads) or a tap device (frames enter the host's
 * stack as if a NIC received them). One small interface so the replay loop does not care.
 *
 * Frames are pool handles whose bytes start with `pool.tag[h]` bytes of virtio-net header
 * (0 without one); the handle stays the caller's. A sink never drops a frame for backpressure:
 * `send` returns false and the caller waits for `whenReady()` and sends the same frame again.
 */
import { ColoError } from '../errors.js';
import type { PacketPool } from '../packet/pool.js';
import { FramedChannel } from '../wire/connection.js';
import { formatEndpoint, parseEndpoint } from '../wire/endpoint.js';
import { TapDevice } from '../wire/tap.js';

export interface FrameSinkStats {
  /** Frames taken (socket: framed and handed to the writer; tap: written or refused by the kernel). */
  frames: number;
  /** Frame bytes taken, virtio-net headers excluded. */
  bytes: number;
  /** Frames the transport refused for good (tap: kernel write errors, e.g. interface down). */
  errors: number;
  /** errno of the last refusal (tap), 0 if none. */
  lastErrno: number;
}

export interface FrameSink {
  /** What it writes to, for messages ("unix:/run/x.sock", "tap rtap0"). */
  readonly label: string;
  /** Take frame `h`; false = not now (backpressure): wait for `whenReady()` and retry. */
  send(h: number): boolean;
  /** Resolves when `send` may succeed again. */
  whenReady(): Promise<void>;
  /** Hand anything buffered to the transport now. */
  flush(): void;
  /** Flush, wait for what is buffered to leave, and release the transport. */
  close(): Promise<void>;
  stats(): FrameSinkStats;
}

export interface SocketSinkOptions {
  /** `tcp:HOST:PORT` / `unix:PATH` (connect) or with `,server` (listen for one peer). */
  endpoint: string;
  pool: PacketPool;
  /** Frames carry the vnet_hdr_len field (QEMU `vnet_hdr_support=on`). */
  vnetHdr: boolean;
  /** Give up when no peer is connected after this long (ms); default 10 000. */
  connectTimeoutMs?: number;
  /** Permit listening on a non-loopback address. */
  allowRemote?: boolean;
}

/** Grace after the last chunk left the writer, before the socket is closed (see close()). */
const SOCKET_LINGER_MS = 100;

/**
 * Open a QEMU-framed socket sink: resolves once the peer is connected. Rejects with
 * ERR_TIMEOUT naming the endpoint when none comes within `connectTimeoutMs`.
 */
export async function openSocketSink(o: SocketSinkOptions): Promise<FrameSink> {
  const ep = parseEndpoint(o.endpoint, { allowRemote: o.allowRemote });
  const label = formatEndpoint(ep);
  let wake: (() => void) | null = null;
  let disconnected = false;
  const ch = new FramedChannel({
    endpoint: ep,
    pool: o.pool,
    vnetHdr: o.vnetHdr,
    // A replay only sends: anything the peer sends back is released at once.
    onFrame: (h) => o.pool.release(h),
    onDrain: () => wake?.(),
    onDisconnected: (reason) => {
      if (reason !== 'closed') disconnected = true;
      wake?.();
    },
  });
  await ch.start();
  const timeoutMs = o.connectTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ch.whenConnected(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ColoError('ERR_TIMEOUT', `replay: no peer on ${label} after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (e) {
    await ch.close();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  let frames = 0;
  let bytes = 0;
  const lostPeer = (): ColoError => new ColoError('ERR_CHANNEL_CLOSED', `replay: the peer on ${label} went away after ${frames} frames`);
  const whenReady = (): Promise<void> => {
    if (disconnected) return Promise.reject(lostPeer());
    if (!ch.backpressured) return Promise.resolve();
    ch.flush();
    return new Promise<void>((resolve) => {
      wake = () => {
        wake = null;
        resolve();
      };
    });
  };
  return {
    label,
    send(h) {
      if (disconnected) throw lostPeer();
      if (ch.backpressured) return false;
      // Not backpressured: the writer has room, so a false here is a refused frame (too long).
      if (!ch.writeHandle(h)) throw new ColoError('ERR_FRAME_TOO_LONG', `replay: ${label} refused a ${o.pool.length(h)}-byte frame (longer than the chardev stream allows?)`);
      frames++;
      bytes += o.pool.length(h) - o.pool.tag[h]!;
      return true;
    },
    whenReady,
    flush: () => ch.flush(),
    async close() {
      ch.flush();
      while (ch.backpressured && !disconnected) await whenReady();
      // FramedChannel.close() destroys the socket; give the last chunk handed to it time to
      // reach the kernel first (there is no graceful end in the channel API yet).
      await new Promise<void>((r) => setTimeout(r, SOCKET_LINGER_MS));
      await ch.close();
    },
    stats: () => ({ frames, bytes, errors: 0, lastErrno: 0 }),
  };
}

export interface TapSinkOptions {
  name: string;
  pool: PacketPool;
  /** virtio-net header length (IFF_VNET_HDR), 0 for none. */
  vnetHdrLen: number;
}

/**
 * Open (or attach to) tap `name`. A tap the kernel has not brought up refuses every frame
 * (EIO): create it beforehand (`ip tuntap add dev NAME mode tap`, `ip link set NAME up`) and
 * this attaches to it; refusals are counted in `errors`.
 */
export function openTapSink(o: TapSinkOptions): FrameSink {
  const tap = TapDevice.open(o.name, o.pool, o.vnetHdrLen > 0 ? { vnetHdr: true, vnetHdrLen: o.vnetHdrLen } : {});
  const one = new Int32Array(1);
  let bytes = 0;
  return {
    label: `tap ${tap.name}`,
    send(h) {
      one[0] = h;
      if (tap.write(one, 1) === 0) return false; // kernel queue full (EAGAIN)
      bytes += o.pool.length(h) - o.vnetHdrLen;
      return true;
    },
    // The addon has no writability event: poll again on the next timer turn.
    whenReady: () => new Promise<void>((r) => setTimeout(r, 1)),
    flush() {},
    async close() {
      tap.close();
    },
    stats: () => ({ frames: tap.stats.framesOut + tap.stats.writeErrors, bytes, errors: tap.stats.writeErrors, lastErrno: tap.stats.lastErrno }),
  };
}
