/**
 * `tsns run`: unshare(1)'s options, and bwrap's for the sandbox, → the same
 * plan and launch a program gets from run().
 */
import { commandEnv, readFd, systemContext } from '../context';
import { NAMESPACES, UNSHARE_ALL } from '../namespaces';
import { describePlan, planToJson } from '../plan/describe';
import { makePlan } from '../plan/run';
import { execute, type RunAllOptions } from '../run';
import { parseMode, splitPair, type SandboxOp } from '../sandbox';
import { fdNumber, oneOf, parseArgs, UsageError, type Expand, type OptDef } from './args';
import { commandHelp } from './help';
import { exitFor, SUCCESS, type CliStatus } from './status';
import { commandBytes, supervised } from './supervise';
import { trace } from './trace';

export interface RunCommand {
  options: RunAllOptions;
  command: string[];
  dryRun: boolean;
  json: boolean;
  help: boolean;
  /** --args read words from an fd: the command line is no longer our argv's tail */
  argsFromFd: boolean;
}

/** What parsing has gathered so far. */
interface RunState {
  out: RunCommand;
  options: RunAllOptions;
  fs: SandboxOp[];
  // bwrap's --perms and --size apply to the next operation that takes them.
  perms?: number;
  size?: number;
  seccompFd?: number;
  addSeccomp: number[];
}

interface RunOpt extends OptDef {
  set(s: RunState, value: string | undefined): void;
}

const flag = (long: string, help: string, set: (o: RunAllOptions) => void, short?: string): RunOpt =>
  ({ long, ...(short ? { short } : {}), arg: 'none', help, set: (s) => set(s.options) });

const valued = (long: string, metavar: string, help: string, set: (s: RunState, v: string) => void, short?: string): RunOpt =>
  ({ long, ...(short ? { short } : {}), arg: 'required', metavar, help, set: (s, v) => set(s, v!) });

function seconds(option: string, value: string): number {
  if (!/^-?\d+$/.test(value)) throw new UsageError(`--${option} needs a whole number of seconds, not '${value}'`);
  return Number(value);
}

/** The pending --perms for an operation, used up. */
function perms(s: RunState): { perms?: number } {
  const p = s.perms === undefined ? {} : { perms: s.perms };
  s.perms = undefined;
  return p;
}

function permsAndSize(s: RunState): { perms?: number; size?: number } {
  const t = { ...perms(s), ...(s.size === undefined ? {} : { size: s.size }) };
  s.size = undefined;
  return t;
}

const bindOptions = (['bind', 'ro-bind', 'dev-bind'] as const).flatMap((op): RunOpt[] => {
  const what = op === 'bind' ? 'bind' : op === 'ro-bind' ? 'bind read-only' : 'bind, devices allowed,';
  const set = (tryIt: boolean) => (s: RunState, v: string) => {
    const [src, dest] = splitPair(op, v, false);
    s.fs.push({ op, src, ...(dest === undefined ? {} : { dest }), ...(tryIt ? { try: true } : {}) });
  };
  return [
    valued(op, 'SRC[:DEST]', `${what} host SRC at DEST in a new root`, set(false)),
    valued(`${op}-try`, 'SRC[:DEST]', `--${op}, skipped when SRC is missing`, set(true)),
  ];
});

