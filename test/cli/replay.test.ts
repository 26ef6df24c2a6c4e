/**
 * `colo-proxy replay` end to end (the real command in a child process):
 * - to a QEMU-framed unix-socket server made here with FramedChannel: every frame arrives,
 *   byte-identical and in capture order (oracle: the capture's records, counted and summed by
 *   tshark too), with and without the vnet_hdr_len field, looped;
 * - pacing: pps and capture timing take about the expected time (loose lower/upper bounds);
 * - into a tap inside a throwaway network namespace (`unshare -n`), checked by tcpdump on that
 *   tap (count and bytes via tshark);
 * - bad arguments are named, exit 2.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCapture } from '../../src/capture/reader.js';
import { toEthernet } from '../../src/capture/linktype.js';
import { PacketPool } from '../../src/packet/pool.js';
import { FramedChannel } from '../../src/wire/connection.js';
import { findAddonPath } from '../../src/wire/tap.js';
import { OWN_CAPTURES, ROOT } from '../helpers/paths.js';
import { hasTool, isRoot, tshark } from '../helpers/tools.js';

const CLI = resolve(ROOT, 'src/cli/main.ts');
const DEMO = join(OWN_CAPTURES, 'demo-http.pcapng');
const BULK = join(OWN_CAPTURES, 'bulk-tcp.pcapng');
const tmp = mkdtempSync(join(tmpdir(), 'colo-replay-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

interface Run { status: number; stdout: string; stderr: string }

/** Run the CLI without blocking this process's event loop (the receiver lives here). */
function cliAsync(args: string[]): Promise<Run> {
  return new Promise((res) => {
    const p = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => res({ status: code ?? -1, stdout, stderr }));
  });
}

function cli(args: string[]): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The capture's frames as Ethernet, copied (the oracle the received frames must equal). */
function captureFrames(file: string): Buffer[] {
  const out: Buffer[] = [];
  const r = openCapture(file);
  try {
    for (let rec = r.next(); rec !== null; rec = r.next()) if (toEthernet(rec)) out.push(Buffer.from(rec.buf.subarray(rec.off, rec.off + rec.capLen)));
  } finally {
    r.close();
  }
  return out;
}

interface Got { data: Buffer; vnet: number; atMs: number }

/** A FramedChannel server on a fresh unix socket that keeps a copy of every frame it gets. */
async function receiver(vnetHdr: boolean): Promise<{ endpoint: string; got: Got[]; close: () => Promise<void> }> {
  const path = join(tmp, `r${n++}.sock`);
  const pool = new PacketPool();
  const got: Got[] = [];
  const ch = new FramedChannel({
    endpoint: `unix:${path},server`, vnetHdr, pool,
    onFrame: (h, vnet) => {
      got.push({ data: Buffer.from(pool.buffer(h).subarray(pool.offset(h), pool.offset(h) + pool.length(h))), vnet, atMs: performance.now() });
      pool.release(h);
    },
  });
  await ch.start();
  return { endpoint: `unix:${path}`, got, close: () => ch.close() };
}

const tsharkSum = (file: string): { frames: number; bytes: number } => {
  const lens = tshark(['-r', file, '-T', 'fields', '-e', 'frame.cap_len']).split('\n').filter((l) => l.trim() !== '').map(Number);
  return { frames: lens.length, bytes: lens.reduce((a, b) => a + b, 0) };
};

