/**
 * Pacing for replays (like tcpreplay's `--topspeed`, `--multiplier`, `--pps`): tells a replay
 * loop how long to wait before the next packet. Pure arithmetic on caller-supplied clocks, so
 * it is testable without sleeping; `waitUntil` does the sleeping for live use.
 */
export type PaceMode =
  | { kind: 'topspeed' }
  /** Capture timing scaled: 1 = real time, 2 = twice as fast. */
  | { kind: 'multiplier'; factor: number }
  /** Fixed packets per second, ignoring capture timestamps. */
  | { kind: 'pps'; rate: number };

/** Parse `topspeed`, `realtime`, `x2.5` / `multiplier:2.5`, `pps:10000`. */
export function parsePace(spec: string): PaceMode {
  const s = spec.trim().toLowerCase();
  if (s === 'topspeed' || s === 'max') return { kind: 'topspeed' };
  if (s === 'realtime') return { kind: 'multiplier', factor: 1 };
  const m = /^(?:x|multiplier:)(\d+(?:\.\d+)?)$/.exec(s);
  if (m) {
    const factor = Number(m[1]);
    if (factor > 0 && Number.isFinite(factor)) return { kind: 'multiplier', factor };
  }
  const p = /^pps:(\d+(?:\.\d+)?)$/.exec(s);
  if (p) {
    const rate = Number(p[1]);
    if (rate > 0 && Number.isFinite(rate)) return { kind: 'pps', rate };
  }
  throw new RangeError(`bad pace "${spec}": expected topspeed, realtime, xFACTOR (e.g. x2), multiplier:FACTOR or pps:RATE`);
}

export class Pacer {
  readonly mode: PaceMode;
  #anchored = false;
  #startWall = 0;
  #startCapture = 0;
  #count = 0;

  constructor(mode: PaceMode) {
    this.mode = mode;
  }

  /**
   * Anchor both clocks: wall time `wallMs` is capture time `captureMs`, and the first `pps`
   * packet is due at `wallMs`. Without it the first `due` call anchors at its own arguments.
   */
  anchor(wallMs: number, captureMs: number): void {
    this.#anchored = true;
    this.#startWall = wallMs;
    this.#startCapture = captureMs;
  }

  /**
   * Wall-clock time (ms, same clock as `nowMs`) at which the packet stamped `captureMs` is
   * due. The first packet is due at once and anchors both clocks.
   */
  due(captureMs: number, nowMs: number): number {
    const n = this.#count++;
    if (!this.#anchored) this.anchor(nowMs, captureMs);
    switch (this.mode.kind) {
      case 'topspeed':
        return nowMs;
      case 'multiplier':
        // Out-of-order capture timestamps never make us wait backwards.
        return this.#startWall + Math.max(0, captureMs - this.#startCapture) / this.mode.factor;
      case 'pps':
        return this.#startWall + (n * 1000) / this.mode.rate;
    }
  }
}

/** Sleep until `dueMs` on `performance.now()`'s clock (setTimeout for long waits, then spin-free yield). */
export async function waitUntil(dueMs: number): Promise<void> {
  const left = dueMs - performance.now();
  if (left > 2) await new Promise<void>((r) => setTimeout(r, left - 1));
  while (performance.now() < dueMs) await new Promise<void>((r) => setImmediate(r));
}
