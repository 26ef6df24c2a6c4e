/**
 * PacketView: one reusable object that `decodeFrame` fills in place (gopacket's
 * DecodingLayerParser model). Every field is a plain number or boolean; offsets are absolute
 * into `buf` (the array passed to `decodeFrame`), so a consumer reads bytes with
 * `v.buf[v.ipSrcOff]` and never gets a per-packet subarray.
 *
 * Conventions:
 * - `decodeFrame` resets every field first, so nothing survives from the previous packet.
 * - An offset is -1 and a value is 0 when its layer/option was not decoded; test `layers`
 *   (and `tcpOpts` for TCP options) before trusting a field.
 * - Lengths never reach past the bytes actually present: `[x, x + len)` is always inside
 *   `[frameOff, frameOff + frameLen)`.
 */
import { LAYER_FRAG, LAYER_PAYLOAD } from './layer.js';
import { NOTE_TRUNCATED_PAYLOAD } from './reasons.js';

/** `PacketView.tcpOpts` bits: which TCP options were seen. */
export const TCP_OPT_MSS = 1 << 0;
export const TCP_OPT_WSCALE = 1 << 1;
export const TCP_OPT_SACK_PERM = 1 << 2;
export const TCP_OPT_SACK = 1 << 3;
export const TCP_OPT_TIMESTAMP = 1 << 4;
/** An EOL option ended the list before the header did. */
export const TCP_OPT_EOL = 1 << 5;

const EMPTY = new Uint8Array(0);

export class PacketView {
  // ---- frame ----
  /** The buffer last decoded (offsets below index into it). */
  buf: Uint8Array = EMPTY;
  /** Start of the frame (of the vnet header when there is one). */
  frameOff = 0;
  /** Captured bytes of the frame, vnet header included. */
  frameLen = 0;
  /** Bytes the frame had on the wire (≥ frameLen; > only for snaplen-truncated captures). */
  wireLen = 0;

  // ---- outcome ----
  /** 0 = OK, else a reason code (see reasons.ts); same as `decodeFrame`'s return value. */
  status = 0;
  /** LAYER_* bits of the layers fully decoded. */
  layers = 0;
  /** The LAYER_* bit of the layer whose header was bad (0 when status is OK). */
  stopLayer = 0;
  /** NOTE_* bits: non-fatal findings (unknown ethertype, bad TCP options, padding…). */
  notes = 0;

  // ---- virtio-net header ----
  /** Offset of the vnet header, -1 without one. */
  vnetOff = -1;
  vnetLen = 0;

  // ---- Ethernet / VLAN ----
  /** Offset of the Ethernet header: destination MAC here, source MAC at +6. */
  ethOff = -1;
  /** Number of VLAN tags seen (only the first two are recorded below). */
  vlanCount = 0;
  /** Offset of the first tag's TPID, -1 without tags. */
  vlanOff = -1;
  /** Outermost tag: TPID (0x8100 / 0x88a8 / 0x9100), TCI, VLAN id (low 12 bits of TCI). */
  vlanTpid0 = 0;
  vlanTci0 = 0;
  vlanId0 = 0;
  /** Second tag (inner tag of QinQ), when present. */
  vlanTpid1 = 0;
  vlanTci1 = 0;
  vlanId1 = 0;
  /** The ethertype after all VLAN tags (or the 802.3 length, see NOTE_8023_LENGTH). */
  etherType = 0;
  /** Start of the L2 payload (IP/ARP header, or the opaque payload of an unknown ethertype). */
  l3Off = -1;

  // ---- ARP (offsets of the variable-length addresses, sizes per hlen/plen) ----
  arpHwType = 0;
  arpProtoType = 0;
  arpHwLen = 0;
  arpProtoLen = 0;
  arpOp = 0;
  arpSenderHwOff = -1;
  arpSenderProtoOff = -1;
  arpTargetHwOff = -1;
  arpTargetProtoOff = -1;

