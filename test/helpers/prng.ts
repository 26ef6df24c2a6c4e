/** The project's seeded PRNG, for tests (one implementation: src/util/prng.ts). */
export { mulberry32 } from '../../src/util/prng.js';
