/**
 * A real kernel TCP workload for the lossy relay, run in the client and server namespaces:
 *
 *   node --import tsx test/helpers/relay-workload.ts server HOST PORT SEED DOWN_BYTES
 *   node --import tsx test/helpers/relay-workload.ts client HOST PORT SEED CONNS UP_BYTES
 *
 * Each connection carries traffic both ways at once: the client sends a 4-byte connection id
 * then UP_BYTES of a deterministic pattern; the server, once it has the id, sends DOWN_BYTES
 * of another pattern and closes its side. Each receiver hashes exactly what arrived. The
 * server prints `{"listening":true}` and then one JSON line per finished connection; the
 * client prints one JSON line with all its connections when every one is done.
 */
import { createHash } from 'node:crypto';
import { createConnection, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { pattern } from './relay-pattern.js';

export interface ConnResult {
  id: number;
  recvBytes: number;
  recvSha: string;
  ms: number;
  error?: string;
}

/** Write `data` in 16 KiB pieces, honouring backpressure. */
async function sendAll(sock: Socket, data: Buffer): Promise<void> {
  for (let off = 0; off < data.length; off += 16384) {
    if (!sock.write(data.subarray(off, Math.min(off + 16384, data.length)))) {
      await new Promise<void>((r) => sock.once('drain', () => r()));
    }
  }
}

function server(host: string, port: number, seed: number, down: number): void {
  // Half-open: each side keeps sending after the peer's FIN (both directions run at once).
  const srv = createServer({ allowHalfOpen: true }, (sock) => {
    const t0 = Date.now();
    const hash = createHash('sha256');
    let head = Buffer.alloc(0);
    let id = -1;
    let bytes = 0;
    sock.on('data', (d: Buffer) => {
      if (id < 0) {
        head = Buffer.concat([head, d]);
        if (head.length < 4) return;
        id = head.readUInt32BE(0);
        const rest = head.subarray(4);
        hash.update(rest);
        bytes += rest.length;
        void sendAll(sock, pattern(seed, id, 'down', down)).then(() => sock.end());
        return;
      }
      hash.update(d);
      bytes += d.length;
    });
    sock.on('end', () => {
      const r: ConnResult = { id, recvBytes: bytes, recvSha: hash.digest('hex'), ms: Date.now() - t0 };
      process.stdout.write(JSON.stringify({ conn: r }) + '\n');
    });
    sock.on('error', (e) => process.stdout.write(JSON.stringify({ conn: { id, recvBytes: bytes, recvSha: '', ms: 0, error: e.message } }) + '\n'));
  });
  srv.listen(port, host, () => process.stdout.write(JSON.stringify({ listening: true }) + '\n'));
  process.on('SIGTERM', () => process.exit(0));
}

function oneClient(host: string, port: number, seed: number, id: number, up: number): Promise<ConnResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const hash = createHash('sha256');
    let bytes = 0;
    const sock = createConnection({ host, port, allowHalfOpen: true }, () => {
      const idb = Buffer.alloc(4);
      idb.writeUInt32BE(id);
      sock.write(idb);
      void sendAll(sock, pattern(seed, id, 'up', up)).then(() => sock.end());
    });
    sock.on('data', (d: Buffer) => {
      hash.update(d);
      bytes += d.length;
    });
    sock.on('close', () => resolve({ id, recvBytes: bytes, recvSha: hash.digest('hex'), ms: Date.now() - t0 }));
    sock.on('error', (e) => resolve({ id, recvBytes: bytes, recvSha: '', ms: Date.now() - t0, error: e.message }));
  });
}

async function client(host: string, port: number, seed: number, conns: number, up: number): Promise<void> {
  const results = await Promise.all(Array.from({ length: conns }, (_, id) => oneClient(host, port, seed, id, up)));
  process.stdout.write(JSON.stringify({ conns: results }) + '\n');
}

const [mode, host, portS, seedS, a, b] = process.argv.slice(2);
if (mode === 'server') server(host!, Number(portS), Number(seedS), Number(a));
else if (mode === 'client') void client(host!, Number(portS), Number(seedS), Number(a), Number(b));
