/**
 * Defragmenter unit tests. Oracle: a datagram built whole from the RFC layouts, then cut into
 * fragments by the test's own fragmenter; reassembly must give back exactly the whole frame
 * (IPv4: MF/offset cleared, total length and header checksum fixed; IPv6: Fragment header
 * removed, Next Header chain and payload length fixed). Every scenario ends with the pool
 * empty, so no limit path leaks slots.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFRAG_OK,
  Defragmenter,
  DROP_BAD_LENGTH,
  DROP_DUPLICATE,
  DROP_INCONSISTENT,
  DROP_NO_MEMORY,
  DROP_NOT_FRAGMENT,
  DROP_OVERLAP,
  DROP_POISONED,
  DROP_POOL_EXHAUSTED,
  DROP_TINY_FIRST,
  DROP_TOO_LARGE,
  DROP_TOO_MANY_FRAGMENTS,
  DROP_TRUNCATED,
  type DefragOptions,
} from '../../src/flow/defrag.js';
import { CHECKSUM_GOOD, decodeFrame, LAYER_FRAG, LAYER_TCP, LAYER_UDP, PacketView, verifyIpv4Header, verifyL4Checksum } from '../../src/packet/index.js';
import { NO_HANDLE, PacketPool } from '../../src/packet/pool.js';
import { tcp } from '../packet/build.js';
import { DST4, evenPieces, fragmentV4, fragmentV6, pattern, SRC4, udpPayload, V6_DST, V6_SRC, wholeV4, wholeV6, type Piece, type V4Datagram, type V6Datagram } from './defrag-helpers.js';

const pools: PacketPool[] = [];
afterEach(() => {
  // Every scenario must give every slot back (the test releases outputs, then clears).
  const inUse = pools.map((p) => p.inUse);
  pools.length = 0;
  expect(inUse.every((n) => n === 0)).toBe(true);
});

function setup(opts: Partial<DefragOptions> = {}) {
  const pool = opts.pool ?? new PacketPool();
  pools.push(pool);
  const d = new Defragmenter({ seed: 3, ...opts, pool });
  const v = new PacketView();
  /** Push one frame; returns the reassembled bytes (copied, handle released) or null. */
  const push = (frame: Uint8Array, now = 0, wireLen = frame.length): Uint8Array | null => {
    decodeFrame(v, frame, 0, frame.length, 0, wireLen);
    const h = d.push(v, now);
    if (h === NO_HANDLE) return null;
    const out = Uint8Array.from(pool.view(h));
    pool.release(h);
    return out;
  };
  const done = () => d.clear();
  return { pool, d, push, done };
}

function pushAll(push: (f: Uint8Array, now?: number) => Uint8Array | null, frames: Uint8Array[], now = 0): Array<Uint8Array | null> {
  return frames.map((f) => push(f, now));
}

const UDP4: V4Datagram = { id: 0x1234, proto: 17, payload: udpPayload(SRC4, DST4, 5000, 6000, pattern(3000)), src: SRC4, dst: DST4 };
const UDP6: V6Datagram = { id: 0xdeadbeef, nh: 17, payload: udpPayload(V6_SRC, V6_DST, 5000, 6000, pattern(2500)) };

