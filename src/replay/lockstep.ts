/**
 * Lockstep planning: the order in which a primary and a secondary frame list are written to a
 * compare engine so that the two inputs advance the way a real COLO pair's would, and neither
 * runs too far ahead of the other on any connection.
 *
 * Why it matters: QEMU's colo-compare keeps one queue per connection and side and silently
 * drops a packet that arrives while that queue already holds more than `max_queue_size`
 * packets (reference §6.5; lab step 4 lost up to 80% of the frames with two free-running
 * writers). A queue only drains when the other side catches up, so the feeder must bound how
 * far each side runs ahead *per connection*.
 *
 * How the bound is kept (the model):
 * - Frames are keyed the way colo-compare keys them (§6.4): untagged IPv4 only, directional
 *   (src, dst, two 16-bit "port" fields, protocol). Anything else (IPv6, ARP, VLAN-tagged,
 *   non-IPv4, vnet_hdr_len > 20) is never queued by QEMU and is not constrained.
 * - Each frame gets a *progress* value on its own side and connection: for TCP the number of
 *   new stream bytes seen so far on that side (payload as colo-compare counts it: to the end
 *   of the frame; a retransmission or a payload-less segment does not advance), so different
 *   segmentation (2×700 vs 1×1400) and ISNs do not matter; for other protocols the datagram
 *   count (they pair one to one).
 * - A written frame is *pending* (modelled as still queued in QEMU) while the other side's
 *   written progress on that connection is below its own, or, for a frame that did not
 *   advance (pure ACK, SYN-ACK, FIN, retransmission), until the other side has written a frame
 *   on that connection after it (colo-compare releases those only when a packet of the other
 *   side is queued, §6.6). Pending frames always form a suffix of a side's writes on a
 *   connection, so counting them is O(1) amortised.
 * - Before writing a frame the planner checks the pending count of its side on its
 *   connection; at `maxAhead` that side is blocked and the other side's next frame is written
 *   instead. Only when both sides are blocked (or the other side has no frames left: e.g. a
 *   deliberately silent secondary) is the limit exceeded; each such write is counted in
 *   `overruns`, so a harness knows QEMU may have dropped frames.
 * - The model assumes QEMU consumes instantly. Frames in flight (socket buffers, QEMU not yet
 *   scheduled) add to the real queue, so callers should keep `maxAhead` well below
 *   `max_queue_size` (QemuColoCompare uses half of it).
 *
 * Orders: 'time' merges the two lists by `timeMs` (ties: primary first), as the two VMs
 * would emit them; 'alternate' writes `chunk` frames from each side in turn (as lab step 4).
 * The per-side order of frames is never changed, only how the two sides interleave.
 */
import { ColoError } from '../errors.js';
import { decodeFrame } from '../packet/decode.js';
import { LAYER_FRAG, LAYER_IPV4, LAYER_TCP } from '../packet/layer.js';
import { PacketView } from '../packet/view.js';
import { qemuPortsOffset } from '../packet/proto.js';

/** One frame to write: `buf[off, off + len)` (vnet header included), optional timestamp. */
export interface FeedFrame {
  buf: Buffer;
  /** Default 0. */
  off?: number;
  /** Default `buf.length - off`. */
  len?: number;
  /** Bytes of virtio-net header at the start of the frame; default 0. */
  vnetHdrLen?: number;
  /** Capture or emission time in ms (any origin shared by both lists). */
  timeMs?: number;
}

export type LockstepOrder = 'time' | 'alternate';

export interface LockstepOptions {
  /** Most frames of one side modelled as queued on one connection; must be ≥ 1. */
  maxAhead: number;
  /** Default: 'time' when every frame has a finite `timeMs`, else 'alternate'. */
  order?: LockstepOrder;
  /**
   * Frames per side per turn in 'alternate' order; default 16. (Lab step 4 used 64; smaller
   * turns make colo-compare release in smaller bursts, so its output backs up less, §9 B1.)
   */
  chunk?: number;
}

export interface LockstepPlan {
  /** Write order: `step >>> 1` is the frame index, `step & 1` the side (0 primary, 1 secondary). */
  readonly steps: Uint32Array;
  readonly order: LockstepOrder;
  readonly maxAhead: number;
  /** Writes that exceeded `maxAhead` because neither side could go on within it. */
  readonly overruns: number;
  /** Largest modelled pending count, per side [primary, secondary]. */
  readonly maxPending: readonly [number, number];
  /** Distinct colo-compare connections seen (both sides). */
  readonly connections: number;
  /** Frames QEMU would not queue (non-IPv4, VLAN, …), per side. */
  readonly unqueued: readonly [number, number];
}

