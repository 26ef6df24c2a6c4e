/** Test helper: every frame of a capture, copied out of the reader's reused buffer. */
import { readdirSync } from 'node:fs';
import { openCapture } from '../../src/capture/reader.js';
import { toEthernet } from '../../src/capture/linktype.js';
import { PCAPPP } from '../helpers/paths.js';

export interface Frame {
  /** 1-based frame number, as tshark counts. */
  no: number;
  bytes: Uint8Array;
  origLen: number;
  /** False when the link type could not be normalised to Ethernet. */
  ethernet: boolean;
}

/** Read all records of `path` (Ethernet-normalised where possible). */
export function loadFrames(path: string): Frame[] {
  const r = openCapture(path);
  const out: Frame[] = [];
  try {
    for (let rec = r.next(); rec !== null; rec = r.next()) {
      const ethernet = toEthernet(rec);
      out.push({ no: out.length + 1, bytes: Uint8Array.from(rec.buf.subarray(rec.off, rec.off + rec.capLen)), origLen: rec.origLen, ethernet });
    }
  } finally {
    r.close();
  }
  return out;
}

/** Every capture file under the shared PcapPlusPlus folder. */
export function allCaptures(): string[] {
  return readdirSync(PCAPPP)
    .filter((f) => /\.(pcap|pcapng)$/.test(f))
    .sort();
}
