/**
 * `colo-proxy compare` end to end on a REAL QEMU 7.2 COLO pair (issue 4): our compare process
 * takes colo-compare's place on the primary's sockets (test/helpers/colo-pair.ts) and asks the
 * primary for checkpoints over its public QMP socket.
 *
 * Oracles, none of them our own output:
 * - the guest: `/cgi-bin/counter` answers counter=1, 2, 3… identically on both VMs (no
 *   divergence possible), `/cgi-bin/time` adds /proc/uptime, which differs between the VMs;
 * - QEMU's QMP events on the harness's own connection to the primary: STOP → RESUME per
 *   checkpoint, with QEMU's own timestamps (host realtime clock, the same clock as the
 *   client's `Date.now()`), so "the held answer reached the client only after RESUME" is
 *   checked across processes;
 * - the bytes the client actually received: the checkpoint log's `primaryBytes` at `offset`
 *   must be exactly those bytes at that offset of the server→client stream (offset 0 = first
 *   response byte), on the flow named by the client's own port;
 * - the secondary's own answers, read from a tcpdump capture of its filter-redirector stream
 *   (loopback port 9004 in the namespace): a /time answer equal on both VMs (same centisecond
 *   uptime, about 1 in 16) must give no checkpoint, a differing one exactly one, whose
 *   `secondaryBytes` are the secondary's answer at `offset`.
 * The harness's readiness probe (GET "/", a static page with a `Date:` header) may legitimately
 * cost one checkpoint at startup when the VMs' clocks straddle a second boundary; it is checked
 * to be exactly that and counted, not forbidden.
 * Periodic checkpoints are pushed out of the way (x-checkpoint-delay one hour), so every STOP
 * seen during the test is one we asked for.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { coloPairSkipReason, PAIR_NET, startColoPair } from '../helpers/colo-pair.js';
import type { ColoPair, DisposeReport, QmpEvent } from '../helpers/colo-pair.js';
import { ROOT } from '../helpers/paths.js';
import { expectClean, expectCounter } from './pair-expect.js';

const skip = coloPairSkipReason();
if (skip !== null) console.warn(`test/colo (colo-proxy compare on a real COLO pair): skipped: ${skip}`);

const CLI = resolve(ROOT, 'src/cli/main.ts');
const TIME_REQUESTS = 4;
const COUNTER_BEFORE = 4;
const COUNTER_AFTER = 3;

/**
 * Raw HTTP/1.0 GET run inside the namespace: prints the exact response bytes (hex), its own
 * local port (names the flow) and epoch-ms times (request sent, first byte, end of stream).
 */
const RAW_GET_JS = `
const net = require('node:net');
const [host, path, tmo] = process.argv.slice(1);
const r = { start: Date.now(), first: 0, end: 0, port: 0, hex: '', error: null };
const chunks = [];
const out = () => { r.hex = Buffer.concat(chunks).toString('hex'); process.stdout.write(JSON.stringify(r)); process.exit(0); };
const s = net.connect({ host, port: 80 }, () => { r.port = s.localPort; s.write('GET ' + path + ' HTTP/1.0\\r\\nHost: ' + host + '\\r\\n\\r\\n'); });
s.on('data', (d) => { if (r.first === 0) r.first = Date.now(); chunks.push(d); });
s.on('end', () => { r.end = Date.now(); out(); });
s.on('error', (e) => { r.error = e.message; out(); });
setTimeout(() => { r.error = 'timeout after ' + tmo + ' ms'; out(); }, Number(tmo));
`;

interface RawGet {
  start: number;
  first: number;
  end: number;
  port: number;
  hex: string;
  error: string | null;
}

interface CheckpointLine {
  cause: string;
  flow: string;
  offset: number | null;
  requested: boolean;
  side: string;
  primaryBytes: string;
  secondaryBytes: string;
  checkpoint: number;
}

interface TimingStat {
  count: number;
  totalMs: number;
  minMs: number;
  maxMs: number;
}

