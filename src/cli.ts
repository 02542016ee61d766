/**
 * The command line: argv → typed options, then the same API a program uses.
 * Options are parsed getopt_long-style, as unshare(1) does: an optional value
 * only in the `--opt=VALUE` form (so `--mount-proc ps` runs ps), unambiguous
 * prefixes of long options, clustered short flags, and the first argument that
 * is not an option starts the command.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatError, TsnsError } from './errors';
import { exitFor } from './exit-status';
import type { RunResult } from './exit-status';
import { blockMonitorSignals, execMonitor, preload, reclaimTty } from './native';
import { parseMode, splitPair, type SandboxOp } from './sandbox';
import { describePlan, makePlan, planToJson } from './plan';
import { enter, type EnterOptions } from './enter';
import { assumeMainThread, execute, readFd, systemContext, type ProcessOptions, type RunAllOptions } from './spawn';
import { lsCommand } from './ls';

type ArgKind = 'none' | 'required' | 'optional';

interface OptDef {
  long: string;
  short?: string;
  arg: ArgKind;
  metavar?: string;
  help: string;
}

const NS_HELP: [string, string, string][] = [
  ['mount', 'm', 'new mount namespace'],
  ['uts', 'u', 'new UTS namespace (hostname, domainname)'],
  ['ipc', 'i', 'new IPC namespace'],
  ['net', 'n', 'new network namespace'],
  ['pid', 'p', 'new pid namespace; the command is its PID 1'],
  ['user', 'U', 'new user namespace'],
  ['cgroup', 'C', 'new cgroup namespace'],
  ['time', 'T', 'new time namespace (the child unshares it, then forks the command)'],
];

const RUN_OPTIONS: OptDef[] = [
  ...NS_HELP.map(([long, short, help]): OptDef => ({ long, short, arg: 'optional', metavar: 'FILE', help })),
  { long: 'all', arg: 'none', help: 'every namespace above' },
  { long: 'map-root-user', short: 'r', arg: 'none', help: 'map your uid and gid to root inside (implies --user)' },
  { long: 'map-current-user', short: 'c', arg: 'none', help: 'map your uid and gid to themselves inside (implies --user)' },
  { long: 'map-user', arg: 'required', metavar: 'UID|NAME', help: 'map your uid to UID inside (implies --user)' },
  { long: 'map-group', arg: 'required', metavar: 'GID|NAME', help: 'map your gid to GID inside (implies --user)' },
  { long: 'map-users', arg: 'required', metavar: 'INNER:OUTER:COUNT', help: 'map a uid range (repeatable; without root through newuidmap and /etc/subuid)' },
  { long: 'map-groups', arg: 'required', metavar: 'INNER:OUTER:COUNT', help: 'map a gid range (repeatable; without root through newgidmap and /etc/subgid)' },
  { long: 'map-auto', arg: 'none', help: 'map your first /etc/subuid and /etc/subgid ranges from 0 (implies --user)' },
  { long: 'setgroups', arg: 'required', metavar: 'allow|deny', help: 'whether setgroups(2) is allowed in the user namespace' },
  { long: 'setuid', short: 'S', arg: 'required', metavar: 'UID', help: 'uid the command runs as inside' },
  { long: 'setgid', short: 'G', arg: 'required', metavar: 'GID', help: 'gid the command runs as inside (drops supplementary groups)' },
  { long: 'keep-caps', arg: 'none', help: 'keep the user namespace\'s capabilities across exec, as ambient capabilities' },
  { long: 'hostname', arg: 'required', metavar: 'NAME', help: 'set the hostname inside (implies --uts)' },
  { long: 'domainname', arg: 'required', metavar: 'NAME', help: 'set the NIS domain name inside (implies --uts)' },
  { long: 'mount-proc', arg: 'optional', metavar: 'DIR', help: 'mount a new proc on DIR, default /proc (implies --mount)' },
  { long: 'propagation', arg: 'required', metavar: 'MODE', help: 'private|shared|slave|unchanged for / in the new mount namespace (default private)' },
  { long: 'root', short: 'R', arg: 'required', metavar: 'DIR', help: 'chroot to DIR before running the command' },
  { long: 'wd', short: 'w', arg: 'required', metavar: 'DIR', help: 'working directory of the command' },
  { long: 'monotonic', arg: 'required', metavar: 'SECS', help: 'CLOCK_MONOTONIC offset in the new time namespace (implies --time)' },
  { long: 'boottime', arg: 'required', metavar: 'SECS', help: 'CLOCK_BOOTTIME offset in the new time namespace (implies --time)' },
  { long: 'env', arg: 'required', metavar: 'NAME=VALUE', help: 'set a variable for the command (repeatable)' },
  { long: 'clear-env', arg: 'none', help: 'start the command with an empty environment (plus --env)' },
  { long: 'kill-child', arg: 'optional', metavar: 'SIGNAL', help: 'when tsns dies, the command gets SIGNAL (default SIGKILL)' },
  { long: 'forward-signals', arg: 'none', help: 'pass SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 on to the command' },
  { long: 'init', arg: 'none', help: 'a minimal init as PID 1 reaps orphans and forwards signals (implies --pid)' },
  { long: 'fork', short: 'f', arg: 'none', help: 'accepted for unshare compatibility: tsns always runs the command as a child' },
  // The sandbox filesystem and hardening, as bwrap has them; operations apply in order.
  ...(['bind', 'ro-bind', 'dev-bind'] as const).flatMap((op): OptDef[] => [
    { long: op, arg: 'required', metavar: 'SRC[:DEST]', help: `${op === 'bind' ? 'bind' : op === 'ro-bind' ? 'bind read-only' : 'bind, devices allowed,'} host SRC at DEST in a new root` },
    { long: `${op}-try`, arg: 'required', metavar: 'SRC[:DEST]', help: `--${op}, skipped when SRC is missing` },
  ]),
  { long: 'tmpfs', arg: 'required', metavar: 'DEST', help: 'a new tmpfs at DEST (see --size, --perms)' },
  { long: 'dir', arg: 'required', metavar: 'DEST', help: 'create a directory (see --perms)' },
  { long: 'symlink', arg: 'required', metavar: 'TARGET:DEST', help: 'create a symbolic link' },
  { long: 'file', arg: 'required', metavar: 'SRC:DEST', help: 'copy a file, or an open fd (a number), to DEST (see --perms)' },
  { long: 'chmod', arg: 'required', metavar: 'OCTAL:PATH', help: 'change permissions inside the sandbox' },
  { long: 'remount-ro', arg: 'required', metavar: 'DEST', help: 'make DEST and its submounts read-only' },
  { long: 'proc', arg: 'required', metavar: 'DEST', help: 'a new proc at DEST (for the new pid namespace)' },
  { long: 'dev', arg: 'required', metavar: 'DEST', help: 'a minimal /dev at DEST: null zero full random urandom tty, pts, shm' },
  { long: 'overlay', arg: 'required', metavar: 'LOWER[,LOWER...]:DEST', help: 'an overlay with a tmpfs upper layer: writes vanish afterwards' },
  { long: 'size', arg: 'required', metavar: 'BYTES', help: 'size of the next --tmpfs' },
  { long: 'perms', arg: 'required', metavar: 'OCTAL', help: 'permissions of the next --tmpfs, --dir or --file' },
  { long: 'chdir', arg: 'required', metavar: 'DIR', help: 'working directory inside the sandbox (as --wd)' },
  { long: 'new-session', arg: 'none', help: 'setsid(): the command cannot inject input into your terminal' },
  { long: 'die-with-parent', arg: 'none', help: 'as --kill-child' },
  { long: 'no-new-privs', arg: 'none', help: 'setuid binaries and file capabilities give nothing (on with any sandbox option)' },
  { long: 'cap-drop', arg: 'required', metavar: 'CAP|ALL', help: 'drop a capability from every set, bounding included (repeatable)' },
  { long: 'cap-add', arg: 'required', metavar: 'CAP', help: 'keep a capability (after --cap-drop ALL; repeatable)' },
  { long: 'args', arg: 'required', metavar: 'FD', help: 'read more options, NUL-separated, from FD and parse them here (as bwrap; not within such words)' },
  { long: 'seccomp', arg: 'required', metavar: 'FD', help: 'load the compiled seccomp BPF program open on FD last before exec (implies --no-new-privs)' },
  { long: 'add-seccomp-fd', arg: 'required', metavar: 'FD', help: 'the same, for several programs in order (repeatable; not with --seccomp)' },
  { long: 'unshare-all', arg: 'none', help: 'user, ipc, pid, net, uts and cgroup namespaces' },
  { long: 'share-net', arg: 'none', help: 'with --unshare-all: keep the network' },
  ...(['user', 'ipc', 'pid', 'net', 'uts', 'cgroup'] as const).flatMap((ns): OptDef[] => [
    { long: `unshare-${ns}`, arg: 'none', help: `bwrap's name for --${ns}` },
    ...(ns === 'user' || ns === 'cgroup' ? [{ long: `unshare-${ns}-try`, arg: 'none', help: `bwrap's name for --${ns}` } as OptDef] : []),
  ]),
  { long: 'as-pid-1', arg: 'none', help: 'accepted for bwrap compatibility: without --init the command is PID 1' },
  { long: 'sandbox', arg: 'none', help: 'the ready profile: --unshare-all, read-only /usr /bin /lib /lib64 /etc, tmpfs /tmp and $HOME, --dev /dev, --proc /proc, --new-session, --no-new-privs, --cap-drop ALL' },
  { long: 'dry-run', arg: 'none', help: 'print the plan (clone flags, maps, mounts, command) and create nothing' },
  { long: 'json', arg: 'none', help: 'with --dry-run: print the plan as JSON' },
  { long: 'help', short: 'h', arg: 'none', help: 'show this help' },
];

const ENTER_OPTIONS: OptDef[] = [
  { long: 'target', short: 't', arg: 'required', metavar: 'PID', help: 'the process whose namespaces to enter' },
  ...NS_HELP.map(([long, short]): OptDef => ({ long, short, arg: 'optional', metavar: 'FILE', help: `enter the ${long} namespace (of the target, or FILE)` })),
  { long: 'all', short: 'a', arg: 'none', help: 'enter every namespace of the target (the default when none is named)' },
  { long: 'root', short: 'r', arg: 'optional', metavar: 'DIR', help: 'root directory: the target\'s, or DIR' },
  { long: 'wd', short: 'w', arg: 'optional', metavar: 'DIR', help: 'working directory: the target\'s (default when its mount namespace is entered), or DIR' },
  { long: 'preserve-credentials', arg: 'none', help: 'keep your uid and gid after entering a user namespace (default: 0 there)' },
  { long: 'setuid', short: 'S', arg: 'required', metavar: 'UID', help: 'uid the command runs as' },
  { long: 'setgid', short: 'G', arg: 'required', metavar: 'GID', help: 'gid the command runs as' },
  { long: 'env', short: 'e', arg: 'none', help: 'give the command the target\'s environment' },
  { long: 'forward-signals', arg: 'none', help: 'pass SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 on to the command' },
  { long: 'help', short: 'h', arg: 'none', help: 'show this help' },
];

export class UsageError extends TsnsError {
  constructor(message: string, hint = "see 'tsns run --help'") {
    super(message, { stage: 'option', hint });
  }
}

interface Parsed {
  options: [OptDef, string | undefined][];
  operands: string[];
}

function findLong(defs: readonly OptDef[], name: string): OptDef {
  const exact = defs.find((d) => d.long === name);
  if (exact) return exact;
  const matches = defs.filter((d) => d.long.startsWith(name));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new UsageError(`option '--${name}' is ambiguous; possibilities: ${matches.map((m) => `'--${m.long}'`).join(' ')}`);
  }
  throw new UsageError(`unrecognized option '--${name}'`);
}

/**
 * Words to parse in place of an option (bwrap's --args FD), or undefined to
 * keep the option as it is.
 */
