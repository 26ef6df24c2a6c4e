/**
 * One pass over a capture: reader → link-type normaliser → decoder → ConnectionTracker, keeping
 * every flow's content per direction for the comparison (TCP: the reassembled stream with its
 * gaps, delivery times and frames; UDP / ICMP / other IP / ARP: the datagram sequence).
 *
 * Per packet nothing is allocated beyond amortised growth of the stores; per connection, the
 * Connection, its FlowRec and stores. SYN-ACKs (rare) allocate their key strings.
 *
 * The secondary's pass runs against the loaded primary (`reference`): each TCP direction is
 * compared, as it is delivered, with the primary's stream it will most likely be matched
 * with, and bytes found equal are not stored (the comparison later starts where they stop).
 * That pass also decides the alignment of each connection as it goes (SecondaryAligner).
 */
import { statSync } from 'node:fs';
import { ColoError } from '../../errors.js';
import { openCapture } from '../../capture/reader.js';
import { linkTypeName, toEthernet } from '../../capture/linktype.js';
import { decodeFrame } from '../../packet/decode.js';
import { formatEndpoint } from '../../packet/addr.js';
import { LAYER_ARP, LAYER_FRAG, LAYER_TCP } from '../../packet/layer.js';
import { PacketPool } from '../../packet/pool.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../../packet/proto.js';
import { PacketView } from '../../packet/view.js';
import type { ConnectionListener } from '../../flow/connection.js';
import { ConnectionTracker, TrackResult } from '../../flow/tracker.js';
import { TCP_SYN, type Dir } from '../../flow/tcp-types.js';
import { isSynAck, pairKey, SecondaryAligner, synAckKey, tupleKey, type AlignEntry } from './align.js';
import { byStart } from './match.js';
import { BORROWED, DatagramStore, Slab, StreamStore, type BlockCache } from './store.js';
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
  /** TCP: tupleKey of (client, server) as first seen, and of the unordered pair with the VLAN; null if not known. */
  tuple: string | null;
  pairKey: string | null;
}

export interface CaptureFlows {
  input: DiffInput;
  /** Link types seen (LINKTYPE numbers, before normalisation). */
  linkTypes: number[];
  flows: FlowRec[];
  /** Primary only: ISNs of SYN-ACKs per synAckKey, in capture order (distinct per key). */
  synAckIsns: Map<string, number[]>;
  tcpSegments: number;
  /** Where the flows' bytes and records live (`release` it once the analysis is over). */
  slab: Slab;
}

export interface LoadOptions {
  /** Secondary: the primary's SYN-ACK ISNs (CaptureFlows.synAckIsns), to align its connections to. */
  alignTo?: ReadonlyMap<string, readonly number[]>;
  /**
   * Secondary: the loaded primary. Its TCP streams are compared with this capture's while it is
   * read (see the module comment); the capture is then read in chunks, not whole.
   */
  reference?: CaptureFlows;
  /** With `reference`: the timing rule's timeout (DiffOptions.timeoutMs), checked while comparing. */
  timeoutMs?: number;
  /** Flow table size (default DEFAULT_MAX_FLOWS). */
  maxFlows?: number;
  /** Packet pool to use (one per analysis is enough: each pass ends with `finish`). */
  pool?: PacketPool;
  /** Tracker to run the pass on (one per analysis is enough, see PassTracker); `pool` and `maxFlows` are then its own. */
  tracker?: PassTracker;
  /** Largest capture read into memory whole (default WHOLE_FILE_MAX); 0 always copies payload. */
  wholeFileMax?: number;
  /** Memory blocks for the stores (default: fresh memory, none kept). */
  blocks?: BlockCache;
}

/**
 * Live connections the flow table holds at once (more are evicted, least recent first). Smaller
 * than the engine's 2^20: building the table is a fixed cost of every run of the analyzer.
 */
export const DEFAULT_MAX_FLOWS = 1 << 17;

/**
 * Default of LoadOptions.wholeFileMax: 0, every capture is read in the reader's usual chunks
 * and its payload copied into slabs. Reading a file whole keeps its payload by reference
 * instead, but fills that much fresh memory per pass (page faults, and external memory that
 * drives V8 into full collections), where slabs come from a BlockCache kept between analyses:
 * copying into them measured faster (bench/diff.bench.ts) and no slower on a first run.
 */
export const WHOLE_FILE_MAX = 0;

/**
 * A ConnectionTracker that the passes of one analysis run on in turn (each pass ends with
 * `finish`, which empties it): its flow table, a fixed cost of a few ms, is built once.
 */
export class PassTracker {
  readonly tracker: ConnectionTracker<FlowRec>;
  /**
   * The listener object the tracker holds; `use` copies the running pass's callbacks into it
   * (the same six properties every time), so a callback is one call away, not two.
   */
  readonly #current: ConnectionListener<FlowRec> = { start: undefined, data: undefined, gap: undefined, directionEnd: undefined, datagram: undefined, end: undefined };

