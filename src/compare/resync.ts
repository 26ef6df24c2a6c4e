/**
 * Resync: the shadow-mode choice of where two TCP streams line up again after a divergence.
 *
 * In shadow mode no checkpoint really resynchronises the secondary, so after one the engine
 * must guess how the two streams continue. The guess is made from the bytes that FOLLOW the
 * divergence: from the diverging offset D on, both sides' bytes are copied here (at most `cap`
 * per side: the flow's held-bytes budget, as for the compare queue), and once the checkpoint
 * has completed `decide` looks for a pair (a, b) — P[D + a …] lines up with S[D + b …] — in
 * this order:
 *
 * 1. proof: RESYNC_PROOF equal bytes P[a, a + K) = S[b, b + K), both within the first
 *    RESYNC_WINDOW bytes of each side, the cheapest first: cost max(a, b) (how far the changed
 *    region reaches), then one lining up both sides' current ends, then the smaller a + b.
 *    Covers a changed run of equal length
 *    (b = a), inserted (b > a) and missing (b < a) bytes, a run replaced by one of another
 *    length, and does not mistake a period of repetitive data for a shift;
 * 2. tail: the cheapest alignment whose ≥ RESYNC_TAIL equal bytes run to the end of the
 *    shorter side has the two sides' current ends lined up (typical of a request/response
 *    protocol: both sent the whole response and wait);
 * 3. end: both streams ended (FIN): aligned at their ends (any equal tail is compared);
 * Repetitive data (the deciding bytes occur again in the kept bytes) fits several shifts
 * equally well; rules 1 and 2 then wait, and only the streams' ends decide (rule 3 takes the
 * cheapest proof that lines the FINs up, else the equal tail). Once both sides filled the
 * search window, the cheapest such shift is also taken when the two sides' current ends agree
 * with it; lining up current ends that do not (one side far ahead, e.g. a whole response sent
 * in a few large segments against the other's first ones) would pick a wrong shift, so that
 * waits for the ends or the timeout.
 *
 * 4. otherwise nothing yet (wait). Forced (the held primary frames reached compare_timeout),
 *    no candidate at all although both sides filled the search window, or more than `cap`
 *    bytes: each side's own end (less any equal tail, which is compared), the old rule. A
 *    wrong guess is then simply the next divergence, which checkpoints again (by then it is a
 *    real one).
 *
 * Cold path only (after a divergence, shadow mode). Buffers grow on demand up to the window and
 * are dropped with the object. The proof search runs again only after a side grew by
 * RESYNC_PROOF bytes or an eighth, so its cost stays bounded however the bytes are segmented
 * (worst case, two unrelated 4 KiB windows: a few dozen searches, tens of ms).
 */

/** Bytes of each side searched for a proof (and so the largest shift that can be found). */
export const RESYNC_WINDOW = 4096;
/** Equal bytes that prove an alignment. */
export const RESYNC_PROOF = 32;
/** Equal trailing bytes that accept an alignment whose ends line up, with fewer than RESYNC_PROOF at hand. */
export const RESYNC_TAIL = 16;

/** `decide` results. */
export const RS_WAIT = 0;
export const RS_PROOF = 1;
export const RS_TAIL = 2;
export const RS_END = 3;
/** Forced with nothing better: each side's own end (less any equal tail, which is compared). */
export const RS_FORCED = 4;
/** The window overflowed or a side skipped bytes: the caller anchors at the delivered ends. */
export const RS_BROKEN = 5;
/** Both sides filled the search window without any candidate: each side's own end (less any equal tail). */
export const RS_NO_MATCH = 6;

const INITIAL = 512;

export class Resync {
  /** Absolute stream offsets of the diverging byte on each side. */
  readonly pStart: number;
  readonly sStart: number;
  /** Most bytes kept per side. */
  readonly cap: number;
  #p: Buffer = Buffer.allocUnsafe(INITIAL);
  #s: Buffer = Buffer.allocUnsafe(INITIAL);
  np = 0;
  ns = 0;
  /** More bytes came than the window holds, or a side skipped bytes: only own ends remain. */
  broken = false;
  /** The checkpoint completed: decide as soon as the bytes allow. */
  settled = false;
  /** The decision (valid after RS_PROOF / RS_TAIL / RS_END). */
  a = 0;
  b = 0;
  /** Window sizes (P, S) at the last proof search (-1: none yet), and its cheapest candidate (-1: none). */
  #lastPw = -1;
  #lastSw = -1;
  #cA = -1;
  #cB = -1;
  /** The candidate ties with another at a different shift and does not line the ends up. */
  #cAmbiguous = false;
  /** The last search took lined-up candidates only (both streams had ended). */
  #lastLined = false;

  constructor(pStart: number, sStart: number, cap: number) {
    this.pStart = pStart;
    this.sStart = sStart;
    this.cap = cap > RESYNC_WINDOW ? cap : RESYNC_WINDOW;
  }