  // ---- IP (both versions) ----
  /** 4 or 6. */
  ipVersion = 0;
  /** Bytes from `l3Off` to `l4Off`: IHL×4, or 40 + all IPv6 extension headers. */
  ipHdrLen = 0;
  /** Datagram length the header claims: IPv4 total length, or 40 + IPv6 payload length. */
  ipTotalLen = 0;
  /** End (exclusive) of the datagram's bytes present in `buf`: min(l3Off + ipTotalLen, frame end). */
  ipEnd = -1;
  ipSrcOff = -1;
  ipDstOff = -1;
  /** 4 or 16. */
  ipAddrLen = 0;
  /** Upper-layer protocol: IPv4 protocol, or the last next-header of the IPv6 chain. */
  ipProto = 0;
  /** TTL / hop limit. */
  ipTtl = 0;
  /** IPv4 TOS / IPv6 traffic class (DSCP << 2 | ECN). */
  ipTos = 0;

  // ---- IPv4 only ----
  /** IHL in 32-bit words. */
  ipIhl = 0;
  /** Identification (16 bits). */
  ipId = 0;
  /** The 3 flag bits (reserved, DF, MF) as 0..7. */
  ipFlags = 0;
  ipDf = false;
  /** Header checksum as carried. */
  ipChecksum = 0;
  /** Options (IHL > 5): offset and length, -1/0 without. */
  ipOptOff = -1;
  ipOptLen = 0;

  // ---- IPv6 only ----
  ip6FlowLabel = 0;
  ip6PayloadLen = 0;
  /** Next header of the fixed header (first of the chain). */
  ip6NextHeader = 0;
  /** Number and total bytes of extension headers walked. */
  ip6ExtCount = 0;
  ip6ExtLen = 0;
  /** Offsets of extension headers seen (the last one of each kind), -1 when absent. */
  ip6HopOff = -1;
  ip6RoutingOff = -1;
  ip6DestOff = -1;
  ip6FragHdrOff = -1;
  ip6AhOff = -1;

  // ---- fragmentation (IPv4 header or IPv6 fragment header) ----
  /** Fragment offset in BYTES (the wire field × 8). */
  fragOffset = 0;
  moreFragments = false;
  /** Fragment identification: IPv4 id (16 bits) or IPv6 fragment header id (32 bits). */
  fragId = 0;

  // ---- L4 ----
  /** Start of the upper-layer header (or of the opaque IP payload). */
  l4Off = -1;
  /** TCP/UDP ports (0 otherwise). */
  srcPort = 0;
  dstPort = 0;

  // ---- TCP ----
  /** Sequence / acknowledgement numbers, unsigned 32-bit. */
  tcpSeq = 0;
  tcpAck = 0;
  /** Header length in bytes (data offset × 4). */
  tcpHdrLen = 0;
  /** 12 bits: 3 reserved, AE/NS, CWR, ECE, URG, ACK, PSH, RST, SYN, FIN. */
  tcpFlags = 0;
  tcpWindow = 0;
  tcpChecksum = 0;
  tcpUrgent = 0;
  tcpOptOff = -1;
  tcpOptLen = 0;
  /** TCP_OPT_* bits of options seen (valid values below only when their bit is set). */
  tcpOpts = 0;
  tcpMss = 0;
  tcpWscale = 0;
  /** SACK blocks: count, and the offset of the first block (pairs of u32 left/right edges). */
  tcpSackCount = 0;
  tcpSackOff = -1;
  tcpTsVal = 0;
  tcpTsEcr = 0;

  // ---- UDP ----
  udpLength = 0;
  udpChecksum = 0;

  // ---- ICMPv4 / ICMPv6 ----
  icmpType = 0;
  icmpCode = 0;
  icmpChecksum = 0;
  /** Echo request/reply only. */
  icmpEcho = false;
  icmpEchoId = 0;
  icmpEchoSeq = 0;

  // ---- payload ----
  /**
   * L4 payload: after the TCP/UDP/ICMP header; for protocols not parsed (ESP, GRE, unknown)
   * and for non-first fragments, the whole IP payload from `l4Off`. Never includes Ethernet
   * padding: its end comes from the IP/UDP length, not from the frame length.
   */
  payloadOff = -1;
  /** Payload bytes present in `buf`. */
  payloadLen = 0;
  /** Payload bytes the headers claim (> payloadLen only with NOTE_TRUNCATED_PAYLOAD). */
  payloadFullLen = 0;

