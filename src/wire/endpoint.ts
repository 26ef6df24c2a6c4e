/**
 * Endpoint strings in the style of QEMU's socket chardev, used as CLI options:
 *
 * ```
 * tcp:HOST:PORT           connect to HOST:PORT (client)
 * tcp:HOST:PORT,server    listen on HOST:PORT (one peer at a time)
 * tcp:[::1]:PORT          IPv6 hosts go in brackets
 * unix:PATH[,server]      unix stream socket
 * ```
 * Options after the address: `server` (= `server=on`), `server=on|off`,
 * `reconnect=SECONDS` (client reconnect delay, as QEMU's chardev up to 9.1) or
 * `reconnect-ms=MS` (as QEMU 9.2+).
 *
 * Listeners default to loopback: a non-loopback listen address is refused unless the caller
 * passes `allowRemote` — the chardev stream carries guest traffic unauthenticated.
 */
import { isIP } from 'node:net';
import { ColoError } from '../errors.js';

export interface TcpEndpoint {
  kind: 'tcp';
  host: string;
  port: number;
  server: boolean;
  /** Client reconnect delay in ms, when given in the string. */
  reconnectMs?: number;
}

export interface UnixEndpoint {
  kind: 'unix';
  path: string;
  server: boolean;
  reconnectMs?: number;
}

export type Endpoint = TcpEndpoint | UnixEndpoint;

export interface ParseEndpointOptions {
  /** Permit a listener on a non-loopback address. */
  allowRemote?: boolean;
}

/** Longest unix socket path (sun_path is 108 bytes including the terminating NUL). */
export const MAX_UNIX_PATH = 107;

function bad(spec: string, what: string): ColoError {
  return new ColoError('ERR_INVALID_ARGUMENT', `endpoint "${spec}": ${what}`);
}

/** True for 127.0.0.0/8, ::1, ::ffff:127.x.y.z and the name "localhost". */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    if (h === '::1' || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(h)) return true;
    const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return m !== null && m[1]!.startsWith('127.');
  }
  return false;
}

/**
 * Parse an endpoint string. Throws ColoError ERR_INVALID_ARGUMENT naming the bad part of the
 * string (cold path: configuration only).
 */
export function parseEndpoint(spec: string, options: ParseEndpointOptions = {}): Endpoint {
  if (typeof spec !== 'string' || spec.length === 0) throw bad(String(spec), 'empty endpoint; expected tcp:HOST:PORT[,server] or unix:PATH[,server]');
  const colon = spec.indexOf(':');
  if (colon < 0) throw bad(spec, 'missing transport prefix; expected "tcp:" or "unix:"');
  const transport = spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  if (transport !== 'tcp' && transport !== 'unix') {
    throw bad(spec, `unknown transport "${transport}"; expected "tcp" or "unix"`);
  }
  // Options follow the first comma; unix paths with commas are not supported (as in QEMU).
  const parts = rest.split(',');
  const addr = parts[0]!;
  let server = false;
  let reconnectMs: number | undefined;
  const seen = new Set<string>();
  for (const opt of parts.slice(1)) {
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    const val = eq < 0 ? undefined : opt.slice(eq + 1);
    if (seen.has(key)) throw bad(spec, `option "${key}" given twice`);
    seen.add(key);
    if (key === 'server') {
      if (val === undefined || val === 'on') server = true;
      else if (val === 'off') server = false;
      else throw bad(spec, `option "server=${val}": expected on or off`);
    } else if (key === 'reconnect') {
      // Seconds, like QEMU's socket chardev (reconnect=1 in the COLO docs).
      if (val === undefined || !/^\d{1,6}$/.test(val)) throw bad(spec, `option "${opt}": expected reconnect=SECONDS`);
      reconnectMs = Number(val) * 1000;
    } else if (key === 'reconnect-ms') {
      if (val === undefined || !/^\d{1,9}$/.test(val)) throw bad(spec, `option "${opt}": expected reconnect-ms=MILLISECONDS`);
      reconnectMs = Number(val);
    } else {
      throw bad(spec, `unknown option "${opt}" (known: server, server=on|off, reconnect=SECONDS, reconnect-ms=MS)`);
    }
  }
  if (server && reconnectMs !== undefined) throw bad(spec, 'option "reconnect" applies to clients only, not with "server"');

  if (transport === 'unix') {
    if (addr.length === 0) throw bad(spec, 'empty unix socket path');
    if (Buffer.byteLength(addr) > MAX_UNIX_PATH) {
      throw bad(spec, `unix socket path is ${Buffer.byteLength(addr)} bytes, longer than the ${MAX_UNIX_PATH}-byte limit`);
    }
    if (addr.includes('\0')) throw bad(spec, 'unix socket path contains a NUL byte');
    const ep: UnixEndpoint = { kind: 'unix', path: addr, server };
    if (reconnectMs !== undefined) ep.reconnectMs = reconnectMs;
    return ep;
  }

  let host: string;
  let portStr: string;
  if (addr.startsWith('[')) {
    const close = addr.indexOf(']');
    if (close < 0) throw bad(spec, `unterminated "[" in host "${addr}"`);
    host = addr.slice(1, close);
    if (isIP(host) !== 6) throw bad(spec, `"${host}" in brackets is not an IPv6 address`);
    if (addr[close + 1] !== ':') throw bad(spec, `expected ":PORT" after "[${host}]"`);
    portStr = addr.slice(close + 2);
  } else {
    const pc = addr.lastIndexOf(':');
    if (pc < 0) throw bad(spec, `missing ":PORT" in "${addr}"`);
    host = addr.slice(0, pc);
    portStr = addr.slice(pc + 1);
    if (host.includes(':')) throw bad(spec, `IPv6 host "${host}" must be written in brackets, e.g. tcp:[${host}]:${portStr}`);
    if (host.length === 0) throw bad(spec, 'empty host');
    if (isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(host)) {
      throw bad(spec, `host "${host}" is neither an IP address nor a valid host name`);
    }
  }
  if (!/^\d{1,5}$/.test(portStr)) throw bad(spec, `port "${portStr}" is not a number 0-65535`);
  const port = Number(portStr);
  if (port > 65535) throw bad(spec, `port ${port} is out of range 0-65535`);
  if (port === 0 && !server) throw bad(spec, 'port 0 is only valid for a listener (",server")');
  if (server && !options.allowRemote && !isLoopbackHost(host)) {
    throw bad(spec, `refusing to listen on non-loopback host "${host}" (pass allowRemote to permit it)`);
  }
  const ep: TcpEndpoint = { kind: 'tcp', host, port, server };
  if (reconnectMs !== undefined) ep.reconnectMs = reconnectMs;
  return ep;
}

/** The canonical string form of an endpoint (round-trips through `parseEndpoint`). */
export function formatEndpoint(ep: Endpoint): string {
  const opts = (ep.server ? ',server' : '') + (ep.reconnectMs !== undefined ? `,reconnect-ms=${ep.reconnectMs}` : '');
  if (ep.kind === 'unix') return `unix:${ep.path}${opts}`;
  const host = isIP(ep.host) === 6 ? `[${ep.host}]` : ep.host;
  return `tcp:${host}:${ep.port}${opts}`;
}
