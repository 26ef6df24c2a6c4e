/**
 * QEMU chardev packet-stream framing: the constants and the header encoder shared by the
 * decoder (`decoder.ts`) and the writer (`writer.ts`).
 *
 * Wire format (qemu-colo-reference.md §2.1), one frame:
 * ```
 * u32 BE length         number of DATA bytes (excludes this field and the next)
 * [u32 BE vnet_hdr_len] only when the stream was configured with vnet_hdr_support=on
 * u8 data[length]       vnet header bytes (vnet_hdr_len of them) + Ethernet frame
 * ```
 * There is no magic, no version and no resynchronisation: both ends must agree on whether
 * the vnet field is present.
 */
import { NET_BUFSIZE } from '../packet/pool.js';

export { NET_BUFSIZE };

/** Bytes of the length field. */
export const LENGTH_FIELD_LEN = 4;
/** Bytes of the optional vnet_hdr_len field. */
export const VNET_FIELD_LEN = 4;
/**
 * Largest virtio-net header QEMU uses (`virtio_net_hdr_v1_hash`); colo-compare rejects larger
 * values, and so do we (at the framing layer, where the value is first seen).
 */
export const MAX_VNET_HDR_LEN = 20;
/** Default largest `length` accepted: QEMU's NET_BUFSIZE (69 632). */
export const DEFAULT_MAX_FRAME = NET_BUFSIZE;

/** Header size of one frame: 4 bytes, or 8 with the vnet field. */
export function frameHeaderLen(withVnet: boolean): number {
  return withVnet ? LENGTH_FIELD_LEN + VNET_FIELD_LEN : LENGTH_FIELD_LEN;
}

/**
 * Write a frame header at `out[off]` and return the offset just past it.
 *
 * `dataLen` is the number of data bytes that will follow (vnet header included);
 * `vnetHdrLen` is written only when `withVnet` is true. The caller guarantees room for
 * `frameHeaderLen(withVnet)` bytes; values are written big-endian without allocation.
 */
export function encodeFrameHeader(out: Uint8Array, off: number, dataLen: number, vnetHdrLen: number, withVnet: boolean): number {
  out[off] = dataLen >>> 24;
  out[off + 1] = (dataLen >>> 16) & 0xff;
  out[off + 2] = (dataLen >>> 8) & 0xff;
  out[off + 3] = dataLen & 0xff;
  if (!withVnet) return off + 4;
  out[off + 4] = vnetHdrLen >>> 24;
  out[off + 5] = (vnetHdrLen >>> 16) & 0xff;
  out[off + 6] = (vnetHdrLen >>> 8) & 0xff;
  out[off + 7] = vnetHdrLen & 0xff;
  return off + 8;
}
