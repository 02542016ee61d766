/**
 * `tsns ls`: lsns(8) for tsns. Options, columns, default columns, the trees
 * (process, owner, parent), and the table/raw/JSON output follow util-linux
 * 2.38's lsns (libsmartcols), so a script written for lsns keeps working.
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
import { parseArgs, UsageError, type CliStatus } from './cli';
import { TsnsError } from './errors';
import {
  cachedCommandLine, namespaceTypes, ownerUidOrNull, readNamespaceLinks, readNetnsid, scanNamespaces,
  userName, userNamespaceLookup, type NamespaceEntry, type NamespaceType, type ProcessInfo, type Snapshot,
} from './inspect';

type OptDef = Parameters<typeof parseArgs>[0][number];

const LS_HINT = "see 'tsns ls --help'";

export type ColumnName =
  | 'NS' | 'TYPE' | 'PATH' | 'NPROCS' | 'PID' | 'PPID' | 'COMMAND' | 'UID' | 'USER'
  | 'NETNSID' | 'NSFS' | 'PNS' | 'ONS';

export interface ColumnInfo {
  name: ColumnName;
  /** libsmartcols width hint: a column narrower than its header uses the header's width, else at least this */
  whint: number;
  right: boolean;
  /** truncated to fit a terminal (COMMAND, unless --notruncate) */
  trunc: boolean;
  /** one value per line (NSFS, unless --nowrap/--raw) */
  wrap: boolean;
  json: 'number' | 'string';
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

function column(name: ColumnName): ColumnInfo {
  return COLUMNS.find((c) => c.name === name)!;
}

/**
 * `-o LIST`: comma-separated column names, any case. A leading `+` adds to
 * `current` (the defaults); otherwise the list replaces it.
 */
export function parseColumns(list: string, current: readonly ColumnName[] = []): ColumnName[] {
  const add = list.startsWith('+');
  const body = add ? list.slice(1) : list;
  if (body === '') throw new UsageError(`no columns in --output '${list}'`, LS_HINT);
  const out: ColumnName[] = add ? [...current] : [];
  for (const name of body.split(',')) {
    const col = COLUMNS.find((c) => c.name === name.toUpperCase());
    if (!col) {
      throw new UsageError(`unknown column: '${name}'`, `available columns: ${COLUMNS.map((c) => c.name).join(', ')}`);
    }
    out.push(col.name);
  }
  return out;
}

const LS_OPTIONS: OptDef[] = [
  { long: 'json', short: 'J', arg: 'none', help: 'use JSON output format' },
  { long: 'list', short: 'l', arg: 'none', help: 'use list format output' },
  { long: 'noheadings', short: 'n', arg: 'none', help: "don't print headings" },
  { long: 'no-headings', arg: 'none', help: 'same as --noheadings' },
  { long: 'output', short: 'o', arg: 'required', metavar: 'LIST', help: 'define which output columns to use' },
  { long: 'output-all', arg: 'none', help: 'output all columns' },
  { long: 'task', short: 'p', arg: 'required', metavar: 'PID', help: 'print process namespaces' },
  { long: 'pid', arg: 'required', metavar: 'PID', help: 'same as --task' },
  { long: 'raw', short: 'r', arg: 'none', help: 'use the raw output format' },
  { long: 'notruncate', short: 'u', arg: 'none', help: "don't truncate text in columns" },
  { long: 'nowrap', short: 'W', arg: 'none', help: "don't use multi-line representation" },
  { long: 'type', short: 't', arg: 'required', metavar: 'NAME', help: 'namespace type (mnt, net, ipc, user, pid, uts, cgroup, time)' },
  { long: 'tree', short: 'T', arg: 'optional', metavar: 'REL', help: 'use tree format (parent, owner, or process)' },
  { long: 'help', short: 'h', arg: 'none', help: 'display this help' },
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
  help: boolean;
}