describe('replay over QEMU framing to a unix socket', () => {
  for (const vnet of [false, true]) {
    it(`every frame arrives byte-identical and in order, looped twice (vnet_hdr ${vnet ? 'on, 12 bytes' : 'off'})`, async () => {
      const rx = await receiver(vnet);
      try {
        const args = ['replay', DEMO, '--connect', rx.endpoint, '--pace', 'topspeed', '--loop', '2', '--json', '-q', ...(vnet ? ['--vnet-hdr', '12'] : [])];
        const r = await cliAsync(args);
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        const want = captureFrames(DEMO);
        const s = JSON.parse(r.stdout) as { frames: number; bytes: number; loops: number; refused: number };
        if (hasTool('tshark')) {
          const t = tsharkSum(DEMO);
          expect(want.length).toBe(t.frames);
          expect(s.bytes).toBe(2 * t.bytes);
        }
        expect(s.frames).toBe(2 * want.length);
        expect(rx.got.length).toBe(2 * want.length);
        for (let i = 0; i < rx.got.length; i++) {
          const g = rx.got[i]!;
          const w = want[i % want.length]!;
          if (vnet) {
            expect(g.vnet).toBe(12);
            expect(g.data.subarray(0, 12).equals(Buffer.alloc(12))).toBe(true);
            expect(g.data.subarray(12).equals(w), `frame ${i}`).toBe(true);
          } else {
            expect(g.vnet).toBe(0);
            expect(g.data.equals(w), `frame ${i}`).toBe(true);
          }
        }
      } finally {
        await rx.close();
      }
    }, 30_000);
  }

  it('a 1 MB bulk capture arrives whole (backpressure honoured, nothing dropped)', async () => {
    const rx = await receiver(false);
    try {
      const r = await cliAsync(['replay', BULK, '--connect', rx.endpoint, '--pace', 'topspeed', '-q']);
      expect(r.status).toBe(0);
      const want = captureFrames(BULK);
      expect(rx.got.length).toBe(want.length);
      expect(rx.got.every((g, i) => g.data.equals(want[i]!))).toBe(true);
      expect(r.stdout).toMatch(new RegExp(`^replayed ${want.length} frames \\(\\d+ bytes\\) to unix:.* in [\\d.]+ s: \\d+ frames/s, [\\d.]+ Mbit/s\\n$`));
    } finally {
      await rx.close();
    }
  }, 30_000);

  it('pps pacing: the demo capture\'s 80 frames at pps:200 take about 395 ms (loose bounds)', async () => {
    const rx = await receiver(false);
    try {
      const r = await cliAsync(['replay', DEMO, '--connect', rx.endpoint, '--pace', 'pps:200', '--json', '-q']);
      expect(r.status).toBe(0);
      const s = JSON.parse(r.stdout) as { frames: number; seconds: number };
      const expectS = (s.frames - 1) / 200;
      expect(s.seconds).toBeGreaterThanOrEqual(expectS * 0.95);
      expect(s.seconds).toBeLessThan(expectS + 2);
      const span = (rx.got.at(-1)!.atMs - rx.got[0]!.atMs) / 1000;
      expect(span).toBeGreaterThan(expectS * 0.8);
    } finally {
      await rx.close();
    }
  }, 30_000);

  it('capture timing: realtime takes at least the capture\'s span, x4 about a quarter of it', async () => {
    const span = (() => {
      const f = openCapture(DEMO);
      let first = -1;
      let last = 0;
      for (let r = f.next(); r !== null; r = f.next()) {
        const t = r.tsSec * 1000 + r.tsNsec / 1e6;
        if (first < 0) first = t;
        last = t;
      }
      f.close();
      return (last - first) / 1000;
    })();
    expect(span).toBeGreaterThan(0.3);
    for (const [pace, factor] of [['realtime', 1], ['x4', 4]] as const) {
      const rx = await receiver(false);
      try {
        const r = await cliAsync(['replay', DEMO, '--connect', rx.endpoint, '--pace', pace, '--json', '-q']);
        expect(r.status).toBe(0);
        const s = JSON.parse(r.stdout) as { seconds: number };
        expect(s.seconds, pace).toBeGreaterThanOrEqual((span / factor) * 0.95);
        expect(s.seconds, pace).toBeLessThan(span / factor + 2);
      } finally {
        await rx.close();
      }
    }
  }, 30_000);

  it('with ,server it listens and waits for the peer to connect', async () => {
    const path = join(tmp, `l${n++}.sock`);
    const run = cliAsync(['replay', DEMO, '--connect', `unix:${path},server`, '--pace', 'topspeed', '--json', '-q']);
    const pool = new PacketPool();
    let count = 0;
    const ch = new FramedChannel({ endpoint: `unix:${path}`, vnetHdr: false, pool, reconnectMs: 50, onFrame: (h) => { count++; pool.release(h); } });
    await ch.start();
    try {
      const r = await run;
      expect(r.status).toBe(0);
      expect(count).toBe(captureFrames(DEMO).length);
    } finally {
      await ch.close();
    }
  }, 30_000);
});

const tapSkip = !isRoot ? 'not root' : !hasTool('unshare') || !hasTool('ip') || !hasTool('tcpdump') ? 'unshare, ip or tcpdump missing'
  : !existsSync('/dev/net/tun') ? '/dev/net/tun missing' : findAddonPath() === null ? 'tap addon not built' : null;

