/**
 * A `cgroup` mount in config.json on a host with cgroup v1 hierarchies
 * (v1 or hybrid), as runc 1.1 makes it (mountCgroupV1): a tmpfs at the
 * destination, in it one directory per v1 hierarchy (named as the
 * hierarchy's mount point is), and a symlink per controller of a merged
 * hierarchy (cpu -> cpu,cpuacct). Without a cgroup namespace each is a bind
 * of the hierarchy's directory of the container's own cgroup, so that
 * /sys/fs/cgroup/memory in the container is its own memory cgroup, as
 * software written for runc expects; with one, a mount of the hierarchy
 * itself, which the kernel shows from the namespace's root. runc shows no
 * cgroup2 hierarchy there (a hybrid host's unified/). On a unified (v2
 * only) host the shim mounts the namespace's own cgroup2 view instead.
 *
 * The hierarchies and our own cgroup in each come from src/cgroup's
 * layout (detectLayout), the one reader of mountinfo and /proc/self/cgroup.
 */
import { basename, posix } from 'node:path';
import type { Cgroup } from '../cgroup/apply';
import type { CgroupLayout } from '../cgroup/detect';
import type { OciMount } from './config';
import { MOUNT_ATTR, MOUNT_FLAGS as F } from './mount-options';

export interface CgroupMountPlan {
  mounts: OciMount[];
  /** [target, link path] pairs, link paths absolute in the container */
  links: [string, string][];
}

/** Whether the layout has v1 hierarchies to show (v1 or hybrid). */
export function hasV1(layout: CgroupLayout): boolean {
  return layout.hierarchies.some((h) => h.version === 1);
}

/**
 * The mounts and links that stand for one `cgroup` mount on a v1 host.
 * Binds (no cgroup namespace): the container's cgroup where it has one in a
 * hierarchy, else the caller's (as runc's init, placed there, sees it).
 * Mounts (`cgroupns`): runc's, the mount point's name as the options (so
 * `cpu,cpuacct`), `systemd` as the named hierarchy `name=systemd`, with
 * nosuid, nodev, noexec, and ro from the config's mount.
 */
export function cgroupV1Mount(m: OciMount, cg: Cgroup | null, layout: CgroupLayout, cgroupns: boolean): CgroupMountPlan {
  const hidden = F.MS_NOSUID | F.MS_NOEXEC | F.MS_NODEV;
  const mounts: OciMount[] = [{
    destination: m.destination, type: 'tmpfs', source: 'tmpfs', flags: hidden, propagation: m.propagation, attr: 0, recAttr: 0, data: 'mode=755',
  }];
  const attr = (m.flags & F.MS_RDONLY ? MOUNT_ATTR.RDONLY : 0) | (m.flags & F.MS_NOSUID ? MOUNT_ATTR.NOSUID : 0) |
    (m.flags & F.MS_NODEV ? MOUNT_ATTR.NODEV : 0) | (m.flags & F.MS_NOEXEC ? MOUNT_ATTR.NOEXEC : 0);
  const links: [string, string][] = [];
  for (const h of layout.hierarchies) {
    if (h.version !== 1) continue;
    const name = basename(h.mountpoint);
    const destination = posix.join(m.destination, name);
    if (cgroupns) {
      const systemd = name === 'systemd';
      mounts.push({
        destination, type: 'cgroup', source: systemd ? 'systemd' : 'cgroup', flags: hidden | (m.flags & F.MS_RDONLY), propagation: 0, attr: 0, recAttr: 0,
        data: systemd ? 'name=systemd' : name,
      });
    } else {
      const mine = cg?.dirs.find((d) => d.version === 1 && d.mountpoint === h.mountpoint)?.dir;
      mounts.push({ destination, type: 'bind', source: mine ?? h.ownDir ?? h.mountpoint, flags: F.MS_BIND | F.MS_REC, propagation: m.propagation, attr, recAttr: 0, data: '' });
    }
    if (name.includes(',')) for (const c of name.split(',')) links.push([name, posix.join(m.destination, c)]);
  }
  return { mounts, links };
}
