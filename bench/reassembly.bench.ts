/**
 * TCP reassembly throughput: one connection, 1448-byte segments (a typical MSS with
 * timestamps), in order and reordered (every window of 64 segments shuffled), zero-copy from
 * pool slots and copied from unpooled buffers.
 *
 * Baselines, measured in the same run:
 * - "naive": a textbook reassembler — copy each segment into a new Buffer, push it on an
 *   array, sort the array by offset, shift off and emit what is contiguous.
 * A "memcpy" reference row (copying the same bytes once into one contiguous buffer: the least
 * a reassembler that produces a contiguous stream must do) shows what zero copy avoids.
 * The sink only sums lengths, so the rows measure reassembly, not consumption.
 *
 * Retransmission window: with the default limits it is armed only after a direction's first
 * retransmission, so the plain in-order rows (no retransmissions) do not pay for it. The
 * "window armed" rows set retxArmAfter 0 (every delivered segment is kept: retained zero copy
 * when pooled, copied into packed pool slots when not), with the default rows as baselines,
 * so the ratio is the window's cost.
 */
import { ReassemblyBudget } from '../src/flow/tcp-budget.js';
import { TcpReassembler } from '../src/flow/tcp-reassembler.js';
import type { Dir, ReassemblyLimits, StreamSink } from '../src/flow/tcp-types.js';
import { NO_HANDLE, PacketPool } from '../src/packet/pool.js';
import { PacketView } from '../src/packet/view.js';
import { timedMedian, type BenchRow } from './harness.js';
import { openStream } from './tcp-stream-setup.js';

const MSS = 1448;
const NSEG = 4096;
const WINDOW = 64;
const ISN = 0xffff0000; // the run crosses the 2^32 wrap
const HDR = 66; // Ethernet + IPv4 + TCP with timestamps, before the payload in each slot

class CountingSink implements StreamSink {
  bytes = 0;
  gaps = 0;
  data(_dir: Dir, _buf: Uint8Array, _off: number, len: number): void {
    this.bytes += len;
  }
  gap(): void {
    this.gaps++;
  }
  end(): void {}
}

function order(reordered: boolean): Int32Array {
  const o = new Int32Array(NSEG);
  for (let i = 0; i < NSEG; i++) o[i] = i;
  if (!reordered) return o;
  let x = 0x9e3779b9;
  for (let w = 0; w < NSEG; w += WINDOW) {
    for (let i = WINDOW - 1; i > 0; i--) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const j = (x >>> 0) % (i + 1);
      const t = o[w + i]!;
      o[w + i] = o[w + j]!;
      o[w + j] = t;
    }
  }
  return o;
}

