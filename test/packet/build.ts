/**
 * Test-only frame builder straight from the RFC byte layouts (RFC 791, 8200, 9293, 768, 792,
 * 4443, 826, IEEE 802.1Q). Deliberately naive and independent of src/packet: tests state the
 * field values, build the bytes here, and expect the decoder to give the same values back.
 */

export type Bytes = number[];

export function be16(v: number): Bytes {
  return [(v >>> 8) & 0xff, v & 0xff];
}

export function be32(v: number): Bytes {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

/** RFC 1071 checksum, the textbook way (one word at a time, fold as we go). */
export function naiveChecksum(bytes: Bytes): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    s += (bytes[i]! << 8) + (bytes[i + 1] ?? 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  return ~s & 0xffff;
}

export function mac(s: string): Bytes {
  return s.split(':').map((x) => parseInt(x, 16));
}

export function ip4(s: string): Bytes {
  return s.split('.').map(Number);
}

/** Parse a full (uncompressed, 8 groups) IPv6 text. */
export function ip6(s: string): Bytes {
  const g = s.split(':');
  if (g.length !== 8) throw new Error(`ip6(): need 8 groups: ${s}`);
  return g.flatMap((x) => be16(parseInt(x, 16)));
}

export const MAC_A = mac('02:00:00:00:00:0a');
export const MAC_B = mac('02:00:00:00:00:0b');

export function eth(type: number, payload: Bytes, tags: Array<[tpid: number, tci: number]> = [], dst = MAC_B, src = MAC_A): Bytes {
  const t = tags.flatMap(([tpid, tci]) => [...be16(tpid), ...be16(tci)]);
  return [...dst, ...src, ...t, ...be16(type), ...payload];
}

export interface Ip4Opts {
  tos?: number;
  id?: number;
  /** 3 bits: reserved, DF, MF. */
  flags?: number;
  /** Fragment offset in 8-byte units (the wire field). */
  fragUnits?: number;
  ttl?: number;
  proto: number;
  src?: Bytes;
  dst?: Bytes;
  options?: Bytes;
  /** Overrides for malformed cases. */
  totalLen?: number;
  ihl?: number;
  version?: number;
  checksum?: number;
}

export function ipv4(o: Ip4Opts, payload: Bytes): Bytes {
  const opts = o.options ?? [];
  if (opts.length % 4 !== 0) throw new Error('ipv4(): options must be padded to 4 bytes');
  const hl = 20 + opts.length;
  const ihl = o.ihl ?? hl / 4;
  const total = o.totalLen ?? hl + payload.length;
  const h = [
    ((o.version ?? 4) << 4) | ihl,
    o.tos ?? 0,
    ...be16(total),
    ...be16(o.id ?? 0),
    ...be16(((o.flags ?? 0) << 13) | (o.fragUnits ?? 0)),
    o.ttl ?? 64,
    o.proto,
    0,
    0,
    ...(o.src ?? ip4('192.0.2.1')),
    ...(o.dst ?? ip4('198.51.100.2')),
    ...opts,
  ];
  const c = o.checksum ?? naiveChecksum(h);
  h[10] = c >>> 8;
  h[11] = c & 0xff;
  return [...h, ...payload];
}

export interface Ip6Opts {
  tc?: number;
  flow?: number;
  nh: number;
  hlim?: number;
  src?: Bytes;
  dst?: Bytes;
  plen?: number;
  version?: number;
}

export const V6_SRC = ip6('2001:db8:0:0:0:0:0:1');
export const V6_DST = ip6('2001:db8:0:0:0:0:0:2');

export function ipv6(o: Ip6Opts, payload: Bytes): Bytes {
  const w = (((o.version ?? 6) << 28) | ((o.tc ?? 0) << 20) | (o.flow ?? 0)) >>> 0;
  return [
    ...be32(w),
    ...be16(o.plen ?? payload.length),
    o.nh,
    o.hlim ?? 64,
    ...(o.src ?? V6_SRC),
    ...(o.dst ?? V6_DST),
    ...payload,
  ];
}

/** Generic extension header (hop-by-hop, routing, destination options): body padded to 8n − 2. */
export function ext6(nh: number, body: Bytes): Bytes {
  const total = body.length + 2;
  if (total % 8 !== 0) throw new Error('ext6(): header must be a multiple of 8 bytes');
  return [nh, total / 8 - 1, ...body];
}

/** Fragment header: offset in 8-byte units, M flag, 32-bit id. */
export function frag6(nh: number, offUnits: number, m: boolean, id: number): Bytes {
  return [nh, 0, ...be16((offUnits << 3) | (m ? 1 : 0)), ...be32(id)];
}

/** Authentication header (RFC 4302) with an ICV of `icvLen` bytes (multiple of 4, total multiple of 8). */
export function ah6(nh: number, spi: number, seq: number, icvLen: number): Bytes {
  const total = 12 + icvLen;
  return [nh, total / 4 - 2, 0, 0, ...be32(spi), ...be32(seq), ...new Array<number>(icvLen).fill(0xab)];
}

export interface TcpOpts {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  /** 12 bits incl. reserved/AE. */
  flags: number;
  window: number;
  urgent?: number;
  options?: Bytes;
  dataOffWords?: number;
  checksum?: number;
}

export function tcp(o: TcpOpts, payload: Bytes): Bytes {
  const opts = o.options ?? [];
  if (opts.length % 4 !== 0) throw new Error('tcp(): options must be padded to 4 bytes');
  const doff = o.dataOffWords ?? (20 + opts.length) / 4;
  return [
    ...be16(o.sport),
    ...be16(o.dport),
    ...be32(o.seq),
    ...be32(o.ack),
    (doff << 4) | ((o.flags >>> 8) & 0x0f),
    o.flags & 0xff,
    ...be16(o.window),
    ...be16(o.checksum ?? 0),
    ...be16(o.urgent ?? 0),
    ...opts,
    ...payload,
  ];
}

export function udp(sport: number, dport: number, payload: Bytes, length = 8 + payload.length, checksum = 0): Bytes {
  return [...be16(sport), ...be16(dport), ...be16(length), ...be16(checksum), ...payload];
}

/** ICMPv4/ICMPv6 header: type, code, checksum, 4 bytes rest-of-header. */
export function icmp(type: number, code: number, rest: Bytes, payload: Bytes, checksum = 0): Bytes {
  return [type, code, ...be16(checksum), ...rest, ...payload];
}

export function arp(op: number, sha: Bytes, spa: Bytes, tha: Bytes, tpa: Bytes, htype = 1, ptype = 0x0800): Bytes {
  return [...be16(htype), ...be16(ptype), sha.length, spa.length, ...be16(op), ...sha, ...spa, ...tha, ...tpa];
}

/** Put a field back into a built frame (after the fact, e.g. a checksum). */
export function set16(b: Bytes, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

export function u8(b: Bytes): Uint8Array {
  return Uint8Array.from(b);
}

/** Textbook pseudo-header + segment checksum (RFC 793 / 8200 §8.1), for building valid frames. */
export function naiveL4Checksum(src: Bytes, dst: Bytes, proto: number, segment: Bytes): number {
  const len = segment.length;
  const pseudo =
    src.length === 4
      ? [...src, ...dst, 0, proto, ...be16(len)]
      : [...src, ...dst, ...be32(len), 0, 0, 0, proto];
  return naiveChecksum([...pseudo, ...segment]);
}
