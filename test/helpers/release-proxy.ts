/**
 * "Release every primary frame" external proxy for the COLO pair harness self-test (the shared
 * lab's colo_proxy_release.py, rebuilt on the project's FramedChannel). It compares nothing:
 * every frame from the primary is written unchanged to the release path at once; the
 * secondary's frames are read, counted and dropped.
 *
 *   node --import tsx test/helpers/release-proxy.ts --primary-in tcp:127.0.0.1:9001 \
 *        --outdev tcp:127.0.0.1:9005 --secondary-in tcp:127.0.0.1:9004,server [--vnet] [--stats FILE]
 *
 * Limitation (lab README, "Using this lab for the external proxy" item 5): releasing the
 * primary's SYN-ACK before the secondary has sent its own lets the client's ACK reach QEMU's
 * filter-rewriter too early, and the secondary may reset that connection. The client is not
 * affected (it only ever sees the primary's frames); the secondary's state drifts until the
 * next checkpoint. Tests built on this proxy assert only what that cannot break.
 *
 * The release connection is opened before the primary's input and never dropped on purpose:
 * a QEMU 7.2 filter-redirector never reads its input again after that connection closes.
 * Stats (JSON) go to --stats every 250 ms and once more on SIGTERM/SIGINT before exiting.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PacketPool } from '../../src/packet/pool.js';
import { FramedChannel } from '../../src/wire/connection.js';
import type { ProxyCommand, ProxyEndpoints } from './colo-pair.js';
import { ROOT } from './paths.js';

export const RELEASE_PROXY_PATH = fileURLToPath(import.meta.url);

export interface ReleaseProxyStats {
  primaryFrames: number;
  released: number;
  /** Primary frames the release path refused (no peer, or writer over its cap). */
  releaseDrops: number;
  secondaryFrames: number;
  /** Connections seen on each socket. */
  primaryConnections: number;
  outdevConnections: number;
  secondaryConnections: number;
  /**
   * `counter=…` lines found in the frames of each side (the guest's CGI bodies), in order.
   * Lets a test see that the secondary ran the same request without parsing TCP here.
   */
  primaryCounterLines: string[];
  secondaryCounterLines: string[];
  errors: string[];
}

export interface ReleaseProxyOptions {
  primaryIn: string;
  outdev: string;
  secondaryIn: string;
  vnetHdr: boolean;
}

const MARK = Buffer.from('counter=');
const MAX_LINES = 1000;

/** The running proxy (in-process form, used by the CLI below). */
export class ReleaseProxy {
  readonly #pool = new PacketPool();
  readonly #pri: FramedChannel;
  readonly #out: FramedChannel;
  readonly #sec: FramedChannel;
  readonly #stats: ReleaseProxyStats = {
    primaryFrames: 0,
    released: 0,
    releaseDrops: 0,
    secondaryFrames: 0,
    primaryConnections: 0,
    outdevConnections: 0,
    secondaryConnections: 0,
    primaryCounterLines: [],
    secondaryCounterLines: [],
    errors: [],
  };

  constructor(o: ReleaseProxyOptions) {
    const pool = this.#pool;
    const st = this.#stats;
    const onError = (where: string) => (err: Error) => {
      if (st.errors.length < 100) st.errors.push(`${where}: ${(err as { code?: string }).code ?? ''} ${err.message}`);
    };
    this.#out = new FramedChannel({
      endpoint: o.outdev,
      vnetHdr: o.vnetHdr,
      pool,
      reconnectMs: 100,
      onFrame: (h) => pool.release(h), // nothing is expected from the release path
      onConnected: () => st.outdevConnections++,
      onError: onError('outdev'),
    });
    this.#pri = new FramedChannel({
      endpoint: o.primaryIn,
      vnetHdr: o.vnetHdr,
      pool,
      reconnectMs: 100,
      onFrame: (h) => {
        st.primaryFrames++;
        if (this.#out.writeHandle(h)) st.released++;
        else st.releaseDrops++;
        this.#scan(h, st.primaryCounterLines);
        pool.release(h);
      },
      onConnected: () => st.primaryConnections++,
      onError: onError('primary-in'),
    });
    this.#sec = new FramedChannel({
      endpoint: o.secondaryIn,
      vnetHdr: o.vnetHdr,
      pool,
      onFrame: (h) => {
        st.secondaryFrames++;
        this.#scan(h, st.secondaryCounterLines);
        pool.release(h);
      },
      onConnected: () => st.secondaryConnections++,
      onError: onError('secondary-in'),
    });
  }

  /** Listen for the secondary, connect the release path, then (once it is up) the primary. */
  async start(): Promise<void> {
    await this.#sec.start();
    await this.#out.start();
    await this.#out.whenConnected();
    await this.#pri.start();
  }

  stats(): ReleaseProxyStats {
    return this.#stats;
  }

  async close(): Promise<void> {
    await Promise.all([this.#pri.close(), this.#sec.close()]);
    this.#out.flush();
    await this.#out.close();
  }

  /** Record the `counter=…` line a frame carries, if any (cold diagnostic, not a hot path). */
  #scan(h: number, into: string[]): void {
    const pool = this.#pool;
    const buf = pool.buffer(h);
    const start = pool.offset(h);
    const end = start + pool.length(h);
    if (into.length >= MAX_LINES) return;
    // Bounded search: the pool's buffer is a whole slab, so Buffer.indexOf would run past the frame.
    let at = -1;
    for (let i = start; i + MARK.length <= end && at < 0; i++) {
      let j = 0;
      while (j < MARK.length && buf[i + j] === MARK[j]) j++;
      if (j === MARK.length) at = i;
    }
    if (at < 0) return;
    let e = at;
    while (e < end && buf[e] !== 0x0a) e++;
    into.push(buf.toString('latin1', at, e));
  }
}

/** The harness `proxy` option for this proxy: argv that runs it with tsx, stats to `statsPath`. */
export function releaseProxyCommand(ep: ProxyEndpoints, statsPath: string): ProxyCommand {
  const argv = [process.execPath, '--import', 'tsx', RELEASE_PROXY_PATH];
  argv.push('--primary-in', ep.primaryIn, '--outdev', ep.outdev, '--secondary-in', ep.secondaryIn, '--stats', statsPath);
  if (ep.vnetHdr) argv.push('--vnet');
  return { argv };
}

function parseArgs(argv: string[]): ReleaseProxyOptions & { stats: string | undefined } {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const need = (name: string): string => {
    const v = get(name);
    if (v === undefined) throw new Error(`release-proxy: missing ${name}`);
    return v;
  };
  return {
    primaryIn: need('--primary-in'),
    outdev: need('--outdev'),
    secondaryIn: need('--secondary-in'),
    vnetHdr: argv.includes('--vnet'),
    stats: get('--stats'),
  };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const proxy = new ReleaseProxy(o);
  const dump = () => {
    if (o.stats === undefined) return;
    const tmp = `${o.stats}.tmp`;
    writeFileSync(tmp, JSON.stringify(proxy.stats()));
    renameSync(tmp, o.stats); // readers never see a half-written file
  };
  const timer = setInterval(dump, 250);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    void proxy.close().finally(() => {
      dump();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await proxy.start();
  process.stderr.write(`release-proxy: up (primary ${o.primaryIn}, outdev ${o.outdev}, secondary ${o.secondaryIn}, vnet ${o.vnetHdr})\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === RELEASE_PROXY_PATH) {
  process.chdir(ROOT);
  main().catch((err: unknown) => {
    process.stderr.write(`release-proxy: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
