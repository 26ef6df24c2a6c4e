/**
 * The pacing flags, one set for every command that replays frames (`replay`, `bench replay`),
 * tcpreplay style: `--topspeed`, `--multiplier X`, `--pps N`, or `--pace SPEC` with the
 * pacer's grammar (topspeed, realtime | capture, xFACTOR | multiplier:FACTOR, pps:RATE). At most
 * one of them; none → the command's default.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { ColoError } from '../errors.js';
import { parsePace, type PaceMode } from '../replay/pacer.js';
import type { PaceOptions } from '../replay/feed.js';

export interface PaceFlags {
  topspeed?: boolean;
  /** Checked by paceFromFlags (so a bad value is one clear error line, like every other). */
  pace?: string;
  multiplier?: number;
  pps?: number;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number > 0, got "${value}"`);
  return n;
}

/** Add the pacing flags to `cmd`; `defaultText` says in --help what none of them means. */
export function addPaceOptions(cmd: Command, defaultText: string): Command {
  return cmd
    .option('--topspeed', `as fast as the receiver accepts${defaultText === 'topspeed' ? ' (the default)' : ''}`)
    .option('--pace <spec>', `topspeed, realtime or capture (the capture's own timing), xFACTOR or multiplier:FACTOR, pps:RATE (default: ${defaultText})`)
    .option('--multiplier <x>', 'capture timing × X (2 = twice as fast); same as --pace xX', positiveNumber)
    .option('--pps <n>', 'primary frames per second, ignoring capture timing; same as --pace pps:N', positiveNumber);
}

/** The one pace the flags ask for, or `fallback` when none is given. */
export function paceFromFlags(o: PaceFlags, fallback: PaceMode): PaceMode {
  const given = [o.topspeed === true, o.pace !== undefined, o.multiplier !== undefined, o.pps !== undefined].filter(Boolean).length;
  if (given > 1) throw new ColoError('ERR_INVALID_ARGUMENT', 'give at most one of --topspeed, --pace, --multiplier, --pps');
  if (o.topspeed === true) return { kind: 'topspeed' };
  if (o.pace !== undefined) {
    try {
      return parsePace(o.pace.trim().toLowerCase() === 'capture' ? 'realtime' : o.pace);
    } catch (e) {
      throw new ColoError('ERR_INVALID_ARGUMENT', `--pace: ${(e as Error).message}`);
    }
  }
  if (o.multiplier !== undefined) return { kind: 'multiplier', factor: o.multiplier };
  if (o.pps !== undefined) return { kind: 'pps', rate: o.pps };
  return fallback;
}

/** A pace mode as the lockstep feeder's options. */
export function feedPace(p: PaceMode): PaceOptions {
  if (p.kind === 'multiplier') return { speed: p.factor };
  if (p.kind === 'pps') return { pps: p.rate };
  return {};
}
