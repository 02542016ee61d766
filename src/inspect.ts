/**
 * What namespaces exist, read from /proc as lsns(8) reads it: every process's
 * /proc/PID/ns/* links, its owner (the uid of /proc/PID) and its parent
 * (/proc/PID/stat), plus namespaces that only a bind mount of an nsfs file
 * keeps alive (/proc/self/mountinfo).
 *
 * The scan itself makes no ioctls: what only the kernel can say of a
 * namespace (its parent, owner, owner uid, netns id) is src/nslinks.ts's,
 * asked only on request.
 *
 * Processes the caller may not inspect are left out, as lsns leaves them out:
 * without privileges /proc/PID/ns of another user's process is EACCES, and
 * any process can exit in the middle of the scan (ENOENT, ESRCH).
 */
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync, type Stats } from 'node:fs';
import { TsnsError } from './errors';
import { NAMESPACES } from './namespaces';
import type { NsRelation } from './native';

/** Namespace types as the kernel names them in /proc/PID/ns and as lsns prints them. */
export type NamespaceType = 'mnt' | 'net' | 'pid' | 'uts' | 'ipc' | 'user' | 'cgroup' | 'time';

/** Every type lsns knows, in lsns's order; derived from THE namespace table plus time. */
export const NAMESPACE_TYPES: readonly NamespaceType[] = [
  ...new Set<NamespaceType>([...NAMESPACES.map((n) => n.proc as NamespaceType), 'time']),
];

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

/** A command-line reader that reads each pid's command line at most once. */
/**
 * A process's cgroup as one cell: its path where every hierarchy agrees
 * (always on cgroup v2), else `controllers:path` for each path, the v2 one
 * as `0:path`.
 */
export function cgroupCell(text: string): string | null {
  const byPath = new Map<string, string[]>();
  for (const line of text.trim().split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const name = m[2] || m[1]!;
    byPath.set(m[3]!, [...(byPath.get(m[3]!) ?? []), name]);
  }
  if (byPath.size === 0) return null;
  if (byPath.size === 1) return [...byPath.keys()][0]!;
  return [...byPath].map(([path, names]) => `${names.join(',')}:${path}`).join(' ');
}

export function cachedCgroup(): (pid: number) => string | null {
  const cache = new Map<number, string | null>();
  return (pid) => {
    if (!cache.has(pid)) {
      const n = readProc(`/proc/${pid}/cgroup`);
      cache.set(pid, n <= 0 ? null : cgroupCell(buffer.toString('utf8', 0, n)));
    }
    return cache.get(pid)!;
  };
}

export function cachedCommandLine(): (pid: number) => string | null {
  const cache = new Map<number, string | null>();
  return (pid) => {
    if (!cache.has(pid)) cache.set(pid, commandLine(pid));
    return cache.get(pid)!;
  };
}

