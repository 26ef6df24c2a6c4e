/**
 * Record real kernel TCP under loss, duplication and reordering.
 *
 * ```
 *   [client ns]                 [relay ns]                    [server ns]
 *   192.0.2.1 on tapC  ◄──fd──  relay-process.ts  ──fd──►  tapS 192.0.2.2
 *                              (seeded impairment)          tcpdump -w capture.pcap
 * ```
 * The relay process (our own tap addon) opens both taps in its namespace; they are then moved
 * into the client and server namespaces, where the kernel stacks use them like wires. Frames
 * between the stacks pass only through the relay, which drops / duplicates / reorders them.
 * tcpdump records the SERVER-side tap, so the capture holds the server's own transmissions
 * (retransmissions included) and what the relay delivered to it (duplicates, reordering, gaps).
 *
 * Segments are wire-sized: a tap offers TSO/checksum offload only after TUNSETOFFLOAD, which
 * the relay never calls, so the kernel segments and checksums in software before the tap (and
 * ethtool is not installed here anyway). Addresses: 192.0.2.0/24 (RFC 5737); MACs are static
 * and locally administered; IPv6 is disabled in both namespaces, and ARP is replaced by
 * permanent neighbour entries so that no frame but the workload's crosses the relay.
 * COLO_RELAY_DEBUG=1 prints tcpdump's closing statistics to stderr.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsLab, netnsSkipReason, stopProcess } from './netns.js';
import { ROOT } from './paths.js';
import { ImpairedLink } from './relay-impair.js';
import type { Impairment } from './relay-impair.js';
import type { RelayConfig, RelayReport } from './relay-process.js';
import type { ConnResult } from './relay-workload.js';
import { hasTool } from './tools.js';

export type { Impairment } from './relay-impair.js';
export type { RelayReport } from './relay-process.js';
export type { ConnResult } from './relay-workload.js';

export const RELAY_SCRIPT = join(ROOT, 'test', 'helpers', 'relay-process.ts');
export const WORKLOAD_SCRIPT = join(ROOT, 'test', 'helpers', 'relay-workload.ts');

export const CLIENT_IP = '192.0.2.1';
export const SERVER_IP = '192.0.2.2';
export const CLIENT_MAC = '02:00:00:00:01:01';
export const SERVER_MAC = '02:00:00:00:01:02';
export const SERVER_PORT = 5001;

/** Why impaired captures cannot be recorded here, or null. */
export function lossyRelaySkipReason(): string | null {
  return netnsSkipReason() ?? (hasTool('tcpdump') ? null : 'tcpdump not found: impaired-capture tests skipped');
}

export interface Workload {
  /** Parallel TCP connections; default 3. */
  connections?: number;
  /** Bytes each connection sends client → server; default 200 000. */
  upBytes?: number;
  /** Bytes each connection sends server → client; default 300 000. */
  downBytes?: number;
}

export interface ImpairedCaptureOptions extends Impairment {
  /** PRNG seed for the relay's decisions (and the payload pattern); default 1. */
  seed?: number;
  /** Per-direction overrides of loss/dup/reorder/reorderK. */
  c2s?: Impairment;
  s2c?: Impairment;
  workload?: Workload;
  /** Held-frame timeout in the relay (ms); default 20. */
  holdMs?: number;
  /** Whole-run limit; default 40 s. */
  timeoutMs?: number;
  /**
   * Leave the kernel's tail-loss probe on (default true). With it on, a scheduling stall of
   * the relay process longer than the probe timeout (about 10 ms; easy on a busy 2-core VM)
   * makes the sender probe: a real retransmission caused by timing, not by the relay. Turn it
   * off (net.ipv4.tcp_early_retrans=0 in both stacks) when a run must show retransmissions
   * only for frames the relay actually lost, changed or held back for > RTO (200 ms).
   */
  tailLossProbe?: boolean;
}

export interface ImpairedCapture {
  /** Classic pcap (tcpdump -w) of the server-side tap. Removed by dispose(). */
  pcapPath: string;
  relay: RelayReport;
  /** What the client received per connection (from the server). */
  client: ConnResult[];
  /** What the server received per connection (from the client). */
  server: ConnResult[];
  /** Resolved workload and seed (to recompute the expected payloads). */
  workload: Required<Workload>;
  seed: number;
  /** Packets tcpdump reported as dropped by the kernel (should be 0). */
  captureDropped: number;
  /** Every process the run started (all gone by the time this returns). */
  pids: number[];
  /** Every namespace the run created (all deleted by the time this returns). */
  namespaces: string[];
  /** Remove the capture's temp dir (namespaces and processes are already gone). */
  dispose(): void;
}

