/**
 * The secondary's pass compares each TCP stream with its likely primary partner while it
 * reads, keeps no copy of the bytes found equal, checks the timing rule on them, and aligns
 * connections without a pre-scan (load.ts, store.ts, align.ts). These cases aim at what that
 * could get wrong: context bytes taken from the primary, a timing difference inside the
 * equal part, a guessed partner that the final matching overrides, a secondary behind
 * filter-rewriter (its data in the primary's sequence space). Oracles: the generated bodies
 * and offsets, and the same pair written the plain way.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeDiff } from '../../src/analyze/diff/analyze.js';
import { PcapWriter } from '../../src/capture/writer.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, tcpFrame } from '../../src/replay/frame-builder.js';
import { CLIENT, SERVER } from './diff-pairs.js';

const tmp = mkdtempSync(join(tmpdir(), 'colo-diff-inline-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

interface Conn {
  cport: number;
  /** The SYN-ACK's ISN, and the ISN the data is numbered from (differs behind filter-rewriter). */
  isn: number;
  dataIsn?: number;
  body: Uint8Array;
  mss: number;
  t0: number;
  /** Seconds added to every data segment from this byte offset on (a late stretch). */
  lateFrom?: number;
  lateBy?: number;
}

interface Frame {
  b: Uint8Array;
  t: number;
}

/** Client SYN, SYN-ACK, client ACK, the body cut at `mss`, FIN: frames with times. */
function frames(c: Conn): Frame[] {
  const out: Frame[] = [];
  let t = c.t0;
  const cisn = 7000 + c.cport + Math.round(c.t0) * 1000;
  const dataIsn = c.dataIsn ?? c.isn;
  const srv = (flags: number, seq: number, payload?: Uint8Array, extra = 0): void => {
    t += 0.001;
    out.push({ b: tcpFrame({ src: SERVER, dst: CLIENT, sport: 80, dport: c.cport, seq: seq >>> 0, ack: cisn + 1, flags, payload }), t: t + extra });
  };
  out.push({ b: tcpFrame({ src: CLIENT, dst: SERVER, sport: c.cport, dport: 80, seq: cisn, flags: TCP_SYN }), t });
  srv(TCP_SYN | TCP_ACK, c.isn);
  t += 0.001;
  out.push({ b: tcpFrame({ src: CLIENT, dst: SERVER, sport: c.cport, dport: 80, seq: cisn + 1, ack: (c.isn + 1) >>> 0, flags: TCP_ACK }), t });
  for (let o = 0; o < c.body.length; o += c.mss) {
    const late = c.lateFrom !== undefined && o >= c.lateFrom ? c.lateBy! : 0;
    srv(TCP_ACK | TCP_PSH, dataIsn + 1 + o, c.body.subarray(o, Math.min(c.body.length, o + c.mss)), late);
  }
  srv(TCP_FIN | TCP_ACK, dataIsn + 1 + c.body.length, undefined, c.lateFrom !== undefined ? c.lateBy! : 0);
  return out;
}

/** Write frames in the given order (`sort`: by time first). */
function write(fs: Frame[], sort = true): string {
  const path = join(tmp, `c${n++}.pcap`);
  const w = new PcapWriter(path);
  for (const f of sort ? [...fs].sort((a, b) => a.t - b.t) : fs) {
    const sec = Math.floor(f.t);
    w.write(f.b, 0, f.b.length, sec, Math.round((f.t - sec) * 1e9));
  }
  w.close();
  return path;
}

