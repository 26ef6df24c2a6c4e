/**
 * The work behind `colo-proxy flows`: one pass over a capture through the engine's reader,
 * link-type normaliser, decoder and ConnectionTracker, writing each TCP connection
 * direction's reassembled bytes to its own file and collecting per-connection figures.
 *
 * Gap policy for the files: a gap contributes NOTHING (the bytes are missing; no filler is
 * invented), so a file is exactly the bytes that were delivered, in stream order. Each gap is
 * listed with its stream offset, the file offset where the missing bytes would have been,
 * its length and why it will never fill.
 */
import { mkdirSync } from 'node:fs';
import { CaptureError } from '../errors.js';
import { openCapture } from '../capture/reader.js';
import { toEthernet } from '../capture/linktype.js';
import { decodeFrame } from '../packet/decode.js';
import { PacketPool } from '../packet/pool.js';
import { PacketView } from '../packet/view.js';
import { emptyDirectionSummary } from '../flow/connection.js';
import type { Connection, ConnectionEndReason, ConnectionListener, DirectionSummary } from '../flow/connection.js';
import { StreamFileNamer } from '../flow/flow-naming.js';
import { ConnectionTracker, type TrackerStats } from '../flow/tracker.js';
import type { Dir, GapReason } from '../flow/tcp-types.js';
import { DirectionFile, StreamFiles } from './flows-output.js';

/** At most this many gaps / conflicts are listed per direction (the counters stay exact). */
export const MAX_LISTED = 1000;

export interface GapEntry {
  /** Stream offset of the first missing byte (0 = first byte after the SYN). */
  offset: number;
  /** Where the missing bytes would have started in the file (bytes before the gap in the file). */
  fileOffset: number;
  len: number;
  reason: GapReason;
}

export interface ConflictEntry {
  /** Stream offset and length of a run of bytes whose retransmission differed (first copy kept). */
  offset: number;
  len: number;
}

/**
 * One TCP direction: the tracker's DirectionSummary (`bytes` = bytes in the file, the same as
 * the stream bytes delivered since gaps add nothing; differing retransmitted runs are also in
 * `conflictList`; `afterEnd` segments are not in the file) plus what only the report has.
 */
export interface DirectionReport extends DirectionSummary {
  /** File name inside the output folder. */
  file: string;
  gapList: GapEntry[];
  conflictList: ConflictEntry[];
}

export interface ConnectionReport {
  /** Start order (0, 1, 2…). */
  serial: number;
  /** `"IP:PORT"`, IPv6 in brackets. The client is the initiator (sender of the SYN, or of the first packet seen). */
  client: string;
  server: string;
  /** Capture time of the first and last packet, ms since the epoch. */
  startMs: number;
  lastMs: number;
  /** Why the connection left the tracker (`finished` = still open when the capture ended). */
  endReason: ConnectionEndReason | null;
  clientToServer: DirectionReport;
  serverToClient: DirectionReport;
}

export interface FlowsReport {
  file: string;
  out: string;
  /** Records read. */
  packets: number;
  /** Records whose link type cannot become Ethernet (skipped). */
  notEthernet: number;
  connections: ConnectionReport[];
  /** Non-TCP flows seen (UDP, ICMP, …): tracked, but no files are written for them. */
  otherFlows: number;
  complete: boolean;
  error: { code: string; offset: number; message: string } | null;
  engine: TrackerStats;
}

export interface ExtractOptions {
  vnetHdrLen?: number;
  /** Flow table size (default 2^20). */
  maxFlows?: number;
  /** Called every record with the file offset reached, for progress display. */
  onProgress?: (fileOffset: number) => void;
}

/** Per-connection state kept in `Connection.user`. */
interface ConnOut {
  files: [DirectionFile, DirectionFile];
  report: ConnectionReport;
}

/** Capture time → ms; expiry runs when capture time moves on by this much. */
const EXPIRE_EVERY_MS = 1000;

function emptyDirection(file: string): DirectionReport {
  return { file, ...emptyDirectionSummary(), gapList: [], conflictList: [] };
}

