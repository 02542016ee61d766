/**
 * Namespaces as lsns(8) lists them: its columns, default columns and rows,
 * and the trees (process, owner, parent), as util-linux 2.38's lsns builds
 * them, so a script written for lsns keeps working; src/table.ts prints them.
 *
 * PNS, ONS and `--tree=owner|parent` open each namespace's nsfs file and ask
 * the kernel (NS_GET_PARENT, NS_GET_USERNS) through the native shim; that is
 * done only when one of them is asked for, so the default listing stays a
 * plain read of /proc. A namespace kept alive only by a bind mount (which
 * lsns 2.38 does not list) shows as UID/USER the owner (NS_GET_OWNER_UID) of
 * the user namespace that is or owns it.
 *
 * NETNSID asks rtnetlink (RTM_GETNSID) through the shim, also only when asked
 * for: `-t net` shows it by default, as lsns does.
 */
import { TsnsError } from './errors';
import { evaluate, type Filter } from './filter';
import {
  cachedCgroup, cachedCommandLine, commandLine, namespaceTypes, scanNamespaces, type NamespaceEntry, type NamespaceType, type ProcessInfo,
  type Snapshot,
} from './inspect';
import { ownerUidOrNull, readNamespaceLinks, readNetnsid, userNamespaceLookup } from './nslinks';
import { newLine, render, type Line, type RenderOptions, type TableColumn } from './table';
import { userName } from './users';

export type ColumnName =
  | 'NS' | 'TYPE' | 'PATH' | 'NPROCS' | 'PID' | 'PPID' | 'COMMAND' | 'UID' | 'USER'
  | 'NETNSID' | 'NSFS' | 'PNS' | 'ONS' | 'CGROUP';

export interface ColumnInfo extends TableColumn {
  name: ColumnName;
  help: string;
}

/** lsns's columns, in lsns's order (its --output-all order). */
export const COLUMNS: readonly ColumnInfo[] = [
  { name: 'NS', whint: 10, right: true, trunc: false, wrap: false, json: 'number', help: 'namespace identifier (inode number)' },
  { name: 'TYPE', whint: 5, right: false, trunc: false, wrap: false, json: 'string', help: 'kind of namespace' },
  { name: 'PATH', whint: 0, right: false, trunc: false, wrap: false, json: 'string', help: 'path to the namespace' },
  { name: 'NPROCS', whint: 5, right: true, trunc: false, wrap: false, json: 'number', help: 'number of processes in the namespace' },
  { name: 'PID', whint: 5, right: true, trunc: false, wrap: false, json: 'number', help: 'lowest PID in the namespace' },
  { name: 'PPID', whint: 5, right: true, trunc: false, wrap: false, json: 'number', help: 'PPID of the PID' },
  { name: 'COMMAND', whint: 0, right: false, trunc: true, wrap: false, json: 'string', help: 'command line of the PID' },
  { name: 'UID', whint: 0, right: true, trunc: false, wrap: false, json: 'number', help: 'UID of the PID' },
  { name: 'USER', whint: 0, right: false, trunc: false, wrap: false, json: 'string', help: 'username of the PID' },
  { name: 'NETNSID', whint: 0, right: true, trunc: false, wrap: false, json: 'string', help: 'namespace ID as used by network subsystem' },
  { name: 'NSFS', whint: 0, right: false, trunc: false, wrap: true, json: 'string', help: 'nsfs mountpoint (usually used network subsystem)' },
  { name: 'PNS', whint: 10, right: true, trunc: false, wrap: false, json: 'number', help: 'parent namespace identifier (inode number)' },
  { name: 'ONS', whint: 10, right: true, trunc: false, wrap: false, json: 'number', help: 'owner namespace identifier (inode number)' },
];

/** tsns's own columns: given with -o, left out of --output-all (which is lsns's). */
export const EXTRA_COLUMNS: readonly ColumnInfo[] = [
  { name: 'CGROUP', whint: 0, right: false, trunc: true, wrap: false, json: 'string', help: "cgroup of the PID (/proc/PID/cgroup; 'ctrl:path' each where hierarchies differ)" },
];

