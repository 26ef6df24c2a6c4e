/**
 * Live replay of a capture into a FrameSink (tap or QEMU-framed socket), like tcpreplay:
 * as fast as the sink takes frames, at capture timing (scaled), or at a fixed rate.
 *
 * The capture is loaded once: every frame (made Ethernet by `toEthernet`, with a zeroed
 * virtio-net header in front when asked) is copied into a pool slot sized for this capture,
 * so the send loop only passes handles around and allocates nothing per frame. The whole
 * capture is therefore held in memory (like tcpreplay's --preload-pcap).
 */
import { openCapture } from '../capture/reader.js';
import { toEthernet } from '../capture/linktype.js';
import { ColoError } from '../errors.js';
import { NET_BUFSIZE, PacketPool } from '../packet/pool.js';
import type { FrameSink } from './frame-sink.js';
import { Pacer, waitUntil } from './pacer.js';
import type { PaceMode } from './pacer.js';

/** Slot sizes of the replay pool: MTU-size frames, jumbo / small GSO frames, the rest. */
const SLOTS = [2048, 16_384, NET_BUFSIZE] as const;

/** A capture loaded into its own pool. */
export interface LoadedCapture {
  pool: PacketPool;
  /** Handles in capture order; `pool.tag[h]` = vnet header length. */
  handles: Int32Array;
  /** Capture time of each frame (ms since the epoch). */
  timeMs: Float64Array;
  /** Records skipped: not convertible to Ethernet, or longer than NET_BUFSIZE with the header. */
  skipped: number;
  /** Frame bytes loaded (headers excluded). */
  bytes: number;
}

/** Load `path`'s frames into a pool sized for them, each behind `vnetHdrLen` zero bytes. */
export function loadCapture(path: string, vnetHdrLen: number): LoadedCapture {
  // Pass 1 sizes the pool exactly; pass 2 copies each frame in once.
  const counts = [0, 0, 0];
  let skipped = 0;
  const fits = (len: number): boolean => len + vnetHdrLen <= NET_BUFSIZE;
  const scan = openCapture(path);
  try {
    for (let r = scan.next(); r !== null; r = scan.next()) {
      if (!toEthernet(r) || !fits(r.capLen)) skipped++;
      else counts[SLOTS.findIndex((s) => r.capLen + vnetHdrLen <= s)]!++;
    }
  } finally {
    scan.close();
  }
  const pool = new PacketPool({ classes: SLOTS.map((slotSize, i) => ({ slotSize, slots: Math.max(1, counts[i]!) })) });
  const frames = counts[0]! + counts[1]! + counts[2]!;
  const handles = new Int32Array(frames);
  const timeMs = new Float64Array(frames);
  let n = 0;
  let bytes = 0;
  const rd = openCapture(path);
  try {
    for (let r = rd.next(); r !== null; r = rd.next()) {
      if (!toEthernet(r) || !fits(r.capLen)) continue;
      const h = pool.acquireOrThrow(r.capLen + vnetHdrLen);
      const buf = pool.buffer(h);
      const off = pool.offset(h);
      buf.fill(0, off, off + vnetHdrLen);
      buf.set(r.buf.subarray(r.off, r.off + r.capLen), off + vnetHdrLen);
      pool.setLength(h, r.capLen + vnetHdrLen);
      pool.tag[h] = vnetHdrLen;
      handles[n] = h;
      timeMs[n] = r.tsSec * 1000 + r.tsNsec / 1e6;
      bytes += r.capLen;
      n++;
    }
  } finally {
    rd.close();
  }
  return { pool, handles: handles.subarray(0, n), timeMs: timeMs.subarray(0, n), skipped, bytes };
}

export interface ReplayOptions {
  pace: PaceMode;
  /** Times through the capture (default 1). */
  loop?: number;
  /** Yield to the event loop after this many frames at topspeed (default 256). */
  yieldEvery?: number;
  signal?: AbortSignal;
  /** Called now and then (and at the end) with frames sent and the total. */
  onProgress?(sent: number, total: number): void;
}

export interface ReplayResult {
  frames: number;
  /** Frame bytes sent, virtio-net headers excluded. */
  bytes: number;
  /** Wall time from the first send to the end (s). */
  seconds: number;
  /** Times a send had to wait for the sink. */
  waits: number;
  aborted: boolean;
}

/**
 * Send every frame of `cap` to `sink`, `loop` times, paced by `pace`. Capture timing restarts
 * at each loop (the first frame of a loop is due right after the last of the previous one);
 * `pps` runs on across loops.
 */
export async function replayFrames(cap: LoadedCapture, sink: FrameSink, o: ReplayOptions): Promise<ReplayResult> {
  const loop = o.loop ?? 1;
  if (!(Number.isInteger(loop) && loop >= 1)) throw new ColoError('ERR_INVALID_ARGUMENT', `loop must be an integer >= 1, got ${loop}`);
  const yieldEvery = o.yieldEvery ?? 256;
  const { handles, timeMs, pool } = cap;
  const total = handles.length * loop;
  const pps = o.pace.kind === 'pps' ? new Pacer(o.pace) : null;
  let sent = 0;
  let bytes = 0;
  let waits = 0;
  let sinceYield = 0;
  let aborted = false;
  const t0 = performance.now();
  outer: for (let l = 0; l < loop; l++) {
    const timed = o.pace.kind === 'multiplier' ? new Pacer(o.pace) : null;
    for (let i = 0; i < handles.length; i++) {
      const pacer = pps ?? timed;
      if (pacer !== null) {
        const due = pacer.due(timeMs[i]!, performance.now());
        if (due - performance.now() >= 1) {
          sink.flush();
          await waitUntil(due);
          sinceYield = 0;
        }
      }
      const h = handles[i]!;
      while (!sink.send(h)) {
        waits++;
        await sink.whenReady();
        sinceYield = 0;
      }
      sent++;
      bytes += pool.length(h) - pool.tag[h]!;
      if (++sinceYield >= yieldEvery) {
        sinceYield = 0;
        sink.flush();
        o.onProgress?.(sent, total);
        if (o.signal?.aborted === true) {
          aborted = true;
          break outer;
        }
        await new Promise<void>((r) => setImmediate(r));
      }
    }
  }
  sink.flush();
  o.onProgress?.(sent, total);
  return { frames: sent, bytes, seconds: (performance.now() - t0) / 1000, waits, aborted };
}
