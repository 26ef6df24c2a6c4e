/**
 * A scripted notify_dev peer (the checkpoint-controller side of reference §2.2) for tests:
 * a raw unix socket that records every byte it receives and writes whatever the test says.
 * Message encoding here is built by hand from the wire layout (BE32 length [+ BE32 vnet
 * length] + ASCII), independently of src/.
 */
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';

/** `[u32 BE len][bytes]`, or `[u32 BE len][u32 BE vnetLen][bytes]` with `vnet`. */
export function frameMsg(text: string, vnet = false, vnetLen = 0): Buffer {
  const body = Buffer.from(text, 'latin1');
  const h = Buffer.alloc(vnet ? 8 : 4);
  h.writeUInt32BE(body.length, 0);
  if (vnet) h.writeUInt32BE(vnetLen, 4);
  return Buffer.concat([h, body]);
}

/** Split a plain-framed byte string into its messages (throws on a partial tail). */
export function splitMsgs(b: Buffer): string[] {
  const out: string[] = [];
  let off = 0;
  while (off < b.length) {
    if (b.length - off < 4) throw new Error(`partial header at ${off}`);
    const n = b.readUInt32BE(off);
    if (b.length - off - 4 < n) throw new Error(`partial message at ${off}`);
    out.push(b.toString('latin1', off + 4, off + 4 + n));
    off += 4 + n;
  }
  return out;
}

export class NotifyPeer {
  /** Everything received on the current connection. */
  rx: Buffer = Buffer.alloc(0);
  connections = 0;
  #sock: Socket | null = null;
  #server: Server | null = null;

  /** Listen on `path` (the controller connects to us). */
  static async listen(path: string): Promise<NotifyPeer> {
    const p = new NotifyPeer();
    const server = createServer((s) => p.#attach(s));
    p.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    return p;
  }

  /** Connect to a listening controller (or QEMU chardev) at `path`. */
  static async connect(path: string): Promise<NotifyPeer> {
    const p = new NotifyPeer();
    const s = connect({ path });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('error', reject);
    });
    p.#attach(s);
    return p;
  }

  get connected(): boolean {
    return this.#sock !== null;
  }

  write(b: Buffer): void {
    if (this.#sock === null) throw new Error('peer not connected');
    this.#sock.write(b);
  }

  /** Write one byte at a time, yielding between bytes. */
  async writeSlowly(b: Buffer): Promise<void> {
    for (let i = 0; i < b.length; i++) {
      this.write(b.subarray(i, i + 1));
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  messages(): string[] {
    return splitMsgs(this.rx);
  }

  drop(): void {
    this.#sock?.destroy();
  }

  async close(): Promise<void> {
    this.#sock?.destroy();
    const s = this.#server;
    this.#server = null;
    if (s !== null) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  #attach(s: Socket): void {
    this.connections++;
    this.#sock?.destroy();
    this.#sock = s;
    this.rx = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      if (this.#sock === s) this.rx = Buffer.concat([this.rx, d]);
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (this.#sock === s) this.#sock = null;
    });
  }
}
