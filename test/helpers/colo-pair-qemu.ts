/**
 * QEMU command lines of the COLO pair harness (the shared lab's step-3 layout, written from
 * QEMU's documented COLO options; no block replication).
 *
 * Primary (no colo-compare: an external process takes its place on the same sockets):
 *   filter-mirror  m0      queue=tx  outdev=mirror0     client->guest frames, copied to the SVM
 *   filter-redirector redire0 queue=rx indev=compare_out  frames the proxy releases -> tap
 *   filter-redirector redire1 queue=rx outdev=compare0    guest output -> the proxy
 *   every chardev is a QEMU server (wait=off): mirror0 :9003, compare0 :9001, compare_out :9005
 * Secondary:
 *   filter-redirector f1 queue=tx indev=red0   (red0 connects to the primary's :9003)
 *   filter-redirector f2 queue=rx outdev=red1  (red1 connects to the proxy's :9004)
 *   filter-rewriter rew0 queue=all
 *   -incoming tcp:127.0.0.2:9998
 * Both run the same guest (kernel + initramfs, 1 vCPU, virtio-net with the same MAC) and get
 * two QMP monitors each: the harness's own and a public one.
 */

/** Fixed addresses inside the pair's private namespace (its own loopback, its own bridge). */
export const PAIR_NET = {
  /** "Primary host" loopback address. */
  primaryHost: '127.0.0.1',
  /** "Secondary host" loopback address (migration target). */
  secondaryHost: '127.0.0.2',
  /** Client side: the bridge that holds the primary's tap (RFC 5737 TEST-NET-1). */
  clientIp: '192.0.2.1',
  /** The guest (both VMs use it; only the primary's tap is bridged). */
  guestIp: '192.0.2.2',
  prefixLen: 24,
  guestMac: '52:54:00:c0:10:02',
  ports: { primaryIn: 9001, mirror: 9003, secondaryIn: 9004, outdev: 9005, migration: 9998 },
} as const;

export interface GuestArgs {
  name: 'primary' | 'secondary';
  kernel: string;
  initrd: string;
  memMb: number;
  serialPath: string;
  harnessQmp: string;
  publicQmp: string;
  tap: string;
  vnet: boolean;
}

/** Arguments both VMs share. Identical machines are what makes the migration stream load. */
function guestArgs(g: GuestArgs): string[] {
  const append = `console=ttyS0 quiet panic=-1 ipv6.disable=1 colo.ip=${PAIR_NET.guestIp}/${PAIR_NET.prefixLen}`;
  return [
    '-accel', 'tcg',
    '-machine', 'pc',
    '-m', String(g.memMb),
    '-smp', '1',
    // debug-threads names the migration thread "live_migration": the shim keys on that name.
    '-name', `${g.name},debug-threads=on`,
    '-nodefaults', '-display', 'none', '-no-reboot',
    '-kernel', g.kernel, '-initrd', g.initrd, '-append', append,
    '-serial', `file:${g.serialPath}`,
    '-qmp', `unix:${g.harnessQmp},server=on,wait=off`,
    '-qmp', `unix:${g.publicQmp},server=on,wait=off`,
    '-netdev', `tap,id=hn0,ifname=${g.tap},script=no,downscript=no,vhost=off,vnet_hdr=${g.vnet ? 'on' : 'off'}`,
    '-device', `virtio-net-pci,netdev=hn0,mac=${PAIR_NET.guestMac},romfile=`,
  ];
}

function sock(id: string, host: string, port: number, server: boolean): string[] {
  const mode = server ? 'server=on,wait=off' : 'reconnect=1';
  return ['-chardev', `socket,id=${id},host=${host},port=${port},${mode}`];
}

/** The primary QEMU: paused (-S) until COLO starts, so the guest boots under COLO. */
export function primaryArgs(g: GuestArgs): string[] {
  const v = g.vnet ? ',vnet_hdr_support=on' : '';
  const h = PAIR_NET.primaryHost;
  const p = PAIR_NET.ports;
  return [
    ...guestArgs(g),
    ...sock('mirror0', h, p.mirror, true),
    ...sock('compare0', h, p.primaryIn, true),
    ...sock('compare_out', h, p.outdev, true),
    '-object', `filter-mirror,id=m0,netdev=hn0,queue=tx,outdev=mirror0${v}`,
    '-object', `filter-redirector,id=redire0,netdev=hn0,queue=rx,indev=compare_out${v}`,
    '-object', `filter-redirector,id=redire1,netdev=hn0,queue=rx,outdev=compare0${v}`,
    '-S',
  ];
}

/** The secondary QEMU, waiting for the primary's migration stream. */
export function secondaryArgs(g: GuestArgs): string[] {
  const v = g.vnet ? ',vnet_hdr_support=on' : '';
  const h = PAIR_NET.primaryHost;
  const p = PAIR_NET.ports;
  return [
    ...guestArgs(g),
    ...sock('red0', h, p.mirror, false),
    ...sock('red1', h, p.secondaryIn, false),
    '-object', `filter-redirector,id=f1,netdev=hn0,queue=tx,indev=red0${v}`,
    '-object', `filter-redirector,id=f2,netdev=hn0,queue=rx,outdev=red1${v}`,
    '-object', `filter-rewriter,id=rew0,netdev=hn0,queue=all${v}`,
    '-incoming', `tcp:${PAIR_NET.secondaryHost}:${p.migration}`,
  ];
}