  /** Side 0 (primary) or 1 (secondary) bytes kept so far. */
  bytes(side: number): Buffer {
    return side === 0 ? this.#p : this.#s;
  }

  /** Bytes `buf[off, off + len)` of `side` at absolute stream offset `at` (contiguous with the previous ones). */
  add(side: number, buf: Uint8Array, off: number, len: number, at: number): void {
    if (this.broken) return;
    const n = side === 0 ? this.np : this.ns;
    const pos = at - (side === 0 ? this.pStart : this.sStart);
    if (pos > n) {
      this.broken = true;
      return;
    }
    // Bytes already kept (cannot happen with in-order delivery; harmless).
    const skip = n - pos;
    if (skip >= len) return;
    off += skip;
    len -= skip;
    if (n + len > this.cap) {
      this.broken = true;
      return;
    }
    let dst = side === 0 ? this.#p : this.#s;
    if (n + len > dst.length) {
      let cap = dst.length * 2;
      while (cap < n + len) cap *= 2;
      const nb = Buffer.allocUnsafe(cap < this.cap ? cap : this.cap);
      dst.copy(nb, 0, 0, n);
      dst = nb;
      if (side === 0) this.#p = nb;
      else this.#s = nb;
    }
    dst.set(buf.subarray(off, off + len), n);
    if (side === 0) this.np = n + len;
    else this.ns = n + len;
  }