export type Expand = (def: OptDef, value: string) => readonly string[] | undefined;

/** getopt_long with a leading '+': options stop at the first operand. */
export function parseArgs(defs: readonly OptDef[], args: readonly string[], usage = "see 'tsns run --help'", expand?: Expand): Parsed {
  try {
    return parseArgsOrThrow(defs, args, expand);
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(e.message, usage);
    throw e;
  }
}

function parseArgsOrThrow(defs: readonly OptDef[], input: readonly string[], expand?: Expand): Parsed {
  const options: [OptDef, string | undefined][] = [];
  const args = [...input];
  let i = 0;
  // Words up to this index were read by an expansion, which may not expand again.
  let expandedUntil = -1;
  const expanded = (def: OptDef, value: string | undefined): void => {
    const words = value === undefined ? undefined : expand?.(def, value);
    if (!words) return;
    if (i <= expandedUntil) throw new UsageError(`--${def.long} cannot be used in words --${def.long} read`);
    args.splice(i + 1, 0, ...words);
    expandedUntil = i + words.length;
  };
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const def = findLong(defs, name);
      let value = eq < 0 ? undefined : arg.slice(eq + 1);
      if (def.arg === 'none' && value !== undefined) throw new UsageError(`option '--${def.long}' doesn't allow an argument`);
      if (def.arg === 'required' && value === undefined) {
        if (i + 1 >= args.length) throw new UsageError(`option '--${def.long}' requires an argument`);
        value = args[++i];
      }
      options.push([def, value]);
      expanded(def, value);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const ch = arg[j]!;
        const def = defs.find((d) => d.short === ch);
        if (!def) throw new UsageError(`invalid option -- '${ch}'`);
        if (def.arg === 'required') {
          let value = arg.slice(j + 1);
          if (value === '') {
            if (i + 1 >= args.length) throw new UsageError(`option requires an argument -- '${ch}'`);
            value = args[++i]!;
          }
          options.push([def, value]);
          break;
        }
        options.push([def, undefined]);
      }
      continue;
    }
    break;
  }
  return { options, operands: args.slice(i) };
}

