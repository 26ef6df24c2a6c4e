/**
 * A model of QEMU 7.2 colo-compare's decisions (../shared/docs/qemu-colo-reference.md §6, §9),
 * written from the reference's description: "how many checkpoints would QEMU's own compare ask
 * for on this traffic". Fed the primary's and the secondary's frames in arrival order with
 * their times; it counts checkpoint requests (what colo-compare sends as DO_CHECKPOINT / to
 * the COLO frame), released and dropped frames.
 *
 * Rules modelled, in short:
 * - Only untagged IPv4 is queued. Anything else (ARP, IPv6, VLAN-tagged, short frames, vnet
 *   header > 20 bytes) is "unsupported": a primary frame is released at once, a secondary one
 *   discarded; neither is ever compared.
 * - One connection per directional key (src, dst, two 16-bit "port" fields, protocol; ports
 *   from the first 4 transport bytes for TCP/UDP/DCCP/ESP/SCTP/UDP-Lite, bytes 4–7 for AH,
 *   0 otherwise), each with a primary and a secondary queue. Connections are never removed;
 *   creating one when more than 16 384 exist wipes the table, queued packets included (lost).
 * - A packet is queued only while its queue holds at most `max_queue_size` packets (so up to
 *   max + 1); otherwise it is dropped silently (a lost primary frame, no checkpoint), and the
 *   comparison still runs.
 * - TCP queues are kept sorted by sequence number; payload = frame length − headers (Ethernet
 *   padding counts). After every enqueue the lowest-sequence packets are compared by payload
 *   bytes only: equal segments are released; different segmentation is matched piecewise
 *   through per-packet offsets (no check that the two pieces start at the same sequence
 *   number); a payload-less primary segment is released once any secondary packet of the
 *   connection is queued; already-verified data (end ≤ compare_seq) passes. Equal bytes whose
 *   primary ACK is above the smaller of the latest primary / secondary ACK ("secondary guest
 *   hasn't acked the data") and different bytes are a mismatch: both stay queued and a
 *   checkpoint is requested. Headers, options, window, TTL, IP ID are never compared.
 * - UDP / ICMP: the NEWEST queued primary datagram is matched against the oldest secondary one
 *   that equals it (same frame size, same bytes from the transport header on); other IPv4
 *   protocols compare the whole frame after the vnet header (IP ID / TTL differences
 *   mismatch). No partner → the primary goes back and a checkpoint is requested.
 * - Every `expired_scan_cycle` the connections are scanned in first-use order; the first one
 *   holding a primary or secondary packet older than `compare_timeout` requests one
 *   checkpoint and ends the scan.
 * - A checkpoint flushes every connection: primary packets released, secondary ones dropped;
 *   compare_seq and the ACK marks are kept.
 *
 * Where the model is approximate (what it assumes that QEMU leaves to timing):
 * - A requested checkpoint completes (flushes) right after the packet or scan that asked,
 *   before the next packet (`completion: 'instant'`); on a real pair the checkpoint takes time,
 *   QEMU re-requests on every packet of a mismatched connection meanwhile, and the COLO frame
 *   coalesces those. So `requests` = `checkpoints` here, what a real pair would do with instant
 *   checkpoints. `completion: 'never'` models the other end: nobody checkpoints, and every
 *   repeated DO_CHECKPOINT is counted.
 * - The captured secondary keeps sending what it sent; a real secondary is resynchronised by
 *   the checkpoint and would send the primary's bytes from then on.
 * - Times are the frames' capture times; the scan timer starts at the first frame (QEMU's
 *   starts when the object is created), so a timeout can land one scan cycle apart.
 * - QEMU's reads past a frame's end (a misaligned piece compared beyond the secondary's
 *   payload) count as a mismatch here; a frame whose TCP header claims more than the frame
 *   holds has no payload here. Sliced captures (caplen < wire length) are compared as captured.
 *
 * Cold path: allocates per packet (a copy of each queued frame). Not part of the analyzer's
 * throughput path.
 */
import { CaptureMerge, recordTimeMs } from '../../capture/merge.js';
import { formatIPv4 } from '../../packet/addr.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, qemuPortsOffset } from '../../packet/proto.js';