export type TreeKind = 'process' | 'owner' | 'parent';

export interface LsCommand {
  json: boolean;
  raw: boolean;
  noHeadings: boolean;
  noTruncate: boolean;
  noWrap: boolean;
  /** the columns to print, in order */
  columns: ColumnName[];
  /** -p: only namespaces this process is in (null: all) */
  task: number | null;
  types: NamespaceType[];
  /**
   * process (lsns's default for a table): a namespace under the one whose
   * process is its process's parent; owner: under its owning user namespace;
   * parent: a pid or user namespace under its parent (bare -T is owner)
   */
  tree: TreeKind | null;
  /** the positional NAMESPACE: list its processes instead */
  namespace: number | null;
  /** -Q: only the rows this expression holds for */
  filter: Filter | null;
  /** -P: only namespaces no process is in (kept by a bind mount) */
  persistent: boolean;
  /** -H: print the columns and nothing else */
  listColumns: boolean;
  help: boolean;
}


/** Default columns as lsns picks them: NETNSID and NSFS join in when net namespaces are asked for. */
export function defaultColumns(types: readonly NamespaceType[], explicitTypes: boolean): ColumnName[] {
  const net = explicitTypes && types.includes('net');
  return ['NS', 'TYPE', 'NPROCS', 'PID', 'USER', ...(net ? (['NETNSID', 'NSFS'] as const) : []), 'COMMAND'];
}

/** The types to scan: an owner or parent tree also needs the user namespaces, to place what it lists under them. */
export function scanTypes(cmd: Pick<LsCommand, 'types' | 'tree'>): NamespaceType[] {
  const related = cmd.tree === 'owner' || cmd.tree === 'parent';
  return related && !cmd.types.includes('user') ? [...cmd.types, 'user'] : [...cmd.types];
}

/**
 * Where PNS, ONS and the uid of a namespace without processes come from: the
 * kernel (kernelLinks) or, in unit tests, a table. Both are idempotent.
 */
export interface LinkSource {
  /** fill entry.parent and entry.owner (and a user namespace's ownerUid); may throw when the shim cannot load */
  links(entry: NamespaceEntry): void;
  /** fill entry.ownerUid of a namespace no process is in; never throws (the cell stays empty) */
  ownerUid(entry: NamespaceEntry): void;
  /** fill entry.netnsid; may throw when the shim cannot load */
  netnsid(entry: NamespaceEntry): void;
}

/** The nsfs ioctls, through the native shim; `scanned`: the types snap holds. */
export function kernelLinks(snap: Snapshot, scanned: readonly NamespaceType[]): LinkSource {
  const users = userNamespaceLookup(snap, scanned);
  return {
    links: readNamespaceLinks,
    ownerUid: (entry) => {
      ownerUidOrNull(entry, users);
    },
    netnsid: readNetnsid,
  };
}

function related(ino: number | null | undefined): string | null {
  return ino === null || ino === undefined ? null : String(ino);
}

function cell(
  col: ColumnName, entry: NamespaceEntry, proc: ProcessInfo | undefined, noWrap: boolean,
  command: (pid: number) => string | null, cgroup: (pid: number) => string | null,
): string | null {
  // Without a process, UID and USER stand for the namespace's owner (lsns's uid_fallback). lsns asks
  // NS_GET_OWNER_UID of the namespace itself, which only a user namespace answers (others print 0);
  // tsns asks the user namespace that owns it.
  const uid = proc ? proc.uid : entry.ownerUid ?? null;
  switch (col) {
    case 'NS': return String(entry.ns);
    case 'TYPE': return entry.type;
    case 'PATH': return proc ? `/proc/${proc.pid}/ns/${entry.type}` : null;
    case 'NPROCS': return String(entry.processes.length);
    case 'PID': return proc ? String(proc.pid) : null;
    case 'PPID': return proc ? String(proc.ppid) : null;
    case 'COMMAND': return proc ? command(proc.pid) : null;
    case 'UID': return uid === null ? null : String(uid);
    case 'USER': return uid === null ? null : userName(uid);
    case 'NSFS': return entry.nsfs.length ? entry.nsfs.join(noWrap ? ',' : '\n') : null;
    case 'PNS': return related(entry.parent);
    case 'ONS': return related(entry.owner);
    case 'NETNSID': return entry.netnsid === undefined || entry.netnsid === null ? null : String(entry.netnsid);
    case 'CGROUP': return proc ? cgroup(proc.pid) : null;
  }
}

