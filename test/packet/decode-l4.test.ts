/** TCP (RFC 9293, options RFC 7323 / RFC 2018), UDP (RFC 768), ICMPv4 (RFC 792) from hand-built frames. */
import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  LAYER_ICMP4,
  LAYER_IPV4,
  LAYER_TCP,
  LAYER_UDP,
  NOTE_BAD_TCP_OPTIONS,
  NOTE_UDP_SURPLUS,
  PacketView,
  Reason,
  TCP_OPT_EOL,
  TCP_OPT_MSS,
  TCP_OPT_SACK,
  TCP_OPT_SACK_PERM,
  TCP_OPT_TIMESTAMP,
  TCP_OPT_WSCALE,
  u32,
} from '../../src/packet/index.js';
import { be16, be32, eth, icmp, ipv4, ipv6, tcp, u8, udp, type Bytes, type TcpOpts } from './build.js';

function dec(bytes: Bytes): PacketView {
  const v = new PacketView();
  const b = u8(bytes);
  decodeFrame(v, b, 0, b.length);
  return v;
}

const base: TcpOpts = { sport: 0xc350, dport: 443, seq: 0xfffffffe, ack: 0x80000001, flags: 0x012, window: 64240, urgent: 0 };
const v4tcp = (o: Partial<TcpOpts>, payload: Bytes = []) => eth(0x0800, ipv4({ proto: 6 }, tcp({ ...base, ...o }, payload)));

describe('TCP', () => {
  it('decodes the fixed header, seq/ack unsigned', () => {
    const v = dec(v4tcp({ flags: 0x1d9, urgent: 0x1234 }, [0x47, 0x45, 0x54]));
    expect(v.status).toBe(Reason.OK);
    expect(v.layers & (LAYER_IPV4 | LAYER_TCP)).toBe(LAYER_IPV4 | LAYER_TCP);
    expect([v.srcPort, v.dstPort]).toEqual([0xc350, 443]);
    expect(v.tcpSeq).toBe(0xfffffffe);
    expect(v.tcpAck).toBe(0x80000001);
    expect(v.tcpHdrLen).toBe(20);
    expect(v.tcpFlags).toBe(0x1d9); // AE + CWR ECE URG ACK + FIN
    expect(v.tcpWindow).toBe(64240);
    expect(v.tcpUrgent).toBe(0x1234);
    expect(v.tcpOptOff).toBe(-1);
    expect(v.tcpOpts).toBe(0);
    expect(v.payloadOff).toBe(54);
    expect([...v.buf.subarray(v.payloadOff, v.payloadOff + v.payloadLen)]).toEqual([0x47, 0x45, 0x54]);
  });

  it('decodes a Linux SYN option block: MSS, SACK-permitted, timestamps, NOP, window scale', () => {
    const options = [2, 4, ...be16(1460), 4, 2, 8, 10, ...be32(0xdeadbeef), ...be32(0), 1, 3, 3, 7];
    const v = dec(v4tcp({ options }));
    expect(v.status).toBe(Reason.OK);
    expect(v.notes).toBe(0);
    expect(v.tcpHdrLen).toBe(40);
    expect(v.tcpOptOff).toBe(54);
    expect(v.tcpOptLen).toBe(20);
    expect(v.tcpOpts).toBe(TCP_OPT_MSS | TCP_OPT_SACK_PERM | TCP_OPT_TIMESTAMP | TCP_OPT_WSCALE);
    expect(v.tcpMss).toBe(1460);
    expect(v.tcpWscale).toBe(7);
    expect(v.tcpTsVal).toBe(0xdeadbeef);
    expect(v.tcpTsEcr).toBe(0);
    expect(v.payloadLen).toBe(0);
  });

  it('decodes SACK blocks behind NOP NOP timestamps', () => {
    const blocks = [
      [1000, 2000],
      [3000, 4000],
      [0xfffffff0, 0x10],
    ];
    const sack = [5, 2 + 8 * blocks.length, ...blocks.flatMap(([l, r]) => [...be32(l!), ...be32(r!)])];
    const options = [1, 1, 8, 10, ...be32(5), ...be32(6), 1, 1, ...sack];
    const v = dec(v4tcp({ flags: 0x010, options }, [1, 2]));
    expect(v.status).toBe(Reason.OK);
    expect(v.tcpOpts).toBe(TCP_OPT_TIMESTAMP | TCP_OPT_SACK);
    expect([v.tcpTsVal, v.tcpTsEcr]).toEqual([5, 6]);
    expect(v.tcpSackCount).toBe(3);
    const got = [0, 1, 2].map((i) => [u32(v.buf, v.tcpSackOff + 8 * i), u32(v.buf, v.tcpSackOff + 8 * i + 4)]);
    expect(got).toEqual(blocks);
    expect(v.payloadLen).toBe(2);
  });

  it('stops at EOL without complaint', () => {
    const v = dec(v4tcp({ options: [2, 4, 0x05, 0xb4, 0, 0xff, 0xff, 0xff] }));
    expect(v.status).toBe(Reason.OK);
    expect(v.tcpOpts).toBe(TCP_OPT_MSS | TCP_OPT_EOL);
    expect(v.notes).toBe(0);
  });

  it('flags malformed options but keeps the segment decodable', () => {
    const cases: Array<[string, Bytes, number]> = [
      ['length 0', [2, 0, 5, 0xb4], 0],
      ['length 1', [1, 1, 3, 1], 0],
      ['runs past header', [1, 1, 8, 10], 0],
      ['kind without length byte', [1, 1, 1, 3], 0],
      ['MSS of length 3, then valid WS', [2, 3, 9, 3, 3, 2, 1, 1], TCP_OPT_WSCALE],
      ['SACK with a partial block', [5, 6, 0, 0, 0, 0, 1, 1], 0],
    ];
    for (const [name, options, opts] of cases) {
      const v = dec(v4tcp({ options }, [0x99]));
      expect(v.status, name).toBe(Reason.OK);
      expect(v.notes, name).toBe(NOTE_BAD_TCP_OPTIONS);
      expect(v.tcpOpts, name).toBe(opts);
      expect(v.layers & LAYER_TCP, name).toBe(LAYER_TCP);
      expect(v.payloadLen, name).toBe(1);
      expect(v.buf[v.payloadOff], name).toBe(0x99);
    }
    expect(dec(v4tcp({ options: [2, 3, 9, 3, 3, 2, 1, 1] })).tcpWscale).toBe(2);
  });

  it('rejects impossible data offsets and truncated headers', () => {
    expect(dec(v4tcp({ dataOffWords: 4 })).status).toBe(Reason.BAD_TCP_DATA_OFFSET);
    expect(dec(v4tcp({ dataOffWords: 6 })).status).toBe(Reason.BAD_TCP_DATA_OFFSET); // 24 > 20-byte segment
    const v = dec(v4tcp({ dataOffWords: 15 }, new Array<number>(40).fill(0)));
    expect(v.status).toBe(Reason.OK); // 60 ≤ 60: all of it is options
    expect(v.payloadLen).toBe(0);
    const short = eth(0x0800, ipv4({ proto: 6 }, tcp(base, []).slice(0, 19)));
    expect(dec(short).status).toBe(Reason.TRUNCATED_TCP);
    expect(dec(short).stopLayer).toBe(LAYER_TCP);
  });

  it('decodes TCP over IPv6 the same way', () => {
    const v = dec(eth(0x86dd, ipv6({ nh: 6 }, tcp({ ...base, options: [2, 4, ...be16(1220)] }, [5]))));
    expect(v.status).toBe(Reason.OK);
    expect(v.tcpSeq).toBe(0xfffffffe);
    expect(v.tcpMss).toBe(1220);
    expect(v.payloadLen).toBe(1);
  });
});