/** colo-compare's properties (defaults as QEMU's). */
export interface QemuRulesOptions {
  /** `compare_timeout` (ms); default 3000. */
  compareTimeoutMs?: number;
  /** `expired_scan_cycle` (ms); default 1000. */
  expiredScanCycleMs?: number;
  /** `max_queue_size` (packets per connection and side); default 1024. */
  maxQueueSize?: number;
  /** Time of the first scan-timer start (default: the first event's time). */
  timerOriginMs?: number;
  /**
   * What happens to a request: 'instant' (default) — the checkpoint completes (flushes) right
   * after the packet or scan that asked; 'never' — nobody checkpoints (no COLO frame, or a
   * controller that ignores notify_dev), so QEMU repeats the request on every new packet of a
   * mismatched connection and at every scan; `requests` then counts those DO_CHECKPOINT
   * messages and `checkpoints` is 0.
   */
  completion?: 'instant' | 'never';
}

/**
 * Why QEMU's rules ask for a checkpoint:
 * - `tcp-payload`: TCP payload bytes differ at the compared place;
 * - `tcp-unacked`: same bytes, but the primary segment ACKs more than the secondary has yet
 *   ("secondary guest hasn't acked the data");
 * - `packet-different`: a UDP / ICMP / other datagram with no equal secondary partner;
 * - `old-packet`: a packet waited longer than compare_timeout (scan).
 */
export type QemuCheckpointCause = 'tcp-payload' | 'tcp-unacked' | 'packet-different' | 'old-packet';

export const QEMU_CHECKPOINT_CAUSES: readonly QemuCheckpointCause[] = Object.freeze(['tcp-payload', 'tcp-unacked', 'packet-different', 'old-packet']);

/** One checkpoint request of the model. */
export interface QemuCheckpointRequest {
  /** 1-based checkpoint number (with `completion: 'never'`: the request number). */
  checkpoint: number;
  atMs: number;
  cause: QemuCheckpointCause;
  /** `"SRC:SPORT-DST:DPORT/PROTO"` of the connection (QEMU's directional key). */
  flow: string;
  /**
   * TCP: stream offset of the compared primary byte (0 = first byte after the primary's SYN,
   * or the first byte seen); datagrams: index of the primary datagram in its connection;
   * null when unknown (a timeout on secondary packets only).
   */
  offset: number | null;
  offsetUnit: 'byte' | 'datagram' | null;
}

/** Per connection figures. */
export interface QemuFlowFigures {
  flow: string;
  requests: number;
  /** Primary / secondary packets queued, released (primary), dropped over max_queue_size. */
  primaryQueued: number;
  secondaryQueued: number;
  primaryDropped: number;
  secondaryDropped: number;
}

export interface QemuRulesReport {
  engine: 'qemu-7.2-rules';
  options: Required<Omit<QemuRulesOptions, 'timerOriginMs'>>;
  /** Checkpoints that would happen (= requests in this model, see the module notes), up to the last frame. */
  checkpoints: number;
  requests: number;
  /** Requests per cause (same span as `checkpoints`). */
  byCause: Record<QemuCheckpointCause, number>;
  /**
   * Checkpoints after the last frame, while the clock ran on (`drainMs`): packets still queued
   * at the end of the capture reaching compare_timeout. Not in `checkpoints`.
   */
  atEnd: number;
  /** Every request in order. */
  records: QemuCheckpointRequest[];
  /** Connections with at least one request or drop, in first-use order. */
  flows: QemuFlowFigures[];
  primary: { received: number; released: number; uncompared: number; dropped: number; lostInWipe: number; heldAtEnd: number };
  secondary: { received: number; discarded: number; dropped: number };
  connections: number;
}

const MAX_CONNECTIONS = 16_384;
const VNET_MAX = 20;
const TCP_SYN = 0x02;

interface QPkt {
  data: Uint8Array;
  created: number;
  /** Transport header offset in `data` (vnet + L2 + IP header). */
  l4: number;
  vnet: number;
  /** TCP fields (uint32 as numbers). */
  seq: number;
  ack: number;
  seqEnd: number;
  header: number;
  payload: number;
  offset: number;
  /** Datagram index among the connection's primary datagrams (non-TCP). */
  index: number;
}

