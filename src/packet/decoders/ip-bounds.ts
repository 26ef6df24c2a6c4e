import { NOTE_ETH_PADDING, NOTE_TRUNCATED_PAYLOAD } from '../reasons.js';
import type { PacketView } from '../view.js';

/**
 * Settle where the datagram ends, given the end its header claims. Returns the captured end
 * (`v.ipEnd`), or -1 when the claim runs past the frame and past what the wire had too
 * (→ IP_LENGTH_BEYOND_FRAME). A claim within `wireLen` but past the captured bytes is a
 * snaplen-truncated capture: NOTE_TRUNCATED_PAYLOAD. Bytes after the claim are padding.
 */
export function settleIpEnd(v: PacketView, claimEnd: number, end: number): number {
  if (claimEnd > end) {
    if (claimEnd > v.frameOff + v.wireLen) return -1;
    v.notes |= NOTE_TRUNCATED_PAYLOAD;
    v.ipEnd = end;
    return end;
  }
  if (claimEnd < end) v.notes |= NOTE_ETH_PADDING;
  v.ipEnd = claimEnd;
  return claimEnd;
}
