/**
 * Synthetic TCP captures for `flows` tests: hand-made sessions (IPv4 or IPv6, any ISN,
 * reordering, retransmission, port reuse) written with the engine's PcapWriter, so tshark can
 * be the oracle on them too. Checksums are computed (tshark does not check them by default,
 * but the frames stay valid for any tool).
 */
import { PcapWriter } from '../../src/capture/writer.js';
import { eth, ip4, ip6, ipv4, ipv6, naiveL4Checksum, set16, tcp, type Bytes } from '../packet/build.js';

export const F = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

export interface Host {
  ip: string;
  port: number;
}

/** One TCP segment as a complete Ethernet frame. */
export function tcpFrame(src: Host, dst: Host, seq: number, ack: number, flags: number, payload: Bytes | Uint8Array = []): Uint8Array {
  const v6 = src.ip.includes(':');
  const s = v6 ? ip6(src.ip) : ip4(src.ip);
  const d = v6 ? ip6(dst.ip) : ip4(dst.ip);
  const seg = tcp({ sport: src.port, dport: dst.port, seq: seq >>> 0, ack: ack >>> 0, flags, window: 65535 }, [...payload]);
  set16(seg, 16, naiveL4Checksum(s, d, 6, seg));
  const l3 = v6 ? ipv6({ nh: 6, src: s, dst: d }, seg) : ipv4({ proto: 6, src: s, dst: d }, seg);
  return Uint8Array.from(eth(v6 ? 0x86dd : 0x0800, l3));
}

/** Writes frames with timestamps 1 ms apart (or as given). */
export class SynthCapture {
  readonly #w: PcapWriter;
  #ms = 1_700_000_000_000;

  constructor(path: string) {
    this.#w = new PcapWriter(path);
  }

  /** Append a frame, `advanceMs` after the previous one. */
  frame(f: Uint8Array, advanceMs = 1): void {
    this.#ms += advanceMs;
    this.#w.write(f, 0, f.length, Math.floor(this.#ms / 1000), (this.#ms % 1000) * 1_000_000);
  }

  close(): void {
    this.#w.close();
  }
}

/**
 * A TCP session between `client` and `server` that tracks both sides' next sequence numbers,
 * so tests only say what is sent. `segment` builds without writing (for reordering).
 */
export class Session {
  readonly client: Host;
  readonly server: Host;
  /** Next sequence number of each side (0 = client, 1 = server). */
  readonly nxt: [number, number];

  constructor(client: Host, server: Host, isnClient: number, isnServer: number) {
    this.client = client;
    this.server = server;
    this.nxt = [isnClient >>> 0, isnServer >>> 0];
  }

  /** Frame of `from`'s segment with `payload` at its next sequence number (advanced). */
  segment(from: 0 | 1, payload: Bytes | Uint8Array, flags: number = F.ACK | F.PSH): Uint8Array {
    const f = this.at(from, this.nxt[from], payload, flags);
    this.nxt[from] = (this.nxt[from] + payload.length + ((flags & (F.SYN | F.FIN)) !== 0 ? 1 : 0)) >>> 0;
    return f;
  }

  /** Frame of `from`'s segment at an explicit sequence number (nothing advanced). */
  at(from: 0 | 1, seq: number, payload: Bytes | Uint8Array, flags: number = F.ACK | F.PSH): Uint8Array {
    const [s, d] = from === 0 ? [this.client, this.server] : [this.server, this.client];
    const ack = (flags & F.ACK) !== 0 ? this.nxt[from === 0 ? 1 : 0] : 0;
    return tcpFrame(s, d, seq, ack, flags, payload);
  }

  /** SYN, SYN-ACK, ACK. */
  handshake(cap: SynthCapture): void {
    cap.frame(this.segment(0, [], F.SYN));
    cap.frame(this.segment(1, [], F.SYN | F.ACK));
    cap.frame(this.segment(0, [], F.ACK));
  }

  /** FIN from the client, FIN-ACK from the server, last ACK. */
  close(cap: SynthCapture): void {
    cap.frame(this.segment(0, [], F.FIN | F.ACK));
    cap.frame(this.segment(1, [], F.FIN | F.ACK));
    cap.frame(this.segment(0, [], F.ACK));
  }
}

/** `n` deterministic pseudo-random bytes (seeded LCG), so payloads differ between tests. */
export function bytesOf(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
