/**
 * Frame builder: complete Ethernet frames carrying TCP or UDP over IPv4 or IPv6, with real
 * headers and valid checksums, for workloads (issue 5), reference-engine drivers and tests.
 *
 * Layout written (RFC 894, IEEE 802.1Q, RFC 791, RFC 8200, RFC 9293, RFC 768):
 * `[vnet header] dst MAC, src MAC, [802.1Q tag], ethertype, IP header (no options / no
 * extension headers), TCP header + options | UDP header, payload, [zero padding to 60]`.
 *
 * Checksums come from the packet layer (`onesSum`, `ipv4HeaderChecksum`, `foldSum`): IPv4
 * header checksum, and the TCP/UDP checksum over the RFC 793/768 (IPv4) or RFC 8200 §8.1
 * (IPv6) pseudo-header. A UDP checksum that computes to 0 is sent as 0xffff (RFC 768).
 *
 * Building is a setup-time job: `writeTcpFrame`/`writeUdpFrame` write into a caller's buffer
 * and allocate nothing when addresses are passed as bytes and TCP options pre-encoded
 * (`encodeTcpOptions`); the convenience forms allocate the returned Buffer. Bad specs throw
 * ColoError ERR_INVALID_ARGUMENT naming the offending value.
 */
import { ColoError } from '../errors.js';
import { foldSum, ipv4HeaderChecksum, onesSum } from '../packet/checksum.js';
import { put16, put32 } from '../packet/bytes.js';
import {
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_VLAN,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCPOPT_MSS,
  TCPOPT_SACK,
  TCPOPT_SACK_PERM,
  TCPOPT_TIMESTAMP,
  TCPOPT_WSCALE,
} from '../packet/proto.js';
import { ipBytes, macBytes } from './addr-text.js';
import type { IpAddress, MacAddress } from './addr-text.js';

/** TCP flag bits (low byte of the flags field). */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export const TcpFlag = { FIN: TCP_FIN, SYN: TCP_SYN, RST: TCP_RST, PSH: TCP_PSH, ACK: TCP_ACK, URG: TCP_URG, ECE: TCP_ECE, CWR: TCP_CWR } as const;

/** Default MACs: QEMU's locally administered 52:54:00 prefix (guest = …:02, peer = …:01). */
export const DEFAULT_SRC_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x00, 0x00, 0x02);
export const DEFAULT_DST_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x00, 0x00, 0x01);

/** Smallest Ethernet frame without FCS; shorter frames are padded to it with `padTo60`. */
export const ETH_MIN_FRAME = 60;

/** Link-layer and framing choices shared by TCP and UDP frames. */
export interface L2Spec {
  srcMac?: MacAddress;
  dstMac?: MacAddress;
  /** 802.1Q VLAN id (0..4095): one tag with priority 0 is inserted. */
  vlan?: number;
  /** virtio-net header bytes written before the Ethernet header (their length is the frame's vnet_hdr_len). */
  vnetHdr?: Uint8Array;
  /**
   * Zero-pad the Ethernet frame to 60 bytes, as some NICs do (e.g. rtl8139 drivers). QEMU's
   * colo-compare counts such padding as TCP payload (reference §6.6), hence the choice.
   */
  padTo60?: boolean;
}

/** IP header fields. `src` and `dst` must be the same family. */
export interface IpSpec {
  src: IpAddress;
  dst: IpAddress;
  /** TTL (IPv4) / hop limit (IPv6); default 64. */
  ttl?: number;
  /** TOS (IPv4) / traffic class (IPv6); default 0. */
  tos?: number;
  /** IPv4 identification; default 0. */
  ipId?: number;
  /** IPv4 don't-fragment bit; default true. */
  df?: boolean;
  /** IPv6 flow label (20 bits); default 0. */
  flowLabel?: number;
}

/** TCP options by name; encoded in this order: MSS, SACK-permitted, timestamps, window scale, SACK. */
export interface TcpOptionsSpec {
  mss?: number;
  sackPermitted?: boolean;
  timestamp?: { val: number; ecr: number };
  wscale?: number;
  /** SACK blocks as [left edge, right edge] sequence numbers (at most 4). */
  sack?: ReadonlyArray<readonly [number, number]>;
}

export interface TcpFrameSpec extends L2Spec, IpSpec {
  sport: number;
  dport: number;
  /** Sequence number (unsigned 32-bit). */
  seq: number;
  /** Acknowledgement number; default 0. */
  ack?: number;
  /** Flag bits (TCP_*); default TCP_ACK. */
  flags?: number;
  /** Window; default 65535. */
  window?: number;
  urgent?: number;
  /** Options by name, or pre-encoded bytes (length a multiple of 4, at most 40). */
  options?: TcpOptionsSpec | Uint8Array;
  payload?: Uint8Array;
}

