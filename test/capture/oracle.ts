/** Test helpers: tshark as the independent oracle, and our reader's view of the same facts. */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { PCAPPP } from '../helpers/paths.js';
import { openCapture } from '../../src/capture/reader.js';
import type { OpenCaptureOptions } from '../../src/capture/types.js';

/** All shared reference captures (pcap and pcapng). */
export const SHARED_FILES: readonly string[] = readdirSync(PCAPPP).filter((f) => /\.pcap(ng)?$/.test(f)).sort();

/** One packet as a comparable row. */
export interface Row {
  fileOffset: number;
  ifIndex: number;
  capLen: number;
  origLen: number;
  /** "sec.nnnnnnnnn", or "" when the record has no timestamp (pcapng SPB). */
  time: string;
  md5: string;
  comment: string;
}

export interface TsharkResult {
  rows: Row[];
  /** tshark's stderr minus the "running as root" banner. */
  err: string;
  status: number | null;
}

const FIELDS = ['frame.file_off', 'frame.interface_id', 'frame.cap_len', 'frame.len', 'frame.time_epoch', 'frame.md5_hash', 'frame.comment'];

/**
 * tshark's per-record facts. Rows without an interface id in a pcapng file are non-packet
 * records tshark shows for custom blocks; they are dropped.
 */
export function tsharkRows(file: string, extra: string[] = []): TsharkResult {
  const args = ['-r', file, '-n', '--disable-protocol', 'ALL', '--enable-protocol', 'frame',
    '-o', 'frame.show_file_off:TRUE', '-o', 'frame.generate_md5_hash:TRUE', '-T', 'fields', '-E', 'occurrence=f', ...extra];
  for (const f of FIELDS) args.push('-e', f);
  const r = spawnSync('tshark', args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  const lines = r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
  // In pcapng every packet has an interface id; rows without one are custom blocks.
  const pcapng = lines.some((l) => l[1] !== '');
  const rows: Row[] = [];
  for (const [off, ifid, cap, len, time, md5, comment] of lines) {
    if (pcapng && ifid === '') continue;
    rows.push({
      fileOffset: Number(off), ifIndex: ifid === '' ? 0 : Number(ifid), capLen: Number(cap), origLen: Number(len),
      time: time ?? '', md5: md5 ?? '', comment: comment ?? '',
    });
  }
  const err = r.stderr.split('\n').filter((l) => l && !/Running as user/.test(l)).join('\n');
  return { rows, err, status: r.status };
}

export function fmtTime(sec: number, nsec: number): string {
  return `${sec}.${String(nsec).padStart(9, '0')}`;
}

export interface OurResult {
  rows: Row[];
  error: unknown;
  format: string;
  linkTypes: number[];
}

/** Our reader's rows for the same file; stops at the first error and reports it. */
export function ourRows(file: string, opts?: OpenCaptureOptions, spbNoTime = true): OurResult {
  const r = openCapture(file, opts);
  const rows: Row[] = [];
  let error: unknown = null;
  try {
    for (let rec = r.next(); rec; rec = r.next()) {
      rows.push({
        fileOffset: rec.fileOffset,
        ifIndex: rec.ifIndex,
        capLen: rec.capLen,
        origLen: rec.origLen,
        time: spbNoTime && rec.tsSec === 0 && rec.tsNsec === 0 && r.format === 'pcapng' ? '' : fmtTime(rec.tsSec, rec.tsNsec),
        md5: createHash('md5').update(rec.buf.subarray(rec.off, rec.off + rec.capLen)).digest('hex'),
        comment: rec.comment ?? '',
      });
    }
  } catch (e) {
    error = e;
  }
  const out = { rows, error, format: r.format, linkTypes: [...r.linkTypes] };
  r.close();
  return out;
}
