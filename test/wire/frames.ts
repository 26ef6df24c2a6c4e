/**
 * Test-side helpers for the framed stream. The reference encoder here is written from the
 * wire layout (reference §2.1), independently of src/wire, so it can serve as an oracle for
 * both the decoder and the writer.
 */
import { PacketPool } from '../../src/packet/pool.js';
import type { FramingError } from '../../src/errors.js';
import { FrameDecoder } from '../../src/wire/decoder.js';
import { mulberry32 } from '../helpers/prng.js';

export interface TestFrame {
  data: Buffer;
  vnetLen: number;
}

/** Reference encoding: BE32 length [+ BE32 vnet_hdr_len] + data, built with writeUInt32BE. */
export function refEncode(frames: readonly TestFrame[], withVnet: boolean): Buffer {
  const parts: Buffer[] = [];
  for (const f of frames) {
    const h = Buffer.alloc(withVnet ? 8 : 4);
    h.writeUInt32BE(f.data.length, 0);
    if (withVnet) h.writeUInt32BE(f.vnetLen, 4);
    parts.push(h, f.data);
  }
  return Buffer.concat(parts);
}

export function randomBytes(n: number, r: () => number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

/** Frames of the given sizes with random content; vnet lengths cycle through `vnetLens`. */
export function makeFrames(sizes: readonly number[], seed: number, vnetLens: readonly number[] = [0]): TestFrame[] {
  const r = mulberry32(seed);
  return sizes.map((n, i) => ({ data: randomBytes(n, r), vnetLen: Math.min(vnetLens[i % vnetLens.length]!, n) }));
}

/** A small pool with a 2 KiB and a NET_BUFSIZE class. */
export function smallPool(small = 64, big = 8): PacketPool {
  return new PacketPool({
    classes: [
      { slotSize: 2048, slots: small },
      { slotSize: 69_632, slots: big },
    ],
  });
}

export interface Collector {
  frames: TestFrame[];
  errors: FramingError[];
  onFrame(h: number, vnetLen: number): void;
  onError(err: FramingError): void;
}

/** Collect decoded frames as copies and release each handle at once (checks tag too). */
export function collector(pool: PacketPool): Collector {
  const c: Collector = {
    frames: [],
    errors: [],
    onFrame(h, vnetLen) {
      if (pool.tag[h] !== vnetLen) throw new Error(`tag ${pool.tag[h]} != vnetLen ${vnetLen}`);
      c.frames.push({ data: Buffer.from(pool.view(h)), vnetLen });
      pool.release(h);
    },
    onError(err) {
      c.errors.push(err);
    },
  };
  return c;
}

/** Decode `stream` cut into pieces at the given (sorted) split points. */
export function decodeSplit(stream: Buffer, splits: readonly number[], withVnet: boolean, pool: PacketPool, maxFrame?: number): Collector {
  const c = collector(pool);
  const d = new FrameDecoder({ vnetHdr: withVnet, pool, onFrame: c.onFrame, onError: c.onError, ...(maxFrame !== undefined ? { maxFrame } : {}) });
  let prev = 0;
  for (const s of [...splits, stream.length]) {
    // Copy each piece so no test accidentally relies on chunks sharing memory.
    const ok = d.push(Buffer.from(stream.subarray(prev, s)));
    if (!ok) throw new Error('decoder paused unexpectedly');
    prev = s;
  }
  return c;
}

export function sameFrames(a: readonly TestFrame[], b: readonly TestFrame[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.vnetLen !== b[i]!.vnetLen || !a[i]!.data.equals(b[i]!.data)) return false;
  }
  return true;
}

/** Wait until `cond()` holds, polling every 5 ms; throws after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
