import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { NET_BUFSIZE } from '../../src/packet/pool.js';
import { encodeFrameHeader } from '../../src/wire/framing.js';
import { FrameWriter } from '../../src/wire/writer.js';
import { decodeSplit, makeFrames, refEncode, sameFrames, smallPool } from './frames.js';
import type { TestFrame } from './frames.js';

/** A sink that copies each chunk (so later reuse cannot alter what we saw) and frees it at once. */
function copyingSink() {
  const chunks: Buffer[] = [];
  return {
    chunks,
    sink: (c: Buffer, done: () => void) => {
      chunks.push(Buffer.from(c));
      done();
      return true;
    },
    all: () => Buffer.concat(chunks),
  };
}

describe('encodeFrameHeader', () => {
  it('writes big-endian length, then vnet_hdr_len only when asked (known byte layout)', () => {
    const b = Buffer.alloc(10, 0xee);
    expect(encodeFrameHeader(b, 1, 0x01020304, 12, true)).toBe(9);
    expect([...b]).toEqual([0xee, 1, 2, 3, 4, 0, 0, 0, 12, 0xee]);
    const c = Buffer.alloc(6, 0xee);
    expect(encodeFrameHeader(c, 0, 42, 12, false)).toBe(4);
    expect([...c]).toEqual([0, 0, 0, 42, 0xee, 0xee]); // the qtest's "BE32 len=22" form, here 42
    const d = Buffer.alloc(4);
    encodeFrameHeader(d, 0, 0xfffffffe, 0, false);
    expect(d.readUInt32BE(0)).toBe(0xfffffffe);
  });
});