describe('IPv4 reassembly', () => {
  it('in order: the result is the whole datagram, byte for byte, and decodes as UDP with good checksums', () => {
    const { push, d, done } = setup();
    const frames = fragmentV4(UDP4, evenPieces(UDP4.payload.length, 1480));
    const out = pushAll(push, frames);
    expect(out.slice(0, -1)).toEqual([null, null]);
    expect(d.lastDrop).toBe(DEFRAG_OK);
    expect(out[2]).toEqual(wholeV4(UDP4));
    const w = new PacketView();
    expect(decodeFrame(w, out[2]!, 0, out[2]!.length)).toBe(0);
    expect(w.layers & (LAYER_UDP | LAYER_FRAG)).toBe(LAYER_UDP);
    expect(verifyIpv4Header(w)).toBe(true);
    expect(verifyL4Checksum(w)).toBe(CHECKSUM_GOOD);
    expect(d.stats()).toMatchObject({ fragments: 3, reassembled: 1, pending: 0, heldBytes: 0, heldFragments: 0 });
    done();
  });

  it('any arrival order gives the same datagram (property)', () => {
    const { push, d, done } = setup();
    const whole = wholeV4(UDP4);
    const pieces = evenPieces(UDP4.payload.length, 376);
    fc.assert(
      fc.property(fc.shuffledSubarray(pieces.map((_, i) => i), { minLength: pieces.length, maxLength: pieces.length }), (order) => {
        const frames = fragmentV4(UDP4, pieces);
        const outs = order.map((i) => push(frames[i]!));
        expect(outs.slice(0, -1).every((o) => o === null)).toBe(true);
        expect(outs[outs.length - 1]).toEqual(whole);
      }),
      { numRuns: 60, seed: 7 },
    );
    expect(d.stats().pending).toBe(0);
    done();
  });

  it('keeps the first fragment\'s options, DF bit and VLAN tags (QinQ)', () => {
    const { push, done } = setup();
    // Options: NOP, NOP, then a 6-byte option padded with EOL (RFC 791 layout), 8 bytes total.
    const dg: V4Datagram = { ...UDP4, options: [1, 1, 0x07, 6, 4, 0, 0, 0], flags: 2, vlans: [100, 200] };
    const out = pushAll(push, fragmentV4(dg, [[0, 1000], [1000, 2000], [2000, 3008]]).reverse());
    expect(out[2]).toEqual(wholeV4(dg));
    done();
  });

  it('a datagram ending with a zero-length last fragment', () => {
    const { push, done } = setup();
    const dg: V4Datagram = { ...UDP4, payload: UDP4.payload.slice(0, 1600) };
    const frames = fragmentV4(dg, [[0, 800], [800, 1600], [1600, 1600]]);
    expect(pushAll(push, frames)[2]).toEqual(wholeV4(dg));
    done();
  });

  it('datagrams with different ids, protocols, addresses or VLANs are kept apart', () => {
    const { push, d, done } = setup();
    const variants: V4Datagram[] = [UDP4, { ...UDP4, id: 0x1235 }, { ...UDP4, proto: 253 }, { ...UDP4, src: DST4, dst: SRC4 }, { ...UDP4, vlans: [7] }];
    const frames = variants.map((x) => fragmentV4(x, evenPieces(x.payload.length, 1480)));
    // Interleave: first pieces of all, then second pieces, then the last ones.
    for (let k = 0; k < 2; k++) for (const f of frames) expect(push(f[k]!)).toBeNull();
    expect(d.stats().pending).toBe(variants.length);
    frames.forEach((f, i) => expect(push(f[2]!)).toEqual(wholeV4(variants[i]!)));
    done();
  });
});

describe('IPv6 reassembly', () => {
  it('no extension headers: the Fragment header goes, Next Header and payload length are fixed', () => {
    const { push, done } = setup();
    const frames = fragmentV6(UDP6, evenPieces(UDP6.payload.length, 1232));
    const out = pushAll(push, frames);
    expect(out[frames.length - 1]).toEqual(wholeV6(UDP6));
    const w = new PacketView();
    decodeFrame(w, out[frames.length - 1]!, 0, out[frames.length - 1]!.length);
    expect(verifyL4Checksum(w)).toBe(CHECKSUM_GOOD);
    done();
  });

  it('unfragmentable hop-by-hop + routing headers stay; a destination-options header after the Fragment header is payload', () => {
    const { push, done } = setup();
    const dstOpts = [17, 0, 1, 4, 0, 0, 0, 0]; // next = UDP, PadN option
    const seg = udpPayload(V6_SRC, V6_DST, 1, 2, pattern(1900, 9));
    const dg: V6Datagram = { id: 77, unfrag: [[0, [1, 4, 0, 0, 0, 0]], [43, [0, 0, 0, 0, 0, 0]]], nh: 60, payload: [...dstOpts, ...seg] };
    const frames = fragmentV6(dg, [[0, 800], [800, 1600], [1600, dg.payload.length]]);
    const out = pushAll(push, [frames[1]!, frames[2]!, frames[0]!]);
    expect(out[2]).toEqual(wholeV6(dg));
    const w = new PacketView();
    expect(decodeFrame(w, out[2]!, 0, out[2]!.length)).toBe(0);
    expect(w.ip6ExtCount).toBe(3);
    expect(verifyL4Checksum(w)).toBe(CHECKSUM_GOOD);
    done();
  });

  it('60 s timeout: a fragment 59.999 s after the first still completes; at 60 s it starts over', () => {
    const { push, d, done } = setup();
    const frames = fragmentV6(UDP6, evenPieces(UDP6.payload.length, 1232));
    push(frames[0]!, 0);
    push(frames[1]!, 1);
    expect(push(frames[2]!, 59_999)).toEqual(wholeV6(UDP6));
    push(frames[0]!, 100_000);
    push(frames[1]!, 100_000);
    expect(push(frames[2]!, 160_000)).toBeNull();
    expect(d.stats().datagramsDropped.timeout).toBe(1);
    done();
  });
});

