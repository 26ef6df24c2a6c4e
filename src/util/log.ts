/**
 * Structured logging: one JSON object per line on stderr (stdout stays for command output).
 * Cheap when a level is off: callers pass a plain object only when `enabled(level)` says so on
 * hot paths; nothing here formats until a line is really written.
 */
export const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LEVELS;

export interface Logger {
  enabled(level: LogLevel): boolean;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(bindings: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go (default: process.stderr). */
  write?: (line: string) => void;
  bindings?: Record<string, unknown>;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const min = LEVELS[opts.level ?? envLevel()];
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const bindings = opts.bindings ?? {};
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (LEVELS[level] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...bindings, ...fields }, jsonSafe) + '\n');
  };
  return {
    enabled: (level) => LEVELS[level] >= min,
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (b) => createLogger({ level: levelName(min), write, bindings: { ...bindings, ...b } }),
  };
}

function envLevel(): LogLevel {
  const v = process.env['COLO_LOG_LEVEL'];
  return v !== undefined && v in LEVELS ? (v as LogLevel) : 'info';
}

function levelName(n: number): LogLevel {
  for (const [k, v] of Object.entries(LEVELS)) if (v === n) return k as LogLevel;
  return 'info';
}

/** Errors and bigints serialise readably instead of as `{}` or a throw. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as Error & { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code !== undefined ? { code } : {}) };
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}