function seconds(option: string, value: string): number {
  if (!/^-?\d+$/.test(value)) throw new UsageError(`--${option} needs a whole number of seconds, not '${value}'`);
  return Number(value);
}

function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`unsupported --${option} argument '${value}'; use one of: ${allowed.join(', ')}`);
}

export interface RunCommand {
  options: RunAllOptions;
  command: string[];
  dryRun: boolean;
  json: boolean;
  help: boolean;
  /** --args read words from an fd: the command line is no longer our argv's tail */
  argsFromFd: boolean;
}

/** bwrap's --args data: NUL-separated words (a final NUL ends the last one, it starts none). */
export function argsWords(data: Uint8Array): string[] {
  const text = Buffer.from(data.buffer, data.byteOffset, data.length).toString();
  if (text === '') return [];
  return (text.endsWith('\0') ? text.slice(0, -1) : text).split('\0');
}

function fdNumber(option: string, value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 0x7fffffff) throw new UsageError(`--${option} needs an open file descriptor's number, not '${value}'`);
  return Number(value);
}

/**
 * `tsns run` argv → typed options. `readFd` reads what --args FD holds; without
 * it (the pure parse) --args is refused.
 */
export function parseRun(args: readonly string[], readFd?: (fd: number) => Uint8Array): RunCommand {
  let argsFromFd = false;
  const expand: Expand = (def, value) => {
    if (def.long !== 'args') return undefined;
    const fd = fdNumber('args', value);
    if (!readFd) throw new UsageError('--args: no file descriptors are read here');
    argsFromFd = true;
    return argsWords(readFd(fd));
  };
  const { options: parsed, operands } = parseArgs(RUN_OPTIONS, args, undefined, expand);
  const options: RunAllOptions = {};
  const out: RunCommand = { options, command: operands, dryRun: false, json: false, help: false, argsFromFd };
  const fs: SandboxOp[] = [];
  // bwrap's --perms and --size apply to the next operation that takes them.
  let pendingPerms: number | undefined;
  let pendingSize: number | undefined;
  let seccompFd: number | undefined;
  const addSeccomp: number[] = [];
  const perms = () => {
    const p = pendingPerms === undefined ? {} : { perms: pendingPerms };
    pendingPerms = undefined;
    return p;
  };
  const take = () => {
    const t = { ...perms(), ...(pendingSize === undefined ? {} : { size: pendingSize }) };
    pendingSize = undefined;
    return t;
  };
  for (const [def, value] of parsed) {
    switch (def.long) {
      case 'mount': case 'uts': case 'ipc': case 'net': case 'pid': case 'user': case 'cgroup': case 'time':
        options[def.long] = value ?? true;
        break;
      case 'map-users': options.mapUsers = [...(options.mapUsers ?? []), value!]; break;
      case 'map-groups': options.mapGroups = [...(options.mapGroups ?? []), value!]; break;
      case 'map-auto': options.mapAuto = true; break;
      case 'setuid': options.setuid = value!; break;
      case 'setgid': options.setgid = value!; break;
      case 'keep-caps': options.keepCaps = true; break;
      case 'root': options.root = value!; break;
      case 'wd': options.wd = value!; break;
      case 'monotonic': options.monotonic = seconds('monotonic', value!); break;
      case 'boottime': options.boottime = seconds('boottime', value!); break;
      case 'env': {
        const eq = value!.indexOf('=');
        if (eq < 1) throw new UsageError(`--env needs NAME=VALUE, not '${value}'`);
        options.env = { ...options.env, [value!.slice(0, eq)]: value!.slice(eq + 1) };
        break;
      }
      case 'clear-env': options.clearEnv = true; break;
      case 'kill-child': options.killChild = value ?? true; break;
      case 'forward-signals': options.forwardSignals = true; break;
      case 'init': options.init = true; break;
      case 'all': options.all = true; break;
      case 'map-root-user': options.mapRootUser = true; break;
      case 'map-current-user': options.mapCurrentUser = true; break;
      case 'map-user': options.mapUser = value!; break;
      case 'map-group': options.mapGroup = value!; break;
      case 'setgroups': options.setgroups = oneOf('setgroups', value!, ['allow', 'deny'] as const); break;
      case 'hostname': options.hostname = value!; break;
      case 'domainname': options.domainname = value!; break;
      case 'mount-proc': options.mountProc = value ?? true; break;
      case 'propagation':
        options.propagation = oneOf('propagation', value!, ['private', 'shared', 'slave', 'unchanged'] as const);
        break;
      case 'fork': case 'as-pid-1': break;
      case 'bind': case 'ro-bind': case 'dev-bind': case 'bind-try': case 'ro-bind-try': case 'dev-bind-try': {
        const [src, dest] = splitPair(def.long, value!, false);
        const op = def.long.replace(/-try$/, '') as 'bind' | 'ro-bind' | 'dev-bind';
        fs.push({ op, src, ...(dest === undefined ? {} : { dest }), ...(def.long.endsWith('-try') ? { try: true } : {}) });
        break;
      }
      case 'tmpfs':
        fs.push({ op: 'tmpfs', dest: value!, ...take() });
        break;
      case 'dir': fs.push({ op: 'dir', dest: value!, ...perms() }); break;
      case 'symlink': {
        const [target, dest] = splitPair('symlink', value!, true);
        fs.push({ op: 'symlink', target, dest: dest! });
        break;
      }
      case 'file': {
        const [src, dest] = splitPair('file', value!, true);
        fs.push({ op: 'file', src: /^\d+$/.test(src) ? Number(src) : src, dest: dest!, ...perms() });
        break;
      }
      case 'chmod': {
        const i = value!.indexOf(':');
        if (i < 0) throw new UsageError('--chmod needs OCTAL:PATH');
        fs.push({ op: 'chmod', perms: parseMode('chmod', value!.slice(0, i)), dest: value!.slice(i + 1) });
        break;
      }
      case 'remount-ro': fs.push({ op: 'remount-ro', dest: value! }); break;
      case 'proc': fs.push({ op: 'proc', dest: value! }); break;
      case 'dev': fs.push({ op: 'dev', dest: value! }); break;
      case 'overlay': {
        const [lowers, dest] = splitPair('overlay', value!, true);
        fs.push({ op: 'overlay', lowers: lowers.split(','), dest: dest! });
        break;
      }
      case 'size':
        if (!/^\d+$/.test(value!)) throw new UsageError(`--size needs a number of bytes, not '${value}'`);
        pendingSize = Number(value);
        break;
      case 'perms': pendingPerms = parseMode('perms', value!); break;
      case 'chdir': options.wd = value!; break;
      case 'new-session': options.newSession = true; break;
      case 'die-with-parent': options.dieWithParent = true; break;
      case 'no-new-privs': options.noNewPrivs = true; break;
      case 'cap-drop': options.capDrop = [...(options.capDrop ?? []), value!]; break;
      case 'cap-add': options.capAdd = [...(options.capAdd ?? []), value!]; break;
      case 'args': break; // its words were parsed in its place
      case 'seccomp': seccompFd = fdNumber('seccomp', value!); break;
      case 'add-seccomp-fd': addSeccomp.push(fdNumber('add-seccomp-fd', value!)); break;
      case 'unshare-all': options.unshareAll = true; break;
      case 'share-net': options.shareNet = true; break;
      case 'unshare-user': case 'unshare-user-try': options.user = true; break;
      case 'unshare-ipc': options.ipc = true; break;
      case 'unshare-pid': options.pid = true; break;
      case 'unshare-net': options.net = true; break;
      case 'unshare-uts': options.uts = true; break;
      case 'unshare-cgroup': case 'unshare-cgroup-try': options.cgroup = true; break;
      case 'sandbox': options.sandbox = true; break;
      case 'dry-run': out.dryRun = true; break;
      case 'json': out.json = true; break;
      case 'help': out.help = true; break;
    }
  }
  if (out.json && !out.dryRun) throw new UsageError('--json goes with --dry-run');
  // As bwrap: one program (the last --seccomp wins), or a list, not both.
  if (seccompFd !== undefined && addSeccomp.length) throw new UsageError('--seccomp cannot be combined with --add-seccomp-fd');
  if (seccompFd !== undefined) options.seccomp = [seccompFd];
  if (addSeccomp.length) options.seccomp = addSeccomp;
  if (pendingPerms !== undefined || pendingSize !== undefined) throw new UsageError('--perms and --size apply to a following --tmpfs, --dir or --file');
  if (fs.length) options.filesystem = fs;
  return out;
}

