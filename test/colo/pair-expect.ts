/** Assertions shared by the real-COLO-pair test files. */
import { existsSync } from 'node:fs';
import { expect } from 'vitest';
import { leftoverPairNamespaces, pidAlive } from '../helpers/colo-pair.js';
import type { ColoPair, DisposeReport } from '../helpers/colo-pair.js';

/** GET /cgi-bin/counter from the client side and expect `counter=N`; returns the latency (ms). */
export async function expectCounter(pair: ColoPair, n: number): Promise<number> {
  const r = await pair.httpGet('/cgi-bin/counter');
  expect(r.error).toBeUndefined();
  expect(r.status).toBe(200);
  expect(r.body).toBe(`counter=${n}\n`);
  return r.ms;
}

/** Nothing the pair started survives dispose: PIDs, processes in the namespace, namespace, dir. */
export function expectClean(pair: ColoPair, report: DisposeReport): void {
  expect(report.pids.length).toBeGreaterThanOrEqual(3);
  expect(report.pids.filter(pidAlive)).toEqual([]);
  expect(report.strays).toEqual([]);
  expect(report.netnsGone).toBe(true);
  expect(leftoverPairNamespaces()).not.toContain(pair.netns);
  expect(report.dirGone).toBe(true);
  expect(existsSync(pair.dir)).toBe(false);
}