export async function run(): Promise<BenchRow[]> {
  const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: NSEG + 1024 }] });
  // The segments, each in its own pool slot after a fake header (as decodeFrame would leave them).
  const handles = new Int32Array(NSEG);
  const flat = Buffer.alloc(NSEG * MSS);
  for (let i = 0; i < flat.length; i++) flat[i] = (i * 2654435761) >>> 24;
  for (let i = 0; i < NSEG; i++) {
    const h = pool.acquireOrThrow(HDR + MSS);
    pool.buffer(h).set(flat.subarray(i * MSS, (i + 1) * MSS), pool.offset(h) + HDR);
    handles[i] = h;
  }
  const inOrder = order(false);
  const shuffled = order(true);
  const v = new PacketView();
  const budget = new ReassemblyBudget(256 << 20);
  const sink = new CountingSink();
  const totalBytes = NSEG * MSS;

  const armed: Partial<ReassemblyLimits> = { retxArmAfter: 0 };
  const reassemble = (ord: Int32Array, pooled: boolean, limits: Partial<ReassemblyLimits> = {}, b: ReassemblyBudget = budget): void => {
    const r = new TcpReassembler(pool, sink, limits, b);
    openStream(r, v, ISN, MSS);
    for (let k = 0; k < NSEG; k++) {
      const i = ord[k]!;
      const h = handles[i]!;
      v.tcpSeq = (ISN + 1 + i * MSS) >>> 0;
      if (pooled) {
        v.buf = pool.buffer(h);
        v.payloadOff = pool.offset(h) + HDR;
        r.segment(v, 0, h, 0);
      } else {
        v.buf = flat;
        v.payloadOff = i * MSS;
        r.segment(v, 0, NO_HANDLE, 0);
      }
    }
    r.close();
  };

  const out = Buffer.alloc(totalBytes);
  const memcpy = (): void => {
    for (let i = 0; i < NSEG; i++) {
      const h = handles[i]!;
      const o = pool.offset(h) + HDR;
      out.set(pool.buffer(h).subarray(o, o + MSS), i * MSS);
    }
    sink.bytes += totalBytes;
  };

  const naive = (ord: Int32Array): void => {
    const held: Array<{ off: number; b: Buffer }> = [];
    let next = 0;
    for (let k = 0; k < NSEG; k++) {
      const i = ord[k]!;
      const h = handles[i]!;
      const o = pool.offset(h) + HDR;
      held.push({ off: i * MSS, b: Buffer.from(pool.buffer(h).subarray(o, o + MSS)) });
      held.sort((a, b) => a.off - b.off);
      while (held.length > 0 && held[0]!.off === next) {
        const s = held.shift()!;
        sink.bytes += s.b.length;
        next += s.b.length;
      }
    }
  };

  const rows: BenchRow[] = [];
  const s = 'reassembly';
  const row = (name: string, fn: () => void, baseline?: string, note?: string): void => {
    sink.bytes = 0;
    const t = timedMedian(fn, NSEG);
    const bps = t.opsPerSec * MSS;
    rows.push({
      suite: s,
      name,
      opsPerSec: t.opsPerSec,
      unit: 'seg',
      bytesPerSec: bps,
      ...(baseline !== undefined ? { baseline } : {}),
      note: `${((bps * 8) / 1e9).toFixed(2)} Gbit/s${note ? `; ${note}` : ''}`,
    });
  };

  // Reference only: what merely copying the bytes once costs.
  row('memcpy (reference)', memcpy, undefined, `${MSS} B segments into one contiguous buffer`);
  row('naive in-order (baseline)', () => naive(inOrder));
  row('naive reordered/64 (baseline)', () => naive(shuffled));
  row('in-order, pooled (zero copy)', () => reassemble(inOrder, true), 'naive in-order (baseline)', 'budget high water 0 B');
  row('in-order, unpooled', () => reassemble(inOrder, false), 'naive in-order (baseline)', 'budget high water 0 B');
  const hw0 = budget.highWater;
  row('reordered/64, pooled', () => reassemble(shuffled, true), 'naive reordered/64 (baseline)');
  const hwPooled = budget.highWater;
  row('reordered/64, unpooled (copies)', () => reassemble(shuffled, false), 'naive reordered/64 (baseline)');
  const hwUnpooled = budget.highWater;
  rows[5]!.note += `; budget high water ${(hwPooled / 1024).toFixed(0)} KiB (slots pinned)`;
  rows[6]!.note += `; budget high water ${(hwUnpooled / 1024).toFixed(0)} KiB`;
  // The budget's high water is monotonic: measure the armed rows' own figure on a fresh budget.
  const armedHw = (pooled: boolean): number => {
    const b = new ReassemblyBudget(256 << 20);
    reassemble(inOrder, pooled, armed, b);
    return b.highWater;
  };
  row('in-order, pooled, window armed', () => reassemble(inOrder, true, armed), 'in-order, pooled (zero copy)', `retxArmAfter 0; budget high water ${(armedHw(true) / 1024).toFixed(0)} KiB (64 KiB window, slots retained)`);
  row('in-order, unpooled, window armed', () => reassemble(inOrder, false, armed), 'in-order, unpooled', `retxArmAfter 0; budget high water ${(armedHw(false) / 1024).toFixed(0)} KiB (64 KiB window, copied)`);

  // Sanity: every run delivered everything and freed everything.
  sink.bytes = 0;
  sink.gaps = 0;
  reassemble(shuffled, true);
  if (sink.bytes !== totalBytes || sink.gaps !== 0 || budget.used !== 0 || pool.inUse !== NSEG || hw0 !== 0) {
    throw new Error(`reassembly bench self-check failed: ${sink.bytes}/${totalBytes} bytes, ${sink.gaps} gaps, budget ${budget.used}, pool ${pool.inUse}, in-order high water ${hw0}`);
  }
  for (let i = 0; i < NSEG; i++) pool.release(handles[i]!);
  return rows;
}
