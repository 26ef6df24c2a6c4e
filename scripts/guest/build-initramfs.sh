#!/usr/bin/env bash
# Build the COLO test guest's initramfs from the packages fetch.sh unpacked.
#
#   bash scripts/guest/build-initramfs.sh [CACHE_DIR]   (default /var/cache/colo-proxy/guest)
#
# Output: CACHE_DIR/initramfs.cpio.gz and CACHE_DIR/assets.env (KERNEL=, INITRD=, STAMP=).
# Rebuilt only when this script changed (its sha256 is the stamp) or an input is missing.
#
# The guest (1 vCPU, virtio-net, no disk) runs only busybox:
#   - eth0 gets the address from the kernel command line: colo.ip=ADDR/PREFIX
#   - HTTP on :80 (busybox httpd), CGIs:
#       /cgi-bin/counter  "counter=N\n"; N counts requests to the CGIs. Deterministic: the
#                          primary and secondary VMs answer byte-identically while in sync.
#       /cgi-bin/time     "counter=N uptime=SECONDS\n" from /proc/uptime: differs between VMs.
#   - TCP echo on :7
#   - prints "COLO-GUEST-READY ip=..." on the serial console once serving.
# The archive is written with busybox's own cpio (newc), so the host needs no cpio package.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${1:-${COLO_GUEST_DIR:-/var/cache/colo-proxy/guest}}
SRC=$CACHE/root
OUT=$CACHE/initramfs.cpio.gz
ENVF=$CACHE/assets.env
STAMP=$(sha256sum "$HERE/build-initramfs.sh" | cut -c1-16)

KVER=$(ls "$SRC/lib/modules" 2>/dev/null | sort -V | tail -1)
KERNEL=$SRC/boot/vmlinuz-$KVER
BUSYBOX=$SRC/bin/busybox
[ -n "$KVER" ] && [ -f "$KERNEL" ] && [ -x "$BUSYBOX" ] ||
  { echo "build-initramfs.sh: no kernel/busybox under $SRC; run scripts/guest/fetch.sh first" >&2; exit 1; }

if [ -f "$OUT" ] && [ -f "$ENVF" ] && grep -qx "STAMP=$STAMP" "$ENVF" && grep -qx "KERNEL=$KERNEL" "$ENVF"; then
  echo "guest assets up to date: $ENVF"
  exit 0
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/colo-initramfs.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W"/{bin,dev,proc,sys,tmp,etc,www/cgi-bin,modules}
cp "$BUSYBOX" "$W/bin/busybox"

# --- kernel modules: virtio_net + virtio_pci and their dependencies, in load order ---------
# The unpacked package has no modules.dep (depmod never ran), so read each module's own
# "depends=" entry from its .modinfo section.
MODDIR=$SRC/lib/modules/$KVER/kernel
declare -A KO DONE
while IFS= read -r f; do b=${f##*/}; KO[${b%.ko}]=$f; done < <(find "$MODDIR" -name '*.ko')
ORDER=()
add_mod() {
  local name=${1//-/_} dep deps
  [ -n "${DONE[$name]:-}" ] && return 0
  DONE[$name]=1
  [ -n "${KO[$name]:-}" ] || { echo "build-initramfs.sh: module $name not found under $MODDIR" >&2; exit 1; }
  deps=$(tr '\0' '\n' < "${KO[$name]}" | sed -n 's/^depends=//p' | head -1)
  for dep in ${deps//,/ }; do add_mod "$dep"; done
  ORDER+=("$name")
}
add_mod virtio_pci
add_mod virtio_net
for m in "${ORDER[@]}"; do cp "${KO[$m]}" "$W/modules/$m.ko"; done
echo "${ORDER[*]}" > "$W/modules/order"

echo 'root:x:0:0:root:/:/bin/sh' > "$W/etc/passwd"
echo 'root:x:0:' > "$W/etc/group"

cat > "$W/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc none /proc
mount -t sysfs none /sys
mount -t devtmpfs none /dev
for m in $(cat /modules/order); do insmod /modules/$m.ko || echo "colo-guest: insmod $m failed"; done

addr=
for arg in $(cat /proc/cmdline); do
  case $arg in colo.ip=*) addr=${arg#colo.ip=} ;; esac
done
[ -n "$addr" ] || echo "colo-guest: no colo.ip= on the kernel command line"
i=0
while [ ! -d /sys/class/net/eth0 ] && [ $i -lt 100 ]; do usleep 50000; i=$((i + 1)); done
ip link set lo up
[ -n "$addr" ] && ip addr add "$addr" dev eth0
ip link set eth0 up

echo 0 > /tmp/requests
cat > /www/index.html <<HTML
colo test guest $addr
HTML
# Both CGIs bump one request counter kept in guest RAM: it moves identically on both VMs.
cat > /www/cgi-bin/counter <<'CGI'
#!/bin/sh
n=$(($(cat /tmp/requests) + 1)); echo $n > /tmp/requests
printf 'Content-Type: text/plain\r\n\r\ncounter=%d\n' $n
CGI
cat > /www/cgi-bin/time <<'CGI'
#!/bin/sh
n=$(($(cat /tmp/requests) + 1)); echo $n > /tmp/requests
read up idle < /proc/uptime
printf 'Content-Type: text/plain\r\n\r\ncounter=%d uptime=%s\n' $n "$up"
CGI
chmod 755 /www/cgi-bin/counter /www/cgi-bin/time
httpd -p 80 -h /www
# -ll: keep listening after each client; every connection gets its own cat.
nc -ll -p 7 -e /bin/cat &
read up idle < /proc/uptime
echo "COLO-GUEST-READY ip=$addr uptime=$up"
while :; do sleep 3600; done
INIT
chmod 755 "$W/init"

(cd "$W" && find . | sort | "$BUSYBOX" cpio -o -H newc -R 0:0 2>/dev/null | gzip -9n) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
printf 'KERNEL=%s\nINITRD=%s\nKVER=%s\nSTAMP=%s\n' "$KERNEL" "$OUT" "$KVER" "$STAMP" > "$ENVF"
echo "built $OUT ($(stat -c %s "$OUT") bytes; modules: ${ORDER[*]})"
