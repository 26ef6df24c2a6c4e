/**
 * Link-layer types of capture records, and normalisation of the IP-carrying ones into
 * Ethernet II so the rest of the engine only ever parses Ethernet.
 *
 * Normalisation works in place: the synthetic 14-byte Ethernet header is written into the
 * bytes right before the L3 header. For SLL / SLL2 those bytes are the tail of the cooked
 * header itself; for raw IP they are the already-parsed record / block header, which the
 * readers keep in their chunk (at least 16 bytes before every record, see chunk.ts).
 *
 * Synthetic MAC addresses: the destination is always 00:00:00:00:00:00 (cooked captures do
 * not record it). The source is the SLL/SLL2 link-layer address when it is 6 bytes long (Linux
 * stores the sender's address there in both directions), otherwise 00:00:00:00:00:00. Raw IP
 * gets zeros for both. Consumers that key on MACs must therefore not expect them to be unique.
 */
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from '../packet/proto.js';
import type { CaptureRecord } from './types.js';

/** LINKTYPE_* values (tcpdump.org/linktypes.html) the engine cares about. */
export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  /** DLT_RAW on most platforms; written to files by old libpcaps. */
  RAW_12: 12,
  /** DLT_RAW on OpenBSD; written to files by old libpcaps there. */
  RAW_14: 14,
  RAW: 101,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  NETLINK: 253,
  LINUX_SLL2: 276,
} as const;

/** Linux ARPHRD_NETLINK: a cooked "frame" that carries netlink, not a network packet. */
const ARPHRD_NETLINK = 824;
/** Protocol values below this are 802.3 lengths / Linux pseudo-protocols, not EtherTypes. */
const MIN_ETHERTYPE = 0x0600;
const ETH_HLEN = 14;
const SLL_HLEN = 16;
const SLL2_HLEN = 20;

/**
 * Rewrite `rec` in place so that `rec.buf/off/capLen` describe an Ethernet II frame and
 * `rec.linkType` is 1; `origLen` changes by the same amount as `capLen`.
 * Returns true when the record is (now) Ethernet, false when its link type cannot be
 * normalised (the record is then untouched): unknown link types, netlink, SLL frames whose
 * protocol is not an EtherType, raw IP with an unknown version nibble, records too short for
 * their cooked header, or raw-IP records without 14 bytes of room before the data.
 */
export function toEthernet(rec: CaptureRecord): boolean {
  switch (rec.linkType) {
    case LINKTYPE.ETHERNET:
      return true;
    case LINKTYPE.RAW:
    case LINKTYPE.RAW_12:
    case LINKTYPE.RAW_14:
      return rawToEthernet(rec, 0);
    case LINKTYPE.IPV4:
      return rawToEthernet(rec, ETHERTYPE_IPV4);
    case LINKTYPE.IPV6:
      return rawToEthernet(rec, ETHERTYPE_IPV6);
    case LINKTYPE.LINUX_SLL:
      return sllToEthernet(rec);
    case LINKTYPE.LINUX_SLL2:
      return sll2ToEthernet(rec);
    default:
      return false;
  }
}

function zero(b: Buffer, from: number, to: number): void {
  for (let i = from; i < to; i++) b[i] = 0;
}

function rawToEthernet(rec: CaptureRecord, forcedType: number): boolean {
  const b = rec.buf;
  const off = rec.off;
  let type = forcedType;
  if (type === 0) {
    if (rec.capLen < 1) return false;
    const version = b[off]! >>> 4;
    if (version === 4) type = ETHERTYPE_IPV4;
    else if (version === 6) type = ETHERTYPE_IPV6;
    else return false;
  }
  if (off < ETH_HLEN) return false;
  const h = off - ETH_HLEN;
  zero(b, h, h + 12);
  b[h + 12] = type >>> 8;
  b[h + 13] = type & 0xff;
  finish(rec, h, ETH_HLEN);
  return true;
}

/** SLL: pkttype(2) hatype(2) halen(2) addr(8) protocol(2) | L3. Ethernet goes at +2. */
function sllToEthernet(rec: CaptureRecord): boolean {
  if (rec.capLen < SLL_HLEN) return false;
  const b = rec.buf;
  const o = rec.off;
  const hatype = (b[o + 2]! << 8) | b[o + 3]!;
  const halen = (b[o + 4]! << 8) | b[o + 5]!;
  const proto = (b[o + 14]! << 8) | b[o + 15]!;
  if (hatype === ARPHRD_NETLINK || proto < MIN_ETHERTYPE) return false;
  // Source MAC: addr[0..6] at +6 moves to +8 (overlapping, so copy backwards); then dst.
  if (halen === 6) for (let i = 5; i >= 0; i--) b[o + 8 + i] = b[o + 6 + i]!;
  else zero(b, o + 8, o + 14);
  zero(b, o + 2, o + 8);
  // The protocol field already sits where the EtherType goes (+14).
  finish(rec, o + 2, -2);
  return true;
}

/** SLL2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8) | L3. Ethernet goes at +6. */
function sll2ToEthernet(rec: CaptureRecord): boolean {
  if (rec.capLen < SLL2_HLEN) return false;
  const b = rec.buf;
  const o = rec.off;
  const proto = (b[o]! << 8) | b[o + 1]!;
  const hatype = (b[o + 8]! << 8) | b[o + 9]!;
  const halen = b[o + 11]!;
  if (hatype === ARPHRD_NETLINK || proto < MIN_ETHERTYPE) return false;
  // addr[0..6] is already where the source MAC goes (+12).
  if (halen !== 6) zero(b, o + 12, o + 18);
  b[o + 18] = proto >>> 8;
  b[o + 19] = proto & 0xff;
  zero(b, o + 6, o + 12);
  finish(rec, o + 6, -6);
  return true;
}

function finish(rec: CaptureRecord, newOff: number, delta: number): void {
  rec.off = newOff;
  rec.capLen += delta;
  // Never let the wire length drop below what we hold (only possible for nonsense origLen).
  rec.origLen = Math.max(rec.origLen + delta, rec.capLen);
  rec.linkType = LINKTYPE.ETHERNET;
}

/** libpcap names (as `pcap_datalink_val_to_name` / tcpdump print them) for LINKTYPE values. */
const NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'NULL'], [1, 'EN10MB'], [6, 'IEEE802'], [9, 'PPP'], [10, 'FDDI'], [12, 'RAW'],
  [50, 'PPP_SERIAL'], [51, 'PPP_ETHER'], [101, 'RAW'], [104, 'C_HDLC'], [105, 'IEEE802_11'],
  [108, 'LOOP'], [113, 'LINUX_SLL'], [117, 'PFLOG'], [127, 'IEEE802_11_RADIO'],
  [189, 'USB_LINUX'], [192, 'PPI'], [195, 'IEEE802_15_4'], [220, 'USB_LINUX_MMAPPED'],
  [227, 'CAN_SOCKETCAN'], [228, 'IPV4'], [229, 'IPV6'], [231, 'DBUS'], [239, 'NFLOG'],
  [249, 'USBPCAP'], [253, 'NETLINK'], [276, 'LINUX_SLL2'],
]);

/**
 * Display name of a LINKTYPE value: libpcap's short name (e.g. 1 → "EN10MB", 113 →
 * "LINUX_SLL"), or "LINKTYPE_<n>" for values this table does not know.
 */
export function linkTypeName(n: number): string {
  return NAMES.get(n) ?? `LINKTYPE_${n}`;
}
