/**
 * One VM's side of one TCP direction (the guest's output), as a COLO compare input sees it:
 * its SYN / SYN-ACK carries `isn`; its data is sent with sequence numbers `dataBase + offset`.
 * For the primary, and for a secondary whose data is in its own space, dataBase = isn + 1.
 * For a secondary behind QEMU's filter-rewriter (passive open), dataBase = the PRIMARY's
 * isn + 1 while its SYN-ACK keeps its own isn.
 */
import { ACK, FIN, PSH, SYN, seqAdd, streamBytes, tcpFrame, type FrameOpts, type Host } from './frames.js';

export class Sender {
  constructor(
    readonly src: Host,
    readonly dst: Host,
    readonly isn: number,
    readonly dataBase: number,
    /** The stream this side sends (offset 0 = first byte after the SYN). */
    readonly stream: Uint8Array,
    /** The ack number it carries (irrelevant to the compare; fixed). */
    readonly ackNo = 1000,
  ) {}

  /** SYN-ACK (passive open) or SYN (active open: `active`). */
  syn(active = false, o: FrameOpts = {}): Uint8Array {
    return tcpFrame(this.src, this.dst, this.isn, active ? 0 : this.ackNo, active ? SYN : SYN | ACK, [], o);
  }

  /** Data segment carrying stream bytes [off, off + len), optionally with FIN. */
  data(off: number, len: number, o: FrameOpts = {}, fin = false, bytes?: Uint8Array): Uint8Array {
    const payload = bytes ?? this.stream.subarray(off, off + len);
    return tcpFrame(this.src, this.dst, seqAdd(this.dataBase, off), this.ackNo, ACK | PSH | (fin ? FIN : 0), payload, o);
  }

  /** Pure ACK whose sequence number is stream offset `off`. */
  ack(off: number, o: FrameOpts = {}): Uint8Array {
    return tcpFrame(this.src, this.dst, seqAdd(this.dataBase, off), this.ackNo, ACK, [], o);
  }

  /** FIN (no data) at stream offset `off`. */
  fin(off: number, o: FrameOpts = {}): Uint8Array {
    return tcpFrame(this.src, this.dst, seqAdd(this.dataBase, off), this.ackNo, FIN | ACK, [], o);
  }

  rst(off: number, o: FrameOpts = {}): Uint8Array {
    return tcpFrame(this.src, this.dst, seqAdd(this.dataBase, off), 0, 0x04, [], o);
  }

  /** Frames of the whole stream cut into `mss`-byte segments, FIN on the last one. */
  segments(mss: number, o: FrameOpts = {}, withFin = true): Uint8Array[] {
    const out: Uint8Array[] = [];
    const n = this.stream.length;
    for (let off = 0; off < n; off += mss) {
      const len = Math.min(mss, n - off);
      out.push(this.data(off, len, o, withFin && off + len === n));
    }
    if (n === 0 && withFin) out.push(this.fin(0, o));
    return out;
  }
}

/** The guest (server) and the client of the one-connection scenarios. */
export const GUEST: Host = { ip: '10.0.0.2', port: 80 };
export const CLIENT: Host = { ip: '10.0.0.1', port: 40000 };

/**
 * The primary's and the secondary's senders of one connection GUEST → CLIENT carrying `len`
 * bytes of stream `seed`: `p` and `s` are each side's ISN and data base; `edit` changes the
 * secondary's copy of the stream (the divergence a scenario builds).
 */
export function senderPair(
  len: number, seed: number, p: readonly [number, number], s: readonly [number, number], edit?: (b: Uint8Array) => void,
): { stream: Uint8Array; P: Sender; S: Sender } {
  const stream = streamBytes(len, seed);
  const sStream = edit === undefined ? stream : Uint8Array.from(stream);
  edit?.(sStream);
  return { stream, P: new Sender(GUEST, CLIENT, p[0], p[1], stream), S: new Sender(GUEST, CLIENT, s[0], s[1], sStream) };
}
