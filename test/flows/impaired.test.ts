/**
 * `colo-proxy flows` on real kernel TCP recorded under loss, duplication and reordering (the
 * lossy relay between two network namespaces, test/helpers/lossy-relay.ts), checked against:
 * - the bytes the workload sent, recomputed from its seed: the capture is taken on the
 *   server's tap, so it holds everything the server's stack accepted (client → server, after
 *   the relay's damage and the client's retransmissions) and everything the server sent
 *   (server → client, retransmissions included) — both directions must come out whole, no gap;
 * - tshark, with the same two oracles as for the shared captures (tshark-compare.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { lossyRelaySkipReason, recordImpairedCapture, type ImpairedCapture } from '../helpers/lossy-relay.js';
import { pattern } from '../helpers/relay-pattern.js';
import { hasTool } from '../helpers/tools.js';
import { runFlows } from './cli-run.js';
import { compareWithTshark } from './tshark-compare.js';

const skip = lossyRelaySkipReason() ?? (hasTool('tshark') ? null : 'tshark not found');
if (skip !== null) console.warn(`test/flows impaired capture: skipped: ${skip}`);

const captures: ImpairedCapture[] = [];
afterAll(() => {
  for (const c of captures) c.dispose();
});

describe.skipIf(skip !== null)('flows on real kernel TCP under loss, duplication and reordering', () => {
  const scenarios = [
    { name: 'moderate damage both ways', opts: { seed: 21, loss: 0.03, dup: 0.03, reorder: 0.05, reorderK: 3 } },
    { name: 'heavy loss and deep reordering client → server', opts: { seed: 22, c2s: { loss: 0.08, reorder: 0.1, reorderK: 6 }, s2c: { dup: 0.05 }, workload: { connections: 2 } } },
  ];
  it.each(scenarios)('$name: every connection reassembles to exactly the bytes sent each way, and agrees with tshark', async ({ opts }) => {
    const c = await recordImpairedCapture(opts);
    captures.push(c);
    expect(c.captureDropped).toBe(0);
    const { connections, upBytes, downBytes } = c.workload;
    const run = runFlows(c.pcapPath);
    try {
      const conns = run.report.connections;
      expect(conns.length).toBe(connections);
      const seen = new Set<number>();
      let retransmitted = 0;
      let outOfOrder = 0;
      for (const conn of conns) {
        const up = run.file(conn.clientToServer);
        const down = run.file(conn.serverToClient);
        // The workload's client sends its connection id (u32 BE) first, then its pattern.
        const id = up.readUInt32BE(0);
        seen.add(id);
        expect(up.length, `connection ${id} up`).toBe(4 + upBytes);
        expect(up.subarray(4).equals(pattern(c.seed, id, 'up', upBytes)), `connection ${id} up bytes`).toBe(true);
        expect(down.length, `connection ${id} down`).toBe(downBytes);
        expect(down.equals(pattern(c.seed, id, 'down', downBytes)), `connection ${id} down bytes`).toBe(true);
        for (const d of [conn.clientToServer, conn.serverToClient]) {
          expect(d.gaps).toBe(0);
          expect(d.overlapConflicts).toBe(0);
          expect(d.end).toBe('fin');
          retransmitted += d.retransmitted;
          outOfOrder += d.outOfOrder;
        }
      }
      expect([...seen].sort()).toEqual(Array.from({ length: connections }, (_, i) => i));
      // The relay's damage is visible in the capture: duplicates/retransmissions and reordering.
      expect(c.relay.c2s.dropped + c.relay.s2c.dropped).toBeGreaterThan(0);
      expect(retransmitted).toBeGreaterThan(0);
      expect(outOfOrder).toBeGreaterThan(0);
      const tally = compareWithTshark(c.pcapPath, run, 'impaired capture');
      expect(tally.directions).toBe(2 * connections);
      expect(tally.exact).toBe(2 * connections);
    } finally {
      run.cleanup();
    }
  }, 120_000);
});