/** getopt_long permutes, so `lsns 4026531836 -J` works: options may follow the namespace. */
function parseAll(args: readonly string[]): { options: [OptDef, string | undefined][]; operands: string[] } {
  // -T takes an optional value glued to it (-Tprocess, -T=process), as getopt's "T::" does.
  const rewritten: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      rewritten.push(...args.slice(i));
      break;
    }
    rewritten.push(/^-T./.test(a) ? `--tree=${a.slice(2).replace(/^=/, '')}` : a);
  }
  const options: [OptDef, string | undefined][] = [];
  const operands: string[] = [];
  let rest = rewritten;
  try {
    while (rest.length > 0) {
      const parsed = parseArgs(LS_OPTIONS, rest);
      options.push(...parsed.options);
      if (parsed.operands.length === 0) break;
      if (rest[rest.length - parsed.operands.length - 1] === '--') {
        operands.push(...parsed.operands);
        break;
      }
      operands.push(parsed.operands[0]!);
      rest = parsed.operands.slice(1);
    }
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(e.message, LS_HINT);
    throw e;
  }
  return { options, operands };
}

/** Default columns as lsns picks them: NETNSID and NSFS join in when net namespaces are asked for. */
export function defaultColumns(types: readonly NamespaceType[], explicitTypes: boolean): ColumnName[] {
  const net = explicitTypes && types.includes('net');
  return ['NS', 'TYPE', 'NPROCS', 'PID', 'USER', ...(net ? (['NETNSID', 'NSFS'] as const) : []), 'COMMAND'];
}

/** `tsns ls` argv → typed options, resolved as lsns resolves them. */
export function parseLs(args: readonly string[]): LsCommand {
  const { options, operands } = parseAll(args);
  let json = false;
  let raw = false;
  let list = false;
  let noHeadings = false;
  let noTruncate = false;
  let noWrap = false;
  let help = false;
  let columns: ColumnName[] = [];
  let output: string | undefined;
  let task: number | null = null;
  let tree: TreeKind | null = null;
  let treeGiven = false;
  const typeNames: string[] = [];
  for (const [def, value] of options) {
    switch (def.long) {
      case 'json': json = true; break;
      case 'list': list = true; break;
      case 'noheadings': case 'no-headings': noHeadings = true; break;
      case 'output': output = value!; break;
      case 'output-all': columns = COLUMNS.map((c) => c.name); break;
      case 'task': case 'pid':
        if (!/^\d+$/.test(value!) || Number(value) > 0x7fffffff) throw new UsageError(`invalid PID argument: '${value}'`, LS_HINT);
        task = Number(value) || null;
        break;
      case 'raw': raw = true; noWrap = true; break;
      case 'notruncate': noTruncate = true; break;
      case 'nowrap': noWrap = true; break;
      case 'type':
        try {
          namespaceTypes([value!]);
        } catch (e) {
          if (e instanceof TsnsError) throw new UsageError(e.message, e.hint);
          throw e;
        }
        typeNames.push(value!);
        break;
      case 'tree': {
        // As getopt's optional argument: only glued (-Towner, --tree=owner); `-T owner` is -T and a namespace.
        const rel = value ?? 'owner';
        treeGiven = true;
        if (rel !== 'process' && rel !== 'owner' && rel !== 'parent') {
          throw new UsageError(`unknown tree type: ${rel}`, 'use --tree=owner, --tree=parent or --tree=process');
        }
        tree = rel;
        break;
      }
      case 'help': help = true; break;
    }
  }
  if (json && raw) throw new UsageError('mutually exclusive arguments: --json --raw', LS_HINT);
  if (list && treeGiven) throw new UsageError('mutually exclusive arguments: --list --tree', LS_HINT);
  if (operands.length > 1) throw new UsageError(`unexpected argument '${operands[1]}': give one namespace`, LS_HINT);
  let namespace: number | null = null;
  if (operands.length === 1) {
    if (task !== null) throw new UsageError('--task is mutually exclusive with <namespace>', LS_HINT);
    if (!/^\d+$/.test(operands[0]!)) throw new UsageError(`invalid namespace argument: '${operands[0]}'`, 'give a namespace inode number, as the NS column shows it');
    namespace = Number(operands[0]);
    if (!tree && !list) tree = 'process';
    if (columns.length === 0) columns = ['PID', 'PPID', 'USER', 'COMMAND'];
  }
  const types = namespaceTypes(typeNames);
  if (columns.length === 0) {
    columns = defaultColumns(types, typeNames.length > 0);
    if (!tree && !list) tree = 'process';
  }
  if (output !== undefined) columns = parseColumns(output, columns);
  return { json, raw, noHeadings, noTruncate, noWrap, columns, task, types, tree, namespace, help };
}

