/**
 * Divergence specs for the workload maker: the typed form `makeWorkload` takes, and the
 * one-token text form of the CLI (`--diverge SPEC`), parsed strictly.
 *
 * Grammar (FLOW = server→client flow text as `colo-proxy compare` logs it, e.g.
 * `192.0.2.2:8080-192.0.2.1:33846/TCP`; omitted: the first connection that fits. A TCP FLOW
 * may end in `#N` to name the Nth connection (incarnation) on a reused 4-tuple, default 1):
 * ```
 * byte@OFF[:FLOW]          flip the server→client stream byte at OFF
 * missing@OFF+LEN[:FLOW]   the secondary never sends stream bytes [OFF, OFF+LEN)
 * extra@OFF+LEN[:FLOW]     the secondary inserts LEN extra bytes at OFF (the rest shifts)
 * late@OFF[+MS][:FLOW]     the secondary's frames of the flow from OFF on come MS later (3500)
 * silent@OFF[:FLOW]        the secondary sends nothing more for the flow from OFF on
 * udp[#I][:FLOW]           flip the last byte of the flow's server datagram number I (0)
 * ```
 */
import { ColoError } from '../errors.js';

/** Default delay of a `late` divergence: beyond the default compare_timeout (3000 ms) plus one expired_scan_cycle (1000 ms), so the timeout scan finds the held primary before the late frames arrive whatever its phase. */
export const LATE_DEFAULT_MS = 4500;

/** A labelled divergence to inject into the secondary (TCP offsets: server→client stream bytes, 0 = first byte after the SYN). */
export type DivergeSpec =
  /** Flip one byte (XOR 0xff) at `offset`; `flow` default: first TCP connection with a captured byte there. */
  | { kind: 'byte'; flow?: string; offset: number; incarnation?: number }
  /** The secondary never sends bytes [offset, offset+length): a hole, later segments keep their sequence numbers. */
  | { kind: 'missing'; flow?: string; offset: number; length: number; incarnation?: number }
  /** The secondary sends `length` extra bytes before stream byte `offset` (`offset` = stream length: appended); the rest and the FIN shift. */
  | { kind: 'extra'; flow?: string; offset: number; length: number; incarnation?: number }
  /** The secondary's frames of the flow from the segment starting at `offset` on are delayed by `delayMs` (default LATE_DEFAULT_MS). */
  | { kind: 'late'; flow?: string; offset: number; delayMs?: number; incarnation?: number }
  /** The secondary sends nothing more for the flow from stream byte `offset` on (no data, no FIN, no RST). */
  | { kind: 'silent'; flow?: string; offset: number; incarnation?: number }
  /** Flip the last byte of server→client datagram number `index` (default 0) of `flow` (default: first UDP flow with payload). */
  | { kind: 'udp'; flow?: string; index?: number };

export type DivergeKind = DivergeSpec['kind'];

/*
 * `incarnation` (TCP kinds, with `flow`): which connection on a reused 4-tuple, 1-based, default
 * 1 — the flow text alone names all of them (a new SYN after the old connection ended).
 */

/** Help text for the CLI and docs. */
export const DIVERGE_GRAMMAR = `SPEC forms (OFF, LEN, MS, I: decimal integers; FLOW: server→client flow text as
compare logs it, e.g. 192.0.2.2:8080-192.0.2.1:33846/TCP, default the first fitting one;
a TCP FLOW may end in #N for the Nth connection on a reused 4-tuple, default #1):
  byte@OFF[:FLOW]         flip the server→client stream byte at OFF
  missing@OFF+LEN[:FLOW]  the secondary never sends stream bytes [OFF, OFF+LEN)
  extra@OFF+LEN[:FLOW]    the secondary inserts LEN extra bytes at OFF (rest and FIN shift)
  late@OFF[+MS][:FLOW]    secondary frames of the flow from OFF on arrive MS later (${LATE_DEFAULT_MS})
  silent@OFF[:FLOW]       the secondary sends nothing more for the flow from OFF on
  udp[#I][:FLOW]          flip the last byte of the flow's server datagram I (default 0)`;

