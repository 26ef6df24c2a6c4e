/**
 * Flow keys: the bytes that name a bidirectional conversation, built from a decoded
 * PacketView into a reusable Int32Array (no allocation), normalised so both directions of a
 * connection give the same key.
 *
 * Layout (FLOW_KEY_WORDS = 11 Int32 words = 44 bytes):
 *   w0      IP protocol << 24 | KEY_V6 | KEY_ECHO   (flag bits below the protocol)
 *   w1      outer VLAN id << 16 | inner VLAN id    (0 = untagged: VID 0 is a priority tag, not a VLAN)
 *   w2      lo port << 16 | hi port
 *   w3..6   lo address (IPv4: w3 only, w4..6 zero; the KEY_V6 bit keeps v4 and v6 apart)
 *   w7..10  hi address
 * "lo" is the endpoint (address, then port) that sorts first as unsigned big-endian numbers.
 *
 * Ports: TCP, UDP; SCTP (132), UDP-Lite (136) and DCCP (33) from the first 4 bytes of their
 * header (0 when those bytes are missing). ICMP / ICMPv6 echo request and reply: the echo
 * identifier as both ports with KEY_ECHO set, so a ping's request and reply share a flow and
 * two pings with different ids do not. Every other ICMP message (errors included) and every
 * other protocol: ports 0, i.e. one flow per address pair and protocol.
 */
import { LAYER_FRAG, LAYER_IPV4, LAYER_IPV6, LAYER_TCP, LAYER_UDP } from '../packet/layer.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6 } from '../packet/proto.js';
import type { PacketView } from '../packet/view.js';

export const FLOW_KEY_WORDS = 11;
/** w0 flag: IPv6 addresses. */
export const KEY_V6 = 1 << 16;
/** w0 flag: ICMP echo (ports hold the echo id). */
export const KEY_ECHO = 1 << 17;

export const IPPROTO_DCCP = 33;
export const IPPROTO_SCTP = 132;
export const IPPROTO_UDPLITE = 136;

/** `flowKey` results: the packet's source is the lo (1) or hi (0) endpoint of the key. */
export const SRC_IS_HI = 0;
export const SRC_IS_LO = 1;
/** Not a flow: no IPv4/IPv6 header (ARP, unknown ethertypes, undecodable L3). */
export const MISS_NOT_IP = -1;
/** Not a flow by itself: an IP fragment (first or not); reassemble it first (defrag.ts). */
export const MISS_FRAGMENT = -2;
/** The IP header decoded but a header above it did not (status ≠ OK): ports unknown. */
export const MISS_UNDECODED = -3;

/** Address word `i` (0..3) of the address at `off` (IPv4 has only word 0). */
function addrWord(b: Uint8Array, off: number, len: number, i: number): number {
  if (i !== 0 && len === 4) return 0;
  const o = off + 4 * i;
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}

/**
 * Fill `out[0 .. FLOW_KEY_WORDS)` with the flow key of the decoded packet `v`. Returns
 * SRC_IS_LO / SRC_IS_HI (which endpoint sent it) or a MISS_* reason (< 0, `out` is then
 * unspecified). When both endpoints are equal (same address and port) the result is SRC_IS_LO.
 */
