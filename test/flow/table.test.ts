/**
 * FlowTable unit tests on hand-built packets (RFC byte layouts from test/packet/build.ts):
 * keys and directions, collisions, LRU eviction, TCP close tracking, idle timeouts, the
 * removal contract, counters and limits.
 */
import { describe, expect, it } from 'vitest';
import { ColoError } from '../../src/errors.js';
import {
  STATE_ICMP,
  STATE_OTHER,
  STATE_TCP_CLOSED,
  STATE_TCP_CLOSING,
  STATE_TCP_EMBRYONIC,
  STATE_TCP_ESTABLISHED,
  STATE_UDP,
} from '../../src/flow/flow-state.js';
import { FlowTable, LOOKUP_FRAGMENT, LOOKUP_NOT_IP, LOOKUP_UNDECODED, type RemoveReason } from '../../src/flow/table.js';
import { BYTES_PER_FLOW, tableBytes } from '../../src/flow/table-options.js';
import { arp, eth, ip4, ipv4, mac, tcp, udp } from '../packet/build.js';
import { A4, A6, ACK, B4, B6, decoded, FIN, icmpPkt, rawIpPkt, RST, SYN, tcpPkt, udpPkt } from './table-helpers.js';

type Removal = { id: number; reason: RemoveReason; data: unknown };

function recording<T>(opts: ConstructorParameters<typeof FlowTable<T>>[0] = {}) {
  const removed: Removal[] = [];
  const table = new FlowTable<T>({ seed: 1234, ...opts, onRemove: (id, reason, data) => removed.push({ id, reason, data }) });
  return { table, removed };
}

