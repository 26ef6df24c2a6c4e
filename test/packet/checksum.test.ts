/**
 * Checksums: the RFC 1071 worked example, a textbook implementation as oracle for random
 * ranges, and RFC 1624 incremental updates checked against full recomputation for random
 * rewrites (ports, seq/ack, addresses, TTL) of TCP/UDP over IPv4 and IPv6.
 * Agreement with tshark's own validation on real and corrupted frames is in tshark.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHECKSUM_BAD,
  CHECKSUM_GOOD,
  CHECKSUM_ILLEGAL,
  CHECKSUM_NOT_PRESENT,
  CHECKSUM_UNVERIFIED,
  checksumUpdate16,
  checksumUpdate32,
  computeL4Checksum,
  decodeFrame,
  foldSum,
  internetChecksum,
  ipv4HeaderChecksum,
  LAYER_IPV4,
  LAYER_TCP,
  LAYER_UDP,
  onesSum,
  PacketView,
  put16,
  put32,
  u16,
  u32,
  udpChecksumUpdate16,
  verifyIpv4Header,
  verifyL4Checksum,
  writeIpv4HeaderChecksum,
  writeL4Checksum,
} from '../../src/packet/index.js';
import { sharedCapture } from '../helpers/paths.js';
import { be16, eth, icmp, ip4, ipv4, ipv6, naiveChecksum, naiveL4Checksum, set16, tcp, u8, udp, V6_DST, V6_SRC, type Bytes } from './build.js';
import { loadFrames } from './frames.js';

describe('Internet checksum (RFC 1071)', () => {
  it('matches the worked example of RFC 1071 §3', () => {
    const b = u8([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    // The RFC's unfolded sum is 2ddf0; folded (end-around carry) ddf2.
    expect(onesSum(b, 0, 8)).toBe(0xddf2);
    expect(foldSum(0x2ddf0)).toBe(0xddf2);
    // Chained partial sums give the same result as one range.
    expect(onesSum(b, 4, 4, onesSum(b, 0, 4))).toBe(0xddf2);
    expect(internetChecksum(b, 0, 8)).toBe(0x220d);
  });

  it('agrees with a textbook word-at-a-time implementation on random ranges (odd lengths too)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000, size: 'max' }), fc.nat(7), fc.nat(5), (bytes, pre, viewOff) => {
        // A view that does not start at its ArrayBuffer's start (like a Buffer from Node's pool).
        const buf = new Uint8Array(new ArrayBuffer(viewOff + pre + bytes.length + 3), viewOff).fill(0xff);
        buf.set(bytes, pre);
        const want = naiveChecksum([...bytes]);
        // First call: byte path; a buffer seen again gets a cached DataView (32-bit path).
        expect(internetChecksum(buf, pre, bytes.length)).toBe(want);
        expect(internetChecksum(buf, pre, bytes.length)).toBe(want);
        expect(internetChecksum(buf, pre, bytes.length)).toBe(want);
      }),
      { numRuns: 500 },
    );
  });

  it('stays right while the DataView cache cycles through many buffers', () => {
    const bufs = Array.from({ length: 9 }, (_, k) => Uint8Array.from({ length: 200 + k }, (_, i) => (i * 31 + k * 7) & 0xff));
    const want = bufs.map((b) => naiveChecksum([...b.subarray(3)]));
    for (let round = 0; round < 6; round++) {
      for (let k = 0; k < bufs.length; k++) {
        const b = bufs[(k * (round + 1)) % bufs.length]!;
        expect(internetChecksum(b, 3, b.length - 3)).toBe(want[(k * (round + 1)) % bufs.length]);
        expect(internetChecksum(b, 3, b.length - 3)).toBe(want[(k * (round + 1)) % bufs.length]);
      }
    }
  });

  it('folds sums of maximum-size frames', () => {
    const b = new Uint8Array(70_000).fill(0xff);
    expect(foldSum(onesSum(b, 0, b.length))).toBe(0xffff);
    expect(internetChecksum(b, 0, b.length)).toBe(naiveChecksum([...b]));
  });
});

function decoded(bytes: Bytes | Uint8Array): PacketView {
  const v = new PacketView();
  const b = bytes instanceof Uint8Array ? bytes : u8(bytes);
  decodeFrame(v, b, 0, b.length);
  return v;
}

describe('IPv4 header checksum', () => {
  it('computes what the textbook algorithm puts in a built header, and verifies it', () => {
    const f = eth(0x0800, ipv4({ proto: 6, ttl: 3, id: 999, options: [0x94, 4, 0, 0] }, tcp({ sport: 1, dport: 2, seq: 3, ack: 4, flags: 2, window: 5 }, [])));
    const v = decoded(f);
    expect(verifyIpv4Header(v)).toBe(true);
    expect(ipv4HeaderChecksum(v.buf, v.l3Off, v.ipHdrLen)).toBe(v.ipChecksum);
    v.buf[v.l3Off + 8] = 4; // TTL change without a fix-up
    expect(verifyIpv4Header(v)).toBe(false);
    expect(writeIpv4HeaderChecksum(v)).toBe(true);
    expect(verifyIpv4Header(v)).toBe(true);
    const hdr = [...v.buf.subarray(v.l3Off, v.l3Off + v.ipHdrLen)];
    hdr[10] = hdr[11] = 0;
    expect(v.ipChecksum).toBe(naiveChecksum(hdr));
  });
});

describe('L4 checksums from a decoded view', () => {
  const seg = () => tcp({ sport: 80, dport: 1234, seq: 0xdeadbeef, ack: 1, flags: 0x18, window: 100, options: [1, 1, 1, 1] }, [1, 2, 3, 4, 5]);

  it('TCP over IPv4 and IPv6 match the textbook pseudo-header sum', () => {
    for (const [l3, src, dst] of [
      ['v4', ip4('192.0.2.1'), ip4('198.51.100.2')],
      ['v6', V6_SRC, V6_DST],
    ] as const) {
      const s = seg();
      const want = naiveL4Checksum([...src], [...dst], 6, s);
      const v = decoded(l3 === 'v4' ? eth(0x0800, ipv4({ proto: 6 }, s)) : eth(0x86dd, ipv6({ nh: 6 }, s)));
      expect(computeL4Checksum(v), l3).toBe(want);
      expect(verifyL4Checksum(v), l3).toBe(CHECKSUM_BAD);
      expect(writeL4Checksum(v)).toBe(true);
      expect(v.tcpChecksum).toBe(want);
      expect(verifyL4Checksum(v), l3).toBe(CHECKSUM_GOOD);
    }
  });

  it('ICMPv4 has no pseudo-header; ICMPv6 has one', () => {
    const m = icmp(8, 0, [0, 1, 0, 2], [9, 9, 9]);
    expect(computeL4Checksum(decoded(eth(0x0800, ipv4({ proto: 1 }, m))))).toBe(naiveChecksum(m));
    const m6 = icmp(128, 0, [0, 1, 0, 2], [9, 9, 9]);
    expect(computeL4Checksum(decoded(eth(0x86dd, ipv6({ nh: 58 }, m6))))).toBe(naiveL4Checksum([...V6_SRC], [...V6_DST], 58, m6));
  });

  it('UDP: 0 is "absent" over IPv4, illegal over IPv6, and a computed 0 is sent as 0xffff', () => {
    expect(verifyL4Checksum(decoded(eth(0x0800, ipv4({ proto: 17 }, udp(1, 2, [3])))))).toBe(CHECKSUM_NOT_PRESENT);
    expect(verifyL4Checksum(decoded(eth(0x86dd, ipv6({ nh: 17 }, udp(1, 2, [3])))))).toBe(CHECKSUM_ILLEGAL);
    // Choose the last payload word so the ones' complement sum is 0xffff → checksum 0.
    const src = ip4('10.0.0.1');
    const dst = ip4('10.0.0.2');
    const d = udp(1000, 2000, [0x12, 0x34, 0, 0]);
    const partial = (~naiveL4Checksum(src, dst, 17, d) & 0xffff) as number; // folded sum with X = 0
    set16(d, 10, 0xffff - partial);
    expect(naiveL4Checksum(src, dst, 17, d)).toBe(0);
    const v = decoded(eth(0x0800, ipv4({ proto: 17, src, dst }, d)));
    expect(computeL4Checksum(v)).toBe(0xffff);
    writeL4Checksum(v);
    expect(v.udpChecksum).toBe(0xffff);
    expect(verifyL4Checksum(v)).toBe(CHECKSUM_GOOD);
  });

  it('cannot verify fragments or snaplen-cut segments', () => {
    const frag = decoded(eth(0x0800, ipv4({ proto: 6, flags: 1 }, seg())));
    expect(frag.layers & LAYER_TCP).toBe(LAYER_TCP);
    expect(verifyL4Checksum(frag)).toBe(CHECKSUM_UNVERIFIED);
    expect(computeL4Checksum(frag)).toBe(-1);
    const full = u8(eth(0x0800, ipv4({ proto: 6 }, seg())));
    const v = new PacketView();
    decodeFrame(v, full, 0, full.length - 2, 0, full.length);
    expect(v.truncatedPayload).toBe(true);
    expect(verifyL4Checksum(v)).toBe(CHECKSUM_UNVERIFIED);
    expect(writeL4Checksum(v)).toBe(false);
  });
});

describe('RFC 1624 incremental updates equal full recomputation', () => {
  it('a single 16-bit word, any values', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 2, maxLength: 64 }), fc.nat(31), fc.nat(0xffff), (bytes, w, nw) => {
        const b = Uint8Array.from(bytes.length % 2 === 0 ? bytes : [...bytes, 0]);
        const at = 2 * (w % (b.length / 2));
        const before = internetChecksum(b, 0, b.length);
        const old = u16(b, at);
        put16(b, at, nw);
        const after = internetChecksum(b, 0, b.length);
        // All-zero data is the one case where ±0 representations differ; RFC 1624 §3 discusses it.
        fc.pre(foldSum(onesSum(b, 0, b.length)) !== 0);
        expect(checksumUpdate16(before, old, nw)).toBe(after);
      }),
      { numRuns: 2000 },
    );
  });

  type Rewrite = 'seq' | 'ack' | 'sport' | 'dport' | 'src' | 'dst' | 'ttl';
  const rewriteArb = fc.constantFrom<Rewrite>('seq', 'ack', 'sport', 'dport', 'src', 'dst', 'ttl');

  /** Apply `what` := `value` to the decoded frame with incremental fix-ups only. */
  function rewrite(v: PacketView, what: Rewrite, value: number): void {
    const b = v.buf;
    const l4 = v.l4Off;
    const isTcp = (v.layers & LAYER_TCP) !== 0;
    const csOff = isTcp ? l4 + 16 : l4 + 6;
    const upd16 = (o: number, nv: number) => {
      const old = u16(b, o);
      put16(b, o, nv);
      const c = u16(b, csOff);
      put16(b, csOff, isTcp ? checksumUpdate16(c, old, nv) : udpChecksumUpdate16(c, old, nv));
    };
    switch (what) {
      case 'seq':
      case 'ack': {
        if (!isTcp) return upd16(l4, value & 0xffff);
        const o = l4 + (what === 'seq' ? 4 : 8);
        const old = u32(b, o);
        put32(b, o, value);
        put16(b, csOff, checksumUpdate32(u16(b, csOff), old, value));
        return;
      }
      case 'sport':
        return upd16(l4, value & 0xffff);
      case 'dport':
        return upd16(l4 + 2, value & 0xffff);
      case 'src':
      case 'dst': {
        const o = what === 'src' ? v.ipSrcOff : v.ipDstOff;
        if (v.ipAddrLen === 4) {
          const old = u32(b, o);
          put32(b, o, value);
          const ipc = u16(b, v.l3Off + 10);
          put16(b, v.l3Off + 10, checksumUpdate32(ipc, old, value));
          const c = u16(b, csOff);
          if (isTcp) put16(b, csOff, checksumUpdate32(c, old, value));
          else if (c !== 0) {
            const n = checksumUpdate32(c, old, value);
            put16(b, csOff, n === 0 ? 0xffff : n);
          }
        } else {
          // One 16-bit group of the IPv6 address (pseudo-header only).
          upd16(o + 2 * (value & 7), value >>> 16);
        }
        return;
      }
      case 'ttl': {
        if (v.ipVersion !== 4) {
          b[v.l3Off + 7] = value & 0xff; // hop limit: not covered by any checksum
          return;
        }
        const o = v.l3Off + 8;
        const old = u16(b, o);
        const nv = ((value & 0xff) << 8) | b[o + 1]!;
        put16(b, o, nv);
        put16(b, v.l3Off + 10, checksumUpdate16(u16(b, v.l3Off + 10), old, nv));
        return;
      }
    }
  }

  /** Make the frame's checksums right, apply rewrites incrementally, then compare with recomputation. */
  function check(frame: Uint8Array, rewrites: ReadonlyArray<[Rewrite, number]>): void {
    const b = Uint8Array.from(frame);
    const v = new PacketView();
    decodeFrame(v, b, 0, b.length);
    if ((v.layers & LAYER_IPV4) !== 0) writeIpv4HeaderChecksum(v);
    const udpNone = (v.layers & LAYER_UDP) !== 0 && v.udpChecksum === 0 && v.ipVersion === 4;
    if (!udpNone) expect(writeL4Checksum(v)).toBe(true);
    for (const [what, value] of rewrites) rewrite(v, what, value);
    const csOff = (v.layers & LAYER_TCP) !== 0 ? v.l4Off + 16 : v.l4Off + 6;
    const incremental = u16(b, csOff);
    decodeFrame(v, b, 0, b.length);
    if ((v.layers & LAYER_IPV4) !== 0) {
      expect(verifyIpv4Header(v)).toBe(true);
      expect(v.ipChecksum).toBe(ipv4HeaderChecksum(b, v.l3Off, v.ipHdrLen));
    }
    if (udpNone) expect(incremental).toBe(0);
    else {
      expect(incremental).toBe(computeL4Checksum(v));
      expect(verifyL4Checksum(v)).toBe(CHECKSUM_GOOD);
    }
  }

  const realV4 = loadFrames(sharedCapture('http-packets.pcap'))
    .map((f) => f.bytes)
    .filter((b) => {
      const v = decoded(b);
      return (v.layers & LAYER_TCP) !== 0 && !v.isFragment;
    })
    .filter((_, i) => i % 7 === 0);
  const realUdp = ['many-protocols.pcap', 'ipv6.pcapng'].flatMap((n) =>
    loadFrames(sharedCapture(n))
      .map((f) => f.bytes)
      .filter((b) => {
        const v = decoded(b);
        return (v.layers & LAYER_UDP) !== 0 && !v.isFragment;
      }),
  );
  const rewritesArb = fc.array(fc.tuple(rewriteArb, fc.nat(0xffffffff)), { minLength: 1, maxLength: 6 });

  it('TCP over IPv4, real frames: seq/ack/ports/addresses/TTL', () => {
    expect(realV4.length).toBeGreaterThan(100);
    fc.assert(
      fc.property(fc.nat(realV4.length - 1), rewritesArb, (i, rw) => check(realV4[i]!, rw)),
      { numRuns: 1500 },
    );
  });

  it('TCP over IPv6 (hand-built, random fields and payload): seq/ack/ports/address groups', () => {
    fc.assert(
      fc.property(
        fc.record({ seq: fc.nat(0xffffffff), ack: fc.nat(0xffffffff), sport: fc.nat(0xffff), flags: fc.nat(0xfff) }),
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        rewritesArb,
        (h, payload, src, rw) => {
          const f = eth(0x86dd, ipv6({ nh: 6, src: [...src] }, tcp({ ...h, dport: 443, window: 9, options: [2, 4, ...be16(1440)] }, [...payload])));
          check(u8(f), rw);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('UDP over IPv4 and IPv6, real frames: ports/addresses', () => {
    expect(realUdp.length).toBeGreaterThan(100);
    const udpRewrites = fc.array(fc.tuple(fc.constantFrom<Rewrite>('sport', 'dport', 'src', 'dst'), fc.nat(0xffffffff)), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(fc.nat(realUdp.length - 1), udpRewrites, (i, rw) => check(realUdp[i]!, rw)),
      { numRuns: 1000 },
    );
  });
});
