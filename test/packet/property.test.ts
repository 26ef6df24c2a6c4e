/**
 * Property tests: decodeFrame never throws and never reads outside [off, off + len), on random
 * bytes and on randomly damaged copies of frames from every shared capture.
 *
 * "Never reads outside" is shown two ways: (1) the frame decoded inside larger buffers with
 * two different fillers around it, and from an exactly-sized buffer, gives identical fields
 * (offsets rebased); (2) on a sample, a Proxy over the buffer records every index read.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeFrame, LAYER_IPV4, LAYER_IPV6, LAYER_TCP, LAYER_UDP, PacketView } from '../../src/packet/index.js';
import { sharedCapture } from '../helpers/paths.js';
import { allCaptures, loadFrames } from './frames.js';

type Snapshot = Record<string, number | boolean>;

/** Every own field of the view except `buf`, offsets rebased to the frame start. */
function snapshot(v: PacketView, base: number): Snapshot {
  const out: Snapshot = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'buf') continue;
    if (typeof x !== 'number' && typeof x !== 'boolean') throw new Error(`field ${k} is ${typeof x}`);
    const isOffset = k.endsWith('Off') || k === 'ipEnd';
    out[k] = isOffset && typeof x === 'number' && x >= 0 ? x - base : x;
  }
  return out;
}

/** Offsets and lengths stay inside the frame; a few cross-field facts hold. */
function checkInvariants(v: PacketView): void {
  const lo = v.frameOff;
  const hi = v.frameOff + v.frameLen;
  for (const [k, x] of Object.entries(v)) {
    if ((k.endsWith('Off') && k !== 'frameOff') || k === 'ipEnd') {
      if (typeof x === 'number' && x !== -1 && (x < lo || x > hi)) throw new Error(`${k}=${x} outside [${lo}, ${hi}]`);
    }
  }
  if (v.payloadOff >= 0) {
    if (v.payloadLen < 0 || v.payloadOff + v.payloadLen > hi) throw new Error(`payload [${v.payloadOff}, +${v.payloadLen}) outside frame end ${hi}`);
    if (v.payloadFullLen < v.payloadLen) throw new Error(`payloadFullLen ${v.payloadFullLen} < payloadLen ${v.payloadLen}`);
  }
  if ((v.layers & (LAYER_IPV4 | LAYER_IPV6)) !== 0 && v.ipEnd > hi) throw new Error(`ipEnd ${v.ipEnd} past frame end ${hi}`);
  if (v.status === 0 && v.stopLayer !== 0) throw new Error('OK with a stop layer');
  if (v.status !== 0 && v.stopLayer === 0) throw new Error('failure without a stop layer');
  if ((v.layers & v.stopLayer) !== 0) throw new Error('stop layer also marked decoded');
}

interface Placement {
  pre: number;
  post: number;
  fillA: number;
  fillB: number;
}

const placementArb: fc.Arbitrary<Placement> = fc.record({
  pre: fc.integer({ min: 1, max: 64 }),
  post: fc.integer({ min: 1, max: 64 }),
  fillA: fc.integer({ min: 0, max: 255 }),
  fillB: fc.integer({ min: 0, max: 255 }),
});

const vA = new PacketView();
const vB = new PacketView();
const vExact = new PacketView();

/** Decode `frame` three ways and insist on identical results. */
function decodeEverywhere(frame: Uint8Array, p: Placement, vnet: number, wireLen: number): void {
  const fillB = p.fillB === p.fillA ? p.fillA ^ 0xff : p.fillB;
  const a = new Uint8Array(p.pre + frame.length + p.post).fill(p.fillA);
  const b = new Uint8Array(p.pre + frame.length + p.post).fill(fillB);
  a.set(frame, p.pre);
  b.set(frame, p.pre);
  const stA = decodeFrame(vA, a, p.pre, frame.length, vnet, wireLen);
  const stB = decodeFrame(vB, b, p.pre, frame.length, vnet, wireLen);
  const stE = decodeFrame(vExact, frame, 0, frame.length, vnet, wireLen);
  expect(Number.isInteger(stA)).toBe(true);
  expect(stA).toBe(vA.status);
  expect(stB).toBe(stA);
  expect(stE).toBe(stA);
  const sA = snapshot(vA, p.pre);
  expect(snapshot(vB, p.pre)).toEqual(sA);
  expect(snapshot(vExact, 0)).toEqual(sA);
  checkInvariants(vA);
  checkInvariants(vExact);
}

