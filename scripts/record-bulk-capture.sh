#!/usr/bin/env bash
# Records captures/bulk-tcp.pcapng: a bulk transfer between real kernel TCP stacks in two
# network namespaces joined by a veth pair, captured by Wireshark's dumpcap on the server's
# interface (as record-demo-capture.sh does). Two connections: the client sends a short
# request, the server answers with 640 000 and 384 000 bytes of seeded pseudo-random data
# (nothing compresses it, every byte counts), then both close.
# GSO is limited to one segment per packet (gso_max_segs 1) so the capture shows wire-sized
# segments (MSS 1448) the way a VM's virtio NIC hands them to COLO's filters, not 64 KB
# super-packets. Needs root, iproute2, dumpcap (tshark package) and node. Traffic never
# leaves the namespaces: 192.0.2.0/24 is a documentation range.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/captures/bulk-tcp.pcapng}
tag=cpbulk$$
source "$root/scripts/lib/veth-pair.sh"
ip -n "$cli" link set vc gso_max_segs 1
ip -n "$srv" link set vs gso_max_segs 1
ip -n "$cli" link set vc up; ip -n "$srv" link set vs up

cat >"$tmp/bulk.mjs" <<'EOF'
// server: on each connection read one request line "GET N", answer N seeded bytes, close.
// client: two connections in turn, each reads to the end and checks the byte count.
import net from 'node:net';
const bytes = (n, seed) => {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
};
if (process.argv[2] === 'server') {
  let seed = 1;
  net.createServer((s) => {
    let req = '';
    s.on('data', (d) => {
      req += d;
      const m = /^GET (\d+)\n/.exec(req);
      if (m) s.end(bytes(Number(m[1]), seed++));
    });
  }).listen(9000, '192.0.2.2');
  process.on('SIGTERM', () => process.exit(0));
} else {
  for (const n of [640000, 384000]) {
    await new Promise((resolve, reject) => {
      let got = 0;
      const s = net.connect(9000, '192.0.2.2', () => s.write(`GET ${n}\n`));
      s.on('data', (d) => (got += d.length));
      s.on('end', () => (got === n ? resolve() : reject(new Error(`got ${got} of ${n} bytes`))));
      s.on('error', reject);
    });
  }
}
EOF

ip netns exec "$srv" dumpcap -q -i vs -w "$tmp/cap.pcapng" 2>"$tmp/dumpcap.log" & pids+=($!)
ip netns exec "$srv" node "$tmp/bulk.mjs" server & pids+=($!)
# Wait for dumpcap to start capturing and the server to listen.
for _ in $(seq 50); do grep -q "Capturing on" "$tmp/dumpcap.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
ip netns exec "$cli" node "$tmp/bulk.mjs" client
sleep 0.7
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
cp "$tmp/cap.pcapng" "$out"; chmod 644 "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)"
