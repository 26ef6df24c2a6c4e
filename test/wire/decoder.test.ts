import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { ColoError, FramingError } from '../../src/errors.js';
import { NET_BUFSIZE, PacketPool } from '../../src/packet/pool.js';
import { FrameDecoder } from '../../src/wire/decoder.js';
import { collector, decodeSplit, makeFrames, refEncode, sameFrames, smallPool } from './frames.js';
import type { TestFrame } from './frames.js';

// Sizes chosen so headers and data straddle many split points; includes 1-byte frames.
const SIZES = [60, 1, 14, 3, 64, 7, 90, 2, 33];

for (const withVnet of [false, true]) {
  describe(`FrameDecoder (vnet ${withVnet ? 'on' : 'off'})`, () => {
    const frames = makeFrames(SIZES, withVnet ? 2 : 1, withVnet ? [0, 12, 1, 10, 0, 0, 20, 2, 12] : [0]);
    const stream = refEncode(frames, withVnet);

    it('decodes the whole stream in one chunk', () => {
      const pool = smallPool();
      const c = decodeSplit(stream, [], withVnet, pool);
      expect(c.errors).toEqual([]);
      expect(sameFrames(c.frames, frames)).toBe(true);
      expect(pool.inUse).toBe(0);
    });

    it('decodes identically for every single split point', () => {
      const pool = smallPool();
      for (let i = 0; i <= stream.length; i++) {
        const c = decodeSplit(stream, [i], withVnet, pool);
        if (c.errors.length > 0 || !sameFrames(c.frames, frames)) throw new Error(`split at ${i} decoded differently`);
      }
      expect(pool.inUse).toBe(0);
    });

    it('decodes identically one byte at a time', () => {
      const pool = smallPool();
      const splits = Array.from({ length: stream.length - 1 }, (_, i) => i + 1);
      const c = decodeSplit(stream, splits, withVnet, pool);
      expect(sameFrames(c.frames, frames)).toBe(true);
      expect(pool.inUse).toBe(0);
    });

    it('decodes identically for random multi-splits of random frames (fast-check)', () => {
      const pool = smallPool();
      const frameArb = fc
        .tuple(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.integer({ min: 0, max: 20 }))
        .map(([d, v]): TestFrame => ({ data: Buffer.from(d), vnetLen: withVnet ? Math.min(v, d.length) : 0 }));
      fc.assert(
        fc.property(fc.array(frameArb, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (fs, cuts) => {
          const s = refEncode(fs, withVnet);
          const splits = [...new Set(cuts.map((x) => x % (s.length + 1)))].sort((a, b) => a - b);
          const c = decodeSplit(s, splits, withVnet, pool);
          return c.errors.length === 0 && sameFrames(c.frames, fs) && pool.inUse === 0;
        }),
        { numRuns: 300 },
      );
      expect(pool.inUse).toBe(0);
    });

    it('copies each frame into a pool slot with tag = vnet_hdr_len and hands over ownership', () => {
      const pool = smallPool();
      const handles: number[] = [];
      const d = new FrameDecoder({ vnetHdr: withVnet, pool, onFrame: (h) => handles.push(h), onError: () => {} });
      d.push(stream);
      expect(handles.length).toBe(frames.length);
      expect(pool.inUse).toBe(frames.length); // the decoder keeps no reference
      handles.forEach((h, i) => {
        expect(pool.length(h)).toBe(frames[i]!.data.length);
        expect(pool.tag[h]).toBe(frames[i]!.vnetLen);
        expect(pool.view(h).equals(frames[i]!.data)).toBe(true);
        pool.release(h);
      });
      expect(d.stats()).toMatchObject({ frames: frames.length, bytes: stream.length, dataBytes: SIZES.reduce((a, b) => a + b, 0) });
      expect(pool.inUse).toBe(0);
    });

    it('accepts the largest frame (length = maxFrame = NET_BUFSIZE) split anywhere', () => {
      const pool = smallPool(4, 2);
      const big = makeFrames([NET_BUFSIZE, 60], 7, [withVnet ? 20 : 0]);
      const s = refEncode(big, withVnet);
      for (const cut of [1, 5, 8, 1000, NET_BUFSIZE, s.length - 61]) {
        const c = decodeSplit(s, [cut], withVnet, pool);
        expect(c.errors).toEqual([]);
        expect(sameFrames(c.frames, big)).toBe(true);
      }
      expect(pool.inUse).toBe(0);
    });

    it('rejects an over-long length before consuming data: code, value, stream offset, nothing after', () => {
      const maxFrame = 1000;
      const good = makeFrames([100, 200], 3, [withVnet ? 10 : 0]);
      const prefix = refEncode(good, withVnet);
      const badHdr = Buffer.alloc(4);
      badHdr.writeUInt32BE(maxFrame + 1, 0);
      const after = refEncode(makeFrames([50, 60], 4), withVnet);
      const s = Buffer.concat([prefix, badHdr, Buffer.alloc(maxFrame + 1 + (withVnet ? 4 : 0), 0xab), after]);
      // Every split point, so the length field may straddle chunks too.
      const pool = smallPool();
      for (let cut = 0; cut <= prefix.length + 12; cut++) {
        const c = collector(pool);
        const d = new FrameDecoder({ vnetHdr: withVnet, pool, maxFrame, onFrame: c.onFrame, onError: c.onError });
        d.push(Buffer.from(s.subarray(0, cut)));
        d.push(Buffer.from(s.subarray(cut)));
        expect(sameFrames(c.frames, good)).toBe(true);
        expect(c.errors.length).toBe(1);
        const e = c.errors[0]!;
        expect(e).toBeInstanceOf(FramingError);
        expect(e.code).toBe('ERR_FRAME_TOO_LONG');
        expect(e.value).toBe(maxFrame + 1);
        expect(e.streamOffset).toBe(prefix.length);
        expect(d.failed).toBe(true);
        // Only the 4-byte length field of the bad frame was consumed.
        expect(d.streamOffset).toBe(prefix.length + 4);
        expect(d.stats().errors.ERR_FRAME_TOO_LONG).toBe(1);
        // Nothing is consumed or emitted while failed.
        expect(d.push(refEncode(makeFrames([10], 5), withVnet))).toBe(true);
        expect(c.frames.length).toBe(good.length);
        expect(d.streamOffset).toBe(prefix.length + 4);
      }
      expect(pool.inUse).toBe(0);
    });

    it('rejects 0xffffffff as a length without trying to allocate', () => {
      const pool = smallPool();
      const c = collector(pool);
      const d = new FrameDecoder({ vnetHdr: withVnet, pool, onFrame: c.onFrame, onError: c.onError });
      d.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
      expect(c.errors[0]!.code).toBe('ERR_FRAME_TOO_LONG');
      expect(c.errors[0]!.value).toBe(0xffffffff);
      expect(c.errors[0]!.streamOffset).toBe(0);
      expect(pool.stats().acquires).toBe(0);
    });

    it('reset() after an error recovers: the next stream decodes from offset 0', () => {
      const pool = smallPool();
      const c = collector(pool);
      const d = new FrameDecoder({ vnetHdr: withVnet, pool, maxFrame: 100, onFrame: c.onFrame, onError: c.onError });
      d.push(Buffer.from([0, 0, 1, 0])); // length 256 > 100
      expect(d.failed).toBe(true);
      d.reset();
      expect(d.failed).toBe(false);
      expect(d.streamOffset).toBe(0);
      d.push(stream);
      expect(sameFrames(c.frames, frames)).toBe(true);
      expect(d.stats().resets).toBe(1);
      expect(pool.inUse).toBe(0);
    });

    it('reset() mid-frame releases the partial slot and drops the half frame', () => {
      const pool = smallPool();
      const c = collector(pool);
      const d = new FrameDecoder({ vnetHdr: withVnet, pool, onFrame: c.onFrame, onError: c.onError });
      d.push(stream.subarray(0, 30)); // inside frame 0 (60 bytes of data)
      expect(pool.inUse).toBe(1);
      expect(d.atFrameBoundary).toBe(false);
      d.reset();
      expect(pool.inUse).toBe(0);
      d.push(stream);
      expect(sameFrames(c.frames, frames)).toBe(true);
      expect(pool.inUse).toBe(0);
    });

    it('skips zero-length frames and counts them (default policy)', () => {
      const pool = smallPool();
      const f = makeFrames([20, 30], 9);
      const zero = Buffer.alloc(withVnet ? 8 : 4); // length 0 (and vnet 0)
      const s = Buffer.concat([zero, refEncode([f[0]!], withVnet), zero, zero, refEncode([f[1]!], withVnet), zero]);
      for (let cut = 0; cut <= s.length; cut++) {
        const c = decodeSplit(s, [cut], withVnet, pool);
        expect(c.errors).toEqual([]);
        expect(sameFrames(c.frames, f)).toBe(true);
      }
      const c = collector(pool);
      const d = new FrameDecoder({ vnetHdr: withVnet, pool, onFrame: c.onFrame, onError: c.onError });
      d.push(s);
      expect(d.stats().emptyFrames).toBe(4);
      expect(d.stats().frames).toBe(2);
      expect(pool.inUse).toBe(0);
    });

    it("fails on zero-length frames with emptyFrames: 'error'", () => {
      const pool = smallPool();
      const c = collector(pool);
      const d = new FrameDecoder({ vnetHdr: withVnet, pool, emptyFrames: 'error', onFrame: c.onFrame, onError: c.onError });
      const f = makeFrames([20], 9);
      const lead = refEncode(f, withVnet);
      d.push(Buffer.concat([lead, Buffer.alloc(withVnet ? 8 : 4), lead]));
      expect(c.frames.length).toBe(1);
      expect(c.errors[0]!.code).toBe('ERR_FRAME_EMPTY');
      expect(c.errors[0]!.streamOffset).toBe(lead.length);
      expect(pool.inUse).toBe(0);
    });

    it('pauses on pool exhaustion mid-stream and resumes with no loss or duplication', () => {
      // 3 slots only; the consumer holds frames until the test releases them.
      const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 3 }] });
      const many = makeFrames(Array.from({ length: 40 }, (_, i) => 1 + ((i * 37) % 200)), 11, withVnet ? [0, 12, 20] : [0]);
      const s = refEncode(many, withVnet);
      const held: number[] = [];
      const got: TestFrame[] = [];
      const d = new FrameDecoder({
        vnetHdr: withVnet,
        pool,
        maxFrame: 2048,
        onFrame: (h, v) => held.push(h) && got.push({ data: Buffer.from(pool.view(h)), vnetLen: v }),
        onError: (e) => {
          throw e;
        },
      });
      // Feed in 97-byte chunks; a paused decoder keeps every chunk pushed to it.
      let paused = 0;
      for (let o = 0; o < s.length; o += 97) {
        if (!d.push(Buffer.from(s.subarray(o, o + 97)))) paused++;
      }
      expect(paused).toBeGreaterThan(0);
      expect(d.paused).toBe(true);
      expect(got.length).toBe(3);
      // Owner loop: release what we hold, resume, repeat.
      let rounds = 0;
      while (d.paused) {
        while (held.length > 0) pool.release(held.shift()!);
        d.resume();
        if (++rounds > 1000) throw new Error('no progress');
      }
      while (held.length > 0) pool.release(held.shift()!);
      expect(sameFrames(got, many)).toBe(true);
      expect(d.stats().pausedCount).toBeGreaterThan(0);
      expect(d.stats().bytes).toBe(s.length);
      expect(pool.inUse).toBe(0);
    });

    it('resumes from pool.whenAvailable when the consumer releases asynchronously', async () => {
      const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 2 }] });
      const many = makeFrames(Array.from({ length: 25 }, (_, i) => 60 + i), 12);
      const s = refEncode(many, withVnet);
      const got: TestFrame[] = [];
      const d = new FrameDecoder({
        vnetHdr: withVnet,
        pool,
        maxFrame: 2048,
        onFrame: (h, v) => {
          got.push({ data: Buffer.from(pool.view(h)), vnetLen: v });
          setTimeout(() => pool.release(h), 1); // consumer frees later
        },
        onError: (e) => {
          throw e;
        },
      });
      await new Promise<void>((resolve) => {
        const retry = () => (d.resume() ? resolve() : pool.whenAvailable(retry));
        if (d.push(s)) resolve();
        else pool.whenAvailable(retry);
      });
      await new Promise((r) => setTimeout(r, 20));
      expect(sameFrames(got, many)).toBe(true);
      expect(pool.inUse).toBe(0);
    });
  });
}

