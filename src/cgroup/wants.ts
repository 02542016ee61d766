/**
 * Whether a run asks for a cgroup at all: the one check made on every
 * `tsns run`, so it loads nothing else (the cgroup machinery is loaded
 * only when asked for; see lazy.ts).
 */
import type { CgroupLimitOptions, LinuxResources } from './resources';

export interface CgroupRunOptions extends CgroupLimitOptions {
  /** where tsns makes the command's cgroup: an absolute path from each hierarchy's root, a relative one from the caller's cgroup */
  cgroupParent?: string;
  /** an existing cgroup the command joins as it is (no limits with it; tsns neither makes nor removes it) */
  cgroupPath?: string;
  /** where the cgroup cannot be made (no permission, a controller missing), run without limits and say so */
  cgroupOptional?: boolean;
  /** OCI linux.resources, for programs; the limit options win where both say something */
  resources?: LinuxResources;
}

export const LIMIT_KEYS = ['memory', 'memorySwap', 'memoryReservation', 'pidsLimit', 'cpus', 'cpuShares', 'cpuQuota', 'cpuPeriod', 'cpusetCpus', 'cpusetMems', 'blkioWeight'] as const;

/** Whether any of podman's/docker's limit flags is given. */
export function hasLimitOptions(o: CgroupLimitOptions): boolean {
  return LIMIT_KEYS.some((k) => o[k] !== undefined);
}

/** Whether a resource set asks for anything at all. */
export function isEmptyResources(r: LinuxResources): boolean {
  return Object.values(r).every((v) => v === undefined || (typeof v === 'object' && v !== null && Object.keys(v).length === 0));
}

export function wantsCgroup(o: CgroupRunOptions): boolean {
  return hasLimitOptions(o) || o.cgroupParent !== undefined || o.cgroupPath !== undefined || (o.resources !== undefined && !isEmptyResources(o.resources));
}
