/**
 * The analyzer core behind `colo-proxy diff`: load both captures (the secondary aligned to
 * the primary's sequence space where it was captured behind filter-rewriter), match their
 * flows, compare each matched flow per direction and name the first divergence, count the
 * differences COLO ignores by design. Returns the DiffResult that `--json` prints.
 */
import { ColoError } from '../../errors.js';
import { PacketPool } from '../../packet/pool.js';
import { compareDatagramDirection, datagramBenign } from './compare-datagram.js';
import { compareTcpDirection, tcpBenign, type CompareOpts } from './compare-tcp.js';
import { checkComparable, loadCapture, PassTracker, type FlowRec, type LoadOptions } from './load.js';
import { matchFlows, type FlowPair } from './match.js';
import { BlockCache } from './store.js';
import { DIFF_CAUSES, emptyBenign, type BenignCounts, type DiffCause, type DiffDirection, type DiffOptions, type DiffResult, type DiffSideSummary, type Divergence, type FlowDiff } from './types.js';

export const DEFAULT_TIMEOUT_MS = 3000;
export const DEFAULT_CONTEXT = 16;

/**
 * The packet pool and tracker of the last analysis, kept for the next one in this process:
 * the pool's 50 MB of slabs and the flow table's arrays cost an allocation, page faults and
 * garbage collections on every call otherwise. Kept only when the analysis succeeded and
 * gave everything back (no slot in use, no flow left); taken (so never shared) while one runs.
 */
let idle: { pool: PacketPool; tracker: PassTracker; blocks: BlockCache; maxFlows: number | undefined } | null = null;

/** Store memory kept between analyses (BlockCache): 32 × 4 MiB at most. */
const KEPT_BLOCKS = 32;

/** Compare the captures at `primaryPath` and `secondaryPath`. Throws ColoError/CaptureError on bad input. */
export function analyzeDiff(primaryPath: string, secondaryPath: string, opts: DiffOptions = {}): DiffResult {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const context = opts.context ?? DEFAULT_CONTEXT;
  if (!(timeoutMs >= 0)) throw new ColoError('ERR_INVALID_ARGUMENT', `timeout must be a non-negative number of ms, got ${timeoutMs}`);
  if (!Number.isInteger(context) || context < 0 || context > 4096) throw new ColoError('ERR_INVALID_ARGUMENT', `context must be an integer from 0 to 4096, got ${context}`);
  const kept = idle !== null && idle.maxFlows === opts.maxFlows ? idle : null;
  idle = null;
  const pool = kept?.pool ?? new PacketPool();
  const blocks = kept?.blocks ?? new BlockCache(KEPT_BLOCKS);
  const lo = { pool, maxFlows: opts.maxFlows, wholeFileMax: opts.wholeFileMax, blocks };
  const tracker = kept?.tracker ?? new PassTracker(pool, opts.maxFlows);
  const p = loadCapture(primaryPath, { ...lo, tracker });
  // Without a SYN-ACK in the primary there is no ISN to align to.
  const alignTo = p.synAckIsns.size > 0 ? p.synAckIsns : undefined;
  const s = loadCapture(secondaryPath, { ...lo, tracker, alignTo, reference: p, timeoutMs });
  checkComparable(p, s);
  for (const l of [p.flows, s.flows]) for (const f of l) orientByPort(f);
  if (opts.clientCapture !== undefined) orientByClient(opts.clientCapture, [p.flows, s.flows], lo);
  const co: CompareOpts = { timeoutMs, context };

  const flows: FlowDiff[] = [];
  const total = emptyBenign();
  const byCause = Object.fromEntries(DIFF_CAUSES.map((c) => [c, 0])) as Record<DiffCause, number>;
  let onlyP = 0;
  let onlyS = 0;
  for (const pair of matchFlows(p.flows, s.flows)) {
    const one = pair.primary ?? pair.secondary!;
    if (pair.primary === null || pair.secondary === null) {
      // A TCP "flow" with no handshake and no byte is the tail of a closed connection
      // (a retransmitted FIN/ACK after the table let it go): benign, not a flow of its own.
      if (one.tcp !== null && !one.handshake && one.tcp[0].length === 0 && one.tcp[1].length === 0) {
        total.retransmissions += one.tcp[0].segments + one.tcp[1].segments;
        continue;
      }
    }
    const f = compareFlow(pair, flows.length, co);
    flows.push(f);
    addBenign(total, f.benign);
    if (f.onlyIn === 'primary') onlyP++;
    if (f.onlyIn === 'secondary') onlyS++;
    if (f.divergence !== null) byCause[f.divergence.cause]++;
  }
  const diverged = flows.filter((f) => f.verdict === 'diverged').length;
  // Nothing below reads the stores: their memory can serve the next analysis.
  p.slab.release();
  s.slab.release();
  // Every pass ended with the tracker's `finish`, which releases all it held.
  if (pool.stats().inUse === 0 && tracker.tracker.size === 0) idle = { pool, tracker, blocks, maxFlows: opts.maxFlows };
  return {
    schema: 1,
    primary: p.input,
    secondary: s.input,
    options: { timeoutMs, context, client: opts.clientCapture ?? null },
    summary: { flows: flows.length, diverged, identical: flows.length - diverged, byCause, onlyInPrimary: onlyP, onlyInSecondary: onlyS, benign: total },
    flows,
  };
}

function addBenign(a: BenignCounts, b: BenignCounts): void {
  for (const k of Object.keys(a) as (keyof BenignCounts)[]) a[k] += b[k];
}