  constructor(pool: PacketPool, maxFlows = DEFAULT_MAX_FLOWS) {
    this.tracker = new ConnectionTracker<FlowRec>({ pool, table: { maxFlows } }, this.#current);
  }

  /** Run the next events through `l` (callbacks that do not use `this`); `{}` for none. */
  use(l: ConnectionListener<FlowRec>): void {
    const c = this.#current;
    c.start = l.start;
    c.data = l.data;
    c.gap = l.gap;
    c.directionEnd = l.directionEnd;
    c.datagram = l.datagram;
    c.end = l.end;
  }
}

/** Read `path` and keep every flow's content. Throws CaptureError on a damaged capture. */
export function loadCapture(path: string, opts: LoadOptions = {}): CaptureFlows {
  let size = -1;
  try {
    size = statSync(path).size;
  } catch {
    // openCapture reports the unreadable file.
  }
  // With a reference, bytes equal to the primary's are not kept and the rest is copied: never
  // worth holding the whole file.
  const ref = opts.reference;
  const timeoutMs = opts.timeoutMs ?? 3000;
  const whole = ref === undefined && size >= 0 && size <= (opts.wholeFileMax ?? WHOLE_FILE_MAX) && size > 0;
  const reader = openCapture(path, whole ? { chunkSize: size + 64 } : {});
  const flows: FlowRec[] = [];
  const byClientServer = new Map<string, FlowRec>();
  const arpFlows = new Map<string, FlowRec>();
  const synAckIsns = new Map<string, number[]>();
  const linkTypes: number[] = [];
  const v = new PacketView();
  // The packet being processed, for the listener callbacks (they run inside tracker.packet).
  // (Fields of one object, not closure variables: a double stored into a closure slot is
  // boxed anew on every write, i.e. an allocation per packet.)
  const cur = { ms: 0, frame: -1 };
  let nextSerial = 0;
  let arpCount = 0;
  const slab = new Slab(opts.blocks);
  // The reader's single chunk holding the whole file (see WHOLE_FILE_MAX), and its slab index.
  let fileBuf: Uint8Array | null = null;
  let fileSlab = -1;
  // Reference TCP flows per matching key in start order, and how many each key has handed out
  // (the k-th connection of a key here is the one matchFlows will most likely pair with the
  // primary's k-th; if not, the comparison just reads the borrowed bytes from the twin).
  const refByKey = new Map<string, FlowRec[]>();
  const refUsed = new Map<string, number>();
  if (ref !== undefined) {
    for (const f of ref.flows) {
      const k = f.pairKey;
      if (k === null) continue;
      const l = refByKey.get(k);
      if (l === undefined) refByKey.set(k, [f]);
      else l.push(f);
    }
    for (const l of refByKey.values()) l.sort(byStart);
  }

  const newRec = (protocol: DiffProtocol, client: string, server: string, ms: number): FlowRec => {
    const tcp = protocol === 'tcp';
    const r: FlowRec = {
      serial: nextSerial++, protocol, client, server, vlan: v.vlanCount > 0 ? v.vlanId0 : 0, startMs: ms, lastMs: ms,
      tcp: tcp ? [new StreamStore(slab), new StreamStore(slab)] : null,
      dgram: tcp ? null : [new DatagramStore(slab), new DatagramStore(slab)],
      alignment: tcp ? 'midstream' : null,
      handshake: false,
      tuple: null,
      pairKey: null,
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
      // Keyed by raw endpoints (built from the packet: a connection's first packet is not a
      // fragment in practice; one that is just goes unkeyed, as if it had no handshake).
      if (proto === 'tcp' && (v.layers & (LAYER_TCP | LAYER_FRAG)) === LAYER_TCP) {
        const cs = tracker.table.dir === 0 ? tupleKey(v.buf, v.ipSrcOff, v.srcPort, v.ipDstOff, v.dstPort, v.ipAddrLen) : tupleKey(v.buf, v.ipDstOff, v.dstPort, v.ipSrcOff, v.srcPort, v.ipAddrLen);
        r.tuple = cs;
        r.pairKey = pairKey(v.buf, v.ipSrcOff, v.srcPort, v.ipDstOff, v.dstPort, v.ipAddrLen, r.vlan);
        byClientServer.set(cs, r);
        if (ref !== undefined) pairWithReference(r);
      }
    },
    data(c, dir, buf, off, len, streamOffset) {
      const s = c.user!.tcp![dir];
      const b = s.deliveries.add();
      const d = s.deliveries.data;
      d[b] = streamOffset;
      d[b + 1] = cur.ms;
      d[b + 2] = cur.frame;
      d[b + 3] = v.ipId;
      d[b + 4] = v.ipTtl;
      d[b + 5] = v.tcpWindow;
      d[b + 6] = v.tcpOpts * 4294967296 + v.tcpTsVal;
      d[b + 9] = len;
      let at = off;
      let where = fileSlab;
      if (s.matching && streamOffset === s.matchedTo && s.matchNext(buf, off, len, b)) {
        where = BORROWED;
        at = 0;
      } else if (buf !== fileBuf) {
        // Bytes from the pool (out-of-order, defragmented) or a chunked read: copy them.
        slab.append(buf, off, len);
        at = slab.lastOff;
        where = slab.lastSlab;
      }
      d[b + 7] = where;
      d[b + 8] = at;
      s.len = streamOffset + len;
      if (s.lastFrame !== cur.frame) {
        s.lastFrame = cur.frame;
        s.dataPackets++;
      }
    },
    gap(c, dir, streamOffset, len) {
      const s = c.user!.tcp![dir];
      s.matching = false;
      s.gaps.push(streamOffset, len);
      s.len = streamOffset + len;
    },
    directionEnd(c, dir, how) {
      const s = c.user!.tcp![dir];
      s.end = how;
      if (how === 'fin' || how === 'rst') {
        s.endMs = cur.ms;
        s.endFrame = cur.frame;
      }
    },
    datagram(c, dir, buf, off, len) {
      c.user!.dgram![dir].push(buf, off, len, cur.ms, cur.frame, v.ipId, v.ipTtl);
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
        const k = r.tuple;
        if (k !== null && byClientServer.get(k) === r) byClientServer.delete(k);
      }
    },
  };

