/**
 * Capture read rate: our pull reader against pcap-parser (the baseline) on the same files in
 * the same run — http-packets.pcap and a ~100 MB synthetic pcap generated with our writer into
 * os.tmpdir() (deleted afterwards; size via CAPTURE_BENCH_MB). Every walk touches each record
 * (sums capLen and the first data byte) so nothing is optimised away. Also: writer rate against
 * a naive per-record Buffer + writeSync writer.
 */
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pcapParser from 'pcap-parser';
import { openCapture } from '../src/capture/reader.js';
import { toEthernet } from '../src/capture/linktype.js';
import { PcapngWriter, PcapWriter } from '../src/capture/writer.js';
import { timedMedian, timedPasses, type BenchRow } from './harness.js';
import { sharedCapturesDir } from './paths.js';


let sink = 0;

/** One full pass with our reader; returns the records seen. */
function walkOurs(path: string, normalise = false): number {
  const r = openCapture(path);
  let n = 0;
  for (let rec = r.next(); rec !== null; rec = r.next()) {
    if (normalise) toEthernet(rec);
    sink += rec.capLen + rec.buf[rec.off]!;
    n++;
  }
  r.close();
  return n;
}

function walkParser(path: string): Promise<number> {
  return new Promise((res, rej) => {
    let n = 0;
    const p = pcapParser.parse(path);
    p.on('packet', (pk) => {
      sink += pk.header.capturedLength + pk.data[0]!;
      n++;
    });
    p.on('error', rej);
    p.on('end', () => res(n));
  });
}

/** Read one capture into memory once (setup only). */
function loadRecords(path: string): { data: Buffer[]; sec: number[]; nsec: number[] } {
  const out = { data: [] as Buffer[], sec: [] as number[], nsec: [] as number[] };
  for (const rec of openCapture(path)) {
    out.data.push(rec.buf.subarray(rec.off, rec.off + rec.capLen));
    out.sec.push(rec.tsSec);
    out.nsec.push(rec.tsNsec);
  }
  return out;
}

export async function run(): Promise<BenchRow[]> {
  const s = 'capture';
  const rows: BenchRow[] = [];
  const http = join(sharedCapturesDir(), 'http-packets.pcap');
  const httpBytes = statSync(http).size;
  const dir = mkdtempSync(join(tmpdir(), 'capture-bench-'));
  try {
    // --- http-packets.pcap (2.6 MB, 1985 records) ---
    const nHttp = walkOurs(http);
    const pHttp = await timedPasses(() => walkParser(http), 5, true);
    const oHttp = timedMedian(() => walkOurs(http), nHttp, 5);
    const eHttp = timedMedian(() => walkOurs(http, true), nHttp, 5);
    const perRec = httpBytes / nHttp;
    rows.push(
      { suite: s, name: 'pcap-parser http-packets', opsPerSec: pHttp.opsPerSec, unit: 'rec', bytesPerSec: pHttp.opsPerSec * perRec },
      { suite: s, name: 'openCapture http-packets', opsPerSec: oHttp.opsPerSec, unit: 'rec', bytesPerSec: oHttp.opsPerSec * perRec, baseline: 'pcap-parser http-packets' },
      { suite: s, name: 'openCapture+toEthernet http', opsPerSec: eHttp.opsPerSec, unit: 'rec', bytesPerSec: eHttp.opsPerSec * perRec, baseline: 'pcap-parser http-packets' },
    );

    // --- synthetic ~100 MB pcap and a pcapng twin, made with our writers ---
    const targetMb = Number(process.env.CAPTURE_BENCH_MB ?? 100);
    const recs = loadRecords(http);
    const big = join(dir, 'big.pcap');
    const bigNg = join(dir, 'big.pcapng');
    const naive = join(dir, 'naive.pcap');
    let nBig = 0;
    const writeBig = (): number => {
      const w = new PcapWriter(big, { resolution: 'us' }); // pcap-parser knows only µs
      let bytes = 24;
      nBig = 0;
      for (let lap = 0; bytes < targetMb * 1e6; lap++) {
        for (let i = 0; i < recs.data.length; i++) {
          const d = recs.data[i]!;
          w.write(d, 0, d.length, recs.sec[i]! + lap * 3600, recs.nsec[i]!);
          bytes += 16 + d.length;
          nBig++;
        }
      }
      w.close();
      return nBig;
    };
    // Baseline writer: a fresh Buffer per record, one writeSync each.
    const writeNaive = (): number => {
      const fd = openSync(naive, 'w');
      writeSync(fd, Buffer.alloc(24)); // content irrelevant: only the write cost is measured
      let n = 0;
      for (let bytes = 24, lap = 0; bytes < targetMb * 1e6; lap++) {
        for (let i = 0; i < recs.data.length; i++) {
          const d = recs.data[i]!;
          const b = Buffer.allocUnsafe(16 + d.length);
          b.writeUInt32LE(recs.sec[i]! + lap * 3600, 0);
          b.writeUInt32LE(Math.floor(recs.nsec[i]! / 1000), 4);
          b.writeUInt32LE(d.length, 8);
          b.writeUInt32LE(d.length, 12);
          d.copy(b, 16);
          writeSync(fd, b);
          bytes += b.length;
          n++;
        }
      }
      closeSync(fd);
      return n;
    };
    const wNaive = await timedPasses(writeNaive, 3);
    const wOurs = await timedPasses(writeBig, 3);
    const bigBytes = statSync(big).size;
    rmSync(naive, { force: true });
    const ng = new PcapngWriter(bigNg);
    for (const rec of openCapture(big)) ng.write(rec.buf, rec.off, rec.capLen, rec.tsSec, rec.tsNsec);
    ng.close();
    const bigNgBytes = statSync(bigNg).size;

    const perBig = bigBytes / nBig;
    const pBig = await timedPasses(() => walkParser(big), 3, true);
    const oBig = timedMedian(() => walkOurs(big), nBig, 3, 1);
    const oNg = timedMedian(() => walkOurs(bigNg), nBig, 3, 1);
    const mb = `${(bigBytes / 1e6).toFixed(0)} MB`;
    rows.push(
      { suite: s, name: `pcap-parser ${mb} pcap`, opsPerSec: pBig.opsPerSec, unit: 'rec', bytesPerSec: pBig.opsPerSec * perBig },
      { suite: s, name: `openCapture ${mb} pcap`, opsPerSec: oBig.opsPerSec, unit: 'rec', bytesPerSec: oBig.opsPerSec * perBig, baseline: `pcap-parser ${mb} pcap` },
      {
        suite: s, name: `openCapture ${mb} pcapng twin`, opsPerSec: oNg.opsPerSec, unit: 'rec', bytesPerSec: (oNg.opsPerSec * bigNgBytes) / nBig,
        baseline: `pcap-parser ${mb} pcap`, note: 'same records as pcapng; pcap-parser cannot read pcapng',
      },
      { suite: s, name: `naive writer ${mb}`, opsPerSec: wNaive.opsPerSec, unit: 'rec', bytesPerSec: wNaive.opsPerSec * perBig, note: 'Buffer + writeSync per record' },
      { suite: s, name: `PcapWriter ${mb}`, opsPerSec: wOurs.opsPerSec, unit: 'rec', bytesPerSec: wOurs.opsPerSec * perBig, baseline: `naive writer ${mb}` },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (sink === -1) throw new Error('unreachable');
  return rows;
}
