/**
 * The colo-compare engine stage: see engine.ts and docs/compare.md.
 */
export { CompareEngine } from './engine.js';
export type { CompareAccounting, CompareEngineOptions } from './engine.js';
export { ControllerPort, ShadowCheckpointPort } from './checkpoint-port.js';
export type { CheckpointPort, CheckpointTarget } from './checkpoint-port.js';
export { DIVERGENCE_CAUSES } from './divergence.js';
export type { AlignmentRule, DivergenceCause, DivergenceRecord, DivergenceSide } from './divergence.js';
export { DEFAULT_COMPARE_LIMITS, DEFAULT_COMPARE_TIMEOUT_MS, DEFAULT_EXPIRED_SCAN_CYCLE_MS, resolveCompareLimits } from './limits.js';
export type { CompareLimits } from './limits.js';
export type { CompareStatsSnapshot, ReanchorBy, ReleasedBy } from './stats.js';
