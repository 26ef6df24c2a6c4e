/** Protocol numbers the decoder dispatches on (IEEE ethertypes, IANA IP protocol numbers). */

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
/** 802.1Q customer tag. */
export const ETHERTYPE_VLAN = 0x8100;
/** 802.1ad service tag (QinQ outer). */
export const ETHERTYPE_QINQ = 0x88a8;
/** Pre-standard QinQ outer tag still seen in the wild. */
export const ETHERTYPE_QINQ_OLD = 0x9100;
/** Type/length values up to this are 802.3 lengths, not ethertypes. */
export const ETH_MAX_8023_LENGTH = 1500;

export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ROUTING = 43;
export const IPPROTO_FRAGMENT = 44;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_NONE = 59;
export const IPPROTO_DSTOPTS = 60;
/** Further IPv6 extension headers with the generic (next, len in 8-octet units − 1) layout: RFC 7045. */
export const IPPROTO_MOBILITY = 135;
export const IPPROTO_HIP = 139;
export const IPPROTO_SHIM6 = 140;
export const IPPROTO_DCCP = 33;
export const IPPROTO_SCTP = 132;
export const IPPROTO_UDPLITE = 136;

/**
 * Where QEMU's colo-compare reads a connection's "ports" (reference §6.4): the first 4 bytes
 * of the transport header for TCP, UDP, DCCP, ESP, SCTP and UDP-Lite, bytes 4..7 for AH; -1 for
 * every other protocol (its connection key then has ports 0). Used by the QEMU-rules model and
 * by the lockstep planner, which must key connections exactly as QEMU does.
 */
export function qemuPortsOffset(proto: number): number {
  switch (proto) {
    case IPPROTO_TCP:
    case IPPROTO_UDP:
    case IPPROTO_DCCP:
    case IPPROTO_ESP:
    case IPPROTO_SCTP:
    case IPPROTO_UDPLITE:
      return 0;
    case IPPROTO_AH:
      return 4;
    default:
      return -1;
  }
}

/** TCP option kinds. */
export const TCPOPT_EOL = 0;
export const TCPOPT_NOP = 1;
export const TCPOPT_MSS = 2;
export const TCPOPT_WSCALE = 3;
export const TCPOPT_SACK_PERM = 4;
export const TCPOPT_SACK = 5;
export const TCPOPT_TIMESTAMP = 8;