describe('FrameDecoder vnet_hdr_len validation', () => {
  const cases: Array<[string, number, number, boolean]> = [
    ['vnet 21 > 20', 100, 21, false],
    ['vnet > length', 10, 12, false],
    ['vnet 0xffffffff', 100, 0xffffffff, false],
    ['vnet 20 (largest valid)', 100, 20, true],
    ['vnet = length', 12, 12, true],
  ];
  for (const [name, len, vnet, ok] of cases) {
    it(`${name} → ${ok ? 'accepted' : 'ERR_FRAME_BAD_VNET_LEN'}`, () => {
      const pool = smallPool();
      const lead = refEncode(makeFrames([40], 1, [10]), true);
      const hdr = Buffer.alloc(8);
      hdr.writeUInt32BE(len, 0);
      hdr.writeUInt32BE(vnet, 4);
      const s = Buffer.concat([lead, hdr, Buffer.alloc(len, 7), lead]);
      // Split inside the vnet field to exercise the slow path too.
      for (const cut of [0, lead.length + 5, lead.length + 7]) {
        const c = decodeSplit(s, [cut], true, pool);
        if (ok) {
          expect(c.errors).toEqual([]);
          expect(c.frames.length).toBe(3);
          expect(c.frames[1]!.vnetLen).toBe(vnet);
        } else {
          expect(c.frames.length).toBe(1);
          expect(c.errors.length).toBe(1);
          expect(c.errors[0]!.code).toBe('ERR_FRAME_BAD_VNET_LEN');
          expect(c.errors[0]!.value).toBe(vnet);
          expect(c.errors[0]!.streamOffset).toBe(lead.length);
        }
      }
      expect(pool.inUse).toBe(0);
    });
  }

  it('without vnet support the same bytes are plain frames (the field is data)', () => {
    const pool = smallPool();
    const hdr = Buffer.from([0, 0, 0, 8, 0, 0, 0, 99, 1, 2, 3, 4]);
    const c = decodeSplit(hdr, [], false, pool);
    expect(c.errors).toEqual([]);
    expect(c.frames[0]!.data).toEqual(Buffer.from([0, 0, 0, 99, 1, 2, 3, 4]));
    expect(c.frames[0]!.vnetLen).toBe(0);
  });
});