  /** True when the datagram is any IP fragment (first included). */
  get isFragment(): boolean {
    return (this.layers & LAYER_FRAG) !== 0;
  }

  /** True for fragments after the first (their L4 header is elsewhere: L4 not decoded). */
  get isNonFirstFragment(): boolean {
    return (this.layers & LAYER_FRAG) !== 0 && this.fragOffset !== 0;
  }

  /** True when a snaplen-truncated capture cut the payload (headers intact). */
  get truncatedPayload(): boolean {
    return (this.notes & NOTE_TRUNCATED_PAYLOAD) !== 0;
  }

  /** True when `payloadOff`/`payloadLen` are valid. */
  get hasPayload(): boolean {
    return (this.layers & LAYER_PAYLOAD) !== 0;
  }

  /** Reset every field to its "not decoded" value (decodeFrame does this first). */
  reset(): void {
    this.buf = EMPTY;
    this.frameOff = 0;
    this.frameLen = 0;
    this.wireLen = 0;
    this.status = 0;
    this.layers = 0;
    this.stopLayer = 0;
    this.notes = 0;
    this.vnetOff = -1;
    this.vnetLen = 0;
    this.ethOff = -1;
    this.vlanCount = 0;
    this.vlanOff = -1;
    this.vlanTpid0 = 0;
    this.vlanTci0 = 0;
    this.vlanId0 = 0;
    this.vlanTpid1 = 0;
    this.vlanTci1 = 0;
    this.vlanId1 = 0;
    this.etherType = 0;
    this.l3Off = -1;
    this.arpHwType = 0;
    this.arpProtoType = 0;
    this.arpHwLen = 0;
    this.arpProtoLen = 0;
    this.arpOp = 0;
    this.arpSenderHwOff = -1;
    this.arpSenderProtoOff = -1;
    this.arpTargetHwOff = -1;
    this.arpTargetProtoOff = -1;
    this.ipVersion = 0;
    this.ipHdrLen = 0;
    this.ipTotalLen = 0;
    this.ipEnd = -1;
    this.ipSrcOff = -1;
    this.ipDstOff = -1;
    this.ipAddrLen = 0;
    this.ipProto = 0;
    this.ipTtl = 0;
    this.ipTos = 0;
    this.ipIhl = 0;
    this.ipId = 0;
    this.ipFlags = 0;
    this.ipDf = false;
    this.ipChecksum = 0;
    this.ipOptOff = -1;
    this.ipOptLen = 0;
    this.ip6FlowLabel = 0;
    this.ip6PayloadLen = 0;
    this.ip6NextHeader = 0;
    this.ip6ExtCount = 0;
    this.ip6ExtLen = 0;
    this.ip6HopOff = -1;
    this.ip6RoutingOff = -1;
    this.ip6DestOff = -1;
    this.ip6FragHdrOff = -1;
    this.ip6AhOff = -1;
    this.fragOffset = 0;
    this.moreFragments = false;
    this.fragId = 0;
    this.l4Off = -1;
    this.srcPort = 0;
    this.dstPort = 0;
    this.tcpSeq = 0;
    this.tcpAck = 0;
    this.tcpHdrLen = 0;
    this.tcpFlags = 0;
    this.tcpWindow = 0;
    this.tcpChecksum = 0;
    this.tcpUrgent = 0;
    this.tcpOptOff = -1;
    this.tcpOptLen = 0;
    this.tcpOpts = 0;
    this.tcpMss = 0;
    this.tcpWscale = 0;
    this.tcpSackCount = 0;
    this.tcpSackOff = -1;
    this.tcpTsVal = 0;
    this.tcpTsEcr = 0;
    this.udpLength = 0;
    this.udpChecksum = 0;
    this.icmpType = 0;
    this.icmpCode = 0;
    this.icmpChecksum = 0;
    this.icmpEcho = false;
    this.icmpEchoId = 0;
    this.icmpEchoSeq = 0;
    this.payloadOff = -1;
    this.payloadLen = 0;
    this.payloadFullLen = 0;
  }
}