/**
 * Reassemble every TCP connection of capture `path` into `outDir` (created if missing).
 * A damaged record stops reading: what came before is still reassembled, written and
 * reported (`complete: false`, `error` names the code and file offset). Open errors throw.
 */
export function extractFlows(path: string, outDir: string, opts: ExtractOptions = {}): FlowsReport {
  const reader = openCapture(path);
  mkdirSync(outDir, { recursive: true });
  const files = new StreamFiles(outDir);
  const namer = new StreamFileNamer('.bin');
  const connections: ConnectionReport[] = [];
  const dirReport = (o: ConnOut, d: Dir): DirectionReport => (d === 0 ? o.report.clientToServer : o.report.serverToClient);

  const listener: ConnectionListener<ConnOut> = {
    start(c) {
      if (c.reassembler === null) return;
      const [n0, n1] = namer.names(c.client, c.server);
      const report: ConnectionReport = {
        serial: c.serial,
        client: c.client,
        server: c.server,
        startMs: c.startMs,
        lastMs: c.startMs,
        endReason: null,
        clientToServer: emptyDirection(n0),
        serverToClient: emptyDirection(n1),
      };
      connections.push(report);
      c.user = { files: [files.create(n0), files.create(n1)], report };
    },
    data(c, dir, buf, off, len) {
      files.append(c.user!.files[dir], buf, off, len);
    },
    gap(c, dir, offset, len, reason) {
      const o = c.user!;
      const list = dirReport(o, dir).gapList;
      if (list.length < MAX_LISTED) list.push({ offset, fileOffset: o.files[dir].size, len, reason });
    },
    overlapConflict(c, dir, offset, len) {
      const list = dirReport(c.user!, dir).conflictList;
      if (list.length < MAX_LISTED) list.push({ offset, len });
    },
    directionEnd(c, dir) {
      files.flush(c.user!.files[dir]);
    },
    end(c, reason) {
      const o = c.user;
      if (o === undefined) return;
      finalize(c, o, reason);
    },
  };

  function finalize(c: Connection<ConnOut>, o: ConnOut, reason: ConnectionEndReason): void {
    const r = o.report;
    r.endReason = reason;
    r.lastMs = c.lastMs;
    for (const d of [0, 1] as const) {
      const dr = Object.assign(dirReport(o, d), c.directionSummary(d));
      dr.bytes = o.files[d].size;
      files.flush(o.files[d]);
    }
  }

  // Offline, every retransmission is worth checking: keep the recently-delivered window from
  // the first byte (retxArmAfter 0), still bounded by the reassembly budget's retransmission share.
  const tracker = new ConnectionTracker<ConnOut>({ pool: new PacketPool(), table: { maxFlows: opts.maxFlows }, reassembly: { retxArmAfter: 0 } }, listener);
  const v = new PacketView();
  const vnet = opts.vnetHdrLen ?? 0;
  let packets = 0;
  let notEthernet = 0;
  let lastExpire = -Infinity;
  let error: FlowsReport['error'] = null;
  try {
    for (let rec = reader.next(); rec !== null; rec = reader.next()) {
      packets++;
      opts.onProgress?.(rec.fileOffset);
      if (!toEthernet(rec)) {
        notEthernet++;
        continue;
      }
      const nowMs = rec.tsSec * 1000 + rec.tsNsec / 1e6;
      decodeFrame(v, rec.buf, rec.off, rec.capLen, vnet, rec.origLen);
      tracker.packet(v, nowMs);
      if (nowMs - lastExpire >= EXPIRE_EVERY_MS) {
        tracker.expire(nowMs);
        lastExpire = nowMs;
      }
    }
  } catch (e) {
    if (!(e instanceof CaptureError)) throw e;
    error = { code: e.code, offset: e.offset, message: e.message };
  } finally {
    reader.close();
  }
  tracker.finish();
  files.flushAll();
  connections.sort((a, b) => a.serial - b.serial);
  return {
    file: path,
    out: outDir,
    packets,
    notEthernet,
    connections,
    otherFlows: tracker.stats().otherFlows,
    complete: error === null,
    error,
    engine: tracker.stats(),
  };
}