// ---------------------------------------------------------------------------
// Rows

/** One output row; in tree mode it may hang under another. */
export interface Line {
  cells: (string | null)[];
  parent: Line | null;
  children: Line[];
}

export function newLine(cells: (string | null)[], parent: Line | null = null): Line {
  const line: Line = { cells, parent, children: [] };
  parent?.children.push(line);
  return line;
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
  command: (pid: number) => string | null,
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
  const lines: Line[] = [];
  const outline = new Map<number, Line>(); // pid → the last row that process stands for
  const wantLinks = cmd.columns.includes('PNS') || cmd.columns.includes('ONS');
  const wantUid = cmd.columns.includes('UID') || cmd.columns.includes('USER');
  const wantNetnsid = cmd.columns.includes('NETNSID');
  const row = (entry: NamespaceEntry, proc: ProcessInfo | undefined, parent: Line | null): Line => {
    // The ioctls only for a column that shows them.
    if (wantLinks) source.links(entry);
    if (wantUid && !proc) source.ownerUid(entry);
    if (wantNetnsid) source.netnsid(entry);
    const line = newLine(cmd.columns.map((c) => cell(c, entry, proc, cmd.noWrap, command)), parent);
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

  const selected = (entry: NamespaceEntry): boolean => cmd.task === null || entry.processes.some((p) => p.pid === cmd.task);

  if (cmd.tree === 'owner' || cmd.tree === 'parent') {
    const hidden = new Map(snap.namespaces.filter((e) => !cmd.types.includes(e.type)).map((e) => [e.ns, e]));
    const tree = cmd.tree;
    // lsns's show_namespace: the owner (or parent) first, then this one under it.
    const show = (node: TreeNode): void => {
      node.visiting = true;
      const before = tree === 'owner' || !node.parentNs ? node.ownerNs : node.parentNs;
      if (before && !before.line && !before.visiting) show(before);
      const up = tree === 'owner' ? node.ownerNs : node.parentNs;
      node.line = row(node.entry, node.entry.processes[0], up?.line ?? null);
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

// ---------------------------------------------------------------------------
// Output

interface Symbols {
  branch: string;
  vertical: string;
  right: string;
}

const UTF8_SYMBOLS: Symbols = { branch: '\u251c\u2500', vertical: '\u2502 ', right: '\u2514\u2500' };
const ASCII_SYMBOLS: Symbols = { branch: '|-', vertical: '| ', right: '`-' };

/** Whether the locale is UTF-8, as libsmartcols decides which tree symbols to draw. */
export function localeIsUtf8(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  return /utf-?8/i.test(locale);
}

export interface RenderOptions {
  json: boolean;
  raw: boolean;
  noHeadings: boolean;
  noTruncate: boolean;
  noWrap: boolean;
  /** draw the tree (needs its tree column to draw it in) */
  tree: boolean;
  /** where the tree is drawn: COMMAND for the process tree (the default), NS (left-aligned) for owner and parent trees */
  treeColumn?: 'COMMAND' | 'NS';
  /** terminal width; null when stdout is not a terminal (nothing is truncated) */
  termWidth: number | null;
  utf8: boolean;
}

function isLastChild(line: Line): boolean {
  const siblings = line.parent?.children;
  return !siblings || siblings[siblings.length - 1] === line;
}

/** The tree art left of a row's data: its ancestors' verticals, then its own branch. */
function treeArt(line: Line, sym: Symbols): string {
  if (!line.parent) return '';
  return treePrefix(line.parent, sym) + (isLastChild(line) ? sym.right : sym.branch);
}

/** libsmartcols' tree_ascii_art_to_buffer: a vertical for each ancestor that has siblings below. */
function treePrefix(line: Line, sym: Symbols): string {
  if (!line.parent) return '';
  return treePrefix(line.parent, sym) + (isLastChild(line) ? '  ' : sym.vertical);
}

/** Rows in print order: a tree depth first, a list as added. */
function printOrder(lines: readonly Line[], tree: boolean): Line[] {
  if (!tree) return [...lines];
  const out: Line[] = [];
  const walk = (l: Line): void => {
    out.push(l);
    l.children.forEach(walk);
  };
  lines.filter((l) => !l.parent).forEach(walk);
  return out;
}

/** Columns that hold the tree, as lsns marks them: COMMAND for the process tree, NS for owner and parent. */
function treeColumns(columns: readonly ColumnName[], opts: Pick<RenderOptions, 'tree' | 'treeColumn'>): boolean[] {
  const treeColumn = opts.treeColumn ?? 'COMMAND';
  return columns.map((c) => opts.tree && c === treeColumn);
}

/** Display width of one code point (wcwidth, roughly: combining marks 0, East Asian wide 2). */
function charWidth(cp: number): number {
  if (cp === 0x200b || (cp >= 0x300 && cp <= 0x36f) || (cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0xfe20 && cp <= 0xfe2f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) || (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) || (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) return 2;
  return 1;
}

function hexBytes(ch: string): string {
  return [...Buffer.from(ch, 'utf8')].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
}

interface Encoded {
  /** the output, one piece per source character (a \xHH run for an escaped one) */
  pieces: string[];
  /** terminal cells of each piece */
  widths: number[];
  width: number;
}

const EMPTY: Encoded = { pieces: [], widths: [], width: 0 };

function text(e: Encoded): string {
  return e.pieces.join('');
}

/**
 * mbs_safe_encode: control characters (and `\x`, which would read as an
 * escape) become \xHH; outside a UTF-8 locale so does every non-ASCII byte.
 */
export function safeEncode(s: string, utf8: boolean): Encoded {
  const pieces: string[] = [];
  const widths: number[] = [];
  const chars = [...s];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const cp = ch.codePointAt(0)!;
    if ((ch === '\\' && chars[i + 1] === 'x') || cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp < 0xa0) || (!utf8 && cp >= 0x80)) {
      const hex = hexBytes(ch);
      pieces.push(hex);
      widths.push(hex.length);
    } else {
      pieces.push(ch);
      widths.push(charWidth(cp));
    }
  }
  return { pieces, widths, width: widths.reduce((a, b) => a + b, 0) };
}

/** At most `width` cells of an encoded string. */
function truncate(enc: Encoded, width: number): Encoded {
  let used = 0;
  let n = 0;
  while (n < enc.pieces.length && used + enc.widths[n]! <= width) used += enc.widths[n++]!;
  return { pieces: enc.pieces.slice(0, n), widths: enc.widths.slice(0, n), width: used };
}

/** fputs_nonblank: raw output escapes blanks, backslashes and every byte that is not printable ASCII. */
export function rawEncode(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b > 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** lsns's JSON: libsmartcols' layout (3-space indent, `},{`), numbers bare, empty cells null, children nested. */
export function renderJson(columns: readonly ColumnName[], lines: readonly Line[], tree: boolean): string {
  const infos = columns.map(column);
  let out = '{\n   "namespaces": [\n';
  const quote = (s: string): string =>
    `"${s.replace(/[\\"\u0000-\u001f]/g, (c) => {
      switch (c) {
        case '"': return '\\"';
        case '\\': return '\\\\';
        case '\b': return '\\b';
        case '\t': return '\\t';
        case '\n': return '\\n';
        case '\f': return '\\f';
        case '\r': return '\\r';
        default: return `\\u00${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
      }
    })}"`;
  const object = (line: Line, depth: number): string => {
    const pad = '   '.repeat(depth + 1);
    const values = infos.map((info, i) => {
      const v = line.cells[i];
      const text = v === null || v === undefined || v === '' ? 'null' : info.json === 'number' ? v : quote(v);
      return `${pad}"${info.name.toLowerCase()}": ${text}`;
    });
    if (tree && line.children.length > 0) {
      values.push(`${pad}"children": [\n${'   '.repeat(depth + 2)}${line.children.map((c) => object(c, depth + 2)).join(',')}\n${pad}]`);
    }
    return `{\n${values.join(',\n')}\n${'   '.repeat(depth)}}`;
  };
  const top = tree ? lines.filter((l) => !l.parent) : lines;
  if (top.length > 0) out += `      ${top.map((l) => object(l, 2)).join(',')}`;
  out += '\n   ]\n}\n';
  return out;
}

/** -r: one line per row, cells separated by a space, everything unusual escaped. */
export function renderRaw(columns: readonly ColumnName[], lines: readonly Line[], opts: RenderOptions): string {
  if (lines.length === 0) return '';
  const sym = opts.utf8 ? UTF8_SYMBOLS : ASCII_SYMBOLS;
  const isTree = treeColumns(columns, opts);
  const rows: string[] = [];
  if (!opts.noHeadings) rows.push(columns.map(rawEncode).join(' '));
  for (const line of printOrder(lines, opts.tree)) {
    rows.push(line.cells.map((c, i) => rawEncode((isTree[i] ? treeArt(line, sym) : '') + (c ?? ''))).join(' '));
  }
  return `${rows.join('\n')}\n`;
}

/** The default table: libsmartcols' column widths, alignment, tree, multi-line NSFS and terminal truncation. */
export function renderTable(columns: readonly ColumnName[], lines: readonly Line[], opts: RenderOptions): string {
  if (lines.length === 0) return '';
  const sym = opts.utf8 ? UTF8_SYMBOLS : ASCII_SYMBOLS;
  const infos = columns.map(column);
  const isTree = treeColumns(columns, opts);
  const ordered = printOrder(lines, opts.tree);
  const chunked = infos.map((info) => info.wrap && !opts.noWrap);
  // The tree column is never right-aligned (lsns drops SCOLS_FL_RIGHT from NS in an owner or parent tree).
  const right = infos.map((info, i) => info.right && !isTree[i]);
  const trunc = infos.map((info) => info.trunc && !opts.noTruncate);

  // Cells as printed: encoded, with tree art, split into lines for NSFS.
  const cells: Encoded[][][] = ordered.map((line) =>
    line.cells.map((c, i) => {
      const data = (isTree[i] ? treeArt(line, sym) : '') + (c ?? '');
      if (chunked[i]) return data.split('\n').map((part) => safeEncode(part, opts.utf8));
      return [safeEncode(data, opts.utf8)];
    }),
  );

  // Widths, as libsmartcols counts them.
  const widths = infos.map((info, i) => {
    const min = Math.max(1, safeEncode(info.name, opts.utf8).width);
    let width = 0;
    for (const row of cells) for (const part of row[i]!) width = Math.max(width, part.width);
    if (width < min) width = min;
    else if (info.whint >= 1 && width < info.whint && min < info.whint) width = info.whint;
    return { width, min };
  });
  if (opts.termWidth !== null) {
    let total = widths.reduce((a, w) => a + w.width, 0) + widths.length - 1;
    // Only flagged columns give way, one cell at a time, never below their header.
    while (total > opts.termWidth) {
      let reduced = false;
      for (let i = 0; i < widths.length && total > opts.termWidth; i++) {
        const w = widths[i]!;
        if (!trunc[i] || w.width <= w.min) continue;
        w.width--;
        total--;
        reduced = true;
      }
      if (!reduced) break;
    }
  }

  const last = infos.length - 1;
  const out: string[] = [];
  const put = (i: number, enc: Encoded | null): string => {
    let width = widths[i]!.width;
    let e = enc ?? EMPTY;
    if (i === last && e.width < width && !right[i]) width = e.width;
    if (e.width > width && trunc[i]) e = truncate(e, width);
    let s = '';
    let len = e.width;
    if (e.pieces.length > 0) {
      if (right[i] && len < width) {
        s += ' '.repeat(width - len);
        len = width;
      }
      s += text(e);
    }
    if (i === last) return s;
    if (len < width) s += ' '.repeat(width - len);
    return `${s} `;
  };

  if (!opts.noHeadings) out.push(infos.map((info, i) => put(i, safeEncode(info.name, opts.utf8))).join(''));
  ordered.forEach((line, r) => {
    const row = cells[r]!;
    out.push(row.map((parts, i) => put(i, parts[0]!)).join(''));
    // Further NSFS paths go on extra lines, the other cells blank (the tree column keeps its verticals).
    const extra = Math.max(...row.map((parts) => parts.length)) - 1;
    for (let k = 1; k <= extra; k++) {
      out.push(
        row
          .map((parts, i) => {
            if (parts.length > 1) return put(i, parts[k] ?? null);
            if (isTree[i]) {
              const art = treePrefix(line, sym) + (line.children.length > 0 ? sym.vertical : '');
              return put(i, safeEncode(art, opts.utf8));
            }
            return put(i, null);
          })
          .join(''),
      );
    }
  });
  return `${out.join('\n')}\n`;
}

export function renderLs(columns: readonly ColumnName[], lines: readonly Line[], opts: RenderOptions): string {
  const tree = opts.tree && columns.includes(opts.treeColumn ?? 'COMMAND');
  const o = { ...opts, tree };
  if (opts.json) return renderJson(columns, lines, tree);
  if (opts.raw) return renderRaw(columns, lines, o);
  return renderTable(columns, lines, o);
}

export function lsHelp(): string {
  const opts = LS_OPTIONS.map((d) => {
    const value = d.arg === 'required' ? ` <${d.metavar!.toLowerCase()}>` : d.arg === 'optional' ? `[=<${d.metavar!.toLowerCase()}>]` : '';
    const flag = `${d.short ? `-${d.short}, ` : '    '}--${d.long}${value}`;
    return ` ${flag.padEnd(24)} ${d.help}`;
  });
  return [
    'Usage:',
    ' tsns ls [options] [<namespace>]',
    '',
    'List system namespaces (as lsns(8) does).',
    '',
    'Options:',
    ...opts,
    '',
    'Available output columns:',
    ...COLUMNS.map((c) => ` ${c.name.padStart(11)}  ${c.help}`),
    '',
    'Namespaces kept alive only by a bind mount of their nsfs file are listed with NPROCS 0;',
    'their UID and USER are the owner of the user namespace that is or owns them.',
    'PNS, ONS and --tree=owner|parent ask the kernel (NS_GET_PARENT, NS_GET_USERNS), and',
    'NETNSID rtnetlink (RTM_GETNSID), through the native shim.',
    '',
  ].join('\n');
}

/** `tsns ls`: returns how to end, like every command. */
export async function lsCommand(args: readonly string[]): Promise<CliStatus> {
  const cmd = parseLs(args);
  if (cmd.help) {
    process.stdout.write(lsHelp());
    return { code: 0, signal: null };
  }
  const scanned = scanTypes(cmd);
  const snap = scanNamespaces(scanned);
  const lines = buildLines(cmd, snap, kernelLinks(snap, scanned));
  const text = renderLs(cmd.columns, lines, {
    json: cmd.json,
    raw: cmd.raw,
    noHeadings: cmd.noHeadings,
    noTruncate: cmd.noTruncate,
    noWrap: cmd.noWrap,
    tree: cmd.tree !== null,
    treeColumn: cmd.tree === 'process' ? 'COMMAND' : 'NS',
    termWidth: process.stdout.isTTY ? process.stdout.columns || 80 : null,
    utf8: localeIsUtf8(),
  });
  // `tsns ls | head -1` closes the pipe early; that is not an error.
  process.stdout.on('error', () => {});
  process.stdout.write(text);
  return { code: 0, signal: null };
}