  /**
   * Choose the alignment with the bytes at hand. `pDone` / `sDone`: that side's stream ended
   * (FIN) with every byte kept here; `force`: decide now whatever is known. Returns RS_WAIT
   * or how it decided (then `a`, `b` are set, except for RS_BROKEN).
   */
  decide(pDone: boolean, sDone: boolean, force: boolean): number {
    if (this.broken) return RS_BROKEN;
    if (this.#prove(pDone, sDone, force)) return RS_PROOF;
    const np = this.np;
    const ns = this.ns;
    if (force && this.#cA >= 0 && !this.#cAmbiguous) {
      this.a = this.#cA;
      this.b = this.#cB;
      return RS_FORCED;
    }
    const full = np >= RESYNC_WINDOW && ns >= RESYNC_WINDOW;
    if (full && this.#cA >= 0 && !force && !(pDone && sDone)) {
      // Repetitive data past the window (an unambiguous candidate would have been proved):
      // several shifts fit, and lining up the current ends is no guide while one side is
      // still far ahead (a response delivered in a few large segments against one still
      // coming). Take the cheapest shift once the ends agree with it, else wait for the
      // streams' ends or the timeout.
      if (ns - np !== this.#cB - this.#cA) return RS_WAIT;
      this.a = this.#cA;
      this.b = this.#cB;
      return RS_PROOF;
    }
    const c = this.#commonTail();
    // Ends that line up with an equal tail: taken if that is (one of) the cheapest alignments
    // the bytes allow, else wait (repetitive data lines up in many wrong ways too).
    if (c >= RESYNC_TAIL && this.#tail()) return RS_TAIL;
    let how = RS_WAIT;
    if (pDone && sDone) how = RS_END;
    else if (force) how = RS_FORCED;
    else if (full && this.#cA < 0) how = RS_NO_MATCH;
    if (how !== RS_WAIT) {
      this.a = np - c;
      this.b = ns - c;
    }
    return how;
  }

  /**
   * The tail rule: the cheapest (a, b) (as for the proof) whose ≥ RESYNC_TAIL equal bytes run
   * to the end of the shorter side; among equally cheap ones, one whose ends line up is
   * preferred. Taken (a, b set) only when that one's ends line up.
   */
  #tail(): boolean {
    const T = RESYNC_TAIL;
    const np = this.np;
    const ns = this.ns;
    const p = this.#p;
    const hay = this.#s.subarray(0, ns);
    let best = Infinity;
    let bestA = -1;
    let bestB = -1;
    let bestLined = false;
    for (let a = 0; a + T <= np && a <= best; a++) {
      const needle = p.subarray(a, a + T);
      for (let b = hay.indexOf(needle); b >= 0; b = hay.indexOf(needle, b + 1)) {
        const cost = a > b ? a : b;
        if (cost > best) break; // later b cost more
        const len = np - a < ns - b ? np - a : ns - b;
        if (p.compare(hay, b, b + len, a, a + len) !== 0) continue;
        const lined = np - a === ns - b;
        if (cost < best || (lined && !bestLined) || (lined === bestLined && a + b < bestA + bestB)) {
          best = cost;
          bestA = a;
          bestB = b;
          bestLined = lined;
        }
      }
    }
    if (!bestLined || this.#repeats(bestA, bestB, T)) return false;
    this.a = bestA;
    this.b = bestB;
    return true;
  }

  /** Length of the longest common suffix of the kept bytes. */
  #commonTail(): number {
    const p = this.#p;
    const s = this.#s;
    let i = this.np;
    let j = this.ns;
    while (i > 0 && j > 0 && p[i - 1] === s[j - 1]) {
      i--;
      j--;
    }
    return this.np - i;
  }

  /**
   * The proof rule: the cheapest (a, b) — cost max(a, b), i.e. the bytes a changed region
   * spans, then ends lined up, then the smaller a + b — whose RESYNC_PROOF bytes agree,
   * accepted once no cheaper one can still appear (each side held every position up to the
   * cost, is complete, or filled the window, at the last search) and it is not an ambiguous
   * tie. Searched again only when a side grew enough (or ended, or `force`), so a long run of
   * unrelated bytes costs few searches. On success sets a, b.
   */
  #prove(pDone: boolean, sDone: boolean, force: boolean): boolean {
    const K = RESYNC_PROOF;
    const W = RESYNC_WINDOW;
    const pw = this.np < W ? this.np : W;
    const sw = this.ns < W ? this.ns : W;
    // Search again after a side grew by K bytes or an eighth (whichever is more: a few dozen
    // searches at most per window), ended, or when forced.
    const lp = this.#lastPw;
    const ls = this.#lastSw;
    // Both streams ended: only an alignment that lines their ends up avoids a length divergence.
    const linedOnly = pDone && sDone;
    const again =
      lp < 0 ||
      linedOnly !== this.#lastLined ||
      pw - lp >= (lp >> 3 > K ? lp >> 3 : K) ||
      sw - ls >= (ls >> 3 > K ? ls >> 3 : K) ||
      (pDone && pw !== lp) ||
      (sDone && sw !== ls) ||
      // A side just filled the window: its last search must cover the whole of it.
      (pw === W && lp !== W) ||
      (sw === W && ls !== W) ||
      (force && (pw !== lp || sw !== ls));
    if (again) {
      this.#search(pw, sw, linedOnly);
      this.#lastLined = linedOnly;
      this.#lastPw = pw;
      this.#lastSw = sw;
    }
    if (this.#cA < 0) return false;
    const need = (this.#cA > this.#cB ? this.#cA : this.#cB) + K;
    const pOk = this.#lastPw >= need || this.#lastPw >= W || (pDone && this.#lastPw === pw);
    const sOk = this.#lastSw >= need || this.#lastSw >= W || (sDone && this.#lastSw === sw);
    if (!pOk || !sOk || this.#cAmbiguous) return false;
    this.a = this.#cA;
    this.b = this.#cB;
    return true;
  }

  /**
   * Cheapest candidate within the first `pw` / `sw` kept bytes (cold: native substring search).
   * Cost max(a, b); among equally cheap ones, first one that lines the two sides' current ends
   * up, then the smaller a + b. Equally cheap candidates at different shifts happen in
   * repetitive data (a needle also occurs a period away): only the ends can tell, so such a
   * tie is marked ambiguous (`linedOnly`: the ends are final, only lined-up candidates count).
   */
  #search(pw: number, sw: number, linedOnly: boolean): void {
    const K = RESYNC_PROOF;
    const p = this.#p;
    const hay = this.#s.subarray(0, sw);
    const shift = this.ns - this.np;
    let best = Infinity;
    let bestA = -1;
    let bestB = -1;
    let bestLined = false;
    let ambiguous = false;
    for (let a = 0; a + K <= pw && a <= best && sw >= K; a++) {
      const needle = p.subarray(a, a + K);
      const bl = a + shift;
      let b = linedOnly ? (bl >= 0 && bl + K <= sw && p.compare(hay, bl, bl + K, a, a + K) === 0 ? bl : -1) : hay.indexOf(needle);
      for (; b >= 0; b = linedOnly ? -1 : hay.indexOf(needle, b + 1)) {
        const cost = a > b ? a : b;
        if (cost > best) break; // later occurrences cost more
        const lined = b === bl;
        if (cost < best) {
          ambiguous = false;
        } else {
          if (b - a !== bestB - bestA) ambiguous = true;
          if (!((lined && !bestLined) || (lined === bestLined && a + b < bestA + bestB))) continue;
        }
        best = cost;
        bestA = a;
        bestB = b;
        bestLined = lined;
      }
    }
    this.#cA = bestA;
    this.#cB = bestB;
    this.#cAmbiguous = !linedOnly && bestA >= 0 && (ambiguous || this.#repeats(bestA, bestB, K));
  }

  /**
   * Whether the K bytes at P[a] = S[b] occur again in either side's kept bytes: repetitive data,
   * where several shifts fit equally well and only the streams' ends tell which one is right.
   */
  #repeats(a: number, b: number, K: number): boolean {
    const needle = this.#p.subarray(a, a + K);
    const p = this.#p.subarray(0, this.np);
    const s = this.#s.subarray(0, this.ns);
    return p.indexOf(needle) !== a || p.indexOf(needle, a + 1) >= 0 || s.indexOf(needle) !== b || s.indexOf(needle, b + 1) >= 0;
  }
}
