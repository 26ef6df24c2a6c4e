/** IPv4 (RFC 791) and IPv6 (RFC 8200) headers, extension chains and fragments, from hand-built frames. */
import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  LAYER_ETH,
  LAYER_FRAG,
  LAYER_ICMP6,
  LAYER_IPV4,
  LAYER_IPV6,
  LAYER_IPV6_EXT,
  LAYER_PAYLOAD,
  LAYER_TCP,
  LAYER_UDP,
  MAX_IPV6_EXT_HEADERS,
  NOTE_ETH_PADDING,
  NOTE_TRUNCATED_PAYLOAD,
  PacketView,
  Reason,
} from '../../src/packet/index.js';
import { ah6, eth, ext6, frag6, icmp, ip4, ipv4, ipv6, tcp, u8, udp, V6_DST, V6_SRC, type Bytes } from './build.js';

function dec(bytes: Bytes, wireLen?: number): PacketView {
  const v = new PacketView();
  const b = u8(bytes);
  decodeFrame(v, b, 0, b.length, 0, wireLen ?? b.length);
  return v;
}

const at = (v: PacketView, o: number, n: number) => [...v.buf.subarray(o, o + n)];
const seg = (payload: Bytes) => tcp({ sport: 40000, dport: 80, seq: 1, ack: 2, flags: 0x018, window: 512 }, payload);

