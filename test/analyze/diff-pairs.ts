/**
 * Hand-built capture pairs for the diff tests (frame builders + PcapWriter): one small HTTP-like
 * exchange per connection, server frames (and optionally client frames) with chosen endings.
 */
import { PcapWriter } from '../../src/capture/writer.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, tcpFrame, udpFrame } from '../../src/replay/frame-builder.js';

export const CLIENT = Uint8Array.of(192, 0, 2, 1);
export const SERVER = Uint8Array.of(192, 0, 2, 2);

export interface ConnSpec {
  cport: number;
  isn: number;
  /** Server → client payload chunks. */
  chunks: string[];
  end: 'fin' | 'rst' | 'none';
  /** Also write the client's SYN and request. */
  withClient?: boolean;
  /** Start time (s). */
  t0?: number;
  ttl?: number;
  /** Index of a chunk whose segment is never sent (a hole; later segments keep their sequence numbers). */
  drop?: number;
}

export interface Frame {
  bytes: Uint8Array;
  t: number;
}

/** Frames of one connection, server → client (client SYN first when asked). */
export function connFrames(c: ConnSpec): Frame[] {
  const out: Frame[] = [];
  let t = c.t0 ?? 1000;
  const ttl = c.ttl ?? 64;
  const cisn = 5000;
  const s = (flags: number, seq: number, payload?: Uint8Array): void => {
    out.push({ bytes: tcpFrame({ src: SERVER, dst: CLIENT, sport: 80, dport: c.cport, seq: seq >>> 0, ack: cisn + 1, flags, payload, ttl, ipId: out.length }), t: (t += 0.001) });
  };
  if (c.withClient) out.push({ bytes: tcpFrame({ src: CLIENT, dst: SERVER, sport: c.cport, dport: 80, seq: cisn, flags: TCP_SYN }), t: (t += 0.001) });
  s(TCP_SYN | TCP_ACK, c.isn);
  let seq = c.isn + 1;
  for (const [i, ch] of c.chunks.entries()) {
    const p = Buffer.from(ch);
    if (i !== c.drop) s(TCP_ACK | TCP_PSH, seq, p);
    seq += p.length;
  }
  if (c.end === 'fin') s(TCP_FIN | TCP_ACK, seq);
  if (c.end === 'rst') s(TCP_RST | TCP_ACK, seq);
  return out;
}

export function udpFrames(payloads: string[], t0 = 1000): Frame[] {
  return payloads.map((p, i) => ({ bytes: udpFrame({ src: SERVER, dst: CLIENT, sport: 53, dport: 40000, payload: Buffer.from(p) }), t: t0 + i * 0.01 }));
}

/** An Ethernet ARP frame (request op 1 / reply op 2). */
export function arpFrame(op: number, senderIp: Uint8Array, targetIp: Uint8Array, senderMac = 2): Uint8Array {
  const b = new Uint8Array(42);
  b.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, senderMac, 0x08, 0x06], 0);
  b.set([0, 1, 0x08, 0x00, 6, 4, 0, op, 0x52, 0x54, 0, 0, 0, senderMac], 14);
  b.set(senderIp, 28);
  b.set([0, 0, 0, 0, 0, 0], 32);
  b.set(targetIp, 38);
  return b;
}

/** Write frames (sorted by time) to a pcap; `linkType` 101 (raw IP) strips the Ethernet header. */
export function writePcap(path: string, frames: Frame[], linkType = 1): string {
  const w = new PcapWriter(path, { linkType });
  for (const f of [...frames].sort((a, b) => a.t - b.t)) {
    const bytes = linkType === 101 ? f.bytes.subarray(14) : f.bytes;
    const sec = Math.floor(f.t);
    w.write(bytes, 0, bytes.length, sec, Math.round((f.t - sec) * 1e9));
  }
  w.close();
  return path;
}
