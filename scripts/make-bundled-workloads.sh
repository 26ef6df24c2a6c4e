#!/usr/bin/env bash
# Regenerates the bundled workloads (captures/workloads/*) from the bundled captures with
# `colo-proxy workload make`. Deterministic: same captures + this script → byte-identical
# files (test/cli/workload.test.ts checks the bundled ones against a fresh run).
#   http-identical  demo-http.pcapng, no divergence (compare must request no checkpoint)
#   bulk            bulk-tcp.pcapng (two ~1 MB-total bulk transfers), no divergence
#   http-diverge    demo-http.pcapng with one TCP divergence of each kind, each on its own
#                   connection (default choice: the first that fits and has none yet)
# All three with --rewrite-isn: the secondary's data in the primary's sequence space and its
# SYN-ACK with its own ISN, which is what QEMU's filter-rewriter makes of a real secondary and
# what QEMU's colo-compare needs (it compares by sequence number; without the rewriter it would
# checkpoint on almost every segment).
# Usage: scripts/make-bundled-workloads.sh [OUTROOT]   (default captures/workloads)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-captures/workloads}
cli() { node --import tsx src/cli/main.ts "$@"; }
# Capture paths stay relative to the project root: the manifests record them as given.
cli workload make captures/demo-http.pcapng --out "$out/http-identical" --seed 1 --rewrite-isn
cli workload make captures/bulk-tcp.pcapng --out "$out/bulk" --seed 1 --rewrite-isn
# http-diverge: the payload kinds on the earliest connections, the timeout kinds (missing,
# silent, late) on the last ones, and no UDP divergence (demo-http's datagrams come last):
# a checkpoint releases everything held, so a timeout kind followed within compare_timeout
# by another checkpoint would be resolved by it instead of being reported (docs/workload.md).
cli workload make captures/demo-http.pcapng --out "$out/http-diverge" --seed 1 --rewrite-isn \
  --diverge byte@300 \
  --diverge extra@10000+16 \
  --diverge missing@100+50 \
  --diverge silent@5000 \
  --diverge late@1000
