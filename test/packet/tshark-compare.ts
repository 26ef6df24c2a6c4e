/**
 * Test helper: decode every frame of a capture and compare the fields with what tshark prints
 * for the same file. tshark is the independent oracle; IP/TCP reassembly is turned off so it
 * describes each frame on its own, and checksum validation is turned on.
 */
import {
  CHECKSUM_BAD,
  CHECKSUM_GOOD,
  decodeFrame,
  formatIPv4,
  formatIPv6,
  formatMac,
  LAYER_ARP,
  LAYER_ICMP4,
  LAYER_ICMP6,
  LAYER_IPV4,
  LAYER_IPV6,
  LAYER_TCP,
  LAYER_UDP,
  LAYER_VLAN,
  NOTE_8023_LENGTH,
  NOTE_BAD_TCP_OPTIONS,
  PacketView,
  reasonName,
  TCP_OPT_EOL,
  TCP_OPT_MSS,
  TCP_OPT_SACK,
  TCP_OPT_SACK_PERM,
  TCP_OPT_TIMESTAMP,
  TCP_OPT_WSCALE,
  verifyIpv4Header,
  verifyL4Checksum,
} from '../../src/packet/index.js';
import { tshark } from '../helpers/tools.js';
import type { Frame } from './frames.js';

export const TSHARK_OPTS = [
  '-o', 'ip.defragment:FALSE',
  '-o', 'ipv6.defragment:FALSE',
  '-o', 'tcp.desegment_tcp_streams:FALSE',
  '-o', 'tcp.analyze_sequence_numbers:FALSE',
  '-o', 'ip.check_checksum:TRUE',
  '-o', 'tcp.check_checksum:TRUE',
  '-o', 'udp.check_checksum:TRUE',
];

const FIELDS = [
  'frame.number', 'frame.protocols',
  'eth.dst', 'eth.src', 'eth.type', 'ieee8021ad.id', 'vlan.id', 'vlan.etype',
  'arp.opcode', 'arp.src.hw_mac', 'arp.src.proto_ipv4', 'arp.dst.proto_ipv4',
  'ip.src', 'ip.dst', 'ip.proto', 'ip.len', 'ip.id', 'ip.ttl', 'ip.hdr_len', 'ip.dsfield',
  'ip.flags.df', 'ip.flags.mf', 'ip.frag_offset', 'ip.checksum.status',
  'ipv6.src', 'ipv6.dst', 'ipv6.nxt', 'ipv6.plen', 'ipv6.hlim', 'ipv6.tclass', 'ipv6.flow',
  'ipv6.fraghdr.nxt', 'ipv6.fraghdr.offset', 'ipv6.fraghdr.more', 'ipv6.fraghdr.ident',
  'tcp.srcport', 'tcp.dstport', 'tcp.seq_raw', 'tcp.ack_raw', 'tcp.flags', 'tcp.len', 'tcp.hdr_len',
  'tcp.window_size_value', 'tcp.urgent_pointer', 'tcp.option_kind', 'tcp.options.mss_val',
  'tcp.options.wscale.shift', 'tcp.options.sack.count', 'tcp.options.timestamp.tsval',
  'tcp.options.timestamp.tsecr', 'tcp.checksum.status',
  'udp.srcport', 'udp.dstport', 'udp.length', 'udp.checksum.status',
  'icmp.type', 'icmp.code', 'icmp.ident', 'icmp.seq', 'icmp.checksum.status',
  'icmpv6.type', 'icmpv6.code', 'icmpv6.echo.identifier', 'icmpv6.echo.sequence_number', 'icmpv6.checksum.status',
  'data.len',
] as const;

type Field = (typeof FIELDS)[number];
export type Row = Record<Field, string>;

/** tshark's view of every frame of `path`, keyed by frame number. */
export function tsharkRows(path: string): Map<number, Row> {
  const out = tshark(['-r', path, ...TSHARK_OPTS, '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', ...FIELDS.flatMap((f) => ['-e', f])]);
  const rows = new Map<number, Row>();
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const cells = line.split('\t');
    const row = {} as Row;
    FIELDS.forEach((f, i) => (row[f] = cells[i] ?? ''));
    rows.set(Number(row['frame.number']), row);
  }
  return rows;
}

/** Per-protocol counts of frames compared (so a test can insist something was compared). */
export interface Coverage {
  frames: number;
  vlan: number;
  arp: number;
  ipv4: number;
  ipv6: number;
  fragments: number;
  tcp: number;
  tcpOptions: number;
  udp: number;
  icmp4: number;
  icmp6: number;
  checksumGood: number;
  checksumBad: number;
  ipChecksumBad: number;
}