describe('keys and directions', () => {
  it('TCP handshake: both directions find one flow, dir 0 from the SYN sender', () => {
    const t = new FlowTable({ seed: 1 });
    const syn = tcpPkt({ src: A4, dst: B4, sport: 40000, dport: 80, flags: SYN, seq: 100 });
    const synack = tcpPkt({ src: B4, dst: A4, sport: 80, dport: 40000, flags: SYN | ACK, seq: 900, ack: 101 });
    const ack = tcpPkt({ src: A4, dst: B4, sport: 40000, dport: 80, flags: ACK, seq: 101, ack: 901 });
    const id = t.lookup(syn, 0);
    expect(id).toBeGreaterThanOrEqual(0);
    expect([t.created, t.dir]).toEqual([true, 0]);
    expect(t.lookup(synack, 1)).toBe(id);
    expect([t.created, t.dir]).toEqual([false, 1]);
    expect(t.lookup(ack, 2)).toBe(id);
    expect(t.dir).toBe(0);
    expect(t.size).toBe(1);
    expect(t.endpoints(id)).toEqual({ initiator: '192.0.2.1:40000', responder: '198.51.100.2:80' });
    expect(t.state(id)).toBe(STATE_TCP_ESTABLISHED);
  });

  it('a SYN-ACK seen first makes its receiver the initiator', () => {
    const t = new FlowTable({ seed: 1 });
    const synack = tcpPkt({ src: B4, dst: A4, sport: 80, dport: 40000, flags: SYN | ACK });
    const id = t.lookup(synack, 0);
    expect([t.created, t.dir]).toEqual([true, 1]);
    expect(t.endpoints(id)).toEqual({ initiator: '192.0.2.1:40000', responder: '198.51.100.2:80' });
    expect(t.lookup(tcpPkt({ src: A4, dst: B4, sport: 40000, dport: 80, flags: ACK }), 1)).toBe(id);
    expect(t.dir).toBe(0);
  });

  it('the first packet sender is the initiator, whichever endpoint sorts first', () => {
    const t = new FlowTable({ seed: 1 });
    // B sorts after A: start from the "hi" side so normalisation and direction are both exercised.
    const id = t.lookup(udpPkt({ src: B4, dst: A4, sport: 53, dport: 5353 }), 0);
    expect(t.dir).toBe(0);
    expect(t.endpoints(id)).toEqual({ initiator: '198.51.100.2:53', responder: '192.0.2.1:5353' });
    expect(t.lookup(udpPkt({ src: A4, dst: B4, sport: 5353, dport: 53 }), 1)).toBe(id);
    expect(t.dir).toBe(1);
  });

  it('same addresses with swapped ports are another flow', () => {
    const t = new FlowTable({ seed: 1 });
    const a = t.lookup(udpPkt({ src: A4, dst: B4, sport: 1000, dport: 2000 }), 0);
    const b = t.lookup(udpPkt({ src: A4, dst: B4, sport: 2000, dport: 1000 }), 0);
    expect(b).not.toBe(a);
    expect(t.lookup(udpPkt({ src: B4, dst: A4, sport: 1000, dport: 2000 }), 0)).toBe(b);
    expect(t.dir).toBe(1);
  });

  it('IPv4, IPv6, protocol and VLAN ids keep flows apart; VID 0 (priority tag) is untagged', () => {
    const t = new FlowTable({ seed: 1 });
    const base = { sport: 1111, dport: 2222 };
    const ids = [
      t.lookup(udpPkt({ src: A4, dst: B4, ...base }), 0),
      t.lookup(udpPkt({ src: A6, dst: B6, ...base }), 0),
      t.lookup(tcpPkt({ src: A4, dst: B4, ...base, flags: ACK }), 0),
      t.lookup(udpPkt({ src: A4, dst: B4, ...base, vlans: [10] }), 0),
      t.lookup(udpPkt({ src: A4, dst: B4, ...base, vlans: [11] }), 0),
      t.lookup(udpPkt({ src: A4, dst: B4, ...base, vlans: [10, 20] }), 0),
      t.lookup(udpPkt({ src: A4, dst: B4, ...base, vlans: [10, 21] }), 0),
      // IPv4-mapped IPv6 text of A4/B4: must not collide with the IPv4 flow.
      t.lookup(udpPkt({ src: '0:0:0:0:0:ffff:c000:201', dst: '0:0:0:0:0:ffff:c633:6402', ...base }), 0),
    ];
    expect(new Set(ids).size).toBe(ids.length);
    expect(t.lookup(udpPkt({ src: B4, dst: A4, sport: 2222, dport: 1111, vlans: [10, 20] }), 1)).toBe(ids[5]);
    expect(t.lookup(udpPkt({ src: A4, dst: B4, ...base, vlans: [0] }), 1)).toBe(ids[0]);
    expect(t.info(ids[5]!)).toMatchObject({ vlan: 10, innerVlan: 20, ipVersion: 4, proto: 17 });
    expect(t.endpoints(ids[1]!)).toEqual({ initiator: '[2001:db8::a]:1111', responder: '[2001:db8::b]:2222' });
  });

  it('ICMP echo: request and reply share a flow per echo id; other ICMP is per address pair', () => {
    const t = new FlowTable({ seed: 1 });
    const req = t.lookup(icmpPkt({ src: A4, dst: B4, type: 8, id: 77, seq: 1 }), 0);
    expect(t.lookup(icmpPkt({ src: B4, dst: A4, type: 0, id: 77, seq: 1 }), 0)).toBe(req);
    expect(t.dir).toBe(1);
    const other = t.lookup(icmpPkt({ src: A4, dst: B4, type: 8, id: 78, seq: 1 }), 0);
    expect(other).not.toBe(req);
    const unreach = t.lookup(icmpPkt({ src: B4, dst: A4, type: 3, code: 3 }), 0);
    expect(new Set([req, other, unreach]).size).toBe(3);
    expect(t.lookup(icmpPkt({ src: A4, dst: B4, type: 11 }), 0)).toBe(unreach);
    // ICMPv6 echo (128/129).
    const r6 = t.lookup(icmpPkt({ src: A6, dst: B6, type: 128, id: 5 }), 0);
    expect(t.lookup(icmpPkt({ src: B6, dst: A6, type: 129, id: 5 }), 0)).toBe(r6);
    expect(t.state(r6)).toBe(STATE_ICMP);
  });

  it('SCTP ports come from its common header; other protocols are per address pair', () => {
    const t = new FlowTable({ seed: 1 });
    const sctp = (s: string, d: string, sp: number, dp: number) => rawIpPkt({ src: s, dst: d, proto: 132, payload: [sp >> 8, sp & 255, dp >> 8, dp & 255, 0, 0, 0, 0, 0, 0, 0, 0] });
    const a = t.lookup(sctp(A4, B4, 3868, 9000), 0);
    expect(t.lookup(sctp(B4, A4, 9000, 3868), 0)).toBe(a);
    expect(t.dir).toBe(1);
    expect(t.lookup(sctp(A4, B4, 3868, 9001), 0)).not.toBe(a);
    expect(t.endpoints(a)).toEqual({ initiator: '192.0.2.1:3868', responder: '198.51.100.2:9000' });
    const gre = t.lookup(rawIpPkt({ src: A4, dst: B4, proto: 47, payload: [1, 2, 3, 4] }), 0);
    expect(t.lookup(rawIpPkt({ src: B4, dst: A4, proto: 47, payload: [9, 9, 9, 9] }), 0)).toBe(gre);
    expect(t.state(gre)).toBe(STATE_OTHER);
  });

  it('not flows: ARP, IP fragments, undecodable transport headers', () => {
    const t = new FlowTable({ seed: 1 });
    const arpV = decoded(eth(0x0806, arp(1, mac('02:00:00:00:00:0a'), ip4(A4), [0, 0, 0, 0, 0, 0], ip4(B4))));
    expect(t.lookup(arpV, 0)).toBe(-1);
    expect(t.miss).toBe(LOOKUP_NOT_IP);
    const firstFrag = decoded(eth(0x0800, ipv4({ proto: 17, flags: 1, id: 9 }, udp(1, 2, new Array(32).fill(0), 100))));
    expect(t.lookup(firstFrag, 0)).toBe(-1);
    expect(t.miss).toBe(LOOKUP_FRAGMENT);
    const laterFrag = decoded(eth(0x0800, ipv4({ proto: 17, fragUnits: 5, id: 9 }, new Array(16).fill(0))));
    expect(t.lookup(laterFrag, 0)).toBe(-1);
    expect(t.miss).toBe(LOOKUP_FRAGMENT);
    const cutTcp = decoded(eth(0x0800, ipv4({ proto: 6 }, tcp({ sport: 1, dport: 2, seq: 0, ack: 0, flags: ACK, window: 0 }, []).slice(0, 12))), true);
    expect(t.lookup(cutTcp, 0)).toBe(-1);
    expect(t.miss).toBe(LOOKUP_UNDECODED);
    expect(t.size).toBe(0);
    expect(t.stats().misses).toEqual({ notIp: 1, fragment: 2, undecoded: 1 });
    expect(t.lookup(udpPkt({ src: A4, dst: B4, sport: 1, dport: 2 }), 0)).toBeGreaterThanOrEqual(0);
    expect(t.miss).toBe(0);
  });

  it('counts packets and IP bytes per direction', () => {
    const t = new FlowTable({ seed: 1 });
    const out = udpPkt({ src: A4, dst: B4, sport: 1, dport: 2, payload: new Array(100).fill(1) });
    const back = udpPkt({ src: B4, dst: A4, sport: 2, dport: 1, payload: new Array(10).fill(1) });
    const id = t.lookup(out, 0);
    t.lookup(out, 1);
    t.lookup(back, 2);
    // 20 (IPv4) + 8 (UDP) + payload, as RFC 791/768 lay them out.
    expect([t.packets(id, 0), t.bytes(id, 0), t.packets(id, 1), t.bytes(id, 1)]).toEqual([2, 2 * 128, 1, 38]);
    expect(t.info(id)).toMatchObject({ packets: [2, 1], bytes: [256, 38], createdMs: 0, lastSeenMs: 2, state: 'UDP' });
  });
});

