/**
 * Progress for long jobs, on stderr. On a TTY: a redrawn bar at most every 100 ms. Otherwise
 * (CI, pipes): a structured JSON line at most every 2 s, so logs stay readable. Disabled
 * entirely with `enabled: false` (e.g. `--quiet` or `--json` to a TTY-less consumer).
 */
export interface ProgressOptions {
  label: string;
  /** Total units (e.g. bytes of the file); 0 when unknown. */
  total: number;
  enabled?: boolean;
  stream?: NodeJS.WriteStream;
}

export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #enabled: boolean;
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;
  #last = 0;
  #drawn = false;
  readonly #start = performance.now();

  constructor(opts: ProgressOptions) {
    this.#label = opts.label;
    this.#total = opts.total;
    this.#stream = opts.stream ?? process.stderr;
    this.#enabled = opts.enabled ?? true;
    this.#tty = this.#stream.isTTY === true;
  }

  /** Report `done` units; cheap to call per packet (one clock read per 4096 calls at most). */
  update(done: number, extra = ''): void {
    if (!this.#enabled) return;
    const now = performance.now();
    const every = this.#tty ? 100 : 2000;
    if (now - this.#last < every) return;
    this.#last = now;
    const frac = this.#total > 0 ? Math.min(1, done / this.#total) : 0;
    if (this.#tty) {
      const width = 30;
      const fill = Math.round(frac * width);
      const bar = '#'.repeat(fill) + '.'.repeat(width - fill);
      this.#stream.write(`\r${this.#label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${extra}\x1b[K`);
      this.#drawn = true;
    } else {
      const elapsedMs = Math.round(now - this.#start);
      this.#stream.write(JSON.stringify({ progress: this.#label, done, total: this.#total, elapsedMs, extra }) + '\n');
    }
  }

  done(): void {
    if (this.#enabled && this.#tty && this.#drawn) this.#stream.write('\r\x1b[K');
  }
}
