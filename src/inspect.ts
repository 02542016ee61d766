/**
 * What namespaces exist, read from /proc as lsns(8) reads it: every process's
 * /proc/PID/ns/* links, its owner (the uid of /proc/PID) and its parent
 * (/proc/PID/stat), plus namespaces that only a bind mount of an nsfs file
 * keeps alive (/proc/self/mountinfo).
 *
 * The scan itself makes no ioctls. The parent and owner namespaces
 * (NS_GET_PARENT, NS_GET_USERNS) and a user namespace's owner uid
 * (NS_GET_OWNER_UID) are read only on request, through readNamespaceLinks(),
 * which opens the namespace's nsfs file and asks the native shim; netns ids
 * (netlink RTM_GETNSID) are not known here.
 *
 * Processes the caller may not inspect are left out, as lsns leaves them out:
 * without privileges /proc/PID/ns of another user's process is EACCES, and
 * any process can exit in the middle of the scan (ENOENT, ESRCH).
 */
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync, type Stats } from 'node:fs';
import { TsnsError } from './errors';
import { NAMESPACES } from './namespaces';
import { netnsid, nsQueryVia, type NsRelation } from './native';

/** Namespace types as the kernel names them in /proc/PID/ns and as lsns prints them. */
export type NamespaceType = 'mnt' | 'net' | 'pid' | 'uts' | 'ipc' | 'user' | 'cgroup' | 'time';

/** Every type lsns knows, in lsns's order; derived from THE namespace table plus time. */
export const NAMESPACE_TYPES: readonly NamespaceType[] = [
  ...new Set<NamespaceType>([...NAMESPACES.map((n) => n.proc as NamespaceType), 'time']),
];

/** One namespace as `tsns ls` and `lsns` show it. Field names are stable. */
export interface NamespaceRecord {
  /** namespace identifier: the inode number of its nsfs file */
  ns: number;
  /** kind of namespace, as lsns names it */
  type: NamespaceType;
  /** `/proc/PID/ns/TYPE` of the lowest pid in the namespace; null when no process is in it */
  path: string | null;
  /** number of processes in the namespace (that the caller may inspect) */
  nprocs: number;
  /** lowest pid in the namespace; null when only a bind mount keeps it alive */
  pid: number | null;
  /** parent pid of `pid` */
  ppid: number | null;
  /** command line of `pid` (arguments joined by spaces; its comm when the command line is empty) */
  command: string | null;
  /**
   * owner of `pid` (the uid of /proc/PID). For a namespace no process is in
   * (kept alive by a bind mount): the owner uid (NS_GET_OWNER_UID) of the user
   * namespace that is, or owns, it; null when that cannot be read.
   */
  uid: number | null;
  /** name of `uid` from /etc/passwd, or the number when it has none */
  user: string | null;
  /** where an nsfs file of this namespace is bind-mounted (in the caller's mount namespace) */
  nsfs: string[];
}

export interface ListNamespacesOptions {
  /** only these types (lsns names: mnt, net, pid, uts, ipc, user, cgroup, time; `mount` is taken for mnt) */
  type?: readonly string[];
  /** only the namespaces this process is in */
  pid?: number;
}

/** A process as the scan saw it. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  uid: number;
  /** inode of each namespace the caller could read */
  ns: Partial<Record<NamespaceType, number>>;
}

/** A namespace with the processes in it, lowest pid first. */
export interface NamespaceEntry {
  ns: number;
  type: NamespaceType;
  processes: ProcessInfo[];
  nsfs: string[];
  /**
   * Filled by readNamespaceLinks() (undefined until then): the inode of the
   * parent namespace (NS_GET_PARENT; pid and user namespaces only), 0 when it
   * has none or it is outside the caller's view, as lsns prints it; null when
   * the namespace could not be opened or the kernel could not say.
   */
  parent?: number | null;
  /** the same for the owning user namespace (NS_GET_USERNS) */
  owner?: number | null;
  /**
   * NS_GET_OWNER_UID of the user namespace that is (a user namespace, read by
   * readNamespaceLinks()) or owns (any other type, see namespaceOwnerUid())
   * this one; null when unknown.
   */
  ownerUid?: number | null;
  /** filled by readNetnsid(): a network namespace's id as ours knows it (NETNSID); null for others or when unknown */
  netnsid?: number | 'unassigned' | null;
  /**
   * For a namespace no process is in and no mount keeps: the one it was
   * found as the parent or owner of, through which the kernel is asked.
   */
  via?: { from: NamespaceEntry; relation: NsRelation };
}

export interface Snapshot {
  /** every process read, by pid, in ascending pid order */
  processes: Map<number, ProcessInfo>;
  /** sorted by inode */
  namespaces: NamespaceEntry[];
}

/** `mount` (tsns's option name) → `mnt`; anything else must be an lsns type name. */
export function namespaceType(name: string): NamespaceType | undefined {
  if (name === 'mount') return 'mnt';
  return (NAMESPACE_TYPES as readonly string[]).includes(name) ? (name as NamespaceType) : undefined;
}

