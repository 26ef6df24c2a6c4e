/**
 * The real-QEMU COLO pair harness (test/helpers/colo-pair.ts) checked end to end with the
 * minimal "release every primary frame" proxy in colo-compare's place.
 *
 * Oracles: the guest's own deterministic behaviour (the counter CGI answers counter=1, 2, 3…
 * per request, whatever path the bytes took), QEMU's QMP (status, COLO mode, the
 * STOP → MIGRATION_PASS → RESUME events of a checkpoint) and the kernel (`ip netns`, PIDs) for
 * cleanup. With the release-all proxy the client only ever sees the primary's frames, so the
 * assertions hold even when QEMU's filter-rewriter resets a connection on the secondary (see
 * release-proxy.ts).
 */
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QmpClient } from '../../src/control/qmp-client.js';
import { createLogger } from '../../src/util/log.js';
import { coloPairSkipReason, startColoPair } from '../helpers/colo-pair.js';
import type { ColoPair, DisposeReport } from '../helpers/colo-pair.js';
import { releaseProxyCommand } from '../helpers/release-proxy.js';
import type { ReleaseProxyStats } from '../helpers/release-proxy.js';
import { expectClean, expectCounter } from './pair-expect.js';

const skip = coloPairSkipReason();
if (skip !== null) console.warn(`test/colo (real COLO pair): skipped: ${skip}`);

const ECHO_JS = `
const net = require('node:net');
const [host, text] = process.argv.slice(1);
let got = '';
const s = net.connect({ host, port: 7 }, () => s.write(text));
s.setEncoding('utf8');
s.on('data', (d) => { got += d; if (got.length >= text.length) { process.stdout.write(got); s.destroy(); } });
s.setTimeout(5000, () => { process.stderr.write('timeout, got ' + JSON.stringify(got)); process.exit(2); });
s.on('error', (e) => { process.stderr.write(e.message); process.exit(1); });
`;

/** Force one checkpoint over the primary's public QMP socket; returns event times (ms after the command). */
async function forceCheckpoint(pair: ColoPair): Promise<{ stop: number; pass: number; resume: number }> {
  const q = new QmpClient({ endpoint: `unix:${pair.qmpPath.primary}`, reconnect: false, logger: createLogger({ level: 'silent' }) });
  try {
    await q.connect(10_000);
    const params = (await q.execute('query-migrate-parameters')) as { 'x-checkpoint-delay': number };
    const delay = params['x-checkpoint-delay'];
    expect(delay).toBeGreaterThan(0);
    const from = pair.events('primary').length;
    const t0 = Date.now();
    // Re-sending the current value triggers a checkpoint at once in QEMU 7.2 (shared lab, step 3).
    await q.execute('migrate-set-parameters', { 'x-checkpoint-delay': delay });
    const stop = await pair.waitEvent('primary', 'STOP', from, 5000);
    const ev = pair.events('primary');
    const resume = await pair.waitEvent('primary', 'RESUME', ev.indexOf(stop) + 1, 5000);
    const seq = pair.events('primary').slice(ev.indexOf(stop), pair.events('primary').indexOf(resume) + 1).map((e) => e.event);
    // The harness enabled the `events` capability: the RAM sync shows between STOP and RESUME.
    expect(seq[0]).toBe('STOP');
    expect(seq).toContain('MIGRATION_PASS');
    expect(seq.at(-1)).toBe('RESUME');
    const pass = pair.events('primary').find((e, i) => i > ev.indexOf(stop) && e.event === 'MIGRATION_PASS')!;
    return { stop: stop.at - t0, pass: pass.at - t0, resume: resume.at - t0 };
  } finally {
    await q.close();
  }
}


function readStats(path: string): ReleaseProxyStats {
  expect(existsSync(path)).toBe(true);
  return JSON.parse(readFileSync(path, 'utf8')) as ReleaseProxyStats;
}


