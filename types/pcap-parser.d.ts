// Minimal typings for pcap-parser 0.2.1 (used only as an independent oracle in tests).
declare module 'pcap-parser' {
  import type { EventEmitter } from 'node:events';
  import type { Readable } from 'node:stream';
  export interface PcapGlobalHeader {
    magicNumber: number; majorVersion: number; minorVersion: number;
    gmtOffset: number; timestampAccuracy: number; snapshotLength: number; linkLayerType: number;
  }
  export interface PcapPacketHeader {
    timestampSeconds: number; timestampMicroseconds: number; capturedLength: number; originalLength: number;
  }
  export interface PcapPacket { header: PcapPacketHeader; data: Buffer }
  export interface Parser extends EventEmitter {
    on(event: 'globalHeader', cb: (h: PcapGlobalHeader) => void): this;
    on(event: 'packet', cb: (p: PcapPacket) => void): this;
    on(event: 'end', cb: () => void): this;
    on(event: 'error', cb: (e: Error) => void): this;
  }
  export function parse(input: string | Readable): Parser;
  const _default: { parse: typeof parse };
  export default _default;
}
