/**
 * The frame builder against two oracles: tshark (independent dissector and checksum checker,
 * on a pcap written with the project's PcapWriter) and the packet layer's decodeFrame; plus
 * a textbook RFC 1071 checksum written here, so checksums are never only checked by the code
 * that computed them.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapWriter } from '../../src/capture/writer.js';
import {
  CHECKSUM_GOOD,
  decodeFrame,
  formatIP,
  formatIPv6,
  formatMac,
  LAYER_IPV4,
  LAYER_IPV6,
  LAYER_TCP,
  LAYER_UDP,
  PacketView,
  TCP_OPT_MSS,
  TCP_OPT_SACK,
  TCP_OPT_SACK_PERM,
  TCP_OPT_TIMESTAMP,
  TCP_OPT_WSCALE,
  verifyIpv4Header,
  verifyL4Checksum,
} from '../../src/packet/index.js';
import { ColoError } from '../../src/errors.js';
import { ipBytes, parseIpAddress } from '../../src/replay/addr-text.js';
import {
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_SYN,
  tcpFrame,
  tcpFrameLength,
  tcpSegments,
  udpFrame,
  writeTcpFrame,
} from '../../src/replay/frame-builder.js';
import type { TcpFrameSpec, UdpFrameSpec } from '../../src/replay/frame-builder.js';
import { hasTool, tshark } from '../helpers/tools.js';

/** RFC 1071 the textbook way: 16-bit words, end-around carry after every addition. */
function naiveSum(bytes: Uint8Array, init = 0): number {
  let s = init;
  for (let i = 0; i < bytes.length; i += 2) {
    s += (bytes[i]! << 8) + (i + 1 < bytes.length ? bytes[i + 1]! : 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  return s;
}

/**
 * True when the L4 checksum of the IP datagram starting at `l3` verifies: the ones' complement
 * sum of pseudo-header + segment (checksum field included) is 0xffff.
 */
function naiveL4Ok(frame: Uint8Array, l3: number): boolean {
  const v6 = frame[l3]! >> 4 === 6;
  const proto = v6 ? frame[l3 + 6]! : frame[l3 + 9]!;
  const hl = v6 ? 40 : (frame[l3]! & 15) * 4;
  const total = v6 ? 40 + ((frame[l3 + 4]! << 8) | frame[l3 + 5]!) : (frame[l3 + 2]! << 8) | frame[l3 + 3]!;
  const seg = frame.subarray(l3 + hl, l3 + total);
  const src = frame.subarray(l3 + (v6 ? 8 : 12), l3 + (v6 ? 24 : 16));
  const dst = frame.subarray(l3 + (v6 ? 24 : 16), l3 + (v6 ? 40 : 20));
  const len = seg.length;
  const pseudo = Uint8Array.from([...src, ...dst, 0, 0, len >>> 8, len & 0xff, 0, 0, 0, proto]);
  return naiveSum(seg, naiveSum(pseudo)) === 0xffff;
}

interface Case {
  name: string;
  tcp?: TcpFrameSpec;
  udp?: UdpFrameSpec;
}

const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

const CASES: Case[] = [
  {
    name: 'IPv4 SYN with MSS, SACK-permitted, timestamps, window scale',
    tcp: { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, seq: 123456789, flags: TCP_SYN, window: 64240, ttl: 64, ipId: 1, options: { mss: 1460, sackPermitted: true, timestamp: { val: 4000000000, ecr: 0 }, wscale: 7 } },
  },
  {
    name: 'IPv4 data at the sequence wrap, odd options-free header fields',
    tcp: { src: '192.168.1.10', dst: '172.16.0.9', sport: 443, dport: 51000, seq: 0xfffffff0, ack: 0x80000001, flags: TCP_ACK | TCP_PSH, window: 502, ttl: 63, tos: 0x10, ipId: 4242, df: false, payload: bytes(1400, 1), options: { timestamp: { val: 1, ecr: 0xffffffff } } },
  },
  {
    name: 'IPv4 ACK with two SACK blocks and a 1-byte payload',
    tcp: { src: '10.1.2.3', dst: '10.3.2.1', sport: 1, dport: 65535, seq: 5, ack: 1000, flags: TCP_ACK, options: { sack: [[2000, 3000], [4000, 5000]] }, payload: bytes(1, 2) },
  },
  {
    name: 'IPv6 data, odd payload, flow label and traffic class',
    tcp: { src: '2001:db8::1', dst: '2001:db8:0:1::ff', sport: 8080, dport: 33000, seq: 77, ack: 88, flags: TCP_ACK | TCP_PSH | TCP_FIN, flowLabel: 0x12345, tos: 0x20, ttl: 255, payload: bytes(777, 3) },
  },
  {
    name: 'IPv4 pure ACK in VLAN 100, padded to 60 bytes',
    tcp: { src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 40000, seq: 1, ack: 2, vlan: 100, padTo60: true, srcMac: '02:00:00:00:00:0a', dstMac: '02:00:00:00:00:0b' },
  },
  { name: 'UDP over IPv4', udp: { src: '10.0.0.2', dst: '10.0.0.53', sport: 5353, dport: 53, payload: bytes(5, 4), ttl: 1 } },
  { name: 'UDP over IPv4 without checksum', udp: { src: '10.0.0.2', dst: '10.0.0.53', sport: 5353, dport: 53, payload: bytes(33, 5), noChecksum: true } },
  { name: 'UDP over IPv6, empty payload', udp: { src: 'fe80::1', dst: 'ff02::fb', sport: 5353, dport: 5353 } },
];

function build(c: Case): Buffer {
  return c.tcp !== undefined ? tcpFrame(c.tcp) : udpFrame(c.udp!);
}

/** A UDP datagram whose checksum computes to 0, so it must be sent as 0xffff (RFC 768). */
function zeroChecksumUdp(): { frame: Buffer; spec: UdpFrameSpec } {
  const spec: UdpFrameSpec = { src: '10.9.8.7', dst: '10.7.8.9', sport: 1000, dport: 2000, payload: Buffer.from([0, 0]) };
  const probe = udpFrame(spec);
  // With payload word w the checksum is ~(S + w); the one computed for w = 0 makes S + w = 0xffff.
  const c0 = probe.readUInt16BE(14 + 20 + 6);
  const s2 = { ...spec, payload: Buffer.from([c0 >>> 8, c0 & 0xff]) };
  return { frame: udpFrame(s2), spec: s2 };
}

describe('frame builder vs decodeFrame and a textbook checksum', () => {
  const v = new PacketView();

  for (const c of CASES) {
    it(c.name, () => {
      const f = build(c);
      const spec = (c.tcp ?? c.udp)!;
      expect(decodeFrame(v, f, 0, f.length)).toBe(0);
      const v6 = ipBytes(spec.src).length === 16;
      expect(v.layers & (v6 ? LAYER_IPV6 : LAYER_IPV4)).not.toBe(0);
      expect(formatIP(v.buf, v.ipSrcOff, v.ipAddrLen)).toBe(formatIP(ipBytes(spec.src), 0, v6 ? 16 : 4));
      expect(formatIP(v.buf, v.ipDstOff, v.ipAddrLen)).toBe(formatIP(ipBytes(spec.dst), 0, v6 ? 16 : 4));
      expect(v.ipTtl).toBe(spec.ttl ?? 64);
      expect(v.ipTos).toBe(spec.tos ?? 0);
      if (!v6) {
        expect(verifyIpv4Header(v)).toBe(true);
        expect(v.ipId).toBe(spec.ipId ?? 0);
        expect(v.ipDf).toBe(spec.df !== false);
      } else expect(v.ip6FlowLabel).toBe(spec.flowLabel ?? 0);
      expect(v.srcPort).toBe(spec.sport);
      expect(v.dstPort).toBe(spec.dport);
      const payload = spec.payload ?? Buffer.alloc(0);
      expect(v.payloadLen).toBe(payload.length);
      expect(Buffer.from(v.buf.subarray(v.payloadOff, v.payloadOff + v.payloadLen)).equals(Buffer.from(payload))).toBe(true);
      if (c.udp?.noChecksum === true) expect(v.udpChecksum).toBe(0);
      else {
        expect(verifyL4Checksum(v)).toBe(CHECKSUM_GOOD);
        expect(naiveL4Ok(f, v.l3Off)).toBe(true);
      }
      if (c.tcp !== undefined) {
        const t = c.tcp;
        expect(v.layers & LAYER_TCP).not.toBe(0);
        expect(v.tcpSeq).toBe(t.seq);
        expect(v.tcpAck).toBe(t.ack ?? 0);
        expect(v.tcpFlags).toBe(t.flags ?? TCP_ACK);
        expect(v.tcpWindow).toBe(t.window ?? 65535);
        const o = t.options !== undefined && !(t.options instanceof Uint8Array) ? t.options : {};
        expect((v.tcpOpts & TCP_OPT_MSS) !== 0).toBe(o.mss !== undefined);
        if (o.mss !== undefined) expect(v.tcpMss).toBe(o.mss);
        expect((v.tcpOpts & TCP_OPT_WSCALE) !== 0).toBe(o.wscale !== undefined);
        if (o.wscale !== undefined) expect(v.tcpWscale).toBe(o.wscale);
        expect((v.tcpOpts & TCP_OPT_SACK_PERM) !== 0).toBe(o.sackPermitted === true);
        expect((v.tcpOpts & TCP_OPT_TIMESTAMP) !== 0).toBe(o.timestamp !== undefined);
        if (o.timestamp !== undefined) expect([v.tcpTsVal, v.tcpTsEcr]).toEqual([o.timestamp.val, o.timestamp.ecr]);
        expect((v.tcpOpts & TCP_OPT_SACK) !== 0).toBe(o.sack !== undefined);
        if (o.sack !== undefined) expect(v.tcpSackCount).toBe(o.sack.length);
      } else expect(v.layers & LAYER_UDP).not.toBe(0);
      if (spec.vlan !== undefined) expect(v.vlanId0).toBe(spec.vlan);
      if (spec.padTo60 === true) expect(f.length).toBe(60);
      if (spec.srcMac !== undefined) expect(formatMac(v.buf, v.ethOff + 6)).toBe(spec.srcMac);
    });
  }

  it('a UDP checksum that computes to 0 is sent as 0xffff', () => {
    const { frame } = zeroChecksumUdp();
    expect(frame.readUInt16BE(14 + 20 + 6)).toBe(0xffff);
    expect(decodeFrame(v, frame, 0, frame.length)).toBe(0);
    expect(verifyL4Checksum(v)).toBe(CHECKSUM_GOOD);
    expect(naiveL4Ok(frame, 14)).toBe(true);
  });

  it('a vnet header is written before the Ethernet header and skipped by the decoder', () => {
    const vnet = Uint8Array.from([1, 0, 0, 0, 0, 0, 0x22, 0, 0x10, 0, 0, 0]);
    const f = tcpFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, seq: 9, vnetHdr: vnet, payload: bytes(100, 9) });
    expect(f.subarray(0, 12).equals(Buffer.from(vnet))).toBe(true);
    expect(decodeFrame(v, f, 0, f.length, 12)).toBe(0);
    expect(verifyL4Checksum(v)).toBe(CHECKSUM_GOOD);
    expect(v.payloadLen).toBe(100);
  });

  it('writes into a caller buffer at an offset, exactly tcpFrameLength bytes', () => {
    const spec: TcpFrameSpec = { src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, seq: 3, payload: bytes(10, 1) };
    const out = Buffer.alloc(200, 0xee);
    const n = writeTcpFrame(out, 17, spec);
    expect(n).toBe(tcpFrameLength(spec));
    expect(out[16]).toBe(0xee);
    expect(out[17 + n]).toBe(0xee);
    expect(out.subarray(17, 17 + n).equals(tcpFrame(spec))).toBe(true);
  });

  it('tcpSegments cuts a byte stream at the MSS with advancing sequence numbers, PSH on the last', () => {
    const data = bytes(2500, 7);
    const segs = tcpSegments({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, seq: 0xfffffc00, ack: 5 }, data, 1000);
    expect(segs.length).toBe(3);
    const seen: Buffer[] = [];
    segs.forEach((s, i) => {
      expect(decodeFrame(v, s, 0, s.length)).toBe(0);
      expect(v.tcpSeq).toBe((0xfffffc00 + i * 1000) >>> 0);
      expect(v.tcpFlags).toBe(i === 2 ? TCP_ACK | TCP_PSH : TCP_ACK);
      seen.push(Buffer.from(v.buf.subarray(v.payloadOff, v.payloadOff + v.payloadLen)));
    });
    expect(Buffer.concat(seen).equals(data)).toBe(true);
  });

  it('refuses bad specs with ERR_INVALID_ARGUMENT naming the value', () => {
    const base = { src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, seq: 0 };
    const code = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        return `${(e as ColoError).code}: ${(e as Error).message}`;
      }
      return 'no error';
    };
    expect(code(() => tcpFrame({ ...base, dst: '::1' }))).toMatch(/^ERR_INVALID_ARGUMENT: .*families differ/);
    expect(code(() => tcpFrame({ ...base, vlan: 4096 }))).toMatch(/^ERR_INVALID_ARGUMENT: .*vlan.*4096/);
    expect(code(() => tcpFrame({ ...base, seq: 2 ** 32 }))).toMatch(/^ERR_INVALID_ARGUMENT: .*seq.*4294967296/);
    expect(code(() => tcpFrame({ ...base, options: { sack: [[1, 2], [3, 4], [5, 6], [7, 8]], timestamp: { val: 1, ecr: 2 } } }))).toMatch(/^ERR_INVALID_ARGUMENT: .*40/);
    expect(code(() => tcpFrame({ ...base, src: '10.0.0.256' }))).toMatch(/^ERR_INVALID_ARGUMENT: .*10\.0\.0\.256/);
    expect(code(() => udpFrame({ ...base, src: '::1', dst: '::2', noChecksum: true }))).toMatch(/^ERR_INVALID_ARGUMENT: .*IPv6/);
    expect(code(() => writeTcpFrame(Buffer.alloc(10), 0, base))).toMatch(/^ERR_INVALID_ARGUMENT: .*does not fit/);
    expect(code(() => tcpFrame({ ...base, payload: Buffer.alloc(65_536) }))).toMatch(/^ERR_INVALID_ARGUMENT: .*65535/);
  });

  it('property: random TCP/UDP specs decode to the same fields with valid checksums', () => {
    const addr4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => Uint8Array.from(a));
    const addr6 = fc.uint8Array({ minLength: 16, maxLength: 16 });
    const family = fc.boolean().chain((v6) => fc.tuple(v6 ? addr6 : addr4, v6 ? addr6 : addr4));
    const u32 = fc.nat({ max: 0xffffffff });
    fc.assert(
      fc.property(
        family,
        fc.nat(65535),
        fc.nat(65535),
        u32,
        u32,
        fc.nat(0xff),
        fc.uint8Array({ maxLength: 2000 }),
        fc.boolean(),
        fc.option(fc.record({ mss: fc.nat(65535), wscale: fc.nat(14) })),
        ([src, dst], sport, dport, seq, ack, flags, payload, isTcp, opts) => {
          const f = isTcp
            ? tcpFrame({ src, dst, sport, dport, seq, ack, flags, payload, ...(opts !== null ? { options: opts } : {}) })
            : udpFrame({ src, dst, sport, dport, payload });
          expect(decodeFrame(v, f, 0, f.length)).toBe(0);
          expect(Buffer.from(v.buf.subarray(v.ipSrcOff, v.ipSrcOff + v.ipAddrLen)).equals(Buffer.from(src))).toBe(true);
          expect(Buffer.from(v.buf.subarray(v.ipDstOff, v.ipDstOff + v.ipAddrLen)).equals(Buffer.from(dst))).toBe(true);
          expect([v.srcPort, v.dstPort]).toEqual([sport, dport]);
          if (isTcp) {
            expect([v.tcpSeq, v.tcpAck, v.tcpFlags]).toEqual([seq, ack, flags]);
            if (opts !== null) expect([v.tcpMss, v.tcpWscale]).toEqual([opts.mss, opts.wscale]);
          }
          expect(v.payloadLen).toBe(payload.length);
          expect(verifyL4Checksum(v)).toBe(CHECKSUM_GOOD);
          expect(naiveL4Ok(f, v.l3Off)).toBe(true);
          if (src.length === 4) expect(verifyIpv4Header(v)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('IP address text', () => {
  it('parses IPv6 forms to the RFC 4291 bytes', () => {
    expect(Buffer.from(parseIpAddress('2001:db8::1')).toString('hex')).toBe('20010db8000000000000000000000001');
    expect(Buffer.from(parseIpAddress('::')).toString('hex')).toBe('0'.repeat(32));
    expect(Buffer.from(parseIpAddress('::ffff:10.0.0.1')).toString('hex')).toBe('00000000000000000000ffff0a000001');
    expect(Buffer.from(parseIpAddress('1:2:3:4:5:6:7:8')).toString('hex')).toBe('00010002000300040005000600070008');
    expect(Buffer.from(parseIpAddress('fe80::')).toString('hex')).toBe('fe80' + '0'.repeat(28));
  });

  it('round-trips through the packet layer formatter (RFC 5952 text)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (a) => {
        const text = formatIPv6(a, 0);
        expect(Buffer.from(parseIpAddress(text)).equals(Buffer.from(a))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

const HAVE_TSHARK = hasTool('tshark');
if (!HAVE_TSHARK) console.warn('tshark not found: frame-builder tshark oracle skipped');

describe.skipIf(!HAVE_TSHARK)('frame builder vs tshark', () => {
  let dir: string;
  let pcap: string;
  const zero = zeroChecksumUdp();
  const specs: Case[] = [...CASES, { name: 'UDP checksum 0xffff', udp: zero.spec }];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'colo-fb-'));
    pcap = join(dir, 'frames.pcap');
    const w = new PcapWriter(pcap);
    specs.forEach((c, i) => {
      const f = build(c);
      w.write(f, 0, f.length, 1_700_000_000 + i, 0);
    });
    w.close();
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const FIELDS = [
    'eth.src', 'eth.dst', 'vlan.id', 'ip.src', 'ip.dst', 'ip.ttl', 'ip.id', 'ip.flags.df', 'ip.dsfield', 'ip.checksum.status',
    'ipv6.src', 'ipv6.dst', 'ipv6.hlim', 'ipv6.flow', 'ipv6.tclass',
    'tcp.srcport', 'tcp.dstport', 'tcp.seq_raw', 'tcp.ack_raw', 'tcp.flags', 'tcp.window_size_value', 'tcp.len', 'tcp.checksum.status',
    'tcp.options.mss_val', 'tcp.options.wscale.shift', 'tcp.options.sack_perm', 'tcp.options.timestamp.tsval', 'tcp.options.timestamp.tsecr',
    'tcp.options.sack_le', 'tcp.options.sack_re', 'tcp.payload',
    'udp.srcport', 'udp.dstport', 'udp.length', 'udp.checksum', 'udp.checksum.status', 'udp.payload',
  ] as const;
  type Row = Record<(typeof FIELDS)[number], string>;

  function rows(): Row[] {
    const out = tshark([
      '-r', pcap,
      '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
      '-o', 'tcp.relative_sequence_numbers:FALSE', '-o', 'tcp.analyze_sequence_numbers:FALSE', '-o', 'tcp.desegment_tcp_streams:FALSE',
      '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=,',
      ...FIELDS.flatMap((f) => ['-e', f]),
    ]);
    return out
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => {
        const cells = l.split('\t');
        const r = {} as Row;
        FIELDS.forEach((f, i) => (r[f] = cells[i] ?? ''));
        return r;
      });
  }

  it('tshark reads every field as specified and finds every checksum good', () => {
    const rs = rows();
    expect(rs.length).toBe(specs.length);
    specs.forEach((c, i) => {
      const r = rs[i]!;
      const spec = (c.tcp ?? c.udp)!;
      const v6 = ipBytes(spec.src).length === 16;
      const label = `#${i + 1} ${c.name}`;
      const want: Partial<Row> = {};
      if (v6) {
        want['ipv6.src'] = formatIPv6(ipBytes(spec.src), 0);
        want['ipv6.dst'] = formatIPv6(ipBytes(spec.dst), 0);
        want['ipv6.hlim'] = String(spec.ttl ?? 64);
        want['ipv6.flow'] = String(spec.flowLabel ?? 0);
        want['ipv6.tclass'] = String(spec.tos ?? 0);
      } else {
        want['ip.src'] = String(spec.src);
        want['ip.dst'] = String(spec.dst);
        want['ip.ttl'] = String(spec.ttl ?? 64);
        want['ip.id'] = String(spec.ipId ?? 0);
        want['ip.flags.df'] = spec.df === false ? '0' : '1';
        want['ip.dsfield'] = String(spec.tos ?? 0);
        want['ip.checksum.status'] = '1';
      }
      if (spec.vlan !== undefined) want['vlan.id'] = String(spec.vlan);
      if (spec.srcMac !== undefined) want['eth.src'] = String(spec.srcMac);
      const payloadHex = Buffer.from(spec.payload ?? []).toString('hex');
      if (c.tcp !== undefined) {
        const t = c.tcp;
        want['tcp.srcport'] = String(t.sport);
        want['tcp.dstport'] = String(t.dport);
        want['tcp.seq_raw'] = String(t.seq);
        want['tcp.ack_raw'] = String(t.ack ?? 0);
        want['tcp.flags'] = String(t.flags ?? TCP_ACK);
        want['tcp.window_size_value'] = String(t.window ?? 65535);
        want['tcp.len'] = String(t.payload?.length ?? 0);
        want['tcp.checksum.status'] = '1';
        want['tcp.payload'] = payloadHex;
        const o = t.options !== undefined && !(t.options instanceof Uint8Array) ? t.options : {};
        want['tcp.options.mss_val'] = o.mss !== undefined ? String(o.mss) : '';
        want['tcp.options.wscale.shift'] = o.wscale !== undefined ? String(o.wscale) : '';
        want['tcp.options.timestamp.tsval'] = o.timestamp !== undefined ? String(o.timestamp.val) : '';
        want['tcp.options.timestamp.tsecr'] = o.timestamp !== undefined ? String(o.timestamp.ecr) : '';
        want['tcp.options.sack_le'] = o.sack !== undefined ? o.sack.map((b) => String(b[0])).join(',') : '';
        want['tcp.options.sack_re'] = o.sack !== undefined ? o.sack.map((b) => String(b[1])).join(',') : '';
      } else {
        const u = c.udp!;
        want['udp.srcport'] = String(u.sport);
        want['udp.dstport'] = String(u.dport);
        want['udp.length'] = String(8 + (u.payload?.length ?? 0));
        // tshark: 1 = good; 3 = not present (checksum 0 over IPv4).
        want['udp.checksum.status'] = u.noChecksum === true ? '3' : '1';
        want['udp.payload'] = payloadHex;
        if (u === zero.spec) want['udp.checksum'] = String(0xffff);
      }
      const got: Partial<Row> = {};
      // tshark prints some fields in hex (0x…, varying widths): compare those as numbers.
      for (const k of Object.keys(want) as Array<keyof Row>) got[k] = /^0x[0-9a-f]+$/i.test(r[k]) ? String(parseInt(r[k], 16)) : r[k];
      expect(got, label).toEqual(want);
      if (c.tcp?.options !== undefined && !(c.tcp.options instanceof Uint8Array) && c.tcp.options.sackPermitted === true) {
        expect(r['tcp.options.sack_perm'], label).not.toBe('');
      }
    });
  });
});
