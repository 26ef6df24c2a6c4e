/** TCP header (RFC 9293) and its options (RFC 7323 timestamps/window scale, RFC 2018 SACK). */
import { u16 } from '../bytes.js';
import { LAYER_PAYLOAD, LAYER_TCP } from '../layer.js';
import {
  TCPOPT_EOL,
  TCPOPT_MSS,
  TCPOPT_NOP,
  TCPOPT_SACK,
  TCPOPT_SACK_PERM,
  TCPOPT_TIMESTAMP,
  TCPOPT_WSCALE,
} from '../proto.js';
import { BAD_TCP_DATA_OFFSET, NOTE_BAD_TCP_OPTIONS, OK, TRUNCATED_TCP } from '../reasons.js';
import {
  TCP_OPT_EOL,
  TCP_OPT_MSS,
  TCP_OPT_SACK,
  TCP_OPT_SACK_PERM,
  TCP_OPT_TIMESTAMP,
  TCP_OPT_WSCALE,
  type PacketView,
} from '../view.js';
import { fail } from './fail.js';

/** Decode the TCP segment at `o`; see decodeL4 for `ipEnd`/`claimEnd`. */
export function decodeTcp(v: PacketView, b: Uint8Array, o: number, ipEnd: number, claimEnd: number): number {
  if (ipEnd - o < 20) return fail(v, TRUNCATED_TCP, LAYER_TCP);
  const hl = (b[o + 12] >> 4) << 2;
  if (hl < 20 || hl > claimEnd - o) return fail(v, BAD_TCP_DATA_OFFSET, LAYER_TCP);
  if (hl > ipEnd - o) return fail(v, TRUNCATED_TCP, LAYER_TCP);
  v.srcPort = u16(b, o);
  v.dstPort = u16(b, o + 2);
  // 32-bit reads written out, not via u32(): when the inlining budget runs out a call would
  // return its ≥ 2^30 result as a freshly boxed HeapNumber, i.e. allocate per packet.
  v.tcpSeq = ((b[o + 4] << 24) | (b[o + 5] << 16) | (b[o + 6] << 8) | b[o + 7]) >>> 0;
  v.tcpAck = ((b[o + 8] << 24) | (b[o + 9] << 16) | (b[o + 10] << 8) | b[o + 11]) >>> 0;
  v.tcpHdrLen = hl;
  v.tcpFlags = ((b[o + 12] & 0x0f) << 8) | b[o + 13];
  v.tcpWindow = u16(b, o + 14);
  v.tcpChecksum = u16(b, o + 16);
  v.tcpUrgent = u16(b, o + 18);
  if (hl > 20) {
    v.tcpOptOff = o + 20;
    v.tcpOptLen = hl - 20;
    parseTcpOptions(v, b, o + 20, o + hl);
  }
  v.layers |= LAYER_TCP | LAYER_PAYLOAD;
  const po = o + hl;
  v.payloadOff = po;
  v.payloadLen = ipEnd - po;
  v.payloadFullLen = claimEnd - po;
  return OK;
}

/**
 * Walk the options in [p, e). A malformed option (no room for its length byte, length < 2,
 * running past the header) stops the walk; a known kind with the wrong length is skipped.
 * Either sets NOTE_BAD_TCP_OPTIONS; neither fails the decode.
 */
function parseTcpOptions(v: PacketView, b: Uint8Array, p: number, e: number): void {
  let opts = 0;
  let bad = false;
  while (p < e) {
    const kind = b[p];
    if (kind === TCPOPT_EOL) {
      opts |= TCP_OPT_EOL;
      break;
    }
    if (kind === TCPOPT_NOP) {
      p++;
      continue;
    }
    if (e - p < 2) {
      bad = true;
      break;
    }
    const len = b[p + 1];
    if (len < 2 || len > e - p) {
      bad = true;
      break;
    }
    switch (kind) {
      case TCPOPT_MSS:
        if (len === 4) {
          v.tcpMss = u16(b, p + 2);
          opts |= TCP_OPT_MSS;
        } else bad = true;
        break;
      case TCPOPT_WSCALE:
        if (len === 3) {
          v.tcpWscale = b[p + 2];
          opts |= TCP_OPT_WSCALE;
        } else bad = true;
        break;
      case TCPOPT_SACK_PERM:
        if (len === 2) opts |= TCP_OPT_SACK_PERM;
        else bad = true;
        break;
      case TCPOPT_SACK:
        if (len >= 10 && ((len - 2) & 7) === 0) {
          v.tcpSackCount = (len - 2) >> 3;
          v.tcpSackOff = p + 2;
          opts |= TCP_OPT_SACK;
        } else bad = true;
        break;
      case TCPOPT_TIMESTAMP:
        if (len === 10) {
          v.tcpTsVal = ((b[p + 2] << 24) | (b[p + 3] << 16) | (b[p + 4] << 8) | b[p + 5]) >>> 0;
          v.tcpTsEcr = ((b[p + 6] << 24) | (b[p + 7] << 16) | (b[p + 8] << 8) | b[p + 9]) >>> 0;
          opts |= TCP_OPT_TIMESTAMP;
        } else bad = true;
        break;
      default:
        break;
    }
    p += len;
  }
  v.tcpOpts = opts;
  if (bad) v.notes |= NOTE_BAD_TCP_OPTIONS;
}
