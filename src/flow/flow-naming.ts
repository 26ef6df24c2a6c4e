/**
 * File names for connection directions: `SRC.SPORT-DST.DPORT.bin` (PcapPlusPlus's
 * convention, IPv6 in RFC 5952 text), with `-2`, `-3`, … before the extension for the 2nd,
 * 3rd, … connection on the same pair of endpoints, in the order the connections started.
 *
 * The counter is per UNORDERED endpoint pair, so a later connection in which the old server
 * is the client (its files would have the same two names, swapped) is numbered too. Both
 * directions of one connection share the number. Names cannot collide: a suffix `-N` has no
 * dot, while the part after the last '-' of a base name always has one (`ADDR.PORT`), and
 * addresses never contain '-'. Cold path (one call per connection); remembers every pair
 * seen, so memory grows with the number of distinct pairs.
 */
import { ColoError } from '../errors.js';

/** `"1.2.3.4:80"` → `"1.2.3.4.80"`, `"[2001:db8::1]:443"` → `"2001:db8::1.443"`. */
export function endpointFileText(endpoint: string): string {
  const i = endpoint.lastIndexOf(':');
  if (i <= 0) throw new ColoError('ERR_INVALID_ARGUMENT', `endpoint "${endpoint}" is not "IP:PORT"`);
  let ip = endpoint.slice(0, i);
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  return `${ip}.${endpoint.slice(i + 1)}`;
}

export class StreamFileNamer {
  readonly #seen = new Map<string, number>();
  readonly #ext: string;

  /** @param ext the extension, with its dot (default `.bin`). */
  constructor(ext = '.bin') {
    this.#ext = ext;
  }

  /**
   * Names of the two direction files of a connection that starts now between `client` and
   * `server` (`"IP:PORT"` text): `[client → server, server → client]`.
   */
  names(client: string, server: string): [string, string] {
    const c = endpointFileText(client);
    const s = endpointFileText(server);
    const key = c < s ? `${c}|${s}` : `${s}|${c}`;
    const n = (this.#seen.get(key) ?? 0) + 1;
    this.#seen.set(key, n);
    const suffix = n === 1 ? '' : `-${n}`;
    return [`${c}-${s}${suffix}${this.#ext}`, `${s}-${c}${suffix}${this.#ext}`];
  }
}
