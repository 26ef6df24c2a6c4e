/**
 * TCP comparison rules, one scenario each. Expectations come from the construction: both
 * sides send the same byte stream (or the test changes one byte at a known offset), with
 * sequence numbers chosen as QEMU's filter-rewriter leaves them (reference §7).
 */
import { describe, expect, it } from 'vitest';
import { Harness } from './harness.js';
import { seqAdd, streamBytes, type Host } from './frames.js';
import { CLIENT as C, GUEST as G, Sender, senderPair } from './sender.js';

const FLOW = '10.0.0.2:80-10.0.0.1:40000/TCP';

/** Feed two frame lists alternating a from `p` and b from `s` until both are empty. */
function alternate(h: Harness, p: Uint8Array[], s: Uint8Array[], a = 1, b = 1): void {
  let i = 0;
  let j = 0;
  while (i < p.length || j < s.length) {
    for (let k = 0; k < a && i < p.length; k++) h.p(p[i++]!);
    for (let k = 0; k < b && j < s.length; k++) h.s(s[j++]!);
  }
}

/** A fresh harness and the two senders of one connection (see senderPair). */
function pair(...args: Parameters<typeof senderPair>): { h: Harness; stream: Uint8Array; P: Sender; S: Sender } {
  return { h: new Harness(), ...senderPair(...args) };
}

function expectClean(h: Harness): void {
  expect(h.records).toEqual([]);
  expect(h.port.requests).toEqual([]);
  const st = h.engine.statsSnapshot();
  expect(st.primary.held).toBe(0);
  expect(st.primary.releasedBy.checkpoint).toBe(0);
  expect(h.released.length).toBe(h.primaryIn.length);
}

type Alignment = keyof ReturnType<Harness['engine']['statsSnapshot']>['alignment'];
type SegOpts = Parameters<Sender['segments']>[1];

describe('TCP alignment rules', () => {
  interface Case {
    name: string;
    len: number;
    seed: number;
    /** ISN and ACK of each side. */
    p: [number, number];
    s: [number, number];
    /** Both SYN-ACKs (or SYNs when the guest opens) first; false: picked up mid-stream. */
    handshake: 'passive' | 'guest' | 'none';
    pSeg: [number, SegOpts?];
    sSeg: [number, SegOpts?];
    /** Frames fed per turn, primary then secondary. */
    turn: [number, number];
    alignment: Alignment | null;
  }
  const cases: Case[] = [
    {
      name: 'passive open behind the rewriter: secondary SYN-ACK has its own ISN, its data is in the primary space',
      len: 6000, seed: 1, p: [0x1000_0000, seqAdd(0x1000_0000, 1)], s: [0x7abc_0000, seqAdd(0x1000_0000, 1)], handshake: 'passive',
      // Own IP IDs and TTL: header fields never matter.
      pSeg: [1448, { ipId: 1 }], sSeg: [1000, { ipId: 9000, ttl: 60 }], turn: [1, 2], alignment: 'primary-space',
    },
    {
      name: 'guest-initiated connection: each side in its own space (not rewritten)',
      len: 4000, seed: 2, p: [5000, 5001], s: [0xdead_0000, seqAdd(0xdead_0000, 1)], handshake: 'guest',
      pSeg: [536], sSeg: [1460], turn: [3, 1], alignment: 'own-space',
    },
    {
      name: "capture of the secondary's own tap: passive open wholly in the secondary's space",
      len: 3000, seed: 3, p: [100, 101], s: [0x8000_0000, 0x8000_0001], handshake: 'passive',
      pSeg: [1448], sSeg: [700], turn: [1, 1], alignment: 'own-space',
    },
    {
      name: 'flow picked up mid-stream (no SYN on either side): primary space from the first primary byte',
      len: 4000, seed: 5, p: [0x10, 0x2_0000], s: [0x10, 0x2_0000], handshake: 'none',
      pSeg: [1000], sSeg: [1500], turn: [1, 1], alignment: 'midstream',
    },
    {
      name: 'sequence numbers crossing 2^32',
      len: 9000, seed: 6, p: [0xffff_f000, 0xffff_f001], s: [0xffff_ff00, 0xffff_f001], handshake: 'passive',
      pSeg: [1448], sSeg: [1024], turn: [1, 1], alignment: null,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { h, P, S } = pair(c.len, c.seed, c.p, c.s);
      if (c.handshake !== 'none') h.open(P, S, h.t, c.handshake === 'guest');
      alternate(h, P.segments(c.pSeg[0], c.pSeg[1]), S.segments(c.sSeg[0], c.sSeg[1]), c.turn[0], c.turn[1]);
      expectClean(h);
      if (c.alignment !== null) expect(h.engine.statsSnapshot().alignment[c.alignment]).toBe(1);
      h.finish();
    });
  }

  it('secondary data arriving before the primary SYN-ACK waits, then aligns', () => {
    const { h, P, S } = pair(2500, 4, [0x4000, 0x4001], [0x9000_0000, 0x4001]);
    h.s(S.syn());
    for (const f of S.segments(900)) h.s(f);
    expect(h.engine.statsSnapshot().secondary.held).toBe(3);
    h.p(P.syn());
    for (const f of P.segments(1448)) h.p(f);
    expectClean(h);
    h.finish();
  });

  it('a new connection on the same 4-tuple (port reuse) is compared as a new stream', () => {
    const h = new Harness();
    for (const [pi, si, seed] of [
      [1000, 50_000, 7],
      [900_000, 123_456, 8],
    ] as const) {
      const stream = streamBytes(2000, seed);
      const P = new Sender(G, C, pi, pi + 1, stream);
      const S = new Sender(G, C, si, pi + 1, stream);
      h.p(P.syn());
      h.s(S.syn());
      alternate(h, P.segments(1448), S.segments(800));
    }
    expectClean(h);
    expect(h.engine.statsSnapshot().alignment['primary-space']).toBe(2);
    h.finish();
  });
});