/** A namespace in an owner or parent tree, linked to its parent and owner when they are shown too. */
export interface TreeNode {
  entry: NamespaceEntry;
  parentNs?: TreeNode;
  ownerNs?: TreeNode;
  /** its row, once added */
  line?: Line;
  visiting?: boolean;
}

/**
 * The namespaces of an owner or parent tree, sorted by inode: the listed ones,
 * each linked to its parent (pid and user namespaces) and owner, plus, as lsns
 * interpolates them, the related namespaces that are not listed, without
 * processes (NPROCS 0). Such a namespace is either of a type -t left out
 * (found in `hidden`, the other scanned namespaces: its own links are read) or
 * has no process or mount in sight; then the kernel is asked about it through
 * the namespace it was found from, as lsns asks.
 */
export function relateNamespaces(
  listed: readonly NamespaceEntry[], hidden: ReadonlyMap<number, NamespaceEntry>, source: LinkSource,
): TreeNode[] {
  const nodes = new Map<number, TreeNode>();
  for (const entry of listed) {
    source.links(entry);
    nodes.set(entry.ns, { entry });
  }
  const find = (ino: number, type: NamespaceType, from: NamespaceEntry, relation: 'parent' | 'owner'): TreeNode => {
    let node = nodes.get(ino);
    if (node) return node;
    const h = hidden.get(ino);
    let entry: NamespaceEntry;
    if (h) {
      source.links(h);
      entry = { ns: ino, type: h.type, processes: [], nsfs: h.nsfs, parent: h.parent, owner: h.owner, ownerUid: h.ownerUid };
    } else {
      entry = { ns: ino, type, processes: [], nsfs: [], via: { from, relation } };
      source.links(entry);
    }
    node = { entry };
    nodes.set(ino, node);
    link(node);
    return node;
  };
  const link = (node: TreeNode): void => {
    const { entry } = node;
    if ((entry.type === 'pid' || entry.type === 'user') && entry.parent && entry.parent !== entry.ns) {
      node.parentNs = find(entry.parent, entry.type, entry, 'parent');
    }
    if (entry.owner && entry.owner !== entry.ns) node.ownerNs = find(entry.owner, 'user', entry, 'owner');
  };
  for (const entry of listed) link(nodes.get(entry.ns)!);
  return [...nodes.values()].sort((a, b) => a.entry.ns - b.entry.ns);
}

