/**
 * A mount's `options` as runc reads them: the mount(2) flags, the
 * propagation, the recursive attributes of a bind (rro, rnosuid ...), and
 * the rest, which is the filesystem's own data (mode=755, size=64k ...).
 */
import type { Node } from './check';

export const MOUNT_FLAGS = {
  MS_RDONLY: 0x1, MS_NOSUID: 0x2, MS_NODEV: 0x4, MS_NOEXEC: 0x8, MS_SYNCHRONOUS: 0x10, MS_REMOUNT: 0x20, MS_MANDLOCK: 0x40,
  MS_DIRSYNC: 0x80, MS_NOATIME: 0x400, MS_NODIRATIME: 0x800, MS_BIND: 0x1000, MS_REC: 0x4000, MS_SILENT: 0x8000,
  MS_UNBINDABLE: 0x20000, MS_PRIVATE: 0x40000, MS_SLAVE: 0x80000, MS_SHARED: 0x100000, MS_RELATIME: 0x200000,
  MS_I_VERSION: 0x800000, MS_STRICTATIME: 0x1000000, MS_LAZYTIME: 0x2000000,
} as const;
const F = MOUNT_FLAGS;

export const MOUNT_ATTR = { RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8 } as const;

/** [set, clear] */
const FLAG_OPTIONS: Record<string, [number, number]> = {
  ro: [F.MS_RDONLY, 0], rw: [0, F.MS_RDONLY], nosuid: [F.MS_NOSUID, 0], suid: [0, F.MS_NOSUID], nodev: [F.MS_NODEV, 0], dev: [0, F.MS_NODEV],
  noexec: [F.MS_NOEXEC, 0], exec: [0, F.MS_NOEXEC], sync: [F.MS_SYNCHRONOUS, 0], async: [0, F.MS_SYNCHRONOUS], dirsync: [F.MS_DIRSYNC, 0],
  remount: [F.MS_REMOUNT, 0], mand: [F.MS_MANDLOCK, 0], nomand: [0, F.MS_MANDLOCK], noatime: [F.MS_NOATIME, 0], atime: [0, F.MS_NOATIME],
  nodiratime: [F.MS_NODIRATIME, 0], diratime: [0, F.MS_NODIRATIME], bind: [F.MS_BIND, 0], rbind: [F.MS_BIND | F.MS_REC, 0],
  relatime: [F.MS_RELATIME, 0], norelatime: [0, F.MS_RELATIME], strictatime: [F.MS_STRICTATIME, 0], nostrictatime: [0, F.MS_STRICTATIME],
  silent: [F.MS_SILENT, 0], loud: [0, F.MS_SILENT], iversion: [F.MS_I_VERSION, 0], noiversion: [0, F.MS_I_VERSION],
  lazytime: [F.MS_LAZYTIME, 0], nolazytime: [0, F.MS_LAZYTIME], defaults: [0, 0],
};

const PROPAGATION: Record<string, number> = {
  private: F.MS_PRIVATE, rprivate: F.MS_PRIVATE | F.MS_REC, shared: F.MS_SHARED, rshared: F.MS_SHARED | F.MS_REC,
  slave: F.MS_SLAVE, rslave: F.MS_SLAVE | F.MS_REC, unbindable: F.MS_UNBINDABLE, runbindable: F.MS_UNBINDABLE | F.MS_REC,
};

/** runc 1.1's recursive attributes: [set, clear] of MOUNT_ATTR_* */
const RECURSIVE: Record<string, [number, number]> = {
  rro: [MOUNT_ATTR.RDONLY, 0], rrw: [0, MOUNT_ATTR.RDONLY], rnosuid: [MOUNT_ATTR.NOSUID, 0], rsuid: [0, MOUNT_ATTR.NOSUID],
  rnodev: [MOUNT_ATTR.NODEV, 0], rdev: [0, MOUNT_ATTR.NODEV], rnoexec: [MOUNT_ATTR.NOEXEC, 0], rexec: [0, MOUNT_ATTR.NOEXEC],
};

const UNSUPPORTED: Record<string, string> = {
  idmap: 'idmapped mounts are not supported by tsns-oci', ridmap: 'idmapped mounts are not supported by tsns-oci',
  tmpcopyup: 'tmpcopyup (copying the image\'s files into a tmpfs) is not supported by tsns-oci',
};

export interface MountOptions {
  flags: number;
  propagation: number;
  /** MOUNT_ATTR_* for a bind mount, applied with mount_setattr to its own mount only (even an rbind's), as runc's remount */
  attr: number;
  /** MOUNT_ATTR_* of rro, rnosuid ...: applied to the bind's mount and every mount below it */
  recAttr: number;
  data: string;
}

export function mountOptions(n: Node): MountOptions {
  let flags = 0;
  let propagation = 0;
  let attr = 0;
  let recAttr = 0;
  const data: string[] = [];
  for (const o of n.array()) {
    const opt = o.str();
    if (UNSUPPORTED[opt]) o.fail(`not supported: ${UNSUPPORTED[opt]}`);
    const f = FLAG_OPTIONS[opt];
    const r = RECURSIVE[opt];
    if (f) flags = (flags | f[0]) & ~f[1];
    else if (PROPAGATION[opt] !== undefined) propagation |= PROPAGATION[opt];
    else if (r) recAttr = (recAttr | r[0]) & ~r[1];
    else data.push(opt);
  }
  if (flags & F.MS_BIND) {
    // What a bind cannot take at once: set afterwards, as runc's remount does, on the top mount alone
    // (an rbind of /sys leaves /sys/fs/cgroup and the others below as they were).
    attr |= (flags & F.MS_RDONLY ? MOUNT_ATTR.RDONLY : 0) | (flags & F.MS_NOSUID ? MOUNT_ATTR.NOSUID : 0) |
      (flags & F.MS_NODEV ? MOUNT_ATTR.NODEV : 0) | (flags & F.MS_NOEXEC ? MOUNT_ATTR.NOEXEC : 0);
    flags &= F.MS_BIND | F.MS_REC;
  }
  return { flags, propagation, attr, recAttr, data: data.join(',') };
}
