/**
 * Test helper: run a capture through decode → defrag → FlowTable (the engine's order) and
 * list every flow ever created; parse tshark's `-z conv,tcp|udp` tables for comparison.
 */
import { openCapture } from '../../src/capture/reader.js';
import { toEthernet } from '../../src/capture/linktype.js';
import { Defragmenter } from '../../src/flow/defrag.js';
import { FlowTable, type FlowInfo } from '../../src/flow/table.js';
import type { FlowTimeouts } from '../../src/flow/table-options.js';
import { decodeFrame, PacketView } from '../../src/packet/index.js';
import { NO_HANDLE, PacketPool } from '../../src/packet/pool.js';
import { tshark } from '../helpers/tools.js';

/** One conversation, direction-free: endpoints sorted, frames counted each way. */
export interface Conv {
  a: string;
  b: string;
  aToB: number;
  bToA: number;
}

/** `[v6]:port` → `v6:port` (tshark's spelling). */
function plain(ep: string): string {
  return ep.replace(/^\[(.*)\]:(\d+)$/, '$1:$2');
}

export function conv(e1: string, e2: string, f12: number, f21: number): Conv {
  const x = plain(e1);
  const y = plain(e2);
  return x <= y ? { a: x, b: y, aToB: f12, bToA: f21 } : { a: y, b: x, aToB: f21, bToA: f12 };
}

export function sortConvs(c: Conv[]): Conv[] {
  return [...c].sort((p, q) => (p.a + ' ' + p.b + ' ' + p.aToB).localeCompare(q.a + ' ' + q.b + ' ' + q.aToB));
}

/** Timeouts far beyond any capture's length: flows end only by TCP port reuse. */
export const NO_TIMEOUTS: FlowTimeouts = { tcpEmbryonicMs: 1e12, tcpEstablishedMs: 1e12, tcpClosingMs: 1e12, tcpCloseLingerMs: 1e12, udpMs: 1e12, icmpMs: 1e12, otherMs: 1e12 };

/** Every flow the table created for `path` (removed ones included), with the table's final stats. */
export function engineFlows(path: string, timeouts: FlowTimeouts = NO_TIMEOUTS) {
  const all: FlowInfo[] = [];
  const table: FlowTable = new FlowTable({
    seed: 5,
    maxFlows: 1 << 16,
    timeouts,
    onRemove: (id) => all.push(table.info(id)),
  });
  const pool = new PacketPool();
  const defrag = new Defragmenter({ pool, seed: 5 });
  const v = new PacketView();
  const w = new PacketView();
  const r = openCapture(path);
  try {
    for (let rec = r.next(); rec !== null; rec = r.next()) {
      if (!toEthernet(rec)) continue;
      const now = rec.tsSec * 1000 + rec.tsNsec / 1e6;
      decodeFrame(v, rec.buf, rec.off, rec.capLen, 0, rec.origLen);
      if (v.isFragment) {
        const h = defrag.push(v, now);
        if (h === NO_HANDLE) continue;
        decodeFrame(w, pool.buffer(h), pool.offset(h), pool.length(h));
        table.lookup(w, now);
        pool.release(h);
      } else {
        table.lookup(v, now);
      }
    }
  } finally {
    r.close();
  }
  table.forEach((id) => all.push(table.info(id)));
  defrag.clear();
  return { flows: all, stats: table.stats(), poolInUse: pool.inUse };
}

/** tshark's conversation table for `kind` ('tcp' | 'udp'). */
export function tsharkConvs(path: string, kind: 'tcp' | 'udp'): Conv[] {
  // LISP carries whole inner IP/UDP packets, which tshark also lists; the table keys outer headers only.
  const out = tshark(['-r', path, '--disable-protocol', 'lisp', '-q', '-z', `conv,${kind}`]);
  const convs: Conv[] = [];
  for (const line of out.split('\n')) {
    const m = /^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+\d+\s+(?:bytes|[kMG]B)\s+(\d+)\s+\d+\s+(?:bytes|[kMG]B)/.exec(line);
    if (!m) continue;
    // Columns: "<-" = frames from the right endpoint to the left one, "->" = left to right.
    convs.push(conv(m[1]!, m[2]!, Number(m[4]), Number(m[3])));
  }
  return convs;
}

export function engineConvs(flows: FlowInfo[], proto: number): Conv[] {
  return flows.filter((f) => f.proto === proto).map((f) => conv(f.initiator, f.responder, f.packets[0], f.packets[1]));
}
