/**
 * The sockets rig's child (`colo-proxy compare` in a child process) in both socket roles:
 * deployment (it connects to primary_in and outdev, listens on secondary_in) and all-listen.
 * Oracles: the child's own command line (/proc) for the roles, and its JSON statistics for
 * what it received and released; the frames read back are compared byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { startColoProxyChild, type ChildRoles } from '../../src/replay/bench-sockets.js';
import { TCP_ACK, TCP_PSH, TCP_SYN, tcpFrame } from '../../src/replay/frame-builder.js';

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
