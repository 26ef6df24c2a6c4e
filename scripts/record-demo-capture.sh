#!/usr/bin/env bash
# Records captures/demo-http.pcapng: real kernel TCP/UDP/ICMP stacks in two network namespaces
# joined by a veth pair, captured by Wireshark's dumpcap. (This kernel has no 802.1Q device
# support, so VLAN-tagged traffic comes from the shared many-protocols.pcap instead.)
# Needs root, iproute2, dumpcap (tshark package) and node. Traffic never leaves the namespaces:
# 192.0.2.0/24, 198.51.100.0/24 (a small-MSS route) and 2001:db8::/64 are documentation ranges.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/captures/demo-http.pcapng}
tag=cpdemo$$
source "$root/scripts/lib/veth-pair.sh"
ip -n "$cli" addr add 2001:db8::1/64 dev vc nodad; ip -n "$srv" addr add 2001:db8::2/64 dev vs nodad
ip -n "$cli" link set vc up; ip -n "$srv" link set vs up
ip -n "$cli" route add 198.51.100.0/24 dev vc advmss 536
ip -n "$srv" addr add 198.51.100.2/24 dev vs
ip netns exec "$srv" dumpcap -q -i vs -w "$tmp/cap.pcapng" 2>"$tmp/dumpcap.log" & pids+=($!)
ip netns exec "$srv" node "$root/scripts/demo-traffic.mjs" server & pids+=($!)
# Wait for dumpcap to start capturing and the server to listen.
for _ in $(seq 50); do grep -q "Capturing on" "$tmp/dumpcap.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
ip netns exec "$cli" node "$root/scripts/demo-traffic.mjs" client
sleep 0.7
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
cp "$tmp/cap.pcapng" "$out"; chmod 644 "$out"
echo "wrote $out"
