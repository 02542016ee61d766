/**
 * THE namespace table: the option names and short flags, the /proc names,
 * the clone flags, the join order, bwrap's --unshare-all set and the keys of
 * every option type are all derived from it.
 */
export type NamespaceName = 'mount' | 'uts' | 'ipc' | 'net' | 'pid' | 'user' | 'cgroup' | 'time';

export interface NamespaceInfo {
  /** long option and options key */
  readonly name: NamespaceName;
  readonly short: string;
  /** CLONE_NEW* value */
  readonly flag: number;
  readonly flagName: string;
  /** entry in /proc/PID/ns, and lsns's type name */
  readonly proc: string;
  /** what it isolates, for help texts */
  readonly what: string;
  /**
   * Position when joining (enter): the user namespace first, so that it
   * grants the rights for the rest; mount last, since it changes what
   * /proc paths mean.
   */
  readonly joinRank: number;
  /** in bwrap's --unshare-all (which has --unshare-X for exactly these) */
  readonly unshareAll: boolean;
  /** bwrap also has --unshare-X-try, which tsns takes as --unshare-X */
  readonly bwrapTry: boolean;
}

/** One option per namespace, as both RunOptions and EnterOptions have them. */
export type PerNamespace<T> = { [K in NamespaceName]?: T };

// Order matters: it is the order of --dry-run output and of `readlink /proc/self/ns/*` checks.
export const NAMESPACES: readonly NamespaceInfo[] = [
  { name: 'mount', short: 'm', flag: 0x00020000, flagName: 'CLONE_NEWNS', proc: 'mnt', what: 'mount', joinRank: 7, unshareAll: false, bwrapTry: false },
  { name: 'uts', short: 'u', flag: 0x04000000, flagName: 'CLONE_NEWUTS', proc: 'uts', what: 'UTS (hostname, domainname)', joinRank: 3, unshareAll: true, bwrapTry: false },
  { name: 'ipc', short: 'i', flag: 0x08000000, flagName: 'CLONE_NEWIPC', proc: 'ipc', what: 'IPC', joinRank: 2, unshareAll: true, bwrapTry: false },
  { name: 'net', short: 'n', flag: 0x40000000, flagName: 'CLONE_NEWNET', proc: 'net', what: 'network', joinRank: 4, unshareAll: true, bwrapTry: false },
  { name: 'pid', short: 'p', flag: 0x20000000, flagName: 'CLONE_NEWPID', proc: 'pid', what: 'pid', joinRank: 5, unshareAll: true, bwrapTry: false },
  { name: 'user', short: 'U', flag: 0x10000000, flagName: 'CLONE_NEWUSER', proc: 'user', what: 'user', joinRank: 0, unshareAll: true, bwrapTry: true },
  { name: 'cgroup', short: 'C', flag: 0x02000000, flagName: 'CLONE_NEWCGROUP', proc: 'cgroup', what: 'cgroup', joinRank: 1, unshareAll: true, bwrapTry: true },
  // clone(2) cannot create it: unshared in the child, which then forks the command.
  { name: 'time', short: 'T', flag: 0x00000080, flagName: 'CLONE_NEWTIME', proc: 'time', what: 'time', joinRank: 6, unshareAll: false, bwrapTry: false },
];

export const NAMESPACE_NAMES: readonly NamespaceName[] = NAMESPACES.map((n) => n.name);

/** The order enter joins them in. */
export const JOIN_ORDER: readonly NamespaceInfo[] = [...NAMESPACES].sort((a, b) => a.joinRank - b.joinRank);

/** bwrap's --unshare-all, in bwrap's order of its --unshare-X options. */
export const UNSHARE_ALL: readonly NamespaceInfo[] = NAMESPACES.filter((n) => n.unshareAll);

export function namespace(name: NamespaceName): NamespaceInfo {
  const ns = NAMESPACES.find((n) => n.name === name);
  if (!ns) throw new Error(`unknown namespace ${name}`);
  return ns;
}

export function namespaceByFlag(flag: number): NamespaceInfo | undefined {
  return NAMESPACES.find((n) => n.flag === flag);
}

/** The namespaces an options object names (true or a file), in table order. */
export function namedNamespaces<T>(options: PerNamespace<T | false>): NamespaceInfo[] {
  return NAMESPACES.filter((n) => options[n.name] !== undefined && options[n.name] !== false);
}

/** Names of the CLONE_NEW* bits in `flags`, highest bit first, as clone(2) lists them. */
export function cloneFlagNames(flags: number): string[] {
  return [...NAMESPACES]
    .sort((a, b) => b.flag - a.flag)
    .filter((n) => (flags & n.flag) !== 0)
    .map((n) => n.flagName);
}
