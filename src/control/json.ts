/**
 * Narrowing helpers for JSON received from QMP: everything parsed arrives as `unknown` and is
 * checked here before use, so a surprising reply is a typed error, never a crash further on.
 */

/** A JSON object (not null, not an array). */
export type JsonObject = Record<string, unknown>;

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `o[key]` when it is a finite number, else undefined. */
export function numberField(o: JsonObject, key: string): number | undefined {
  const v = o[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** `o[key]` when it is a string, else undefined. */
export function stringField(o: JsonObject, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' ? v : undefined;
}

/** `o[key]` when it is an object, else undefined. */
export function objectField(o: JsonObject, key: string): JsonObject | undefined {
  const v = o[key];
  return isJsonObject(v) ? v : undefined;
}

/** `o[key]` when it is an array of strings, else undefined. */
export function stringArrayField(o: JsonObject, key: string): string[] | undefined {
  const v = o[key];
  if (!Array.isArray(v)) return undefined;
  const out: string[] = [];
  for (const x of v) {
    if (typeof x !== 'string') return undefined;
    out.push(x);
  }
  return out;
}
