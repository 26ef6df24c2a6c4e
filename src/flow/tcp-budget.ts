/**
 * ReassemblyBudget: the global memory cap shared by every reassembler of one engine
 * (Suricata's stream.reassembly.memcap). Reassemblers reserve bytes before buffering an
 * out-of-order piece and give them back when the piece is delivered or discarded.
 *
 * What is charged is the memory a buffered piece PINS, not its payload: the size of the pool
 * slot it holds a reference to, plus PIECE_OVERHEAD_BYTES (tree node, bookkeeping). A 1-byte
 * piece in a 2 KiB slot costs 2 KiB + overhead, so a peer sending tiny out-of-order segments
 * cannot pin the pool while looking cheap. When one segment is split into several pieces
 * (it straddles already-buffered data) each piece is charged the whole slot: conservative,
 * and exact in the common case of one piece per segment. The budget is therefore also the
 * cap on pool slots reassembly can hold — set it below the pool size so reassembly cannot
 * starve the readers of slots.
 *
 * Policy when a reservation is refused: the reassembler asking declares its lowest hole a gap
 * ('memcap') and delivers, freeing its own memory (see tcp-stream.ts); the refusal is counted
 * here and in that direction's stats.
 *
 * Retransmission windows (tcp-retx.ts: the recently delivered bytes kept to compare
 * retransmissions against) draw from the same budget but only up to `retxMaxBytes` (default:
 * half of `maxBytes`), so out-of-order buffering — which prevents gaps — always has at least
 * the other half. Their refusals are counted apart (`retxRefusals`); a refused window shrinks
 * instead of growing. `used` and `highWater` include both kinds.
 */
import { ColoError } from '../errors.js';

/** Bytes charged per buffered piece on top of its pool slot. */
export const PIECE_OVERHEAD_BYTES = 64;

export class ReassemblyBudget {
  /** The cap in bytes (may be Infinity for "per-direction limits only"). */
  readonly maxBytes: number;
  /** The part of `maxBytes` retransmission windows may hold (Infinity when `maxBytes` is). */
  readonly retxMaxBytes: number;
  #used = 0;
  #highWater = 0;
  #refusals = 0;
  #retxUsed = 0;
  #retxRefusals = 0;

  /**
   * @param maxBytes the cap (a non-negative integer, or Infinity).
   * @param retxMaxBytes how much of it retransmission windows may hold; default
   *   `floor(maxBytes / 2)`; at most `maxBytes`.
   * Cold path: throws ERR_INVALID_ARGUMENT naming a bad value.
   */
  constructor(maxBytes: number, retxMaxBytes?: number) {
    const ok = (x: number): boolean => x >= 0 && (!Number.isFinite(x) || Number.isInteger(x));
    if (!ok(maxBytes)) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `reassembly budget must be a non-negative integer or Infinity, got ${maxBytes}`);
    }
    const retx = retxMaxBytes ?? (Number.isFinite(maxBytes) ? Math.floor(maxBytes / 2) : maxBytes);
    if (!ok(retx) || retx > maxBytes) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `reassembly budget retransmission share must be a non-negative integer ≤ ${maxBytes}, got ${retx}`);
    }
    this.maxBytes = maxBytes;
    this.retxMaxBytes = retx;
  }

  /** Bytes currently reserved. */
  get used(): number {
    return this.#used;
  }

  /** Largest `used` ever seen. */
  get highWater(): number {
    return this.#highWater;
  }

  /** Reservations refused because they would exceed `maxBytes`. */
  get refusals(): number {
    return this.#refusals;
  }

  get available(): number {
    return this.maxBytes - this.#used;
  }

  /** Reserve `n` bytes; false (and a counted refusal) when that would pass the cap. */
  tryReserve(n: number): boolean {
    const u = this.#used + n;
    if (u > this.maxBytes) {
      this.#refusals++;
      return false;
    }
    this.#used = u;
    if (u > this.#highWater) this.#highWater = u;
    return true;
  }

  /** Return `n` previously reserved bytes. Returning more than is reserved is a bug and throws. */
  release(n: number): void {
    if (n > this.#used - this.#retxUsed) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `reassembly budget release of ${n} bytes exceeds the ${this.#used - this.#retxUsed} reserved`);
    }
    this.#used -= n;
  }

  /** Bytes currently held by retransmission windows (part of `used`). */
  get retxUsed(): number {
    return this.#retxUsed;
  }

  /** Retransmission-window reservations refused (by `retxMaxBytes` or `maxBytes`). */
  get retxRefusals(): number {
    return this.#retxRefusals;
  }

  /** Reserve `n` bytes for a retransmission window; false (counted) past `retxMaxBytes` or `maxBytes`. */
  tryReserveRetx(n: number): boolean {
    const r = this.#retxUsed + n;
    const u = this.#used + n;
    if (r > this.retxMaxBytes || u > this.maxBytes) {
      this.#retxRefusals++;
      return false;
    }
    this.#retxUsed = r;
    this.#used = u;
    if (u > this.#highWater) this.#highWater = u;
    return true;
  }

  /** Return `n` bytes reserved with `tryReserveRetx` (more than is reserved throws). */
  releaseRetx(n: number): void {
    if (n > this.#retxUsed) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `reassembly budget retransmission release of ${n} bytes exceeds the ${this.#retxUsed} reserved`);
    }
    this.#retxUsed -= n;
    this.#used -= n;
  }
}
