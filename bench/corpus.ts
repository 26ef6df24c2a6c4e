/**
 * A benchmark corpus: every Ethernet frame of some captures preloaded into one buffer with
 * offset/length/time arrays, so a benchmark times only the stage under test, not file I/O.
 */
import { toEthernet } from '../src/capture/linktype.js';
import { recordTimeMs } from '../src/capture/merge.js';
import { openCapture } from '../src/capture/reader.js';

export interface Corpus {
  buf: Uint8Array;
  offs: Int32Array;
  lens: Int32Array;
  /** Capture time of each frame in ms. */
  ms: Float64Array;
  bytes: number;
}

export function loadCorpus(paths: readonly string[]): Corpus {
  const chunks: Uint8Array[] = [];
  const times: number[] = [];
  for (const p of paths) {
    const r = openCapture(p);
    for (let rec = r.next(); rec !== null; rec = r.next()) {
      if (!toEthernet(rec)) continue;
      chunks.push(Uint8Array.from(rec.buf.subarray(rec.off, rec.off + rec.capLen)));
      times.push(recordTimeMs(rec));
    }
    r.close();
  }
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  const buf = new Uint8Array(bytes);
  const offs = new Int32Array(chunks.length);
  const lens = new Int32Array(chunks.length);
  let o = 0;
  chunks.forEach((c, i) => {
    buf.set(c, o);
    offs[i] = o;
    lens[i] = c.length;
    o += c.length;
  });
  return { buf, offs, lens, ms: Float64Array.from(times), bytes };
}
