/**
 * Real traffic: every frame of a shared reference capture is the primary's output, and the
 * same frames — with the IPv4 ID, TTL (and header checksum) or IPv6 hop limit rewritten, and
 * delivered several frames later — are the secondary's. Real captures bring what synthetic
 * tests do not: options, keep-alives, retransmissions, port reuse, ICMP errors, fragments,
 * IPv6 extension headers, ARP, 802.3 frames.
 *
 * Oracles: the primary output must be the input frames, unchanged, each once, with no
 * checkpoint; per-flow order is checked against tshark's own stream numbering (tcp.stream,
 * udp.stream), which is independent of the engine's flow table.
 */
import { describe, expect, it } from 'vitest';
import { toEthernet } from '../../src/capture/linktype.js';
import { openCapture } from '../../src/capture/reader.js';
import { sharedCapture } from '../helpers/paths.js';
import { hasTool, tshark } from '../helpers/tools.js';
import { naiveChecksum } from '../packet/build.js';
import { Harness, keepsOrder } from './harness.js';

/** Captures whose streams are complete (no bytes missing from the capture). */
const CAPTURES = ['http-packets2.pcap', 'one_tcp_stream.pcap', 'three_http_streams.pcap', 'tcp-reassembly.pcap', 'many-protocols.pcap', 'ipv6.pcapng', 'ip6_fragments.pcap'];

const LAG = 5;

function loadFrames(name: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const r = openCapture(sharedCapture(name));
  for (let rec = r.next(); rec !== null; rec = r.next()) {
    if (!toEthernet(rec)) continue;
    out.push(Uint8Array.from(rec.buf.subarray(rec.off, rec.off + rec.capLen)));
  }
  r.close();
  return out;
}

/** The frame as the other VM would send it: IP ID and TTL / hop limit differ (test-side parsing, RFC layouts). */
function otherVm(f: Uint8Array, i: number): Uint8Array {
  const g = Uint8Array.from(f);
  let l3 = 14;
  let type = (g[12]! << 8) | g[13]!;
  while ((type === 0x8100 || type === 0x88a8) && l3 + 4 <= g.length) {
    type = (g[l3 + 2]! << 8) | g[l3 + 3]!;
    l3 += 4;
  }
  if (type === 0x0800 && l3 + 20 <= g.length) {
    const ihl = (g[l3]! & 15) * 4;
    g[l3 + 4] = (i >> 8) & 0xff;
    g[l3 + 5] = (i * 7) & 0xff;
    g[l3 + 8] = 255 - (g[l3 + 8]! & 0x7f);
    g[l3 + 10] = 0;
    g[l3 + 11] = 0;
    if (l3 + ihl <= g.length) {
      const c = naiveChecksum(Array.from(g.subarray(l3, l3 + ihl)));
      g[l3 + 10] = c >> 8;
      g[l3 + 11] = c & 0xff;
    }
  } else if (type === 0x86dd && l3 + 40 <= g.length) {
    g[l3 + 7] = 1 + (i % 200);
  }
  return g;
}

/** tshark's stream id per frame ("t3", "u7", or "" for frames in no TCP/UDP stream). */
function streamIds(name: string): string[] {
  const out = tshark(['-r', sharedCapture(name), '-T', 'fields', '-e', 'tcp.stream', '-e', 'udp.stream']);
  return out
    .split('\n')
    .filter((l, i, a) => i < a.length - 1 || l !== '')
    .map((l) => {
      const [t, u] = l.split('\t');
      if (t) return `t${t}`;
      if (u) return `u${u}`;
      return '';
    });
}

describe.skipIf(!hasTool('tshark'))('shared captures as both inputs', () => {
  for (const name of CAPTURES) {
    it(`${name}: no checkpoint, output = input, per-flow order kept`, () => {
      const frames = loadFrames(name);
      const ids = streamIds(name);
      expect(ids.length).toBe(frames.length);
      const h = new Harness({ poolSlots: 16_384 });
      for (let i = 0; i < frames.length + LAG; i++) {
        if (i < frames.length) h.p(frames[i]!, i);
        const j = i - LAG;
        if (j >= 0) h.s(otherVm(frames[j]!, j), i);
      }
      expect(h.records).toEqual([]);
      const st = h.engine.statsSnapshot();
      expect(st.primary.held).toBe(0);
      expect(st.primary.released + st.primary.unparseable).toBe(frames.length);
      const order = h.releasedIndices();
      const byStream = new Map<string, number[]>();
      ids.forEach((id, i) => {
        if (id !== '') byStream.set(id, [...(byStream.get(id) ?? []), i]);
      });
      for (const [id, idx] of byStream) expect(keepsOrder(order, idx), `stream ${id}`).toBe(true);
      h.finish();
    });
  }
});
