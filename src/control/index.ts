/** Control plane: QMP client and the checkpoint controllers colo-compare drives. */
export * from './json.js';
export * from './qmp-client.js';
export * from './checkpoint.js';
export * from './qmp-checkpoint.js';
export * from './notify-dev.js';
export * from './shadow-checkpoint.js';
export * from './notify-protocol.js';
