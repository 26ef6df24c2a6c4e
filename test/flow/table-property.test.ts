/**
 * Property test: random packet sequences through the FlowTable and through a deliberately
 * simple model (a Map keyed by a formatted, direction-free string, LRU by insertion order,
 * idle timeouts by scanning everything) must agree on every step: same flow ⇔ same id,
 * direction, created flag, per-direction packet and byte counts, and the removals reported
 * (id, reason, owner data).
 *
 * TCP packets here are plain ACKs (established flows); close tracking has its own unit tests.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlowTable, type RemoveReason } from '../../src/flow/table.js';
import type { PacketView } from '../../src/packet/view.js';
import { ACK, icmpPkt, rawIpPkt, tcpPkt, udpPkt } from './table-helpers.js';

const V4 = ['10.0.0.1', '10.0.0.2', '192.168.7.9'];
const V6 = ['fe80:0:0:0:0:0:0:1', '2001:db8:0:0:0:0:0:ff'];
const PORTS = [1, 2, 80];
const PROTOS = ['udp', 'tcp', 'icmp', 'gre'] as const;
type Proto = (typeof PROTOS)[number];

interface Pkt {
  proto: Proto;
  v6: boolean;
  src: number;
  dst: number;
  sport: number;
  dport: number;
  vlan: number;
  len: number;
  dt: number;
}

const pktArb: fc.Arbitrary<Pkt> = fc.record({
  proto: fc.constantFrom(...PROTOS),
  v6: fc.boolean(),
  src: fc.nat(2),
  dst: fc.nat(2),
  sport: fc.constantFrom(...PORTS),
  dport: fc.constantFrom(...PORTS),
  vlan: fc.constantFrom(0, 0, 10),
  len: fc.nat(40),
  dt: fc.nat(15),
});

interface Cfg {
  eager: boolean;
  cap: number;
  timeouts: { udpMs: number; tcpEstablishedMs: number; icmpMs: number; otherMs: number };
}

const SMALL = { udpMs: 30, tcpEstablishedMs: 100, icmpMs: 10, otherMs: 20 };
const HUGE = { udpMs: 1e12, tcpEstablishedMs: 1e12, icmpMs: 1e12, otherMs: 1e12 };
const CONFIGS: Record<string, Cfg> = {
  'expire() before every lookup, small table (LRU eviction + idle expiry)': { eager: true, cap: 4, timeouts: SMALL },
  'lazy expiry only (lookups hit expired entries), roomy table': { eager: false, cap: 1000, timeouts: SMALL },
  'no expiry, small table (pure LRU)': { eager: false, cap: 4, timeouts: HUGE },
};

function addr(p: Pkt, i: number): string {
  const list = p.v6 ? V6 : V4;
  return list[i % list.length]!;
}

function build(p: Pkt): PacketView {
  const base = { src: addr(p, p.src), dst: addr(p, p.dst), vlans: p.vlan ? [p.vlan] : [], payload: new Array<number>(p.len).fill(7) };
  switch (p.proto) {
    case 'udp':
      return udpPkt({ ...base, sport: p.sport, dport: p.dport });
    case 'tcp':
      return tcpPkt({ ...base, sport: p.sport, dport: p.dport, flags: ACK });
    case 'icmp':
      return icmpPkt({ ...base, type: p.v6 ? 128 : 8, id: p.sport });
    case 'gre':
      return rawIpPkt({ ...base, proto: 47 });
  }
}

/** The model's view of a packet: direction-free key and the sender endpoint. */
function modelKey(p: Pkt): { key: string; from: string } {
  let sp = p.sport;
  let dp = p.dport;
  if (p.proto === 'icmp') dp = sp; // echo: the id on both sides
  if (p.proto === 'gre') sp = dp = 0;
  const a = `${addr(p, p.src)}/${sp}`;
  const b = `${addr(p, p.dst)}/${dp}`;
  const pair = a < b ? `${a}|${b}` : `${b}|${a}`;
  return { key: `${p.v6 ? 6 : 4}|${p.proto}|${p.vlan}|${pair}`, from: a };
}

interface MFlow {
  serial: number;
  id: number;
  initiator: string;
  lastSeen: number;
  pkts: [number, number];
  bytes: [number, number];
  proto: Proto;
}

type Removal = { id: number; reason: RemoveReason; data: unknown };

function timeoutOf(cfg: Cfg, proto: Proto): number {
  return proto === 'udp' ? cfg.timeouts.udpMs : proto === 'tcp' ? cfg.timeouts.tcpEstablishedMs : proto === 'icmp' ? cfg.timeouts.icmpMs : cfg.timeouts.otherMs;
}

function run(cfg: Cfg, pkts: Pkt[]): void {
  const events: Removal[] = [];
  const table = new FlowTable<number>({ seed: 99, maxFlows: cfg.cap, timeouts: cfg.timeouts, onRemove: (id, reason, data) => events.push({ id, reason, data }) });
  // Map iteration order = LRU order: a touched flow is deleted and re-inserted.
  const model = new Map<string, MFlow>();
  let serial = 0;
  let now = 0;
  const sortById = (r: Removal[]) => [...r].sort((x, y) => x.id - y.id);
  for (const p of pkts) {
    now += p.dt;
    const expected: Removal[] = [];
    const drop = (k: string, reason: RemoveReason) => {
      const f = model.get(k)!;
      expected.push({ id: f.id, reason, data: f.serial });
      model.delete(k);
    };
    if (cfg.eager) {
      for (const [k, f] of [...model]) if (now - f.lastSeen >= timeoutOf(cfg, f.proto)) drop(k, 'idle');
      table.expire(now, Infinity);
    }
    const v = build(p);
    const { key, from } = modelKey(p);
    let f = model.get(key);
    if (f && now - f.lastSeen >= timeoutOf(cfg, f.proto)) {
      drop(key, 'idle');
      f = undefined;
    }
    const created = f === undefined;
    if (!f) {
      if (model.size === cfg.cap) drop(model.keys().next().value!, 'evicted');
      f = { serial: serial++, id: -1, initiator: from, lastSeen: now, pkts: [0, 0], bytes: [0, 0], proto: p.proto };
    } else {
      model.delete(key);
    }
    model.set(key, f);
    const dir = from === f.initiator ? 0 : 1;
    f.pkts[dir]++;
    f.bytes[dir] += v.ipTotalLen;
    f.lastSeen = now;

    const id = table.lookup(v, now);
    expect(sortById(events)).toEqual(sortById(expected));
    events.length = 0;
    expect(table.created).toBe(created);
    if (created) {
      f.id = id;
      table.data[id] = f.serial;
    } else {
      expect(id).toBe(f.id);
    }
    expect(table.dir).toBe(dir);
    expect([table.packets(id, 0), table.packets(id, 1)]).toEqual(f.pkts);
    expect([table.bytes(id, 0), table.bytes(id, 1)]).toEqual(f.bytes);
    expect(table.size).toBe(model.size);
    // No two live flows share an id.
    expect(new Set([...model.values()].map((m) => m.id)).size).toBe(model.size);
  }
}

describe('FlowTable agrees with a Map-based model', () => {
  for (const [name, cfg] of Object.entries(CONFIGS)) {
    it(name, () => {
      fc.assert(
        fc.property(fc.array(pktArb, { minLength: 1, maxLength: 80 }), (pkts) => run(cfg, pkts)),
        { numRuns: 150, seed: 20261127 },
      );
    });
  }
});