const RUN_OPTIONS: RunOpt[] = [
  ...NAMESPACES.map((ns): RunOpt => ({
    long: ns.name, short: ns.short, arg: 'optional', metavar: 'FILE',
    help: `new ${ns.what} namespace${ns.name === 'pid' ? '; the command is its PID 1' : ns.name === 'time' ? ' (the child unshares it, then forks the command)' : ''}`,
    set: (s, v) => (s.options[ns.name] = v ?? true),
  })),
  flag('all', 'every namespace above', (o) => (o.all = true)),
  flag('map-root-user', 'map your uid and gid to root inside (implies --user)', (o) => (o.mapRootUser = true), 'r'),
  flag('map-current-user', 'map your uid and gid to themselves inside (implies --user)', (o) => (o.mapCurrentUser = true), 'c'),
  valued('map-user', 'UID|NAME', 'map your uid to UID inside (implies --user)', (s, v) => (s.options.mapUser = v)),
  valued('map-group', 'GID|NAME', 'map your gid to GID inside (implies --user)', (s, v) => (s.options.mapGroup = v)),
  valued('map-users', 'INNER:OUTER:COUNT', 'map a uid range (repeatable; without root through newuidmap and /etc/subuid)',
    (s, v) => (s.options.mapUsers = [...(s.options.mapUsers ?? []), v])),
  valued('map-groups', 'INNER:OUTER:COUNT', 'map a gid range (repeatable; without root through newgidmap and /etc/subgid)',
    (s, v) => (s.options.mapGroups = [...(s.options.mapGroups ?? []), v])),
  flag('map-auto', 'map your first /etc/subuid and /etc/subgid ranges from 0 (implies --user)', (o) => (o.mapAuto = true)),
  valued('setgroups', 'allow|deny', 'whether setgroups(2) is allowed in the user namespace',
    (s, v) => (s.options.setgroups = oneOf('setgroups', v, ['allow', 'deny'] as const))),
  valued('setuid', 'UID', 'uid the command runs as inside', (s, v) => (s.options.setuid = v), 'S'),
  valued('setgid', 'GID', 'gid the command runs as inside (drops supplementary groups)', (s, v) => (s.options.setgid = v), 'G'),
  flag('keep-caps', 'keep the user namespace\'s capabilities across exec, as ambient capabilities', (o) => (o.keepCaps = true)),
  valued('hostname', 'NAME', 'set the hostname inside (implies --uts)', (s, v) => (s.options.hostname = v)),
  valued('domainname', 'NAME', 'set the NIS domain name inside (implies --uts)', (s, v) => (s.options.domainname = v)),
  { long: 'mount-proc', arg: 'optional', metavar: 'DIR', help: 'mount a new proc on DIR, default /proc (implies --mount)', set: (s, v) => (s.options.mountProc = v ?? true) },
  valued('propagation', 'MODE', 'private|shared|slave|unchanged for / in the new mount namespace (default private)',
    (s, v) => (s.options.propagation = oneOf('propagation', v, ['private', 'shared', 'slave', 'unchanged'] as const))),
  valued('root', 'DIR', 'chroot to DIR before running the command', (s, v) => (s.options.root = v), 'R'),
  valued('wd', 'DIR', 'working directory of the command', (s, v) => (s.options.wd = v), 'w'),
  valued('monotonic', 'SECS', 'CLOCK_MONOTONIC offset in the new time namespace (implies --time)', (s, v) => (s.options.monotonic = seconds('monotonic', v))),
  valued('boottime', 'SECS', 'CLOCK_BOOTTIME offset in the new time namespace (implies --time)', (s, v) => (s.options.boottime = seconds('boottime', v))),
  valued('env', 'NAME=VALUE', 'set a variable for the command (repeatable)', (s, v) => {
    const eq = v.indexOf('=');
    if (eq < 1) throw new UsageError(`--env needs NAME=VALUE, not '${v}'`);
    s.options.env = { ...s.options.env, [v.slice(0, eq)]: v.slice(eq + 1) };
  }),
  flag('clear-env', 'start the command with an empty environment (plus --env)', (o) => (o.clearEnv = true)),
  { long: 'kill-child', arg: 'optional', metavar: 'SIGNAL', help: 'when tsns dies, the command gets SIGNAL (default SIGKILL)', set: (s, v) => (s.options.killChild = v ?? true) },
  flag('forward-signals', 'pass SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 on to the command', (o) => (o.forwardSignals = true)),
  flag('init', 'a minimal init as PID 1 reaps orphans and forwards signals (implies --pid)', (o) => (o.init = true)),
  flag('fork', 'accepted for unshare compatibility: tsns always runs the command as a child', () => {}, 'f'),
  // The sandbox filesystem and hardening, as bwrap has them; operations apply in order.
  ...bindOptions,
  valued('tmpfs', 'DEST', 'a new tmpfs at DEST (see --size, --perms)', (s, v) => s.fs.push({ op: 'tmpfs', dest: v, ...permsAndSize(s) })),
  valued('dir', 'DEST', 'create a directory (see --perms)', (s, v) => s.fs.push({ op: 'dir', dest: v, ...perms(s) })),
  valued('symlink', 'TARGET:DEST', 'create a symbolic link', (s, v) => {
    const [target, dest] = splitPair('symlink', v, true);
    s.fs.push({ op: 'symlink', target, dest: dest! });
  }),
  valued('file', 'SRC:DEST', 'copy a file, or an open fd (a number), to DEST (see --perms)', (s, v) => {
    const [src, dest] = splitPair('file', v, true);
    s.fs.push({ op: 'file', src: /^\d+$/.test(src) ? Number(src) : src, dest: dest!, ...perms(s) });
  }),
  valued('chmod', 'OCTAL:PATH', 'change permissions inside the sandbox', (s, v) => {
    const i = v.indexOf(':');
    if (i < 0) throw new UsageError('--chmod needs OCTAL:PATH');
    s.fs.push({ op: 'chmod', perms: parseMode('chmod', v.slice(0, i)), dest: v.slice(i + 1) });
  }),
  valued('remount-ro', 'DEST', 'make DEST and its submounts read-only', (s, v) => s.fs.push({ op: 'remount-ro', dest: v })),
  valued('proc', 'DEST', 'a new proc at DEST (for the new pid namespace)', (s, v) => s.fs.push({ op: 'proc', dest: v })),
  valued('dev', 'DEST', 'a minimal /dev at DEST: null zero full random urandom tty, pts, shm', (s, v) => s.fs.push({ op: 'dev', dest: v })),
  valued('overlay', 'LOWER[,LOWER...]:DEST', 'an overlay with a tmpfs upper layer: writes vanish afterwards', (s, v) => {
    const [lowers, dest] = splitPair('overlay', v, true);
    s.fs.push({ op: 'overlay', lowers: lowers.split(','), dest: dest! });
  }),
  valued('size', 'BYTES', 'size of the next --tmpfs', (s, v) => {
    if (!/^\d+$/.test(v)) throw new UsageError(`--size needs a number of bytes, not '${v}'`);
    s.size = Number(v);
  }),
  valued('perms', 'OCTAL', 'permissions of the next --tmpfs, --dir or --file', (s, v) => (s.perms = parseMode('perms', v))),
  valued('chdir', 'DIR', 'working directory inside the sandbox (as --wd)', (s, v) => (s.options.wd = v)),
  flag('new-session', 'setsid(): the command cannot inject input into your terminal', (o) => (o.newSession = true)),
  flag('die-with-parent', 'as --kill-child', (o) => (o.dieWithParent = true)),
  flag('no-new-privs', 'setuid binaries and file capabilities give nothing (on with any sandbox option)', (o) => (o.noNewPrivs = true)),
  valued('cap-drop', 'CAP|ALL', 'drop a capability from every set, bounding included (repeatable)', (s, v) => (s.options.capDrop = [...(s.options.capDrop ?? []), v])),
  valued('cap-add', 'CAP', 'keep a capability (after --cap-drop ALL; repeatable)', (s, v) => (s.options.capAdd = [...(s.options.capAdd ?? []), v])),
  // Its words were parsed in its place (see expandArgs).
  valued('args', 'FD', 'read more options, NUL-separated, from FD and parse them here (as bwrap; not within such words)', () => {}),
  valued('seccomp', 'FD', 'load the compiled seccomp BPF program open on FD last before exec (implies --no-new-privs)',
    (s, v) => (s.seccompFd = fdNumber('seccomp', v))),
  valued('add-seccomp-fd', 'FD', 'the same, for several programs in order (repeatable; not with --seccomp)', (s, v) => s.addSeccomp.push(fdNumber('add-seccomp-fd', v))),
  flag('unshare-all', 'user, ipc, pid, net, uts and cgroup namespaces', (o) => (o.unshareAll = true)),
  flag('share-net', 'with --unshare-all: keep the network', (o) => (o.shareNet = true)),
  ...UNSHARE_ALL.flatMap((ns) => [
    flag(`unshare-${ns.name}`, `bwrap's name for --${ns.name}`, (o) => (o[ns.name] = true)),
    ...(ns.bwrapTry ? [flag(`unshare-${ns.name}-try`, `bwrap's name for --${ns.name}`, (o) => (o[ns.name] = true))] : []),
  ]),
  flag('as-pid-1', 'accepted for bwrap compatibility: without --init the command is PID 1', () => {}),
  flag('sandbox', 'the ready profile: --unshare-all, read-only /usr /bin /lib /lib64 /etc, tmpfs /tmp and $HOME, --dev /dev, --proc /proc, --new-session, --no-new-privs, --cap-drop ALL',
    (o) => (o.sandbox = true)),
  { long: 'dry-run', arg: 'none', help: 'print the plan (clone flags, maps, mounts, command) and create nothing', set: (s) => (s.out.dryRun = true) },
  { long: 'json', arg: 'none', help: 'with --dry-run: print the plan as JSON', set: (s) => (s.out.json = true) },
  { long: 'help', short: 'h', arg: 'none', help: 'show this help', set: (s) => (s.out.help = true) },
];

