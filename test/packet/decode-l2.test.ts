/** Ethernet, VLAN/QinQ, vnet header and ARP, from hand-built frames (IEEE 802.1Q, RFC 826 layouts). */
import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  LAYER_ARP,
  LAYER_ETH,
  LAYER_IPV4,
  LAYER_UDP,
  LAYER_VLAN,
  LAYER_VNET,
  MAX_VLAN_TAGS,
  NOTE_8023_LENGTH,
  NOTE_ETH_PADDING,
  NOTE_UNKNOWN_ETHERTYPE,
  PacketView,
  Reason,
} from '../../src/packet/index.js';
import { arp, eth, ip4, ipv4, mac, MAC_A, MAC_B, u8, udp, type Bytes } from './build.js';

function dec(bytes: Bytes, vnet = 0, wireLen?: number): PacketView {
  const v = new PacketView();
  const b = u8(bytes);
  decodeFrame(v, b, 0, b.length, vnet, wireLen ?? b.length);
  return v;
}

const udpPacket = ipv4({ proto: 17 }, udp(1234, 53, [1, 2, 3, 4]));

describe('Ethernet II', () => {
  it('decodes the header and hands over at byte 14', () => {
    const f = eth(0x0800, udpPacket);
    const v = dec(f);
    expect(v.status).toBe(Reason.OK);
    expect(v.ethOff).toBe(0);
    expect([...v.buf.subarray(v.ethOff, v.ethOff + 6)]).toEqual(MAC_B);
    expect([...v.buf.subarray(v.ethOff + 6, v.ethOff + 12)]).toEqual(MAC_A);
    expect(v.etherType).toBe(0x0800);
    expect(v.l3Off).toBe(14);
    expect(v.vlanCount).toBe(0);
    expect(v.layers & (LAYER_ETH | LAYER_IPV4 | LAYER_UDP)).toBe(LAYER_ETH | LAYER_IPV4 | LAYER_UDP);
    expect(v.layers & LAYER_VLAN).toBe(0);
  });

  it('reports TRUNCATED_ETH for every length below 14', () => {
    const f = eth(0x0800, udpPacket);
    for (let n = 0; n < 14; n++) {
      const v = dec(f.slice(0, n));
      expect(v.status, `len ${n}`).toBe(Reason.TRUNCATED_ETH);
      expect(v.stopLayer).toBe(LAYER_ETH);
      expect(v.layers).toBe(0);
    }
  });

  it('leaves an unknown ethertype undecoded but OK (frames must still be forwarded)', () => {
    const v = dec(eth(0x88cc, [0x02, 0x07, 0x04, 1, 2, 3, 4, 5, 6, 7]));
    expect(v.status).toBe(Reason.OK);
    expect(v.notes).toBe(NOTE_UNKNOWN_ETHERTYPE);
    expect(v.etherType).toBe(0x88cc);
    expect(v.l3Off).toBe(14);
    expect(v.layers).toBe(LAYER_ETH);
    expect(v.hasPayload).toBe(false);
  });

  it('flags an 802.3 length field instead of calling it an ethertype', () => {
    const llc = [0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x20, 0];
    const v = dec(eth(llc.length, llc));
    expect(v.status).toBe(Reason.OK);
    expect(v.notes).toBe(NOTE_8023_LENGTH);
    expect(v.etherType).toBe(llc.length);
    expect(v.l3Off).toBe(14);
  });

  it('uses absolute offsets when the frame sits inside a larger buffer', () => {
    const f = eth(0x0800, udpPacket);
    const big = new Uint8Array(100 + f.length + 50).fill(0xee);
    big.set(f, 100);
    const v = new PacketView();
    expect(decodeFrame(v, big, 100, f.length)).toBe(Reason.OK);
    expect(v.ethOff).toBe(100);
    expect(v.l3Off).toBe(114);
    expect(v.ipSrcOff).toBe(114 + 12);
    expect(v.payloadOff).toBe(114 + 20 + 8);
    expect(v.payloadLen).toBe(4);
  });
});

