# Sourced by the capture-recording scripts: two network namespaces ($cli, $srv) joined by a
# veth pair (vc 02:00:00:00:00:01 192.0.2.1 ↔ vs 02:00:00:00:00:02 192.0.2.2), a temp dir
# ($tmp), a pids array, and a cleanup trap that kills those PIDs and deletes both namespaces.
# Interfaces are created straight inside the namespaces: none ever exists in the host's.
# Usage: tag=NAME; source scripts/lib/veth-pair.sh
cli=$tag-c; srv=$tag-s
pids=()
tmp=$(mktemp -d)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$cli" 2>/dev/null || true
  ip netns del "$srv" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$cli"; ip netns add "$srv"
ip link add vc netns "$cli" type veth peer name vs netns "$srv"
ip -n "$cli" link set vc address 02:00:00:00:00:01
ip -n "$srv" link set vs address 02:00:00:00:00:02
for ns in "$cli" "$srv"; do ip -n "$ns" link set lo up; done
ip -n "$cli" addr add 192.0.2.1/24 dev vc; ip -n "$srv" addr add 192.0.2.2/24 dev vs