const MAX = 2 ** 31 - 1;
const TCP_RE = /^(byte|missing|extra|late|silent)@(\d+)(?:\+(\d+))?(?::(.+))?$/;
const UDP_RE = /^udp(?:#(\d+))?(?::(.+))?$/;

function num(spec: string, what: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > MAX) throw bad(spec, `${what} must be an integer from ${min} to ${MAX}`);
  return n;
}

function bad(spec: string, why: string): ColoError {
  return new ColoError('ERR_INVALID_ARGUMENT', `bad divergence spec "${spec}": ${why}`);
}

/** Parse one `--diverge` token (grammar above); throws ColoError naming the spec and what is wrong. */
export function parseDivergeSpec(spec: string): DivergeSpec {
  const s = spec.trim();
  const u = UDP_RE.exec(s);
  if (u) {
    const d: DivergeSpec = { kind: 'udp', index: u[1] === undefined ? 0 : num(spec, 'the datagram index', u[1], 0) };
    if (u[2] !== undefined) d.flow = checkFlow(spec, u[2], 'UDP');
    return d;
  }
  const m = TCP_RE.exec(s);
  if (!m) {
    const kind = /^([a-z]+)/.exec(s)?.[1];
    const known = ['byte', 'missing', 'extra', 'late', 'silent', 'udp'];
    if (kind === undefined || !known.includes(kind)) throw bad(spec, `unknown kind; expected one of ${known.join(', ')}`);
    throw bad(spec, `expected ${kind === 'missing' || kind === 'extra' ? `${kind}@OFF+LEN[:FLOW]` : kind === 'late' ? 'late@OFF[+MS][:FLOW]' : `${kind}@OFF[:FLOW]`}`);
  }
  const kind = m[1] as 'byte' | 'missing' | 'extra' | 'late' | 'silent';
  const offset = num(spec, 'OFF', m[2]!, 0);
  const inc = m[4] === undefined ? null : /^(.*)#(\d+)$/.exec(m[4]);
  const flow = m[4] === undefined ? undefined : checkFlow(spec, inc === null ? m[4] : inc[1]!, 'TCP');
  const incarnation = inc === null ? undefined : num(spec, 'the incarnation #N', inc[2]!, 1);
  const withFlow = <T extends DivergeSpec>(d: T): T =>
    flow === undefined ? d : incarnation === undefined || incarnation === 1 ? { ...d, flow } : { ...d, flow, incarnation };
  switch (kind) {
    case 'byte':
    case 'silent':
      if (m[3] !== undefined) throw bad(spec, `${kind} takes no +N`);
      return withFlow({ kind, offset });
    case 'missing':
    case 'extra':
      if (m[3] === undefined) throw bad(spec, `${kind} needs a length: ${kind}@OFF+LEN`);
      return withFlow({ kind, offset, length: num(spec, 'LEN', m[3], 1) });
    case 'late':
      return withFlow({ kind, offset, delayMs: m[3] === undefined ? LATE_DEFAULT_MS : num(spec, 'MS', m[3], 1) });
  }
}

function checkFlow(spec: string, flow: string, proto: 'TCP' | 'UDP'): string {
  if (!flow.endsWith(`/${proto}`)) throw bad(spec, `FLOW "${flow}" must be a ${proto} flow text ending in /${proto} (server→client, as compare logs it)`);
  return flow;
}

/** The spec back in its text form (round-trips through parseDivergeSpec). */
export function formatDivergeSpec(d: DivergeSpec): string {
  const inc = d.kind !== 'udp' && d.incarnation !== undefined && d.incarnation !== 1 ? `#${d.incarnation}` : '';
  const f = d.flow === undefined ? '' : `:${d.flow}${inc}`;
  switch (d.kind) {
    case 'byte':
    case 'silent':
      return `${d.kind}@${d.offset}${f}`;
    case 'missing':
    case 'extra':
      return `${d.kind}@${d.offset}+${d.length}${f}`;
    case 'late':
      return `late@${d.offset}+${d.delayMs ?? LATE_DEFAULT_MS}${f}`;
    case 'udp':
      return `udp#${d.index ?? 0}${f}`;
  }
}
