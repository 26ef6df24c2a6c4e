/**
 * Datagram comparison: FIFO pairing per flow direction (UDP, ICMP, ICMPv6 / NDP, other IP
 * protocols, ARP), IP header fields ignored, fragments compared as whole datagrams while the
 * original fragment frames are what is released. Oracles: the constructed frames.
 */
import { describe, expect, it } from 'vitest';
import { arpFrame, pingFrame, rawIpFrame, udpFragments, udpFrame, type Host } from './frames.js';
import { Harness } from './harness.js';

const G: Host = { ip: '10.0.0.2', port: 53 };
const C: Host = { ip: '10.0.0.1', port: 33333 };
const UDP_FLOW = '10.0.0.2:53-10.0.0.1:33333/UDP';

describe('UDP FIFO pairing', () => {
  it("a burst of two different datagrams before the first secondary one is not a mismatch (QEMU's bug B2)", () => {
    const h = new Harness();
    const a = h.p(udpFrame(G, C, [1, 2, 3], { ipId: 1 }));
    const b = h.p(udpFrame(G, C, [4, 5, 6, 7], { ipId: 2 }));
    expect(h.released).toEqual([]);
    h.s(udpFrame(G, C, [1, 2, 3], { ipId: 500, ttl: 17 }));
    expect(h.releasedIndices()).toEqual([a]);
    h.s(udpFrame(G, C, [4, 5, 6, 7], { ipId: 501, ttl: 17 }));
    expect(h.releasedIndices()).toEqual([a, b]);
    expect(h.records).toEqual([]);
    h.finish();
  });

  it('secondary first, then primary: paired in arrival order', () => {
    const h = new Harness();
    h.s(udpFrame(G, C, [9]));
    h.s(udpFrame(G, C, [8]));
    const x = h.p(udpFrame(G, C, [9]));
    const y = h.p(udpFrame(G, C, [8]));
    expect(h.releasedIndices()).toEqual([x, y]);
    expect(h.records).toEqual([]);
    h.finish();
  });

  it('a different datagram: one record (datagram index), held until the checkpoint; later pairs stay aligned', () => {
    const h = new Harness();
    const a = h.p(udpFrame(G, C, [1, 1]));
    const b = h.p(udpFrame(G, C, [2, 2]));
    const c = h.p(udpFrame(G, C, [3, 3]));
    h.s(udpFrame(G, C, [1, 1]));
    h.s(udpFrame(G, C, [2, 7]));
    h.s(udpFrame(G, C, [3, 3]));
    expect(h.releasedIndices()).toEqual([a]);
    expect(h.records.map((r) => [r.cause, r.flow, r.offset, r.offsetUnit])).toEqual([['payload', UDP_FLOW, 1, 'datagram']]);
    // The UDP checksum differs too (it covers the payload): the first differing byte is in the header.
    expect(h.records[0]!.primaryBytes.length).toBeGreaterThan(0);
    h.engine.onCheckpointCompleted();
    expect(h.releasedIndices()).toEqual([a, b, c]);
    h.finish();
  });

  it('Ethernet padding and IP header fields (ID, TTL) never cause a divergence; a different length does', () => {
    const h = new Harness();
    h.p(udpFrame(G, C, [1, 2], { pad: 0 }));
    h.s(udpFrame(G, C, [1, 2], { pad: 14, ipId: 999, ttl: 1 }));
    h.p(udpFrame(G, C, [1, 2]));
    h.s(udpFrame(G, C, [1, 2, 0]));
    expect(h.records.map((r) => r.cause)).toEqual(['payload']);
    h.finish();
  });

  it('directions and flows pair independently', () => {
    const h = new Harness();
    const C2: Host = { ip: '10.0.0.1', port: 33334 };
    const x = h.p(udpFrame(G, C, [1]));
    const y = h.p(udpFrame(G, C2, [2]));
    h.s(udpFrame(G, C2, [2]));
    expect(h.releasedIndices()).toEqual([y]);
    h.s(udpFrame(G, C, [1]));
    expect(h.releasedIndices()).toEqual([y, x]);
    h.finish();
  });
});

describe('ICMP, ICMPv6 and other IP protocols', () => {
  it('ICMP echo compared from the ICMP header on', () => {
    const h = new Harness();
    h.p(pingFrame('10.0.0.2', '10.0.0.1', 7, 1, [0xaa, 0xbb], { ipId: 3 }));
    h.s(pingFrame('10.0.0.2', '10.0.0.1', 7, 1, [0xaa, 0xbb], { ipId: 4000 }));
    h.p(pingFrame('10.0.0.2', '10.0.0.1', 7, 2, [0xaa, 0xbb]));
    h.s(pingFrame('10.0.0.2', '10.0.0.1', 7, 2, [0xaa, 0xbc]));
    expect(h.records.map((r) => [r.cause, r.flow])).toEqual([['payload', '10.0.0.2:7-10.0.0.1:7/ICMP']]);
    h.finish();
  });

  it('ICMPv6 (here a neighbour advertisement) is compared, hop limit ignored', () => {
    const h = new Harness();
    const na = (flag: number, hlim: number) => rawIpFrame('fe80::2', 'fe80::1', 58, [136, 0, 0, 0, flag, 0, 0, 0, ...new Array<number>(16).fill(0xfe)], { ttl: hlim });
    const a = h.p(na(0x60, 255));
    h.s(na(0x60, 64));
    expect(h.releasedIndices()).toEqual([a]);
    h.p(na(0x60, 255));
    h.s(na(0x20, 255));
    expect(h.records.map((r) => [r.cause, r.flow])).toEqual([['payload', '[fe80::2]:0-[fe80::1]:0/ICMPv6']]);
    h.finish();
  });

  it("other protocols (GRE) compare from the transport header on: IP ID/TTL differences are not mismatches (unlike QEMU's)", () => {
    const h = new Harness();
    const a = h.p(rawIpFrame('10.0.0.2', '10.0.0.9', 47, [0, 0, 8, 0, 1, 2, 3, 4], { ipId: 1, ttl: 64 }));
    h.s(rawIpFrame('10.0.0.2', '10.0.0.9', 47, [0, 0, 8, 0, 1, 2, 3, 4], { ipId: 2, ttl: 63 }));
    expect(h.releasedIndices()).toEqual([a]);
    expect(h.records).toEqual([]);
    h.finish();
  });
});

