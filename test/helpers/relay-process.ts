/**
 * The lossy relay process: `node --import tsx test/helpers/relay-process.ts CONFIG_JSON`.
 *
 * Opens two taps (in whatever namespace it was started in; the test helper then moves them
 * into the client and server namespaces — the open fds keep working), prints one line
 * `{"ready":true,...}` and forwards Ethernet frames between them through the project's own
 * TapDevice, applying a seeded impairment per direction (relay-impair.ts) to IPv4/IPv6
 * frames; other frames (ARP…) pass untouched. On SIGTERM/SIGINT, or when stdin closes
 * (its parent went away), it prints `{"stats":{...}}` and exits.
 */
import { PacketPool } from '../../src/packet/pool.js';
import { TapDevice } from '../../src/wire/tap.js';
import { ImpairedLink } from './relay-impair.js';
import type { Impairment, LinkStats } from './relay-impair.js';

export interface RelayConfig {
  /** Client-side tap name. */
  tapC: string;
  /** Server-side tap name. */
  tapS: string;
  c2s: Impairment;
  s2c: Impairment;
  seed: number;
  /** A held frame is released after this long without k later frames; default 20 ms. */
  holdMs?: number;
}

export interface DirectionStats extends LinkStats {
  /** Frames the kernel refused or could not queue on the far tap. */
  writeErrors: number;
  writeBlocked: number;
}

export interface RelayReport {
  c2s: DirectionStats;
  s2c: DirectionStats;
  poolStalls: number;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as RelayConfig;
const pool = new PacketPool();
const tapC = TapDevice.open(cfg.tapC, pool);
const tapS = TapDevice.open(cfg.tapS, pool);
const holdMs = cfg.holdMs ?? 20;

class Direction {
  readonly link: ImpairedLink<number>;
  readonly out: Int32Array = new Int32Array(1024);
  n = 0;
  writeErrors = 0;
  writeBlocked = 0;
  readonly #to: TapDevice;

  constructor(imp: Impairment, seed: number, to: TapDevice) {
    this.#to = to;
    this.link = new ImpairedLink<number>(
      imp,
      seed,
      (h) => {
        // Batches are at most 256 frames (+ dups + a held one): 1024 slots never overflow,
        // but flush defensively rather than write out of bounds.
        if (this.n === this.out.length) this.flush();
        this.out[this.n++] = h;
      },
      (h) => pool.retain(h),
      (h) => pool.release(h),
    );
  }

  /** Write everything queued in one batched call, then drop our references. */
  flush(): void {
    if (this.n === 0) return;
    const before = this.#to.stats.writeErrors;
    const done = this.#to.write(this.out, this.n);
    this.writeErrors += this.#to.stats.writeErrors - before;
    this.writeBlocked += this.n - done;
    for (let i = 0; i < this.n; i++) pool.release(this.out[i]!);
    this.n = 0;
  }

  report(): DirectionStats {
    return { ...this.link.stats, writeErrors: this.writeErrors, writeBlocked: this.writeBlocked };
  }
}

const c2s = new Direction(cfg.c2s, (cfg.seed ^ 0x5eed0c25) >>> 0, tapS);
const s2c = new Direction(cfg.s2c, (cfg.seed ^ 0x5eed05c2) >>> 0, tapC);

/** IPv4 or IPv6 (possibly behind one 802.1Q tag): subject to impairment. */
function isIp(h: number): boolean {
  const b = pool.buffer(h);
  const o = pool.offset(h);
  if (pool.length(h) < 14) return false;
  let et = (b[o + 12]! << 8) | b[o + 13]!;
  if (et === 0x8100 && pool.length(h) >= 18) et = (b[o + 16]! << 8) | b[o + 17]!;
  return et === 0x0800 || et === 0x86dd;
}

function relay(dir: Direction) {
  return (hs: Int32Array, n: number): void => {
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      const h = hs[i]!;
      dir.link.push(h, isIp(h), now);
    }
    dir.flush();
  };
}

const onError = (err: Error) => {
  process.stderr.write(`relay: ${err.message}\n`);
  finish(1);
};
tapC.onFrames(relay(c2s), onError);
tapS.onFrames(relay(s2c), onError);

// Release a held frame once nothing pushed it out for holdMs (traffic paused).
const timer = setInterval(() => {
  const now = Date.now();
  for (const d of [c2s, s2c]) {
    if (d.link.holding && now - d.link.heldSince >= holdMs) {
      d.link.releaseHeld(true);
      d.flush();
    }
  }
}, Math.max(1, Math.floor(holdMs / 4)));

let finished = false;
function finish(code: number): void {
  if (finished) return;
  finished = true;
  clearInterval(timer);
  tapC.stopReading();
  tapS.stopReading();
  c2s.link.discardHeld();
  s2c.link.discardHeld();
  c2s.flush();
  s2c.flush();
  const report: RelayReport = { c2s: c2s.report(), s2c: s2c.report(), poolStalls: tapC.stats.poolStalls + tapS.stats.poolStalls };
  tapC.close();
  tapS.close();
  process.stdout.write(JSON.stringify({ stats: report, poolInUse: pool.inUse }) + '\n', () => process.exit(code));
}

process.on('SIGTERM', () => finish(0));
process.on('SIGINT', () => finish(0));
process.stdin.on('end', () => finish(0));
process.stdin.resume();
process.stdout.write(JSON.stringify({ ready: true, tapC: tapC.name, tapS: tapS.name, pid: process.pid }) + '\n');
