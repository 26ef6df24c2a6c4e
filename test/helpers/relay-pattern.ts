/** The relay workload's deterministic payloads (shared by the workload and the tests that check it). */
import { createHash } from 'node:crypto';

/** Deterministic bytes for (seed, connection id, direction): xorshift32, 4 bytes a step. */
export function pattern(seed: number, id: number, dir: 'up' | 'down', len: number): Buffer {
  const out = Buffer.allocUnsafe(len);
  let x = (seed ^ Math.imul(id + 1, 0x9e3779b1) ^ (dir === 'up' ? 0x75700000 : 0x646f776e)) >>> 0 || 1;
  for (let i = 0; i < len; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    for (let j = 0; j < 4 && i + j < len; j++) out[i + j] = (x >>> (8 * j)) & 0xff;
  }
  return out;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