describe('hash collisions', () => {
  it('a tiny table with a fixed seed: every flow keeps its own id and direction', () => {
    const n = 64;
    const t = new FlowTable({ seed: 7, maxFlows: n });
    const ids: number[] = [];
    for (let i = 0; i < n; i++) ids.push(t.lookup(udpPkt({ src: A4, dst: B4, sport: 1000 + i, dport: 53 }), 0));
    expect(new Set(ids).size).toBe(n);
    const st = t.stats();
    // 64 keys in 128 buckets: chains of 2+ are all but certain, so the chain walk is exercised.
    expect(st.longestChain).toBeGreaterThan(1);
    for (let i = 0; i < n; i++) {
      expect(t.lookup(udpPkt({ src: B4, dst: A4, sport: 53, dport: 1000 + i }), 1)).toBe(ids[i]);
      expect(t.dir).toBe(1);
    }
    expect(st.created).toBe(n);
  });

  it('the seed changes which flows share a bucket chain', () => {
    // Same 48 keys, 128 buckets: the chain-length profile depends on the seed.
    const profile = (seed: number) => {
      const t = new FlowTable({ seed, maxFlows: 64 });
      for (let i = 0; i < 48; i++) t.lookup(udpPkt({ src: A4, dst: B4, sport: 1000 + i, dport: 53 }), 0);
      return t.stats().longestChain;
    };
    const seen = new Set<number>();
    for (let seed = 1; seed <= 40 && seen.size < 2; seed++) seen.add(profile(seed));
    expect(seen.size).toBe(2);
  });
});

