import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (the folder holding package.json). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Shared reference captures: read in place, never copied into the project. */
export const SHARED_CAPTURES = resolve(ROOT, '..', 'shared', 'captures');
export const PCAPPP = resolve(SHARED_CAPTURES, 'pcapplusplus');
/** The project's own bundled captures. */
export const OWN_CAPTURES = resolve(ROOT, 'captures');

export function sharedCapture(name: string): string {
  return resolve(PCAPPP, name);
}