for (const withVnet of [false, true]) {
  describe(`FrameWriter (vnet ${withVnet ? 'on' : 'off'})`, () => {
    it('output is byte-identical to the reference encoding and decodes back, for any chunk size (fast-check)', () => {
      const pool = smallPool();
      const frameArb = fc
        .tuple(fc.uint8Array({ minLength: 1, maxLength: 400 }), fc.integer({ min: 0, max: 20 }))
        .map(([d, v]): TestFrame => ({ data: Buffer.from(d), vnetLen: withVnet ? Math.min(v, d.length) : 0 }));
      fc.assert(
        fc.property(fc.array(frameArb, { minLength: 1, maxLength: 15 }), fc.integer({ min: 16, max: 700 }), (fs, chunkSize) => {
          const s = copyingSink();
          const w = new FrameWriter({ vnetHdr: withVnet, sink: s.sink, chunkSize, autoFlush: false });
          for (const f of fs) if (!w.writeFrame(f.data, 0, f.data.length, f.vnetLen)) return false;
          w.flush();
          const out = s.all();
          if (!out.equals(refEncode(fs, withVnet))) return false;
          if (s.chunks.some((c) => c.length > chunkSize)) return false;
          const back = decodeSplit(out, [], withVnet, pool);
          return sameFrames(back.frames, fs) && pool.inUse === 0;
        }),
        { numRuns: 300 },
      );
    });

    it('writes from an offset inside a larger buffer and from pool handles (tag = vnet len)', () => {
      const pool = smallPool();
      const frames = makeFrames([60, 1514, 9000, NET_BUFSIZE], 21, withVnet ? [12] : [0]);
      const s = copyingSink();
      const w = new FrameWriter({ vnetHdr: withVnet, sink: s.sink, pool, autoFlush: false });
      const big = Buffer.concat([Buffer.alloc(7, 0x55), frames[0]!.data, Buffer.alloc(3, 0x66)]);
      expect(w.writeFrame(big, 7, 60, frames[0]!.vnetLen)).toBe(true);
      for (const f of frames.slice(1)) {
        const h = pool.copyIn(f.data, 0, f.data.length);
        pool.tag[h] = f.vnetLen;
        expect(w.writeHandle(h)).toBe(true);
        pool.release(h);
      }
      w.flush();
      expect(s.all().equals(refEncode(frames, withVnet))).toBe(true);
      // A NET_BUFSIZE frame does not fit one 64 KiB chunk: it spans chunks.
      expect(s.chunks.length).toBeGreaterThan(1);
      expect(pool.inUse).toBe(0);
    });

    it('batches many frames into one sink call per tick (autoFlush)', async () => {
      const s = copyingSink();
      const w = new FrameWriter({ vnetHdr: withVnet, sink: s.sink });
      const frames = makeFrames(Array.from({ length: 500 }, () => 64), 3);
      for (const f of frames) w.writeFrame(f.data, 0, 64, 0);
      expect(s.chunks.length).toBe(0); // nothing yet: handed off at the end of the tick
      await Promise.resolve();
      expect(s.chunks.length).toBe(1);
      expect(s.all().equals(refEncode(frames, withVnet))).toBe(true);
      // A full chunk goes immediately.
      const many = makeFrames(Array.from({ length: 2000 }, () => 64), 4);
      for (const f of many) w.writeFrame(f.data, 0, 64, 0);
      const per = 64 + (withVnet ? 8 : 4);
      expect(s.chunks.length).toBe(1 + Math.floor((2000 * per) / 65536));
      await Promise.resolve();
      expect(s.all().equals(refEncode([...frames, ...many], withVnet))).toBe(true);
    });

    it('never overwrites a chunk that is still in flight; reuses it once flushed', () => {
      const held: Array<{ view: Buffer; copy: Buffer; done: () => void }> = [];
      const w = new FrameWriter({
        vnetHdr: withVnet,
        chunkSize: 256,
        ringSize: 2,
        autoFlush: false,
        sink: (c, done) => {
          held.push({ view: c, copy: Buffer.from(c), done });
          return true;
        },
      });
      const frames = makeFrames(Array.from({ length: 40 }, (_, i) => 30 + i), 8);
      for (const f of frames) w.writeFrame(f.data, 0, f.data.length, 0);
      w.flush();
      // Every chunk handed over is still intact although none was flushed yet.
      for (const h of held) expect(h.view.equals(h.copy)).toBe(true);
      const st = w.stats();
      expect(st.chunks).toBe(held.length);
      expect(st.chunkAllocs).toBe(held.length - 2); // the ring of 2 had to grow
      expect(Buffer.concat(held.map((h) => h.copy)).equals(refEncode(frames, withVnet))).toBe(true);
      // Flush completes: the ring is reused, no new allocation.
      for (const h of held) h.done();
      const before = w.stats().chunkAllocs;
      held.length = 0;
      for (const f of frames) w.writeFrame(f.data, 0, f.data.length, 0);
      w.flush();
      expect(w.stats().chunkAllocs).toBe(before);
      for (const h of held) expect(h.view.equals(h.copy)).toBe(true);
    });

    it('drops whole frames past maxChunks (bounded memory) and never emits a partial frame', () => {
      const out: Buffer[] = [];
      const w = new FrameWriter({
        vnetHdr: withVnet,
        chunkSize: 100,
        ringSize: 1,
        maxChunks: 3,
        autoFlush: false,
        sink: (c) => {
          out.push(Buffer.from(c));
          return true; // never calls done: every chunk stays in flight
        },
      });
      const frames = makeFrames(Array.from({ length: 20 }, () => 70), 5);
      const accepted: TestFrame[] = [];
      for (const f of frames) if (w.writeFrame(f.data, 0, 70, 0)) accepted.push(f);
      w.flush();
      expect(w.stats().dropped).toBe(frames.length - accepted.length);
      expect(w.stats().dropped).toBeGreaterThan(0);
      expect(Buffer.concat(out).equals(refEncode(accepted, withVnet))).toBe(true);
    });

    it('refuses zero-length, over-long and bad-vnet frames without writing anything', () => {
      const s = copyingSink();
      const w = new FrameWriter({ vnetHdr: withVnet, sink: s.sink, maxFrame: 100, autoFlush: false });
      const b = Buffer.alloc(200, 1);
      expect(w.writeFrame(b, 0, 0)).toBe(false);
      expect(w.writeFrame(b, 0, 101)).toBe(false);
      expect(w.writeFrame(b, 150, 60)).toBe(false); // past the end of b
      expect(w.writeFrame(b, 0, 10, 21)).toBe(!withVnet);
      expect(w.writeFrame(b, 0, 10, 11)).toBe(!withVnet);
      w.flush();
      expect(w.stats().rejected).toBe(withVnet ? 5 : 3);
      expect(s.all().length).toBe(withVnet ? 0 : 2 * 14);
    });

    it('reports sink backpressure until drained()', () => {
      let accept = false;
      let drains = 0;
      const w = new FrameWriter({
        vnetHdr: withVnet,
        autoFlush: false,
        onDrain: () => drains++,
        sink: (_c, done) => {
          done();
          return accept;
        },
      });
      const f = Buffer.alloc(60, 2);
      w.writeFrame(f, 0, 60);
      expect(w.backpressured).toBe(false);
      w.flush();
      expect(w.backpressured).toBe(true);
      w.writeFrame(f, 0, 60);
      w.flush();
      expect(w.stats().backpressureEvents).toBe(1);
      accept = true;
      w.drained();
      expect(w.backpressured).toBe(false);
      expect(drains).toBe(1);
    });

    it('reset() discards bytes not yet handed off, so the next stream starts on a frame boundary', () => {
      const s = copyingSink();
      const w = new FrameWriter({ vnetHdr: withVnet, sink: s.sink, chunkSize: 64, autoFlush: false });
      const f = makeFrames([100, 30], 6);
      w.writeFrame(f[0]!.data, 0, 100, 0); // first 64 bytes handed off, rest buffered
      expect(s.chunks.length).toBe(1);
      w.reset();
      s.chunks.length = 0;
      w.writeFrame(f[1]!.data, 0, 30, 0);
      w.flush();
      expect(s.all().equals(refEncode([f[1]!], withVnet))).toBe(true);
    });
  });
}