/** Decode through a Proxy that records every indexed read; all must fall inside the frame. */
function readsStayInside(frame: Uint8Array, pre: number, vnet: number, wireLen: number): void {
  const raw = new Uint8Array(pre + frame.length + 8).fill(0xa5);
  raw.set(frame, pre);
  const outside: number[] = [];
  const spy = new Proxy(raw, {
    get(t, k) {
      if (typeof k === 'string' && k.length > 0 && k.charCodeAt(0) >= 48 && k.charCodeAt(0) <= 57) {
        const i = Number(k);
        if (i < pre || i >= pre + frame.length) outside.push(i);
      }
      return Reflect.get(t, k);
    },
  });
  decodeFrame(new PacketView(), spy, pre, frame.length, vnet, wireLen);
  expect(outside).toEqual([]);
}

const vnetArb = fc.constantFrom(0, 0, 0, 10, 12);
const wireArb = fc.oneof(fc.constant('exact' as const), fc.constant('orig' as const), fc.nat(70_000));

describe('random bytes', () => {
  it('never throws, never depends on bytes outside the frame', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 160, size: 'max' }), placementArb, vnetArb, fc.nat(64), (bytes, p, vnet, extra) => {
        decodeEverywhere(bytes, p, vnet, bytes.length + extra);
      }),
      { numRuns: 3000 },
    );
  });

  it('random bytes behind a valid-looking Ethernet/IP prefix go deep and stay inside', () => {
    // Pure noise rarely gets past Ethernet; a fixed ethertype + version nibble reach L3/L4 code.
    const prefixArb = fc.constantFrom(
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00, 0x45],
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x86, 0xdd, 0x60],
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x81, 0x00, 0x00, 0x05, 0x08, 0x06],
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x88, 0xa8, 0x00, 0x05, 0x81, 0x00, 0x00, 0x06, 0x08, 0x00, 0x46],
    );
    fc.assert(
      fc.property(prefixArb, fc.uint8Array({ maxLength: 120, size: 'max' }), placementArb, fc.nat(40), (prefix, tail, p, extra) => {
        const f = Uint8Array.from([...prefix, ...tail]);
        decodeEverywhere(f, p, 0, f.length + extra);
        readsStayInside(f, p.pre, 0, f.length + extra);
      }),
      { numRuns: 3000 },
    );
  });
});

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; keep: number }
  | { kind: 'field'; which: number; value: number }
  | { kind: 'tags'; count: number; tci: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('field' as const), which: fc.nat(), value: fc.nat(0xffff) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('tags' as const), count: fc.integer({ min: 1, max: 6 }), tci: fc.nat(0xffff) }), weight: 1 },
);

const probe = new PacketView();

/** Offsets of length-ish fields in `f` (found by decoding the undamaged frame), with their width. */
function lengthFields(f: Uint8Array): Array<[off: number, width: 1 | 2]> {
  decodeFrame(probe, f, 0, f.length);
  const v = probe;
  const out: Array<[number, 1 | 2]> = [[12, 2]];
  if (v.vlanOff >= 0) out.push([v.vlanOff + 4, 2]);
  if (v.arpHwLen > 0) out.push([v.l3Off + 4, 1], [v.l3Off + 5, 1]);
  if ((v.layers & LAYER_IPV4) !== 0) out.push([v.l3Off, 1], [v.l3Off + 2, 2], [v.l3Off + 6, 2], [v.l3Off + 9, 1]);
  if ((v.layers & LAYER_IPV6) !== 0) {
    out.push([v.l3Off + 4, 2], [v.l3Off + 6, 1]);
    for (const o of [v.ip6HopOff, v.ip6RoutingOff, v.ip6DestOff, v.ip6AhOff, v.ip6FragHdrOff]) if (o >= 0) out.push([o, 1], [o + 1, 1], [o + 2, 2]);
  }
  if ((v.layers & LAYER_TCP) !== 0) {
    out.push([v.l4Off + 12, 1]);
    if (v.tcpOptOff >= 0) for (let o = v.tcpOptOff; o < v.tcpOptOff + v.tcpOptLen; o++) out.push([o, 1]);
  }
  if ((v.layers & LAYER_UDP) !== 0) out.push([v.l4Off + 4, 2]);
  return out.filter(([o, w]) => o + w <= f.length);
}

