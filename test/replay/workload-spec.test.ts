/**
 * `--diverge` spec text: every documented form parses to the typed spec and prints back the
 * same; malformed specs are refused with a message naming the spec and what is wrong.
 */
import { describe, expect, it } from 'vitest';
import { ColoError } from '../../src/errors.js';
import { formatDivergeSpec, LATE_DEFAULT_MS, parseDivergeSpec } from '../../src/replay/workload-spec.js';

const FLOW = '192.0.2.2:8080-192.0.2.1:33846/TCP';
const FLOW6 = '[2001:db8::2]:8080-[2001:db8::1]:44984/TCP';
const UFLOW = '192.0.2.2:7-192.0.2.1:39997/UDP';

describe('parseDivergeSpec', () => {
  const good: [string, unknown, string?][] = [
    ['byte@1000', { kind: 'byte', offset: 1000 }],
    [`byte@0:${FLOW}`, { kind: 'byte', offset: 0, flow: FLOW }],
    [`byte@7:${FLOW6}`, { kind: 'byte', offset: 7, flow: FLOW6 }],
    ['missing@2000+1448', { kind: 'missing', offset: 2000, length: 1448 }],
    [`extra@500+10:${FLOW}`, { kind: 'extra', offset: 500, length: 10, flow: FLOW }],
    ['late@0+3500', { kind: 'late', offset: 0, delayMs: 3500 }],
    ['late@10', { kind: 'late', offset: 10, delayMs: LATE_DEFAULT_MS }, `late@10+${LATE_DEFAULT_MS}`],
    ['silent@4000', { kind: 'silent', offset: 4000 }],
    ['udp#3', { kind: 'udp', index: 3 }],
    ['udp', { kind: 'udp', index: 0 }, 'udp#0'],
    [`udp#0:${UFLOW}`, { kind: 'udp', index: 0, flow: UFLOW }],
    [`byte@5:${FLOW}#2`, { kind: 'byte', offset: 5, flow: FLOW, incarnation: 2 }],
    [`missing@0+10:${FLOW6}#3`, { kind: 'missing', offset: 0, length: 10, flow: FLOW6, incarnation: 3 }],
    [`silent@9:${FLOW}#1`, { kind: 'silent', offset: 9, flow: FLOW }, `silent@9:${FLOW}`],
  ];
  for (const [text, spec, back] of good) {
    it(`parses ${text} and prints it back`, () => {
      expect(parseDivergeSpec(text)).toEqual(spec);
      expect(formatDivergeSpec(parseDivergeSpec(text))).toBe(back ?? text);
    });
  }

  const bad: [string, RegExp][] = [
    ['', /unknown kind/],
    ['flip@3', /unknown kind/],
    ['byte', /expected byte@OFF/],
    ['byte@', /expected byte@OFF/],
    ['byte@-1', /expected byte@OFF/],
    ['byte@1.5', /expected byte@OFF/],
    ['byte@1+2', /byte takes no \+N/],
    ['silent@1+2', /silent takes no \+N/],
    ['missing@5', /needs a length/],
    ['extra@5+0', /LEN must be an integer from 1/],
    ['late@5+0', /MS must be an integer from 1/],
    ['byte@99999999999', /OFF must be an integer/],
    [`byte@1:${UFLOW}`, /must be a TCP flow text/],
    [`udp#1:${FLOW}`, /must be a UDP flow text/],
    ['udp#x', /expected/],
    ['byte@1:', /expected byte@OFF/],
    [`byte@1:${FLOW}#0`, /incarnation #N must be an integer from 1/],
    [`byte@1:${FLOW}#x`, /must be a TCP flow text/],
  ];
  for (const [text, re] of bad) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      let err: unknown;
      try {
        parseDivergeSpec(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ColoError);
      expect((err as ColoError).code).toBe('ERR_INVALID_ARGUMENT');
      expect((err as Error).message).toContain(`"${text}"`);
      expect((err as Error).message).toMatch(re);
    });
  }
});