describe('what is released when', () => {
  it("the primary SYN-ACK waits for the secondary's SYN-ACK, and blocks the flow behind it", () => {
    const { h, P, S } = pair(100, 9, [7000, 7001], [123, 7001]);
    const synAck = h.p(P.syn());
    const ack = h.p(P.ack(0));
    expect(h.released).toEqual([]);
    h.s(S.ack(0)); // a secondary pure ACK is not its SYN-ACK
    expect(h.released).toEqual([]);
    h.s(S.syn());
    expect(h.releasedIndices()).toEqual([synAck, ack]);
    h.finish();
  });

  it('the SYN of a guest-initiated connection waits for the secondary SYN', () => {
    const h = new Harness();
    const P = new Sender(G, C, 1, 2, new Uint8Array(0));
    const S = new Sender(G, C, 99, 100, new Uint8Array(0));
    const syn = h.p(P.syn(true));
    expect(h.released).toEqual([]);
    h.s(S.syn(true));
    expect(h.releasedIndices()).toEqual([syn]);
    h.finish();
  });

  it('a data segment is released only once every byte of it matched', () => {
    const { h, P, S } = pair(3000, 10, [10, 11], [20, 11]);
    h.open(P, S);
    const d0 = h.p(P.data(0, 1448));
    const d1 = h.p(P.data(1448, 1448));
    h.s(S.data(0, 1000));
    expect(h.isReleased(d0)).toBe(false);
    h.s(S.data(1000, 500));
    expect(h.isReleased(d0)).toBe(true);
    expect(h.isReleased(d1)).toBe(false);
    h.s(S.data(1500, 1396));
    expect(h.isReleased(d1)).toBe(true);
    h.finish();
  });

  it('retransmissions of matched data and pure ACKs at or below the matched point go at once', () => {
    const { h, P, S } = pair(2000, 11, [10, 11], [20, 11]);
    h.open(P, S);
    h.p(P.data(0, 1000));
    h.s(S.data(0, 1000));
    const rtx = h.p(P.data(0, 1000, { ipId: 77 }));
    expect(h.isReleased(rtx)).toBe(true);
    const ack = h.p(P.ack(1000));
    expect(h.isReleased(ack)).toBe(true);
    const ahead = h.p(P.data(1000, 500));
    const ack2 = h.p(P.ack(1500));
    expect(h.isReleased(ahead) || h.isReleased(ack2)).toBe(false);
    h.s(S.data(1000, 500));
    expect(h.releasedIndices().slice(-2)).toEqual([ahead, ack2]);
    // First send, its retransmission and the later segment: every byte of each matched.
    expect(h.engine.statsSnapshot().primary.releasedBy.matched).toBe(3);
    h.finish();
  });

  it('a pure ACK at the head waits until the secondary reached its sequence point', () => {
    const { h, P, S } = pair(1500, 21, [10, 11], [20, 11]);
    h.open(P, S);
    h.p(P.data(0, 1000));
    h.s(S.data(0, 1000));
    const ack = h.p(P.ack(1500)); // the primary's data [1000, 1500) arrives after its ACK
    expect(h.isReleased(ack)).toBe(false);
    const d = h.p(P.data(1000, 500));
    h.s(S.data(1000, 499));
    expect(h.isReleased(ack)).toBe(false);
    h.s(S.data(1499, 1));
    expect(h.releasedIndices().slice(-2)).toEqual([ack, d]);
    h.finish();
  });

  it("a FIN waits for the secondary's FIN at the same offset; the ACK after it waits for both", () => {
    const { h, P, S } = pair(500, 12, [10, 11], [20, 11]);
    h.open(P, S);
    const d = h.p(P.data(0, 500));
    const fin = h.p(P.fin(500));
    const last = h.p(P.ack(501));
    h.s(S.data(0, 500));
    expect(h.isReleased(d)).toBe(true);
    expect(h.isReleased(fin)).toBe(false);
    h.s(S.fin(500));
    expect(h.releasedIndices().slice(-2)).toEqual([fin, last]);
    expect(h.records).toEqual([]);
    h.finish();
  });

  it('FINs at different offsets are a length divergence', () => {
    const { h, P, S } = pair(600, 13, [10, 11], [20, 11]);
    h.open(P, S);
    h.p(P.data(0, 500, {}, true));
    h.s(S.data(0, 600, {}, true));
    expect(h.records.map((r) => [r.cause, r.offset, r.flow])).toEqual([['length', 500, FLOW]]);
    h.finish();
  });

  it("an RST waits for the secondary's RST", () => {
    const h = new Harness();
    const P = new Sender(G, C, 10, 11, new Uint8Array(0));
    const S = new Sender(G, C, 20, 11, new Uint8Array(0));
    const r = h.p(P.rst(0));
    expect(h.isReleased(r)).toBe(false);
    h.s(S.rst(0));
    expect(h.isReleased(r)).toBe(true);
    h.finish();
  });

  it('a held head blocks only its own flow', () => {
    const h = new Harness();
    const a = new Sender(G, C, 10, 11, streamBytes(100, 14));
    const C2: Host = { ip: '10.0.0.1', port: 40001 };
    const b = new Sender(G, C2, 10, 11, streamBytes(100, 15));
    const bS = new Sender(G, C2, 30, 11, streamBytes(100, 15));
    h.p(a.syn());
    const bSyn = h.p(b.syn());
    h.s(bS.syn());
    expect(h.releasedIndices()).toEqual([bSyn]);
    h.finish();
  });
});