export interface EnterCommand {
  target: number | null;
  options: EnterOptions;
  command: string[];
  help: boolean;
}

function pidArg(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`invalid pid '${value}'`, "see 'tsns enter --help'");
  }
  return Number(value);
}

function idArg(option: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`--${option} needs a numeric id, not '${value}'`, "see 'tsns enter --help'");
  return Number(value);
}

/** `tsns enter` argv → typed options; the target is -t PID or the first operand. */
export function parseEnter(args: readonly string[]): EnterCommand {
  const { options: parsed, operands } = parseArgs(ENTER_OPTIONS, args, "see 'tsns enter --help'");
  const options: EnterOptions = {};
  const out: EnterCommand = { target: null, options, command: operands, help: false };
  for (const [def, value] of parsed) {
    switch (def.long) {
      case 'target': out.target = pidArg(value!); break;
      case 'mount': case 'uts': case 'ipc': case 'net': case 'pid': case 'user': case 'cgroup': case 'time':
        options[def.long] = value ?? true;
        break;
      case 'all': options.all = true; break;
      case 'root': options.root = value ?? true; break;
      case 'wd': options.wd = value ?? true; break;
      case 'preserve-credentials': options.preserveCredentials = true; break;
      case 'setuid': options.setuid = idArg('setuid', value!); break;
      case 'setgid': options.setgid = idArg('setgid', value!); break;
      case 'env': options.targetEnv = true; break;
      case 'forward-signals': options.forwardSignals = true; break;
      case 'help': out.help = true; break;
    }
  }
  if (out.target === null && operands.length > 0 && /^\d+$/.test(operands[0]!)) {
    out.target = pidArg(operands[0]!);
    out.command = operands.slice(operands[1] === '--' ? 2 : 1);
  }
  const files = NS_HELP.some(([n]) => typeof options[n as keyof EnterOptions] === 'string');
  if (out.target === null && !files && !out.help) {
    throw new UsageError('no target: give a pid (tsns enter PID, or -t PID) or namespace files (--net=FILE)', "see 'tsns enter --help'");
  }
  return out;
}

