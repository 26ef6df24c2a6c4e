#!/usr/bin/env bash
# Fetch the COLO test guest's inputs and build its initramfs (idempotent).
#
#   bash scripts/guest/fetch.sh [CACHE_DIR]      (default /var/cache/colo-proxy/guest)
#
# Downloads two Debian packages with `apt-get download` (the current cloud kernel, resolved
# through the linux-image-cloud-amd64 metapackage, and busybox-static), unpacks them with
# `dpkg-deb -x` into CACHE_DIR/root, then runs build-initramfs.sh. Everything lives outside
# the repository; nothing is installed on the host. Skips whatever is already present.
# Needs: apt-get/apt-cache/dpkg-deb (Debian), gzip. Writes CACHE_DIR/assets.env, which the
# test harness (test/helpers/colo-pair.ts) reads to find the kernel and initramfs.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${1:-${COLO_GUEST_DIR:-/var/cache/colo-proxy/guest}}
mkdir -p "$CACHE/debs" "$CACHE/root"

have_kernel() { ls "$CACHE"/root/boot/vmlinuz-* >/dev/null 2>&1; }
have_busybox() { [ -x "$CACHE/root/bin/busybox" ]; }

if ! have_kernel || ! have_busybox; then
  # apt-cache needs package lists; fetch them once if this machine has none yet.
  if ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
    apt-get update -qq
  fi
  # The metapackage depends on exactly one versioned image: that is "the current" kernel.
  KPKG=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -1)
  [ -n "$KPKG" ] || { echo "fetch.sh: cannot resolve linux-image-*-cloud-amd64 from linux-image-cloud-amd64" >&2; exit 1; }
  want=()
  have_kernel || want+=("$KPKG")
  have_busybox || want+=(busybox-static)
  # apt-get download writes into the current directory. As root it warns that the download
  # is unsandboxed (the _apt user cannot write here); that is harmless.
  (cd "$CACHE/debs" && apt-get download -qq "${want[@]}" 2>&1 | grep -v 'unsandboxed' >&2 || true)
  for p in "${want[@]}"; do
    deb=$(ls -t "$CACHE"/debs/"${p}"_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || { echo "fetch.sh: apt-get download $p produced no .deb in $CACHE/debs" >&2; exit 1; }
    dpkg-deb -x "$deb" "$CACHE/root"
  done
  rm -f "$CACHE"/debs/*.deb   # the unpacked tree is all we need
fi
have_kernel && have_busybox || { echo "fetch.sh: kernel or busybox missing after extraction in $CACHE/root" >&2; exit 1; }

"$HERE/build-initramfs.sh" "$CACHE"