describe('LRU eviction when full', () => {
  it('evicts the least recently used flow, one at a time, telling the owner first', () => {
    const { table: t, removed } = recording<string>({ maxFlows: 3 });
    const p = (port: number) => udpPkt({ src: A4, dst: B4, sport: port, dport: 9 });
    const a = t.lookup(p(1), 0);
    t.data[a] = 'A';
    const b = t.lookup(p(2), 1);
    t.data[b] = 'B';
    const c = t.lookup(p(3), 2);
    t.data[c] = 'C';
    t.lookup(p(1), 3); // A is now the most recent
    const d = t.lookup(p(4), 4);
    expect(removed).toEqual([{ id: b, reason: 'evicted', data: 'B' }]);
    expect(d).toBe(b); // the freed id is reused
    expect(t.data[d]).toBeUndefined();
    t.lookup(p(5), 5);
    expect(removed[1]).toEqual({ id: c, reason: 'evicted', data: 'C' });
    expect(t.size).toBe(3);
    expect(t.lookup(p(1), 6)).toBe(a);
    expect(t.created).toBe(false);
    expect(t.stats().removed.evicted).toBe(2);
  });

  it('eviction order spans states: a quiet TCP flow goes before a busy UDP one', () => {
    const { table: t, removed } = recording({ maxFlows: 2 });
    const tcpId = t.lookup(tcpPkt({ src: A4, dst: B4, sport: 1, dport: 2, flags: ACK }), 0);
    const udpId = t.lookup(udpPkt({ src: A4, dst: B4, sport: 1, dport: 2 }), 1);
    t.lookup(udpPkt({ src: A4, dst: B4, sport: 1, dport: 2 }), 2);
    t.lookup(icmpPkt({ src: A4, dst: B4, type: 8, id: 1 }), 3);
    expect(removed.map((r) => r.id)).toEqual([tcpId]);
    expect(t.isLive(udpId)).toBe(true);
  });

  it('when full, an expired flow is reclaimed instead of evicting a live one', () => {
    const { table: t, removed } = recording({ maxFlows: 2 });
    const icmpId = t.lookup(icmpPkt({ src: A4, dst: B4, type: 8, id: 1 }), 0); // ICMP: 10 s
    const tcpId = t.lookup(tcpPkt({ src: A4, dst: B4, sport: 1, dport: 2, flags: ACK }), 0);
    t.lookup(udpPkt({ src: A4, dst: B4, sport: 1, dport: 2 }), 10_000);
    expect(removed).toEqual([{ id: icmpId, reason: 'idle', data: undefined }]);
    expect(t.isLive(tcpId)).toBe(true);
  });
});

