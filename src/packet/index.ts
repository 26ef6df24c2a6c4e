/**
 * Packet decoding and checksums: `decodeFrame` fills a reusable `PacketView`; see view.ts for
 * the fields, reasons.ts for outcomes, checksum.ts for verification and incremental updates.
 */
export { decodeFrame } from './decode.js';
export {
  PacketView,
  TCP_OPT_EOL,
  TCP_OPT_MSS,
  TCP_OPT_SACK,
  TCP_OPT_SACK_PERM,
  TCP_OPT_TIMESTAMP,
  TCP_OPT_WSCALE,
} from './view.js';
export * from './layer.js';
export {
  Reason,
  reasonName,
  Note,
  noteNames,
  NOTE_8023_LENGTH,
  NOTE_BAD_TCP_OPTIONS,
  NOTE_ETH_PADDING,
  NOTE_TRUNCATED_PAYLOAD,
  NOTE_UDP_SURPLUS,
  NOTE_UNKNOWN_ETHERTYPE,
} from './reasons.js';
export type { ReasonName, NoteName } from './reasons.js';
export * from './proto.js';
export { MAX_VLAN_TAGS } from './decoders/ethernet.js';
export { MAX_IPV6_EXT_HEADERS } from './decoders/ipv6.js';
export * from './checksum.js';
export * from './addr.js';
export { u16, u32, put16, put32 } from './bytes.js';