function body(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 7 + (i >> 5)) & 0xff;
  return b;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('diff: comparison while the secondary is read', () => {
  it('context before a divergence comes out right although those bytes were found equal and not kept', () => {
    const p = body(3000, 1);
    const s = p.slice();
    s[1500] ^= 0x5a;
    const primary = write(frames({ cport: 40000, isn: 1000, body: p, mss: 536, t0: 100 }));
    const secondary = write(frames({ cport: 40000, isn: 900_000, body: s, mss: 400, t0: 100.0002 }));
    const r = analyzeDiff(primary, secondary, { context: 300 });
    expect(r.summary.diverged).toBe(1);
    const d = r.flows[0]!.divergence!;
    expect([d.cause, d.direction, d.offset]).toEqual(['payload', 'server-to-client', 1500]);
    expect(d.primaryBytes).toMatchObject({ offset: 1200, hex: hex(p.subarray(1200, 1800)) });
    expect(d.secondaryBytes).toMatchObject({ offset: 1200, hex: hex(s.subarray(1200, 1800)) });
  });

  it('a late stretch inside bytes that are equal is a timing divergence at its first offset', () => {
    const p = body(5000, 2);
    const primary = write(frames({ cport: 40001, isn: 5, body: p, mss: 500, t0: 100 }));
    // Secondary segments of 400 bytes: the one at 2000 and everything after come 5 s late.
    const secondary = write(frames({ cport: 40001, isn: 77_777, body: p, mss: 400, t0: 100, lateFrom: 2000, lateBy: 5 }));
    const r = analyzeDiff(primary, secondary, { timeoutMs: 3000 });
    const d = r.flows[0]!.divergence!;
    expect([d.cause, d.offset, d.side]).toEqual(['timing', 2000, 'secondary']);
    expect(d.secondaryMs! - d.primaryMs!).toBeGreaterThan(3000);
    // With a longer timeout the same pair is identical.
    expect(analyzeDiff(primary, secondary, { timeoutMs: 6000 }).summary.diverged).toBe(0);
  });

  it('a partner guessed from capture order that the start-time matching overrides still compares right', () => {
    // Two connections on one 4-tuple with a long common prefix. The secondary's capture holds
    // them in the reverse of their timestamps, so its pass pairs each with the wrong primary
    // connection and keeps no copy of the shared prefix; the final matching (by start time)
    // must still find both identical.
    const prefix = body(2500, 3);
    const b1 = Buffer.concat([prefix, Buffer.from('-first connection tail-')]);
    const b2 = Buffer.concat([prefix, Buffer.from('-second connection, other tail-')]);
    const c1 = { cport: 40002, body: b1, t0: 100 };
    const c2 = { cport: 40002, body: b2, t0: 200 };
    const primary = write([...frames({ ...c1, isn: 10, mss: 536 }), ...frames({ ...c2, isn: 20, mss: 536 })]);
    const secondary = write([...frames({ ...c2, isn: 30, mss: 300, t0: 200.0001 }), ...frames({ ...c1, isn: 40, mss: 300, t0: 100.0001 })], false);
    const r = analyzeDiff(primary, secondary);
    expect(r.summary.flows).toBe(2);
    expect(r.flows.map((f) => [f.verdict, f.primary?.bytes[1], f.secondary?.bytes[1]])).toEqual([
      ['identical', b1.length, b1.length],
      ['identical', b2.length, b2.length],
    ]);
    // And a change in the second one's tail is found in that flow, at its offset.
    const b2x = Buffer.from(b2);
    b2x[2510] ^= 1;
    const secondaryX = write([...frames({ ...c2, body: b2x, isn: 30, mss: 300, t0: 200.0001 }), ...frames({ ...c1, isn: 40, mss: 300, t0: 100.0001 })], false);
    const rx = analyzeDiff(primary, secondaryX);
    expect(rx.flows.map((f) => f.divergence?.offset ?? null)).toEqual([null, 2510]);
  });

  it('behind filter-rewriter (data in the primary sequence space) gives what the own-space capture gives', () => {
    const p = body(4000, 4);
    const s = Buffer.concat([p.subarray(0, 3000), Buffer.from('INSERTED'), p.subarray(3000)]);
    const primary = write(frames({ cport: 40003, isn: 4_000_000_000, body: p, mss: 536, t0: 100 }));
    const own = write(frames({ cport: 40003, isn: 123_456, body: s, mss: 400, t0: 100.0003 }));
    const rewritten = write(frames({ cport: 40003, isn: 123_456, dataIsn: 4_000_000_000, body: s, mss: 400, t0: 100.0003 }));
    const a = analyzeDiff(primary, own);
    const b = analyzeDiff(primary, rewritten);
    expect(a.flows[0]!.alignment).toBe('own-space');
    expect(b.flows[0]!.alignment).toBe('primary-space');
    const da = a.flows[0]!.divergence!;
    expect([da.cause, da.offset]).toEqual(['extra', 3000]);
    expect(b.flows[0]!.divergence).toEqual(da);
    expect(b.flows[0]!.secondary!.bytes).toEqual(a.flows[0]!.secondary!.bytes);
  });
});
