/**
 * Child-process probe for tcp-alloc.test.ts (run with --expose-gc and a large young
 * generation so no scavenge hides allocations during the measured loop). Prints JSON:
 * heap growth per segment for the reassembler's in-order path, and for a positive control
 * that allocates one small object per iteration (proves the method sees allocations).
 *
 * argv[2] picks the mode: 'default' (default limits: the retransmission window is not armed
 * on a stream that never retransmits), 'armed' (retxArmAfter 0: every segment goes into the
 * window, zero copy), 'armed-unpooled' (same, input not pooled: copied into the window).
 */
import { TcpReassembler } from '../../src/flow/tcp-reassembler.js';
import type { Dir, StreamSink } from '../../src/flow/tcp-types.js';
import { LAYER_PAYLOAD, LAYER_TCP } from '../../src/packet/layer.js';
import { NO_HANDLE, PacketPool } from '../../src/packet/pool.js';
import { PacketView } from '../../src/packet/view.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

class Sink implements StreamSink {
  n = 0;
  data(_d: Dir, _b: Uint8Array, _o: number, len: number): void {
    this.n += len;
  }
  gap(): void {}
  end(): void {}
}

const mode = process.argv[2] ?? 'default';
const armed = mode !== 'default';
const pooled = mode !== 'armed-unpooled';
const MSS = 1448;
const N = 200_000;
// Room for the window's slots when it copies (64 KiB in 2 KiB slots, plus one being filled).
const pool = new PacketPool({ classes: [{ slotSize: 2048, slots: 64 }] });
const h = pool.acquireOrThrow(MSS + 66);
const plain = new Uint8Array(MSS + 66);
const v = new PacketView();
const sink = new Sink();
const r = new TcpReassembler(pool, sink, armed ? { retxArmAfter: 0 } : {});
v.layers = LAYER_TCP | LAYER_PAYLOAD;
v.tcpFlags = 0x02;
v.tcpSeq = 0xfff00000;
r.segment(v, 0, h, 0);
v.tcpFlags = 0x10;
v.buf = pooled ? pool.buffer(h) : plain;
v.payloadOff = (pooled ? pool.offset(h) : 0) + 66;
v.payloadLen = MSS;
v.payloadFullLen = MSS;
const handle = pooled ? h : NO_HANDLE;
let seq = 0xfff00001;
const feed = (n: number): void => {
  for (let i = 0; i < n; i++) {
    v.tcpSeq = seq;
    r.segment(v, 0, handle, i);
    seq = (seq + MSS) >>> 0;
  }
};
const measure = (fn: () => void): number => {
  gc();
  const before = process.memoryUsage().heapUsed;
  fn();
  const after = process.memoryUsage().heapUsed;
  return (after - before) / N;
};
feed(N); // warm up (JIT, inline caches)
const perSegment = measure(() => feed(N));
const keep: Array<{ i: number }> = [];
const control = measure(() => {
  for (let i = 0; i < N; i++) keep.push({ i });
});
const st = r.stats[0];
console.log(
  JSON.stringify({ perSegment, control, delivered: sink.n, expected: 2 * N * MSS, inOrder: st.inOrder, held: st.retxHeldBytes, poolInUse: pool.inUse, budgetUsed: r.budget.used }),
);
