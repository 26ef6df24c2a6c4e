/**
 * Test-only fragmenters: cut a datagram (built from the RFC layouts by test/packet/build.ts)
 * into fragments as RFC 791 §3.2 / RFC 8200 §4.5 describe, and build the same datagram
 * unfragmented. A correct reassembler turns the fragments back into exactly that frame.
 */
import { be16, eth, ext6, frag6, ip4, ipv4, ipv6, naiveL4Checksum, udp, V6_DST, V6_SRC, type Bytes } from '../packet/build.js';
import { ETH_IPV4, ETH_IPV6, TPID_8021AD, TPID_8021Q } from './table-helpers.js';

/** [start, end) byte ranges of the fragmentable part. */
export type Piece = [start: number, end: number];

/** Split `len` bytes into pieces of `size` (a multiple of 8) bytes, the last one shorter. */
export function evenPieces(len: number, size: number): Piece[] {
  const out: Piece[] = [];
  for (let s = 0; s < len; s += size) out.push([s, Math.min(len, s + size)]);
  return out;
}

/** The last piece: ends at the end, and starts last among those that do (a zero-length tail). */
function isLast(pieces: Piece[], i: number): boolean {
  const end = Math.max(...pieces.map((p) => p[1]));
  const start = Math.max(...pieces.filter((p) => p[1] === end).map((p) => p[0]));
  return pieces[i]![1] === end && pieces[i]![0] === start;
}

function tags(vlans: number[] | undefined): Array<[number, number]> {
  return (vlans ?? []).map((vid, i, all) => [all.length > 1 && i === 0 ? TPID_8021AD : TPID_8021Q, vid]);
}

export interface V4Datagram {
  id: number;
  proto: number;
  /** The whole IP payload (transport header included). */
  payload: Bytes;
  src?: Bytes;
  dst?: Bytes;
  options?: Bytes;
  /** DF/reserved bits to carry (0..6; MF is set by the fragmenter). */
  flags?: number;
  vlans?: number[];
}

/** The datagram as one frame: what reassembly must produce. */
export function wholeV4(d: V4Datagram): Uint8Array {
  return Uint8Array.from(eth(ETH_IPV4, ipv4({ id: d.id, proto: d.proto, src: d.src, dst: d.dst, options: d.options, flags: d.flags ?? 0 }, d.payload), tags(d.vlans)));
}

/**
 * One frame per piece. Options go in the first fragment only (as if none had the copy flag),
 * which is what makes the first fragment's header the reassembled datagram's header.
 */
export function fragmentV4(d: V4Datagram, pieces: Piece[], overrides: { mf?: boolean[] } = {}): Uint8Array[] {
  return pieces.map(([s, e], i) => {
    if (s % 8 !== 0) throw new Error(`fragmentV4: offset ${s} is not a multiple of 8`);
    const mf = overrides.mf?.[i] ?? !isLast(pieces, i);
    const hdr = { id: d.id, proto: d.proto, src: d.src, dst: d.dst, options: s === 0 ? d.options : undefined, flags: (d.flags ?? 0) | (mf ? 1 : 0), fragUnits: s / 8 };
    return Uint8Array.from(eth(ETH_IPV4, ipv4(hdr, d.payload.slice(s, e)), tags(d.vlans)));
  });
}

export interface V6Datagram {
  id: number;
  /** Extension headers before the Fragment header (unfragmentable part), as [type, body]. */
  unfrag?: Array<[type: number, body: Bytes]>;
  /** Next Header of the fragmentable part, and its bytes (extension headers + upper layer). */
  nh: number;
  payload: Bytes;
  src?: Bytes;
  dst?: Bytes;
  vlans?: number[];
}

/** Fixed header + unfragmentable headers whose chain ends in `last`, then `rest`. */
function v6Packet(d: V6Datagram, last: number, rest: Bytes): Bytes {
  const u = d.unfrag ?? [];
  let chain: Bytes = [];
  for (let i = 0; i < u.length; i++) chain = [...chain, ...ext6(i + 1 < u.length ? u[i + 1]![0] : last, u[i]![1])];
  const first = u.length > 0 ? u[0]![0] : last;
  return eth(ETH_IPV6, ipv6({ nh: first, src: d.src ?? V6_SRC, dst: d.dst ?? V6_DST }, [...chain, ...rest]), tags(d.vlans));
}

export function wholeV6(d: V6Datagram): Uint8Array {
  return Uint8Array.from(v6Packet(d, d.nh, d.payload));
}

export function fragmentV6(d: V6Datagram, pieces: Piece[], overrides: { mf?: boolean[] } = {}): Uint8Array[] {
  return pieces.map(([s, e], i) => {
    if (s % 8 !== 0) throw new Error(`fragmentV6: offset ${s} is not a multiple of 8`);
    const mf = overrides.mf?.[i] ?? !isLast(pieces, i);
    return Uint8Array.from(v6Packet(d, 44, [...frag6(d.nh, s / 8, mf, d.id), ...d.payload.slice(s, e)]));
  });
}

/** A UDP datagram with a correct checksum over the given addresses (the IP payload). */
export function udpPayload(src: Bytes, dst: Bytes, sport: number, dport: number, data: Bytes): Bytes {
  const seg = udp(sport, dport, data);
  const c = naiveL4Checksum(src, dst, 17, seg);
  seg[6] = c >> 8;
  seg[7] = c & 0xff;
  return seg;
}

/** `n` bytes of a recognisable pattern. */
export function pattern(n: number, seed = 1): Bytes {
  const out: Bytes = [];
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out.push((x >>> 16) & 0xff);
  }
  return out;
}

export const SRC4 = ip4('10.1.1.1');
export const DST4 = ip4('10.2.2.2');
export { be16, V6_SRC, V6_DST };