describe('duplicates and overlaps', () => {
  it('an exact duplicate is ignored and counted; the datagram still completes', () => {
    const { push, d, done } = setup();
    const f = fragmentV4(UDP4, evenPieces(UDP4.payload.length, 1480));
    expect(push(f[0]!)).toBeNull();
    expect(push(f[0]!)).toBeNull();
    expect(d.lastDrop).toBe(DROP_DUPLICATE);
    expect(push(f[1]!)).toBeNull();
    expect(push(f[1]!)).toBeNull();
    expect(push(f[2]!)).toEqual(wholeV4(UDP4));
    expect(d.stats().duplicates).toBe(2);
    done();
  });

  const overlapCases: Array<[string, Piece[]]> = [
    ['a later fragment overlapping the end of an earlier one', [[0, 1480], [1472, 3000]]],
    ['a fragment overlapping the start of a later one', [[1480, 3000], [0, 1488]]],
    ['a fragment inside another', [[0, 2000], [800, 1600]]],
    ['a fragment covering another', [[800, 1600], [0, 2000]]],
  ];
  for (const [what, pieces] of overlapCases) {
    it(`overlap (${what}) drops the whole datagram and poisons its key (RFC 5722)`, () => {
      const { push, d, done } = setup();
      const f = fragmentV4(UDP4, [...pieces, [2000, 3000]], { mf: [true, true, false] });
      expect(push(f[0]!)).toBeNull();
      expect(push(f[1]!)).toBeNull();
      expect(d.lastDrop).toBe(DROP_OVERLAP);
      expect(d.stats()).toMatchObject({ heldFragments: 0, heldBytes: 0, poisoned: 1 });
      expect(push(f[2]!)).toBeNull();
      expect(d.lastDrop).toBe(DROP_POISONED);
      expect(d.stats().datagramsDropped.overlap).toBe(1);
      expect(d.stats().poisonedFragments).toBe(1);
      done();
    });
  }

  it('same offset and length but different bytes is an overlap, not a duplicate', () => {
    const { push, d, done } = setup();
    const f = fragmentV4(UDP4, evenPieces(UDP4.payload.length, 1480));
    const changed = Uint8Array.from(f[1]!);
    changed[changed.length - 1] ^= 0xff;
    push(f[1]!);
    push(changed);
    expect(d.lastDrop).toBe(DROP_OVERLAP);
    done();
  });

  it('after its timeout a poisoned key reassembles again (IPv4: 30 s)', () => {
    const { push, d, done } = setup();
    const f = fragmentV4(UDP4, evenPieces(UDP4.payload.length, 1480));
    push(f[0]!, 0);
    push(fragmentV4(UDP4, [[8, 1488]], { mf: [true] })[0]!, 0);
    expect(d.lastDrop).toBe(DROP_OVERLAP);
    expect(push(f[1]!, 29_999)).toBeNull();
    expect(d.lastDrop).toBe(DROP_POISONED);
    expect(d.expire(30_000)).toBe(1);
    expect(d.stats().datagramsDropped.timeout).toBe(0); // a poisoned key expiring is not a timeout
    expect(pushAll(push, f, 30_001)[2]).toEqual(wholeV4(UDP4));
    done();
  });
});