export const SIDE_PRIMARY = 0;
export const SIDE_SECONDARY = 1;

/** Per-side classification: connection id (-1 = not queued), progress, "did not advance". */
interface Classified {
  conn: Int32Array;
  prog: Float64Array;
  noAdv: Uint8Array;
  unqueued: number;
}


function frameBounds(f: FeedFrame): [number, number] {
  const off = f.off ?? 0;
  const len = f.len ?? f.buf.length - off;
  return [off, len];
}

/**
 * colo-compare's connection key of a frame as a string (setup-time only), or null when QEMU
 * would not queue the frame (§6.3: VLAN tag, not IPv4, vnet_hdr_len > 20, too short).
 */
function connKey(v: PacketView, f: FeedFrame): string | null {
  const [off, len] = frameBounds(f);
  const vnet = f.vnetHdrLen ?? 0;
  if (vnet > 20) return null;
  decodeFrame(v, f.buf, off, len, vnet);
  if ((v.layers & LAYER_IPV4) === 0 || v.vlanCount > 0) return null;
  const b = v.buf;
  const src = ((b[v.ipSrcOff]! << 24) | (b[v.ipSrcOff + 1]! << 16) | (b[v.ipSrcOff + 2]! << 8) | b[v.ipSrcOff + 3]!) >>> 0;
  const dst = ((b[v.ipDstOff]! << 24) | (b[v.ipDstOff + 1]! << 16) | (b[v.ipDstOff + 2]! << 8) | b[v.ipDstOff + 3]!) >>> 0;
  const proto = v.ipProto;
  // "Ports": the first 4 transport bytes for these protocols, bytes 4..7 for AH, else 0 (§6.4).
  const po = qemuPortsOffset(proto);
  const at = po < 0 ? -1 : v.l3Off + v.ipHdrLen + po;
  let ports = 0;
  if (at >= 0 && at + 4 <= off + len) ports = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  return `${src}:${dst}:${ports}:${proto}`;
}

function classify(frames: readonly FeedFrame[], ids: Map<string, number>, v: PacketView): Classified {
  const n = frames.length;
  const c: Classified = { conn: new Int32Array(n), prog: new Float64Array(n), noAdv: new Uint8Array(n), unqueued: 0 };
  // Per-connection TCP state of this side: highest sequence end seen, progress.
  const hi = new Map<number, number>();
  const prog = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const f = frames[i]!;
    const key = connKey(v, f);
    if (key === null) {
      c.conn[i] = -1;
      c.unqueued++;
      continue;
    }
    let id = ids.get(key);
    if (id === undefined) {
      id = ids.size;
      ids.set(key, id);
    }
    c.conn[i] = id;
    let p = prog.get(id) ?? 0;
    if ((v.layers & LAYER_TCP) !== 0 && (v.layers & LAYER_FRAG) === 0) {
      const [off, len] = frameBounds(f);
      // colo-compare's payload: from the end of the TCP header to the end of the frame.
      const plen = off + len - v.payloadOff;
      if (plen > 0) {
        const seq = v.tcpSeq;
        const end = (seq + plen) >>> 0;
        const h = hi.get(id) ?? seq;
        const d = (end - h) | 0;
        if (d > 0) {
          p += d;
          hi.set(id, end);
        } else {
          if (!hi.has(id)) hi.set(id, h);
          c.noAdv[i] = 1;
        }
      } else c.noAdv[i] = 1;
    } else {
      p += 1; // datagrams pair one to one
    }
    prog.set(id, p);
    c.prog[i] = p;
  }
  return c;
}

function hasTimes(frames: readonly FeedFrame[]): boolean {
  for (const f of frames) if (!(typeof f.timeMs === 'number' && Number.isFinite(f.timeMs))) return false;
  return true;
}

/**
 * Plan the interleaving of `primary` and `secondary` (see the module comment for the model
 * and the guarantee). Setup-time work: allocates per frame, never touches the network.
 */
