/**
 * Address formatting: RFC 5952 examples by hand, the WHATWG URL IPv6 serializer (same
 * compression rules) as oracle for random addresses; real-capture addresses are also checked
 * against tshark in tshark.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatEndpoint, formatIP, formatIPv4, formatIPv6, formatMac } from '../../src/packet/index.js';
import { ip6, u8 } from './build.js';

const v6 = (full: string) => formatIPv6(u8(ip6(full)), 0);

describe('formatIPv6 (RFC 5952)', () => {
  it('follows the RFC 5952 §4 rules', () => {
    expect(v6('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1'); // §4.1 leading zeros, §4.2.1 longest
    expect(v6('2001:0db8:0000:0001:0001:0001:0001:0001')).toBe('2001:db8:0:1:1:1:1:1'); // §4.2.2 lone zero kept
    expect(v6('2001:0000:0000:0001:0000:0000:0000:0001')).toBe('2001:0:0:1::1'); // §4.2.3 longest run wins
    expect(v6('2001:0db8:0000:0000:0001:0000:0000:0001')).toBe('2001:db8::1:0:0:1'); // §4.2.3 leftmost on tie
    expect(v6('2001:0DB8:00AB:CDEF:0000:0000:0000:0000')).toBe('2001:db8:ab:cdef::'); // §4.3 lowercase; trailing run
    expect(v6('0000:0000:0000:0000:0000:0000:0000:0000')).toBe('::');
    expect(v6('0000:0000:0000:0000:0000:0000:0000:0001')).toBe('::1');
    expect(v6('0001:0000:0000:0000:0000:0000:0000:0000')).toBe('1::');
    expect(v6('fe80:0000:0000:0000:021f:f3ff:fecd:f617')).toBe('fe80::21f:f3ff:fecd:f617');
  });

  it('writes IPv4-mapped addresses in mixed notation (§5)', () => {
    expect(v6('0000:0000:0000:0000:0000:ffff:c000:0201')).toBe('::ffff:192.0.2.1');
    // Not mapped: the prefix must be exactly ::ffff:0:0/96.
    expect(v6('0000:0000:0000:0000:0001:ffff:c000:0201')).toBe('::1:ffff:c000:201');
  });

  it('agrees with the WHATWG URL serializer on random addresses', () => {
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.nat(0xffff), fc.nat(0xf));
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (g) => {
        fc.pre(!(g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff));
        const bytes = u8(g.flatMap((x) => [x >>> 8, x & 0xff]));
        const full = g.map((x) => x.toString(16)).join(':');
        const oracle = new URL(`http://[${full}]/`).hostname.slice(1, -1);
        expect(formatIPv6(bytes, 0)).toBe(oracle);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('other formatters', () => {
  const buf = u8([0xff, 192, 0, 2, 1, 0x02, 0x0a, 0xbc, 0x00, 0xde, 0xf0]);
  it('formats IPv4 at an offset', () => {
    expect(formatIPv4(buf, 1)).toBe('192.0.2.1');
    expect(formatIP(buf, 1, 4)).toBe('192.0.2.1');
  });
  it('formats MACs lowercase with leading zeros', () => {
    expect(formatMac(buf, 5)).toBe('02:0a:bc:00:de:f0');
  });
  it('formats endpoints with brackets for IPv6', () => {
    expect(formatEndpoint(buf, 1, 4, 80)).toBe('192.0.2.1:80');
    const a = u8(ip6('2001:0db8:0000:0000:0000:0000:0000:0001'));
    expect(formatEndpoint(a, 0, 16, 443)).toBe('[2001:db8::1]:443');
    expect(formatIP(a, 0, 16)).toBe('2001:db8::1');
  });
});