describe('FrameDecoder configuration', () => {
  it('refuses a maxFrame larger than the pool can hold', () => {
    const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 4 }] });
    let err: unknown;
    try {
      new FrameDecoder({ vnetHdr: false, pool, onFrame: () => {}, onError: () => {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ColoError);
    expect((err as ColoError).code).toBe('ERR_INVALID_ARGUMENT');
    expect(String((err as Error).message)).toContain('69632');
  });

  it('QEMU would silently eat an over-long frame; we reject it at its header', () => {
    // QEMU's decoder (reference §2.1) checks the accumulated byte count, so it swallows up to
    // NET_BUFSIZE bytes of this bogus frame before noticing. We decide from the length field.
    const pool = smallPool();
    const c = collector(pool);
    const d = new FrameDecoder({ vnetHdr: false, pool, onFrame: c.onFrame, onError: c.onError });
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32BE(NET_BUFSIZE + 1, 0);
    d.push(Buffer.concat([hdr, Buffer.alloc(NET_BUFSIZE, 1)]));
    expect(c.errors[0]!.code).toBe('ERR_FRAME_TOO_LONG');
    expect(c.errors[0]!.value).toBe(NET_BUFSIZE + 1);
    expect(d.streamOffset).toBe(4);
    expect(pool.stats().acquires).toBe(0);
  });
});

