/**
 * The comparison of a `flows` run with Wireshark, shared by the shared-capture test and the
 * impaired-capture test. See tshark.test.ts for the oracles and tshark's documented caveats.
 */
import { expect } from 'vitest';
import type { ConnectionReport, DirectionReport } from '../../src/cli/flows-extract.js';
import { directionFrom, pairKey, streamOf, type FlowsRun } from './cli-run.js';
import { modelStream, stripMissingMarkers, TH_RST, tsharkFollow, tsharkStreams, type TsharkStream } from './tshark-oracle.js';

export interface Tally {
  directions: number;
  exact: number;
  ackedHoles: number;
  unackedHoles: number;
  afterRst: number;
}

/** Assert one direction against both oracles; returns which tshark caveat applied. */
export function checkDirection(ours: Buffer, d: DirectionReport, follow: Buffer, st: TsharkStream, src: string, rstFrame: number, label: string): 'exact' | 'unacked' | 'rst' {
  expect(d.gapList.length, `${label}: every gap listed`).toBe(d.gaps);
  const segs = st.segments.filter((s) => s.src === src);

  // Oracle 2: every captured byte at its place, holes = our gaps.
  const stopFrame = d.end === 'rst' ? rstFrame : Infinity;
  const model = modelStream(segs, stopFrame);
  const mine = streamOf(ours, d);
  expect(mine.bytes.length, `${label}: stream length (file + gaps)`).toBe(model.length);
  let firstBad = -1;
  for (let i = 0; i < model.length && firstBad < 0; i++) {
    if (model.have[i] !== mine.have[i] || (model.have[i] === 1 && model.bytes[i] !== mine.bytes[i])) firstBad = i;
  }
  expect(firstBad, `${label}: first stream offset where our bytes/gaps differ from tshark's segments`).toBe(-1);

  // Oracle 1: tshark's follow output.
  const t = stripMissingMarkers(follow);
  let expected = ours;
  let kind: 'exact' | 'unacked' | 'rst' = 'exact';
  const marked: typeof t.markers = [];
  for (const g of d.gapList) {
    if (t.markers.some((m) => m.fileOffset === g.fileOffset && m.len === g.len)) {
      marked.push({ fileOffset: g.fileOffset, len: g.len });
      continue;
    }
    // Unacknowledged hole: tshark stops here. It only ever skips a hole the receiver ACKed,
    // so this must be a direction whose receiver sent nothing at all in the capture.
    expect(st.segments.some((s) => s.src !== src), `${label}: unacked hole at ${g.offset} although the receiver sent packets`).toBe(false);
    expected = ours.subarray(0, g.fileOffset);
    kind = 'unacked';
    break;
  }
  expect(t.markers, `${label}: tshark's missing-data markers are our gaps`).toEqual(marked);
  if (kind === 'exact' && d.end === 'rst') {
    const late = segs.filter((s) => s.frame > rstFrame && s.payload.length > 0);
    if (late.length > 0) {
      expected = Buffer.concat([ours, ...late.map((s) => s.payload)]);
      kind = 'rst';
    }
  }
  expect(t.bytes.length, `${label}: tshark follow length`).toBe(expected.length);
  expect(t.bytes.equals(expected), `${label}: tshark follow bytes`).toBe(true);
  return kind;
}

/**
 * Match every connection of `run` (made from capture `file`) with tshark's stream on the same
 * endpoints in the same order, and check each direction against both tshark oracles.
 */
export function compareWithTshark(file: string, run: FlowsRun, label: string): Tally {
  const streams = tsharkStreams(file);
  const ids = [...streams.keys()].sort((a, b) => a - b);
  const follows = tsharkFollow(file, ids);
  expect(run.report.connections.length, `${label}: connections vs tshark streams`).toBe(ids.length);
  const ourByPair = new Map<string, ConnectionReport[]>();
  for (const c of run.report.connections) {
    const k = pairKey(c.client, c.server);
    ourByPair.set(k, [...(ourByPair.get(k) ?? []), c]);
  }
  const theirByPair = new Map<string, TsharkStream[]>();
  for (const id of ids) {
    const s = streams.get(id)!;
    const k = pairKey(s.first[0], s.first[1]);
    theirByPair.set(k, [...(theirByPair.get(k) ?? []), s]);
  }
  expect([...ourByPair.keys()].sort()).toEqual([...theirByPair.keys()].sort());
  const tally: Tally = { directions: 0, exact: 0, ackedHoles: 0, unackedHoles: 0, afterRst: 0 };
  for (const [k, theirs] of theirByPair) {
    const ours = ourByPair.get(k)!;
    expect(ours.length, `connections on ${k}`).toBe(theirs.length);
    theirs.forEach((st, i) => {
      const c = ours[i]!;
      const f = follows.get(st.index)!;
      const rst = st.segments.find((s) => (s.flags & TH_RST) !== 0);
      const rstFrame = rst ? rst.frame : Infinity;
      for (const [src, follow] of [[st.first[0], f.fromFirst], [st.first[1], f.fromOther]] as const) {
        const d = directionFrom(c, src);
        const kind = checkDirection(run.file(d), d, follow, st, src, rstFrame, `${label} stream ${st.index} from ${src}`);
        tally.directions++;
        if (kind === 'exact') tally.exact++;
        if (kind === 'unacked') tally.unackedHoles++;
        if (kind === 'rst') tally.afterRst++;
        tally.ackedHoles += stripMissingMarkers(follow).markers.length;
      }
    });
  }
  return tally;
}