export const RUN_HELP = {
  name: 'run',
  usage: '[options] [--] [command [args...]]',
  description: 'run a command in new namespaces (unshare)',
  options: RUN_OPTIONS,
  after: '\nWith no command, runs $SHELL (or /bin/sh) as a login shell. Exit status: the command\'s; 125 when tsns fails; 126/127 when the command cannot be executed or found.',
};

/** bwrap's --args data: NUL-separated words (a final NUL ends the last one, it starts none). */
export function argsWords(data: Uint8Array): string[] {
  const text = Buffer.from(data.buffer, data.byteOffset, data.length).toString();
  if (text === '') return [];
  return (text.endsWith('\0') ? text.slice(0, -1) : text).split('\0');
}

/** The checks that need every option seen. */
function finish(s: RunState): RunCommand {
  const { out, options } = s;
  if (out.json && !out.dryRun) throw new UsageError('--json goes with --dry-run');
  // As bwrap: one program (the last --seccomp wins), or a list, not both.
  if (s.seccompFd !== undefined && s.addSeccomp.length) throw new UsageError('--seccomp cannot be combined with --add-seccomp-fd');
  if (s.seccompFd !== undefined) options.seccomp = [s.seccompFd];
  if (s.addSeccomp.length) options.seccomp = s.addSeccomp;
  if (s.perms !== undefined || s.size !== undefined) throw new UsageError('--perms and --size apply to a following --tmpfs, --dir or --file');
  if (s.fs.length) options.filesystem = s.fs;
  return out;
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
  const state: RunState = { out: { options, command: operands, dryRun: false, json: false, help: false, argsFromFd }, options, fs: [], addSeccomp: [] };
  for (const { def, value } of parsed) def.set(state, value);
  return finish(state);
}

export async function runCommand(args: readonly string[]): Promise<CliStatus> {
  const t = process.uptime();
  const cmd = parseRun(args, (fd) => readFd(fd, 'arguments (--args)', 'args.bin'));
  if (cmd.help) {
    process.stdout.write(commandHelp(RUN_HELP));
    return SUCCESS;
  }
  const { options } = cmd;
  const plan = makePlan(cmd.command, options, systemContext(commandEnv(options)));
  if (cmd.dryRun) {
    process.stdout.write(cmd.json ? `${JSON.stringify(planToJson(plan), null, 2)}\n` : describePlan(plan));
    return SUCCESS;
  }
  const exact = commandBytes(args, cmd.command, !cmd.argsFromFd);
  trace('plan', (process.uptime() - t) * 1e3);
  return exitFor(await supervised((opts) => execute(plan, { ...options, ...exact, ...opts }), options));
}
