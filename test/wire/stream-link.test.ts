import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamLink } from '../../src/wire/stream-link.js';
import { parseEndpoint } from '../../src/wire/endpoint.js';
import { until } from './frames.js';

let dir = '';
let server: Server | null = null;
afterEach(async () => {
  if (server !== null) await new Promise<void>((r) => server!.close(() => r()));
  server = null;
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
  dir = '';
});

/** A unix server that sends `data` to each peer and closes; a StreamLink client reading it. */
async function readAll(data: Buffer, readBuffer?: number): Promise<{ bytes: Buffer; backing: Set<ArrayBufferLike>; reads: number; disconnects: number }> {
  dir = mkdtempSync(join(tmpdir(), 'colo-link-'));
  const path = join(dir, 'l.sock');
  server = createServer((s) => s.end(data));
  await new Promise<void>((r) => server!.listen(path, () => r()));
  const parts: Buffer[] = [];
  const backing = new Set<ArrayBufferLike>();
  let disconnects = 0;
  const link = new StreamLink({
    endpoint: parseEndpoint(`unix:${path}`),
    reconnect: false,
    backoff: { initialMs: 10, maxMs: 10, factor: 1 },
    ...(readBuffer !== undefined ? { readBuffer } : {}),
    onConnected: () => {},
    onData: (chunk) => {
      backing.add(chunk.buffer);
      parts.push(Buffer.from(chunk)); // copy: the chunk may be a view of a reused buffer
    },
    onDisconnected: () => disconnects++,
  });
  await link.start();
  await until(() => disconnects === 1, 5000, 'peer close');
  await link.close();
  return { bytes: Buffer.concat(parts), backing, reads: parts.length, disconnects };
}

describe('StreamLink readBuffer (client reads into one reused buffer)', () => {
  const data = Buffer.alloc(1_000_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;

  it('delivers every byte in order, all reads in the same buffer, and sees the peer close', async () => {
    const r = await readAll(data, 4096);
    expect(r.bytes.equals(data)).toBe(true);
    expect(r.reads).toBeGreaterThan(1);
    expect(r.backing.size).toBe(1);
  });

  it('(control) without it, reads arrive in fresh buffers', async () => {
    const r = await readAll(data);
    expect(r.bytes.equals(data)).toBe(true);
    expect(r.reads).toBeGreaterThan(1);
    expect(r.backing.size).toBeGreaterThan(1);
  });

  it('rejects a bad readBuffer size', () => {
    expect(
      () =>
        new StreamLink({
          endpoint: parseEndpoint('unix:/tmp/x.sock'),
          backoff: { initialMs: 10, maxMs: 10, factor: 1 },
          readBuffer: 0,
          onConnected: () => {},
          onData: () => {},
          onDisconnected: () => {},
        }),
    ).toThrow(/readBuffer/);
  });
});
