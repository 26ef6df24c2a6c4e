/**
 * Test harness for the compare engine: a pool, an engine with a recording CheckpointPort and
 * a release callback that copies every released frame out (then frees it), plus helpers to
 * feed frames and to check the accounting invariant and pool hygiene at the end.
 *
 * Each primary frame is tagged with its input index in `pool.time` (a caller-owned per-handle
 * slot the engine never touches), so tests know exactly which input frame each release is.
 */
import { expect } from 'vitest';
import { CompareEngine, type CompareEngineOptions } from '../../src/compare/engine.js';
import type { CheckpointPort } from '../../src/compare/checkpoint-port.js';
import type { DivergenceRecord } from '../../src/compare/divergence.js';
import type { CompareLimits } from '../../src/compare/limits.js';
import { PacketPool } from '../../src/packet/pool.js';
import type { Sender } from './sender.js';

export class TestPort implements CheckpointPort {
  readonly shadow: boolean;
  readonly requests: (DivergenceRecord | null)[] = [];
  /** Complete at once from inside `request` (what a shadow controller does). */
  auto: boolean;
  engine: CompareEngine | null = null;

  constructor(shadow: boolean, auto: boolean) {
    this.shadow = shadow;
    this.auto = auto;
  }

  request(r: DivergenceRecord | null): void {
    this.requests.push(r);
    if (this.auto) this.engine?.onCheckpointCompleted();
  }
}

export interface Released {
  /** Index of the primary input frame. */
  index: number;
  bytes: Uint8Array;
}

export interface HarnessOptions {
  /** A ready-made port instead of the recording TestPort. */
  port?: CheckpointPort & { attach?(e: CompareEngine): void };
  shadow?: boolean;
  /** Complete checkpoints synchronously inside `request`. Default: shadow. */
  autoComplete?: boolean;
  limits?: Partial<CompareLimits>;
  poolSlots?: number;
  onBackpressure?: (paused: boolean) => void;
  release?: CompareEngineOptions['release'];
}

export class Harness {
  readonly pool: PacketPool;
  readonly engine: CompareEngine;
  readonly port: TestPort;
  readonly customPort: (CheckpointPort & { attach?(e: CompareEngine): void }) | undefined;
  readonly released: Released[] = [];
  readonly records: DivergenceRecord[] = [];
  /** Primary input frames, by index. */
  readonly primaryIn: Uint8Array[] = [];
  t = 0;

  constructor(o: HarnessOptions = {}) {
    this.pool = new PacketPool({
      classes: [
        { slotSize: 2048, slots: o.poolSlots ?? 8192 },
        { slotSize: 69_632, slots: 8 },
      ],
    });
    const shadow = o.shadow ?? false;
    this.port = new TestPort(shadow, o.autoComplete ?? shadow);
    this.customPort = o.port;
    this.engine = new CompareEngine({
      pool: this.pool,
      checkpoint: o.port ?? this.port,
      limits: o.limits,
      seed: 1234,
      onDivergence: (r) => this.records.push(r),
      ...(o.onBackpressure ? { onBackpressure: o.onBackpressure } : {}),
      release:
        o.release ??
        ((h) => {
          this.released.push({ index: this.pool.time[h]!, bytes: Uint8Array.from(this.pool.view(h)) });
          this.pool.release(h);
        }),
    });
    this.port.engine = this.engine;
    o.port?.attach?.(this.engine);
  }

  #load(frame: Uint8Array, vnet = 0): number {
    const h = this.pool.copyIn(frame, 0, frame.length);
    if (h < 0) throw new Error('test pool exhausted');
    this.pool.tag[h] = vnet;
    return h;
  }

  /** Both sides' SYN-ACKs (their SYNs with `guest`), primary first, at time `t`. */
  open(P: Sender, S: Sender, t = this.t, guest = false): void {
    this.p(P.syn(guest), t);
    this.s(S.syn(guest), t);
  }

  /** Feed a primary frame at time `t` (default: the harness clock); returns its input index. */
  p(frame: Uint8Array, t = this.t, vnet = 0): number {
    const h = this.#load(frame, vnet);
    const idx = this.primaryIn.length;
    this.primaryIn.push(frame);
    this.pool.time[h] = idx;
    this.engine.primary(h, t);
    return idx;
  }

  s(frame: Uint8Array, t = this.t, vnet = 0): void {
    this.engine.secondary(this.#load(frame, vnet), t);
  }

  /** Input indices released so far, in release order. */
  releasedIndices(): number[] {
    return this.released.map((r) => r.index);
  }

  isReleased(idx: number): boolean {
    return this.released.some((r) => r.index === idx);
  }

  /** Accounting invariant (both inputs) — call any time. */
  checkAccounting(): void {
    const a = this.engine.accounting();
    expect(a.primary.balanced, JSON.stringify(a.primary)).toBe(true);
    expect(a.secondary.balanced, JSON.stringify(a.secondary)).toBe(true);
  }

  /**
   * End of test: accounting balanced, then close; afterwards every primary frame was released
   * exactly once with its bytes unchanged, and the pool is empty.
   */
  finish(): void {
    this.checkAccounting();
    this.engine.close();
    this.checkAccounting();
    const a = this.engine.accounting();
    expect(a.primary.held).toBe(0);
    expect(this.engine.statsSnapshot().secondary.held).toBe(0);
    const seen = new Set<number>();
    for (const r of this.released) {
      expect(seen.has(r.index), `frame ${r.index} released twice`).toBe(false);
      seen.add(r.index);
      expect(Buffer.from(r.bytes).equals(Buffer.from(this.primaryIn[r.index]!)), `frame ${r.index} bytes changed`).toBe(true);
    }
    expect(seen.size).toBe(this.primaryIn.length);
    expect(this.pool.inUse).toBe(0);
    expect(this.engine.reassemblyBudget.used).toBe(0);
  }
}

/** True when `sub` (indices) appears in `seq` in the same relative order. */
export function keepsOrder(seq: number[], sub: number[]): boolean {
  const want = new Set(sub);
  const got = seq.filter((x) => want.has(x));
  return got.length === sub.length && got.every((x, i) => x === sub[i]);
}
