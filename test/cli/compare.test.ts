/**
 * `colo-proxy compare` end to end as a child process: offline (pcap: endpoints, shadow
 * checkpoints) checked against tshark, and live over unix sockets with a scripted QMP primary.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openCapture } from '../../src/capture/reader.js';
import { decodeFrame } from '../../src/packet/decode.js';
import { LAYER_TCP, LAYER_UDP } from '../../src/packet/layer.js';
import { PacketView } from '../../src/packet/view.js';
import { PacketPool } from '../../src/packet/pool.js';
import { FramedChannel } from '../../src/wire/connection.js';
import { ROOT, sharedCapture } from '../helpers/paths.js';
import { hasTool, tshark } from '../helpers/tools.js';
import { FakeQmp, until } from '../control/fake-qmp.js';

const CLI = resolve(ROOT, 'src/cli/main.ts');
const tmp = mkdtempSync(join(tmpdir(), 'colo-compare-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function frameDigests(path: string): string[] {
  const out: string[] = [];
  const r = openCapture(path);
  for (let x = r.next(); x !== null; x = r.next()) out.push(createHash('md5').update(x.buf.subarray(x.off, x.off + x.capLen)).digest('hex'));
  r.close();
  return out;
}

interface Summary {
  accounting: { primary: { received: number; released: number; held: number; unparseable: number; balanced: boolean } };
}

describe('colo-proxy compare, offline (pcap: endpoints, shadow mode)', () => {
  const src = sharedCapture('tcp-reassembly.pcap');

  it('an identical pair: every primary frame released unchanged and in order, no checkpoint', () => {
    const out = join(tmp, 'same-out.pcap');
    const log = join(tmp, 'same.jsonl');
    const r = cli(['compare', '--primary_in', `pcap:${src}`, '--secondary_in', `pcap:${src}`, '--outdev', `pcap:${out}`, '--checkpoint-log', log, '--json', '-q']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout) as Summary;
    expect(s.accounting.primary.balanced).toBe(true);
    expect(frameDigests(out)).toEqual(frameDigests(src));
    expect(existsSync(log)).toBe(false);
  });

  it.skipIf(!hasTool('tshark'))('one changed byte in the secondary: one checkpoint naming the flow and the stream offset tshark gives', () => {
    // Change one payload byte of the first server→client data segment of at least 100 bytes.
    const file = Buffer.from(readFileSync(src));
    const v = new PacketView();
    const r = openCapture(src);
    let frameNo = 0;
    let at = -1;
    let byteIndex = 0;
    for (let x = r.next(); x !== null; x = r.next()) {
      frameNo++;
      decodeFrame(v, x.buf, x.off, x.capLen);
      if ((v.layers & LAYER_TCP) !== 0 && v.srcPort === 80 && v.payloadLen >= 100) {
        byteIndex = 37;
        at = x.fileOffset + 16 + (v.payloadOff - x.off) + byteIndex;
        break;
      }
    }
    r.close();
    expect(at).toBeGreaterThan(0);
    file[at] = file[at]! ^ 0x20;
    const secondary = join(tmp, 'secondary.pcap');
    writeFileSync(secondary, file);
    // Oracle: tshark's relative sequence number of that segment (1 = first byte after the SYN).
    const [relSeq, ip, port, dip, dport] = tshark(['-r', src, '-Y', `frame.number == ${frameNo}`, '-T', 'fields', '-e', 'tcp.seq', '-e', 'ip.src', '-e', 'tcp.srcport', '-e', 'ip.dst', '-e', 'tcp.dstport'])
      .trim()
      .split('\t');
    const out = join(tmp, 'diff-out.pcap');
    const log = join(tmp, 'diff.jsonl');
    const res = cli(['compare', '--primary_in', `pcap:${src}`, '--secondary_in', `pcap:${secondary}`, '--outdev', `pcap:${out}`, '--checkpoint-log', log, '--json', '-q']);
    expect(res.status).toBe(0);
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { cause: string; flow: string; offset: number });
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatchObject({ cause: 'payload', flow: `${ip}:${port}-${dip}:${dport}/TCP`, offset: Number(relSeq) - 1 + byteIndex });
    // Shadow mode releases everything, unchanged: the primary's bytes, never the secondary's.
    expect(frameDigests(out)).toEqual(frameDigests(src));
    expect((JSON.parse(res.stdout) as Summary).accounting.primary.balanced).toBe(true);
  });

  it('--realtime replays at capture timing: the run lasts at least the capture\'s span', () => {
    const demo = resolve(ROOT, 'captures', 'demo-http.pcapng');
    const times: number[] = [];
    const rd = openCapture(demo);
    for (let x = rd.next(); x !== null; x = rd.next()) times.push(x.tsSec * 1000 + x.tsNsec / 1e6);
    rd.close();
    const spanMs = Math.max(...times) - Math.min(...times);
    expect(spanMs).toBeGreaterThan(300);
    const out = join(tmp, 'rt-out.pcap');
    const t0 = performance.now();
    const r = cli(['compare', '--primary_in', `pcap:${demo}`, '--secondary_in', `pcap:${demo}`, '--outdev', `pcap:${out}`, '--realtime', '-q']);
    const elapsed = performance.now() - t0;
    expect(r.status).toBe(0);
    // A lower bound only (process start-up adds to it): pacing can delay, never hurry.
    expect(elapsed).toBeGreaterThanOrEqual(spanMs);
    expect(frameDigests(out)).toEqual(frameDigests(demo));
  });

  it('refuses mixing pcap: and socket inputs, and --qmp with --notify_dev', () => {
    const a = cli(['compare', '--primary_in', `pcap:${src}`, '--secondary_in', 'unix:/tmp/x.sock', '--outdev', 'pcap:/tmp/o.pcap']);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/both be pcap/);
    const b = cli(['compare', '--primary_in', `pcap:${src}`, '--secondary_in', `pcap:${src}`, '--outdev', 'pcap:/tmp/o.pcap', '--qmp', 'unix:/a', '--notify_dev', 'unix:/b']);
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/not both/);
    const c = cli(['compare', '--help']);
    expect(c.stdout).toMatch(/--primary_in/);
    expect(c.stdout).toMatch(/--compare_timeout/);
  });
});

describe('colo-proxy compare, live over unix sockets with a scripted QMP primary', () => {
  it('matching frames flow at once; a divergence asks QMP for a checkpoint and the held frame is released on RESUME; a dropped input resumes clean', async () => {
    const dir = mkdtempSync(join(tmp, 'live-'));
    const delays: number[] = [];
    const fake = await FakeQmp.start({
      handlers: {
        'query-migrate-parameters': (_a, ctx) => ctx.reply({ return: { 'x-checkpoint-delay': 20000 } }),
        'migrate-set-parameters': (a, ctx) => {
          delays.push(Number(a?.['x-checkpoint-delay']));
          ctx.reply({ return: {} });
          setTimeout(() => ctx.event('STOP'), 5);
          setTimeout(() => ctx.event('RESUME'), 40);
        },
      },
    });
    const pool = new PacketPool();
    const released: Buffer[] = [];
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CLI, 'compare', '--primary_in', `unix:${dir}/p.sock,server`, '--secondary_in', `unix:${dir}/s.sock,server`, '--outdev', `unix:${dir}/o.sock,server`, '--qmp', fake.endpoint, '--json', '-q'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const chans: FramedChannel[] = [];
    try {
      await until(() => ['p', 's', 'o'].every((n) => existsSync(`${dir}/${n}.sock`)), 15000, 'compare listening');
      const mk = (n: string, onFrame = (h: number) => pool.release(h)) => {
        const c = new FramedChannel({ endpoint: `unix:${dir}/${n}.sock`, vnetHdr: false, pool, onFrame });
        chans.push(c);
        return c;
      };
      const pri = mk('p');
      const sec = mk('s');
      mk('o', (h) => {
        released.push(Buffer.from(pool.view(h)));
        pool.release(h);
      });
      await Promise.all(chans.map((c) => c.start()));
      await Promise.all(chans.map((c) => c.whenConnected()));
      // Two real frames from a capture: a UDP datagram pair that matches, then one that differs.
      const udp = udpFrames(2);
      pri.writeFrame(udp[0]!, 0, udp[0]!.length);
      sec.writeFrame(udp[0]!, 0, udp[0]!.length);
      pri.flush();
      sec.flush();
      await until(() => released.length === 1, 5000, 'matched frame released');
      const other = Buffer.from(udp[1]!);
      const bad = Buffer.from(udp[1]!);
      bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
      pri.writeFrame(other, 0, other.length);
      sec.writeFrame(bad, 0, bad.length);
      pri.flush();
      sec.flush();
      await until(() => released.length === 2, 5000, 'held frame released after RESUME');
      expect(delays).toEqual([20000]);
      expect(fake.commands()).toContain('migrate-set-parameters');
      expect(released[0]!.equals(udp[0]!)).toBe(true);
      expect(released[1]!.equals(other)).toBe(true);
      // The primary input drops in the middle of a frame; the next connection starts clean.
      await pri.close();
      // Connect again only once the child has seen that peer go: it serves one peer at a time
      // and refuses (resets) a second one meanwhile.
      await until(() => stderr.includes('primary_in disconnected'), 5000, 'child saw the primary input go');
      const raw = netConnect(`${dir}/p.sock`);
      raw.on('error', () => {}); // a reset would be this test's race, reported by the checks below
      await new Promise<void>((r) => raw.once('connect', () => r()));
      const half = Buffer.alloc(4 + 30);
      half.writeUInt32BE(200, 0); // announces 200 bytes, sends 30
      raw.end(half);
      await new Promise<void>((r) => raw.once('close', () => r()));
      const pri2 = mk('p');
      await pri2.start();
      await pri2.whenConnected();
      const third = udpFrames(3)[2]!;
      pri2.writeFrame(third, 0, third.length);
      sec.writeFrame(third, 0, third.length);
      pri2.flush();
      sec.flush();
      await until(() => released.length === 3, 5000, 'frame after reconnect released');
      expect(released[2]!.equals(third)).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      for (const c of chans) await c.close();
      await fake.close();
    }
    // The only complaints: the primary input's two disconnects (ours, then the half frame's).
    const complaints = stderr.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(complaints.map((c) => `${c.level} ${c.msg}`)).toEqual(['warn primary_in disconnected', 'warn primary_in disconnected']);
    const s = JSON.parse(stdout) as Summary;
    expect(s.accounting.primary).toMatchObject({ received: 3, released: 3, held: 0, balanced: true });
    expect(pool.inUse).toBe(0);
  });
});

/** The first `n` UDP frames of many-protocols.pcap with distinct payloads. */
function udpFrames(n: number): Buffer[] {
  const v = new PacketView();
  const out: Buffer[] = [];
  const r = openCapture(sharedCapture('many-protocols.pcap'));
  for (let x = r.next(); x !== null && out.length < n; x = r.next()) {
    decodeFrame(v, x.buf, x.off, x.capLen);
    if (v.status === 0 && (v.layers & LAYER_UDP) !== 0 && v.payloadLen > 8) {
      const f = Buffer.from(x.buf.subarray(x.off, x.off + x.capLen));
      if (!out.some((o) => o.equals(f))) out.push(f);
    }
  }
  r.close();
  return out;
}
