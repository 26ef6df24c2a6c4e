import { describe, it, expect } from 'vitest';
import { ColoError } from '../../src/errors.js';
import { formatEndpoint, isLoopbackHost, parseEndpoint } from '../../src/wire/endpoint.js';
import type { Endpoint } from '../../src/wire/endpoint.js';

const good: Array<[string, Endpoint]> = [
  ['tcp:127.0.0.1:9003', { kind: 'tcp', host: '127.0.0.1', port: 9003, server: false }],
  ['tcp:127.0.0.1:9003,server', { kind: 'tcp', host: '127.0.0.1', port: 9003, server: true }],
  ['tcp:127.0.0.1:0,server=on', { kind: 'tcp', host: '127.0.0.1', port: 0, server: true }],
  ['tcp:localhost:1,server=off', { kind: 'tcp', host: 'localhost', port: 1, server: false }],
  ['tcp:primary.example:65535', { kind: 'tcp', host: 'primary.example', port: 65535, server: false }],
  ['tcp:10.0.0.2:9004', { kind: 'tcp', host: '10.0.0.2', port: 9004, server: false }],
  ['tcp:[::1]:9004,server', { kind: 'tcp', host: '::1', port: 9004, server: true }],
  ['tcp:[fe80::1]:9004', { kind: 'tcp', host: 'fe80::1', port: 9004, server: false }],
  ['tcp:127.0.0.1:9004,reconnect-ms=250', { kind: 'tcp', host: '127.0.0.1', port: 9004, server: false, reconnectMs: 250 }],
  ['tcp:127.0.0.1:9004,reconnect=1', { kind: 'tcp', host: '127.0.0.1', port: 9004, server: false, reconnectMs: 1000 }],
  ['unix:/tmp/x.sock', { kind: 'unix', path: '/tmp/x.sock', server: false }],
  ['unix:/tmp/x.sock,server', { kind: 'unix', path: '/tmp/x.sock', server: true }],
  ['unix:rel/x.sock,reconnect-ms=0', { kind: 'unix', path: 'rel/x.sock', server: false, reconnectMs: 0 }],
];

// [spec, text the message must contain (names the bad part)]
const bad: Array<[string, string]> = [
  ['', 'empty endpoint'],
  ['127.0.0.1:9003', 'unknown transport "127.0.0.1"'],
  ['localhost', 'missing transport prefix'],
  ['udp:127.0.0.1:9003', 'unknown transport "udp"'],
  ['tcp:127.0.0.1', 'missing ":PORT" in "127.0.0.1"'],
  ['tcp:127.0.0.1:', 'port "" is not a number'],
  ['tcp:127.0.0.1:http', 'port "http" is not a number'],
  ['tcp:127.0.0.1:65536', 'port 65536 is out of range'],
  ['tcp:127.0.0.1:-1', 'port "-1"'],
  ['tcp:127.0.0.1:0', 'port 0 is only valid for a listener'],
  ['tcp::9003', 'empty host'],
  ['tcp:bad_host!:9003', 'host "bad_host!"'],
  ['tcp:::1:9003', 'must be written in brackets'],
  ['tcp:[::1:9003', 'unterminated "["'],
  ['tcp:[127.0.0.1]:9003', '"127.0.0.1" in brackets is not an IPv6 address'],
  ['tcp:[::1]9003', 'expected ":PORT" after "[::1]"'],
  ['tcp:127.0.0.1:9003,sever', 'unknown option "sever"'],
  ['tcp:127.0.0.1:9003,server=yes', 'option "server=yes"'],
  ['tcp:127.0.0.1:9003,server,server', 'option "server" given twice'],
  ['tcp:127.0.0.1:9003,reconnect=soon', 'option "reconnect=soon"'],
  ['tcp:127.0.0.1:9003,reconnect-ms=1.5', 'option "reconnect-ms=1.5"'],
  ['tcp:127.0.0.1:9003,server,reconnect=5', '"reconnect" applies to clients only'],
  ['tcp:0.0.0.0:9003,server', 'refusing to listen on non-loopback host "0.0.0.0"'],
  ['tcp:[::]:9003,server', 'non-loopback host "::"'],
  ['tcp:10.0.0.1:9003,server', 'non-loopback host "10.0.0.1"'],
  ['tcp:primary.example:9003,server', 'non-loopback host "primary.example"'],
  ['unix:', 'empty unix socket path'],
  ['unix:,server', 'empty unix socket path'],
  [`unix:/${'a'.repeat(107)}`, '108 bytes, longer than the 107-byte limit'],
];

describe('parseEndpoint', () => {
  for (const [spec, want] of good) {
    it(`parses ${JSON.stringify(spec)}`, () => {
      expect(parseEndpoint(spec)).toEqual(want);
      // Canonical form round-trips.
      expect(parseEndpoint(formatEndpoint(want))).toEqual(want);
    });
  }
  for (const [spec, msg] of bad) {
    it(`rejects ${JSON.stringify(spec.length > 40 ? spec.slice(0, 40) + '…' : spec)}`, () => {
      let err: unknown;
      try {
        parseEndpoint(spec);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ColoError);
      expect((err as ColoError).code).toBe('ERR_INVALID_ARGUMENT');
      expect((err as Error).message).toContain(msg);
      expect((err as Error).message).toContain(`endpoint "${spec}"`);
    });
  }

  it('allows a non-loopback listener only with allowRemote', () => {
    expect(parseEndpoint('tcp:0.0.0.0:9003,server', { allowRemote: true })).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 9003, server: true });
    // Clients may connect anywhere without the flag.
    expect(parseEndpoint('tcp:10.0.0.1:9003').server).toBe(false);
  });

  it('formats IPv6 hosts in brackets', () => {
    expect(formatEndpoint({ kind: 'tcp', host: '::1', port: 5, server: true })).toBe('tcp:[::1]:5,server');
  });
});

describe('isLoopbackHost', () => {
  const cases: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['localhost', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['128.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['localhost.evil.example', false],
  ];
  for (const [h, want] of cases) it(`${h} → ${want}`, () => expect(isLoopbackHost(h)).toBe(want));
});
