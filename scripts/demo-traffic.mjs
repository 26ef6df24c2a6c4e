#!/usr/bin/env node
// Traffic for the bundled demo capture (see record-demo-capture.sh). Runs inside the
// namespaces that script creates; every address is a documentation address inside them.
//   node demo-traffic.mjs server   → HTTP on :8080 (v4 + v6), UDP echo on :7
//   node demo-traffic.mjs client   → HTTP GETs over v4, v6 and a small-MSS route, UDP, ICMP echo
import http from 'node:http';
import dgram from 'node:dgram';
import { createRequire } from 'node:module';

const role = process.argv[2];
const body = (n) => Buffer.from(Array.from({ length: n }, (_, i) => String.fromCharCode(97 + (i % 26))).join(''));

if (role === 'server') {
  const srv = http.createServer((req, res) => {
    const size = Number(new URL(req.url, 'http://x').searchParams.get('size') ?? '512');
    res.setHeader('content-type', 'text/plain');
    res.end(body(Math.min(size, 200_000)));
  });
  srv.keepAliveTimeout = 500;
  srv.listen(8080, '::');
  const u4 = dgram.createSocket('udp4').bind(7, '0.0.0.0');
  const u6 = dgram.createSocket({ type: 'udp6', ipv6Only: true }).bind(7, '::');
  for (const u of [u4, u6]) u.on('message', (m, r) => u.send(m, r.port, r.address));
  process.on('SIGTERM', () => process.exit(0));
} else if (role === 'client') {
  const get = (host, path, agent) =>
    new Promise((resolve, reject) => {
      http.get({ host, port: 8080, path, agent }, (res) => {
        let n = 0;
        res.on('data', (d) => (n += d.length));
        res.on('end', () => resolve(n));
      }).on('error', reject);
    });
  const keep = new http.Agent({ keepAlive: true, maxSockets: 1 });
  await get('192.0.2.2', '/index.html?size=300', keep);
  await get('192.0.2.2', '/big?size=60000', keep);
  keep.destroy();
  await get('192.0.2.2', '/small?size=100');
  await get('2001:db8::2', '/v6?size=20000');
  await get('198.51.100.2', '/small-mss?size=5000');
  // UDP echo, IPv4 and IPv6.
  for (const [fam, host] of [['udp4', '192.0.2.2'], ['udp6', '2001:db8::2']]) {
    const s = dgram.createSocket(fam);
    await new Promise((resolve) => {
      s.on('message', () => { s.close(); resolve(); });
      s.send(Buffer.from(`colo-proxy demo datagram over ${fam}`), 7, host);
    });
  }
  // ICMP echo through raw-socket (a project dependency); the kernel answers.
  const raw = createRequire(import.meta.url)('raw-socket');
  const sock = raw.createSocket({ protocol: raw.Protocol.ICMP });
  const echo = Buffer.from('0800000013370001636f6c6f2d70726f787920706964', 'hex');
  raw.writeChecksum(echo, 2, raw.createChecksum(echo));
  await new Promise((resolve, reject) => {
    sock.on('message', () => { sock.close(); resolve(); });
    sock.send(echo, 0, echo.length, '192.0.2.2', (err) => err && reject(err));
  });
} else {
  console.error('usage: demo-traffic.mjs server|client');
  process.exit(2);
}