describe('FrameDecoder transientChunks (a reused read buffer)', () => {
  /** Feed `s` through ONE buffer reused for every chunk (as a socket's onread buffer is), with a 2-slot pool. */
  function feedReused(transientChunks: boolean): { got: TestFrame[]; many: TestFrame[]; pausedCount: number; inUse: number; errors: number } {
    const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 2 }] });
    const many = makeFrames(Array.from({ length: 60 }, (_, i) => 40 + ((i * 53) % 300)), 21);
    const s = refEncode(many, false);
    const held: number[] = [];
    const got: TestFrame[] = [];
    let errors = 0;
    const d = new FrameDecoder({
      vnetHdr: false,
      pool,
      maxFrame: 2048,
      transientChunks,
      onFrame: (h, v) => held.push(h) && got.push({ data: Buffer.from(pool.view(h)), vnetLen: v }),
      onError: () => errors++,
    });
    const readBuf = Buffer.alloc(211);
    for (let o = 0; o < s.length; ) {
      const n = Math.min(readBuf.length, s.length - o);
      s.copy(readBuf, 0, o, o + n);
      o += n;
      // The owner stops reading while paused: drain before the buffer is reused.
      d.push(readBuf.subarray(0, n));
      readBuf.fill(0xee); // the next read overwrites it
      let rounds = 0;
      while (d.paused && !d.failed) {
        while (held.length > 0) pool.release(held.shift()!);
        d.resume();
        if (++rounds > 1000) throw new Error('no progress');
      }
    }
    while (held.length > 0) pool.release(held.shift()!);
    return { got, many, pausedCount: d.stats().pausedCount, inUse: pool.inUse, errors };
  }

  it('keeps copies while paused: every frame intact although the buffer was overwritten', () => {
    const r = feedReused(true);
    expect(r.pausedCount).toBeGreaterThan(0);
    expect(r.errors).toBe(0);
    expect(sameFrames(r.got, r.many)).toBe(true);
    expect(r.inUse).toBe(0);
  });

  it('(control) without it, the kept chunk is the overwritten buffer: the stream is corrupted', () => {
    const r = feedReused(false);
    expect(r.pausedCount).toBeGreaterThan(0);
    // Garbage where a kept header was: a bogus length (framing error) or wrong frame bytes.
    expect(r.errors > 0 || !sameFrames(r.got, r.many)).toBe(true);
  });
});
