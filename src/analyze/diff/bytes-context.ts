/** Hex + printable rendering of the bytes around a divergence (cold path). */
import type { DiffBytes } from './types.js';

const HEX = '0123456789abcdef';

/**
 * `buf[from, to)` (clamped to `limit`) as hex and printable text; `offset` is the label of
 * `from`. `gaps` ([offset, len] pairs in the same labels) mark bytes the side never sent:
 * shown as `--` in hex and `_` in text, never as invented zeros.
 */
export function contextBytes(buf: Uint8Array, from: number, to: number, limit: number, offset: number, gaps: readonly number[] = []): DiffBytes {
  const a = Math.max(0, Math.min(from, limit));
  const b = Math.max(a, Math.min(to, limit));
  let hex = '';
  let text = '';
  let g = 0;
  for (let i = a; i < b; i++) {
    const at = offset + (i - from);
    while (g < gaps.length && gaps[g]! + gaps[g + 1]! <= at) g += 2;
    if (g < gaps.length && gaps[g]! <= at) {
      hex += '--';
      text += '_';
      continue;
    }
    const x = buf[i]!;
    hex += HEX[x >> 4]! + HEX[x & 15]!;
    text += x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.';
  }
  return { offset: offset + (a - from), hex, text };
}

/** No bytes on that side. */
export function noBytes(offset: number): DiffBytes {
  return { offset, hex: '', text: '' };
}
