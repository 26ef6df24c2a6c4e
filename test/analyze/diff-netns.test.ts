/**
 * `colo-proxy diff` on captures of REAL kernel TCP stacks: a client namespace fetches three
 * responses from a server namespace (fixed client ports, so the runs share client endpoints),
 * tcpdump records the server's output on its interface (whole frames: veth hands GSO super-
 * segments to the capture). Two runs serving the same content
 * with different MTUs (so the kernel cuts the bytes differently, and picks its own ISNs, IP
 * IDs, timestamps) must be identical; a run where the server changes one byte of the second
 * response must diverge on that flow only, at that offset, with cause payload.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeDiff } from '../../src/analyze/diff/analyze.js';
import { NetnsLab, netnsSkipReason, stopProcess } from '../helpers/netns.js';
import { hasTool } from '../helpers/tools.js';

const skip = netnsSkipReason() ?? (hasTool('tcpdump') ? null : 'tcpdump not found');
const tmp = mkdtempSync(join(tmpdir(), 'colo-diff-netns-'));
const labs: NetnsLab[] = [];
afterAll(async () => {
  for (const l of labs) await l.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

const CLIENT_IP = '192.0.2.1';
const SERVER_IP = '192.0.2.2';
const PORT = 8080;
const CLIENT_PORTS = [41001, 41002, 41003];
const SIZE = 60_000;

const SERVER_JS = `
const net = require('net');
const [size, flipConn, flipAt] = process.argv.slice(1).map(Number);
let n = 0;
net.createServer((s) => {
  const i = n++;
  const b = Buffer.alloc(size);
  for (let k = 0; k < size; k++) b[k] = 65 + ((k * 7) % 26);
  if (i === flipConn) b[flipAt] ^= 0xff;
  s.on('error', () => {});
  s.end(b);
}).listen(${PORT}, '${SERVER_IP}', () => console.log('ready'));
`;

const CLIENT_JS = `
const net = require('net');
(async () => {
  for (const p of ${JSON.stringify(CLIENT_PORTS)}) {
    await new Promise((res, rej) => {
      const c = net.connect({ host: '${SERVER_IP}', port: ${PORT}, localAddress: '${CLIENT_IP}', localPort: p });
      let got = 0;
      c.on('data', (d) => { got += d.length; });
      c.on('end', () => { c.end(); res(got); });
      c.on('error', rej);
    });
  }
  console.log('done');
})().catch((e) => { console.error(String(e)); process.exit(1); });
`;

function waitOutput(p: ChildProcess, stream: 'stdout' | 'stderr', text: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`timed out waiting for "${text}": ${buf}`)), timeoutMs);
    p[stream]!.setEncoding('utf8');
    p[stream]!.on('data', (s: string) => {
      buf += s;
      if (buf.includes(text)) {
        clearTimeout(t);
        resolve();
      }
    });
    p.once('exit', (c) => {
      clearTimeout(t);
      reject(new Error(`exited (${c}) before "${text}": ${buf}`));
    });
  });
}

/** One run in fresh namespaces; returns the capture of the server's output. */
async function runOnce(name: string, mtu: number, flipConn = -1, flipAt = 0): Promise<string> {
  const lab = new NetnsLab('dif');
  labs.push(lab);
  const c = lab.add('c');
  const s = lab.add('s');
  lab.veth(c, 'vc', s, 'vs');
  for (const [ns, dev] of [[c, 'vc'], [s, 'vs']] as const) lab.ipIn(ns, ['link', 'set', dev, 'mtu', String(mtu)]);
  lab.addr(c, 'vc', `${CLIENT_IP}/24`);
  lab.addr(s, 'vs', `${SERVER_IP}/24`);
  const file = join(tmp, `${name}.pcap`);
  const dump = lab.spawn(s, 'tcpdump', ['-i', 'vs', '-n', '-s', '0', '-U', '--immediate-mode', '-w', file, 'tcp and src host', SERVER_IP], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitOutput(dump, 'stderr', 'listening on', 10_000);
  const server = lab.spawn(s, process.execPath, ['-e', SERVER_JS, String(SIZE), String(flipConn), String(flipAt)]);
  await waitOutput(server, 'stdout', 'ready', 10_000);
  const r = lab.run(c, process.execPath, ['-e', CLIENT_JS], { timeoutMs: 20_000 });
  expect(r.stdout, r.stderr).toContain('done');
  await new Promise((res) => setTimeout(res, 200)); // the last FIN/ACKs reach the capture
  await stopProcess(server);
  await stopProcess(dump, 5000, 'SIGINT');
  await lab.dispose();
  return file;
}

describe.skipIf(skip !== null)('diff on real kernel stacks in network namespaces', () => {
  it('same content, different MTU: identical (benign segmentation); one changed byte: that flow, that offset, payload', async () => {
    const a = await runOnce('a', 1500);
    const b = await runOnce('b', 1280);
    const same = analyzeDiff(a, b);
    expect(same.summary.flows).toBe(3);
    expect(same.flows.map((f) => f.divergence?.detail ?? null)).toEqual([null, null, null]);
    expect(same.summary.benign.segmentation).toBeGreaterThan(0);
    expect(same.flows.every((f) => f.alignment === 'own-space' && f.primary!.bytes[1] === SIZE && f.secondary!.bytes[1] === SIZE)).toBe(true);

    const d = await runOnce('d', 1400, 1, 33_333);
    const r = analyzeDiff(a, d);
    expect(r.summary.diverged).toBe(1);
    const f = r.flows.find((x) => x.divergence !== null)!;
    expect(f.client).toBe(`${CLIENT_IP}:${CLIENT_PORTS[1]}`);
    expect(f.server).toBe(`${SERVER_IP}:${PORT}`);
    expect(f.divergence).toMatchObject({ cause: 'payload', direction: 'server-to-client', offset: 33_333 });
  }, 60_000);
});