export function planLockstep(primary: readonly FeedFrame[], secondary: readonly FeedFrame[], options: LockstepOptions): LockstepPlan {
  const maxAhead = options.maxAhead;
  if (!(Number.isInteger(maxAhead) && maxAhead >= 1)) throw new ColoError('ERR_INVALID_ARGUMENT', `maxAhead must be an integer >= 1, got ${maxAhead}`);
  const chunk = options.chunk ?? 16;
  if (!(Number.isInteger(chunk) && chunk >= 1)) throw new ColoError('ERR_INVALID_ARGUMENT', `chunk must be an integer >= 1, got ${chunk}`);
  const timed = hasTimes(primary) && hasTimes(secondary);
  const order: LockstepOrder = options.order ?? (timed ? 'time' : 'alternate');
  if (order === 'time' && !timed) throw new ColoError('ERR_INVALID_ARGUMENT', "order 'time' needs a finite timeMs on every frame");
  if (order !== 'time' && order !== 'alternate') throw new ColoError('ERR_INVALID_ARGUMENT', `unknown order ${String(order)}`);

  const ids = new Map<string, number>();
  const v = new PacketView();
  const cls: [Classified, Classified] = [classify(primary, ids, v), classify(secondary, ids, v)];
  const nConn = ids.size;
  const lists: [readonly FeedFrame[], readonly FeedFrame[]] = [primary, secondary];
  const nFrames: [number, number] = [primary.length, secondary.length];

  // Per side and connection: frames written, progress written, pending queue (frame indices) and its head.
  const nW = [new Float64Array(nConn), new Float64Array(nConn)];
  const progW = [new Float64Array(nConn), new Float64Array(nConn)];
  const queues: [number[][], number[][]] = [Array.from({ length: nConn }, () => []), Array.from({ length: nConn }, () => [])];
  const heads = [new Int32Array(nConn), new Int32Array(nConn)];
  const otherAtWrite = [new Float64Array(nFrames[0]), new Float64Array(nFrames[1])];
  const maxPending: [number, number] = [0, 0];
  let overruns = 0;

  const pendingCount = (s: number, k: number): number => queues[s]![k]!.length - heads[s]![k]!;
  const isPending = (s: number, i: number, k: number): boolean => {
    const o = 1 - s;
    const po = progW[o]![k]!;
    const p = cls[s]!.prog[i]!;
    return po < p || (cls[s]!.noAdv[i] === 1 && po === p && nW[o]![k] === otherAtWrite[s]![i]);
  };
  const settle = (s: number, k: number): void => {
    const q = queues[s]![k]!;
    let h = heads[s]![k]!;
    while (h < q.length && !isPending(s, q[h]!, k)) h++;
    if (h > 4096 && h * 2 > q.length) {
      q.splice(0, h); // keep plan-time memory bounded on long flows
      h = 0;
    }
    heads[s]![k] = h;
  };
  const blocked = (s: number, i: number): boolean => {
    const k = cls[s]!.conn[i]!;
    return k >= 0 && pendingCount(s, k) >= maxAhead;
  };

  const steps = new Uint32Array(nFrames[0] + nFrames[1]);
  let nSteps = 0;
  const cursor = [0, 0];
  let turn = 0;
  let inTurn = 0;
  while (cursor[0]! < nFrames[0] || cursor[1]! < nFrames[1]) {
    let s: number;
    if (cursor[0]! >= nFrames[0]) s = 1;
    else if (cursor[1]! >= nFrames[1]) s = 0;
    else if (order === 'time') s = lists[1][cursor[1]!]!.timeMs! < lists[0][cursor[0]!]!.timeMs! ? 1 : 0;
    else {
      if (inTurn >= chunk) {
        turn = 1 - turn;
        inTurn = 0;
      }
      s = turn;
    }
    if (blocked(s, cursor[s]!)) {
      const o = 1 - s;
      if (cursor[o]! < nFrames[o]! && !blocked(o, cursor[o]!)) {
        s = o;
        if (order === 'alternate') {
          turn = o;
          inTurn = 0;
        }
      } else overruns++;
    }
    if (order === 'alternate' && s !== turn) {
      // The turn's side ran out of frames.
      turn = s;
      inTurn = 0;
    }
    const i = cursor[s]!++;
    inTurn++;
    steps[nSteps++] = i * 2 + s;
    const k = cls[s]!.conn[i]!;
    if (k < 0) continue;
    const o = 1 - s;
    otherAtWrite[s]![i] = nW[o]![k]!;
    nW[s]![k]!++;
    progW[s]![k] = cls[s]!.prog[i]!;
    queues[s]![k]!.push(i);
    settle(s, k);
    settle(o, k);
    const pc = pendingCount(s, k);
    if (pc > maxPending[s]!) maxPending[s] = pc;
  }
  return { steps, order, maxAhead, overruns, maxPending, connections: nConn, unqueued: [cls[0].unqueued, cls[1].unqueued] };
}