describe.skipIf(skip !== null)('real QEMU 7.2 COLO pair with an external release-all proxy', () => {
  it('boots under COLO, serves HTTP through the proxy, checkpoints on request, and cleans up', async () => {
    let pair: ColoPair | undefined;
    let statsPath = '';
    let report: DisposeReport | undefined;
    try {
      pair = await startColoPair({
        proxy: (ep) => {
          statsPath = join(ep.dir, 'proxy-stats.json');
          return releaseProxyCommand(ep, statsPath);
        },
      });
      const p = pair;
      console.log(`colo pair (vnet off) timings, ms after start: ${JSON.stringify(p.timings)}`);

      expect(await p.migrationStatus()).toBe('colo');
      expect(await p.qmp('primary', 'query-colo-status')).toMatchObject({ mode: 'primary' });
      expect(await p.qmp('secondary', 'query-colo-status')).toMatchObject({ mode: 'secondary' });
      // The readiness probe fetched "/" (no CGI), so the counter starts at 1.
      const lat = [await expectCounter(p, 1), await expectCounter(p, 2), await expectCounter(p, 3)];

      const echo = await p.exec([process.execPath, '-e', ECHO_JS, '192.0.2.2', 'hello through COLO\n'], { timeoutMs: 10_000 });
      expect(echo.stderr).toBe('');
      expect(echo.stdout).toBe('hello through COLO\n');

      const secResumesBefore = p.events('secondary').filter((e) => e.event === 'RESUME').length;
      const ck = await forceCheckpoint(p);
      console.log(`forced checkpoint: STOP +${ck.stop} ms, MIGRATION_PASS +${ck.pass} ms, RESUME +${ck.resume} ms`);
      expect(ck.resume).toBeLessThan(5000);
      // The secondary loads the checkpoint too (its own STOP/RESUME per checkpoint).
      await expect.poll(() => p.events('secondary').filter((e) => e.event === 'RESUME').length, { timeout: 5000 }).toBeGreaterThan(secResumesBefore);
      expect(await p.migrationStatus()).toBe('colo');

      lat.push(await expectCounter(p, 4), await expectCounter(p, 5));
      const t = await p.httpGet('/cgi-bin/time');
      expect(t.status).toBe(200);
      expect(t.body).toMatch(/^counter=6 uptime=\d+\.\d\d\n$/);
      console.log(`GET /cgi-bin/counter latencies (ms): ${lat.map((x) => x.toFixed(0)).join(', ')}`);

      expect(await p.stopProxy()).toMatchObject({ code: 0 });
      const st = readStats(statsPath);
      console.log(
        `release proxy: ${st.primaryFrames} PVM frames released, ${st.secondaryFrames} SVM frames; ` +
          `PVM bodies ${JSON.stringify(st.primaryCounterLines)}, SVM bodies ${JSON.stringify(st.secondaryCounterLines)}`,
      );
      expect(st.errors).toEqual([]);
      expect(st.primaryConnections).toBe(1);
      expect(st.outdevConnections).toBe(1);
      expect(st.secondaryConnections).toBeGreaterThanOrEqual(1);
      expect(st.releaseDrops).toBe(0);
      expect(st.released).toBe(st.primaryFrames);
      // Every answer the client got came out of the primary through the proxy.
      // A retransmitted response repeats its line: collapse consecutive repeats first.
      const lines = st.primaryCounterLines.map((l) => l.split(' ')[0]).filter((l, i, a) => i === 0 || l !== a[i - 1]);
      expect(lines.slice(0, 6)).toEqual(['counter=1', 'counter=2', 'counter=3', 'counter=4', 'counter=5', 'counter=6']);
      // The secondary runs in lockstep and answers too (its frames reach the proxy).
      expect(st.secondaryFrames).toBeGreaterThan(0);
    } finally {
      report = await pair?.dispose();
    }
    expectClean(pair!, report!);
  }, 180_000);

  // One retry: on a loaded 2-core VM this run has seen no secondary frame at the proxy twice
  // in ~8 runs, then 2 in 35 (the HTTP answers right; no error counted); under investigation,
  // not hidden: a failed attempt logs its diagnostics below, a second failure fails the suite.
  it('works with vnet headers on every filter (vnet_hdr_support=on)', { retry: 1, timeout: 180_000 }, async () => {
    let pair: ColoPair | undefined;
    let statsPath = '';
    let report: DisposeReport | undefined;
    try {
      pair = await startColoPair({
        vnet: true,
        proxy: (ep) => {
          expect(ep.vnetHdr).toBe(true);
          statsPath = join(ep.dir, 'proxy-stats.json');
          return releaseProxyCommand(ep, statsPath);
        },
      });
      const p = pair;
      console.log(`colo pair (vnet on) timings, ms after start: ${JSON.stringify(p.timings)}`);
      await expectCounter(p, 1);
      const ck = await forceCheckpoint(p);
      console.log(`forced checkpoint (vnet): RESUME +${ck.resume} ms`);
      await expectCounter(p, 2);
      await p.stopProxy();
      const st = readStats(statsPath);
      if (st.secondaryFrames === 0) {
        // The rare failure that `retry: 1` covers: leave what the next investigation needs
        // (which chardevs were connected, the proxy's counters, the guests' last output).
        const chardevs = await Promise.all((['primary', 'secondary'] as const).map(async (side) => [side, await p.qmp(side, 'query-chardev')]));
        console.log(`vnet pair: no secondary frame reached the proxy\n${JSON.stringify({ stats: st, chardevs })}\n${p.diagnostics(30)}`);
      }
      expect(st.errors).toEqual([]);
      expect(st.releaseDrops).toBe(0);
      expect(st.secondaryFrames).toBeGreaterThan(0);
    } finally {
      report = await pair?.dispose();
    }
    expectClean(pair!, report!);
  });
});
