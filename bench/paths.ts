/** Where benchmarks find their inputs, from bench/ (tsx) and dist/bench/ (built) alike. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Project root: the nearest ancestor with package.json. */
export function projectRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('project root not found');
    d = up;
  }
  return d;
}

/** The shared PcapPlusPlus captures, read in place beside the project. */
export function sharedCapturesDir(): string {
  return join(projectRoot(), '..', 'shared', 'captures', 'pcapplusplus');
}
