/**
 * Test-only frames for compare tests, built from the RFC byte layouts with test/packet/build.ts
 * (independent of src/). Every field a COLO pair may legitimately disagree on is a parameter:
 * IP ID, TTL, TCP window, TCP timestamps, VLAN tag.
 */
import { arp, be32, eth, icmp, ip4, ip6, ipv4, ipv6, mac, naiveChecksum, naiveL4Checksum, set16, tcp, udp, type Bytes } from '../packet/build.js';

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;

export interface Host {
  ip: string;
  port: number;
}

export interface FrameOpts {
  ipId?: number;
  ttl?: number;
  window?: number;
  /** TCP timestamp option (val, ecr); absent when undefined. */
  ts?: [number, number];
  /** 802.1Q VLAN id. */
  vlan?: number;
  /** Bytes of Ethernet padding to append (as a NIC may). */
  pad?: number;
}

/** Full 8-group IPv6 text from a short form like `2001:db8::2` (test-side, simple). */
function expand6(s: string): string {
  if (!s.includes('::')) return s;
  const [a, b] = s.split('::');
  const left = a ? a.split(':') : [];
  const right = b ? b.split(':') : [];
  const mid = new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...mid, ...right].join(':');
}

function addr(ip: string): Bytes {
  return ip.includes(':') ? ip6(expand6(ip)) : ip4(ip);
}

function wrapIp(src: string, dst: string, proto: number, l4: Bytes, o: FrameOpts): Uint8Array {
  const v6 = src.includes(':');
  const s = addr(src);
  const d = addr(dst);
  const l3 = v6 ? ipv6({ nh: proto, src: s, dst: d, hlim: o.ttl ?? 64 }, l4) : ipv4({ proto, src: s, dst: d, id: o.ipId ?? 0, ttl: o.ttl ?? 64 }, l4);
  const tags: Array<[number, number]> = o.vlan !== undefined ? [[0x8100, o.vlan]] : [];
  const f = eth(v6 ? 0x86dd : 0x0800, l3, tags);
  for (let i = 0; i < (o.pad ?? 0); i++) f.push(0);
  return Uint8Array.from(f);
}

/** A TCP segment from `src` to `dst` as a whole Ethernet frame. */
export function tcpFrame(src: Host, dst: Host, seq: number, ack: number, flags: number, payload: Uint8Array | Bytes = [], o: FrameOpts = {}): Uint8Array {
  const opts: Bytes = o.ts ? [1, 1, 8, 10, ...be32(o.ts[0]), ...be32(o.ts[1])] : [];
  const seg = tcp({ sport: src.port, dport: dst.port, seq: seq >>> 0, ack: ack >>> 0, flags, window: o.window ?? 65535, options: opts }, [...payload]);
  set16(seg, 16, naiveL4Checksum(addr(src.ip), addr(dst.ip), 6, seg));
  return wrapIp(src.ip, dst.ip, 6, seg, o);
}

export function udpFrame(src: Host, dst: Host, payload: Uint8Array | Bytes, o: FrameOpts = {}): Uint8Array {
  const seg = udp(src.port, dst.port, [...payload]);
  set16(seg, 6, naiveL4Checksum(addr(src.ip), addr(dst.ip), 17, seg));
  return wrapIp(src.ip, dst.ip, 17, seg, o);
}

/** ICMP (v4, or v6 when the addresses are IPv6) echo request. */
export function pingFrame(src: string, dst: string, id: number, seq: number, payload: Bytes, o: FrameOpts = {}): Uint8Array {
  const v6 = src.includes(':');
  const m = icmp(v6 ? 128 : 8, 0, [(id >> 8) & 0xff, id & 0xff, (seq >> 8) & 0xff, seq & 0xff], payload);
  set16(m, 2, v6 ? naiveL4Checksum(addr(src), addr(dst), 58, m) : naiveChecksum(m));
  return wrapIp(src, dst, v6 ? 58 : 1, m, o);
}

/** An IP datagram of protocol `proto` with an opaque body (e.g. 47 GRE). */
export function rawIpFrame(src: string, dst: string, proto: number, body: Bytes, o: FrameOpts = {}): Uint8Array {
  return wrapIp(src, dst, proto, body, o);
}

/** An ARP frame (Ethernet/IPv4). */
export function arpFrame(op: number, senderMac: string, senderIp: string, targetMac: string, targetIp: string, o: FrameOpts = {}): Uint8Array {
  const body = arp(op, mac(senderMac), ip4(senderIp), mac(targetMac), ip4(targetIp));
  const tags: Array<[number, number]> = o.vlan !== undefined ? [[0x8100, o.vlan]] : [];
  const f = eth(0x0806, body, tags);
  for (let i = 0; i < (o.pad ?? 0); i++) f.push(0);
  return Uint8Array.from(f);
}

/**
 * IPv4 fragments of a UDP datagram (src → dst), cut at 8-byte multiples of the IP payload
 * (`cuts` are IP payload offsets). Returns the fragment frames in offset order.
 */
export function udpFragments(src: Host, dst: Host, payload: Bytes, id: number, cuts: number[], o: FrameOpts = {}): Uint8Array[] {
  const seg = udp(src.port, dst.port, payload);
  const points = [0, ...cuts.filter((c) => c > 0 && c < seg.length && c % 8 === 0), seg.length];
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const a = points[i]!;
    const b = points[i + 1]!;
    const last = i + 2 === points.length;
    const l3 = ipv4({ proto: 17, src: ip4(src.ip), dst: ip4(dst.ip), id, ttl: o.ttl ?? 64, flags: last ? 0 : 1, fragUnits: a / 8 }, seg.slice(a, b));
    out.push(Uint8Array.from(eth(0x0800, l3)));
  }
  return out;
}

// One generator of test streams and one test-side sequence adder for every test folder.
export { streamBytes, seqPlus as seqAdd } from '../flow/tcp-harness.js';
