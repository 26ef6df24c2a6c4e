/**
 * The sockets rig's child (`colo-proxy compare` in a child process) in both socket roles:
 * deployment (it connects to primary_in and outdev, listens on secondary_in) and all-listen.
 * Oracles: the child's own command line (/proc) for the roles, and its JSON statistics for
 * what it received and released; the frames read back are compared byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startColoProxyChild, type ChildRoles } from '../../src/replay/bench-sockets.js';
import { loadBenchWorkload, pairedWarmup } from '../../src/replay/bench-workload.js';
import { runFeed } from '../../src/replay/feed.js';
import { planLockstep } from '../../src/replay/lockstep.js';
import { TCP_ACK, TCP_PSH, TCP_SYN, tcpFrame } from '../../src/replay/frame-builder.js';
import { OWN_CAPTURES } from '../helpers/paths.js';

const base = { src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 40000 } as const;
const frames = [
  tcpFrame({ ...base, seq: 1000, ack: 1, flags: TCP_SYN | TCP_ACK }),
  ...[0, 1, 2].map((i) => tcpFrame({ ...base, seq: 1001 + i * 100, ack: 1, flags: TCP_PSH | TCP_ACK, payload: Buffer.alloc(100, 0x41 + i) })),
];

describe('startColoProxyChild socket roles', () => {
  for (const [roles, listening] of [
    ['deployment', ['secondary_in']],
    ['listen', ['primary_in', 'secondary_in', 'outdev']],
  ] as const) {
    it(`${roles}: the child listens on ${listening.join(', ')} only; identical inputs are all released`, async () => {
      const out: Buffer[] = [];
      let wake: () => void = () => {};
      const child = await startColoProxyChild({
        roles: roles as ChildRoles,
        onRelease: (pool, h) => {
          out.push(Buffer.from(pool.buffer(h).subarray(pool.offset(h), pool.offset(h) + pool.length(h))));
          pool.release(h);
          wake();
        },
      });
      let stopped = false;
      try {
        const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
        for (const opt of ['primary_in', 'secondary_in', 'outdev'] as const) {
          const ep = argv[argv.indexOf(`--${opt}`) + 1]!;
          expect(ep.startsWith('unix:')).toBe(true);
          expect(ep.includes(',server'), `${opt} = ${ep}`).toBe((listening as readonly string[]).includes(opt));
        }
        for (const f of frames) {
          expect(child.targets.primary.writeFrame(f, 0, f.length, 0)).toBe(true);
          expect(child.targets.secondary.writeFrame(f, 0, f.length, 0)).toBe(true);
        }
        child.targets.primary.flush();
        child.targets.secondary.flush();
        const deadline = Date.now() + 10_000;
        while (out.length < frames.length && Date.now() < deadline) await new Promise<void>((r) => ((wake = r), setTimeout(r, 100)));
        expect(out.map((b) => b.toString('hex'))).toEqual(frames.map((b) => b.toString('hex')));
        const r = await child.stop();
        stopped = true;
        expect(r.summary?.accounting?.primary).toMatchObject({ received: 4, released: 4, held: 0, balanced: true });
        expect(r.summary?.checkpoints?.requested).toBe(0);
      } finally {
        if (!stopped) await child.stop();
      }
    }, 40_000);
  }
});

describe('the compare child under pool pressure (regression: it stopped reading for good)', () => {
  // http-identical's primary frames are over 2048 bytes (a capture with offloads), so each
  // takes one of the pool's 256 big slots. Fed 3000 frames in one lockstep plan, the child
  // held more of them than the class has while the bytes that would match them waited behind
  // its paused primary input: before the fix, pinned slots outlived a timeout checkpoint and
  // input never resumed. Oracle: every primary frame comes back, and the child's accounting.
  it('3000 frames of port-shifted copies of http-identical in one go: every primary frame is released', async () => {
    const w = loadBenchWorkload({ dir: join(OWN_CAPTURES, 'workloads', 'http-identical') });
    const copies = pairedWarmup(w.primary, w.secondary, 3000);
    expect(copies).not.toBeNull();
    const P = copies!.flatMap((c) => c.primary);
    const S = copies!.flatMap((c) => c.secondary);
    expect(P.some((f) => f.buf.length > 2048)).toBe(true);
    let released = 0;
    let wake: () => void = () => {};
    const child = await startColoProxyChild({
      onRelease: (pool, h) => {
        released++;
        pool.release(h);
        wake();
      },
    });
    let stopped = false;
    try {
      const fed = runFeed(planLockstep(P, S, { maxAhead: 512 }), P, S, child.targets, { yieldEvery: 256 });
      const guard = new Promise<'stalled'>((r) => setTimeout(() => r('stalled'), 30_000));
      expect(await Promise.race([fed.then(() => 'fed' as const), guard])).toBe('fed');
      // What is still held waits at most compare_timeout (3 s) plus a scan cycle.
      const deadline = Date.now() + 10_000;
      while (released < P.length && Date.now() < deadline) await new Promise<void>((r) => ((wake = r), setTimeout(r, 100)));
      expect(released).toBe(P.length);
      const r = await child.stop();
      stopped = true;
      expect(r.summary?.accounting?.primary).toMatchObject({ received: P.length, released: P.length, held: 0, balanced: true });
    } finally {
      if (!stopped) await child.stop();
    }
  }, 60_000);
});
