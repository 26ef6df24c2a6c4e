/**
 * Flow table lookups against what most code would write: a `Map<string, …>` keyed by the
 * formatted, direction-normalised 5-tuple. Same packets, same run, at 1k, 100k and 1M flows,
 * plus churn (new flows into a full table, evicting the oldest). Memory per flow for both.
 *
 * Both sides get the same already-decoded PacketView (its fields are set directly from a
 * pregenerated address slab; decodeFrame's cost is measured in bench/decode.bench.ts and
 * would only dilute the comparison). Lookups pick random flows in random directions, so the
 * large cases measure cache misses as real traffic would.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FlowTable } from '../src/flow/table.js';
import { formatIPv4 } from '../src/packet/addr.js';
import { LAYER_ETH, LAYER_IPV4, LAYER_PAYLOAD, LAYER_UDP } from '../src/packet/layer.js';
import { PacketView } from '../src/packet/view.js';
import { timedMedian, type BenchRow } from './harness.js';

interface Flows {
  n: number;
  /** 8 bytes per flow: source then destination IPv4 address. */
  addrs: Uint8Array;
  sport: Uint16Array;
  dport: Uint16Array;
}

function makeFlows(n: number, salt: number): Flows {
  const addrs = new Uint8Array(n * 8);
  const sport = new Uint16Array(n);
  const dport = new Uint16Array(n);
  let x = 0x9e3779b9 ^ salt;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let i = 0; i < n; i++) {
    // 10.x.y.z clients to a few hundred servers: realistic skew, and every flow distinct by (i).
    const c = i + 1;
    addrs.set([10, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff, 192, 168, rnd() & 1, rnd() & 0xff], i * 8);
    sport[i] = 1024 + (rnd() % 60000);
    dport[i] = [53, 80, 443, 8080][rnd() & 3]!;
  }
  return { n, addrs, sport, dport };
}

/** Point `v` at flow `i`, sent by its client (dir 0) or its server (dir 1). */
function aim(v: PacketView, f: Flows, i: number, dir: number): void {
  const o = i * 8;
  if (dir === 0) {
    v.ipSrcOff = o;
    v.ipDstOff = o + 4;
    v.srcPort = f.sport[i]!;
    v.dstPort = f.dport[i]!;
  } else {
    v.ipSrcOff = o + 4;
    v.ipDstOff = o;
    v.srcPort = f.dport[i]!;
    v.dstPort = f.sport[i]!;
  }
}

function baseView(f: Flows): PacketView {
  const v = new PacketView();
  v.buf = f.addrs;
  v.layers = LAYER_ETH | LAYER_IPV4 | LAYER_UDP | LAYER_PAYLOAD;
  v.status = 0;
  v.ipVersion = 4;
  v.ipAddrLen = 4;
  v.ipProto = 17;
  v.ipTotalLen = 100;
  return v;
}

interface MapEntry {
  initiator: string;
  pkts0: number;
  pkts1: number;
  bytes0: number;
  bytes1: number;
  lastSeen: number;
}

/** The usual approach: format both endpoints, order them, join into one key. */
function mapKey(v: PacketView): { key: string; from: string } {
  const a = `${formatIPv4(v.buf, v.ipSrcOff)}:${v.srcPort}`;
  const b = `${formatIPv4(v.buf, v.ipDstOff)}:${v.dstPort}`;
  return { key: a < b ? `${v.ipProto}|${v.vlanId0}|${a}|${b}` : `${v.ipProto}|${v.vlanId0}|${b}|${a}`, from: a };
}

function mapLookup(m: Map<string, MapEntry>, v: PacketView, now: number): MapEntry {
  const { key, from } = mapKey(v);
  let e = m.get(key);
  if (e === undefined) {
    e = { initiator: from, pkts0: 0, pkts1: 0, bytes0: 0, bytes1: 0, lastSeen: now };
    m.set(key, e);
  } else {
    // LRU order, as the table keeps it: move to the end.
    m.delete(key);
    m.set(key, e);
  }
  if (from === e.initiator) {
    e.pkts0++;
    e.bytes0 += v.ipTotalLen;
  } else {
    e.pkts1++;
    e.bytes1 += v.ipTotalLen;
  }
  e.lastSeen = now;
  return e;
}

const BATCH = 100_000;

