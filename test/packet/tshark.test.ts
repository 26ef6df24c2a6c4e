/**
 * Real-capture agreement with tshark: every frame of every Ethernet capture in the shared
 * PcapPlusPlus set, field by field, checksum verdicts included. Then the same with frames
 * corrupted on purpose (so "bad checksum" verdicts are compared too) and with hand-built frames
 * for what the captures lack (IPv6 extension chains, ICMPv6, SACK, QinQ, IPv4 options).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PcapWriter } from '../../src/capture/writer.js';
import { decodeFrame, LAYER_IPV4, PacketView } from '../../src/packet/index.js';
import { sharedCapture } from '../helpers/paths.js';
import { hasTool } from '../helpers/tools.js';
import {
  ah6,
  be16,
  be32,
  eth,
  ext6,
  frag6,
  icmp,
  ip4,
  ipv4,
  ipv6,
  naiveL4Checksum,
  set16,
  tcp,
  udp,
  V6_DST,
  V6_SRC,
  type Bytes,
} from './build.js';
import { allCaptures, loadFrames, type Frame } from './frames.js';
import { compareFrames, emptyCoverage, tsharkRows, type Coverage } from './tshark-compare.js';

const haveTshark = hasTool('tshark');
const tmp = mkdtempSync(join(tmpdir(), 'colo-decode-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function writePcap(name: string, frames: ReadonlyArray<Uint8Array>): string {
  const path = join(tmp, name);
  const w = new PcapWriter(path);
  frames.forEach((f, i) => w.write(f, 0, f.length, 1_700_000_000 + i, 0));
  w.close();
  return path;
}

const total = emptyCoverage();
function add(c: Coverage): void {
  for (const k of Object.keys(c) as Array<keyof Coverage>) total[k] += c[k];
}

describe.skipIf(!haveTshark)('agreement with tshark', () => {
  for (const name of allCaptures()) {
    it(`${name}: every frame`, () => {
      const path = sharedCapture(name);
      const frames = loadFrames(path);
      const cov = emptyCoverage();
      const bad = compareFrames(frames, tsharkRows(path), cov);
      add(cov);
      expect(bad.slice(0, 20)).toEqual([]);
      expect(cov.frames).toBe(frames.filter((f) => f.ethernet).length);
    });
  }

  it('corrupted copies: checksum verdicts (IPv4 header, TCP, UDP, ICMP) still agree', () => {
    const v = new PacketView();
    const out: Uint8Array[] = [];
    for (const name of ['many-protocols.pcap', 'ip4_fragments.pcap', 'ip6_fragments.pcap', 'ipv6.pcapng', 'tcp-reassembly.pcap']) {
      for (const fr of loadFrames(sharedCapture(name))) {
        if (!fr.ethernet) continue;
        const b = Uint8Array.from(fr.bytes);
        decodeFrame(v, b, 0, b.length);
        // Round-robin over three corruptions; every frame keeps its headers' structure.
        const k = out.length % 3;
        if (k === 0 && (v.layers & LAYER_IPV4) !== 0) b[v.l3Off + 10] ^= 0x5a; // IPv4 header checksum field
        else if (k === 1 && v.payloadLen > 0) b[v.payloadOff + (v.payloadLen >> 1)] ^= 0x01; // a payload byte
        else if (k === 2 && v.l4Off >= 0 && v.ipEnd - v.l4Off >= 8) b[v.l4Off + 7] ^= 0x80; // a byte of the L4 header
        out.push(b);
      }
    }
    const path = writePcap('corrupted.pcap', out);
    const frames: Frame[] = out.map((bytes, i) => ({ no: i + 1, bytes, origLen: bytes.length, ethernet: true }));
    const cov = emptyCoverage();
    const bad = compareFrames(frames, tsharkRows(path), cov);
    add(cov);
    expect(bad.slice(0, 20)).toEqual([]);
    expect(cov.ipChecksumBad).toBeGreaterThan(100);
    expect(cov.checksumBad).toBeGreaterThan(100);
    expect(cov.checksumGood).toBeGreaterThan(100);
  });

  it('hand-built frames for what the captures lack', () => {
    const frames = handBuiltFrames();
    const path = writePcap('handbuilt.pcap', frames.map((f) => Uint8Array.from(f)));
    const cov = emptyCoverage();
    const bad = compareFrames(
      frames.map((f, i) => ({ no: i + 1, bytes: Uint8Array.from(f), origLen: f.length, ethernet: true })),
      tsharkRows(path),
      cov,
    );
    add(cov);
    expect(bad.slice(0, 20)).toEqual([]);
    expect(cov.icmp6).toBeGreaterThanOrEqual(3);
    expect(cov.checksumBad).toBeGreaterThanOrEqual(2);
  });

  it('covered every protocol the decoder knows', () => {
    // Runs last (vitest keeps declaration order within a file): the sums of all the above.
    for (const k of Object.keys(total) as Array<keyof Coverage>) expect(total[k], k).toBeGreaterThan(0);
  });
});

/** Frames with valid checksums unless stated, built from the RFC layouts in build.ts. */
function handBuiltFrames(): Bytes[] {
  const out: Bytes[] = [];
  const withL4Sum = (l3: 'v4' | 'v6', nh: number, l4: Bytes, csumAt: number, wrap: (l4: Bytes) => Bytes, corrupt = false): Bytes => {
    const src = l3 === 'v4' ? ip4('192.0.2.1') : V6_SRC;
    const dst = l3 === 'v4' ? ip4('198.51.100.2') : V6_DST;
    let c = naiveL4Checksum(src, dst, nh, l4);
    if (nh === 17 && c === 0) c = 0xffff;
    if (corrupt) c ^= 0x0101;
    set16(l4, csumAt, c);
    return wrap(l4);
  };
  const sack = [1, 1, 5, 18, ...be32(1000), ...be32(2000), ...be32(3000), ...be32(4000)];
  const tsOpt = [1, 1, 8, 10, ...be32(123456), ...be32(654321)];
  const seg = (options: Bytes, payload: Bytes) => tcp({ sport: 443, dport: 51000, seq: 0xf0000000, ack: 77, flags: 0x010, window: 1000, options }, payload);

  // ICMPv6 echo request + reply, one with a bad checksum.
  out.push(withL4Sum('v6', 58, icmp(128, 0, [...be16(0x1234), ...be16(1)], [1, 2, 3, 4, 5]), 2, (l4) => eth(0x86dd, ipv6({ nh: 58 }, l4))));
  out.push(withL4Sum('v6', 58, icmp(129, 0, [...be16(0x1234), ...be16(1)], [1, 2, 3, 4, 5]), 2, (l4) => eth(0x86dd, ipv6({ nh: 58 }, l4)), true));
  // ICMPv6 neighbour solicitation behind a hop-by-hop header.
  out.push(
    withL4Sum('v6', 58, icmp(135, 0, [0, 0, 0, 0], V6_DST), 2, (l4) =>
      eth(0x86dd, ipv6({ nh: 0, hlim: 255 }, [...ext6(58, [1, 4, 0, 0, 0, 0]), ...l4])),
    ),
  );
  // TCP over IPv6: HBH → destination options → TCP with timestamps + SACK.
  out.push(
    withL4Sum('v6', 6, seg([...tsOpt, ...sack], [0x61, 0x62]), 16, (l4) =>
      eth(0x86dd, ipv6({ nh: 0, tc: 0xb8, flow: 0x12345 }, [...ext6(60, [1, 4, 0, 0, 0, 0]), ...ext6(6, [1, 4, 0, 0, 0, 0]), ...l4])),
    ),
  );
  // TCP over IPv6 with a wrong checksum.
  out.push(withL4Sum('v6', 6, seg(tsOpt, [1]), 16, (l4) => eth(0x86dd, ipv6({ nh: 6 }, l4)), true));
  // UDP over IPv6 behind AH.
  out.push(withL4Sum('v6', 17, udp(5353, 5353, [9, 9, 9]), 6, (l4) => eth(0x86dd, ipv6({ nh: 51 }, [...ah6(17, 0x100, 1, 12), ...l4]))));
  // IPv6 first and second fragment of a UDP datagram.
  out.push(eth(0x86dd, ipv6({ nh: 44 }, [...frag6(17, 0, true, 0xabcdef), ...udp(1000, 2000, new Array<number>(32).fill(1), 8 + 64)])));
  out.push(eth(0x86dd, ipv6({ nh: 44 }, [...frag6(17, 5, false, 0xabcdef), ...new Array<number>(32).fill(1)])));
  // QinQ + IPv4 with options + TCP SYN options.
  const syn = [2, 4, ...be16(1460), 4, 2, 8, 10, ...be32(5), ...be32(0), 1, 3, 3, 7];
  out.push(
    withL4Sum('v4', 6, tcp({ sport: 1, dport: 2, seq: 3, ack: 0, flags: 0x002, window: 65535, options: syn }, []), 16, (l4) =>
      eth(0x0800, ipv4({ proto: 6, options: [0x94, 4, 0, 0], tos: 0x10, id: 4242, flags: 2 }, l4), [[0x88a8, 100], [0x8100, 200]]),
    ),
  );
  // ICMPv4 echo with a bad checksum; UDP over IPv4 with checksum 0 (absent).
  out.push(withL4Sum('v4', -1, icmp(8, 0, [0, 7, 0, 9], [1, 2, 3]), 2, (l4) => eth(0x0800, ipv4({ proto: 1 }, l4)), true));
  out.push(eth(0x0800, ipv4({ proto: 17 }, udp(68, 67, [1, 2, 3, 4], 12, 0))));
  return out;
}
