/**
 * One pass over a capture: reader → link-type normaliser → decoder → ConnectionTracker, keeping
 * every flow's content per direction for the comparison (TCP: the reassembled stream with its
 * gaps, delivery times and frames; UDP / ICMP / other IP / ARP: the datagram sequence).
 *
 * Per packet nothing is allocated beyond amortised growth of the stores; per connection, the
 * Connection, its FlowRec and stores. SYN-ACKs (rare) allocate their key strings.
 */
import { statSync } from 'node:fs';
import { ColoError } from '../../errors.js';
import { openCapture } from '../../capture/reader.js';
import { linkTypeName, toEthernet } from '../../capture/linktype.js';
import { decodeFrame } from '../../packet/decode.js';
import { formatEndpoint } from '../../packet/addr.js';
import { LAYER_ARP, LAYER_TCP } from '../../packet/layer.js';
import { PacketPool } from '../../packet/pool.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../../packet/proto.js';
import { PacketView } from '../../packet/view.js';
import type { ConnectionListener } from '../../flow/connection.js';
import { ConnectionTracker, TrackResult } from '../../flow/tracker.js';
import { TCP_SYN, type Dir } from '../../flow/tcp-types.js';
import { decisionKey, isSynAck, synAckKey, type AlignDecision } from './align.js';
import { DatagramStore, Slab, StreamStore } from './store.js';
import type { DiffAlignment, DiffInput, DiffProtocol } from './types.js';

const IPPROTO_ICMPV6 = 58;
/** ICMPv6 neighbour discovery types (router solicitation … redirect). */
const ND_FIRST = 133;
const ND_LAST = 137;
const BOTH_DIRS: readonly Dir[] = [0, 1];
/** Capture time → ms; idle expiry runs when capture time moves on by this much. */
const EXPIRE_EVERY_MS = 1000;

/** One flow of one capture. Directions: 0 = client → server, 1 = back. */
export interface FlowRec {
  /** Start order in its capture. */
  serial: number;
  protocol: DiffProtocol;
  client: string;
  server: string;
  vlan: number;
  startMs: number;
  lastMs: number;
  /** TCP stores (null for datagram flows). */
  tcp: [StreamStore, StreamStore] | null;
  dgram: [DatagramStore, DatagramStore] | null;
  /** TCP: alignment of the server→client sequence space (secondary pass), 'midstream' without SYN-ACK. */
  alignment: DiffAlignment | null;
  /** A SYN or SYN-ACK was seen (a TCP flow that is not only retransmissions after close). */
  handshake: boolean;
}

export interface CaptureFlows {
  input: DiffInput;
  /** Link types seen (LINKTYPE numbers, before normalisation). */
  linkTypes: number[];
  flows: FlowRec[];
  /** Primary only: ISNs of SYN-ACKs per synAckKey, in capture order (distinct per key). */
  synAckIsns: Map<string, number[]>;
  tcpSegments: number;
}

export interface LoadOptions {
  /** Secondary: per-SYN-ACK alignment decisions from scanAlignment. */
  align?: ReadonlyMap<string, AlignDecision>;
  /** Flow table size (default DEFAULT_MAX_FLOWS). */
  maxFlows?: number;
  /** Packet pool to use (one per analysis is enough: each pass ends with `finish`). */
  pool?: PacketPool;
  /** Largest capture read into memory whole (default WHOLE_FILE_MAX); 0 always copies payload. */
  wholeFileMax?: number;
}

/**
 * Live connections the flow table holds at once (more are evicted, least recent first). Smaller
 * than the engine's 2^20: building the table is a fixed cost of every run of the analyzer.
 */
export const DEFAULT_MAX_FLOWS = 1 << 17;

/**
 * Captures up to this size are read into memory whole (one chunk), so payload bytes are kept
 * by reference into that chunk instead of being copied; larger ones are read in the reader's
 * usual chunks and their payload copied into slabs.
 */
export const WHOLE_FILE_MAX = 1024 * 1024 * 1024;

