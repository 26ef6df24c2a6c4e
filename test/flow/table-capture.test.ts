/**
 * The flow table on real captures, through the engine's pipeline (reader → toEthernet →
 * decode → defrag → lookup), against tshark:
 * - with idle timeouts out of the way, every TCP and UDP conversation tshark lists
 *   (`-z conv,tcp` / `conv,udp`) is exactly one of our flows, with the same frame counts in
 *   each direction;
 * - with the default UDP timeout (30 s), flows split exactly where tshark's per-frame times
 *   for a UDP stream show a gap of 30 s or more;
 * - each TCP flow's final close state is consistent with the FIN/RST flags tshark saw in
 *   its stream.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMEOUTS } from '../../src/flow/table-options.js';
import { sharedCapture } from '../helpers/paths.js';
import { hasTool, tshark } from '../helpers/tools.js';
import { allCaptures } from '../packet/frames.js';
import { engineConvs, engineFlows, sortConvs, tsharkConvs } from './table-conv.js';

const haveTshark = hasTool('tshark');

describe.skipIf(!haveTshark)('flow table vs tshark conversations', () => {
  for (const name of allCaptures()) {
    it(`${name}: same TCP and UDP conversations, same frames each way`, () => {
      const path = sharedCapture(name);
      const e = engineFlows(path);
      expect(sortConvs(engineConvs(e.flows, 6))).toEqual(sortConvs(tsharkConvs(path, 'tcp')));
      expect(sortConvs(engineConvs(e.flows, 17))).toEqual(sortConvs(tsharkConvs(path, 'udp')));
      expect(e.stats.created).toBe(e.flows.length);
      expect(e.poolInUse).toBe(0);
    });
  }

  it('the captures together hold a meaningful number of conversations', () => {
    // Guards against the comparison passing vacuously (e.g. both sides parsing to nothing).
    let n = 0;
    for (const name of ['many-protocols.pcap', '650HttpResponses.pcap', 'ipv6.pcapng']) n += tsharkConvs(sharedCapture(name), 'tcp').length + tsharkConvs(sharedCapture(name), 'udp').length;
    expect(n).toBeGreaterThan(500);
  });

  for (const name of ['ip6_fragments.pcap', 'many-protocols.pcap', 'ipv6.pcapng']) {
    it(`${name}: with the 30 s UDP timeout, UDP flows split at tshark's ≥ 30 s gaps`, () => {
      const path = sharedCapture(name);
      const rows = tshark(['-r', path, '--disable-protocol', 'lisp', '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'udp.stream', '-Y', 'udp'])
        .trim()
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => l.split('\t'));
      const last = new Map<string, number>();
      let expected = 0;
      for (const [t, stream] of rows) {
        const ms = Number(t) * 1000;
        const prev = last.get(stream!);
        if (prev === undefined || ms - prev >= DEFAULT_TIMEOUTS.udpMs) expected++;
        last.set(stream!, ms);
      }
      const e = engineFlows(path, DEFAULT_TIMEOUTS);
      expect(e.flows.filter((f) => f.proto === 17).length).toBe(expected);
    });
  }

  for (const name of ['many-protocols.pcap', 'http-packets2.pcap', 'three_http_streams.pcap', '650HttpResponses.pcap', 'tcp-reassembly.pcap']) {
    it(`${name}: TCP close states agree with the FIN/RST flags tshark saw`, () => {
      const path = sharedCapture(name);
      const rows = tshark(['-r', path, '-T', 'fields', '-e', 'tcp.stream', '-e', 'ip.src', '-e', 'ipv6.src', '-e', 'tcp.srcport', '-e', 'ip.dst', '-e', 'ipv6.dst', '-e', 'tcp.dstport', '-e', 'tcp.flags', '-Y', 'tcp'])
        .trim()
        .split('\n')
        // Frames with several TCP layers (sFlow samples quote packet headers) are not TCP traffic.
        .filter((l) => !l.includes(','))
        .map((l) => l.split('\t'));
      // Per conversation (sorted endpoints): which senders sent a FIN, and whether any RST was seen.
      const seen = new Map<string, { fins: Set<string>; rst: boolean }>();
      for (const [, s4, s6, sp, d4, d6, dp, flags] of rows) {
        const a = `${s4 || s6}:${sp}`;
        const b = `${d4 || d6}:${dp}`;
        const key = a < b ? `${a} ${b}` : `${b} ${a}`;
        const e = seen.get(key) ?? { fins: new Set<string>(), rst: false };
        const f = parseInt(flags!, 16);
        if (f & 0x01) e.fins.add(a);
        if (f & 0x04) e.rst = true;
        seen.set(key, e);
      }
      const e = engineFlows(path);
      const tcpFlows = e.flows.filter((f) => f.proto === 6);
      expect(tcpFlows.length).toBe(seen.size);
      const states = new Map<string, number>();
      for (const f of tcpFlows) {
        const a = f.initiator.replace(/^\[(.*)\]/, '$1');
        const b = f.responder.replace(/^\[(.*)\]/, '$1');
        const t = seen.get(a < b ? `${a} ${b}` : `${b} ${a}`)!;
        expect(t).toBeDefined();
        states.set(f.state, (states.get(f.state) ?? 0) + 1);
        if (t.rst) expect(f.state).toBe('TCP_CLOSED');
        else if (t.fins.size === 0) expect(['TCP_ESTABLISHED', 'TCP_EMBRYONIC']).toContain(f.state);
        else expect(['TCP_CLOSING', 'TCP_CLOSED']).toContain(f.state);
        if (f.state === 'TCP_CLOSED' && !t.rst) expect(t.fins.size).toBe(2);
      }
      expect(states.size).toBeGreaterThan(0);
    });
  }
});
