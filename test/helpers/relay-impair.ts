/**
 * The lossy relay's impairment, one direction of one link: a seeded, deterministic decision
 * per frame to drop it, duplicate it, or hold it back and release it after the next `reorderK`
 * forwarded frames (reordering). There is no netem on these machines; this is the substitute.
 *
 * Determinism: every impairable frame consumes exactly three draws of its direction's PRNG
 * (loss, reorder, dup), whatever happens to it, so the n-th impairable frame of a direction
 * always gets the same fate for the same seed.
 *
 * Frames are opaque tokens (pool handles in the relay). `emit(t)` hands one reference to the
 * writer; `retain(t)` is called once before a duplicate is emitted (so the writer can release
 * once per emit); `discard(t)` returns a dropped frame's reference.
 */
import { mulberry32 } from './prng.js';

export interface Impairment {
  /** Probability that a frame is dropped. */
  loss?: number;
  /** Probability that a forwarded frame is sent twice. */
  dup?: number;
  /** Probability that a frame is held back (when no frame is held already). */
  reorder?: number;
  /** A held frame is released after this many later frames went out; default 3. */
  reorderK?: number;
}

export interface LinkStats {
  /** Frames offered to the link. */
  in: number;
  /** Frames emitted (duplicates included). */
  out: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  /** Frames that were not subject to impairment (e.g. ARP). */
  passed: number;
  /** Held frames released by the timer because no later frames came. */
  releasedByTimer: number;
  /** A frame still held when the relay stopped (discarded). */
  heldAtExit: number;
}

function prob(name: string, v: number | undefined): number {
  const p = v ?? 0;
  if (!(p >= 0 && p <= 1)) throw new Error(`impairment ${name} must be a probability in [0, 1], got ${v}`);
  return p;
}

export class ImpairedLink<T> {
  readonly stats: LinkStats = { in: 0, out: 0, dropped: 0, duplicated: 0, reordered: 0, passed: 0, releasedByTimer: 0, heldAtExit: 0 };
  readonly #loss: number;
  readonly #dup: number;
  readonly #reorder: number;
  readonly #k: number;
  readonly #rand: () => number;
  readonly #emit: (t: T) => void;
  readonly #retain: (t: T) => void;
  readonly #discard: (t: T) => void;
  #held: T | undefined = undefined;
  #hasHeld = false;
  #countdown = 0;
  /** When the held frame was taken (ms, caller's clock). */
  heldSince = 0;

  constructor(cfg: Impairment, seed: number, emit: (t: T) => void, retain: (t: T) => void, discard: (t: T) => void) {
    this.#loss = prob('loss', cfg.loss);
    this.#dup = prob('dup', cfg.dup);
    this.#reorder = prob('reorder', cfg.reorder);
    const k = cfg.reorderK ?? 3;
    if (!(Number.isInteger(k) && k >= 1)) throw new Error(`reorderK must be a positive integer, got ${cfg.reorderK}`);
    this.#k = k;
    this.#rand = mulberry32(seed);
    this.#emit = emit;
    this.#retain = retain;
    this.#discard = discard;
  }

  get holding(): boolean {
    return this.#hasHeld;
  }

  /** Offer one frame. `impair` false forwards it untouched (it still counts toward a release). */
  push(t: T, impair: boolean, now = 0): void {
    this.stats.in++;
    if (!impair) {
      this.stats.passed++;
      this.#forward(t, false);
      return;
    }
    const rLoss = this.#rand();
    const rReorder = this.#rand();
    const rDup = this.#rand();
    if (rLoss < this.#loss) {
      this.stats.dropped++;
      this.#discard(t);
      return;
    }
    if (!this.#hasHeld && rReorder < this.#reorder) {
      this.stats.reordered++;
      this.#held = t;
      this.#hasHeld = true;
      this.#countdown = this.#k;
      this.heldSince = now;
      return;
    }
    this.#forward(t, rDup < this.#dup);
  }

  /** Release the held frame now (the relay's timer calls this when traffic stopped). */
  releaseHeld(byTimer = true): void {
    if (!this.#hasHeld) return;
    const h = this.#held as T;
    this.#hasHeld = false;
    this.#held = undefined;
    if (byTimer) this.stats.releasedByTimer++;
    this.stats.out++;
    this.#emit(h);
  }

  /** Discard a held frame (relay shutdown). */
  discardHeld(): void {
    if (!this.#hasHeld) return;
    const h = this.#held as T;
    this.#hasHeld = false;
    this.#held = undefined;
    this.stats.heldAtExit++;
    this.#discard(h);
  }

  #forward(t: T, dup: boolean): void {
    this.stats.out++;
    this.#emit(t);
    if (dup) {
      this.stats.duplicated++;
      this.stats.out++;
      this.#retain(t);
      this.#emit(t);
    }
    if (this.#hasHeld && --this.#countdown === 0) this.releaseHeld(false);
  }
}