/** Read `path` and keep every flow's content. Throws CaptureError on a damaged capture. */
export function loadCapture(path: string, opts: LoadOptions = {}): CaptureFlows {
  let size = -1;
  try {
    size = statSync(path).size;
  } catch {
    // openCapture reports the unreadable file.
  }
  const whole = size >= 0 && size <= (opts.wholeFileMax ?? WHOLE_FILE_MAX) && size > 0;
  const reader = openCapture(path, whole ? { chunkSize: size + 64 } : {});
  const flows: FlowRec[] = [];
  const byClientServer = new Map<string, FlowRec>();
  const arpFlows = new Map<string, FlowRec>();
  const synAckIsns = new Map<string, number[]>();
  const linkTypes: number[] = [];
  const v = new PacketView();
  // The packet being processed, for the listener callbacks (they run inside tracker.packet).
  let curMs = 0;
  let curFrame = -1;
  let nextSerial = 0;
  let arpCount = 0;
  const slab = new Slab();
  // The reader's single chunk holding the whole file (see WHOLE_FILE_MAX), and its slab index.
  let fileBuf: Uint8Array | null = null;
  let fileSlab = -1;

  const newRec = (protocol: DiffProtocol, client: string, server: string, ms: number): FlowRec => {
    const tcp = protocol === 'tcp';
    const r: FlowRec = {
      serial: nextSerial++, protocol, client, server, vlan: v.vlanCount > 0 ? v.vlanId0 : 0, startMs: ms, lastMs: ms,
      tcp: tcp ? [new StreamStore(slab), new StreamStore(slab)] : null,
      dgram: tcp ? null : [new DatagramStore(slab), new DatagramStore(slab)],
      alignment: tcp ? 'midstream' : null,
      handshake: false,
    };
    flows.push(r);
    return r;
  };

  const listener: ConnectionListener<FlowRec> = {
    start(c) {
      let proto: DiffProtocol;
      if (c.proto === IPPROTO_TCP) proto = 'tcp';
      else if (c.proto === IPPROTO_UDP) proto = 'udp';
      else if (c.proto === IPPROTO_ICMP) proto = 'icmp';
      else if (c.proto === IPPROTO_ICMPV6) proto = v.icmpType >= ND_FIRST && v.icmpType <= ND_LAST ? 'nd' : 'icmpv6';
      else proto = 'other';
      const r = newRec(proto, c.client, c.server, c.startMs);
      c.user = r;
      if (proto === 'tcp') byClientServer.set(`${c.client}|${c.server}`, r);
    },
    data(c, dir, buf, off, len, streamOffset) {
      const s = c.user!.tcp![dir];
      let at = off;
      let where = fileSlab;
      if (buf !== fileBuf) {
        // Bytes from the pool (out-of-order, defragmented) or a chunked read: copy them.
        slab.append(buf, off, len);
        at = slab.lastOff;
        where = slab.lastSlab;
      }
      const b = s.deliveries.add();
      const d = s.deliveries.data;
      d[b] = streamOffset;
      d[b + 1] = curMs;
      d[b + 2] = curFrame;
      d[b + 3] = v.ipId;
      d[b + 4] = v.ipTtl;
      d[b + 5] = v.tcpWindow;
      d[b + 6] = v.tcpOpts * 4294967296 + v.tcpTsVal;
      d[b + 7] = where;
      d[b + 8] = at;
      d[b + 9] = len;
      s.len = streamOffset + len;
      if (s.lastFrame !== curFrame) {
        s.lastFrame = curFrame;
        s.dataPackets++;
      }
    },
    gap(c, dir, streamOffset, len) {
      const s = c.user!.tcp![dir];
      s.gaps.push(streamOffset, len);
      s.len = streamOffset + len;
    },
    directionEnd(c, dir, how) {
      const s = c.user!.tcp![dir];
      s.end = how;
      if (how === 'fin' || how === 'rst') {
        s.endMs = curMs;
        s.endFrame = curFrame;
      }
    },
    datagram(c, dir, buf, off, len) {
      c.user!.dgram![dir].push(buf, off, len, curMs, curFrame, v.ipId, v.ipTtl);
    },
    end(c) {
      const r = c.user;
      if (r === undefined) return;
      r.lastMs = c.lastMs;
      if (r.tcp !== null) {
        for (const d of BOTH_DIRS) {
          const st = c.tcpStats(d)!;
          r.tcp[d].segments = st.segments;
          r.tcp[d].retransmitted = st.retransmitted;
        }
        const k = `${c.client}|${c.server}`;
        if (byClientServer.get(k) === r) byClientServer.delete(k);
      }
    },
  };

  // Default retransmission window arming: which copy of a retransmitted byte wins does not
  // matter here (the first, as in the compare engine), and keeping every byte for verification
  // would cost a copy per byte.
  const tracker = new ConnectionTracker<FlowRec>({ pool: opts.pool ?? new PacketPool(), table: { maxFlows: opts.maxFlows ?? DEFAULT_MAX_FLOWS } }, listener);
  const align = opts.align;
  let packets = 0;
  let skipped = 0;
  let lastExpire = -Infinity;
  let lastLinkType = -1;
  try {
    for (let rec = reader.next(); rec !== null; rec = reader.next()) {
      packets++;
      if (whole && rec.buf !== fileBuf) {
        // The one chunk (replaced only if a record outgrew it, which a whole file cannot).
        fileBuf = rec.buf;
        fileSlab = slab.adopt(rec.buf);
      }
      if (rec.linkType !== lastLinkType) {
        lastLinkType = rec.linkType;
        if (!linkTypes.includes(rec.linkType)) linkTypes.push(rec.linkType);
      }
      if (!toEthernet(rec)) {
        skipped++;
        continue;
      }
      const nowMs = rec.tsSec * 1000 + rec.tsNsec / 1e6;
      decodeFrame(v, rec.buf, rec.off, rec.capLen, 0, rec.origLen);
      curMs = nowMs;
      curFrame = rec.index;
      let synAck: string | null = null;
      let decision: AlignDecision | undefined;
      if ((v.layers & LAYER_TCP) !== 0 && (v.tcpFlags & TCP_SYN) !== 0 && isSynAck(v)) {
        synAck = synAckKey(v);
        const list = synAckIsns.get(synAck);
        if (list === undefined) synAckIsns.set(synAck, [v.tcpSeq]);
        else if (!list.includes(v.tcpSeq)) list.push(v.tcpSeq);
        decision = align?.get(decisionKey(synAck, v.tcpSeq));
        // Behind filter-rewriter: count the stream from the primary's ISN (see align.ts).
        if (decision !== undefined) v.tcpSeq = decision.feedIsn;
      }
      const r = tracker.packet(v, nowMs);
      if (r === TrackResult.TCP && (v.tcpFlags & TCP_SYN) !== 0) {
        const key = synAck !== null ? synAckKey2(v) : `${endpoint(v, true)}|${endpoint(v, false)}`;
        const fr = byClientServer.get(key);
        if (fr !== undefined) {
          fr.handshake = true;
          if (synAck !== null) fr.alignment = decision?.alignment ?? 'own-space';
        }
      } else if (r === TrackResult.NOT_IP && (v.layers & LAYER_ARP) !== 0) {
        arpPacket(nowMs, rec.index);
      }
      if (nowMs - lastExpire >= EXPIRE_EVERY_MS) {
        tracker.expire(nowMs);
        lastExpire = nowMs;
      }
    }
  } finally {
    reader.close();
  }
  tracker.finish();
  const st = tracker.stats();
  return {
    input: { file: path, format: reader.format, linkType: linkTypes.length > 0 ? linkTypes.map(linkTypeName).join(',') : 'none', packets, skipped: skipped + st.notIp - arpCount + st.undecoded },
    linkTypes,
    flows,
    synAckIsns,
    tcpSegments: st.tcpSegments,
  };

  // ARP (not IP, so not a tracker flow): one datagram flow per pair of protocol addresses.
  function arpPacket(nowMs: number, frame: number): void {
    if (v.arpSenderProtoOff < 0 || v.arpTargetProtoOff < 0 || (v.arpProtoLen !== 4 && v.arpProtoLen !== 16)) return;
    arpCount++;
    const a = formatEndpoint(v.buf, v.arpSenderProtoOff, v.arpProtoLen, 0);
    const b = formatEndpoint(v.buf, v.arpTargetProtoOff, v.arpProtoLen, 0);
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    let fr = arpFlows.get(key);
    if (fr === undefined) {
      fr = newRec('arp', a, b, nowMs);
      arpFlows.set(key, fr);
    }
    fr.lastMs = nowMs;
    const dir: Dir = fr.client === a ? 0 : 1;
    const len = 8 + 2 * v.arpHwLen + 2 * v.arpProtoLen;
    fr.dgram![dir].push(v.buf, v.l3Off, Math.min(len, v.frameOff + v.frameLen - v.l3Off), nowMs, frame, 0, 0);
  }
}