describe.skipIf(tapSkip !== null)('replay into a tap (throwaway network namespace)', () => {
  /**
   * Inside `unshare -n` (the namespace and its tap vanish with the shell): a persistent tap,
   * up, tcpdump on it capturing inbound frames, the replay, then tcpdump stopped by its PID.
   */
  function tapRun(capture: string, extra: string[]): { status: number; out: string; cap: string; stderr: string } {
    const cap = join(tmp, `tap${n++}.pcap`);
    const cmd = [process.execPath, '--import', 'tsx', CLI, 'replay', capture, '--tap', 'rtap0', ...extra, '--json', '-q'].map((a) => `'${a}'`).join(' ');
    const script = `set -e
ip link set lo up
ip tuntap add dev rtap0 mode tap${extra.includes('--vnet-hdr') ? ' vnet_hdr' : ''}
sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip link set rtap0 up
tcpdump -i rtap0 -Q in --immediate-mode -U -s 0 -B 16384 -w '${cap}' 2>'${cap}.log' & td=$!
# tcpdump says "listening on" once its socket is bound to the tap.
for i in $(seq 100); do grep -q 'listening on' '${cap}.log' && break; sleep 0.1; done
sleep 0.2
set +e
${cmd}
st=$?
# Stop tcpdump only once it has written everything it took in (the file stops growing).
prev=-1
for i in $(seq 40); do sz=$(stat -c %s '${cap}'); [ "$sz" = "$prev" ] && break; prev=$sz; sleep 0.5; done
kill $td; wait $td
exit $st`;
    const r = spawnSync('unshare', ['-n', 'bash', '-c', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    const log = readFileSync(`${cap}.log`, 'utf8');
    expect(log).toMatch(/listening on rtap0/);
    expect(log).toMatch(/^0 packets dropped by kernel/m);
    return { status: r.status ?? -1, out: r.stdout, cap, stderr: r.stderr };
  }

  it('every frame arrives on the tap: tcpdump there counts the capture\'s frames and bytes (tshark)', () => {
    const r = tapRun(BULK, ['--pace', 'pps:4000']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const s = JSON.parse(r.out) as { frames: number; bytes: number; refused: number; target: string };
    expect(s.target).toBe('tap rtap0');
    expect(s.refused).toBe(0);
    const want = tsharkSum(BULK);
    expect(s.frames).toBe(want.frames);
    expect(tsharkSum(r.cap)).toEqual(want);
  }, 60_000);

  it('with a virtio-net header (IFF_VNET_HDR): the same frames arrive, the header taken off by the kernel', () => {
    const r = tapRun(DEMO, ['--pace', 'topspeed', '--vnet-hdr']);
    expect(r.status).toBe(0);
    // demo-http holds frames far beyond the tap's MTU (GSO super-frames captured on a veth):
    // the tap takes them too.
    expect(tsharkSum(r.cap)).toEqual(tsharkSum(DEMO));
  }, 60_000);
});

describe('replay argument errors', () => {
  it('names what is wrong, exit 2', () => {
    const none = cli(['replay', DEMO]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/exactly one of --tap NAME or --connect ENDPOINT/);
    const both = cli(['replay', DEMO, '--tap', 'x', '--connect', 'unix:/tmp/x']);
    expect(both.status).toBe(2);
    const pace = cli(['replay', DEMO, '--connect', 'unix:/tmp/x', '--pace', 'fast']);
    expect(pace.status).toBe(2);
    expect(pace.stderr).toMatch(/bad pace "fast"/);
    const vnet = cli(['replay', DEMO, '--connect', 'unix:/tmp/x', '--vnet-hdr', '30']);
    expect(vnet.status).toBe(2);
    expect(vnet.stderr).toMatch(/at most 20/);
    const ep = cli(['replay', DEMO, '--connect', 'udp:1.2.3.4']);
    expect(ep.status).toBe(2);
    expect(ep.stderr).toMatch(/udp:1\.2\.3\.4/);
  });

  it('gives up on a peer that never comes, naming the endpoint', () => {
    const path = join(tmp, 'nobody.sock');
    const r = cli(['replay', DEMO, '--connect', `unix:${path}`, '--connect-timeout', '300', '-q']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(path);
    expect(r.stderr).toMatch(/ERR_TIMEOUT/);
  });

  it('has --help', () => {
    const h = cli(['replay', '--help']);
    expect(h.status).toBe(0);
    for (const f of ['--tap', '--connect', '--pace', '--loop', '--vnet-hdr']) expect(h.stdout).toContain(f);
  });
});
