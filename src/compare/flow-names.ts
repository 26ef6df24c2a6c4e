/**
 * Flow text for divergence records: `"SRC:SPORT-DST:DPORT/PROTO"` in the direction of the
 * diverging packets, IPv6 addresses in brackets (RFC 5952). Cold path (allocates strings).
 */
import type { FlowTable } from '../flow/table.js';
import { formatIP } from '../packet/addr.js';
import { decodeFrame } from '../packet/decode.js';
import type { PacketPool } from '../packet/pool.js';
import type { PacketView } from '../packet/view.js';
import { protoName } from './divergence.js';
import { FLOW_ARP, type FlowCompare } from './flow-compare.js';

/** Text and outer VLAN id of flow `fc`, direction `dir` (0 = the flow table's initiator → responder). */
export function flowName(table: FlowTable<FlowCompare>, fc: FlowCompare, dir: number): { flow: string; vlan: number } {
  if (fc.kind === FLOW_ARP) return { flow: fc.name!, vlan: fc.vlan };
  if (!table.isLive(fc.ref)) return { flow: `flow#${fc.ref}/${protoName(fc.proto)}`, vlan: 0 };
  const info = table.info(fc.ref);
  const [a, b] = dir === 0 ? [info.initiator, info.responder] : [info.responder, info.initiator];
  return { flow: `${a}-${b}/${protoName(info.proto)}`, vlan: info.vlan };
}

/** Text of the IP fragment in pool handle `h` (ports unknown: 0), decoded into scratch view `v`. */
export function fragmentFlowName(pool: PacketPool, h: number, v: PacketView): string {
  decodeFrame(v, pool.buffer(h), pool.offset(h), pool.length(h), pool.tag[h]!);
  if (v.ipAddrLen === 0) return 'fragment/IP';
  const w = (a: string) => (v.ipAddrLen === 16 ? `[${a}]` : a);
  const src = w(formatIP(v.buf, v.ipSrcOff, v.ipAddrLen));
  const dst = w(formatIP(v.buf, v.ipDstOff, v.ipAddrLen));
  return `${src}:0-${dst}:0/${protoName(v.ipProto)}`;
}