function endpoint(v: PacketView, src: boolean): string {
  return src ? formatEndpoint(v.buf, v.ipSrcOff, v.ipAddrLen, v.srcPort) : formatEndpoint(v.buf, v.ipDstOff, v.ipAddrLen, v.dstPort);
}

/** `client|server` of a SYN-ACK (its receiver is the client). */
function synAckKey2(v: PacketView): string {
  return `${endpoint(v, false)}|${endpoint(v, true)}`;
}

/** Throw when a capture cannot be compared at all. */
export function checkComparable(p: CaptureFlows, s: CaptureFlows): void {
  for (const c of [p, s]) {
    if (c.input.packets === 0) throw new ColoError('ERR_INVALID_ARGUMENT', `${c.input.file}: the capture holds no packet`);
    if (c.tcpSegments === 0) throw new ColoError('ERR_INVALID_ARGUMENT', `${c.input.file}: no TCP segment in the capture (nothing to compare in sequence space)`);
  }
  const a = p.linkTypes.join(',');
  const b = s.linkTypes.join(',');
  if (a !== b) {
    throw new ColoError('ERR_CAPTURE_LINKTYPE', `link types differ: ${p.input.file} is ${p.input.linkType}, ${s.input.file} is ${s.input.linkType} (capture both at the same kind of point)`);
  }
}
