/**
 * The tracker's shortcuts for the common case, each against the slow path it stands for:
 * the IPv4 flow key (vs. a key built from first principles), the table's last-hit hint
 * (id reuse, interleaved flows), KeyIndex.holds / idBound, `clear` bounded by idBound
 * (same removal order), and limits resolved once per tracker (frozenLimits).
 */
import { describe, expect, it } from 'vitest';
import { KeyIndex } from '../../src/flow/key-index.js';
import { FLOW_KEY_WORDS, flowKey, SRC_IS_HI, SRC_IS_LO } from '../../src/flow/key.js';
import { FlowTable } from '../../src/flow/table.js';
import { ConnectionTracker } from '../../src/flow/tracker.js';
import { frozenLimits, resolveLimits } from '../../src/flow/tcp-types.js';
import { decodeFrame } from '../../src/packet/decode.js';
import { PacketPool } from '../../src/packet/pool.js';
import { PacketView } from '../../src/packet/view.js';
import { TCP_ACK, TCP_SYN, tcpFrame, udpFrame } from '../../src/replay/frame-builder.js';

const ip = (a: number): Uint8Array => Uint8Array.of(a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255);

function view(frame: Uint8Array): PacketView {
  const v = new PacketView();
  decodeFrame(v, frame, 0, frame.length);
  return v;
}

/** The key as docs/flows.md / key.ts define it, built independently: lo = smaller (address, port). */
function expectedKey(proto: number, sa: number, sp: number, da: number, dp: number): { words: number[]; srcLo: boolean } {
  const srcLo = sa >>> 0 < da >>> 0 || (sa >>> 0 === da >>> 0 && sp <= dp);
  const [la, lp, ha, hp] = srcLo ? [sa, sp, da, dp] : [da, dp, sa, sp];
  return { words: [proto << 24, 0, (lp << 16) | hp, la | 0, 0, 0, 0, ha | 0, 0, 0, 0], srcLo };
}

describe('flowKey, IPv4', () => {
  it('matches the key built from first principles (unsigned addresses, then ports; equal endpoints are lo)', () => {
    let seed = 12345;
    const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    const cases: [number, number, number, number][] = [
      [0x0a000001, 80, 0xc8000001, 80], // high bit set on one side only
      [0xc8000001, 80, 0x0a000001, 80],
      [0x0a000001, 1000, 0x0a000001, 80], // same address: ports decide
      [0x0a000001, 80, 0x0a000001, 1000],
      [0x0a000001, 80, 0x0a000001, 80], // same endpoint
      [0xffffffff, 65535, 0, 0],
    ];
    for (let i = 0; i < 300; i++) {
      const a = rnd();
      cases.push([a, rnd() & 0xffff, i % 3 === 0 ? a : rnd(), rnd() & 0xffff]);
    }
    const out = new Int32Array(FLOW_KEY_WORDS);
    for (const [sa, sp, da, dp] of cases) {
      for (const udp of [false, true]) {
        const f = udp
          ? udpFrame({ src: ip(sa), dst: ip(da), sport: sp, dport: dp, payload: Uint8Array.of(1) })
          : tcpFrame({ src: ip(sa), dst: ip(da), sport: sp, dport: dp, seq: 1, flags: TCP_ACK });
        const r = flowKey(view(f), out);
        const e = expectedKey(udp ? 17 : 6, sa, sp, da, dp);
        expect([...out]).toEqual(e.words);
        expect(r).toBe(e.srcLo ? SRC_IS_LO : SRC_IS_HI);
      }
    }
  });
});

describe('KeyIndex.holds and idBound', () => {
  it('holds is true only for the live id of that exact key; idBound covers every id handed out', () => {
    const ix = new KeyIndex(2, 8);
    const a = Int32Array.of(1, 2);
    const b = Int32Array.of(1, 3);
    expect(ix.idBound).toBe(0);
    const ia = ix.insert(a, 7);
    const ib = ix.insert(b, 7);
    expect(ix.idBound).toBe(2);
    expect(ix.holds(ia, a)).toBe(true);
    expect(ix.holds(ia, b)).toBe(false);
    expect(ix.holds(ib, b)).toBe(true);
    ix.remove(ia);
    expect(ix.holds(ia, a)).toBe(false);
    // The freed id goes to the next key: the hint must not find the old key there.
    const ic = ix.insert(Int32Array.of(9, 9), 1);
    expect(ic).toBe(ia);
    expect(ix.holds(ic, a)).toBe(false);
    expect(ix.idBound).toBe(2);
  });
});