describe('limits and malformed fragments', () => {
  it('timeout: expire() drops incomplete datagrams 30 s (IPv4) after their first fragment, with bounded work', () => {
    const { push, d, done } = setup();
    for (let id = 1; id <= 5; id++) push(fragmentV4({ ...UDP4, id }, [[0, 1480]], { mf: [true] })[0]!, id * 1000);
    expect(d.expire(30_999)).toBe(0);
    expect(d.expire(33_000, 2)).toBe(2);
    expect(d.expire(40_000)).toBe(3);
    expect(d.stats()).toMatchObject({ pending: 0, heldBytes: 0 });
    expect(d.stats().datagramsDropped.timeout).toBe(5);
    done();
  });

  it('maxFragmentsPerDatagram: one more drops the datagram', () => {
    const { push, d, done } = setup({ maxFragmentsPerDatagram: 4 });
    const f = fragmentV4(UDP4, evenPieces(UDP4.payload.length, 608)); // 3008 bytes: 5 pieces
    expect(pushAll(push, f.slice(0, 4))).toEqual([null, null, null, null]);
    expect(push(f[4]!)).toBeNull();
    expect(d.lastDrop).toBe(DROP_TOO_MANY_FRAGMENTS);
    expect(d.stats().datagramsDropped.tooManyFragments).toBe(1);
    const ok = setup({ maxFragmentsPerDatagram: 5 });
    expect(pushAll(ok.push, f)[4]).toEqual(wholeV4(UDP4));
    ok.done();
    done();
  });

  it('maxDatagrams: a new datagram evicts the oldest one', () => {
    const { push, d, done } = setup({ maxDatagrams: 2 });
    const a = fragmentV4({ ...UDP4, id: 1 }, evenPieces(UDP4.payload.length, 1480));
    const b = fragmentV4({ ...UDP4, id: 2 }, evenPieces(UDP4.payload.length, 1480));
    const c = fragmentV4({ ...UDP4, id: 3 }, evenPieces(UDP4.payload.length, 1480));
    push(a[0]!, 0);
    push(b[0]!, 1);
    push(c[0]!, 2); // evicts a
    expect(d.stats().datagramsDropped.evicted).toBe(1);
    expect(push(b[1]!, 3)).toBeNull();
    expect(push(b[2]!, 3)).toEqual(wholeV4({ ...UDP4, id: 2 }));
    expect(push(a[1]!, 4)).toBeNull(); // a starts over, incomplete
    expect(pushAll(push, c.slice(1), 5)[1]).toEqual(wholeV4({ ...UDP4, id: 3 }));
    done();
  });

  it('maxBytes: the oldest datagrams make room; one datagram larger than the budget is dropped', () => {
    const frameLen = fragmentV4(UDP4, [[0, 1480]])[0]!.length; // 14 + 20 + 1480
    const { push, d, done } = setup({ maxBytes: 3 * frameLen });
    const a = fragmentV4({ ...UDP4, id: 1 }, evenPieces(UDP4.payload.length, 1480));
    const b = fragmentV4({ ...UDP4, id: 2 }, evenPieces(UDP4.payload.length, 1480));
    push(a[0]!, 0);
    push(a[1]!, 0);
    push(b[0]!, 1);
    expect(d.stats().heldBytes).toBe(3 * frameLen);
    push(b[1]!, 1); // needs room: a goes
    expect(d.stats().datagramsDropped.evicted).toBe(1);
    expect(push(b[2]!, 1)).toEqual(wholeV4({ ...UDP4, id: 2 }));
    const big = fragmentV4({ ...UDP4, id: 9, payload: pattern(8000) }, evenPieces(8000, 1480));
    const outs = pushAll(push, big, 2);
    expect(big.length).toBe(6);
    expect(outs.every((o) => o === null)).toBe(true);
    expect(d.stats().datagramsDropped.noMemory).toBe(1);
    expect(d.stats().heldBytes).toBeLessThanOrEqual(3 * frameLen);
    expect([DROP_NO_MEMORY, DROP_POISONED]).toContain(d.lastDrop);
    done();
  });

  it('reassembled length over 65,535 drops the datagram (IPv4 and IPv6)', () => {
    const { push, d, done } = setup();
    // Offset 65,528 (the largest the 13-bit field allows) + 8 bytes + a 20-byte header > 65,535.
    const f4 = fragmentV4({ ...UDP4, payload: pattern(65_536) }, [[65_528, 65_536]], { mf: [false] });
    expect(push(f4[0]!)).toBeNull();
    expect(d.lastDrop).toBe(DROP_TOO_LARGE);
    const f6 = fragmentV6({ ...UDP6, unfrag: [[0, [1, 4, 0, 0, 0, 0]]], payload: pattern(65_536) }, [[65_528, 65_536]], { mf: [false] });
    expect(push(f6[0]!)).toBeNull();
    expect(d.lastDrop).toBe(DROP_TOO_LARGE);
    expect(d.stats().datagramsDropped.tooLarge).toBe(2);
    // The largest legal IPv6 datagram (payload length exactly 65,535) does reassemble.
    const max: V6Datagram = { ...UDP6, id: 5, payload: pattern(65_535) };
    const out = pushAll(push, fragmentV6(max, evenPieces(65_535, 1448)));
    expect(out[out.length - 1]).toEqual(wholeV6(max));
    done();
  });

  it('a non-last fragment whose length is not a multiple of 8 is dropped alone', () => {
    const { push, d, done } = setup();
    const f = fragmentV4(UDP4, evenPieces(UDP4.payload.length, 1480));
    const odd = fragmentV4(UDP4, [[1480, 1484]], { mf: [true] })[0]!;
    push(f[0]!);
    expect(push(odd)).toBeNull();
    expect(d.lastDrop).toBe(DROP_BAD_LENGTH);
    expect(push(f[1]!)).toBeNull();
    expect(push(f[2]!)).toEqual(wholeV4(UDP4));
    expect(d.stats().badLength).toBe(1);
    done();
  });

  it('tiny first fragment (RFC 1858): a TCP first fragment without the whole TCP header drops the datagram', () => {
    const { push, d, done } = setup();
    const seg = tcp({ sport: 1, dport: 80, seq: 1, ack: 0, flags: 0x02, window: 1000 }, pattern(100));
    const dg: V4Datagram = { id: 99, proto: 6, payload: seg };
    const f = fragmentV4(dg, [[0, 8], [8, seg.length]]);
    expect(push(f[0]!)).toBeNull();
    expect(d.lastDrop).toBe(DROP_TINY_FIRST);
    expect(push(f[1]!)).toBeNull();
    expect(d.lastDrop).toBe(DROP_POISONED);
    // With the whole header in the first fragment it reassembles.
    const g = fragmentV4({ ...dg, id: 100 }, [[0, 24], [24, seg.length]]);
    const out = pushAll(push, g)[1]!;
    expect(out).toEqual(wholeV4({ ...dg, id: 100 }));
    const w = new PacketView();
    decodeFrame(w, out, 0, out.length);
    expect(w.layers & LAYER_TCP).toBe(LAYER_TCP);
    done();
  });

  it('inconsistent tails: two different last fragments, data past the end', () => {
    const { push, d, done } = setup();
    push(fragmentV4(UDP4, [[0, 1480], [1480, 2960]])[1]!); // last: ends at 2960
    push(fragmentV4(UDP4, [[2960, 3000]], { mf: [false] })[0]!); // another last, ends at 3000
    expect(d.lastDrop).toBe(DROP_INCONSISTENT);
    push(fragmentV4({ ...UDP4, id: 2 }, [[1480, 2960]], { mf: [false] })[0]!);
    push(fragmentV4({ ...UDP4, id: 2 }, [[2960, 3000]], { mf: [true] })[0]!); // past the end
    expect(d.lastDrop).toBe(DROP_INCONSISTENT);
    expect(d.stats().datagramsDropped.inconsistent).toBe(2);
    done();
  });

  it('a snaplen-truncated fragment cannot be reassembled', () => {
    const { push, d, done } = setup();
    const f = fragmentV4(UDP4, evenPieces(UDP4.payload.length, 1480));
    const cut = f[1]!.subarray(0, 200);
    expect(push(cut, 0, f[1]!.length)).toBeNull();
    expect(d.lastDrop).toBe(DROP_TRUNCATED);
    expect(d.stats().datagramsDropped.truncated).toBe(1);
    done();
  });

  it('whole datagrams and non-IP frames are refused as not fragments', () => {
    const { push, d, done } = setup();
    expect(push(wholeV4(UDP4))).toBeNull();
    expect(d.lastDrop).toBe(DROP_NOT_FRAGMENT);
    expect(d.stats()).toMatchObject({ notFragment: 1, fragments: 0 });
    done();
  });

  it('pool exhausted while holding fragments or building the result: the datagram is dropped, nothing leaks', () => {
    // Two 2 KiB slots: the third fragment cannot be held.
    const small = setup({ pool: new PacketPool({ classes: [{ slotSize: 2048, slots: 2 }] }) });
    const f = fragmentV4(UDP4, evenPieces(UDP4.payload.length, 1480));
    expect(pushAll(small.push, f)).toEqual([null, null, null]);
    expect(small.d.lastDrop).toBe(DROP_POOL_EXHAUSTED);
    expect(small.pool.inUse).toBe(0);
    small.done();
    // Room for the fragments but no slot large enough for the 3 KiB result.
    const noBig = setup({ pool: new PacketPool({ classes: [{ slotSize: 2048, slots: 8 }] }) });
    expect(pushAll(noBig.push, f)[2]).toBeNull();
    expect(noBig.d.lastDrop).toBe(DROP_POOL_EXHAUSTED);
    expect(noBig.d.stats().datagramsDropped.poolExhausted).toBe(1);
    noBig.done();
  });

  it('rejects bad limits with typed errors', () => {
    const pool = new PacketPool({ classes: [{ slotSize: 64, slots: 1 }] });
    expect(() => new Defragmenter({ pool, maxDatagrams: 0 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => new Defragmenter({ pool, maxFragmentsPerDatagram: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => new Defragmenter({ pool, timeoutV6Ms: 0 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});

describe('zero-copy input', () => {
  it('fragments already in pool slots are retained, not copied', () => {
    const pool = new PacketPool();
    pools.push(pool);
    const d = new Defragmenter({ pool, seed: 1 });
    const v = new PacketView();
    const f = fragmentV4(UDP4, evenPieces(UDP4.payload.length, 1480));
    const hs = f.map((fr) => pool.copyIn(fr, 0, fr.length));
    let out = NO_HANDLE;
    for (const h of hs) {
      decodeFrame(v, pool.buffer(h), pool.offset(h), pool.length(h));
      out = d.push(v, 0, h);
      if (out === NO_HANDLE) expect(pool.refCount(h)).toBe(2);
    }
    expect(out).not.toBe(NO_HANDLE);
    expect(Uint8Array.from(pool.view(out))).toEqual(wholeV4(UDP4));
    // Only the caller's references remain on the fragments, plus the result.
    expect(hs.map((h) => pool.refCount(h))).toEqual([1, 1, 1]);
    expect(pool.inUse).toBe(4);
    for (const h of [...hs, out]) pool.release(h);
  });

  it('a handle that does not hold the view\'s buffer is ignored (the fragment is copied)', () => {
    const pool = new PacketPool();
    pools.push(pool);
    const d = new Defragmenter({ pool, seed: 1 });
    const v = new PacketView();
    const f = fragmentV4(UDP4, evenPieces(UDP4.payload.length, 1480));
    const unrelated = pool.acquire(10);
    decodeFrame(v, f[0]!, 0, f[0]!.length);
    d.push(v, 0, unrelated);
    expect(pool.refCount(unrelated)).toBe(1);
    expect(d.stats().heldFragments).toBe(1);
    pool.release(unrelated);
    d.clear();
  });
});
