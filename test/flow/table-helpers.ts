/**
 * Test-only packet makers for flow-table and defrag tests: frames built from the RFC byte
 * layouts by test/packet/build.ts (independent of src/packet), then decoded into a fresh
 * PacketView, because the table consumes decoded views.
 */
import { decodeFrame, PacketView } from '../../src/packet/index.js';
import { eth, icmp, ip4, ip6, ipv4, ipv6, tcp, udp, type Bytes } from '../packet/build.js';

export const ETH_IPV4 = 0x0800;
export const ETH_IPV6 = 0x86dd;
export const TPID_8021Q = 0x8100;
export const TPID_8021AD = 0x88a8;

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;

export const A4 = '192.0.2.1';
export const B4 = '198.51.100.2';
export const A6 = '2001:db8:0:0:0:0:0:a';
export const B6 = '2001:db8:0:0:0:0:0:b';

export interface PktOpts {
  /** Addresses: dotted quad, or full 8-group IPv6 text. */
  src: string;
  dst: string;
  /** VLAN tags (outer first) as VLAN ids; 802.1ad outer when two are given. */
  vlans?: number[];
  payload?: Bytes;
}

function isV6(a: string): boolean {
  return a.includes(':');
}

function l3(o: PktOpts, proto: number, l4: Bytes): Bytes {
  const tags: Array<[number, number]> = (o.vlans ?? []).map((vid, i, all) => [all.length > 1 && i === 0 ? TPID_8021AD : TPID_8021Q, vid]);
  if (isV6(o.src)) return eth(ETH_IPV6, ipv6({ nh: proto, src: ip6(o.src), dst: ip6(o.dst) }, l4), tags);
  return eth(ETH_IPV4, ipv4({ proto, src: ip4(o.src), dst: ip4(o.dst) }, l4), tags);
}

/** Decode `bytes` into a new view (fails the test on a decode error unless `allowBad`). */
export function decoded(bytes: Bytes | Uint8Array, allowBad = false): PacketView {
  const b = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
  const v = new PacketView();
  const st = decodeFrame(v, b, 0, b.length);
  if (st !== 0 && !allowBad) throw new Error(`test frame did not decode: status ${st}`);
  return v;
}

export interface TcpPktOpts extends PktOpts {
  sport: number;
  dport: number;
  flags: number;
  seq?: number;
  ack?: number;
}

export function tcpBytes(o: TcpPktOpts): Bytes {
  const payload = o.payload ?? [];
  return l3(o, 6, tcp({ sport: o.sport, dport: o.dport, seq: o.seq ?? 0, ack: o.ack ?? 0, flags: o.flags, window: 65535 }, payload));
}

export function tcpPkt(o: TcpPktOpts): PacketView {
  return decoded(tcpBytes(o));
}

export interface UdpPktOpts extends PktOpts {
  sport: number;
  dport: number;
}

export function udpBytes(o: UdpPktOpts): Bytes {
  return l3(o, 17, udp(o.sport, o.dport, o.payload ?? []));
}

export function udpPkt(o: UdpPktOpts): PacketView {
  return decoded(udpBytes(o));
}

/** ICMP (v4 or v6 by address family) echo request/reply, or any type with `rest` bytes. */
export function icmpPkt(o: PktOpts & { type: number; code?: number; id?: number; seq?: number }): PacketView {
  const v6 = isV6(o.src);
  const rest = [(o.id ?? 0) >> 8, (o.id ?? 0) & 0xff, (o.seq ?? 0) >> 8, (o.seq ?? 0) & 0xff];
  return decoded(l3(o, v6 ? 58 : 1, icmp(o.type, o.code ?? 0, rest, o.payload ?? [])));
}

/** Any IP protocol with an opaque payload (e.g. 132 SCTP with ports in its first 4 bytes, 47 GRE). */
export function rawIpPkt(o: PktOpts & { proto: number }): PacketView {
  return decoded(l3(o, o.proto, o.payload ?? []));
}

/** IP datagram length of a packet built by these helpers (what the table counts as bytes). */
export function ipLen(v: PacketView): number {
  return v.ipTotalLen;
}
