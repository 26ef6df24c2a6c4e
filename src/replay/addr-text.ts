/**
 * Address text to bytes (the inverse of src/packet/addr.ts), for building frames and workloads.
 * Cold path: allocates and throws ColoError ERR_INVALID_ARGUMENT naming the bad text.
 */
import { isIP } from 'node:net';
import { ColoError } from '../errors.js';

/** An IP address: text (dotted quad or any RFC 4291 IPv6 form) or its 4 / 16 bytes. */
export type IpAddress = string | Uint8Array;

/** A MAC address: `aa:bb:cc:dd:ee:ff` (or with `-`) or its 6 bytes. */
export type MacAddress = string | Uint8Array;

function parseIPv4Into(text: string, out: Uint8Array, off: number): void {
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) out[off + i] = Number(parts[i]);
}

/**
 * The 4 or 16 bytes of an IP address given as text. IPv6 accepts `::` compression and a
 * trailing dotted quad (`::ffff:10.0.0.1`); zone ids (`%eth0`) are refused.
 */
export function parseIpAddress(text: string): Uint8Array {
  const kind = isIP(text);
  if (kind === 4) {
    const out = new Uint8Array(4);
    parseIPv4Into(text, out, 0);
    return out;
  }
  if (kind !== 6 || text.includes('%')) {
    throw new ColoError('ERR_INVALID_ARGUMENT', `"${text}" is not an IPv4 or IPv6 address`);
  }
  const out = new Uint8Array(16);
  let s = text;
  let tail4 = false;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {
    // Embedded IPv4 in the last 32 bits.
    parseIPv4Into(s.slice(lastColon + 1), out, 12);
    s = s.slice(0, lastColon + 1) + '0:0';
    tail4 = true;
  }
  const dbl = s.indexOf('::');
  const head = dbl >= 0 ? s.slice(0, dbl) : s;
  const rest = dbl >= 0 ? s.slice(dbl + 2) : '';
  const hg = head.length > 0 ? head.split(':') : [];
  const tg = rest.length > 0 ? rest.split(':') : [];
  const groups: number[] = [...hg.map((g) => parseInt(g, 16))];
  for (let i = hg.length + tg.length; i < 8; i++) groups.push(0);
  for (const g of tg) groups.push(parseInt(g, 16));
  for (let i = 0; i < 8; i++) {
    if (tail4 && i >= 6) break;
    out[2 * i] = (groups[i]! >>> 8) & 0xff;
    out[2 * i + 1] = groups[i]! & 0xff;
  }
  return out;
}

/** Bytes of an IpAddress (text is parsed; byte arrays must be 4 or 16 long and are used as is). */
export function ipBytes(a: IpAddress): Uint8Array {
  if (typeof a === 'string') return parseIpAddress(a);
  if (a.length !== 4 && a.length !== 16) {
    throw new ColoError('ERR_INVALID_ARGUMENT', `an IP address must be 4 or 16 bytes, got ${a.length}`);
  }
  return a;
}

/** The 6 bytes of a MAC address. */
export function macBytes(m: MacAddress): Uint8Array {
  if (typeof m !== 'string') {
    if (m.length !== 6) throw new ColoError('ERR_INVALID_ARGUMENT', `a MAC address must be 6 bytes, got ${m.length}`);
    return m;
  }
  if (!/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(m)) {
    throw new ColoError('ERR_INVALID_ARGUMENT', `"${m}" is not a MAC address (expected aa:bb:cc:dd:ee:ff)`);
  }
  return Uint8Array.from(m.split(/[:-]/), (x) => parseInt(x, 16));
}