/** `pid (comm) S ppid …` → ppid; comm may hold spaces and parentheses. */
export function parseStatPpid(stat: string): number | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const m = /^ (\S) (-?\d+)/.exec(stat.slice(close + 1));
  return m ? Number(m[2]) : undefined;
}

/** `uts:[4026531838]` → ['uts', 4026531838] */
export function parseNsLink(link: string): [string, number] | undefined {
  const m = /^([a-z_]+):\[(\d+)\]$/.exec(link);
  return m ? [m[1]!, Number(m[2])] : undefined;
}

/** Undo mountinfo's octal escapes (`\040` is a space). */
function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export interface NsfsMount {
  type: string;
  ns: number;
  /** mount points, in mount order, each once */
  paths: string[];
}

/** nsfs bind mounts in mountinfo text, one entry per namespace. */
export function parseNsfsMounts(mountinfo: string): NsfsMount[] {
  const out = new Map<string, NsfsMount>();
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype !== 'nsfs') continue;
    const fields = line.slice(0, sep).split(' ');
    const root = fields[3];
    const target = fields[4];
    if (root === undefined || target === undefined) continue;
    const ns = parseNsLink(root);
    if (!ns) continue;
    const key = `${ns[0]}:${ns[1]}`;
    const path = unescapeMountinfo(target);
    let mount = out.get(key);
    if (!mount) {
      mount = { type: ns[0], ns: ns[1], paths: [] };
      out.set(key, mount);
    }
    if (!mount.paths.includes(path)) mount.paths.push(path);
  }
  return [...out.values()];
}

/** /etc/passwd text → uid → name (the first entry wins, as getpwuid finds it). */
export function parsePasswd(text: string): Map<number, string> {
  const users = new Map<number, string>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || !/^\d+$/.test(f[2]!)) continue;
    const uid = Number(f[2]);
    if (!users.has(uid)) users.set(uid, f[0]!);
  }
  return users;
}

let passwd: Map<number, string> | undefined;

/** uid → user name, or the uid as text when /etc/passwd has no name for it (as lsns prints it). */
export function userName(uid: number): string {
  if (!passwd) {
    try {
      passwd = parsePasswd(readFileSync('/etc/passwd', 'utf8'));
    } catch {
      passwd = new Map();
    }
  }
  return passwd.get(uid) ?? String(uid);
}

// lsns reads these into a BUFSIZ buffer; so do we, so long command lines end where theirs do.
const BUFSIZ = 8192;
const buffer = Buffer.alloc(BUFSIZ);

/**
 * Up to BUFSIZ bytes of a /proc file into the shared buffer: the byte count, or
 * -1 when it cannot be read. open/read/close is several times cheaper than
 * readFileSync for these size-less files, and ls reads hundreds of them.
 */
function readProc(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return -1;
  }
  try {
    let n = 0;
    for (;;) {
      const got = readSync(fd, buffer, n, BUFSIZ - n, null);
      if (got === 0) break;
      n += got;
      if (n === BUFSIZ) break;
    }
    return n;
  } catch {
    return -1;
  } finally {
    closeSync(fd);
  }
}

function readProcLine(pid: number, file: 'cmdline' | 'comm'): string | null {
  const n = readProc(`/proc/${pid}/${file}`);
  if (n <= 0) return null;
  // NULs between arguments become spaces; the last byte (the final NUL, or comm's newline) goes.
  for (let i = 0; i < n - 1; i++) if (buffer[i] === 0) buffer[i] = 0x20;
  const text = buffer.toString('utf8', 0, n - 1);
  return text === '' ? null : text;
}

/** The command line of pid as lsns shows it: arguments joined by spaces, or its comm (kernel threads). */
export function commandLine(pid: number): string | null {
  return readProcLine(pid, 'cmdline') ?? readProcLine(pid, 'comm');
}