/** The rows lsns prints, in the order it adds them, with tree parents in tree mode. */
export function buildLines(cmd: LsCommand, snap: Snapshot, source: LinkSource = kernelLinks(snap, scanTypes(cmd))): Line[] {
  const command = cachedCommandLine();
  const cgroup = cachedCgroup();
  const lines: Line[] = [];
  const outline = new Map<number, Line>(); // pid → the last row that process stands for
  // A column the filter reads counts as shown (lsns adds it hidden).
  const used = [...cmd.columns, ...((cmd.filter?.holders ?? []).map((h) => h.toUpperCase()) as ColumnName[])];
  const wantLinks = used.includes('PNS') || used.includes('ONS');
  const wantUid = used.includes('UID') || used.includes('USER');
  const wantNetnsid = used.includes('NETNSID');
  const passes = (entry: NamespaceEntry, proc: ProcessInfo | undefined): boolean => !cmd.filter || evaluate(cmd.filter.root, {
    type: (holder) => (column(holder as ColumnName).json === 'number' ? 'u64' : 'string'),
    cell: (holder) => cell(holder as ColumnName, entry, proc, cmd.noWrap, command, cgroup),
  });
  /** The row of a namespace, under `parent`; null when the filter leaves it out. */
  const row = (entry: NamespaceEntry, proc: ProcessInfo | undefined, parent: Line | null): Line | null => {
    // The ioctls only for a column that shows them.
    if (wantLinks) source.links(entry);
    if (wantUid && !proc) source.ownerUid(entry);
    if (wantNetnsid) source.netnsid(entry);
    if (!passes(entry, proc)) return null;
    const line = newLine(cmd.columns.map((c) => cell(c, entry, proc, cmd.noWrap, command, cgroup)), parent);
    lines.push(line);
    if (proc) outline.set(proc.pid, line);
    return line;
  };
  const parentLine = (proc: ProcessInfo | undefined): Line | null => {
    if (cmd.tree !== 'process' || !proc) return null;
    return outline.get(proc.ppid) ?? null;
  };
  const listed = snap.namespaces.filter((e) => cmd.types.includes(e.type));

  if (cmd.namespace !== null) {
    const entry = listed.find((e) => e.ns === cmd.namespace);
    if (!entry) {
      throw new TsnsError(`not found namespace: ${cmd.namespace}`, { stage: 'option', hint: "list namespaces with 'tsns ls'" });
    }
    // A process after its parent when both are in the namespace, as lsns does.
    const show = (proc: ProcessInfo): void => {
      const parent = snap.processes.get(proc.ppid);
      if (cmd.tree === 'process' && parent && !outline.has(parent.pid) && parent.ns[entry.type] === entry.ns) show(parent);
      row(entry, proc, parentLine(proc));
    };
    for (const proc of entry.processes) if (!outline.has(proc.pid)) show(proc);
    return lines;
  }

  const selected = (entry: NamespaceEntry): boolean =>
    (cmd.task === null || entry.processes.some((p) => p.pid === cmd.task)) && (!cmd.persistent || entry.processes.length === 0);

  if (cmd.tree === 'owner' || cmd.tree === 'parent') {
    const hidden = new Map(snap.namespaces.filter((e) => !cmd.types.includes(e.type)).map((e) => [e.ns, e]));
    const tree = cmd.tree;
    // lsns's show_namespace: the owner (or parent) first, then this one under it.
    const show = (node: TreeNode): void => {
      node.visiting = true;
      const before = tree === 'owner' || !node.parentNs ? node.ownerNs : node.parentNs;
      if (before && !before.line && !before.visiting) show(before);
      const up = tree === 'owner' ? node.ownerNs : node.parentNs;
      node.line = row(node.entry, node.entry.processes[0], up?.line ?? null) ?? undefined;
      node.visiting = false;
    };
    // The related namespaces are shown whatever -p picks, as lsns shows them.
    for (const node of relateNamespaces(listed, hidden, source)) {
      if (!node.line && selected(node.entry)) show(node);
    }
    return lines;
  }

  for (const entry of listed) {
    if (!selected(entry)) continue;
    const proc = entry.processes[0];
    row(entry, proc, parentLine(proc));
  }
  return lines;
}

export function column(name: ColumnName): ColumnInfo {
  return COLUMNS.find((c) => c.name === name) ?? EXTRA_COLUMNS.find((c) => c.name === name)!;
}

/** lsns's output: the tree in COMMAND unless told otherwise. */
export function renderLs(columns: readonly ColumnName[], lines: readonly Line[], opts: Omit<RenderOptions, 'treeColumn'> & { treeColumn?: string }): string {
  return render(columns.map(column), lines, { ...opts, treeColumn: opts.treeColumn ?? 'COMMAND' });
}

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
