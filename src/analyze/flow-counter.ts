/**
 * Counts distinct conversations for `inspect`. Both directions of a (VLAN, protocol, address,
 * port) tuple map to one key. Cold path: one key string per packet. The engine's bounded flow
 * table (flows layer) is the hot-path equivalent.
 */
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../packet/proto.js';
import type { PacketView } from '../packet/view.js';

const protoName = (p: number): string => (p === IPPROTO_TCP ? 'tcp' : p === IPPROTO_UDP ? 'udp' : p === IPPROTO_ICMP ? 'icmp' : p === IPPROTO_ICMPV6 ? 'icmpv6' : `ip-proto-${p}`);

export class FlowCounter {
  readonly #seen = new Set<string>();
  readonly #byProto = new Map<number, number>();
  readonly #key = Buffer.alloc(2 + 1 + 2 * (16 + 2));

  get total(): number {
    return this.#seen.size;
  }

  /** Count the flow of a decoded IP packet (non-first fragments carry no ports and are skipped). */
  add(v: PacketView): void {
    if (v.ipSrcOff < 0 || (v.fragOffset !== 0)) return;
    const k = this.#key;
    const n = v.ipAddrLen;
    const ports = v.ipProto === IPPROTO_TCP || v.ipProto === IPPROTO_UDP;
    const sp = ports ? v.srcPort : 0;
    const dp = ports ? v.dstPort : 0;
    // Order the two endpoints so both directions give the same key.
    let cmp = 0;
    for (let i = 0; i < n && cmp === 0; i++) cmp = v.buf[v.ipSrcOff + i]! - v.buf[v.ipDstOff + i]!;
    if (cmp === 0) cmp = sp - dp;
    const [aOff, aPort, bOff, bPort] = cmp <= 0 ? [v.ipSrcOff, sp, v.ipDstOff, dp] : [v.ipDstOff, dp, v.ipSrcOff, sp];
    k.writeUInt16BE(v.vlanCount > 0 ? v.vlanId0 : 0xffff, 0);
    k[2] = v.ipProto;
    let o = 3;
    k.set(v.buf.subarray(aOff, aOff + n), o);
    o += n;
    k.writeUInt16BE(aPort, o);
    o += 2;
    k.set(v.buf.subarray(bOff, bOff + n), o);
    o += n;
    k.writeUInt16BE(bPort, o);
    o += 2;
    const key = k.toString('latin1', 0, o);
    if (!this.#seen.has(key)) {
      this.#seen.add(key);
      this.#byProto.set(v.ipProto, (this.#byProto.get(v.ipProto) ?? 0) + 1);
    }
  }

  byProtocol(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [p, c] of [...this.#byProto].sort((a, b) => a[0] - b[0])) out[protoName(p)] = c;
    return out;
  }
}
