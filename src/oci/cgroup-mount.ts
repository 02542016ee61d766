/**
 * A `cgroup` mount in config.json on a host with cgroup v1 hierarchies
 * (v1 or hybrid), as runc makes it without a cgroup namespace: a tmpfs at
 * the destination, in it one bind of each v1 hierarchy's directory of the
 * container's own cgroup (named as the hierarchy's mount point is), and a
 * symlink per controller of a merged hierarchy (cpu -> cpu,cpuacct). So
 * that /sys/fs/cgroup/memory in the container is its own memory cgroup, as
 * software written for runc expects. On a unified (v2 only) host, or with a
 * cgroup namespace, the shim mounts the namespace's own view instead.
 */
import { readFileSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import type { Cgroup } from '../cgroup/apply';
import type { OciMount } from './config';
import { MOUNT_ATTR, MOUNT_FLAGS as F } from './mount-options';

interface V1Hierarchy {
  mountpoint: string;
  /** the root of the hierarchy this mount shows */
  root: string;
  /** its controllers, or name=NAME for a named one */
  controllers: string[];
}

/** The v1 hierarchies mounted here (fstype cgroup, not cgroup2), from mountinfo. */
export function v1Hierarchies(mountinfo: string): V1Hierarchy[] {
  const out: V1Hierarchy[] = [];
  const seen = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const [fstype, , superOpts] = post.split(' ');
    if (fstype !== 'cgroup' || !f[3] || !f[4] || !superOpts) continue;
    const controllers = superOpts.split(',').filter((o) => o !== 'rw' && o !== 'ro' && !o.startsWith('release_agent=') && o !== 'clone_children' && o !== 'noprefix' && o !== 'xattr' && o !== 'cpuset_v2_mode');
    const mountpoint = unescape(f[4]);
    // One bind per hierarchy, at its first mount point, as runc's GetCgroupMounts.
    const key = controllers.sort().join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ mountpoint, root: unescape(f[3]), controllers });
  }
  return out;
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** A process's cgroup per v1 hierarchy, by its controllers as /proc/PID/cgroup lists them. */
export function ownCgroups(procCgroup: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of procCgroup.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m && m[1]) out.set(m[1].split(',').sort().join(','), m[2]!);
  }
  return out;
}

export interface CgroupMountPlan {
  mounts: OciMount[];
  /** [target, link path] pairs, link paths absolute in the container */
  links: [string, string][];
}

/** The mounts and links that stand for one `cgroup` mount on a v1 host; the container's cgroup where it has one in a hierarchy, else the caller's (as runc's init, placed there, sees it). */
export function cgroupV1Mount(m: OciMount, cg: Cgroup | null, hierarchies: readonly V1Hierarchy[], own: Map<string, string>): CgroupMountPlan {
  const mounts: OciMount[] = [{
    destination: m.destination, type: 'tmpfs', source: 'tmpfs', flags: F.MS_NOSUID | F.MS_NOEXEC | F.MS_NODEV, propagation: m.propagation, attr: 0, data: 'mode=755',
  }];
  const attr = (m.flags & F.MS_RDONLY ? MOUNT_ATTR.RDONLY : 0) | (m.flags & F.MS_NOSUID ? MOUNT_ATTR.NOSUID : 0) |
    (m.flags & F.MS_NODEV ? MOUNT_ATTR.NODEV : 0) | (m.flags & F.MS_NOEXEC ? MOUNT_ATTR.NOEXEC : 0);
  const links: [string, string][] = [];
  for (const h of hierarchies) {
    const mine = cg?.dirs.find((d) => d.version === 1 && d.mountpoint === h.mountpoint)?.dir;
    const path = own.get([...h.controllers].sort().join(','));
    const source = mine ?? (path === undefined ? h.mountpoint : join(h.mountpoint, posix.relative(h.root, path)));
    const name = basename(h.mountpoint);
    mounts.push({ destination: posix.join(m.destination, name), type: 'bind', source, flags: F.MS_BIND | F.MS_REC, propagation: m.propagation, attr, data: '' });
    if (name.includes(',')) for (const c of name.split(',')) links.push([name, posix.join(m.destination, c)]);
  }
  return { mounts, links };
}

/** Whether this host has v1 hierarchies to show (v1 or hybrid), read once. */
export function hostV1Hierarchies(): V1Hierarchy[] {
  try {
    return v1Hierarchies(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return [];
  }
}

export function callerCgroups(): Map<string, string> {
  try {
    return ownCgroups(readFileSync('/proc/self/cgroup', 'utf8'));
  } catch {
    return new Map();
  }
}