describe('ARP', () => {
  it('paired per (sender, target) in FIFO order, ARP body compared, padding ignored', () => {
    const h = new Harness();
    const req = (tpa: string) => arpFrame(1, '52:54:00:00:00:02', '10.0.0.2', '00:00:00:00:00:00', tpa);
    const a = h.p(req('10.0.0.1'));
    const b = h.p(req('10.0.0.3'));
    h.s(arpFrame(1, '52:54:00:00:00:02', '10.0.0.2', '00:00:00:00:00:00', '10.0.0.3', { pad: 18 }));
    expect(h.releasedIndices()).toEqual([b]);
    h.s(req('10.0.0.1'));
    expect(h.releasedIndices()).toEqual([b, a]);
    expect(h.records).toEqual([]);
    h.finish();
  });

  it('a different ARP body is a divergence named by its addresses', () => {
    const h = new Harness();
    h.p(arpFrame(2, '52:54:00:00:00:02', '10.0.0.2', '52:54:00:00:00:01', '10.0.0.1'));
    h.s(arpFrame(2, '52:54:00:00:00:03', '10.0.0.2', '52:54:00:00:00:01', '10.0.0.1'));
    expect(h.records.map((r) => [r.cause, r.flow, r.offset])).toEqual([['payload', '10.0.0.2-10.0.0.1/ARP', 0]]);
    h.finish();
  });
});

describe('IP fragments', () => {
  const payload = Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);

  it('differently fragmented equal datagrams match; the original fragment frames are released in order', () => {
    const h = new Harness();
    const pf = udpFragments(G, C, payload, 0x1234, [1480, 2960]);
    const sf = udpFragments(G, C, payload, 0x9999, [1000, 2000]);
    const idx = pf.map((f) => h.p(f));
    expect(h.released).toEqual([]);
    expect(h.engine.held.frames).toBe(pf.length);
    for (const f of sf) h.s(f);
    expect(h.releasedIndices()).toEqual(idx);
    expect(h.records).toEqual([]);
    h.finish();
  });

  it('a differing reassembled datagram is one divergence; its fragments wait for the checkpoint', () => {
    const h = new Harness();
    const bad = payload.slice();
    bad[2500] ^= 1;
    const pf = udpFragments(G, C, payload, 1, [1480]);
    const idx = pf.map((f) => h.p(f));
    for (const f of udpFragments(G, C, bad, 2, [1480])) h.s(f);
    expect(h.records.map((r) => [r.cause, r.flow, r.offset])).toEqual([['payload', UDP_FLOW, 0]]);
    expect(h.released).toEqual([]);
    h.engine.onCheckpointCompleted();
    expect(h.releasedIndices()).toEqual(idx);
    h.finish();
  });

  it('fragments whose datagram can never be rebuilt (overlap) are released uncompared and counted', () => {
    const h = new Harness();
    const [f0, f1] = udpFragments(G, C, payload, 5, [1480]);
    const a = h.p(f0!);
    const b = h.p(f0!); // exact duplicate: kept with its datagram
    const overlap = udpFragments(G, C, payload, 5, [1472])[0]!;
    const c = h.p(overlap);
    expect(h.releasedIndices().sort()).toEqual([a, b, c].sort());
    const st = h.engine.statsSnapshot();
    expect(st.primary.unparseableBy.DEFRAG_OVERLAP).toBe(3);
    const d = h.p(f1!); // the rest of a poisoned datagram
    expect(h.isReleased(d)).toBe(true);
    expect(h.engine.statsSnapshot().primary.unparseableBy.DEFRAG_POISONED).toBe(1);
    h.finish();
  });
});

describe('frames that cannot be parsed', () => {
  it('are released at once (primary) or dropped (secondary), counted by reason', () => {
    const h = new Harness();
    const good = udpFrame(G, C, [1, 2, 3]);
    const truncated = good.subarray(0, 30); // IPv4 header cut short
    const lldp = Uint8Array.from([...new Array<number>(12).fill(1), 0x88, 0xcc, 0, 0]);
    const a = h.p(truncated);
    const b = h.p(lldp);
    h.s(truncated);
    h.s(lldp);
    expect(h.releasedIndices()).toEqual([a, b]);
    const st = h.engine.statsSnapshot();
    expect(st.primary.unparseableBy).toEqual({ TRUNCATED_IP: 1, UNKNOWN_ETHERTYPE: 1 });
    expect(st.secondary.unparseableBy).toEqual({ TRUNCATED_IP: 1, UNKNOWN_ETHERTYPE: 1 });
    h.finish();
  });
});