export function flowKey(v: PacketView, out: Int32Array): number {
  const layers = v.layers;
  if ((layers & (LAYER_IPV4 | LAYER_IPV6)) === 0) return MISS_NOT_IP;
  if ((layers & LAYER_FRAG) !== 0) return MISS_FRAGMENT;
  if (v.status !== 0) return MISS_UNDECODED;
  const proto = v.ipProto;
  let sp = 0;
  let dp = 0;
  let flags = v.ipAddrLen === 16 ? KEY_V6 : 0;
  if ((layers & (LAYER_TCP | LAYER_UDP)) !== 0) {
    sp = v.srcPort;
    dp = v.dstPort;
  } else if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) {
    if (v.icmpEcho) {
      sp = dp = v.icmpEchoId;
      flags |= KEY_ECHO;
    }
  } else if (proto === IPPROTO_SCTP || proto === IPPROTO_UDPLITE || proto === IPPROTO_DCCP) {
    const o = v.l4Off;
    if (o >= 0 && v.ipEnd - o >= 4) {
      const b = v.buf;
      sp = (b[o] << 8) | b[o + 1];
      dp = (b[o + 2] << 8) | b[o + 3];
    }
  }
  const b = v.buf;
  const n = v.ipAddrLen;
  const so = v.ipSrcOff;
  const d = v.ipDstOff;
  out[0] = (proto << 24) | flags;
  out[1] = ((v.vlanCount > 0 ? v.vlanId0 : 0) << 16) | (v.vlanCount > 1 ? v.vlanId1 : 0);
  if (n === 4) {
    // IPv4 (most packets): one word per address, the same key as the general path below.
    const x = addrWord(b, so, 4, 0);
    const y = addrWord(b, d, 4, 0);
    const srcLo = (x >>> 0) < (y >>> 0) || (x === y && sp <= dp);
    out[2] = srcLo ? (sp << 16) | dp : (dp << 16) | sp;
    out[3] = srcLo ? x : y;
    out[7] = srcLo ? y : x;
    out[4] = out[5] = out[6] = out[8] = out[9] = out[10] = 0;
    return srcLo ? SRC_IS_LO : SRC_IS_HI;
  }
  // Which endpoint sorts first: addresses as unsigned words, then ports.
  let cmp = 0;
  for (let i = 0; i < 4 && cmp === 0; i++) {
    const x = addrWord(b, so, n, i) >>> 0;
    const y = addrWord(b, d, n, i) >>> 0;
    cmp = x < y ? -1 : x > y ? 1 : 0;
  }
  if (cmp === 0) cmp = sp < dp ? -1 : sp > dp ? 1 : 0;
  const srcLo = cmp <= 0;
  const loOff = srcLo ? so : d;
  const hiOff = srcLo ? d : so;
  out[2] = srcLo ? (sp << 16) | dp : (dp << 16) | sp;
  for (let i = 0; i < 4; i++) {
    out[3 + i] = addrWord(b, loOff, n, i);
    out[7 + i] = addrWord(b, hiOff, n, i);
  }
  return srcLo ? SRC_IS_LO : SRC_IS_HI;
}

/** Protocol of a stored key. */
export function keyProto(keys: Int32Array, base: number): number {
  return keys[base]! >>> 24;
}

/** Decoded endpoints of a stored key (cold path). */
export interface KeyParts {
  proto: number;
  v6: boolean;
  echo: boolean;
  vlan0: number;
  vlan1: number;
  /** Address bytes (4 or 16) and port of the lo / hi endpoint. */
  loAddr: Uint8Array;
  loPort: number;
  hiAddr: Uint8Array;
  hiPort: number;
}

/**
 * Copy the low (`hi` false) or high endpoint's address of the key at `keys[base ..]` into
 * `out` (16 bytes of room); returns its length, 4 or 16. Allocates nothing.
 */
export function keyAddrInto(keys: Int32Array, base: number, hi: boolean, out: Uint8Array): number {
  const n = (keys[base]! & KEY_V6) !== 0 ? 16 : 4;
  const at = base + (hi ? 7 : 3);
  for (let i = 0; i < n; i++) out[i] = (keys[at + (i >> 2)]! >>> (24 - 8 * (i & 3))) & 0xff;
  return n;
}

/** Unpack the key at `keys[base ..]` (allocates: cold path). */
export function keyParts(keys: Int32Array, base: number): KeyParts {
  const w0 = keys[base]!;
  const v6 = (w0 & KEY_V6) !== 0;
  const n = v6 ? 16 : 4;
  const addr = (hi: boolean): Uint8Array => {
    const a = new Uint8Array(n);
    keyAddrInto(keys, base, hi, a);
    return a;
  };
  const w1 = keys[base + 1]!;
  const w2 = keys[base + 2]!;
  return {
    proto: w0 >>> 24,
    v6,
    echo: (w0 & KEY_ECHO) !== 0,
    vlan0: w1 >>> 16,
    vlan1: w1 & 0xffff,
    loAddr: addr(false),
    loPort: w2 >>> 16,
    hiAddr: addr(true),
    hiPort: w2 & 0xffff,
  };
}