export function emptyCoverage(): Coverage {
  return { frames: 0, vlan: 0, arp: 0, ipv4: 0, ipv6: 0, fragments: 0, tcp: 0, tcpOptions: 0, udp: 0, icmp4: 0, icmp6: 0, checksumGood: 0, checksumBad: 0, ipChecksumBad: 0 };
}

const L2_TOKENS = new Set(['eth', 'ethertype', 'vlan', 'ieee8021ad']);
const V6_EXT_TOKENS = new Set(['ipv6.hopopts', 'ipv6.routing', 'ipv6.fraghdr', 'ipv6.dstopts', 'ah']);
const L4_TOKENS: Record<string, number> = { tcp: LAYER_TCP, udp: LAYER_UDP, icmp: LAYER_ICMP4, icmpv6: LAYER_ICMP6 };
const L3_TOKENS: Record<string, number> = { ip: LAYER_IPV4, ipv6: LAYER_IPV6, arp: LAYER_ARP };
const KIND_BITS: Record<string, number> = { '0': TCP_OPT_EOL, '2': TCP_OPT_MSS, '3': TCP_OPT_WSCALE, '4': TCP_OPT_SACK_PERM, '5': TCP_OPT_SACK, '8': TCP_OPT_TIMESTAMP };

/** First of tshark's comma-separated occurrences (the outermost header's value). */
function first(s: string): string {
  const i = s.indexOf(',');
  return i < 0 ? s : s.slice(0, i);
}

function num(s: string): number {
  return Number(first(s));
}

/**
 * Decode `frames` and compare with `rows`. Returns human-readable mismatches (empty = agree).
 * Fields are compared only where tshark's protocol stack says our decoder must have them: the
 * outermost L3 after Ethernet/VLAN and the L4 right above it (ICMP-embedded or tunnelled
 * headers further in are tshark's business only).
 */
