/**
 * Layer bits for `PacketView.layers` (what was decoded) and `PacketView.stopLayer` (where a
 * decode failed). One bit each so a consumer tests `(v.layers & LAYER_TCP) !== 0` without
 * allocating.
 */

/** Leading virtio-net header (skipped, offset kept). */
export const LAYER_VNET = 1 << 0;
/** Ethernet II header (or an 802.3 header whose type field is a length). */
export const LAYER_ETH = 1 << 1;
/** At least one 802.1Q / 802.1ad tag. */
export const LAYER_VLAN = 1 << 2;
export const LAYER_ARP = 1 << 3;
export const LAYER_IPV4 = 1 << 4;
export const LAYER_IPV6 = 1 << 5;
/** At least one IPv6 extension header (hop-by-hop, routing, fragment, dest options, AH…). */
export const LAYER_IPV6_EXT = 1 << 6;
/** The datagram is an IP fragment (first or not: see `fragOffset`, `moreFragments`). */
export const LAYER_FRAG = 1 << 7;
export const LAYER_TCP = 1 << 8;
export const LAYER_UDP = 1 << 9;
export const LAYER_ICMP4 = 1 << 10;
export const LAYER_ICMP6 = 1 << 11;
/** `payloadOff`/`payloadLen` are valid (L4 payload, or the opaque IP payload; see PacketView). */
export const LAYER_PAYLOAD = 1 << 12;

/** All layer bits by name (for iteration and for cold-path formatting). */
export const Layer = {
  VNET: LAYER_VNET,
  ETH: LAYER_ETH,
  VLAN: LAYER_VLAN,
  ARP: LAYER_ARP,
  IPV4: LAYER_IPV4,
  IPV6: LAYER_IPV6,
  IPV6_EXT: LAYER_IPV6_EXT,
  FRAG: LAYER_FRAG,
  TCP: LAYER_TCP,
  UDP: LAYER_UDP,
  ICMP4: LAYER_ICMP4,
  ICMP6: LAYER_ICMP6,
  PAYLOAD: LAYER_PAYLOAD,
} as const;

export type LayerName = keyof typeof Layer;

const LAYER_ENTRIES = Object.entries(Layer) as ReadonlyArray<[LayerName, number]>;

/** Names of the bits set in `mask`, lowest bit first (cold path: allocates). */
export function layerNames(mask: number): LayerName[] {
  const out: LayerName[] = [];
  for (const [name, bit] of LAYER_ENTRIES) if ((mask & bit) !== 0) out.push(name);
  return out;
}
