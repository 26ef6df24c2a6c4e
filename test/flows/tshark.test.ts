/**
 * `colo-proxy flows` against Wireshark, for EVERY TCP connection of EVERY shared capture.
 *
 * Two tshark-derived oracles per connection direction:
 *  1. tshark's own reassembly, `-z follow,tcp,raw,N` (batched, 200 follows per run): our file
 *     must equal it byte for byte. tshark's output differs from a faithful byte stream in
 *     documented ways, each asserted precisely rather than skipped:
 *     - a hole the receiver ACKed (data lost before the capture point) appears in tshark as a
 *       "[N bytes missing in capture file]" marker: it must be exactly one of our gaps (same
 *       file offset and length), and the bytes around it equal;
 *     - a hole nobody ACKed (one-way captures: no reverse traffic at all) makes tshark hold
 *       everything behind it forever and print nothing past it; we declare the gap and keep
 *       delivering (Zeek-style), so tshark's output must be exactly our file up to that gap;
 *     - data sent after an in-window RST (the peer's segments already in flight when the RST
 *       crossed them) is appended by tshark; our reassembler ends both directions at the RST
 *       (documented policy: the connection is over), so tshark's output must be our file
 *       followed by exactly the payloads of those late segments.
 *  2. tshark's per-segment dissection (relative sequence number + payload bytes), reassembled
 *     by a naive first-wins model (tshark-oracle.ts): every captured byte must sit at its
 *     stream offset in our output, every hole of the model must be inside one of our gaps and
 *     vice versa. This checks the bytes we deliver past holes that tshark will not show.
 * Connections are matched to tshark's streams by endpoints and order of appearance (tshark
 * numbers streams by first appearance; we number connections by start). The checks live in
 * tshark-compare.ts (shared with the impaired-capture test).
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PCAPPP } from '../helpers/paths.js';
import { hasTool } from '../helpers/tools.js';
import { runFlows } from './cli-run.js';
import { compareWithTshark, type Tally } from './tshark-compare.js';

const CAPTURES = readdirSync(PCAPPP).filter((f) => /\.(pcap|pcapng)$/.test(f)).sort();

describe.skipIf(!hasTool('tshark'))('flows agrees with tshark on every TCP connection of every shared capture', () => {
  const tallies = new Map<string, Tally>();

  for (const name of CAPTURES) {
    it(name, () => {
      const file = `${PCAPPP}/${name}`;
      const run = runFlows(file);
      try {
        expect(run.report.complete).toBe(true);
        const tally = compareWithTshark(file, run, name);
        tallies.set(name, tally);
        // Captures with both directions of every connection match tshark without the
        // unacked-hole caveat (it only arises when the receiver's packets are not captured).
        if (!/^(4KHttpRequests|650HttpResponses)\.pcap$/.test(name)) expect(tally.unackedHoles).toBe(0);
      } finally {
        run.cleanup();
      }
    });
  }

  it('exercised every caveat and mostly exact agreement', () => {
    const all = [...tallies.values()].reduce((a, t) => ({
      directions: a.directions + t.directions,
      exact: a.exact + t.exact,
      ackedHoles: a.ackedHoles + t.ackedHoles,
      unackedHoles: a.unackedHoles + t.unackedHoles,
      afterRst: a.afterRst + t.afterRst,
    }));
    // The shared captures hold hundreds of TCP connections.
    expect(all.directions).toBeGreaterThan(1000);
    expect(all.ackedHoles).toBeGreaterThan(0); // http-packets.pcap
    expect(all.unackedHoles).toBeGreaterThan(0); // the one-way captures
    expect(all.afterRst).toBeGreaterThan(0); // many-protocols.pcap
    expect(all.exact / all.directions).toBeGreaterThan(0.85);
  });
});
