/**
 * Reads several captures as one stream in timestamp order (a k-way merge): the compare
 * command's `pcap:` inputs, the replay harness and the divergence analyzer all consume a
 * primary and a secondary capture this way.
 *
 * Zero copy: each source keeps its reader's current record; `next()` returns the index of the
 * source whose record is earliest, and that record stays valid until the following `next()`
 * (only the consumed source is advanced). Records are normalised to Ethernet with
 * `toEthernet`; records of link types that cannot be normalised are skipped and counted.
 * Ties keep source order (source 0 first), so the merge is deterministic.
 */
import { toEthernet } from './linktype.js';
import { openCapture, type CaptureReader, type CaptureRecord } from './reader.js';

export interface MergeSourceStats {
  path: string;
  records: number;
  /** Records skipped because their link type cannot be turned into Ethernet. */
  notEthernet: number;
}

export class CaptureMerge {
  readonly #readers: CaptureReader[];
  /** Current record per source, or null when that source is exhausted. */
  readonly #cur: (CaptureRecord | null)[];
  /** Source consumed by the last `next()`; advanced lazily on the following call. */
  #pending = -1;
  readonly #stats: MergeSourceStats[];

  /** Opens every path (throws CaptureError for a file that is not a capture, closing the others). */
  constructor(paths: readonly string[]) {
    this.#readers = [];
    try {
      for (const p of paths) this.#readers.push(openCapture(p));
    } catch (e) {
      for (const r of this.#readers) r.close();
      throw e;
    }
    this.#stats = paths.map((path) => ({ path, records: 0, notEthernet: 0 }));
    this.#cur = this.#readers.map(() => null);
    for (let i = 0; i < this.#readers.length; i++) this.#advance(i);
  }

  /**
   * Index of the source holding the earliest remaining record (read it with `record(i)`), or
   * -1 when every source is exhausted. A damaged record throws its CaptureError as soon as its
   * source is advanced to it (its timestamp is unknowable, so the merge cannot place it): every
   * record returned so far was complete and in order; later records of the other sources have
   * not been returned.
   */
  next(): number {
    if (this.#pending >= 0) {
      this.#advance(this.#pending);
      this.#pending = -1;
    }
    let best = -1;
    let bs = 0;
    let bn = 0;
    for (let i = 0; i < this.#cur.length; i++) {
      const r = this.#cur[i];
      if (r === null || r === undefined) continue;
      if (best < 0 || r.tsSec < bs || (r.tsSec === bs && r.tsNsec < bn)) {
        best = i;
        bs = r.tsSec;
        bn = r.tsNsec;
      }
    }
    this.#pending = best;
    return best;
  }

  /** The current record of source `i` (valid until the next `next()`). */
  record(i: number): CaptureRecord {
    const r = this.#cur[i];
    if (!r) throw new RangeError(`source ${i} has no current record`);
    return r;
  }

  stats(): MergeSourceStats[] {
    return this.#stats.map((s) => ({ ...s }));
  }

  close(): void {
    for (const r of this.#readers) r.close();
  }

  #advance(i: number): void {
    const reader = this.#readers[i]!;
    const st = this.#stats[i]!;
    this.#cur[i] = null;
    for (let r = reader.next(); r !== null; r = reader.next()) {
      st.records++;
      if (toEthernet(r)) {
        this.#cur[i] = r;
        return;
      }
      st.notEthernet++;
    }
  }
}

/** Milliseconds (fractional) of a record's timestamp; exact to well under a microsecond. */
export function recordTimeMs(r: CaptureRecord): number {
  return r.tsSec * 1000 + r.tsNsec / 1e6;
}