describe('TCP close tracking', () => {
  const C = { src: A4, dst: B4, sport: 40000, dport: 80 };
  const S = { src: B4, dst: A4, sport: 80, dport: 40000 };

  function established<T>(t: FlowTable<T>, now = 0): number {
    const id = t.lookup(tcpPkt({ ...C, flags: SYN, seq: 1000 }), now);
    t.lookup(tcpPkt({ ...S, flags: SYN | ACK, seq: 5000, ack: 1001 }), now);
    expect(t.state(id)).toBe(STATE_TCP_EMBRYONIC);
    t.lookup(tcpPkt({ ...C, flags: ACK, seq: 1001, ack: 5001 }), now);
    expect(t.state(id)).toBe(STATE_TCP_ESTABLISHED);
    return id;
  }

  it('FIN, FIN+ACK, ACK closes; the entry lingers, absorbs a retransmitted FIN, then goes as "closed"', () => {
    const { table: t, removed } = recording({ timeouts: { tcpCloseLingerMs: 1000 } });
    const id = established(t);
    t.lookup(tcpPkt({ ...C, flags: FIN | ACK, seq: 1001, ack: 5001, payload: [1, 2, 3] }), 10);
    expect(t.state(id)).toBe(STATE_TCP_CLOSING);
    // An ACK that does not cover the FIN (it acks the data only) leaves it open.
    t.lookup(tcpPkt({ ...S, flags: ACK, seq: 5001, ack: 1004 }), 11);
    expect(t.state(id)).toBe(STATE_TCP_CLOSING);
    t.lookup(tcpPkt({ ...S, flags: FIN | ACK, seq: 5001, ack: 1005 }), 12);
    expect(t.state(id)).toBe(STATE_TCP_CLOSING);
    t.lookup(tcpPkt({ ...C, flags: ACK, seq: 1005, ack: 5002 }), 13);
    expect(t.state(id)).toBe(STATE_TCP_CLOSED);
    t.lookup(tcpPkt({ ...S, flags: FIN | ACK, seq: 5001, ack: 1005 }), 500); // retransmitted FIN
    expect(t.lookup(tcpPkt({ ...C, flags: ACK, seq: 1005, ack: 5002 }), 600)).toBe(id);
    expect(t.created).toBe(false);
    expect(t.expire(1599)).toBe(0);
    expect(t.expire(1600)).toBe(1);
    expect(removed).toEqual([{ id, reason: 'closed', data: undefined }]);
  });

  it('simultaneous close closes too; FIN sequence numbers wrap modulo 2^32', () => {
    const { table: t } = recording();
    const id = t.lookup(tcpPkt({ ...C, flags: ACK, seq: 0xfffffffe, ack: 7 }), 0);
    t.lookup(tcpPkt({ ...S, flags: ACK, seq: 7, ack: 0xfffffffe }), 0);
    t.lookup(tcpPkt({ ...C, flags: FIN | ACK, seq: 0xfffffffe, ack: 7, payload: [1] }), 1); // FIN at 0xffffffff
    t.lookup(tcpPkt({ ...S, flags: FIN | ACK, seq: 7, ack: 0xfffffffe }), 1); // crosses: does not ack the FIN yet
    expect(t.state(id)).toBe(STATE_TCP_CLOSING);
    t.lookup(tcpPkt({ ...C, flags: ACK, seq: 0, ack: 8 }), 2);
    expect(t.state(id)).toBe(STATE_TCP_CLOSING);
    t.lookup(tcpPkt({ ...S, flags: ACK, seq: 8, ack: 0 }), 2); // acks 0xffffffff + 1 = 0 (wrapped)
    expect(t.state(id)).toBe(STATE_TCP_CLOSED);
  });

  it('RST closes at once and is reported as "rst" after the linger', () => {
    const { table: t, removed } = recording({ timeouts: { tcpCloseLingerMs: 50 } });
    const id = established(t);
    t.lookup(tcpPkt({ ...S, flags: RST, seq: 5001 }), 100);
    expect(t.state(id)).toBe(STATE_TCP_CLOSED);
    t.expire(149);
    expect(removed).toEqual([]);
    t.expire(150);
    expect(removed).toEqual([{ id, reason: 'rst', data: undefined }]);
  });

  it('a RST after a clean FIN close keeps the reason "closed"', () => {
    const { table: t, removed } = recording({ timeouts: { tcpCloseLingerMs: 50 } });
    const id = established(t);
    t.lookup(tcpPkt({ ...C, flags: FIN | ACK, seq: 1001, ack: 5001 }), 1);
    t.lookup(tcpPkt({ ...S, flags: FIN | ACK, seq: 5001, ack: 1002 }), 1);
    t.lookup(tcpPkt({ ...C, flags: ACK, seq: 1002, ack: 5002 }), 1);
    t.lookup(tcpPkt({ ...S, flags: RST, seq: 5002 }), 2);
    t.expire(1000);
    expect(removed).toEqual([{ id, reason: 'closed', data: undefined }]);
  });

  it('a new SYN on a closed flow starts a new flow (port reuse); the old one is reported first', () => {
    const { table: t, removed } = recording<string>();
    const id = established(t);
    t.data[id] = 'old';
    const serial = t.serial(id);
    t.lookup(tcpPkt({ ...C, flags: RST, seq: 1001 }), 5);
    const again = t.lookup(tcpPkt({ ...C, flags: SYN, seq: 77 }), 6);
    expect(t.created).toBe(true);
    expect(t.dir).toBe(0);
    expect(removed).toEqual([{ id, reason: 'rst', data: 'old' }]);
    expect(t.serial(again)).toBeGreaterThan(serial);
    expect(t.packets(again, 0)).toBe(1);
    expect(t.state(again)).toBe(STATE_TCP_EMBRYONIC);
    expect(t.stats().portReuse).toBe(1);
  });

  it('a SYN on a live (not closed) flow stays in it', () => {
    const { table: t, removed } = recording();
    const id = established(t);
    expect(t.lookup(tcpPkt({ ...C, flags: SYN, seq: 1000 }), 1)).toBe(id);
    expect(removed).toEqual([]);
  });
});