describe('FlowTable last-hit hint', () => {
  const pkt = (sport: number, flags = TCP_ACK): PacketView => view(tcpFrame({ src: ip(0x0a000001), dst: ip(0x0a000002), sport, dport: 80, seq: 1, flags }));

  it('interleaved flows and a reused id: every lookup finds its own flow', () => {
    const t = new FlowTable<string>({ maxFlows: 4, seed: 1 });
    const ids = new Map<number, number>();
    for (let i = 0; i < 50; i++) {
      const port = 1000 + ((i * 7) % 3);
      const id = t.lookup(pkt(port), i);
      if (ids.has(port)) expect(id).toBe(ids.get(port));
      else ids.set(port, id);
      expect(t.endpoints(id).initiator).toBe(`10.0.0.1:${port}`);
    }
    const a = t.lookup(pkt(1000), 100);
    t.remove(a);
    // The next new flow takes the freed id; the old flow's next packet must not land on it.
    const b = t.lookup(pkt(2000), 101);
    expect(b).toBe(a);
    expect(t.created).toBe(true);
    const a2 = t.lookup(pkt(1000), 102);
    expect(t.created).toBe(true);
    expect(a2).not.toBe(b);
    expect(t.endpoints(b).initiator).toBe('10.0.0.1:2000');
    expect(t.endpoints(a2).initiator).toBe('10.0.0.1:1000');
    expect(t.stats().lookups).toBe(53);
  });

  it('clear removes every live flow in id order (scan bounded by idBound)', () => {
    const seen: number[] = [];
    const t = new FlowTable<string>({ maxFlows: 1 << 12, seed: 2, onRemove: (id) => seen.push(id) });
    for (let p = 0; p < 40; p++) t.lookup(pkt(3000 + p), p);
    t.remove(5);
    t.remove(17);
    seen.length = 0;
    t.clear();
    expect(seen).toEqual([...Array(40).keys()].filter((i) => i !== 5 && i !== 17));
    expect(t.size).toBe(0);
  });
});

describe('frozenLimits', () => {
  it('resolves once: the same object comes back, frozen, equal to resolveLimits', () => {
    const l = frozenLimits({ maxOooSegments: 7 });
    expect(l).toEqual(resolveLimits({ maxOooSegments: 7 }));
    expect(Object.isFrozen(l)).toBe(true);
    expect(frozenLimits(l)).toBe(l);
    // A plain (unfrozen, unmarked) object is copied, never taken as is.
    const plain = { maxOooSegments: 7 };
    expect(frozenLimits(plain)).not.toBe(plain);
  });

  it('a tracker validates its limits when built and shares one object between its connections', () => {
    const pool = new PacketPool();
    expect(() => new ConnectionTracker({ pool, reassembly: { maxWindowBytes: 0 } }, {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    const t = new ConnectionTracker({ pool, reassembly: { holeTimeoutMs: 1234 } }, {});
    const syn = (sport: number): PacketView => view(tcpFrame({ src: ip(0x0a000001), dst: ip(0x0a000002), sport, dport: 80, seq: 1, flags: TCP_SYN }));
    t.packet(syn(1), 0);
    const c1 = t.connection(t.table.lookup(syn(1), 0))!;
    t.packet(syn(2), 0);
    const c2 = t.connection(t.table.lookup(syn(2), 0))!;
    expect(c1).not.toBe(c2);
    expect(c1.reassembler!.limits).toBe(c2.reassembler!.limits);
    expect(c1.reassembler!.limits.holeTimeoutMs).toBe(1234);
    t.finish();
  });
});