async function enterCommand(args: readonly string[]): Promise<CliStatus> {
  const cmd = parseEnter(args);
  if (cmd.help) {
    process.stdout.write(help('enter'));
    return { code: 0, signal: null };
  }
  const bytes = commandBytes(args, cmd.command, true);
  const exact = cmd.options.targetEnv ? { argvBytes: bytes.argvBytes } : bytes;
  return exitFor(await supervised((opts) => enter(cmd.target, cmd.command, { ...cmd.options, ...exact, ...opts }), cmd.options));
}

const TRACE = Boolean(process.env.TSNS_TRACE);

/** TSNS_TRACE=1: where the CLI's time goes, one `tsns-trace: PHASE MS` line each. */
export function trace(phase: string, ms: number): void {
  if (TRACE) process.stderr.write(`tsns-trace: ${phase} ${ms.toFixed(3)}\n`);
}

/**
 * Start the command, then hand the wait to native/monitor.c (an exec in
 * place: same pid, the command still our child), so that a long-running
 * command is watched by a megabyte rather than a Node process. Where that
 * exec fails, Node waits as before.
 */
async function supervised(start: (opts: ProcessOptions) => Promise<RunResult>, opts: ProcessOptions): Promise<RunResult> {
  const forward = opts.forwardSignals ?? false;
  if (!forward) {
    // As `unshare --fork` does: the terminal's ^C and a plain kill are the command's to handle.
    const ignore = () => {};
    process.on('SIGINT', ignore);
    process.on('SIGTERM', ignore);
  }
  // process.uptime, not performance: the performance global loads perf_hooks (milliseconds).
  let t = process.uptime();
  preload();
  trace('ffi', (process.uptime() - t) * 1e3);
  blockMonitorSignals(forward);
  t = process.uptime();
  const result = await start({
    onStart: (pid) => {
      trace('clone-exec', (process.uptime() - t) * 1e3);
      execMonitor(pid, forward, TRACE);
    },
  });
  reclaimTty();
  return result;
}