interface QConn {
  flow: string;
  proto: number;
  /** Index 0 = head (TCP: highest seq; others: oldest); the last element is the tail. */
  p: QPkt[];
  s: QPkt[];
  compareSeq: number;
  pack: number;
  sack: number;
  /** Primary stream origin for offsets (SYN seq + 1, or first seq seen); -1 unset. */
  base: number;
  pIndex: number;
  fig: QemuFlowFigures;
}

/** a after b in sequence space (wrap-aware, as QEMU's `after`). */
const after = (a: number, b: number): boolean => ((a - b) | 0) > 0;

function protoName(p: number): string {
  return p === IPPROTO_TCP ? 'TCP' : p === IPPROTO_UDP ? 'UDP' : p === IPPROTO_ICMP ? 'ICMP' : `IP${p}`;
}

function equalRange(a: Uint8Array, ao: number, b: Uint8Array, bo: number, len: number): boolean {
  // QEMU would read past the end here; a range that does not fit is a mismatch.
  if (len < 0 || ao + len > a.length || bo + len > b.length) return false;
  for (let i = 0; i < len; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/** Stream offset of `p`'s next compared byte from the connection's origin (null before it / unknown). */
function streamOffset(c: QConn, p: QPkt): number | null {
  if (c.base < 0) return null;
  const d = (p.seq + p.offset - c.base) | 0;
  return d < 0 ? null : d;
}

/** The model. Feed frames in arrival order with non-decreasing times; `finish` at the end. */
export class QemuRulesModel {
  readonly compareTimeoutMs: number;
  readonly expiredScanCycleMs: number;
  readonly maxQueueSize: number;
  readonly completion: 'instant' | 'never';
  readonly #conns = new Map<string, QConn>();
  /** First-use order (QEMU's conn_list). */
  readonly #list: QConn[] = [];
  readonly #records: QemuCheckpointRequest[] = [];
  readonly #byCause: Record<QemuCheckpointCause, number> = { 'tcp-payload': 0, 'tcp-unacked': 0, 'packet-different': 0, 'old-packet': 0 };
  #nextScan: number;
  #now = 0;
  #requested = false;
  #p = { received: 0, released: 0, uncompared: 0, dropped: 0, lostInWipe: 0 };
  #s = { received: 0, discarded: 0, dropped: 0 };

  constructor(opts: QemuRulesOptions = {}) {
    this.compareTimeoutMs = opts.compareTimeoutMs ?? 3000;
    this.expiredScanCycleMs = opts.expiredScanCycleMs ?? 1000;
    this.maxQueueSize = opts.maxQueueSize ?? 1024;
    this.completion = opts.completion ?? 'instant';
    this.#nextScan = opts.timerOriginMs !== undefined ? opts.timerOriginMs + this.expiredScanCycleMs : NaN;
  }

  /** A frame from primary_in (`buf[off, off + len)`, vnet header first) at `tMs`. */
  primary(buf: Uint8Array, off: number, len: number, vnetHdrLen: number, tMs: number): void {
    this.advance(tMs);
    this.#p.received++;
    const conn = this.#enqueue(buf, off, len, vnetHdrLen, true);
    if (conn === null) this.#p.uncompared++;
    else this.#compare(conn);
    this.#completeIfRequested();
  }

  /** A frame from secondary_in at `tMs`. */
  secondary(buf: Uint8Array, off: number, len: number, vnetHdrLen: number, tMs: number): void {
    this.advance(tMs);
    this.#s.received++;
    const conn = this.#enqueue(buf, off, len, vnetHdrLen, false);
    if (conn === null) this.#s.discarded++;
    else this.#compare(conn);
    this.#completeIfRequested();
  }

  /** Run the scan timer up to `tMs` (each scan may request and complete one checkpoint). */
  advance(tMs: number): void {
    if (Number.isNaN(this.#nextScan)) this.#nextScan = tMs + this.expiredScanCycleMs;
    while (this.#nextScan <= tMs) {
      const at = this.#nextScan;
      this.#now = at;
      this.#scan(at);
      this.#completeIfRequested();
      this.#nextScan = at + this.expiredScanCycleMs;
    }
    this.#now = tMs;
  }

  /** The figures so far. */
  report(): QemuRulesReport {
    let held = 0;
    for (const c of this.#list) held += c.p.length;
    return {
      engine: 'qemu-7.2-rules',
      options: { compareTimeoutMs: this.compareTimeoutMs, expiredScanCycleMs: this.expiredScanCycleMs, maxQueueSize: this.maxQueueSize, completion: this.completion },
      checkpoints: this.completion === 'instant' ? this.#records.length : 0,
      requests: this.#records.length,
      byCause: { ...this.#byCause },
      atEnd: 0,
      records: this.#records.slice(),
      flows: this.#list.filter((c) => c.fig.requests > 0 || c.fig.primaryDropped > 0 || c.fig.secondaryDropped > 0).map((c) => ({ ...c.fig })),
      primary: { ...this.#p, heldAtEnd: held },
      secondary: { ...this.#s },
      connections: this.#conns.size,
    };
  }

  // ---------------- parsing and queues ----------------

  /** Queue the frame (null: unsupported, never compared). Drops over max_queue_size still return the connection. */
  #enqueue(buf: Uint8Array, off: number, len: number, vnet: number, isPrimary: boolean): QConn | null {
    if (vnet > VNET_MAX || len < 14 + 4 + vnet) return null;
    const e = off + vnet;
    const type = (buf[e + 12]! << 8) | buf[e + 13]!;
    if (type === 0x8100) return null;
    let l2 = 14;
    let l3type = type;
    if (type === 0x88a8) {
      const inner = (buf[e + 16]! << 8) | buf[e + 17]!;
      l2 = inner === 0x8100 ? 22 : 18;
      l3type = (buf[e + l2 - 2]! << 8) | buf[e + l2 - 1]!;
    }
    if (l3type !== 0x0800) return null;
    const ip = e + l2;
    if (len < vnet + l2 + 1) return null;
    const ihl = (buf[ip]! & 0x0f) * 4;
    if (len < l2 + ihl + vnet) return null;
    const proto = buf[ip + 9]!;
    const l4 = ip + ihl;
    const rd16 = (o: number): number => (o + 1 < off + len ? (buf[o]! << 8) | buf[o + 1]! : 0);
    let sport = 0;
    let dport = 0;
    const po = qemuPortsOffset(proto);
    if (po >= 0) {
      sport = rd16(l4 + po);
      dport = rd16(l4 + po + 2);
    }
    const src = formatIPv4(buf, ip + 12);
    const dst = formatIPv4(buf, ip + 16);
    const key = `${src}:${sport}-${dst}:${dport}/${proto}`;
    let conn = this.#conns.get(key);
    if (conn === undefined) {
      if (this.#conns.size > MAX_CONNECTIONS) this.#wipe();
      conn = {
        flow: `${src}:${sport}-${dst}:${dport}/${protoName(proto)}`,
        proto,
        p: [],
        s: [],
        compareSeq: 0,
        pack: 0,
        sack: 0,
        base: -1,
        pIndex: 0,
        fig: { flow: '', requests: 0, primaryQueued: 0, secondaryQueued: 0, primaryDropped: 0, secondaryDropped: 0 },
      };
      conn.fig.flow = conn.flow;
      this.#conns.set(key, conn);
      this.#list.push(conn);
    }
    const q = isPrimary ? conn.p : conn.s;
    if (q.length > this.maxQueueSize) {
      if (isPrimary) {
        this.#p.dropped++;
        conn.fig.primaryDropped++;
      } else {
        this.#s.dropped++;
        conn.fig.secondaryDropped++;
      }
      return conn;
    }
    const data = Uint8Array.prototype.slice.call(buf, off, off + len);
    const pkt: QPkt = { data, created: this.#now, l4: l4 - off, vnet, seq: 0, ack: 0, seqEnd: 0, header: 0, payload: 0, offset: 0, index: 0 };
    if (isPrimary) conn.fig.primaryQueued++;
    else conn.fig.secondaryQueued++;
    if (proto === IPPROTO_TCP) {
      const t = l4 - off;
      const u32 = (o: number): number => (o + 3 < len ? ((data[o]! << 24) | (data[o + 1]! << 16) | (data[o + 2]! << 8) | data[o + 3]!) >>> 0 : 0);
      pkt.seq = u32(t + 4);
      pkt.ack = u32(t + 8);
      const doff = t + 12 < len ? (data[t + 12]! >> 4) * 4 : 0;
      const flags = t + 13 < len ? data[t + 13]! : 0;
      pkt.header = t + doff;
      pkt.payload = Math.max(0, len - pkt.header);
      pkt.seqEnd = (pkt.seq + pkt.payload) >>> 0;
      // QEMU keeps the latest ACK of each side, not the highest (reference §9 B3).
      if (isPrimary) {
        conn.pack = pkt.ack;
        if (conn.base < 0) conn.base = (flags & TCP_SYN) !== 0 ? (pkt.seq + 1) >>> 0 : pkt.seq;
      } else conn.sack = pkt.ack;
      // Sorted: highest seq at the head; equal seqs keep arrival order (older nearer the tail).
      let i = 0;
      while (i < q.length && ((pkt.seq - q[i]!.seq) | 0) < 0) i++;
      q.splice(i, 0, pkt);
    } else {
      if (isPrimary) pkt.index = conn.pIndex++;
      q.push(pkt);
    }
    return conn;
  }

  #wipe(): void {
    for (const c of this.#list) this.#p.lostInWipe += c.p.length;
    this.#conns.clear();
    this.#list.length = 0;
  }

  // ---------------- comparison ----------------

  #compare(c: QConn): void {
    if (c.proto === IPPROTO_TCP) this.#compareTcp(c);
    else this.#compareDatagrams(c);
  }

  #release(): void {
    this.#p.released++;
  }

  #compareTcp(c: QConn): void {
    const minAck = Math.min(c.pack, c.sack);
    let p: QPkt | null = null;
    let atPri = true;
    for (;;) {
      if (atPri) {
        if (c.p.length === 0) return;
        p = c.p.pop()!;
      }
      atPri = false;
      if (c.s.length === 0) {
        c.p.push(p!);
        return;
      }
      const s = c.s.pop()!;
      if (p !== null && p.seq === p.seqEnd) {
        this.#release();
        p = null;
      }
      if (p !== null && c.compareSeq !== 0 && !after(p.seqEnd, c.compareSeq)) {
        this.#release();
        p = null;
      }
      if (s.seq === s.seqEnd || (c.compareSeq !== 0 && !after(s.seqEnd, c.compareSeq))) {
        // Secondary has nothing new: discard it and go on with the same primary (or the next).
        atPri = p === null;
        continue;
      }
      if (p === null) {
        c.s.push(s);
        atPri = true;
        continue;
      }
      const mark = this.#markTcp(p, s, minAck);
      if (mark === 'primary') {
        c.compareSeq = p.seqEnd;
        this.#release();
        c.s.push(s);
        atPri = true;
      } else if (mark === 'secondary') {
        c.compareSeq = s.seqEnd;
        atPri = false;
      } else if (mark === 'both') {
        c.compareSeq = p.seqEnd;
        this.#release();
        atPri = true;
      } else {
        c.p.push(p);
        c.s.push(s);
        const offset = streamOffset(c, p);
        this.#request(c, mark, offset, offset === null ? null : 'byte');
        return;
      }
    }
  }

  /** What QEMU's TCP mark step decides for the pair (mutating the offsets like QEMU). */
  #markTcp(p: QPkt, s: QPkt, minAck: number): 'both' | 'primary' | 'secondary' | 'tcp-payload' | 'tcp-unacked' {
    if (p.seq === s.seq && p.seqEnd === s.seqEnd && equalRange(p.data, p.header, s.data, s.header, p.payload)) return 'both';
    if (!after(p.seqEnd, s.seqEnd)) {
      const n = (p.payload - p.offset) & 0xffff;
      if (equalRange(p.data, p.header + p.offset, s.data, s.header + s.offset, n)) {
        if (after(p.ack, minAck)) return 'tcp-unacked';
        s.offset += n;
        return 'primary';
      }
    } else {
      const n = (s.payload - s.offset) & 0xffff;
      if (equalRange(p.data, p.header + p.offset, s.data, s.header + s.offset, n)) {
        p.offset += n;
        return 'secondary';
      }
    }
    return 'tcp-payload';
  }

  #compareDatagrams(c: QConn): void {
    while (c.p.length > 0 && c.s.length > 0) {
      // The newest primary first (reference §9 B2), against the oldest equal secondary.
      const p = c.p.pop()!;
      const i = c.s.findIndex((s) => this.#sameDatagram(c.proto, p, s));
      if (i >= 0) {
        this.#release();
        c.s.splice(i, 1);
      } else {
        c.p.push(p);
        this.#request(c, 'packet-different', p.index, 'datagram');
        return;
      }
    }
  }

  #sameDatagram(proto: number, p: QPkt, s: QPkt): boolean {
    if (p.data.length !== s.data.length) return false;
    // UDP / ICMP: from the transport header (the primary's IHL); others: the whole frame after the vnet header.
    const from = proto === IPPROTO_UDP || proto === IPPROTO_ICMP ? p.l4 : p.vnet;
    return equalRange(p.data, from, s.data, from, p.data.length - from);
  }

  // ---------------- checkpoints ----------------

  #request(c: QConn, cause: QemuCheckpointCause, offset: number | null, unit: 'byte' | 'datagram' | null): void {
    this.#requested = true;
    c.fig.requests++;
    this.#byCause[cause]++;
    this.#records.push({ checkpoint: this.#records.length + 1, atMs: this.#now, cause, flow: c.flow, offset, offsetUnit: unit });
  }

  #scan(now: number): void {
    const limit = this.compareTimeoutMs;
    for (const c of this.#list) {
      const old = (q: QPkt[]): QPkt | undefined => q.find((x) => now - x.created > limit);
      const op = old(c.p);
      if (op !== undefined || old(c.s) !== undefined) {
        let offset: number | null = null;
        let unit: 'byte' | 'datagram' | null = null;
        if (op !== undefined) {
          if (c.proto === IPPROTO_TCP) {
            offset = streamOffset(c, op);
            unit = offset === null ? null : 'byte';
          } else {
            offset = op.index;
            unit = 'datagram';
          }
        }
        this.#request(c, 'old-packet', offset, unit);
        return;
      }
    }
  }

  /** Instant checkpoint: flush every connection (primary released, secondary dropped). */
  #completeIfRequested(): void {
    if (!this.#requested) return;
    this.#requested = false;
    if (this.completion === 'never') return;
    for (const c of this.#list) {
      this.#p.released += c.p.length;
      c.p.length = 0;
      c.s.length = 0;
    }
  }
}

/** Options of `qemuRulesFromCaptures`. */
export interface QemuRulesRunOptions extends QemuRulesOptions {
  /**
   * After the last frame, let the clock run this long (ms) so packets left queued reach their
   * timeout as they would on a live link. Default compare_timeout + 2 scan cycles; 0 = stop at
   * the last frame.
   */
  drainMs?: number;
}

/**
 * Run the model over a primary and a secondary capture merged by timestamp (ties: primary
 * first), clock = capture time. Throws the reader's CaptureError for a damaged capture.
 */
export function qemuRulesFromCaptures(primaryPath: string, secondaryPath: string, opts: QemuRulesRunOptions = {}): QemuRulesReport {
  const model = new QemuRulesModel(opts);
  const merge = new CaptureMerge([primaryPath, secondaryPath]);
  let last = NaN;
  try {
    for (let i = merge.next(); i >= 0; i = merge.next()) {
      const r = merge.record(i);
      const t = recordTimeMs(r);
      if (i === 0) model.primary(r.buf, r.off, r.capLen, 0, t);
      else model.secondary(r.buf, r.off, r.capLen, 0, t);
      last = t;
    }
  } finally {
    merge.close();
  }
  if (Number.isNaN(last)) return model.report();
  model.advance(last + (opts.drainMs ?? model.compareTimeoutMs + 2 * model.expiredScanCycleMs));
  // Split what happened after the last frame from what happened within the capture.
  const r = model.report();
  const within = r.records.filter((x) => x.atMs <= last);
  r.atEnd = r.records.length - within.length;
  r.requests = within.length;
  r.checkpoints = model.completion === 'instant' ? within.length : 0;
  for (const c of QEMU_CHECKPOINT_CAUSES) r.byCause[c] = within.filter((x) => x.cause === c).length;
  return r;
}
