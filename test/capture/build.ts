/**
 * Test-only byte builders for pcap / pcapng, written straight from the format specs
 * (draft-ietf-opsawg-pcap, draft-ietf-opsawg-pcapng) and independent of src/capture/writer.ts,
 * so that files with features our writer never emits (big-endian, several sections, SPB, OPB,
 * odd resolutions, unknown blocks) can be fed to both our reader and tshark.
 */

export interface Opt {
  code: number;
  value: Buffer;
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

export class Bytes {
  private parts: Buffer[] = [];
  constructor(readonly le: boolean) {}
  u8(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    if (this.le) b.writeUInt16LE(v);
    else b.writeUInt16BE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    if (this.le) b.writeUInt32LE(v >>> 0);
    else b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    if (this.le) b.writeBigUInt64LE(BigInt.asUintN(64, v));
    else b.writeBigUInt64BE(BigInt.asUintN(64, v));
    this.parts.push(b);
    return this;
  }
  raw(b: Buffer): this {
    this.parts.push(Buffer.from(b));
    return this;
  }
  padTo4(): this {
    const n = this.length;
    if (n % 4) this.parts.push(Buffer.alloc(4 - (n % 4)));
    return this;
  }
  get length(): number {
    return this.parts.reduce((a, b) => a + b.length, 0);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export function options(le: boolean, opts: readonly Opt[]): Buffer {
  if (opts.length === 0) return Buffer.alloc(0);
  const w = new Bytes(le);
  for (const o of opts) w.u16(o.code).u16(o.value.length).raw(o.value).padTo4();
  w.u16(0).u16(0);
  return w.done();
}

/** A generic block: type, total length, body (padded), total length. */
export function block(le: boolean, type: number, body: Buffer): Buffer {
  const padded = Buffer.concat([body, Buffer.alloc(pad4(body.length) - body.length)]);
  const total = 12 + padded.length;
  return new Bytes(le).u32(type).u32(total).raw(padded).u32(total).done();
}

export function shb(le: boolean, opts: Opt[] = []): Buffer {
  const body = new Bytes(le).u32(0x1a2b3c4d).u16(1).u16(0).u64(-1n).raw(options(le, opts)).done();
  return block(le, 0x0a0d0d0a, body);
}

export function idb(le: boolean, linkType: number, snaplen: number, opts: Opt[] = []): Buffer {
  const body = new Bytes(le).u16(linkType).u16(0).u32(snaplen).raw(options(le, opts)).done();
  return block(le, 1, body);
}

export function tsresol(v: number): Opt {
  return { code: 9, value: Buffer.from([v]) };
}

export function tsoffset(le: boolean, sec: bigint): Opt {
  return { code: 14, value: new Bytes(le).u64(sec).done() };
}

export function comment(s: string): Opt {
  return { code: 1, value: Buffer.from(s, 'utf8') };
}

export function epb(le: boolean, ifid: number, ts: bigint, data: Buffer, origLen = data.length, opts: Opt[] = []): Buffer {
  const w = new Bytes(le).u32(ifid).u32(Number(ts >> 32n)).u32(Number(ts & 0xffffffffn)).u32(data.length).u32(origLen).raw(data).padTo4();
  return block(le, 6, w.raw(options(le, opts)).done());
}

export function opb(le: boolean, ifid: number, ts: bigint, data: Buffer, origLen = data.length, opts: Opt[] = []): Buffer {
  const w = new Bytes(le).u16(ifid).u16(0).u32(Number(ts >> 32n)).u32(Number(ts & 0xffffffffn)).u32(data.length).u32(origLen).raw(data).padTo4();
  return block(le, 2, w.raw(options(le, opts)).done());
}

export function spb(le: boolean, data: Buffer, origLen = data.length): Buffer {
  return block(le, 3, new Bytes(le).u32(origLen).raw(data).done());
}

/** Classic pcap file header. */
export function pcapHeader(le: boolean, nano: boolean, snaplen: number, linkType: number, major = 2): Buffer {
  return new Bytes(le).u32(nano ? 0xa1b23c4d : 0xa1b2c3d4).u16(major).u16(4).u32(0).u32(0).u32(snaplen).u32(linkType).done();
}

export function pcapRecord(le: boolean, sec: number, frac: number, data: Buffer, origLen = data.length): Buffer {
  return new Bytes(le).u32(sec).u32(frac).u32(data.length).u32(origLen).raw(data).done();
}