describe('IPv4', () => {
  it('decodes every header field', () => {
    const src = ip4('203.0.113.9');
    const dst = ip4('10.1.2.3');
    const f = eth(0x0800, ipv4({ tos: 0xb8, id: 0xbeef, flags: 0b010, ttl: 17, proto: 17, src, dst }, udp(5000, 6000, [7, 7, 7])));
    const v = dec(f);
    expect(v.status).toBe(Reason.OK);
    expect(v.layers).toBe(LAYER_ETH | LAYER_IPV4 | LAYER_UDP | LAYER_PAYLOAD);
    expect(v.ipVersion).toBe(4);
    expect(v.ipIhl).toBe(5);
    expect(v.ipHdrLen).toBe(20);
    expect(v.ipTos).toBe(0xb8);
    expect(v.ipTotalLen).toBe(20 + 8 + 3);
    expect(v.ipId).toBe(0xbeef);
    expect(v.ipFlags).toBe(0b010);
    expect(v.ipDf).toBe(true);
    expect(v.moreFragments).toBe(false);
    expect(v.fragOffset).toBe(0);
    expect(v.isFragment).toBe(false);
    expect(v.ipTtl).toBe(17);
    expect(v.ipProto).toBe(17);
    expect(v.ipChecksum).toBe((f[14 + 10]! << 8) | f[14 + 11]!);
    expect(v.ipAddrLen).toBe(4);
    expect(at(v, v.ipSrcOff, 4)).toEqual(src);
    expect(at(v, v.ipDstOff, 4)).toEqual(dst);
    expect(v.ipOptOff).toBe(-1);
    expect(v.l4Off).toBe(34);
    expect(v.ipEnd).toBe(f.length);
    expect(v.notes).toBe(0);
  });

  it('skips options (router alert + NOPs) to find the TCP header', () => {
    const options = [0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00];
    const v = dec(eth(0x0800, ipv4({ proto: 6, options }, seg([0x41, 0x42]))));
    expect(v.status).toBe(Reason.OK);
    expect(v.ipIhl).toBe(7);
    expect(v.ipHdrLen).toBe(28);
    expect(v.ipOptOff).toBe(34);
    expect(v.ipOptLen).toBe(8);
    expect(at(v, v.ipOptOff, 8)).toEqual(options);
    expect(v.l4Off).toBe(42);
    expect([v.srcPort, v.dstPort]).toEqual([40000, 80]);
    expect(at(v, v.payloadOff, v.payloadLen)).toEqual([0x41, 0x42]);
  });

  it('never counts Ethernet padding as payload', () => {
    const f = eth(0x0800, ipv4({ proto: 6 }, seg([])));
    expect(f.length).toBe(54);
    while (f.length < 60) f.push(0xff);
    const v = dec(f);
    expect(v.status).toBe(Reason.OK);
    expect(v.payloadLen).toBe(0);
    expect(v.payloadFullLen).toBe(0);
    expect(v.ipEnd).toBe(54);
    expect(v.notes).toBe(NOTE_ETH_PADDING);
  });

  it('rejects a wrong version nibble, for either ethertype', () => {
    expect(dec(eth(0x0800, ipv4({ proto: 6, version: 5 }, seg([])))).status).toBe(Reason.BAD_IP_VERSION);
    expect(dec(eth(0x0800, ipv6({ nh: 59 }, []))).status).toBe(Reason.BAD_IP_VERSION);
    const v = dec(eth(0x86dd, ipv4({ proto: 6 }, seg([]))));
    expect(v.status).toBe(Reason.BAD_IP_VERSION);
    expect(v.stopLayer).toBe(LAYER_IPV6);
  });

  it('reports header errors with the IPv4 layer as the stop layer', () => {
    const cases: Array<[string, Bytes, number]> = [
      ['IHL 4', eth(0x0800, ipv4({ proto: 6, ihl: 4 }, seg([]))), Reason.BAD_IHL],
      ['19 bytes', eth(0x0800, ipv4({ proto: 6 }, seg([]))).slice(0, 14 + 19), Reason.TRUNCATED_IP],
      ['no bytes', eth(0x0800, []), Reason.TRUNCATED_IP],
      ['IHL 15, 40 bytes', eth(0x0800, ipv4({ proto: 6, ihl: 15 }, seg([]))), Reason.TRUNCATED_IP],
      ['total 19', eth(0x0800, ipv4({ proto: 6, totalLen: 19 }, seg([]))), Reason.IP_LENGTH_TOO_SHORT],
      ['total 0 (offloaded)', eth(0x0800, ipv4({ proto: 6, totalLen: 0 }, seg([]))), Reason.IP_LENGTH_TOO_SHORT],
      ['total past frame', eth(0x0800, ipv4({ proto: 6, totalLen: 20 + 20 + 1 }, seg([]))), Reason.IP_LENGTH_BEYOND_FRAME],
    ];
    for (const [name, f, want] of cases) {
      const v = dec(f);
      expect(v.status, name).toBe(want);
      expect(v.stopLayer, name).toBe(LAYER_IPV4);
      expect(v.layers, name).toBe(LAYER_ETH);
    }
  });

  it('decodes a snaplen-cut capture when the wire length covers the IP length', () => {
    const payload = Array.from({ length: 100 }, (_, i) => i);
    const full = eth(0x0800, ipv4({ proto: 6 }, seg(payload)));
    const cut = full.slice(0, 14 + 20 + 20 + 30);
    const v = dec(cut, full.length);
    expect(v.status).toBe(Reason.OK);
    expect(v.notes).toBe(NOTE_TRUNCATED_PAYLOAD);
    expect(v.truncatedPayload).toBe(true);
    expect(v.ipTotalLen).toBe(140);
    expect(v.ipEnd).toBe(cut.length);
    expect(v.payloadLen).toBe(30);
    expect(v.payloadFullLen).toBe(100);
    // The same bytes without a wire length are a lying IP header.
    expect(dec(cut).status).toBe(Reason.IP_LENGTH_BEYOND_FRAME);
    // Headers cut: still a failure even with the wire length.
    const v2 = dec(full.slice(0, 14 + 20 + 10), full.length);
    expect(v2.status).toBe(Reason.TRUNCATED_TCP);
    expect(v2.stopLayer).toBe(LAYER_TCP);
  });

  describe('fragments (RFC 791 / RFC 815 layout)', () => {
    const id = 0x1ea0;
    const udpHdr = udp(700, 2049, [], 8 + 3000);
    it('first fragment: UDP header decoded, its length describes the whole datagram', () => {
      const data = new Array<number>(1472).fill(0x61);
      const v = dec(eth(0x0800, ipv4({ proto: 17, id, flags: 0b001 }, [...udpHdr, ...data])));
      expect(v.status).toBe(Reason.OK);
      expect(v.layers & (LAYER_FRAG | LAYER_UDP)).toBe(LAYER_FRAG | LAYER_UDP);
      expect(v.isFragment).toBe(true);
      expect(v.isNonFirstFragment).toBe(false);
      expect(v.moreFragments).toBe(true);
      expect(v.fragId).toBe(id);
      expect(v.udpLength).toBe(3008);
      expect(v.payloadLen).toBe(1472);
      expect(v.payloadFullLen).toBe(1472);
    });
    it('middle and last fragments: L4 not decoded, payload is the fragment data', () => {
      const data = new Array<number>(800).fill(0x62);
      const mid = dec(eth(0x0800, ipv4({ proto: 17, id, flags: 0b001, fragUnits: 185 }, data)));
      expect(mid.status).toBe(Reason.OK);
      expect(mid.layers).toBe(LAYER_ETH | LAYER_IPV4 | LAYER_FRAG | LAYER_PAYLOAD);
      expect(mid.isNonFirstFragment).toBe(true);
      expect(mid.fragOffset).toBe(1480);
      expect(mid.moreFragments).toBe(true);
      expect(mid.fragId).toBe(id);
      expect(mid.ipProto).toBe(17);
      expect(mid.srcPort).toBe(0);
      expect(mid.payloadOff).toBe(34);
      expect(mid.payloadLen).toBe(800);
      const last = dec(eth(0x0800, ipv4({ proto: 17, id, fragUnits: 370 }, data.slice(0, 48))));
      expect(last.status).toBe(Reason.OK);
      expect(last.moreFragments).toBe(false);
      expect(last.fragOffset).toBe(2960);
      expect(last.payloadLen).toBe(48);
      expect(last.isFragment).toBe(true);
    });
  });
});

