/**
 * The namespace lab helper: namespaces and veths exist only inside the lab, documentation
 * addresses only, processes killed by PID and namespaces deleted on dispose. Oracles: what
 * `ip netns list`, `ip -j addr` and the kernel's ICMP echo report.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { NetnsLab, isDocumentationAddress, leftoverNamespaces, netnsSkipReason } from '../helpers/netns.js';
import { pidAlive } from '../helpers/tools.js';

const skip = netnsSkipReason();
if (skip !== null) console.warn(`test/relay (netns): skipped: ${skip}`);

const PONG_SERVER = `require('net').createServer((s) => s.end('pong from ' + s.localAddress)).listen(7007, '198.51.100.2', () => console.log('up'))`;
const PONG_CLIENT = `const s = require('net').connect(7007, '198.51.100.2'); s.pipe(process.stdout)`;

function hostHas(dev: string): boolean {
  return spawnSync('ip', ['link', 'show', 'dev', dev], { stdio: 'ignore' }).status === 0;
}

describe('isDocumentationAddress', () => {
  it('accepts exactly RFC 5737 / RFC 3849 ranges', () => {
    for (const a of ['192.0.2.0', '192.0.2.255', '198.51.100.7', '203.0.113.1', '2001:db8::1', '2001:0db8:1::2']) {
      expect(isDocumentationAddress(a)).toBe(true);
    }
    for (const a of ['192.0.3.1', '192.0.1.255', '198.51.101.1', '203.0.114.1', '10.0.0.1', '127.0.0.1', '2001:db9::1', '2001::1', 'fe80::1', 'x']) {
      expect(isDocumentationAddress(a)).toBe(false);
    }
  });
});

describe.skipIf(skip !== null)('NetnsLab', () => {
  it('builds namespaces with a veth pair inside them, connects across, and cleans up by PID', async () => {
    const lab = new NetnsLab('nstest');
    let sleeper = 0;
    try {
      const a = lab.add('a');
      const b = lab.add('b');
      expect(leftoverNamespaces(lab.prefix).sort()).toEqual([a, b].sort());
      lab.veth(a, 'nva', b, 'nvb');
      expect(hostHas('nva') || hostHas('nvb')).toBe(false); // nothing in the host namespace
      lab.addr(a, 'nva', '198.51.100.1/24');
      lab.addr(b, 'nvb', '198.51.100.2/24');
      expect(() => lab.addr(a, 'nva', '10.1.2.3/24')).toThrow(/documentation ranges/);
      const addrs = JSON.parse(lab.ipIn(b, ['-j', 'addr', 'show', 'dev', 'nvb'])) as Array<{ addr_info: Array<{ local: string }> }>;
      expect(addrs[0]!.addr_info.map((x) => x.local)).toContain('198.51.100.2');
      // A TCP round trip across the pair (the server is the tracked long-lived process).
      const srv = lab.spawn(b, process.execPath, ['-e', PONG_SERVER]);
      sleeper = srv.pid!;
      await new Promise<void>((resolve, reject) => {
        srv.stdout!.once('data', () => resolve());
        srv.once('exit', (c) => reject(new Error(`pong server exited ${c}`)));
      });
      const r = lab.run(a, process.execPath, ['-e', PONG_CLIENT], { timeoutMs: 10_000 });
      expect(r.stdout).toBe('pong from 198.51.100.2');
      expect(pidAlive(sleeper)).toBe(true);
    } finally {
      await lab.dispose();
    }
    expect(pidAlive(sleeper)).toBe(false);
    expect(leftoverNamespaces(lab.prefix)).toEqual([]);
    expect(() => lab.add('again')).toThrow(/disposed/);
  });

  it('disposeSync (the exit-hook path) kills and deletes too, and dispose is idempotent', async () => {
    const lab = new NetnsLab('nstest');
    const ns = lab.add('x');
    const p = lab.spawn(ns, 'sleep', ['60']);
    const gone = new Promise((r) => p.once('exit', r));
    lab.disposeSync();
    await gone;
    expect(pidAlive(p.pid!)).toBe(false);
    expect(leftoverNamespaces(lab.prefix)).toEqual([]);
    await lab.dispose();
  });
});
