/**
 * `--export DIR`: the diverging packets of each side as pcapng, each with a packet comment
 * explaining the divergence (Wireshark shows it as "Packet comments"; tshark as
 * `frame.comment`). DIR/primary.pcapng and DIR/secondary.pcapng, frames in capture order.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openCapture } from '../../capture/reader.js';
import { toEthernet } from '../../capture/linktype.js';
import { PcapngWriter } from '../../capture/writer.js';
import type { DiffResult, FlowDiff } from './types.js';

export interface ExportResult {
  primary: { file: string; packets: number };
  secondary: { file: string; packets: number };
}

/** The packet comment for a flow's divergence, as seen from `side`. */
export function divergenceComment(f: FlowDiff, side: 'primary' | 'secondary'): string {
  const d = f.divergence!;
  const bytes = side === 'primary' ? d.primaryBytes : d.secondaryBytes;
  const unit = d.offsetUnit === 'byte' ? 'offset' : 'datagram';
  return `colo-proxy diff: flow #${f.index} ${f.protocol.toUpperCase()} ${f.client} <-> ${f.server}: ${d.cause} at ${d.direction} ${unit} ${d.offset} (${side} side). ${d.detail}` +
    (bytes.hex !== '' ? ` | ${side} bytes from ${bytes.offset}: ${bytes.hex} "${bytes.text}"` : '');
}

/** Write the diverging packets of `result` into `dir` (created). */
export function exportDivergences(result: DiffResult, dir: string): ExportResult {
  mkdirSync(dir, { recursive: true });
  const out: Partial<ExportResult> = {};
  for (const side of ['primary', 'secondary'] as const) {
    // frame record number → comments (a frame may carry several flows' divergences: rare).
    const want = new Map<number, string[]>();
    for (const f of result.flows) {
      if (f.divergence === null) continue;
      const frames = side === 'primary' ? f.divergence.primaryFrames : f.divergence.secondaryFrames;
      for (const n of frames) {
        const l = want.get(n);
        const c = divergenceComment(f, side);
        if (l === undefined) want.set(n, [c]);
        else l.push(c);
      }
    }
    const file = join(dir, `${side}.pcapng`);
    const w = new PcapngWriter(file);
    let packets = 0;
    const reader = openCapture(result[side].file);
    try {
      if (want.size > 0) {
        for (let rec = reader.next(); rec !== null; rec = reader.next()) {
          const c = want.get(rec.index);
          if (c === undefined || !toEthernet(rec)) continue;
          w.write(rec.buf, rec.off, rec.capLen, rec.tsSec, rec.tsNsec, { comment: c.join(' || ').slice(0, 60000), origLen: rec.origLen });
          packets++;
          want.delete(rec.index);
          if (want.size === 0) break;
        }
      }
    } finally {
      reader.close();
      w.close();
    }
    out[side] = { file, packets };
  }
  return out as ExportResult;
}