interface CompareSummary {
  accounting: {
    primary: { received: number; released: number; held: number; unparseable: number; balanced: boolean };
    secondary: { received: number; balanced: boolean };
  };
  checkpoints: {
    requested: number;
    sent: number;
    completed: number;
    failed: number;
    periodic: number;
    timings: { requestToComplete: TimingStat; startToComplete: TimingStat };
  };
  records: number;
}

async function rawGet(pair: ColoPair, path: string, timeoutMs = 8000): Promise<RawGet> {
  const r = await pair.exec([process.execPath, '-e', RAW_GET_JS, PAIR_NET.guestIp, path, String(timeoutMs)], { timeoutMs: timeoutMs + 5000 });
  try {
    return JSON.parse(r.stdout) as RawGet;
  } catch {
    return { start: 0, first: 0, end: 0, port: 0, hex: '', error: `client exited ${r.status ?? r.signal}: ${r.stderr.trim()}` };
  }
}


function logLines(path: string): CheckpointLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as CheckpointLine);
}

/**
 * The body `counter=N uptime=…\n` the secondary sent, found in the capture of its stream
 * (frames are small and travel whole in one loopback segment). Polls briefly: the capture is
 * written per packet but may trail the client's answer.
 */
async function secondaryBody(capPath: string, n: number): Promise<string | null> {
  const re = new RegExp(`counter=${n} uptime=\\d+\\.\\d\\d\\n`);
  for (let i = 0; i < 40; i++) {
    const m = re.exec(readFileSync(capPath).toString('latin1'));
    if (m !== null) return m[0];
    await sleep(50);
  }
  return null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function named(events: readonly QmpEvent[], from: number, name: string): QmpEvent[] {
  return events.slice(from).filter((e) => e.event === name);
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}


/** The whole scenario on one pair (steps 1-4 of issue 4's end-to-end test). */
async function scenario(vnet: boolean): Promise<void> {
  let pair: ColoPair | undefined;
  let logPath = '';
  let report: DisposeReport | undefined;
  try {
    pair = await startColoPair({
      vnet,
      // No periodic checkpoint during the test: every STOP is one we asked for.
      checkpointDelayMs: 3_600_000,
      proxy: (ep) => {
        logPath = join(ep.dir, 'checkpoints.jsonl');
        const argv = [process.execPath, '--import', 'tsx', CLI, 'compare'];
        argv.push('--primary_in', ep.primaryIn, '--secondary_in', ep.secondaryIn, '--outdev', ep.outdev);
        argv.push('--qmp', `unix:${ep.primaryQmp}`, '--checkpoint-log', logPath, '--json');
        if (ep.vnetHdr) argv.push('--vnet_hdr_support');
        return { argv };
      },
    });
    const p = pair;
    console.log(`colo pair + colo-proxy compare: timings, ms after start: ${JSON.stringify(p.timings)}`);
    expect(await p.migrationStatus()).toBe('colo');
    // The harness's readiness probe fetches "/", a static page whose `Date:` header is the
    // guest's wall clock: the VMs' clocks differ by a fraction of a second, so when they
    // straddle a second boundary the answers genuinely differ (seen: "…3 GMT" vs "…4 GMT" at
    // offset 47). Such a startup checkpoint is legitimate; it must be that and nothing else.
    const boot = logLines(logPath);
    for (const l of boot) {
      expect(l).toMatchObject({ cause: 'payload', side: 'both' });
      expect(l.flow).toMatch(new RegExp(`^${PAIR_NET.guestIp.replaceAll('.', '\\.')}:80-${PAIR_NET.clientIp.replaceAll('.', '\\.')}:\\d+/TCP$`));
    }
    const bootCheckpoints = boot.filter((l) => l.requested).length;
    const ckpt = (): CheckpointLine[] => logLines(logPath).slice(boot.length);

    // 1. Deterministic answers: correct, and no checkpoint at all.
    let n = 0;
    const ev0 = p.events('primary').length;
    const latBefore: number[] = [];
    for (let i = 0; i < COUNTER_BEFORE; i++) latBefore.push(await expectCounter(p, ++n));
    expect(ckpt()).toEqual([]);
    expect(named(p.events('primary'), ev0, 'STOP')).toEqual([]);

    // 2. Differing answers: one checkpoint each, requested by us, the primary's answer released on RESUME.
    // The secondary's own answers, as an oracle independent of the proxy: the kernel's capture
    // of its filter-redirector stream (loopback, port 9004) inside the namespace.
    const svmCap = join(p.dir, 'svm-stream.pcap');
    const dump = p.exec(['tcpdump', '-Z', 'root', '-U', '-n', '-i', 'lo', '-w', svmCap, 'tcp', 'port', String(PAIR_NET.ports.secondaryIn)], { timeoutMs: 110_000 });
    await expect.poll(() => existsSync(svmCap) && statSync(svmCap).size >= 24, { timeout: 10_000, interval: 50 }).toBe(true);
    await sleep(300); // capture armed (the file header is written just before the socket is bound)
    const ckMs: number[] = [];
    const timeLat: number[] = [];
    let diverged = 0;
    let equal = 0;
    // Until TIME_REQUESTS answers differed (a few attempts more: see the `equal` case below).
    for (let i = 0; diverged < TIME_REQUESTS && i < TIME_REQUESTS + 3; i++) {
      const logFrom = logLines(logPath).length;
      const evFrom = p.events('primary').length;
      const r = await rawGet(p, '/cgi-bin/time');
      expect(r.error).toBeNull();
      const resp = Buffer.from(r.hex, 'hex');
      const text = resp.toString('latin1');
      expect(text).toMatch(/^HTTP\/1\.[01] 200 /);
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      expect(body).toMatch(new RegExp(`^counter=${++n} uptime=\\d+\\.\\d\\d\\n$`));

      // What the secondary answered to the same request (counter values are in lockstep).
      const svmBody = await secondaryBody(svmCap, n);
      expect(svmBody, `the secondary's answer counter=${n} in ${svmCap}`).not.toBeNull();
      const lines = logLines(logPath).slice(logFrom);
      const ours = lines.filter((l) => l.requested);
      if (svmBody === body) {
        // Both VMs printed the same centisecond uptime (their clocks are equal after a
        // checkpoint; seen in about 1 of 16 requests): nothing to checkpoint, none taken.
        equal++;
        expect(lines).toEqual([]);
        expect(named(p.events('primary'), evFrom, 'STOP')).toEqual([]);
        timeLat.push(r.end - r.start);
        continue;
      }
      diverged++;
      expect(ours.length).toBe(1);
      const rec = ours[0]!;
      expect(rec.cause).toBe('payload');
      expect(rec.flow).toBe(`${PAIR_NET.guestIp}:80-${PAIR_NET.clientIp}:${r.port}/TCP`);
      // The bytes the client received at that stream offset are the primary's side of the record.
      const off = rec.offset!;
      expect(off).toBeGreaterThanOrEqual(text.indexOf('uptime=') + 'uptime='.length);
      expect(off).toBeLessThan(resp.length);
      expect(rec.primaryBytes.length).toBeGreaterThan(0);
      expect(rec.primaryBytes).toBe(resp.subarray(off, off + rec.primaryBytes.length / 2).toString('hex'));
      expect(rec.secondaryBytes.slice(0, 2)).not.toBe(rec.primaryBytes.slice(0, 2));
      // …and the secondary's side is the secondary's answer at the same offset.
      const bodyAt = resp.length - Buffer.byteLength(body, 'latin1');
      const svmTail = Buffer.from(svmBody!, 'latin1').subarray(off - bodyAt);
      expect(svmTail.toString('hex').startsWith(rec.secondaryBytes.slice(0, svmTail.length * 2))).toBe(true);

      // QEMU ran exactly that checkpoint, and the answer was complete only after its RESUME.
      const resume = await p.waitEvent('primary', 'RESUME', evFrom, 10_000);
      const stops = named(p.events('primary'), evFrom, 'STOP');
      expect(stops.length).toBe(1);
      expect(stops[0]!.qemuMs).toBeGreaterThanOrEqual(r.start - 2);
      expect(resume.qemuMs).toBeGreaterThan(stops[0]!.qemuMs);
      expect(r.end).toBeGreaterThanOrEqual(Math.floor(resume.qemuMs) - 1);
      expect(await p.migrationStatus()).toBe('colo');
      ckMs.push(resume.qemuMs - r.start);
      timeLat.push(r.end - r.start);
    }
    const allStops = named(p.events('primary'), ev0, 'STOP').length;
    const allResumes = named(p.events('primary'), ev0, 'RESUME').length;
    expect(diverged).toBe(TIME_REQUESTS);
    expect(allStops).toBe(diverged);
    expect(allResumes).toBe(diverged);

    // 3. Stream alignment restarted after each checkpoint: deterministic answers pass again, no new checkpoint.
    const logAfterTime = logLines(logPath).length;
    const ev1 = p.events('primary').length;
    const latAfter: number[] = [];
    for (let i = 0; i < COUNTER_AFTER; i++) latAfter.push(await expectCounter(p, ++n));
    expect(logLines(logPath).length).toBe(logAfterTime);
    expect(named(p.events('primary'), ev1, 'STOP')).toEqual([]);

    void dump; // tcpdump is stopped by PID at dispose

    // 4. Final statistics: balanced primary accounting, nothing held after shutdown.
    expect(await p.stopProxy()).toMatchObject({ code: 0 });
    const out = p.file('proxy.stdout');
    const s = JSON.parse(out.slice(out.indexOf('{'))) as CompareSummary;
    const a = s.accounting.primary;
    expect(a.received).toBeGreaterThan(0);
    expect(a.received).toBe(a.released + a.held + a.unparseable);
    expect(a.balanced).toBe(true);
    expect(a.held).toBe(0);
    expect(s.accounting.secondary.balanced).toBe(true);
    expect(s.accounting.secondary.received).toBeGreaterThan(0);
    expect(s.checkpoints.failed).toBe(0);
    expect(s.checkpoints.periodic).toBe(0);
    expect(s.checkpoints.sent).toBe(diverged + bootCheckpoints);
    expect(s.checkpoints.completed).toBe(diverged + bootCheckpoints);

    const lat = [...latBefore, ...latAfter];
    const rc = s.checkpoints.timings.requestToComplete;
    console.log(
      [
        `colo-proxy compare on the COLO pair (vnet ${vnet ? 'on' : 'off'}): boot-time checkpoints ${bootCheckpoints}; /time answers differing ${diverged}, equal ${equal}`,
        `  GET /cgi-bin/counter latency (ms, node client in the netns, as pair.test.ts): ${lat.map((x) => x.toFixed(0)).join(', ')}` +
          ` (p50 ${pct(lat, 50).toFixed(0)}, max ${Math.max(...lat).toFixed(0)})`,
        `  GET /cgi-bin/time latency incl. checkpoint (ms, raw client): ${timeLat.join(', ')}`,
        `  client request -> primary RESUME (QEMU timestamp, ms): ${ckMs.map((x) => x.toFixed(0)).join(', ')}`,
        `  proxy: QMP request -> RESUME ms min/avg/max ${rc.minMs.toFixed(0)}/${(rc.totalMs / Math.max(1, rc.count)).toFixed(0)}/${rc.maxMs.toFixed(0)} over ${rc.count}`,
        `  primary frames received ${a.received}, released ${a.released}, unparseable ${a.unparseable}; secondary received ${s.accounting.secondary.received}`,
      ].join('\n'),
    );
  } catch (err) {
    if (pair !== undefined) console.log(pair.diagnostics(30));
    throw err;
  } finally {
    report = await pair?.dispose();
  }
  expectClean(pair!, report!);
}

describe.skipIf(skip !== null)('colo-proxy compare in place of colo-compare on a real QEMU 7.2 COLO pair', () => {
  it('matching answers pass without checkpoints; each differing answer is checkpointed over QMP and released on RESUME', async () => {
    await scenario(false);
  }, 120_000);

  // Same retry policy as pair.test.ts's vnet case (a harness flake seen there with the
  // release-all proxy too: no secondary frame reaches the proxy); a second failure fails.
  it('the same with vnet headers on every filter (--vnet_hdr_support)', { retry: 1, timeout: 120_000 }, async () => {
    await scenario(true);
  });
});