  // Default retransmission window arming: which copy of a retransmitted byte wins does not
  // matter here (the first, as in the compare engine), and keeping every byte for verification
  // would cost a copy per byte.
  const pt = opts.tracker ?? new PassTracker(opts.pool ?? new PacketPool(), opts.maxFlows);
  pt.use(listener);
  const tracker = pt.tracker;
  const aligner = opts.alignTo !== undefined ? new SecondaryAligner(opts.alignTo) : null;
  let packets = 0;
  let skipped = 0;
  // Counted here from `packet`'s results (tracker.stats() also measures the table: slow).
  let tcpSegments = 0;
  let notIp = 0;
  let undecoded = 0;
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
      cur.ms = nowMs;
      cur.frame = rec.index;
      let synAck: string | null = null;
      let entry: AlignEntry | null = null;
      if ((v.layers & LAYER_TCP) !== 0) {
        if ((v.tcpFlags & TCP_SYN) !== 0 && isSynAck(v)) {
          synAck = synAckKey(v);
          const list = synAckIsns.get(synAck);
          if (list === undefined) synAckIsns.set(synAck, [v.tcpSeq]);
          else if (!list.includes(v.tcpSeq)) list.push(v.tcpSeq);
          if (aligner !== null) entry = aligner.synAck(v, synAck);
        } else if (aligner !== null) aligner.segment(v);
      }
      const r = tracker.packet(v, nowMs);
      if (r === TrackResult.TCP) tcpSegments++;
      else if (r === TrackResult.NOT_IP) notIp++;
      else if (r === TrackResult.UNDECODED) undecoded++;
      if (r === TrackResult.TCP && (v.tcpFlags & TCP_SYN) !== 0) {
        // (client, server): a SYN-ACK's receiver is the client, a SYN's sender.
        const key = synAck !== null ? tupleKey(v.buf, v.ipDstOff, v.dstPort, v.ipSrcOff, v.srcPort, v.ipAddrLen) : tupleKey(v.buf, v.ipSrcOff, v.srcPort, v.ipDstOff, v.dstPort, v.ipAddrLen);
        const fr = byClientServer.get(key);
        if (fr !== undefined) {
          fr.handshake = true;
          if (synAck !== null) {
            if (entry !== null) aligner!.label(entry, fr);
            else fr.alignment = 'own-space';
          }
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
  pt.use({});
  aligner?.finish();
  return {
    input: { file: path, format: reader.format, linkType: linkTypes.length > 0 ? linkTypes.map(linkTypeName).join(',') : 'none', packets, skipped: skipped + notIp - arpCount + undecoded },
    linkTypes,
    flows,
    synAckIsns,
    tcpSegments,
    slab,
  };

  /** Compare `r`'s directions with its likely match in the reference while reading (see refByKey). */
  function pairWithReference(r: FlowRec): void {
    const k = r.pairKey!;
    const l = refByKey.get(k);
    if (l === undefined) return;
    const i = refUsed.get(k) ?? 0;
    refUsed.set(k, i + 1);
    const p = l[i];
    if (p === undefined || p.tcp === null) return;
    // Pair the streams by their sender: orientation may still change, senders do not.
    const same = p.client === r.client;
    r.tcp![0].pairWith(p.tcp[same ? 0 : 1], timeoutMs);
    r.tcp![1].pairWith(p.tcp[same ? 1 : 0], timeoutMs);
  }

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