export function compareFrames(frames: readonly Frame[], rows: Map<number, Row>, cov: Coverage): string[] {
  const v = new PacketView();
  const bad: string[] = [];
  for (const fr of frames) {
    if (!fr.ethernet) continue;
    const r = rows.get(fr.no);
    if (!r) {
      bad.push(`#${fr.no}: tshark printed no row`);
      continue;
    }
    const st = decodeFrame(v, fr.bytes, 0, fr.bytes.length, 0, fr.origLen);
    const b = v.buf;
    cov.frames++;
    const miss = (field: string, want: unknown, got: unknown) => {
      if (want !== got) bad.push(`#${fr.no} ${field}: tshark=${String(want)} ours=${String(got)}`);
    };
    miss('status', 'OK', reasonName(st));
    const tok = r['frame.protocols'].split(':');
    let i = 0;
    while (i < tok.length && L2_TOKENS.has(tok[i]!)) i++;
    const l3Tok = tok[i] ?? '';
    i++;
    while (i < tok.length && V6_EXT_TOKENS.has(tok[i]!)) i++;
    const l4Tok = tok[i] ?? '';
    const wantL3 = L3_TOKENS[l3Tok] ?? 0;
    const wantL4 = wantL3 === LAYER_IPV4 || wantL3 === LAYER_IPV6 ? (L4_TOKENS[l4Tok] ?? 0) : 0;
    miss('L3 layer', wantL3, v.layers & (LAYER_IPV4 | LAYER_IPV6 | LAYER_ARP));
    miss('L4 layer', wantL4, v.layers & (LAYER_TCP | LAYER_UDP | LAYER_ICMP4 | LAYER_ICMP6));

    // ---- L2 ----
    miss('eth.dst', first(r['eth.dst']), formatMac(b, v.ethOff));
    miss('eth.src', first(r['eth.src']), formatMac(b, v.ethOff + 6));
    if (r['vlan.id'] !== '' || r['ieee8021ad.id'] !== '') {
      cov.vlan++;
      miss('VLAN layer', LAYER_VLAN, v.layers & LAYER_VLAN);
      // tshark names 0x88a8 tags ieee8021ad and 0x8100/0x9100 tags vlan; ours put 0x88a8 outermost.
      const list = (s: string) => (s === '' ? [] : s.split(',').map(Number));
      const ids = [...list(r['ieee8021ad.id']), ...list(r['vlan.id'])];
      miss('vlan count', ids.length, v.vlanCount);
      miss('vlan.id[0]', ids[0], v.vlanId0);
      if (ids.length > 1) miss('vlan.id[1]', ids[1], v.vlanId1);
      miss('eth.type (outer TPID)', num(r['eth.type']), v.vlanTpid0);
      const et = r['vlan.etype'].split(',');
      if (l3Tok === 'llc') miss('802.3 note', NOTE_8023_LENGTH, v.notes & NOTE_8023_LENGTH);
      else miss('vlan.etype (inner)', Number(et[et.length - 1]), v.etherType);
    } else if (l3Tok === 'llc') {
      miss('802.3 note', NOTE_8023_LENGTH, v.notes & NOTE_8023_LENGTH);
    } else {
      miss('eth.type', num(r['eth.type']), v.etherType);
    }

    // ---- L3 ----
    if (wantL3 === LAYER_ARP && (v.layers & LAYER_ARP) !== 0) {
      cov.arp++;
      miss('arp.opcode', num(r['arp.opcode']), v.arpOp);
      miss('arp.src.hw_mac', first(r['arp.src.hw_mac']), formatMac(b, v.arpSenderHwOff));
      miss('arp.src.proto_ipv4', first(r['arp.src.proto_ipv4']), formatIPv4(b, v.arpSenderProtoOff));
      miss('arp.dst.proto_ipv4', first(r['arp.dst.proto_ipv4']), formatIPv4(b, v.arpTargetProtoOff));
    }
    if (wantL3 === LAYER_IPV4 && (v.layers & LAYER_IPV4) !== 0) {
      cov.ipv4++;
      miss('ip.src', first(r['ip.src']), formatIPv4(b, v.ipSrcOff));
      miss('ip.dst', first(r['ip.dst']), formatIPv4(b, v.ipDstOff));
      miss('ip.proto', num(r['ip.proto']), v.ipProto);
      miss('ip.len', num(r['ip.len']), v.ipTotalLen);
      miss('ip.id', num(r['ip.id']), v.ipId);
      miss('ip.ttl', num(r['ip.ttl']), v.ipTtl);
      miss('ip.hdr_len', num(r['ip.hdr_len']), v.ipHdrLen);
      miss('ip.dsfield', num(r['ip.dsfield']), v.ipTos);
      miss('ip.flags.df', num(r['ip.flags.df']) === 1, v.ipDf);
      miss('ip.flags.mf', num(r['ip.flags.mf']) === 1, v.moreFragments);
      miss('ip.frag_offset×8', num(r['ip.frag_offset']) * 8, v.fragOffset);
      miss('ip.checksum.status', num(r['ip.checksum.status']), verifyIpv4Header(v) ? CHECKSUM_GOOD : CHECKSUM_BAD);
      if (!verifyIpv4Header(v)) cov.ipChecksumBad++;
      if (v.isFragment) cov.fragments++;
    }
    if (wantL3 === LAYER_IPV6 && (v.layers & LAYER_IPV6) !== 0) {
      cov.ipv6++;
      miss('ipv6.src', first(r['ipv6.src']), formatIPv6(b, v.ipSrcOff));
      miss('ipv6.dst', first(r['ipv6.dst']), formatIPv6(b, v.ipDstOff));
      miss('ipv6.nxt', num(r['ipv6.nxt']), v.ip6NextHeader);
      miss('ipv6.plen', num(r['ipv6.plen']), v.ip6PayloadLen);
      miss('ipv6.hlim', num(r['ipv6.hlim']), v.ipTtl);
      miss('ipv6.tclass', num(r['ipv6.tclass']), v.ipTos);
      miss('ipv6.flow', num(r['ipv6.flow']), v.ip6FlowLabel);
      if (r['ipv6.fraghdr.ident'] !== '') {
        if (v.isFragment) cov.fragments++;
        miss('ipv6.fraghdr.nxt', num(r['ipv6.fraghdr.nxt']), v.ipProto);
        miss('ipv6.fraghdr.offset×8', num(r['ipv6.fraghdr.offset']) * 8, v.fragOffset);
        miss('ipv6.fraghdr.more', num(r['ipv6.fraghdr.more']) === 1, v.moreFragments);
        miss('ipv6.fraghdr.ident', num(r['ipv6.fraghdr.ident']), v.fragId);
      }
    }
    if ((wantL3 === LAYER_IPV4 || wantL3 === LAYER_IPV6) && wantL4 === 0 && l4Tok === 'data' && v.isNonFirstFragment) {
      miss('data.len (fragment)', num(r['data.len']), v.payloadLen);
    }

    // ---- L4 ----
    if (wantL4 === LAYER_TCP && (v.layers & LAYER_TCP) !== 0) {
      cov.tcp++;
      miss('tcp.srcport', num(r['tcp.srcport']), v.srcPort);
      miss('tcp.dstport', num(r['tcp.dstport']), v.dstPort);
      miss('tcp.seq_raw', num(r['tcp.seq_raw']), v.tcpSeq);
      miss('tcp.ack_raw', num(r['tcp.ack_raw']), v.tcpAck);
      miss('tcp.flags', num(r['tcp.flags']), v.tcpFlags);
      miss('tcp.len', num(r['tcp.len']), v.payloadFullLen);
      miss('tcp.hdr_len', num(r['tcp.hdr_len']), v.tcpHdrLen);
      miss('tcp.window_size_value', num(r['tcp.window_size_value']), v.tcpWindow);
      miss('tcp.urgent_pointer', num(r['tcp.urgent_pointer']), v.tcpUrgent);
      miss('tcp.checksum.status', num(r['tcp.checksum.status']), verifyL4Checksum(v));
      if (r['tcp.option_kind'] !== '' && (v.notes & NOTE_BAD_TCP_OPTIONS) === 0) {
        cov.tcpOptions++;
        let bits = 0;
        for (const k of r['tcp.option_kind'].split(',')) bits |= KIND_BITS[k] ?? 0;
        miss('tcp.option_kind set', bits, v.tcpOpts);
        if (r['tcp.options.mss_val'] !== '') miss('tcp.options.mss_val', num(r['tcp.options.mss_val']), v.tcpMss);
        if (r['tcp.options.wscale.shift'] !== '') miss('tcp.options.wscale.shift', num(r['tcp.options.wscale.shift']), v.tcpWscale);
        if (r['tcp.options.sack.count'] !== '') miss('tcp.options.sack.count', num(r['tcp.options.sack.count']), v.tcpSackCount);
        if (r['tcp.options.timestamp.tsval'] !== '') {
          miss('tcp.options.timestamp.tsval', num(r['tcp.options.timestamp.tsval']), v.tcpTsVal);
          miss('tcp.options.timestamp.tsecr', num(r['tcp.options.timestamp.tsecr']), v.tcpTsEcr);
        }
      }
      countChecksum(cov, v);
    }
    if (wantL4 === LAYER_UDP && (v.layers & LAYER_UDP) !== 0) {
      cov.udp++;
      miss('udp.srcport', num(r['udp.srcport']), v.srcPort);
      miss('udp.dstport', num(r['udp.dstport']), v.dstPort);
      miss('udp.length', num(r['udp.length']), v.udpLength);
      miss('udp.checksum.status', num(r['udp.checksum.status']), verifyL4Checksum(v));
      countChecksum(cov, v);
    }
    if (wantL4 === LAYER_ICMP4 && (v.layers & LAYER_ICMP4) !== 0) {
      cov.icmp4++;
      miss('icmp.type', num(r['icmp.type']), v.icmpType);
      miss('icmp.code', num(r['icmp.code']), v.icmpCode);
      if (r['icmp.ident'] !== '' && v.icmpEcho) {
        miss('icmp.ident', num(r['icmp.ident']), v.icmpEchoId);
        miss('icmp.seq', num(r['icmp.seq']), v.icmpEchoSeq);
      }
      miss('icmp.checksum.status', num(r['icmp.checksum.status']), verifyL4Checksum(v));
      countChecksum(cov, v);
    }
    if (wantL4 === LAYER_ICMP6 && (v.layers & LAYER_ICMP6) !== 0) {
      cov.icmp6++;
      miss('icmpv6.type', num(r['icmpv6.type']), v.icmpType);
      miss('icmpv6.code', num(r['icmpv6.code']), v.icmpCode);
      if (r['icmpv6.echo.identifier'] !== '') {
        miss('icmpv6.echo.identifier', num(r['icmpv6.echo.identifier']), v.icmpEchoId);
        miss('icmpv6.echo.sequence_number', num(r['icmpv6.echo.sequence_number']), v.icmpEchoSeq);
      }
      miss('icmpv6.checksum.status', num(r['icmpv6.checksum.status']), verifyL4Checksum(v));
      countChecksum(cov, v);
    }
  }
  return bad;
}

function countChecksum(cov: Coverage, v: PacketView): void {
  const s = verifyL4Checksum(v);
  if (s === CHECKSUM_GOOD) cov.checksumGood++;
  else if (s === CHECKSUM_BAD) cov.checksumBad++;
}
