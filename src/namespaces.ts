/** THE namespace table: every other module derives from it. */
export interface NamespaceInfo {
  /** long option and RunOptions key */
  readonly name: NamespaceName;
  readonly short: string;
  /** CLONE_NEW* value */
  readonly flag: number;
  readonly flagName: string;
  /** entry in /proc/PID/ns */
  readonly proc: string;
}

export type NamespaceName = 'mount' | 'uts' | 'ipc' | 'net' | 'pid' | 'user' | 'cgroup' | 'time';

// Order matters: it is the order of --dry-run output and of `readlink /proc/self/ns/*` checks.
export const NAMESPACES: readonly NamespaceInfo[] = [
  { name: 'mount', short: 'm', flag: 0x00020000, flagName: 'CLONE_NEWNS', proc: 'mnt' },
  { name: 'uts', short: 'u', flag: 0x04000000, flagName: 'CLONE_NEWUTS', proc: 'uts' },
  { name: 'ipc', short: 'i', flag: 0x08000000, flagName: 'CLONE_NEWIPC', proc: 'ipc' },
  { name: 'net', short: 'n', flag: 0x40000000, flagName: 'CLONE_NEWNET', proc: 'net' },
  { name: 'pid', short: 'p', flag: 0x20000000, flagName: 'CLONE_NEWPID', proc: 'pid' },
  { name: 'user', short: 'U', flag: 0x10000000, flagName: 'CLONE_NEWUSER', proc: 'user' },
  { name: 'cgroup', short: 'C', flag: 0x02000000, flagName: 'CLONE_NEWCGROUP', proc: 'cgroup' },
  // clone(2) cannot create it: unshared in the child, which then forks the command.
  { name: 'time', short: 'T', flag: 0x00000080, flagName: 'CLONE_NEWTIME', proc: 'time' },
];

export function namespace(name: NamespaceName): NamespaceInfo {
  const ns = NAMESPACES.find((n) => n.name === name);
  if (!ns) throw new Error(`unknown namespace ${name}`);
  return ns;
}

/** Names of the CLONE_NEW* bits in `flags`, highest bit first, as clone(2) lists them. */
export function cloneFlagNames(flags: number): string[] {
  return [...NAMESPACES]
    .sort((a, b) => b.flag - a.flag)
    .filter((n) => (flags & n.flag) !== 0)
    .map((n) => n.flagName);
}
