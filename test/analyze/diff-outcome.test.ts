/**
 * Hand-built pairs for what the workload maker cannot produce: connection outcomes (RST vs
 * FIN, a secondary that never answers or never closes), datagram and ARP sequences, the
 * client-capture orientation, and bad input (truncated, corrupt, no TCP, mismatched link
 * types) — each a ColoError with a code, never anything else.
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeDiff } from '../../src/analyze/diff/analyze.js';
import { ColoError } from '../../src/errors.js';
import { udpFrame } from '../../src/replay/frame-builder.js';
import { arpFrame, CLIENT, connFrames, SERVER, udpFrames, writePcap, type Frame } from './diff-pairs.js';

const tmp = mkdtempSync(join(tmpdir(), 'colo-diff-outcome-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const pcap = (frames: Frame[], linkType = 1): string => writePcap(join(tmp, `c${n++}.pcap`), frames, linkType);
const body = ['HTTP/1.1 200 OK\r\n\r\n', 'hello world, this is the body'];

describe('connection outcome', () => {
  it('identical hand-built pair with different ISNs and TTLs: identical', () => {
    const r = analyzeDiff(pcap(connFrames({ cport: 40001, isn: 100, chunks: body, end: 'fin' })), pcap(connFrames({ cport: 40001, isn: 999999, chunks: body, end: 'fin', ttl: 63 })));
    expect(r.summary).toMatchObject({ flows: 1, diverged: 0 });
    expect(r.flows[0]!.alignment).toBe('own-space');
    expect(r.summary.benign.ttl).toBeGreaterThan(0);
  });

  it('RST where the primary sent FIN: outcome at the end of the stream', () => {
    const r = analyzeDiff(pcap(connFrames({ cport: 40001, isn: 100, chunks: body, end: 'fin' })), pcap(connFrames({ cport: 40001, isn: 7, chunks: body, end: 'rst' })));
    const d = r.flows[0]!.divergence!;
    expect(d.cause).toBe('outcome');
    expect(d.direction).toBe('server-to-client');
    expect(d.offset).toBe(body.join('').length);
    expect(d.detail).toContain('FIN');
    expect(d.detail).toContain('RST');
  });

  it('a secondary that never closes: outcome', () => {
    const r = analyzeDiff(pcap(connFrames({ cport: 40001, isn: 100, chunks: body, end: 'fin' })), pcap(connFrames({ cport: 40001, isn: 7, chunks: body, end: 'none' })));
    expect(r.flows[0]!.divergence!.cause).toBe('outcome');
  });

  it('a secondary that never answers one connection: that flow only, outcome, only in primary', () => {
    const p = [...connFrames({ cport: 40001, isn: 100, chunks: body, end: 'fin' }), ...connFrames({ cport: 40002, isn: 200, chunks: body, end: 'fin', t0: 1001 })];
    const s = connFrames({ cport: 40001, isn: 300, chunks: body, end: 'fin' });
    const r = analyzeDiff(pcap(p), pcap(s));
    expect(r.summary).toMatchObject({ flows: 2, diverged: 1, onlyInPrimary: 1 });
    const f = r.flows.find((x) => x.divergence !== null)!;
    expect(f.client).toBe('192.0.2.1:40002');
    expect(f.onlyIn).toBe('primary');
    expect(f.divergence!.cause).toBe('outcome');
  });

  it('a connection only the secondary has: extra', () => {
    const p = connFrames({ cport: 40001, isn: 100, chunks: body, end: 'fin' });
    const s = [...connFrames({ cport: 40001, isn: 300, chunks: body, end: 'fin' }), ...connFrames({ cport: 40009, isn: 1, chunks: body, end: 'fin', t0: 1001 })];
    const r = analyzeDiff(pcap(p), pcap(s));
    expect(r.summary).toMatchObject({ diverged: 1, onlyInSecondary: 1 });
    expect(r.flows.find((x) => x.onlyIn === 'secondary')!.divergence!.cause).toBe('extra');
  });

  it('captures with both directions: client→server identical, server→client compared', () => {
    const r = analyzeDiff(pcap(connFrames({ cport: 40001, isn: 100, chunks: body, end: 'fin', withClient: true })), pcap(connFrames({ cport: 40001, isn: 5, chunks: ['HTTP/1.1 200 OK\r\n\r\n', 'hello world, this is the bodY'], end: 'fin', withClient: true })));
    const d = r.flows[0]!.divergence!;
    expect(d.cause).toBe('payload');
    expect(d.direction).toBe('server-to-client');
    expect(d.offset).toBe(body.join('').length - 1);
    expect(d.primaryBytes.text.endsWith('body')).toBe(true);
    expect(d.secondaryBytes.text.endsWith('bodY')).toBe(true);
  });
});

describe('bytes: missing and extra, shifted or as holes', () => {
  const lines = Array.from({ length: 40 }, (_, i) => `line ${i} of the response\n`);
  const text = lines.join('');
  const at = text.indexOf('line 7 ');
  const one = (chunks: string[], drop?: number): string => pcap(connFrames({ cport: 40001, isn: 77, chunks, end: 'fin', drop }));
  it('the secondary drops a line (its stream shifts back): missing at that offset', () => {
    const short = text.replace(lines[7]!, '');
    // A deletion is placed at the first differing byte ("line 7" vs "line 8": the digit).
    let first = 0;
    while (text[first] === short[first]) first++;
    expect(first).toBe(at + 'line '.length);
    const r = analyzeDiff(one([text]), one([short]));
    expect(r.flows[0]!.divergence).toMatchObject({ cause: 'missing', offset: first, side: 'secondary' });
    expect(r.flows[0]!.divergence!.detail).toContain(`lacks ${lines[7]!.length} bytes`);
  });
  it('the secondary inserts bytes (its stream shifts on): extra at that offset', () => {
    const r = analyzeDiff(one([text]), one([text.slice(0, at) + 'EXTRA!' + text.slice(at)]));
    expect(r.flows[0]!.divergence).toMatchObject({ cause: 'extra', offset: at, side: 'secondary' });
    expect(r.flows[0]!.divergence!.detail).toContain('6 extra bytes');
  });
  it('a hole on either side: missing, naming the side that lacks the bytes', () => {
    const chunks = [lines.slice(0, 7).join(''), lines.slice(7, 20).join(''), lines.slice(20).join('')];
    let r = analyzeDiff(one(chunks), one(chunks, 1));
    expect(r.flows[0]!.divergence).toMatchObject({ cause: 'missing', offset: at, side: 'secondary' });
    r = analyzeDiff(one(chunks, 1), one(chunks));
    expect(r.flows[0]!.divergence).toMatchObject({ cause: 'missing', offset: at, side: 'primary' });
    // The same hole on both sides (both captures lost it) is no divergence.
    expect(analyzeDiff(one(chunks, 1), one(chunks, 1)).summary.diverged).toBe(0);
  });
});

describe('datagram flows and ARP', () => {
  const tcp = connFrames({ cport: 40001, isn: 1, chunks: body, end: 'fin' });
  it('UDP: a differing datagram, a missing one, an extra one', () => {
    const p = [...tcp, ...udpFrames(['a', 'bb', 'ccc'])];
    let r = analyzeDiff(pcap(p), pcap([...tcp, ...udpFrames(['a', 'bX', 'ccc'])]));
    let f = r.flows.find((x) => x.protocol === 'udp')!;
    expect(f.client).toBe('192.0.2.1:40000'); // the well-known port names the server
    expect(f.divergence).toMatchObject({ cause: 'payload', offset: 1, offsetUnit: 'datagram', direction: 'server-to-client' });
    r = analyzeDiff(pcap(p), pcap([...tcp, ...udpFrames(['a', 'bb'])]));
    f = r.flows.find((x) => x.protocol === 'udp')!;
    expect(f.divergence).toMatchObject({ cause: 'missing', offset: 2 });
    r = analyzeDiff(pcap(p), pcap([...tcp, ...udpFrames(['a', 'bb', 'ccc', 'dddd'])]));
    expect(r.flows.find((x) => x.protocol === 'udp')!.divergence).toMatchObject({ cause: 'extra', offset: 3 });
  });

  it('ARP: compared as a datagram sequence', () => {
    const a = [...tcp, { bytes: arpFrame(1, SERVER, CLIENT), t: 999 }, { bytes: arpFrame(1, SERVER, CLIENT), t: 1005 }];
    const same = analyzeDiff(pcap(a), pcap(a));
    expect(same.flows.find((x) => x.protocol === 'arp')).toMatchObject({ verdict: 'identical', client: '192.0.2.2:0', server: '192.0.2.1:0' });
    const b = [...tcp, { bytes: arpFrame(1, SERVER, CLIENT), t: 999 }, { bytes: arpFrame(1, SERVER, CLIENT, 9), t: 1005 }];
    const r = analyzeDiff(pcap(a), pcap(b));
    expect(r.flows.find((x) => x.protocol === 'arp')!.divergence).toMatchObject({ cause: 'payload', offset: 1, offsetUnit: 'datagram' });
  });
});

describe('--client capture', () => {
  it('names the client of a flow the output captures show without a handshake', () => {
    const tcp = connFrames({ cport: 40001, isn: 1, chunks: body, end: 'fin' });
    const reply = (p: string, t: number): Frame => ({ bytes: udpFrame({ src: SERVER, dst: CLIENT, sport: 5000, dport: 123, payload: Buffer.from(p) }), t });
    const request = { bytes: udpFrame({ src: CLIENT, dst: SERVER, sport: 123, dport: 5000, payload: Buffer.from('q') }), t: 999 };
    const p = pcap([...tcp, reply('answer', 1000)]);
    const s = pcap([...tcp, reply('answeR', 1000)]);
    const plain = analyzeDiff(p, s).flows.find((f) => f.protocol === 'udp')!;
    expect(plain.client).toBe('192.0.2.2:5000'); // only the reply is in the output: its sender looks like the client
    expect(plain.divergence!.direction).toBe('client-to-server');
    const c = pcap([request, ...connFrames({ cport: 40001, isn: 1, chunks: [], end: 'none', withClient: true })]);
    const f = analyzeDiff(p, s, { clientCapture: c }).flows.find((x) => x.protocol === 'udp')!;
    expect(f.client).toBe('192.0.2.1:123');
    expect(f.server).toBe('192.0.2.2:5000');
    expect(f.divergence).toMatchObject({ cause: 'payload', direction: 'server-to-client', offset: 0 });
  });
});

describe('bad input: a ColoError with a code', () => {
  const good = (): string => pcap(connFrames({ cport: 40001, isn: 1, chunks: body, end: 'fin' }));
  const code = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(ColoError);
      return (e as ColoError).code;
    }
    return 'no error';
  };
  it('truncated capture', () => {
    const f = good();
    const b = readFileSync(f);
    const cut = join(tmp, 'cut.pcap');
    writeFileSync(cut, b.subarray(0, b.length - 7));
    expect(code(() => analyzeDiff(good(), cut))).toBe('ERR_CAPTURE_TRUNCATED');
  });
  it('corrupt capture (not a capture at all)', () => {
    const bad = join(tmp, 'bad.pcap');
    writeFileSync(bad, 'this is not a capture file at all');
    expect(code(() => analyzeDiff(bad, good()))).toBe('ERR_CAPTURE_FORMAT');
  });
  it('missing file', () => {
    expect(code(() => analyzeDiff(join(tmp, 'nope.pcap'), good()))).toBe('ERR_CAPTURE_IO');
  });
  it('no TCP in a capture', () => {
    expect(code(() => analyzeDiff(pcap(udpFrames(['x'])), good()))).toBe('ERR_INVALID_ARGUMENT');
  });
  it('mismatched link types', () => {
    const raw = pcap(connFrames({ cport: 40001, isn: 1, chunks: body, end: 'fin' }), 101);
    expect(code(() => analyzeDiff(good(), raw))).toBe('ERR_CAPTURE_LINKTYPE');
  });
});