describe('idle timeouts', () => {
  it('per protocol and state, with the documented defaults', () => {
    const { table: t, removed } = recording();
    const ids = {
      embryonic: t.lookup(tcpPkt({ src: A4, dst: B4, sport: 1, dport: 2, flags: SYN }), 0),
      established: t.lookup(tcpPkt({ src: A4, dst: B4, sport: 3, dport: 4, flags: ACK }), 0),
      closing: t.lookup(tcpPkt({ src: A4, dst: B4, sport: 5, dport: 6, flags: FIN | ACK }), 0),
      udp: t.lookup(udpPkt({ src: A4, dst: B4, sport: 1, dport: 2 }), 0),
      icmp: t.lookup(icmpPkt({ src: A4, dst: B4, type: 8, id: 1 }), 0),
      other: t.lookup(rawIpPkt({ src: A4, dst: B4, proto: 47, payload: [0, 0, 0, 0] }), 0),
    };
    expect(t.state(ids.udp)).toBe(STATE_UDP);
    const goneAt = (ms: number) => {
      t.expire(ms);
      return removed.map((r) => Object.entries(ids).find(([, id]) => id === r.id)![0]).sort();
    };
    expect(goneAt(9_999)).toEqual([]);
    expect(goneAt(10_000)).toEqual(['icmp']);
    expect(goneAt(29_999)).toEqual(['icmp']);
    expect(goneAt(30_000)).toEqual(['embryonic', 'icmp', 'other', 'udp']);
    expect(goneAt(119_999)).toEqual(['embryonic', 'icmp', 'other', 'udp']);
    expect(goneAt(120_000)).toEqual(['closing', 'embryonic', 'icmp', 'other', 'udp']);
    expect(goneAt(299_999)).toHaveLength(5);
    expect(goneAt(300_000)).toHaveLength(6);
    expect(new Set(removed.map((r) => r.reason))).toEqual(new Set(['idle']));
    expect(t.size).toBe(0);
    expect(t.stats().removed.idle).toBe(6);
  });

  it('traffic keeps a flow alive; configured timeouts apply', () => {
    const { table: t, removed } = recording({ timeouts: { udpMs: 100 } });
    const p = udpPkt({ src: A4, dst: B4, sport: 1, dport: 2 });
    const id = t.lookup(p, 0);
    t.lookup(p, 90);
    t.expire(150);
    expect(t.isLive(id)).toBe(true);
    t.expire(190);
    expect(removed).toEqual([{ id, reason: 'idle', data: undefined }]);
  });

  it('a lookup that hits an expired entry retires it and starts a new flow (no expire() needed)', () => {
    const { table: t, removed } = recording<number>({ timeouts: { udpMs: 100 } });
    const id = t.lookup(udpPkt({ src: A4, dst: B4, sport: 1, dport: 2 }), 0);
    t.data[id] = 42;
    const again = t.lookup(udpPkt({ src: B4, dst: A4, sport: 2, dport: 1 }), 100);
    expect(t.created).toBe(true);
    expect(t.dir).toBe(0); // the new flow's first sender is its initiator
    expect(removed).toEqual([{ id, reason: 'idle', data: 42 }]);
    expect(t.data[again]).toBeUndefined();
    expect(t.packets(again, 0) + t.packets(again, 1)).toBe(1);
  });

  it('expire does bounded work per call and finishes the backlog over later calls', () => {
    const { table: t, removed } = recording({ timeouts: { udpMs: 10 } });
    for (let i = 0; i < 100; i++) t.lookup(udpPkt({ src: A4, dst: B4, sport: i + 1, dport: 2 }), i);
    expect(t.expire(1000, 30)).toBe(30);
    expect(t.size).toBe(70);
    // Oldest first.
    expect(removed.slice(0, 3).map((r) => t.isLive(r.id))).toEqual([false, false, false]);
    expect(t.expire(1000, 30)).toBe(30);
    expect(t.expire(1000)).toBe(40);
    expect(t.expire(1000)).toBe(0);
    expect(t.size).toBe(0);
  });
});