describe('IPv6', () => {
  it('decodes the fixed header', () => {
    const v = dec(eth(0x86dd, ipv6({ tc: 0x2e, flow: 0xabcde, nh: 17, hlim: 255 }, udp(546, 547, [1, 2, 3, 4, 5]))));
    expect(v.status).toBe(Reason.OK);
    expect(v.layers).toBe(LAYER_ETH | LAYER_IPV6 | LAYER_UDP | LAYER_PAYLOAD);
    expect(v.ipVersion).toBe(6);
    expect(v.ipTos).toBe(0x2e);
    expect(v.ip6FlowLabel).toBe(0xabcde);
    expect(v.ip6PayloadLen).toBe(13);
    expect(v.ipTotalLen).toBe(53);
    expect(v.ip6NextHeader).toBe(17);
    expect(v.ipProto).toBe(17);
    expect(v.ipTtl).toBe(255);
    expect(v.ipAddrLen).toBe(16);
    expect(at(v, v.ipSrcOff, 16)).toEqual(V6_SRC);
    expect(at(v, v.ipDstOff, 16)).toEqual(V6_DST);
    expect(v.ipHdrLen).toBe(40);
    expect(v.l4Off).toBe(54);
    expect([v.srcPort, v.dstPort, v.udpLength]).toEqual([546, 547, 13]);
    expect(v.payloadLen).toBe(5);
  });

  it('walks hop-by-hop → routing → destination options to TCP', () => {
    const hbh = ext6(43, [0x01, 0x04, 0, 0, 0, 0]); // PadN
    const rh = ext6(60, [4, 2, 1, 0, 0, 0, ...V6_DST, ...V6_SRC]); // SRH-shaped, 2 segments: 40 bytes
    const dst = ext6(6, [0x01, 0x0c, ...new Array<number>(12).fill(0)]); // 16 bytes
    const f = eth(0x86dd, ipv6({ nh: 0 }, [...hbh, ...rh, ...dst, ...seg([9, 8, 7])]));
    const v = dec(f);
    expect(v.status).toBe(Reason.OK);
    expect(v.layers).toBe(LAYER_ETH | LAYER_IPV6 | LAYER_IPV6_EXT | LAYER_TCP | LAYER_PAYLOAD);
    expect(v.ip6NextHeader).toBe(0);
    expect(v.ip6ExtCount).toBe(3);
    expect(v.ip6ExtLen).toBe(8 + 40 + 16);
    expect(v.ip6HopOff).toBe(54);
    expect(v.ip6RoutingOff).toBe(62);
    expect(v.ip6DestOff).toBe(102);
    expect(v.ipHdrLen).toBe(40 + 64);
    expect(v.ipProto).toBe(6);
    expect(v.l4Off).toBe(118);
    expect(v.dstPort).toBe(80);
    expect(at(v, v.payloadOff, v.payloadLen)).toEqual([9, 8, 7]);
  });

  it('walks AH (length in 4-byte units + 2) and a first fragment header to TCP', () => {
    const a = ah6(44, 0x1000, 7, 12); // 24 bytes
    const fr = frag6(6, 0, true, 0xcafef00d);
    const v = dec(eth(0x86dd, ipv6({ nh: 51 }, [...a, ...fr, ...seg([1])])));
    expect(v.status).toBe(Reason.OK);
    expect(v.ip6AhOff).toBe(54);
    expect(v.ip6FragHdrOff).toBe(54 + 24);
    expect(v.l4Off).toBe(54 + 32);
    expect(v.layers & (LAYER_FRAG | LAYER_TCP | LAYER_IPV6_EXT)).toBe(LAYER_FRAG | LAYER_TCP | LAYER_IPV6_EXT);
    expect(v.fragId).toBe(0xcafef00d);
    expect(v.fragOffset).toBe(0);
    expect(v.moreFragments).toBe(true);
    expect(v.ipProto).toBe(6);
    expect(v.srcPort).toBe(40000);
  });

  it('stops at a non-first fragment: ipProto from the fragment header, L4 left opaque', () => {
    const data = new Array<number>(64).fill(0x33);
    const v = dec(eth(0x86dd, ipv6({ nh: 44 }, [...frag6(17, 100, false, 0x2c5323), ...data])));
    expect(v.status).toBe(Reason.OK);
    expect(v.layers).toBe(LAYER_ETH | LAYER_IPV6 | LAYER_IPV6_EXT | LAYER_FRAG | LAYER_PAYLOAD);
    expect(v.isNonFirstFragment).toBe(true);
    expect(v.fragOffset).toBe(800);
    expect(v.moreFragments).toBe(false);
    expect(v.fragId).toBe(0x2c5323);
    expect(v.ipProto).toBe(17);
    expect(v.payloadOff).toBe(54 + 8);
    expect(v.payloadLen).toBe(64);
  });

  it('treats an atomic fragment (offset 0, M 0: RFC 6946) as a whole datagram', () => {
    const v = dec(eth(0x86dd, ipv6({ nh: 44 }, [...frag6(17, 0, false, 5), ...udp(1, 2, [3])])));
    expect(v.status).toBe(Reason.OK);
    expect(v.isFragment).toBe(false);
    expect(v.ip6FragHdrOff).toBe(54);
    expect(v.layers & LAYER_UDP).toBe(LAYER_UDP);
  });

  it('leaves ESP opaque and gives no-next-header an empty payload', () => {
    const esp = [0, 0, 0x10, 0x01, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
    const e = dec(eth(0x86dd, ipv6({ nh: 60 }, [...ext6(50, [1, 4, 0, 0, 0, 0]), ...esp])));
    expect(e.status).toBe(Reason.OK);
    expect(e.ipProto).toBe(50);
    expect(e.layers & LAYER_PAYLOAD).toBe(LAYER_PAYLOAD);
    expect(e.payloadOff).toBe(62);
    expect(at(e, e.payloadOff, e.payloadLen)).toEqual(esp);
    const n = dec(eth(0x86dd, ipv6({ nh: 59 }, [1, 2, 3, 4])));
    expect(n.status).toBe(Reason.OK);
    expect(n.ipProto).toBe(59);
    expect(n.payloadLen).toBe(0);
  });

  it('decodes ICMPv6 echo request id/seq', () => {
    const v = dec(eth(0x86dd, ipv6({ nh: 58 }, icmp(128, 0, [0x12, 0x34, 0x00, 0x07], [0xaa, 0xbb]))));
    expect(v.status).toBe(Reason.OK);
    expect(v.layers & LAYER_ICMP6).toBe(LAYER_ICMP6);
    expect([v.icmpType, v.icmpCode, v.icmpEcho, v.icmpEchoId, v.icmpEchoSeq]).toEqual([128, 0, true, 0x1234, 7]);
    expect(v.payloadLen).toBe(2);
  });

  it('reports extension-chain errors', () => {
    const hbhLate = eth(0x86dd, ipv6({ nh: 60 }, [...ext6(0, [1, 4, 0, 0, 0, 0]), ...ext6(17, [1, 4, 0, 0, 0, 0]), ...udp(1, 2, [])]));
    expect(dec(hbhLate).status).toBe(Reason.BAD_IPV6_EXT);
    expect(dec(hbhLate).stopLayer).toBe(LAYER_IPV6_EXT);
    // The header before the bad one decoded, but the extension layer is where decoding
    // stopped: it is not also marked decoded (found by the damaged-capture property test).
    expect(dec(hbhLate).layers & (LAYER_IPV6_EXT | LAYER_IPV6)).toBe(LAYER_IPV6);
    const cutSecond = eth(0x86dd, ipv6({ nh: 60 }, [...ext6(43, [1, 4, 0, 0, 0, 0]), 17]));
    expect([dec(cutSecond).status, dec(cutSecond).stopLayer, dec(cutSecond).layers & LAYER_IPV6_EXT]).toEqual([Reason.TRUNCATED_IPV6_EXT, LAYER_IPV6_EXT, 0]);
    // Header length byte claims 16 bytes, 8 present (payload length agrees with the bytes).
    const long = eth(0x86dd, ipv6({ nh: 60 }, [17, 1, 1, 4, 0, 0, 0, 0]));
    expect(dec(long).status).toBe(Reason.TRUNCATED_IPV6_EXT);
    // Only the next-header byte present.
    expect(dec(eth(0x86dd, ipv6({ nh: 43 }, [17]))).status).toBe(Reason.TRUNCATED_IPV6_EXT);
    expect(dec(eth(0x86dd, ipv6({ nh: 44 }, [17, 0, 0, 0, 0, 0, 0]))).status).toBe(Reason.TRUNCATED_IPV6_EXT);
    expect(dec(eth(0x86dd, ipv6({ nh: 51 }, ah6(17, 1, 1, 12).slice(0, 20)))).status).toBe(Reason.TRUNCATED_IPV6_EXT);
    // The chain is bounded.
    const chain = (n: number): Bytes => {
      const out: Bytes = [];
      for (let i = 0; i < n; i++) out.push(...ext6(i === n - 1 ? 59 : 60, [1, 4, 0, 0, 0, 0]));
      return out;
    };
    expect(dec(eth(0x86dd, ipv6({ nh: 60 }, chain(MAX_IPV6_EXT_HEADERS)))).status).toBe(Reason.OK);
    expect(dec(eth(0x86dd, ipv6({ nh: 60 }, chain(MAX_IPV6_EXT_HEADERS + 1)))).status).toBe(Reason.BAD_IPV6_EXT);
    expect(dec(eth(0x86dd, ipv6({ nh: 60 }, chain(MAX_IPV6_EXT_HEADERS + 1)))).layers & LAYER_IPV6_EXT).toBe(0);
  });

  it('reports fixed-header length errors', () => {
    const ok = eth(0x86dd, ipv6({ nh: 17 }, udp(1, 2, [3, 4])));
    expect(dec(ok.slice(0, 14 + 39)).status).toBe(Reason.TRUNCATED_IP);
    expect(dec(ok.slice(0, 14 + 40 + 9)).status).toBe(Reason.IP_LENGTH_BEYOND_FRAME);
    expect(dec(ok.slice(0, 14 + 40 + 9)).stopLayer).toBe(LAYER_IPV6);
    const padded = [...ok, 0, 0, 0, 0];
    const v = dec(padded);
    expect(v.status).toBe(Reason.OK);
    expect(v.notes).toBe(NOTE_ETH_PADDING);
    expect(v.payloadLen).toBe(2);
    // Payload length smaller than the UDP header it announces.
    expect(dec(eth(0x86dd, ipv6({ nh: 17, plen: 4 }, udp(1, 2, [])))).status).toBe(Reason.TRUNCATED_UDP);
  });
});
