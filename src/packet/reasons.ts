/**
 * Why a decode stopped, as data (the decoder never throws).
 *
 * Two kinds of outcome, kept apart on purpose:
 *
 * - A **reason** (`PacketView.status`, the return value of `decodeFrame`): 0 = OK, anything
 *   else means the header of layer `stopLayer` is malformed or cut short, and nothing at or
 *   above that layer was decoded. Fields of the layers below (`layers` bits) stay valid.
 *
 * - A **note** (bits in `PacketView.notes`): something worth knowing that does NOT make the
 *   packet undecodable. Status stays OK (unless a real reason occurs later).
 *   Decisions recorded here:
 *   - Unknown ethertype → status OK, no L3 bit, `l3Off` at the L2 payload,
 *     NOTE_UNKNOWN_ETHERTYPE. The engine forwards such frames byte-for-byte; refusing them
 *     would break protocols we simply do not parse (LLDP, MPLS, PPPoE…).
 *   - An 802.3 frame (type field ≤ 1500 is a length, LLC follows) → same, with
 *     NOTE_8023_LENGTH instead.
 *   - A malformed TCP option (length 0/1, running past the header, wrong size for its kind)
 *     → options parsing stops there, NOTE_BAD_TCP_OPTIONS, the rest of the TCP header and the
 *     payload are still decoded (the kernel also just ignores bad options).
 *   - The captured frame is shorter than the IP length says, but the caller said the frame
 *     was longer on the wire (`wireLen` > `len`, a snaplen-truncated capture) and every header
 *     is intact → NOTE_TRUNCATED_PAYLOAD, `payloadLen` counts the bytes present and
 *     `payloadFullLen` the bytes the headers claim. Without that (live traffic: `wireLen` ==
 *     `len`) the same frame is IP_LENGTH_BEYOND_FRAME.
 *   - Bytes after the IP datagram (Ethernet minimum-size padding, trailers) → NOTE_ETH_PADDING;
 *     they are never counted as payload.
 */

export const OK = 0;
/** Frame shorter than the virtio-net header length given (or a negative length given). */
export const TRUNCATED_VNET = 1;
/** Fewer than 14 bytes of Ethernet header. */
export const TRUNCATED_ETH = 2;
/** A VLAN tag (4 bytes) is cut short. */
export const TRUNCATED_VLAN = 3;
/** More than MAX_VLAN_TAGS stacked tags. */
export const TOO_MANY_VLANS = 4;
/** ARP fixed part or its addresses (per hlen/plen) cut short. */
export const TRUNCATED_ARP = 5;
/** Ethertype said IPv4/IPv6 but the version nibble disagrees. */
export const BAD_IP_VERSION = 6;
/** IPv4 header (20 bytes + options per IHL) or IPv6 fixed header (40 bytes) cut short. */
export const TRUNCATED_IP = 7;
/** IPv4 IHL < 5. */
export const BAD_IHL = 8;
/** IP total length / IPv6 payload length runs past the end of the frame. */
export const IP_LENGTH_BEYOND_FRAME = 9;
/** IPv4 total length smaller than the header length. */
export const IP_LENGTH_TOO_SHORT = 10;
/** An IPv6 extension header runs past the end of the datagram. */
export const TRUNCATED_IPV6_EXT = 11;
/** An IPv6 extension header is misplaced (hop-by-hop not first) or the chain is too long. */
export const BAD_IPV6_EXT = 12;
/** TCP fixed header (20 bytes) or its options (per data offset) cut short. */
export const TRUNCATED_TCP = 13;
/** TCP data offset < 5, or larger than the segment the IP header delimits. */
export const BAD_TCP_DATA_OFFSET = 14;
/** UDP header (8 bytes) cut short. */
export const TRUNCATED_UDP = 15;
/** UDP length < 8 or larger than the IP payload. */
export const BAD_UDP_LENGTH = 16;
/** ICMPv4/ICMPv6 header (8 bytes: type, code, checksum, 4 bytes rest-of-header) cut short. */
export const TRUNCATED_ICMP = 17;

/** Reason codes by name. */
export const Reason = {
  OK,
  TRUNCATED_VNET,
  TRUNCATED_ETH,
  TRUNCATED_VLAN,
  TOO_MANY_VLANS,
  TRUNCATED_ARP,
  BAD_IP_VERSION,
  TRUNCATED_IP,
  BAD_IHL,
  IP_LENGTH_BEYOND_FRAME,
  IP_LENGTH_TOO_SHORT,
  TRUNCATED_IPV6_EXT,
  BAD_IPV6_EXT,
  TRUNCATED_TCP,
  BAD_TCP_DATA_OFFSET,
  TRUNCATED_UDP,
  BAD_UDP_LENGTH,
  TRUNCATED_ICMP,
} as const;

export type ReasonName = keyof typeof Reason;

const REASON_NAMES: string[] = [];
for (const [name, code] of Object.entries(Reason)) REASON_NAMES[code] = name;

/** Name of a reason code (`'OK'`, `'TRUNCATED_TCP'`…); `'UNKNOWN_REASON_<n>'` otherwise. */
export function reasonName(code: number): string {
  return REASON_NAMES[code] ?? `UNKNOWN_REASON_${code}`;
}

/** Ethertype not ARP/IPv4/IPv6: L2 payload left opaque at `l3Off`. */
export const NOTE_UNKNOWN_ETHERTYPE = 1 << 0;
/** 802.3 frame: the type field (≤ 1500) is a length; LLC payload left opaque at `l3Off`. */
export const NOTE_8023_LENGTH = 1 << 1;
/** A TCP option was malformed; options after it were not parsed. */
export const NOTE_BAD_TCP_OPTIONS = 1 << 2;
/** Snaplen-truncated capture: headers intact, payload shorter than the headers claim. */
export const NOTE_TRUNCATED_PAYLOAD = 1 << 3;
/** Bytes follow the IP datagram inside the frame (Ethernet padding / trailer). */
export const NOTE_ETH_PADDING = 1 << 4;
/** The UDP length is shorter than the IP payload (surplus bytes are not payload). */
export const NOTE_UDP_SURPLUS = 1 << 5;

/** Note bits by name. */
export const Note = {
  UNKNOWN_ETHERTYPE: NOTE_UNKNOWN_ETHERTYPE,
  ETH_8023_LENGTH: NOTE_8023_LENGTH,
  BAD_TCP_OPTIONS: NOTE_BAD_TCP_OPTIONS,
  TRUNCATED_PAYLOAD: NOTE_TRUNCATED_PAYLOAD,
  ETH_PADDING: NOTE_ETH_PADDING,
  UDP_SURPLUS: NOTE_UDP_SURPLUS,
} as const;

export type NoteName = keyof typeof Note;

const NOTE_ENTRIES = Object.entries(Note) as ReadonlyArray<[NoteName, number]>;

/** Names of the note bits set in `mask` (cold path: allocates). */
export function noteNames(mask: number): NoteName[] {
  const out: NoteName[] = [];
  for (const [name, bit] of NOTE_ENTRIES) if ((mask & bit) !== 0) out.push(name);
  return out;
}