function sideSummary(f: FlowRec): DiffSideSummary {
  if (f.tcp !== null) {
    return {
      packets: f.tcp[0].segments + f.tcp[1].segments,
      bytes: [f.tcp[0].length, f.tcp[1].length],
      end: [f.tcp[0].end, f.tcp[1].end],
      startMs: f.startMs,
      lastMs: f.lastMs,
    };
  }
  const d = f.dgram!;
  return { packets: d[0].count + d[1].count, bytes: [d[0].bytes, d[1].bytes], end: [null, null], startMs: f.startMs, lastMs: f.lastMs };
}

const DIRS: readonly DiffDirection[] = ['client-to-server', 'server-to-client'];

function compareFlow(pair: FlowPair, index: number, co: CompareOpts): FlowDiff {
  const p = pair.primary;
  const s = pair.secondary;
  const ref = p ?? s!;
  const benign = emptyBenign();
  const f: FlowDiff = {
    index, protocol: ref.protocol, client: ref.client, server: ref.server, vlan: ref.vlan,
    verdict: 'identical',
    alignment: ref.tcp === null ? null : p !== null && s !== null ? (p.alignment === 'midstream' ? 'midstream' : s.alignment) : ref.alignment,
    primary: p === null ? null : sideSummary(p),
    secondary: s === null ? null : sideSummary(s),
    divergence: null,
    benign,
  };
  if (p === null || s === null) {
    f.onlyIn = p !== null ? 'primary' : 'secondary';
    f.verdict = 'diverged';
    f.divergence = onlyInOne(ref, f.onlyIn);
    return f;
  }
  let best: Divergence | null = null;
  for (const d of [1, 0] as const) {
    const sd = pair.swapped ? (1 - d) as 0 | 1 : d;
    let div: Divergence | null;
    if (p.tcp !== null && s.tcp !== null) {
      div = compareTcpDirection(p.tcp[d], s.tcp[sd], DIRS[d]!, co);
      tcpBenign(p.tcp[d], s.tcp[sd], benign);
    } else if (p.dgram !== null && s.dgram !== null) {
      div = compareDatagramDirection(p.dgram[d], s.dgram[sd], DIRS[d]!, co);
      datagramBenign(p.dgram[d], s.dgram[sd], benign);
    } else div = null;
    if (div !== null && (best === null || when(div) < when(best))) best = div;
  }
  if (best !== null) {
    f.verdict = 'diverged';
    f.divergence = best;
  }
  return f;
}

function when(d: Divergence): number {
  return d.primaryMs ?? d.secondaryMs ?? Infinity;
}

/** The divergence of a flow present in one capture only. */
function onlyInOne(f: FlowRec, side: 'primary' | 'secondary'): Divergence {
  const other = side === 'primary' ? 'secondary' : 'primary';
  const tcp = f.tcp !== null;
  const sToC = tcp ? f.tcp![1].segments > 0 || f.tcp![1].length > 0 : f.dgram![1].count > 0;
  const firstFrame = tcp ? (f.tcp![1].deliveries.count > 0 ? f.tcp![1].frameAt(0) : -1) : f.dgram![sToC ? 1 : 0].count > 0 ? f.dgram![sToC ? 1 : 0].frameOf(0) : -1;
  const noBytes = { offset: 0, hex: '', text: '' };
  return {
    cause: side === 'primary' ? (tcp ? 'outcome' : 'missing') : 'extra',
    direction: sToC ? 'server-to-client' : 'client-to-server',
    offset: 0,
    offsetUnit: tcp ? 'byte' : 'datagram',
    side: 'secondary',
    primaryMs: side === 'primary' ? f.startMs : null,
    secondaryMs: side === 'secondary' ? f.startMs : null,
    primaryBytes: noBytes,
    secondaryBytes: noBytes,
    detail: side === 'primary'
      ? `this ${f.protocol.toUpperCase()} flow is only in the primary capture: the ${other} never answered`
      : `this ${f.protocol.toUpperCase()} flow is only in the secondary capture`,
    primaryFrames: side === 'primary' && firstFrame >= 0 ? [firstFrame] : [],
    secondaryFrames: side === 'secondary' && firstFrame >= 0 ? [firstFrame] : [],
  };
}

/** `--client CAPTURE`: the initiators seen there name the clients; flows the other way round are turned. */
function orientByClient(path: string, lists: FlowRec[][], lo: LoadOptions): void {
  const c = loadCapture(path, lo);
  const clientOf = new Map<string, string>();
  for (const f of c.flows) clientOf.set(pairOf(f), f.client);
  for (const l of lists) {
    for (const f of l) {
      const want = clientOf.get(pairOf(f));
      if (want !== undefined && want === f.server) swapFlow(f);
    }
  }
  c.slab.release();
}

function portOf(ep: string): number {
  return Number(ep.slice(ep.lastIndexOf(':') + 1));
}

/**
 * Without a handshake the tracker calls the first sender the client, which is the server in a
 * capture of server output only. For datagram flows and TCP flows picked up mid-stream, a
 * well-known port (< 1024) facing an unprivileged one names the server.
 */
function orientByPort(f: FlowRec): void {
  if (f.handshake || f.protocol === 'arp') return;
  const c = portOf(f.client);
  const s = portOf(f.server);
  if (c > 0 && c < 1024 && s >= 1024) swapFlow(f);
}

function pairOf(f: FlowRec): string {
  return f.client < f.server ? `${f.protocol}|${f.client}|${f.server}` : `${f.protocol}|${f.server}|${f.client}`;
}

function swapFlow(f: FlowRec): void {
  [f.client, f.server] = [f.server, f.client];
  if (f.tcp !== null) f.tcp = [f.tcp[1], f.tcp[0]];
  if (f.dgram !== null) f.dgram = [f.dgram[1], f.dgram[0]];
}