/** A forced full GC for heap measurements (cold: bench setup only). */
function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function lookupRows(n: number): BenchRow[] {
  const f = makeFlows(n, n);
  const v = baseView(f);
  const order = new Int32Array(BATCH);
  const dirs = new Uint8Array(BATCH);
  let s = 12345;
  for (let i = 0; i < BATCH; i++) {
    s = (Math.imul(s, 1103515245) + 12345) | 0;
    order[i] = (s >>> 1) % n;
    dirs[i] = (s >>> 7) & 1;
  }
  const label = n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`;
  const timeouts = { udpMs: 1e12 };

  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const m = new Map<string, MapEntry>();
  for (let i = 0; i < n; i++) {
    aim(v, f, i, 0);
    mapLookup(m, v, 0);
  }
  gc();
  const mapBytes = (process.memoryUsage().heapUsed - heap0) / n;
  let sink = 0;
  const mapRate = timedMedian(() => {
    for (let k = 0; k < BATCH; k++) {
      aim(v, f, order[k]!, dirs[k]!);
      sink += mapLookup(m, v, 1).pkts0;
    }
  }, BATCH);
  m.clear();

  const t = new FlowTable({ maxFlows: n, timeouts });
  for (let i = 0; i < n; i++) {
    aim(v, f, i, 0);
    t.lookup(v, 0);
  }
  if (t.size !== n) throw new Error(`flowtable bench: ${t.size} flows, expected ${n}`);
  const tableRate = timedMedian(() => {
    for (let k = 0; k < BATCH; k++) {
      aim(v, f, order[k]!, dirs[k]!);
      sink += t.lookup(v, 1) + t.dir;
    }
  }, BATCH);
  if (t.size !== n || sink === -1) throw new Error('flowtable bench: lookups created flows');
  const perFlow = t.memoryBytes / t.capacity;
  const suite = 'flowtable';
  return [
    { suite, name: `Map<string> lookup, ${label} flows`, opsPerSec: mapRate.opsPerSec, unit: 'pkt', note: `~${Math.round(mapBytes)} B/flow (heap delta)` },
    {
      suite,
      name: `FlowTable lookup, ${label} flows`,
      opsPerSec: tableRate.opsPerSec,
      unit: 'pkt',
      baseline: `Map<string> lookup, ${label} flows`,
      note: `${perFlow.toFixed(0)} B/flow preallocated (${(t.memoryBytes / 2 ** 20).toFixed(1)} MiB)`,
    },
  ];
}

/** New flows into a full table: every lookup creates one and evicts the least recently used. */
function churnRows(cap: number): BenchRow[] {
  const total = cap * 4;
  const f = makeFlows(total, 7);
  const v = baseView(f);
  let next = 0;
  const m = new Map<string, MapEntry>();
  // Every packet is a new flow here, so a FIFO ring of keys evicts exactly the LRU entry.
  // (Deleting `m.keys().next().value` instead is far slower in V8: iteration from the start
  // walks over the deleted slots until the table is rehashed.)
  const ring: string[] = new Array<string>(cap).fill('');
  let pos = 0;
  const mapRate = timedMedian(() => {
    for (let k = 0; k < BATCH; k++) {
      aim(v, f, next, 0);
      next = next + 1 === total ? 0 : next + 1;
      const { key } = mapKey(v);
      if (!m.has(key)) {
        if (m.size === cap) m.delete(ring[pos]!);
        ring[pos] = key;
        pos = pos + 1 === cap ? 0 : pos + 1;
      }
      mapLookup(m, v, 0);
    }
  }, BATCH);
  m.clear();
  let evicted = 0;
  const t = new FlowTable({ maxFlows: cap, timeouts: { udpMs: 1e12 }, onRemove: () => evicted++ });
  next = 0;
  const tableRate = timedMedian(() => {
    for (let k = 0; k < BATCH; k++) {
      aim(v, f, next, 0);
      next = next + 1 === total ? 0 : next + 1;
      t.lookup(v, 0);
    }
  }, BATCH);
  if (evicted === 0) throw new Error('flowtable churn bench: nothing was evicted');
  const label = `${cap / 1e3}k`;
  return [
    { suite: 'flowtable', name: `Map<string> new flow + evict oldest, ${label} cap`, opsPerSec: mapRate.opsPerSec, unit: 'flow' },
    { suite: 'flowtable', name: `FlowTable new flow + LRU evict, ${label} cap`, opsPerSec: tableRate.opsPerSec, unit: 'flow', baseline: `Map<string> new flow + evict oldest, ${label} cap` },
  ];
}

export async function run(): Promise<BenchRow[]> {
  return [...lookupRows(1_000), ...lookupRows(100_000), ...lookupRows(1_000_000), ...churnRows(100_000)];
}