describe('divergence', () => {
  it('one changed byte: one record naming flow and offset; the byte is held until the checkpoint completes', () => {
    const { h, stream, P, S } = pair(5000, 16, [0x100, 0x101], [0x5000, 0x101], (b) => (b[3210] ^= 0x40));
    const bad = S.stream;
    h.open(P, S);
    const pIdx = P.segments(1448).map((f) => h.p(f));
    for (const f of S.segments(1000)) h.s(f);
    expect(h.records.length).toBe(1);
    const r = h.records[0]!;
    expect([r.cause, r.side, r.flow, r.offset, r.offsetUnit, r.requested, r.checkpoint]).toEqual(['payload', 'both', FLOW, 3210, 'byte', true, 1]);
    expect(r.primaryBytes.slice(0, 2)).toBe(stream[3210]!.toString(16).padStart(2, '0'));
    expect(r.secondaryBytes.slice(0, 2)).toBe(bad[3210]!.toString(16).padStart(2, '0'));
    expect(h.port.requests.length).toBe(1);
    // Segments 0 and 1 ([0, 2896)) matched; segment 2 holds byte 3210.
    expect(h.isReleased(pIdx[0]!)).toBe(true);
    expect(h.isReleased(pIdx[1]!)).toBe(true);
    expect(h.isReleased(pIdx[2]!)).toBe(false);
    h.engine.onCheckpointCompleted(10);
    expect(pIdx.every((i) => h.isReleased(i))).toBe(true);
    expect(h.engine.statsSnapshot().primary.releasedBy.checkpoint).toBe(pIdx.length - 2);
    h.finish();
  });

  it('after a real checkpoint both sides continue from the primary state; stale secondary segments are dropped', () => {
    const { h, P, S } = pair(3000, 17, [0x100, 0x101], [0x5000, 0x101], (b) => (b[100] ^= 1));
    h.open(P, S);
    for (const f of P.segments(1448, {}, false)) h.p(f);
    h.s(S.data(0, 1000));
    expect(h.records.length).toBe(1);
    h.engine.onCheckpointCompleted(5);
    // In flight before the checkpoint, delivered after it: stale, dropped.
    h.s(S.data(1000, 2000));
    // The next response: the secondary's state is now the primary's (same stream, primary space).
    const s2 = streamBytes(4000, 18);
    const P2 = new Sender(G, C, 0x100, 0x101 + 3000, s2);
    alternate(h, P2.segments(1448), P2.segments(1000, { ipId: 4 }));
    expect(h.records.length).toBe(1);
    expect(h.engine.statsSnapshot().alignment.restarted).toBe(1);
    expect(h.engine.held.frames).toBe(0);
    h.finish();
  });

  it('IPv6 over VLAN: records name the flow with bracketed addresses and the VLAN', () => {
    const h = new Harness();
    const G6: Host = { ip: '2001:db8::2', port: 443 };
    const C6: Host = { ip: '2001:db8::1', port: 50000 };
    const stream = streamBytes(3000, 19);
    const bad = Uint8Array.from(stream);
    bad[2999] ^= 0xff;
    const P = new Sender(G6, C6, 1, 2, stream);
    const S = new Sender(G6, C6, 77, 2, bad);
    h.p(P.syn(false, { vlan: 7 }));
    h.s(S.syn(false, { vlan: 7 }));
    alternate(h, P.segments(1448, { vlan: 7 }), S.segments(999, { vlan: 7, ttl: 3 }));
    expect(h.records.map((r) => [r.flow, r.vlan, r.offset, r.cause])).toEqual([['[2001:db8::2]:443-[2001:db8::1]:50000/TCP', 7, 2999, 'payload']]);
    h.finish();
  });

  it('virtio-net headers (vnet_hdr_support) are skipped and never compared', () => {
    const { h, P, S } = pair(3000, 22, [1, 2], [50, 2]);
    // 12-byte virtio_net_hdr_mrg_rxbuf: the primary's says NEEDS_CSUM with offsets, the secondary's is zero.
    const vnet = (f: Uint8Array, needsCsum: boolean) => Uint8Array.from([...(needsCsum ? [1, 0, 0, 0, 0, 0, 34, 0, 16, 0, 1, 0] : new Array<number>(12).fill(0)), ...f]);
    h.p(vnet(P.syn(), true), 0, 12);
    h.s(vnet(S.syn(), false), 0, 12);
    for (const f of P.segments(1448)) h.p(vnet(f, true), 0, 12);
    for (const f of S.segments(1000)) h.s(vnet(f, false), 0, 12);
    expect(h.records).toEqual([]);
    expect(h.engine.held.frames).toBe(0);
    h.finish();
  });

  it('VLAN-tagged and untagged traffic with the same addresses are different flows', () => {
    const h = new Harness();
    const stream = streamBytes(1000, 20);
    const P = new Sender(G, C, 1, 2, stream);
    h.p(P.syn(false, { vlan: 5 }));
    h.s(P.syn(false));
    expect(h.released).toEqual([]);
    h.s(P.syn(false, { vlan: 5 }));
    expect(h.released.length).toBe(1);
    h.finish();
  });
});
