/**
 * Address text for logs, reports and CLI output. These allocate strings: cold path only.
 */

const HEX = '0123456789abcdef';

/** Dotted-quad text of the IPv4 address at `off`. */
export function formatIPv4(buf: Uint8Array, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/**
 * RFC 5952 text of the IPv6 address at `off`: lowercase hex without leading zeros, the longest
 * run of two or more zero groups shown as `::` (the leftmost run on a tie), and IPv4-mapped
 * addresses as `::ffff:a.b.c.d` (§5).
 */
export function formatIPv6(buf: Uint8Array, off: number): string {
  const g: number[] = new Array<number>(8);
  for (let i = 0; i < 8; i++) g[i] = (buf[off + 2 * i] << 8) | buf[off + 2 * i + 1];
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${formatIPv4(buf, off + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never compressed (§4.2.2)
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (x: number) => x.toString(16);
  if (bestStart < 0) return g.map(hex).join(':');
  const head = g.slice(0, bestStart).map(hex).join(':');
  const tail = g.slice(bestStart + bestLen).map(hex).join(':');
  return `${head}::${tail}`;
}

/** `aa:bb:cc:dd:ee:ff` text of the 6-byte MAC address at `off`. */
export function formatMac(buf: Uint8Array, off: number): string {
  let s = '';
  for (let i = 0; i < 6; i++) {
    const b = buf[off + i];
    if (i !== 0) s += ':';
    s += HEX[b >> 4] + HEX[b & 15];
  }
  return s;
}

/** Text of an IP address of `addrLen` bytes (4 or 16) at `off`. */
export function formatIP(buf: Uint8Array, off: number, addrLen: number): string {
  return addrLen === 16 ? formatIPv6(buf, off) : formatIPv4(buf, off);
}

/** `1.2.3.4:80` or `[2001:db8::1]:80` for the address of `addrLen` bytes at `off` and `port`. */
export function formatEndpoint(buf: Uint8Array, off: number, addrLen: number, port: number): string {
  return addrLen === 16 ? `[${formatIPv6(buf, off)}]:${port}` : `${formatIPv4(buf, off)}:${port}`;
}