/** A failed run; everything it started has been cleaned up before this is thrown. */
export class RelayRunError extends Error {
  constructor(
    message: string,
    readonly pids: number[],
    readonly namespaces: string[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RelayRunError';
  }
}

/** Collect a child's stdout as JSON lines; `wait(pred)` resolves with the first matching one. */
class JsonLines {
  readonly lines: Array<Record<string, unknown>> = [];
  stderr = '';
  #buf = '';
  #waiters: Array<{ pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];

  constructor(readonly proc: ChildProcess) {
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (s: string) => {
      this.#buf += s;
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl).trim();
        this.#buf = this.#buf.slice(nl + 1);
        if (line === '') continue;
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(line) as Record<string, unknown>;
        } catch {
          this.stderr += `(stdout) ${line}\n`;
          continue;
        }
        this.lines.push(obj);
        this.#waiters = this.#waiters.filter((w) => (w.pred(obj) ? (w.resolve(obj), false) : true));
      }
    });
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (s: string) => {
      this.stderr += s;
    });
  }

  wait(what: string, pred: (l: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
    const have = this.lines.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${this.stderr.trim()}`)), timeoutMs);
      const onExit = () => {
        clearTimeout(t);
        setImmediate(() => {
          const late = this.lines.find(pred);
          if (late) resolve(late);
          else reject(new Error(`process exited (${this.proc.exitCode ?? this.proc.signalCode}) before ${what}; stderr: ${this.stderr.trim()}`));
        });
      };
      this.proc.once('exit', onExit);
      this.#waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(t);
          this.proc.off('exit', onExit);
          resolve(l);
        },
      });
    });
  }
}

/** Wait until `text` shows up on a child's stderr (tcpdump's "listening on"). */
function waitStderr(proc: ChildProcess, text: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let err = '';
    const t = setTimeout(() => reject(new Error(`timed out waiting for "${text}": ${err}`)), timeoutMs);
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (s: string) => {
      err += s;
      if (err.includes(text)) {
        clearTimeout(t);
        resolve(err);
      }
    });
    proc.once('exit', (c) => {
      clearTimeout(t);
      reject(new Error(`exited (${c}) before "${text}": ${err}`));
    });
  });
}

const TSX = ['--import', 'tsx'];
const noop = (): void => {};
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Build client/relay/server namespaces, run the workload through the impairing relay while
 * tcpdump records the server-side tap, tear everything down (processes by PID, namespaces),
 * and return the capture with both sides' results and the relay's counts. On any failure
 * everything is cleaned up before the error propagates.
 */
export async function recordImpairedCapture(opts: ImpairedCaptureOptions = {}): Promise<ImpairedCapture> {
  const skip = lossyRelaySkipReason();
  if (skip !== null) throw new Error(skip);
  const seed = opts.seed ?? 1;
  const workload: Required<Workload> = {
    connections: opts.workload?.connections ?? 3,
    upBytes: opts.workload?.upBytes ?? 200_000,
    downBytes: opts.workload?.downBytes ?? 300_000,
  };
  const base: Impairment = { loss: opts.loss, dup: opts.dup, reorder: opts.reorder, reorderK: opts.reorderK };
  const cfg: RelayConfig = {
    tapC: 'tapc',
    tapS: 'taps',
    c2s: { ...base, ...opts.c2s },
    s2c: { ...base, ...opts.s2c },
    seed,
    holdMs: opts.holdMs,
  };
  // Refuse a bad configuration here, before any namespace exists (the relay checks it too).
  for (const imp of [cfg.c2s, cfg.s2c]) new ImpairedLink(imp, 0, noop, noop, noop);
  const timeoutMs = opts.timeoutMs ?? 40_000;
  const dir = mkdtempSync(join(tmpdir(), 'colo-relay-'));
  const pcapPath = join(dir, 'server-side.pcap');
  const lab = new NetnsLab('relay');
  try {
    const nsR = lab.add('relay');
    const nsC = lab.add('client');
    const nsS = lab.add('server');
    for (const ns of [nsC, nsS]) {
      lab.sysctl(ns, 'net.ipv6.conf.all.disable_ipv6', '1');
      lab.sysctl(ns, 'net.ipv6.conf.default.disable_ipv6', '1');
      if (opts.tailLossProbe === false) lab.sysctl(ns, 'net.ipv4.tcp_early_retrans', '0');
    }

    // The relay is the only userspace hop between the stacks: a higher priority keeps its
    // latency low while the test runner keeps both cores busy (nice execs in place, same PID).
    const relay = new JsonLines(
      lab.spawn(nsR, 'nice', ['-n', '-10', process.execPath, ...TSX, RELAY_SCRIPT, JSON.stringify(cfg)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] }),
    );
    await relay.wait('relay ready', (l) => l.ready === true, 15_000);

    // Hand the relay's taps to the stacks; the relay's open fds keep working.
    lab.ipIn(nsR, ['link', 'set', cfg.tapC, 'netns', nsC]);
    lab.ipIn(nsR, ['link', 'set', cfg.tapS, 'netns', nsS]);
    const sides: Array<[string, string, string, string, string, string]> = [
      [nsC, cfg.tapC, CLIENT_MAC, CLIENT_IP, SERVER_IP, SERVER_MAC],
      [nsS, cfg.tapS, SERVER_MAC, SERVER_IP, CLIENT_IP, CLIENT_MAC],
    ];
    for (const [ns, dev, mac, ip, peerIp, peerMac] of sides) {
      lab.ipIn(ns, ['link', 'set', dev, 'address', mac]);
      lab.ipIn(ns, ['link', 'set', dev, 'up']);
      lab.addr(ns, dev, `${ip}/24`);
      lab.neigh(ns, dev, peerIp, peerMac);
    }

    // Immediate mode makes libpcap use fixed ring slots of about the snap length: a 4 KiB snap
    // (wire frames here are ≤ 1514 bytes) in a 32 MiB buffer gives ~8000 slots, where the
    // default 256 KiB snap would leave 128 and drop frames under bursts.
    const tcpdump = lab.spawn(nsS, 'tcpdump', ['-i', cfg.tapS, '-n', '-s', '4096', '-B', '32768', '-U', '--immediate-mode', '-w', pcapPath], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let tcpdumpErr = await waitStderr(tcpdump, 'listening on', 10_000);
    tcpdump.stderr!.on('data', (s: string) => {
      tcpdumpErr += s;
    });

    const server = new JsonLines(
      lab.spawn(nsS, process.execPath, [...TSX, WORKLOAD_SCRIPT, 'server', SERVER_IP, String(SERVER_PORT), String(seed), String(workload.downBytes)], { cwd: ROOT }),
    );
    await server.wait('server listening', (l) => l.listening === true, 15_000);

    const clientProc = lab.spawn(
      nsC,
      process.execPath,
      [...TSX, WORKLOAD_SCRIPT, 'client', SERVER_IP, String(SERVER_PORT), String(seed), String(workload.connections), String(workload.upBytes)],
      { cwd: ROOT },
    );
    const client = new JsonLines(clientProc);
    const clientOut = await client.wait('client results', (l) => Array.isArray(l.conns), timeoutMs);
    const serverConns: ConnResult[] = [];
    for (let i = 0; i < workload.connections; i++) {
      await server.wait(`server connection ${i}`, () => server.lines.filter((l) => l.conn !== undefined).length > i, 10_000);
    }
    for (const l of server.lines) if (l.conn !== undefined) serverConns.push(l.conn as ConnResult);

    // Let the last ACKs cross, then stop the capture while the taps still exist (tcpdump
    // quits without draining its buffer when its interface disappears), then the relay.
    await settle(300);
    await stopProcess(server.proc);
    await stopProcess(tcpdump, 5000, 'SIGINT');
    await stopProcess(relay.proc);
    const relayOut = await relay.wait('relay stats', (l) => l.stats !== undefined, 5_000);
    const m = /(\d+) packets? dropped by kernel/.exec(tcpdumpErr);
    if (process.env.COLO_RELAY_DEBUG) process.stderr.write(tcpdumpErr);

    const namespaces = [...lab.namespaces];
    await lab.dispose();
    return {
      pids: lab.pids,
      namespaces,
      pcapPath,
      relay: relayOut.stats as RelayReport,
      client: (clientOut.conns as ConnResult[]).slice().sort((a, b) => a.id - b.id),
      server: serverConns.sort((a, b) => a.id - b.id),
      workload,
      seed,
      captureDropped: m ? Number(m[1]) : -1,
      dispose: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    const namespaces = [...lab.namespaces];
    await lab.dispose();
    rmSync(dir, { recursive: true, force: true });
    throw new RelayRunError(`impaired capture failed: ${(err as Error).message}`, lab.pids, namespaces, { cause: err });
  }
}
