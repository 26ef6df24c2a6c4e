/**
 * `colo-proxy flows CAPTURE --out DIR`: reassemble every TCP connection of a capture into one
 * file per direction, and report per-connection figures as a table or JSON.
 */
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { Progress } from '../util/progress.js';
import { extractFlows, type ConnectionReport, type FlowsReport } from './flows-extract.js';
import { parseIntOption } from './options.js';

const HELP_AFTER = `
Files: one per TCP connection direction, named SRC.SPORT-DST.DPORT.bin (IPv6 in RFC 5952
text, e.g. 2001:db8::1.443-2001:db8::2.50000.bin), holding exactly the reassembled payload
bytes in stream order. The 2nd, 3rd, ... connection between the same two endpoints (a reused
4-tuple) gets -2, -3, ... before .bin, numbered in order of connection start. Every direction
gets a file, empty when it carried no payload. Existing files with the same names are replaced.

Gaps (bytes never captured): nothing is written for them, the file just continues with the
bytes after the gap; --json lists each gap with its stream offset, file offset, length and
reason. Overlapping retransmissions: the first copy of each byte wins; differing copies are
counted and listed as conflicts. Non-TCP flows are tracked and counted but get no files.
See docs/flows.md for the alignment rules and limits.

Exit status: 0 when the whole capture was read, 2 when it could not be read to the end (the
connections up to the damaged record are still written and reported, with the error).`;

export function registerFlows(program: Command): void {
  program
    .command('flows')
    .description('reassemble the TCP connections of a pcap/pcapng capture: one file of payload bytes per connection direction')
    .argument('<capture>', 'pcap or pcapng file')
    .requiredOption('-o, --out <dir>', 'folder for the direction files (created if missing)')
    .option('--json', 'print per-connection figures as one JSON object')
    .option('--vnet-hdr-len <n>', 'frames start with an N-byte virtio-net header (0..20)', parseIntOption(0, 20), 0)
    .option('--max-flows <n>', 'flow table size; the least recently used flow is evicted when full', parseIntOption(1, 1 << 26), 1 << 20)
    .option('-q, --quiet', 'no progress on stderr')
    .addHelpText('after', HELP_AFTER)
    .action((file: string, opts: { out: string; json?: boolean; vnetHdrLen: number; maxFlows: number; quiet?: boolean }) => {
      const size = statSync(file).size;
      const progress = new Progress({ label: 'flows', total: size, enabled: !opts.quiet });
      const r = extractFlows(file, opts.out, {
        vnetHdrLen: opts.vnetHdrLen,
        maxFlows: opts.maxFlows,
        onProgress: (off) => progress.update(off),
      });
      progress.done();
      if (opts.json) console.log(JSON.stringify(r, null, 2));
      else console.log(renderFlows(r));
      if (r.error) {
        process.stderr.write(`colo-proxy flows: ${r.error.message} (${r.error.code})\n`);
        process.exitCode = 2;
      }
    });
}

/** Human-readable table: one line per connection, then totals. */
export function renderFlows(r: FlowsReport): string {
  const head = ['#', 'client', 'server', 'c→s bytes', 's→c bytes', 'retx', 'ooo', 'gaps', 'end c→s/s→c'];
  const rows = r.connections.map((c) => row(c));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)));
  const right = new Set([0, 3, 4, 5, 6, 7]);
  const fmt = (cells: string[]) => cells.map((s, i) => (right.has(i) ? s.padStart(widths[i]!) : s.padEnd(widths[i]!))).join('  ').trimEnd();
  const lines = [fmt(head), ...rows.map(fmt)];
  const bytes = r.connections.reduce((a, c) => a + c.clientToServer.bytes + c.serverToClient.bytes, 0);
  const gaps = r.connections.reduce((a, c) => a + c.clientToServer.gaps + c.serverToClient.gaps, 0);
  lines.push(
    '',
    `${r.connections.length} TCP connections, ${bytes} payload bytes written to ${r.out}, ${gaps} gaps; ` +
      `${r.otherFlows} other flows; ${r.packets} records${r.complete ? '' : ' (stopped at a damaged record)'}`,
  );
  return lines.join('\n');
}

function row(c: ConnectionReport): string[] {
  const a = c.clientToServer;
  const b = c.serverToClient;
  return [
    String(c.serial),
    c.client,
    c.server,
    String(a.bytes),
    String(b.bytes),
    String(a.retransmitted + b.retransmitted),
    String(a.outOfOrder + b.outOfOrder),
    String(a.gaps + b.gaps),
    `${a.end ?? '-'}/${b.end ?? '-'}`,
  ];
}
