/** `tsns ls`: lsns(8)'s options (getopt_long with permutation, as lsns has it) → the listing. */
import { TsnsError } from '../errors';
import { parseFilter, type Filter } from '../filter';
import { namespaceTypes, scanNamespaces } from '../inspect';
import {
  buildLines, COLUMNS, defaultColumns, EXTRA_COLUMNS, kernelLinks, renderLs, scanTypes, type ColumnName, type LsCommand, type TreeKind,
} from '../ls';
import { localeIsUtf8, newLine, render } from '../table';
import { parseArgs, UsageError, type Given, type OptDef, type Parsed } from './args';
import { SUCCESS, type CliStatus } from './status';

const LS_HINT = "see 'tsns ls --help'";

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
    const col = [...COLUMNS, ...EXTRA_COLUMNS].find((c) => c.name === name.toUpperCase());
    if (!col) {
      throw new UsageError(`unknown column: '${name}'`, `available columns: ${[...COLUMNS, ...EXTRA_COLUMNS].map((c) => c.name).join(', ')}`);
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
  { long: 'persistent', short: 'P', arg: 'none', help: 'namespaces without processes' },
  { long: 'filter', short: 'Q', arg: 'required', metavar: 'EXPR', help: 'apply display filter' },
  { long: 'list-columns', short: 'H', arg: 'none', help: 'list the available columns' },
  { long: 'help', short: 'h', arg: 'none', help: 'display this help' },
];

/** getopt_long permutes, so `lsns 4026531836 -J` works: options may follow the namespace. */
function parseAll(args: readonly string[]): Parsed {
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
  const options: Given[] = [];
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
  let filter: Filter | null = null;
  let persistent = false;
  let listColumns = false;
  const typeNames: string[] = [];
  for (const { def, value } of options) {
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
      case 'persistent': persistent = true; break;
      // Parsed where it is given, as lsns does: a bad expression is the first complaint.
      case 'filter': filter = checkedFilter(value!); break;
      case 'list-columns': listColumns = true; break;
      case 'help': help = true; break;
    }
  }
  if (json && raw) throw new UsageError('mutually exclusive arguments: --json --raw', LS_HINT);
  if (list && treeGiven) throw new UsageError('mutually exclusive arguments: --list --tree', LS_HINT);
  if (persistent && task !== null) throw new UsageError('mutually exclusive arguments: --persistent --task', LS_HINT);
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
  return { json, raw, noHeadings, noTruncate, noWrap, columns, task, types, tree, namespace, filter, persistent, listColumns, help };
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
    ...[...COLUMNS, ...EXTRA_COLUMNS].map((c) => ` ${c.name.padStart(11)}  ${c.help}`),
    '',
    'Namespaces kept alive only by a bind mount of their nsfs file are listed with NPROCS 0;',
    'their UID and USER are the owner of the user namespace that is or owns them.',
    'PNS, ONS and --tree=owner|parent ask the kernel (NS_GET_PARENT, NS_GET_USERNS), and',
    'NETNSID rtnetlink (RTM_GETNSID), through the native shim.',
    '',
  ].join('\n');
}

/** A filter whose holders are all columns (lsns names every unknown one, then gives up). */
function checkedFilter(expr: string): Filter {
  const filter = parseFilter(expr);
  const unknown = filter.holders.filter((h) => !COLUMNS.some((c) => c.name === h.toUpperCase()));
  if (unknown.length) {
    throw new UsageError(`unknown column${unknown.length > 1 ? 's' : ''} in --filter: ${unknown.join(', ')}`, `available columns: ${COLUMNS.map((c) => c.name).join(', ')}`);
  }
  return filter;
}

/** -H: the columns, their types and descriptions, as util-linux's --list-columns prints them. */
export function listColumns(opts: { json: boolean; raw: boolean }): string {
  const info = [
    { name: 'HOLDER', whint: 0, right: true, trunc: false, wrap: false, json: 'string' as const },
    { name: 'TYPE', whint: 0, right: false, trunc: false, wrap: false, json: 'string' as const },
    { name: 'DESCRIPTION', whint: 0, right: false, trunc: false, wrap: false, json: 'string' as const },
  ];
  const lines = COLUMNS.map((c) => newLine([c.name, c.json === 'number' ? '<integer>' : '<string>', c.help]));
  return render(info, lines, {
    json: opts.json, raw: opts.raw, noHeadings: true, noTruncate: true, noWrap: true, tree: false, treeColumn: '',
    termWidth: null, utf8: localeIsUtf8(), tableName: 'lsns-columns',
  });
}

/** `tsns ls`: returns how to end, like every command. */
export async function lsCommand(args: readonly string[]): Promise<CliStatus> {
  const cmd = parseLs(args);
  if (cmd.help) {
    process.stdout.write(lsHelp());
    return SUCCESS;
  }
  if (cmd.listColumns) {
    process.stdout.write(listColumns(cmd));
    return SUCCESS;
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
  return SUCCESS;
}