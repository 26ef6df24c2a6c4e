/**
 * Per-flow state for the flow table: the timeout classes a flow moves through, and the light
 * TCP close tracking the table does by itself (FIN each way, the ACK of each FIN, RST). This
 * is not TCP reassembly (the reassembler owns sequence spaces); it only decides when a
 * connection is over so its entry can go after a short linger.
 */
import type { PacketView } from '../packet/view.js';

/**
 * Timeout classes. A flow is on exactly one class list at a time; every flow of a class has
 * the same idle timeout, so each list is ordered by expiry and expiry only looks at heads.
 */
export const STATE_TCP_EMBRYONIC = 0;
export const STATE_TCP_ESTABLISHED = 1;
/** A FIN was seen (one or both ways) but the close has not completed. */
export const STATE_TCP_CLOSING = 2;
/** FIN both ways and both acknowledged, or a RST: lingers for `tcpCloseLingerMs`. */
export const STATE_TCP_CLOSED = 3;
export const STATE_UDP = 4;
export const STATE_ICMP = 5;
export const STATE_OTHER = 6;
export const STATE_COUNT = 7;

export const FlowState = {
  TCP_EMBRYONIC: STATE_TCP_EMBRYONIC,
  TCP_ESTABLISHED: STATE_TCP_ESTABLISHED,
  TCP_CLOSING: STATE_TCP_CLOSING,
  TCP_CLOSED: STATE_TCP_CLOSED,
  UDP: STATE_UDP,
  ICMP: STATE_ICMP,
  OTHER: STATE_OTHER,
} as const;
export type FlowStateName = keyof typeof FlowState;

const STATE_NAMES = Object.keys(FlowState) as FlowStateName[];

/** Name of a state number (cold path). */
export function flowStateName(s: number): FlowStateName | 'NONE' {
  return STATE_NAMES[s] ?? 'NONE';
}

/** Per-flow flag bits (one Uint8 per flow). */
export const F_INIT_LO = 1 << 0;
export const F_FIN0 = 1 << 1;
export const F_FIN1 = 1 << 2;
export const F_FINACK0 = 1 << 3;
export const F_FINACK1 = 1 << 4;
export const F_RST = 1 << 5;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

/** The state a new TCP flow starts in, from the flags of its first packet. */
export function tcpInitialState(tcpFlags: number): number {
  if ((tcpFlags & TCP_RST) !== 0) return STATE_TCP_CLOSED;
  if ((tcpFlags & TCP_SYN) !== 0) return STATE_TCP_EMBRYONIC;
  // Mid-stream pickup (capture or proxy started after the handshake): established, like conntrack.
  return STATE_TCP_ESTABLISHED;
}

/**
 * Update the close-tracking flags `s` (F_* bits) of flow `id` for TCP packet `v` sent in
 * direction `dir`. Returns `newState << 8 | newFlags`. `state` is the flow's current state
 * (for a new flow, the result of `tcpInitialState`); `bothSeen` says whether packets have
 * now been seen in both directions; `finSeq[2 * id + dir]` holds each direction's FIN
 * sequence number once its FIN has been seen.
 *
 * - RST (any, not sequence-checked: the table is no firewall) → CLOSED, flagged F_RST, unless
 *   the flow had already closed with FINs (a RST answering a late segment after a clean close
 *   does not turn it into an abort).
 * - FIN from `dir`: its sequence number (seq + segment length, + 1 for a SYN) is recorded the
 *   first time; a retransmitted FIN changes nothing.
 * - ACK from `dir` acknowledging the other direction's FIN (ack ≥ FIN seq + 1, RFC 1982
 *   arithmetic) sets that FIN's ACK flag.
 * - Both FINs acknowledged → CLOSED; any FIN → CLOSING; an embryonic flow becomes ESTABLISHED
 *   with its first non-SYN packet once both directions have been seen.
 * CLOSED is final: retransmissions during the linger change nothing.
 */
export function trackTcp(s: number, finSeq: Int32Array, id: number, dir: number, v: PacketView, state: number, bothSeen: boolean): number {
  const f = v.tcpFlags;
  if (state === STATE_TCP_CLOSED) {
    if ((f & TCP_RST) !== 0 && (s & (F_FINACK0 | F_FINACK1)) !== (F_FINACK0 | F_FINACK1)) s |= F_RST;
    return (STATE_TCP_CLOSED << 8) | s;
  }
  if ((f & TCP_RST) !== 0) return (STATE_TCP_CLOSED << 8) | s | F_RST;
  if ((f & TCP_FIN) !== 0) {
    const bit = dir === 0 ? F_FIN0 : F_FIN1;
    if ((s & bit) === 0) {
      s |= bit;
      finSeq[2 * id + dir] = (v.tcpSeq + v.payloadFullLen + ((f & TCP_SYN) !== 0 ? 1 : 0)) | 0;
    }
  }
  if ((f & TCP_ACK) !== 0) {
    const o = dir ^ 1;
    const finBit = o === 0 ? F_FIN0 : F_FIN1;
    const ackBit = o === 0 ? F_FINACK0 : F_FINACK1;
    if ((s & finBit) !== 0 && (s & ackBit) === 0 && ((v.tcpAck - finSeq[2 * id + o]! - 1) | 0) >= 0) s |= ackBit;
  }
  let next = state;
  if ((s & (F_FINACK0 | F_FINACK1)) === (F_FINACK0 | F_FINACK1)) next = STATE_TCP_CLOSED;
  else if ((s & (F_FIN0 | F_FIN1)) !== 0) next = STATE_TCP_CLOSING;
  else if (state === STATE_TCP_EMBRYONIC && bothSeen && (f & TCP_SYN) === 0) next = STATE_TCP_ESTABLISHED;
  return (next << 8) | s;
}