describe('UDP', () => {
  it('takes the payload length from the UDP length and notes surplus bytes', () => {
    const f = eth(0x0800, ipv4({ proto: 17 }, [...udp(53, 33000, [1, 2, 3, 4, 5, 6], 8 + 4), 0xee, 0xee]));
    const v = dec(f);
    expect(v.status).toBe(Reason.OK);
    expect(v.layers & LAYER_UDP).toBe(LAYER_UDP);
    expect([v.srcPort, v.dstPort, v.udpLength]).toEqual([53, 33000, 12]);
    expect(v.payloadLen).toBe(4);
    expect(v.notes).toBe(NOTE_UDP_SURPLUS);
  });

  it('rejects bad lengths and truncated headers', () => {
    expect(dec(eth(0x0800, ipv4({ proto: 17 }, udp(1, 2, [], 7)))).status).toBe(Reason.BAD_UDP_LENGTH);
    expect(dec(eth(0x0800, ipv4({ proto: 17 }, udp(1, 2, [1], 10)))).status).toBe(Reason.BAD_UDP_LENGTH);
    const t = dec(eth(0x0800, ipv4({ proto: 17 }, udp(1, 2, []).slice(0, 7))));
    expect(t.status).toBe(Reason.TRUNCATED_UDP);
    expect(t.stopLayer).toBe(LAYER_UDP);
  });
});

describe('ICMPv4', () => {
  it('decodes echo id/seq', () => {
    const v = dec(eth(0x0800, ipv4({ proto: 1 }, icmp(8, 0, [...be16(0x0abc), ...be16(0x0102)], [1, 2, 3]))));
    expect(v.status).toBe(Reason.OK);
    expect(v.layers & LAYER_ICMP4).toBe(LAYER_ICMP4);
    expect([v.icmpType, v.icmpCode, v.icmpEcho, v.icmpEchoId, v.icmpEchoSeq]).toEqual([8, 0, true, 0x0abc, 0x0102]);
    expect(v.payloadLen).toBe(3);
  });

  it('does not invent echo fields for an error, and points the payload at the embedded header', () => {
    const inner = ipv4({ proto: 17 }, udp(1, 2, []));
    const v = dec(eth(0x0800, ipv4({ proto: 1 }, icmp(3, 3, [0, 0, 0, 0], inner))));
    expect(v.status).toBe(Reason.OK);
    expect([v.icmpType, v.icmpCode, v.icmpEcho, v.icmpEchoId]).toEqual([3, 3, false, 0]);
    expect(v.payloadOff).toBe(34 + 8);
    expect(v.payloadLen).toBe(inner.length);
    expect(v.srcPort).toBe(0);
  });

  it('reports TRUNCATED_ICMP below 8 bytes', () => {
    const v = dec(eth(0x0800, ipv4({ proto: 1 }, [8, 0, 0, 0])));
    expect(v.status).toBe(Reason.TRUNCATED_ICMP);
    expect(v.stopLayer).toBe(LAYER_ICMP4);
  });
});