export interface CliStatus {
  code: number;
  /** a signal to die of (the command's), instead of exiting with code */
  signal: number | null;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Our option table as commander's help lists it; optional values in their `=` form. */
function describeOptions(cmd: import('commander').Command, defs: readonly OptDef[]): void {
  for (const d of defs) {
    if (d.long === 'help') continue;
    const value = d.arg === 'required' ? ` <${d.metavar}>` : d.arg === 'optional' ? `[=${d.metavar}]` : '';
    cmd.option(`${d.short ? `-${d.short}, ` : ''}--${d.long}${value}`, d.help);
  }
}

function help(command?: string): string {
  // commander only formats help, so it is loaded only when help is asked for.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Command } = require('commander') as typeof import('commander');
  const program = new Command('tsns').description('run programs in new Linux namespaces').version(version());
  const run = program
    .command('run')
    .usage('[options] [--] [command [args...]]')
    .description('run a command in new namespaces (unshare)');
  describeOptions(run, RUN_OPTIONS);
  const enterHelp = program
    .command('enter')
    .usage('[options] <pid> [--] [command [args...]]')
    .description('run a command in the namespaces of a running process (nsenter)');
  describeOptions(enterHelp, ENTER_OPTIONS);
  enterHelp.addHelpText('after', '\nWith no namespace option, enters every namespace of the target that differs from tsns\'s own. With no command, runs $SHELL (or /bin/sh).');
  program.command('ls').usage('[options] [namespace]').description("list namespaces and their processes (lsns); see 'tsns ls --help'");
  run.addHelpText('after', '\nWith no command, runs $SHELL (or /bin/sh) as a login shell. Exit status: the command\'s; 125 when tsns fails; 126/127 when the command cannot be executed or found.');
  if (command === 'enter') return enterHelp.helpInformation();
  return command === 'run' ? run.helpInformation() : program.helpInformation();
}

async function printError(err: TsnsError): Promise<void> {
  let text = formatError(err);
  if (process.stderr.isTTY && !process.env.NO_COLOR) {
    // Loaded only when colour is printed: it costs milliseconds at start-up.
    const chalk = (await import('chalk')).default;
    text = text.replace(/^tsns:/, chalk.red.bold('tsns:')).replace(/^hint:/m, chalk.yellow('hint:'));
  }
  process.stderr.write(text);
}

async function runCommand(args: readonly string[]): Promise<CliStatus> {
  const t = process.uptime();
  const cmd = parseRun(args, (fd) => readFd(fd, 'arguments (--args)', 'args.bin'));
  if (cmd.help) {
    process.stdout.write(help('run'));
    return { code: 0, signal: null };
  }
  const { options } = cmd;
  // The plan reads a variable or two: copy the environment only to overlay --env.
  const env = options.clearEnv ? { ...options.env } : options.env ? { ...process.env, ...options.env } : process.env;
  const plan = makePlan(cmd.command, options, systemContext(env));
  if (cmd.dryRun) {
    process.stdout.write(cmd.json ? `${JSON.stringify(planToJson(plan), null, 2)}\n` : describePlan(plan));
    return { code: 0, signal: null };
  }
  const exact = commandBytes(args, cmd.command, !cmd.argsFromFd);
  trace('plan', (process.uptime() - t) * 1e3);
  return exitFor(await supervised((opts) => execute(plan, { ...options, ...exact, ...opts }), options));
}

/**
 * Our own arguments as the kernel has them. Node decodes argv as UTF-8, so
 * bytes that are not survive only here; `args` must be the tail of our argv.
 */
function argumentBytes(args: readonly string[]): Buffer[] | undefined {
  let raw: Buffer;
  try {
    raw = readFileSync('/proc/self/cmdline');
  } catch {
    return undefined;
  }
  const all: Buffer[] = [];
  for (let at = 0; at < raw.length;) {
    const end = raw.indexOf(0, at);
    all.push(raw.subarray(at, end < 0 ? raw.length : end));
    at = end < 0 ? raw.length : end + 1;
  }
  const tail = all.slice(all.length - args.length);
  // Only when they are the same arguments (not, say, main() called by a program).
  if (tail.length !== args.length || tail.some((b, i) => b.toString() !== args[i])) return undefined;
  return tail;
}

// Node decodes argv and the environment as UTF-8 and puts U+FFFD where that
// fails; without one, the strings are the bytes and /proc need not be read.
const LOSSY = '\uFFFD';

/**
 * The command's bytes: the operands are the tail of the subcommand's
 * arguments, unless words read by --args moved them (`fromArgv` false).
 */
function commandBytes(args: readonly string[], command: readonly string[], fromArgv: boolean): { argvBytes?: Buffer[]; environBytes: boolean } {
  const lossy = fromArgv && args.some((a) => a.includes(LOSSY));
  const bytes = lossy ? argumentBytes(args)?.slice(args.length - command.length) : undefined;
  const env = process.env;
  const environBytes = Object.keys(env).some((k) => k.includes(LOSSY) || env[k]!.includes(LOSSY));
  return { ...(bytes && command.length ? { argvBytes: bytes } : {}), environBytes };
}

/** The whole CLI; returns how to end instead of exiting, so bin/tsns.js is the only place that exits. */
export async function main(argv: readonly string[]): Promise<CliStatus> {
  assumeMainThread();
  try {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'run':
        return await runCommand(rest);
      case 'enter':
        return await enterCommand(rest);
      case 'ls': return await lsCommand(rest);
      case undefined:
      case '-h':
      case '--help':
        process.stdout.write(help());
        return { code: sub === undefined ? 125 : 0, signal: null };
      case 'help':
        process.stdout.write(help(rest[0]));
        return { code: 0, signal: null };
      case '-V':
      case '--version':
        process.stdout.write(`tsns ${version()}\n`);
        return { code: 0, signal: null };
      default:
        throw new UsageError(`unknown command '${sub}'`, "commands: run, enter, ls; see 'tsns --help'");
    }
  } catch (e) {
    if (!(e instanceof TsnsError) || process.env.TSNS_DEBUG) {
      if (!(e instanceof TsnsError)) throw e;
      process.stderr.write(`${e.stack}\n`);
    }
    await printError(e);
    return { code: e.exitCode, signal: null };
  }
}

export { die } from './native';
