import type { PacketView } from '../view.js';

/** Record a failed layer on the view and return the reason (so decoders `return fail(...)`). */
export function fail(v: PacketView, reason: number, layer: number): number {
  v.status = reason;
  v.stopLayer = layer;
  return reason;
}