describe('removal contract and limits', () => {
  it('onRemove runs before the entry is freed: the flow is still live and readable inside it', () => {
    const seen: Array<[boolean, string]> = [];
    const t: FlowTable<string> = new FlowTable<string>({
      seed: 1,
      maxFlows: 1,
      onRemove: (id, reason, data) => seen.push([t.isLive(id), `${reason}:${data}:${t.endpoints(id).initiator}`]),
    });
    const a = t.lookup(udpPkt({ src: A4, dst: B4, sport: 1, dport: 2 }), 0);
    t.data[a] = 'first';
    t.lookup(udpPkt({ src: A4, dst: B4, sport: 3, dport: 4 }), 1);
    expect(seen).toEqual([[true, 'evicted:first:192.0.2.1:1']]);
  });

  it('calling back into the table from onRemove is refused with ERR_FLOW_REENTRANT', () => {
    const p = udpPkt({ src: A4, dst: B4, sport: 1, dport: 2 });
    const t: FlowTable = new FlowTable({ seed: 1, maxFlows: 1, onRemove: () => t.lookup(p, 0) });
    t.lookup(p, 0);
    let err: unknown;
    try {
      t.lookup(udpPkt({ src: A4, dst: B4, sport: 5, dport: 6 }), 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ColoError);
    expect((err as ColoError).code).toBe('ERR_FLOW_REENTRANT');
    // The removal still completed: the table is consistent and usable.
    expect(t.size).toBe(0);
  });

  it('remove() and clear() report "cleared"', () => {
    const { table: t, removed } = recording<number>();
    const a = t.lookup(udpPkt({ src: A4, dst: B4, sport: 1, dport: 2 }), 0);
    const b = t.lookup(udpPkt({ src: A4, dst: B4, sport: 3, dport: 4 }), 0);
    t.data[b] = 2;
    t.remove(a);
    expect(() => t.remove(a)).toThrow(ColoError);
    t.clear();
    expect(removed).toEqual([
      { id: a, reason: 'cleared', data: undefined },
      { id: b, reason: 'cleared', data: 2 },
    ]);
    expect(t.size).toBe(0);
    expect(t.stats().removed.cleared).toBe(2);
  });

  it('counters and gauges add up', () => {
    const { table: t } = recording({ maxFlows: 4 });
    for (let i = 0; i < 10; i++) t.lookup(udpPkt({ src: A4, dst: B4, sport: i % 6, dport: 1 }), i);
    const s = t.stats();
    expect(s.lookups).toBe(10);
    expect(s.created + s.hits).toBe(10);
    expect(s.created - (s.removed.evicted + s.removed.idle)).toBe(s.size);
    expect(s.highWater).toBe(4);
    expect(s.byState.UDP).toBe(s.size);
  });

  it('memory: ~165 bytes per flow, the budget lowers the capacity, bad limits are typed errors', () => {
    // The documented per-flow layout (index line, metadata line, FIN seqs, serial, live,
    // free stack, data pointer), plus 8 bytes of buckets at 2^20 flows.
    expect(BYTES_PER_FLOW).toBe(16 * 4 + 8 * 8 + 2 * 4 + 8 + 1 + 4 + 8);
    expect(tableBytes(1 << 20) / (1 << 20)).toBe(BYTES_PER_FLOW + 8);
    const t = new FlowTable({ seed: 1, maxFlows: 1000 });
    expect(t.memoryBytes).toBe(tableBytes(1000));
    const small = new FlowTable({ seed: 1, maxFlows: 1_000_000, memoryBudgetBytes: 1_000_000 });
    expect(small.capacity).toBeLessThan(1_000_000 / BYTES_PER_FLOW);
    expect(small.capacity).toBeGreaterThan(1_000_000 / (BYTES_PER_FLOW + 16) - 1);
    expect(small.memoryBytes).toBeLessThanOrEqual(1_000_000);
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as ColoError).code;
      }
      return 'no error';
    };
    expect(codeOf(() => new FlowTable({ maxFlows: 0 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => new FlowTable({ maxFlows: 1.5 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => new FlowTable({ memoryBudgetBytes: 10 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => new FlowTable({ timeouts: { udpMs: 0 } }))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('the default table holds 2^20 flows within the default 256 MiB budget', () => {
    expect(tableBytes(1 << 20)).toBeLessThanOrEqual(256 * 1024 * 1024);
    expect(new FlowTable({ maxFlows: 1 << 20 }).capacity).toBe(1 << 20);
  });
});
