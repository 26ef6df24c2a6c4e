import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addPaceOptions, feedPace, paceFromFlags, type PaceFlags } from '../../src/cli/pace-options.js';

/** Parse argv with only the pacing flags, as a command sees them. */
function flags(argv: string[]): PaceFlags {
  const cmd = addPaceOptions(new Command('t').exitOverride(), 'topspeed');
  cmd.parse(argv, { from: 'user' });
  return cmd.opts<PaceFlags>();
}

describe('pacing flags (one set for replay and bench replay)', () => {
  const fallback = { kind: 'topspeed' } as const;
  it('each flag, and the --pace grammar, give the pace asked for', () => {
    expect(paceFromFlags(flags([]), fallback)).toEqual({ kind: 'topspeed' });
    expect(paceFromFlags(flags([]), { kind: 'multiplier', factor: 1 })).toEqual({ kind: 'multiplier', factor: 1 });
    expect(paceFromFlags(flags(['--topspeed']), { kind: 'multiplier', factor: 1 })).toEqual({ kind: 'topspeed' });
    expect(paceFromFlags(flags(['--multiplier', '2.5']), fallback)).toEqual({ kind: 'multiplier', factor: 2.5 });
    expect(paceFromFlags(flags(['--pps', '1000']), fallback)).toEqual({ kind: 'pps', rate: 1000 });
    expect(paceFromFlags(flags(['--pace', 'capture']), fallback)).toEqual({ kind: 'multiplier', factor: 1 });
    expect(paceFromFlags(flags(['--pace', 'x4']), fallback)).toEqual({ kind: 'multiplier', factor: 4 });
    expect(paceFromFlags(flags(['--pace', 'pps:20']), fallback)).toEqual({ kind: 'pps', rate: 20 });
  });

  it('refuses two at once and malformed values, naming the problem', () => {
    expect(() => paceFromFlags(flags(['--topspeed', '--pps', '5']), fallback)).toThrow(/at most one of --topspeed, --pace, --multiplier, --pps/);
    expect(() => paceFromFlags(flags(['--pace', 'fast']), fallback)).toThrow(/--pace: bad pace "fast"/);
    expect(() => flags(['--multiplier', '0'])).toThrow(/number > 0/);
    expect(() => flags(['--pps', '-3'])).toThrow();
  });

  it('maps to the lockstep feeder options', () => {
    expect(feedPace({ kind: 'topspeed' })).toEqual({});
    expect(feedPace({ kind: 'multiplier', factor: 2 })).toEqual({ speed: 2 });
    expect(feedPace({ kind: 'pps', rate: 7 })).toEqual({ pps: 7 });
  });
});
