/**
 * `colo-proxy inspect CAPTURE`: what is in a capture, as a table or JSON.
 */
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { summarizeCapture, type CaptureSummary } from '../analyze/summary.js';
import { Progress } from '../util/progress.js';
import { parseIntOption } from './options.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('summarise a pcap/pcapng capture: packets, bytes, link types, time span, protocol mix, flows, undecodable frames')
    .argument('<capture>', 'pcap or pcapng file')
    .option('--json', 'print one JSON object (fields include packets = records, bytes = captured bytes)')
    .option('--vnet-hdr-len <n>', 'frames start with an N-byte virtio-net header (0..20)', parseIntOption(0, 20), 0)
    .option('-q, --quiet', 'no progress on stderr')
    .addHelpText('after', '\nExit status: 0 when the whole file was read, 2 when it could not be read to the end\n(the summary of the records before the damage is still printed, with the error).')
    .action((file: string, opts: { json?: boolean; vnetHdrLen: number; quiet?: boolean }) => {
      const size = statSync(file).size;
      const progress = new Progress({ label: 'inspect', total: size, enabled: !opts.quiet });
      const s = summarizeCapture(file, { vnetHdrLen: opts.vnetHdrLen, onProgress: (off) => progress.update(off) });
      progress.done();
      if (opts.json) console.log(JSON.stringify(s, null, 2));
      else console.log(renderSummary(s));
      if (s.error) {
        process.stderr.write(`colo-proxy inspect: ${s.error.message} (${s.error.code})\n`);
        process.exitCode = 2;
      }
    });
}

export function renderSummary(s: CaptureSummary): string {
  const p = s.protocols;
  const lines: [string, string][] = [
    ['file', `${s.file} (${s.format})`],
    ['packets', `${s.packets}${s.complete ? '' : ' (stopped at a damaged record)'}`],
    ['bytes', `${s.bytes} captured, ${s.wireBytes} on the wire${s.truncatedRecords ? `, ${s.truncatedRecords} records cut by snaplen` : ''}`],
    ['link types', s.linkTypes.map((l) => `${l.name} (${l.linkType}): ${l.packets}`).join(', ') || '-'],
    ['time span', s.firstTime ? `${isoTime(s.firstTime)} → ${isoTime(s.lastTime!)} (${s.durationSec.toFixed(6)} s)` : '-'],
    ['layer 2', mixLine([['ethernet', p.ethernet], ['vlan-tagged', p.vlanTagged], ['arp', p.arp], ['other', p.otherL2], ['not ethernet', p.notEthernet]])],
    ['layer 3', mixLine([['ipv4', p.ipv4], ['ipv6', p.ipv6], ['fragments', p.fragments]])],
    ['layer 4', mixLine([['tcp', p.tcp], ['udp', p.udp], ['icmp', p.icmp], ['icmpv6', p.icmpv6], ['other', p.otherIp]])],
    ['flows', `${s.flows}${Object.keys(s.flowsByProtocol).length ? ` (${Object.entries(s.flowsByProtocol).map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}`],
    ['undecodable', Object.entries(s.undecodable).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'],
  ];
  const w = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

function mixLine(parts: [string, number][]): string {
  const nz = parts.filter(([, n]) => n > 0);
  return nz.length ? nz.map(([k, n]) => `${k} ${n}`).join(', ') : '-';
}

function isoTime(t: string): string {
  const [sec, frac] = t.split('.');
  const iso = new Date(Number(sec) * 1000).toISOString().replace('.000Z', '');
  return `${iso}.${frac}Z`;
}
