/**
 * Capture summary (`colo-proxy inspect`): one pass over a capture through the engine's own
 * reader, link-type normaliser and decoder, counting what is there.
 */
import { CaptureError } from '../errors.js';
import { openCapture } from '../capture/reader.js';
import { linkTypeName, toEthernet } from '../capture/linktype.js';
import { decodeFrame } from '../packet/decode.js';
import { PacketView } from '../packet/view.js';
import { LAYER_ARP, LAYER_FRAG, LAYER_ICMP4, LAYER_ICMP6, LAYER_IPV4, LAYER_IPV6, LAYER_TCP, LAYER_UDP, LAYER_VLAN } from '../packet/layer.js';
import { reasonName } from '../packet/reasons.js';
import { FlowCounter } from './flow-counter.js';

export interface ProtocolMix {
  ethernet: number;
  vlanTagged: number;
  arp: number;
  ipv4: number;
  ipv6: number;
  tcp: number;
  udp: number;
  icmp: number;
  icmpv6: number;
  /** IP fragments (any, first included). */
  fragments: number;
  /** IP packets whose upper protocol is none of the above (non-first fragments excluded). */
  otherIp: number;
  /** Ethernet frames that are neither IP nor ARP (unknown ethertype, 802.3 length). */
  otherL2: number;
  /** Records of a link type that cannot be turned into Ethernet (e.g. Linux netlink). */
  notEthernet: number;
}

export interface CaptureSummary {
  file: string;
  format: 'pcap' | 'pcapng';
  /** Records read. */
  packets: number;
  /** Captured bytes (sum of record lengths as stored, before link-type normalisation). */
  bytes: number;
  /** Bytes on the wire (sum of original lengths). */
  wireBytes: number;
  /** Records shorter than their original length (snaplen). */
  truncatedRecords: number;
  linkTypes: { linkType: number; name: string; packets: number }[];
  /** Earliest and latest record time (seconds since the epoch, ns precision kept in strings). */
  firstTime: string | null;
  lastTime: string | null;
  durationSec: number;
  protocols: ProtocolMix;
  /** Distinct conversations (both directions of a 5-tuple count once; VLAN id included). */
  flows: number;
  flowsByProtocol: Record<string, number>;
  /** Frames the decoder refused, by reason. */
  undecodable: Record<string, number>;
  /** True when the whole file was read; false when a damaged record stopped reading. */
  complete: boolean;
  error: { code: string; offset: number; message: string } | null;
}

export interface SummaryOptions {
  vnetHdrLen?: number;
  /** Called every record with the file offset reached, for progress display. */
  onProgress?: (fileOffset: number) => void;
}

export function summarizeCapture(path: string, opts: SummaryOptions = {}): CaptureSummary {
  const reader = openCapture(path);
  const v = new PacketView();
  const flows = new FlowCounter();
  const mix: ProtocolMix = { ethernet: 0, vlanTagged: 0, arp: 0, ipv4: 0, ipv6: 0, tcp: 0, udp: 0, icmp: 0, icmpv6: 0, fragments: 0, otherIp: 0, otherL2: 0, notEthernet: 0 };
  const undecodable: Record<string, number> = {};
  const perLink = new Map<number, number>();
  let packets = 0;
  let bytes = 0;
  let wireBytes = 0;
  let truncated = 0;
  let minS = Infinity, minN = 0, maxS = -Infinity, maxN = 0;
  let error: CaptureSummary['error'] = null;
  const vnet = opts.vnetHdrLen ?? 0;
  try {
    for (let rec = reader.next(); rec !== null; rec = reader.next()) {
      packets++;
      bytes += rec.capLen;
      wireBytes += rec.origLen;
      if (rec.capLen < rec.origLen) truncated++;
      perLink.set(rec.linkType, (perLink.get(rec.linkType) ?? 0) + 1);
      if (rec.tsSec < minS || (rec.tsSec === minS && rec.tsNsec < minN)) { minS = rec.tsSec; minN = rec.tsNsec; }
      if (rec.tsSec > maxS || (rec.tsSec === maxS && rec.tsNsec > maxN)) { maxS = rec.tsSec; maxN = rec.tsNsec; }
      opts.onProgress?.(rec.fileOffset);
      if (!toEthernet(rec)) {
        mix.notEthernet++;
        continue;
      }
      mix.ethernet++;
      const st = decodeFrame(v, rec.buf, rec.off, rec.capLen, vnet, rec.origLen);
      const L = v.layers;
      if (L & LAYER_VLAN) mix.vlanTagged++;
      if (st !== 0) {
        const name = reasonName(st);
        undecodable[name] = (undecodable[name] ?? 0) + 1;
      }
      if (L & LAYER_ARP) mix.arp++;
      else if (L & (LAYER_IPV4 | LAYER_IPV6)) {
        if (L & LAYER_IPV4) mix.ipv4++;
        else mix.ipv6++;
        if (L & LAYER_FRAG) mix.fragments++;
        if (L & LAYER_TCP) mix.tcp++;
        else if (L & LAYER_UDP) mix.udp++;
        else if (L & LAYER_ICMP4) mix.icmp++;
        else if (L & LAYER_ICMP6) mix.icmpv6++;
        else if (st === 0 && !(L & LAYER_FRAG)) mix.otherIp++;
        if (st === 0) flows.add(v);
      } else if (st === 0) mix.otherL2++;
    }
  } catch (e) {
    if (!(e instanceof CaptureError)) throw e;
    error = { code: e.code, offset: e.offset, message: e.message };
  } finally {
    reader.close();
  }
  const first = packets > 0 ? fmtTime(minS, minN) : null;
  const last = packets > 0 ? fmtTime(maxS, maxN) : null;
  return {
    file: path,
    format: reader.format,
    packets,
    bytes,
    wireBytes,
    truncatedRecords: truncated,
    linkTypes: [...perLink].map(([linkType, n]) => ({ linkType, name: linkTypeName(linkType), packets: n })),
    firstTime: first,
    lastTime: last,
    durationSec: packets > 0 ? maxS - minS + (maxN - minN) / 1e9 : 0,
    protocols: mix,
    flows: flows.total,
    flowsByProtocol: flows.byProtocol(),
    undecodable,
    complete: error === null,
    error,
  };
}

function fmtTime(sec: number, nsec: number): string {
  return `${sec}.${String(nsec).padStart(9, '0')}`;
}
