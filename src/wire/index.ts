/** QEMU chardev packet-stream framing, endpoints and framed connections. */
export * from './framing.js';
export * from './decoder.js';
export * from './writer.js';
export * from './endpoint.js';
export * from './stream-link.js';
export * from './connection.js';