export interface UdpFrameSpec extends L2Spec, IpSpec {
  sport: number;
  dport: number;
  payload?: Uint8Array;
  /** IPv4 only: send checksum 0 ("no checksum", RFC 768) instead of computing it. */
  noChecksum?: boolean;
}

const EMPTY = new Uint8Array(0);
const MAX_IPV4_TOTAL = 65_535;

function bad(what: string): ColoError {
  return new ColoError('ERR_INVALID_ARGUMENT', `frame builder: ${what}`);
}

function checkUint(name: string, v: number, max: number): void {
  if (!(Number.isInteger(v) && v >= 0 && v <= max)) throw bad(`${name} must be an integer 0..${max}, got ${v}`);
}

/** Encode TCP options (padded with EOL bytes to a multiple of 4). Throws if they exceed 40 bytes. */
export function encodeTcpOptions(o: TcpOptionsSpec): Uint8Array {
  const bytes: number[] = [];
  if (o.mss !== undefined) {
    checkUint('mss', o.mss, 0xffff);
    bytes.push(TCPOPT_MSS, 4, o.mss >>> 8, o.mss & 0xff);
  }
  if (o.sackPermitted === true) bytes.push(TCPOPT_SACK_PERM, 2);
  if (o.timestamp !== undefined) {
    checkUint('timestamp.val', o.timestamp.val, 0xffffffff);
    checkUint('timestamp.ecr', o.timestamp.ecr, 0xffffffff);
    bytes.push(TCPOPT_TIMESTAMP, 10);
    for (const v of [o.timestamp.val, o.timestamp.ecr]) bytes.push(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  }
  if (o.wscale !== undefined) {
    checkUint('wscale', o.wscale, 14);
    bytes.push(TCPOPT_WSCALE, 3, o.wscale);
  }
  if (o.sack !== undefined && o.sack.length > 0) {
    if (o.sack.length > 4) throw bad(`at most 4 SACK blocks fit, got ${o.sack.length}`);
    bytes.push(TCPOPT_SACK, 2 + 8 * o.sack.length);
    for (const [l, r] of o.sack) {
      checkUint('SACK edge', l, 0xffffffff);
      checkUint('SACK edge', r, 0xffffffff);
      for (const v of [l, r]) bytes.push(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    }
  }
  while (bytes.length % 4 !== 0) bytes.push(0);
  if (bytes.length > 40) throw bad(`TCP options take ${bytes.length} bytes, more than the 40 that fit`);
  return Uint8Array.from(bytes);
}

function tcpOptionBytes(spec: TcpFrameSpec): Uint8Array {
  const o = spec.options;
  if (o === undefined) return EMPTY;
  if (o instanceof Uint8Array) {
    if (o.length % 4 !== 0 || o.length > 40) throw bad(`raw TCP options must be a multiple of 4 bytes, at most 40; got ${o.length}`);
    return o;
  }
  return encodeTcpOptions(o);
}

interface Resolved {
  src: Uint8Array;
  dst: Uint8Array;
  v6: boolean;
  l2Len: number;
  ipHdrLen: number;
}

function resolve(spec: L2Spec & IpSpec): Resolved {
  const src = ipBytes(spec.src);
  const dst = ipBytes(spec.dst);
  if (src.length !== dst.length) throw bad(`source and destination address families differ (${src.length} vs ${dst.length} bytes)`);
  if (spec.vlan !== undefined) checkUint('vlan', spec.vlan, 4095);
  const vnet = spec.vnetHdr?.length ?? 0;
  if (vnet > 20) throw bad(`vnet header of ${vnet} bytes is longer than the 20 QEMU allows`);
  const v6 = src.length === 16;
  return { src, dst, v6, l2Len: vnet + 14 + (spec.vlan !== undefined ? 4 : 0), ipHdrLen: v6 ? 40 : 20 };
}

/** Write vnet header, Ethernet (+ VLAN) and IP header; returns the L4 offset. */
function writeL2L3(out: Uint8Array, off: number, spec: L2Spec & IpSpec, r: Resolved, proto: number, l4Len: number): number {
  let p = off;
  if (spec.vnetHdr !== undefined) {
    out.set(spec.vnetHdr, p);
    p += spec.vnetHdr.length;
  }
  out.set(spec.dstMac !== undefined ? macBytes(spec.dstMac) : DEFAULT_DST_MAC, p);
  out.set(spec.srcMac !== undefined ? macBytes(spec.srcMac) : DEFAULT_SRC_MAC, p + 6);
  p += 12;
  if (spec.vlan !== undefined) {
    put16(out, p, ETHERTYPE_VLAN);
    put16(out, p + 2, spec.vlan);
    p += 4;
  }
  put16(out, p, r.v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
  p += 2;
  const ttl = spec.ttl ?? 64;
  const tos = spec.tos ?? 0;
  checkUint('ttl', ttl, 255);
  checkUint('tos', tos, 255);
  if (r.v6) {
    const fl = spec.flowLabel ?? 0;
    checkUint('flowLabel', fl, 0xfffff);
    if (l4Len > 0xffff) throw bad(`IPv6 payload of ${l4Len} bytes needs a jumbogram, not supported`);
    put32(out, p, ((6 << 28) | (tos << 20) | fl) >>> 0);
    put16(out, p + 4, l4Len);
    out[p + 6] = proto;
    out[p + 7] = ttl;
    out.set(r.src, p + 8);
    out.set(r.dst, p + 24);
    return p + 40;
  }
  const total = 20 + l4Len;
  if (total > MAX_IPV4_TOTAL) throw bad(`IPv4 total length ${total} exceeds ${MAX_IPV4_TOTAL}`);
  const id = spec.ipId ?? 0;
  checkUint('ipId', id, 0xffff);
  out[p] = 0x45;
  out[p + 1] = tos;
  put16(out, p + 2, total);
  put16(out, p + 4, id);
  put16(out, p + 6, spec.df === false ? 0 : 0x4000);
  out[p + 8] = ttl;
  out[p + 9] = proto;
  put16(out, p + 10, 0);
  out.set(r.src, p + 12);
  out.set(r.dst, p + 16);
  put16(out, p + 10, ipv4HeaderChecksum(out, p, 20));
  return p + 20;
}

/** Ones' complement sum of the pseudo-header (addresses at their places in `out`). */
function pseudoSum(out: Uint8Array, l3Off: number, r: Resolved, proto: number, l4Len: number): number {
  const alen = r.v6 ? 16 : 4;
  const srcOff = l3Off + (r.v6 ? 8 : 12);
  let s = onesSum(out, srcOff, alen);
  s = onesSum(out, srcOff + alen, alen, s);
  return s + proto + l4Len;
}

/** Zero-pad after `end` up to a 60-byte Ethernet frame when asked; returns the frame end. */
function pad(out: Uint8Array, off: number, end: number, spec: L2Spec): number {
  if (spec.padTo60 !== true) return end;
  const ethStart = off + (spec.vnetHdr?.length ?? 0);
  const want = ethStart + ETH_MIN_FRAME;
  if (end >= want) return end;
  if (want > out.length) throw bad(`no room to pad to ${ETH_MIN_FRAME} bytes`);
  out.fill(0, end, want);
  return want;
}

function frameLen(r: Resolved, l4Len: number, spec: L2Spec): number {
  const len = r.l2Len + r.ipHdrLen + l4Len;
  const vnet = spec.vnetHdr?.length ?? 0;
  return spec.padTo60 === true && len - vnet < ETH_MIN_FRAME ? vnet + ETH_MIN_FRAME : len;
}

/** Bytes `writeTcpFrame` will write for `spec` (vnet header and padding included). */
export function tcpFrameLength(spec: TcpFrameSpec): number {
  return frameLen(resolve(spec), 20 + tcpOptionBytes(spec).length + (spec.payload?.length ?? 0), spec);
}

/**
 * Write the TCP frame described by `spec` at `out[off]` and return its length (as
 * `tcpFrameLength`). Throws ERR_INVALID_ARGUMENT for bad values or when `out` is too small.
 */
export function writeTcpFrame(out: Uint8Array, off: number, spec: TcpFrameSpec): number {
  const r = resolve(spec);
  const opts = tcpOptionBytes(spec);
  const payload = spec.payload ?? EMPTY;
  const thl = 20 + opts.length;
  const l4Len = thl + payload.length;
  const len = frameLen(r, l4Len, spec);
  if (!(Number.isInteger(off) && off >= 0 && off + len <= out.length)) throw bad(`a ${len}-byte frame does not fit at offset ${off} of a ${out.length}-byte buffer`);
  checkUint('sport', spec.sport, 0xffff);
  checkUint('dport', spec.dport, 0xffff);
  checkUint('seq', spec.seq, 0xffffffff);
  const ack = spec.ack ?? 0;
  checkUint('ack', ack, 0xffffffff);
  const flags = spec.flags ?? TCP_ACK;
  checkUint('flags', flags, 0xfff);
  const win = spec.window ?? 65_535;
  checkUint('window', win, 0xffff);
  const urg = spec.urgent ?? 0;
  checkUint('urgent', urg, 0xffff);
  const l3 = off + r.l2Len;
  const t = writeL2L3(out, off, spec, r, IPPROTO_TCP, l4Len);
  put16(out, t, spec.sport);
  put16(out, t + 2, spec.dport);
  put32(out, t + 4, spec.seq);
  put32(out, t + 8, ack);
  put16(out, t + 12, ((thl >>> 2) << 12) | flags);
  put16(out, t + 14, win);
  put16(out, t + 16, 0);
  put16(out, t + 18, urg);
  out.set(opts, t + 20);
  out.set(payload, t + thl);
  const s = onesSum(out, t, l4Len, pseudoSum(out, l3, r, IPPROTO_TCP, l4Len));
  put16(out, t + 16, ~foldSum(s) & 0xffff);
  return pad(out, off, t + l4Len, spec) - off;
}

/** A new Buffer holding the TCP frame described by `spec`. */
export function tcpFrame(spec: TcpFrameSpec): Buffer {
  const b = Buffer.alloc(tcpFrameLength(spec));
  writeTcpFrame(b, 0, spec);
  return b;
}

/** Bytes `writeUdpFrame` will write for `spec`. */
export function udpFrameLength(spec: UdpFrameSpec): number {
  return frameLen(resolve(spec), 8 + (spec.payload?.length ?? 0), spec);
}

/** Write the UDP frame described by `spec` at `out[off]` and return its length. */
export function writeUdpFrame(out: Uint8Array, off: number, spec: UdpFrameSpec): number {
  const r = resolve(spec);
  const payload = spec.payload ?? EMPTY;
  const l4Len = 8 + payload.length;
  const len = frameLen(r, l4Len, spec);
  if (!(Number.isInteger(off) && off >= 0 && off + len <= out.length)) throw bad(`a ${len}-byte frame does not fit at offset ${off} of a ${out.length}-byte buffer`);
  checkUint('sport', spec.sport, 0xffff);
  checkUint('dport', spec.dport, 0xffff);
  if (l4Len > 0xffff) throw bad(`UDP length ${l4Len} exceeds 65535`);
  if (spec.noChecksum === true && r.v6) throw bad('UDP over IPv6 must carry a checksum (RFC 8200 §8.1)');
  const l3 = off + r.l2Len;
  const u = writeL2L3(out, off, spec, r, IPPROTO_UDP, l4Len);
  put16(out, u, spec.sport);
  put16(out, u + 2, spec.dport);
  put16(out, u + 4, l4Len);
  put16(out, u + 6, 0);
  out.set(payload, u + 8);
  if (spec.noChecksum !== true) {
    const c = ~foldSum(onesSum(out, u, l4Len, pseudoSum(out, l3, r, IPPROTO_UDP, l4Len))) & 0xffff;
    put16(out, u + 6, c === 0 ? 0xffff : c);
  }
  return pad(out, off, u + l4Len, spec) - off;
}

/** A new Buffer holding the UDP frame described by `spec`. */
export function udpFrame(spec: UdpFrameSpec): Buffer {
  const b = Buffer.alloc(udpFrameLength(spec));
  writeUdpFrame(b, 0, spec);
  return b;
}

/**
 * Cut `data` into TCP data segments of at most `mss` bytes, starting at `base.seq` (sequence
 * numbers advance mod 2^32). Every segment has `base.flags` (default ACK), the last one also
 * PSH; all other fields come from `base`.
 */
export function tcpSegments(base: Omit<TcpFrameSpec, 'payload'>, data: Uint8Array, mss: number): Buffer[] {
  checkUint('mss', mss, 0xffff);
  if (mss === 0) throw bad('mss must be positive');
  const out: Buffer[] = [];
  const flags = base.flags ?? TCP_ACK;
  for (let o = 0; o < data.length; o += mss) {
    const n = Math.min(mss, data.length - o);
    const last = o + n >= data.length;
    out.push(tcpFrame({ ...base, seq: (base.seq + o) >>> 0, flags: last ? flags | TCP_PSH : flags, payload: data.subarray(o, o + n) }));
  }
  return out;
}
