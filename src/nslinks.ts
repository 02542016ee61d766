/**
 * What only the kernel can say of a namespace, asked through its nsfs file
 * and the native shim: the parent and owner namespaces (NS_GET_PARENT,
 * NS_GET_USERNS), a user namespace's owner uid (NS_GET_OWNER_UID) and a
 * network namespace's id (rtnetlink RTM_GETNSID). Each is read only when
 * asked for, so a plain listing stays a read of /proc.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { TsnsError } from './errors';
import { scanNamespaces, type NamespaceEntry, type NamespaceType, type Snapshot } from './inspect';
import { netnsid, nsQueryVia, type NsRelation } from './native';

// Linux's numbers on every architecture; node:os is not loaded for two constants.
const EPERM = 1;
const EINVAL = 22;

/**
 * An fd of the namespace's nsfs file: through a process in it (the lowest pid
 * that still is), else through a bind mount of it; null when none opens.
 * Each candidate is checked by inode, since a pid can be reused and a mount
 * point covered after the scan.
 */
export function openNamespace(entry: NamespaceEntry): number | null {
  const paths = [...entry.processes.map((p) => `/proc/${p.pid}/ns/${entry.type}`), ...entry.nsfs];
  for (const path of paths) {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      continue; // exited, not ours to open, or unmounted
    }
    let ino = -1;
    try {
      ino = fstatSync(fd).ino;
    } catch {
      // fall through: not this one
    }
    if (ino === entry.ns) return fd;
    closeSync(fd);
  }
  return null;
}

/** An NS_GET_PARENT / NS_GET_USERNS answer as lsns prints it: EPERM (outside our view) and EINVAL (no such relation) are 0. */
function relatedInode(r: number): number | null {
  if (r >= 0) return r;
  return r === -EPERM || r === -EINVAL ? 0 : null;
}

/**
 * PNS and ONS of a namespace (and a user namespace's owner uid), read once:
 * opens its nsfs file and asks NS_GET_PARENT (pid and user namespaces only,
 * as lsns asks), NS_GET_USERNS and, for a user namespace, NS_GET_OWNER_UID.
 * Throws the shim's TsnsError (stage 'native') when it cannot be loaded.
 */
export function readNamespaceLinks(entry: NamespaceEntry): void {
  if (entry.owner !== undefined) return;
  // A namespace out of sight is asked about through one in sight.
  const route: NsRelation[] = [];
  let start = entry;
  while (start.processes.length === 0 && start.nsfs.length === 0 && start.via) {
    route.unshift(start.via.relation);
    start = start.via.from;
  }
  const fd = openNamespace(start);
  if (fd === null) {
    entry.parent = null;
    entry.owner = null;
    if (entry.type === 'user') entry.ownerUid = null;
    return;
  }
  const ask = (what: 'parent' | 'owner' | 'ownerUid') => nsQueryVia(fd, route, entry.ns, what);
  try {
    entry.parent = entry.type === 'pid' || entry.type === 'user' ? relatedInode(ask('parent')) : 0;
    entry.owner = relatedInode(ask('owner'));
    if (entry.type === 'user') {
      const uid = ask('ownerUid');
      entry.ownerUid = uid >= 0 ? uid : null;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * NETNSID, read once: for a network namespace with a process in it (lsns
 * shows none for a namespace without), what rtnetlink says of it.
 */
export function readNetnsid(entry: NamespaceEntry): void {
  if (entry.netnsid !== undefined) return;
  entry.netnsid = null;
  if (entry.type !== 'net' || entry.processes.length === 0) return;
  const fd = openNamespace({ ...entry, nsfs: [] });
  if (fd === null) return;
  try {
    entry.netnsid = netnsid(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The uid that stands for a namespace no process is in: NS_GET_OWNER_UID of
 * the user namespace that is it (a user namespace) or owns it (found with
 * `userNamespace`, by inode); null when either cannot be read. Sets
 * entry.ownerUid.
 */
export function namespaceOwnerUid(
  entry: NamespaceEntry, userNamespace: (ino: number) => NamespaceEntry | undefined,
): number | null {
  if (entry.ownerUid !== undefined) return entry.ownerUid;
  readNamespaceLinks(entry);
  if (entry.type !== 'user') {
    const owner = entry.owner ? userNamespace(entry.owner) : undefined;
    if (owner) readNamespaceLinks(owner);
    entry.ownerUid = owner?.ownerUid ?? null;
  }
  return entry.ownerUid ?? null;
}

/** A lookup of user namespaces by inode: the snapshot's, or (when it has none) a scan of the user type, made once when first needed. */
export function userNamespaceLookup(snap: Snapshot, scanned: readonly NamespaceType[]): (ino: number) => NamespaceEntry | undefined {
  let users: Map<number, NamespaceEntry> | undefined;
  return (ino) => {
    if (!users) {
      const source = scanned.includes('user') ? snap.namespaces : scanNamespaces(['user']).namespaces;
      users = new Map(source.filter((e) => e.type === 'user').map((e) => [e.ns, e]));
    }
    return users.get(ino);
  };
}

/**
 * The uid of a namespace without processes, when the native shim can be
 * loaded; null otherwise (the listing does not fail for one column).
 */
export function ownerUidOrNull(entry: NamespaceEntry, userNamespace: (ino: number) => NamespaceEntry | undefined): number | null {
  try {
    return namespaceOwnerUid(entry, userNamespace);
  } catch (e) {
    if (e instanceof TsnsError) return null;
    throw e;
  }
}