function mutate(orig: Uint8Array, muts: readonly Mutation[]): Uint8Array {
  let f = Uint8Array.from(orig);
  for (const m of muts) {
    if (m.kind === 'flip') {
      if (f.length > 0) f[m.at % f.length]! ^= 1 << m.bit;
    } else if (m.kind === 'truncate') {
      f = f.slice(0, m.keep % (f.length + 1));
    } else if (m.kind === 'field') {
      const fields = lengthFields(f);
      if (fields.length === 0) continue;
      const [o, w] = fields[m.which % fields.length]!;
      if (w === 1) f[o] = m.value & 0xff;
      else {
        f[o] = m.value >>> 8;
        f[o + 1] = m.value & 0xff;
      }
    } else if (f.length >= 12) {
      const tag: number[] = [];
      for (let i = 0; i < m.count; i++) tag.push(0x81, 0x00, m.tci >>> 8, m.tci & 0xff);
      f = Uint8Array.from([...f.subarray(0, 12), ...tag, ...f.subarray(12)]);
    }
  }
  return f;
}

describe('damaged frames from every shared capture', () => {
  for (const name of allCaptures()) {
    it(name, () => {
      const frames = loadFrames(sharedCapture(name));
      expect(frames.length).toBeGreaterThan(0);
      // Random damage on a sample of at most 400 frames per capture (evenly); every frame is
      // decoded undamaged and with one seeded damage below.
      const step = Math.max(1, Math.floor(frames.length / 400));
      const sample = frames.filter((_, i) => i % step === 0);
      const p0: Placement = { pre: 3, post: 5, fillA: 0x00, fillB: 0xff };
      for (const fr of frames) decodeEverywhere(fr.bytes, p0, 0, fr.origLen);
      // Every frame is also damaged once (seeded, so a failure reproduces), not just the sample.
      const damage = fc.sample(fc.array(mutationArb, { minLength: 1, maxLength: 3 }), { numRuns: frames.length, seed: 0xc0105 });
      frames.forEach((fr, i) => decodeEverywhere(mutate(fr.bytes, damage[i]!), p0, 0, fr.origLen));
      fc.assert(
        fc.property(fc.nat(sample.length - 1), fc.array(mutationArb, { minLength: 1, maxLength: 4 }), placementArb, vnetArb, wireArb, (i, muts, p, vnet, wire) => {
          const fr = sample[i]!;
          // The vnet header, when asked for, is 10/12 bytes of noise in front of the frame.
          const base = vnet === 0 ? fr.bytes : Uint8Array.from([...new Array<number>(vnet).fill(0x77), ...fr.bytes]);
          const f = mutate(base, muts);
          // Wire length: as captured, as before the damage (a snaplen cut), or anything larger.
          const wireLen = wire === 'exact' ? f.length : wire === 'orig' ? Math.max(f.length, base.length) : f.length + wire;
          decodeEverywhere(f, p, vnet, wireLen);
          if (i % 8 === 0) readsStayInside(f, p.pre, vnet, wireLen);
        }),
        { numRuns: 400 },
      );
    });
  }
});

describe('PacketView.reset', () => {
  it('resets every field a decode can set (a fresh view and a reused one agree)', () => {
    const used = new PacketView();
    for (const [k, x] of Object.entries(used)) {
      if (k === 'buf') continue;
      (used as unknown as Record<string, unknown>)[k] = typeof x === 'boolean' ? !x : 12345;
    }
    used.reset();
    expect(snapshot(used, 0)).toEqual(snapshot(new PacketView(), 0));
    expect(used.buf.length).toBe(0);
  });
});
