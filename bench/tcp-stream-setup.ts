/**
 * Benchmarks that feed a TcpReassembler directly (no decoder): open the stream with a SYN at
 * `isn`, then leave the view set up for data segments of `mss` bytes (the caller sets `buf`,
 * `payloadOff` and `tcpSeq` per segment).
 */
import type { TcpReassembler } from '../src/flow/tcp-reassembler.js';
import { LAYER_PAYLOAD, LAYER_TCP } from '../src/packet/layer.js';
import { NO_HANDLE } from '../src/packet/pool.js';
import type { PacketView } from '../src/packet/view.js';

export function openStream(r: TcpReassembler, v: PacketView, isn: number, mss: number): void {
  v.layers = LAYER_TCP | LAYER_PAYLOAD;
  v.tcpFlags = 0x02;
  v.tcpSeq = isn;
  v.payloadLen = 0;
  v.payloadFullLen = 0;
  r.segment(v, 0, NO_HANDLE, 0);
  v.tcpFlags = 0x10;
  v.payloadLen = mss;
  v.payloadFullLen = mss;
}