function readProcess(pid: number, types: readonly NamespaceType[]): ProcessInfo | undefined {
  // Gone, or not ours to read: left out.
  let st: Stats | undefined;
  try {
    st = statSync(`/proc/${pid}`, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
  if (!st) return undefined;
  const n = readProc(`/proc/${pid}/stat`);
  if (n <= 0) return undefined;
  const ppid = parseStatPpid(buffer.toString('latin1', 0, n));
  if (ppid === undefined) return undefined;
  const uid = st.uid;
  const ns: Partial<Record<NamespaceType, number>> = {};
  for (const type of types) {
    try {
      const link = parseNsLink(readlinkSync(`/proc/${pid}/ns/${type}`));
      if (link) ns[type] = link[1];
    } catch {
      // EACCES: another user's process; ENOENT: exited, or a kernel without this type
    }
  }
  return { pid, ppid, uid, ns };
}

/**
 * One pass over /proc: each process's files are read once. Namespaces of the
 * given types (default all), with their processes and nsfs bind mounts,
 * sorted by inode.
 */
export function scanNamespaces(types: readonly NamespaceType[] = NAMESPACE_TYPES): Snapshot {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new TsnsError(`cannot read /proc: ${(e as Error).message}`, { stage: 'option', errno: code, hint: 'is /proc mounted?' });
  }
  // An empty directory where proc should be: say so rather than list nothing.
  if (!names.includes('self')) {
    throw new TsnsError('cannot list namespaces: /proc is not mounted here', { stage: 'option', errno: 'ENOENT', code: 2, hint: 'mount proc on /proc' });
  }
  const pids = names.filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  const processes = new Map<number, ProcessInfo>();
  const byKey = new Map<string, NamespaceEntry>();
  for (const pid of pids) {
    const proc = readProcess(pid, types);
    if (!proc) continue;
    processes.set(pid, proc);
    for (const type of types) {
      const ino = proc.ns[type];
      if (ino === undefined) continue;
      const key = `${type}:${ino}`;
      let entry = byKey.get(key);
      if (!entry) {
        entry = { ns: ino, type, processes: [], nsfs: [] };
        byKey.set(key, entry);
      }
      entry.processes.push(proc);
    }
  }
  let mountinfo = '';
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    // no mountinfo: no nsfs column, nothing kept alive by a mount
  }
  for (const mount of parseNsfsMounts(mountinfo)) {
    const type = mount.type as NamespaceType;
    if (!types.includes(type)) continue;
    const key = `${type}:${mount.ns}`;
    let entry = byKey.get(key);
    if (!entry) {
      entry = { ns: mount.ns, type, processes: [], nsfs: [] };
      byKey.set(key, entry);
    }
    entry.nsfs = mount.paths;
  }
  const namespaces = [...byKey.values()].sort((a, b) => a.ns - b.ns);
  return { processes, namespaces };
}

/** Validate a type filter (lsns names, or tsns's `mount`). */
export function namespaceTypes(names: readonly string[] | undefined): NamespaceType[] {
  if (!names || names.length === 0) return [...NAMESPACE_TYPES];
  const out: NamespaceType[] = [];
  for (const name of names) {
    const type = namespaceType(name);
    if (!type) {
      throw new TsnsError(`unknown namespace type: ${name}`, {
        stage: 'option',
        hint: `use one of: ${NAMESPACE_TYPES.join(', ')}`,
      });
    }
    if (!out.includes(type)) out.push(type);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Parent and owner namespaces, through the nsfs ioctls (native shim)

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

/**
 * The record lsns prints for a namespace: its lowest pid stands for it. For a
 * namespace no process is in, `uid` is entry.ownerUid (see namespaceOwnerUid()).
 */
export function toRecord(entry: NamespaceEntry, command: (pid: number) => string | null = commandLine): NamespaceRecord {
  const proc = entry.processes[0];
  const uid = proc ? proc.uid : entry.ownerUid ?? null;
  return {
    ns: entry.ns,
    type: entry.type,
    path: proc ? `/proc/${proc.pid}/ns/${entry.type}` : null,
    nprocs: entry.processes.length,
    pid: proc ? proc.pid : null,
    ppid: proc ? proc.ppid : null,
    command: proc ? command(proc.pid) : null,
    uid,
    user: uid === null ? null : userName(uid),
    nsfs: [...entry.nsfs],
  };
}

/** A command-line reader that reads each pid's command line at most once. */
export function cachedCommandLine(): (pid: number) => string | null {
  const cache = new Map<number, string | null>();
  return (pid) => {
    if (!cache.has(pid)) cache.set(pid, commandLine(pid));
    return cache.get(pid)!;
  };
}

/**
 * The namespaces on this system, as `tsns ls` / lsns(8) list them: one record
 * per namespace, sorted by inode, each represented by its lowest pid. Only
 * processes the caller may inspect are counted; namespaces kept alive only by
 * an nsfs bind mount are included with `nprocs: 0` and `pid: null`, and the
 * owner uid of their user namespace as `uid` (read with ioctls through the
 * native shim; null when it cannot be loaded).
 *
 * Rejects with a TsnsError (stage 'option') for an unknown type.
 */
export async function listNamespaces(options: ListNamespacesOptions = {}): Promise<NamespaceRecord[]> {
  const types = namespaceTypes(options.type);
  const { pid } = options;
  if (pid !== undefined && (!Number.isInteger(pid) || pid <= 0)) {
    throw new TsnsError(`invalid pid: ${pid}`, { stage: 'option' });
  }
  const snap = scanNamespaces(types);
  const command = cachedCommandLine();
  const users = userNamespaceLookup(snap, types);
  return snap.namespaces
    .filter((e) => pid === undefined || e.processes.some((p) => p.pid === pid))
    .map((e) => {
      if (e.processes.length === 0) ownerUidOrNull(e, users);
      return toRecord(e, command);
    });
}