describe('802.1Q / 802.1ad tags', () => {
  it('records a single 802.1Q tag (PCP 3, VLAN 100)', () => {
    const tci = (3 << 13) | 100;
    const v = dec(eth(0x0800, udpPacket, [[0x8100, tci]]));
    expect(v.status).toBe(Reason.OK);
    expect(v.layers & LAYER_VLAN).toBe(LAYER_VLAN);
    expect(v.vlanCount).toBe(1);
    expect(v.vlanOff).toBe(12);
    expect(v.vlanTpid0).toBe(0x8100);
    expect(v.vlanTci0).toBe(tci);
    expect(v.vlanId0).toBe(100);
    expect(v.vlanTpid1).toBe(0);
    expect(v.etherType).toBe(0x0800);
    expect(v.l3Off).toBe(18);
    expect(v.srcPort).toBe(1234);
  });

  it('records QinQ (0x88a8 outer, 0x8100 inner)', () => {
    const v = dec(eth(0x0800, udpPacket, [[0x88a8, 10], [0x8100, (1 << 12) | 20]]));
    expect(v.status).toBe(Reason.OK);
    expect(v.vlanCount).toBe(2);
    expect([v.vlanTpid0, v.vlanId0, v.vlanTpid1, v.vlanId1]).toEqual([0x88a8, 10, 0x8100, 20]);
    expect(v.vlanTci1).toBe((1 << 12) | 20);
    expect(v.l3Off).toBe(22);
    expect(v.dstPort).toBe(53);
  });

  it('accepts the old 0x9100 outer TPID', () => {
    const v = dec(eth(0x86dd, [], [[0x9100, 4094], [0x8100, 1]]));
    expect(v.vlanCount).toBe(2);
    expect([v.vlanTpid0, v.vlanId0, v.vlanId1]).toEqual([0x9100, 4094, 1]);
    expect(v.etherType).toBe(0x86dd);
    // An empty IPv6 packet behind the tags.
    expect(v.status).toBe(Reason.TRUNCATED_IP);
  });

  it(`accepts ${MAX_VLAN_TAGS} tags, records two, rejects one more`, () => {
    const tags: Array<[number, number]> = [[0x88a8, 1], [0x8100, 2], [0x8100, 3], [0x8100, 4]];
    const ok = dec(eth(0x0800, udpPacket, tags));
    expect(ok.status).toBe(Reason.OK);
    expect(ok.vlanCount).toBe(4);
    expect([ok.vlanId0, ok.vlanId1]).toEqual([1, 2]);
    expect(ok.l3Off).toBe(14 + 16);
    const bad = dec(eth(0x0800, udpPacket, [...tags, [0x8100, 5]]));
    expect(bad.status).toBe(Reason.TOO_MANY_VLANS);
    expect(bad.stopLayer).toBe(LAYER_VLAN);
    expect(bad.layers).toBe(LAYER_ETH);
  });

  it('reports TRUNCATED_VLAN when the tag or the inner type is cut', () => {
    const f = eth(0x0800, udpPacket, [[0x8100, 7]]);
    for (const n of [14, 15, 16, 17]) {
      const v = dec(f.slice(0, n));
      expect(v.status, `len ${n}`).toBe(Reason.TRUNCATED_VLAN);
      expect(v.stopLayer).toBe(LAYER_VLAN);
    }
    // 18 bytes: tag complete, IPv4 missing entirely.
    expect(dec(f.slice(0, 18)).status).toBe(Reason.TRUNCATED_IP);
  });
});

describe('virtio-net header', () => {
  for (const n of [10, 12]) {
    it(`skips a ${n}-byte header and keeps its offset`, () => {
      const f = [...new Array<number>(n).fill(0x5a), ...eth(0x0800, udpPacket)];
      const v = dec(f, n);
      expect(v.status).toBe(Reason.OK);
      expect(v.layers & LAYER_VNET).toBe(LAYER_VNET);
      expect(v.vnetOff).toBe(0);
      expect(v.vnetLen).toBe(n);
      expect(v.ethOff).toBe(n);
      expect(v.l3Off).toBe(n + 14);
      expect(v.srcPort).toBe(1234);
    });
  }

  it('reports TRUNCATED_VNET when the frame is shorter than the header, or the length is negative', () => {
    expect(dec([1, 2, 3, 4, 5, 6, 7, 8, 9], 10).status).toBe(Reason.TRUNCATED_VNET);
    expect(dec([1, 2, 3, 4, 5, 6, 7, 8, 9], 10).stopLayer).toBe(LAYER_VNET);
    expect(dec(eth(0x0800, udpPacket), -2).status).toBe(Reason.TRUNCATED_VNET);
    // Exactly the header and nothing else: the Ethernet header is what is missing.
    expect(dec(new Array<number>(12).fill(0), 12).status).toBe(Reason.TRUNCATED_ETH);
  });
});

describe('ARP (RFC 826)', () => {
  const sha = mac('52:54:00:12:34:56');
  const spa = ip4('10.0.0.1');
  const tha = mac('00:00:00:00:00:00');
  const tpa = ip4('10.0.0.2');

  it('decodes a request and points at each address', () => {
    const v = dec(eth(0x0806, arp(1, sha, spa, tha, tpa)));
    expect(v.status).toBe(Reason.OK);
    expect(v.layers).toBe(LAYER_ETH | LAYER_ARP);
    expect([v.arpHwType, v.arpProtoType, v.arpHwLen, v.arpProtoLen, v.arpOp]).toEqual([1, 0x0800, 6, 4, 1]);
    const at = (o: number, n: number) => [...v.buf.subarray(o, o + n)];
    expect(at(v.arpSenderHwOff, 6)).toEqual(sha);
    expect(at(v.arpSenderProtoOff, 4)).toEqual(spa);
    expect(at(v.arpTargetHwOff, 6)).toEqual(tha);
    expect(at(v.arpTargetProtoOff, 4)).toEqual(tpa);
    expect(v.notes).toBe(0);
  });

  it('notes minimum-size padding after a reply', () => {
    const f = eth(0x0806, arp(2, sha, spa, mac('02:00:00:00:00:99'), tpa));
    while (f.length < 60) f.push(0);
    const v = dec(f);
    expect(v.status).toBe(Reason.OK);
    expect(v.arpOp).toBe(2);
    expect(v.notes).toBe(NOTE_ETH_PADDING);
  });

  it('honours odd hardware/protocol lengths and reports TRUNCATED_ARP when they run out', () => {
    const long = eth(0x0806, arp(1, [1, 2, 3, 4, 5, 6, 7, 8], [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9], [0, 0, 0, 0, 0, 0, 0, 0], [8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], 6, 0x86dd));
    const v = dec(long);
    expect(v.status).toBe(Reason.OK);
    expect([v.arpHwLen, v.arpProtoLen]).toEqual([8, 16]);
    expect(v.arpTargetProtoOff).toBe(14 + 8 + 8 + 16 + 8);
    expect(v.buf[v.arpTargetProtoOff]).toBe(8);
    for (const n of [14, 21, long.length - 1]) {
      const t = dec(long.slice(0, n));
      expect(t.status, `len ${n}`).toBe(Reason.TRUNCATED_ARP);
      expect(t.stopLayer).toBe(LAYER_ARP);
    }
  });
});
