/** `tsns enter`: nsenter(1)'s options → the same plan and launch a program gets from enter(). */
import { enter, planEnter, type EnterOptions } from '../enter';
import { NAMESPACES } from '../namespaces';
import { describeEnterPlan, enterPlanToJson } from '../plan/describe';
import { fdNumber, parseArgs, UsageError, type OptDef } from './args';
import { commandHelp } from './help';
import { exitFor, SUCCESS, type CliStatus } from './status';
import { commandBytes, supervised } from './supervise';

const USAGE = "see 'tsns enter --help'";

export interface EnterCommand {
  target: number | null;
  /** -W seen, with or without a directory */
  wdnsGiven?: boolean;
  options: EnterOptions;
  command: string[];
  help: boolean;
  dryRun: boolean;
  json: boolean;
}

interface EnterOpt extends OptDef {
  set(c: EnterCommand, value: string | undefined): void;
}

function pidArg(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`invalid pid '${value}'`, USAGE);
  }
  return Number(value);
}

function idArg(option: string, value: string): number | 'follow' {
  // util-linux 2.42: follow takes the target's.
  if (value === 'follow') return value;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${option} needs a numeric id or 'follow', not '${value}'`, USAGE);
  return Number(value);
}

const ENTER_OPTIONS: EnterOpt[] = [
  {
    long: 'target', short: 't', arg: 'required', metavar: 'PID[:INODE]', help: 'the process whose namespaces to enter; INODE: its pidfd\'s, to be sure it is that one',
    set: (c, v) => {
      // util-linux 2.42: PID:INODE names one process, not whichever has the pid now.
      const [pid, ino] = v!.split(':');
      c.target = pidArg(pid!);
      if (ino !== undefined) {
        if (!/^\d+$/.test(ino) || Number(ino) === 0) throw new UsageError(`invalid pid '${v}'`, USAGE);
        c.options.targetInode = Number(ino);
      }
    },
  },
  ...NAMESPACES.map((ns): EnterOpt => ({
    long: ns.name, short: ns.short, arg: 'optional', shortValue: true, metavar: 'FILE', help: `enter the ${ns.name} namespace (of the target, or FILE)`,
    set: (c, v) => (c.options[ns.name] = v ?? true),
  })),
  { long: 'all', short: 'a', arg: 'none', help: 'enter every namespace of the target (the default when none is named)', set: (c) => (c.options.all = true) },
  { long: 'root', short: 'r', arg: 'optional', shortValue: true, metavar: 'DIR', help: 'root directory: the target\'s, or DIR', set: (c, v) => (c.options.root = v ?? true) },
  {
    long: 'wd', short: 'w', arg: 'optional', shortValue: true, metavar: 'DIR', help: 'working directory: the target\'s (default when its mount namespace is entered), or DIR',
    set: (c, v) => (c.options.wd = v ?? true),
  },
  {
    long: 'preserve-credentials', arg: 'none', help: 'keep your uid and gid after entering a user namespace (default: 0 there)',
    set: (c) => (c.options.preserveCredentials = true),
  },
  {
    long: 'wdns', short: 'W', arg: 'optional', shortValue: true, metavar: 'DIR', help: 'working directory, opened after joining and after the root changes',
    set: (c, v) => {
      // As nsenter: a bare -W changes nothing, but still may not go with -w.
      c.wdnsGiven = true;
      if (v !== undefined) c.options.wdns = v;
    },
  },
  { long: 'setuid', short: 'S', arg: 'required', metavar: 'UID', help: 'uid the command runs as, or follow: the target\'s', set: (c, v) => (c.options.setuid = idArg('setuid', v!)) },
  { long: 'setgid', short: 'G', arg: 'required', metavar: 'GID', help: 'gid the command runs as, or follow: the target\'s', set: (c, v) => (c.options.setgid = idArg('setgid', v!)) },
  { long: 'keep-caps', arg: 'none', help: 'keep the capabilities of a joined user namespace across exec (ambient)', set: (c) => (c.options.keepCaps = true) },
  {
    long: 'net-socket', short: 'N', arg: 'required', metavar: 'FD', help: 'enter the network namespace of the target\'s socket FD',
    set: (c, v) => (c.options.netSocket = fdNumber('net-socket', v!, USAGE)),
  },
  { long: 'user-parent', arg: 'none', help: 'enter the parent user namespace (of the target\'s, or of --user=FILE)', set: (c) => (c.options.userParent = true) },
  { long: 'no-fork', short: 'F', arg: 'none', help: 'no fork for a pid namespace: the command stays outside it, its children go in', set: (c) => (c.options.noFork = true) },
  { long: 'env', short: 'e', arg: 'none', help: 'give the command the target\'s environment', set: (c) => (c.options.targetEnv = true) },
  {
    long: 'forward-signals', arg: 'none', help: 'pass SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 on to the command',
    set: (c) => (c.options.forwardSignals = true),
  },
  { long: 'dry-run', arg: 'none', help: 'print the plan (what is joined, in which order, and the command) and join nothing', set: (c) => (c.dryRun = true) },
  { long: 'json', arg: 'none', help: 'with --dry-run: print the plan as JSON', set: (c) => (c.json = true) },
  { long: 'help', short: 'h', arg: 'none', help: 'show this help', set: (c) => (c.help = true) },
];

export const ENTER_HELP = {
  name: 'enter',
  usage: '[options] <pid> [--] [command [args...]]',
  description: 'run a command in the namespaces of a running process (nsenter)',
  options: ENTER_OPTIONS,
  after: '\nWith no namespace option, enters every namespace of the target that differs from tsns\'s own. With no command, runs $SHELL (or /bin/sh).',
};

/** `tsns enter` argv → typed options; the target is -t PID or the first operand. */
export function parseEnter(args: readonly string[]): EnterCommand {
  const { options: parsed, operands } = parseArgs(ENTER_OPTIONS, args, USAGE);
  const out: EnterCommand = { target: null, options: {}, command: operands, help: false, dryRun: false, json: false };
  for (const { def, value } of parsed) def.set(out, value);
  if (out.target === null && operands.length > 0 && /^\d+$/.test(operands[0]!)) {
    out.target = pidArg(operands[0]!);
    out.command = operands.slice(operands[1] === '--' ? 2 : 1);
  }
  const files = NAMESPACES.some((n) => typeof out.options[n.name] === 'string');
  if (out.target === null && !files && !out.help) {
    throw new UsageError('no target: give a pid (tsns enter PID, or -t PID) or namespace files (--net=FILE)', USAGE);
  }
  if (out.json && !out.dryRun) throw new UsageError('--json goes with --dry-run', USAGE);
  if (out.wdnsGiven && out.options.wd !== undefined) throw new UsageError('options --wd and --wdns cannot be combined', USAGE);
  return out;
}

export async function enterCommand(args: readonly string[]): Promise<CliStatus> {
  const cmd = parseEnter(args);
  if (cmd.help) {
    process.stdout.write(commandHelp(ENTER_HELP));
    return SUCCESS;
  }
  if (cmd.dryRun) {
    const plan = planEnter(cmd.target, cmd.command, cmd.options);
    process.stdout.write(cmd.json ? `${JSON.stringify(enterPlanToJson(plan), null, 2)}\n` : describeEnterPlan(plan));
    return SUCCESS;
  }
  const bytes = commandBytes(args, cmd.command, true);
  const exact = cmd.options.targetEnv ? { argvBytes: bytes.argvBytes } : bytes;
  return exitFor(await supervised((opts) => enter(cmd.target, cmd.command, { ...cmd.options, ...exact, ...opts }), cmd.options));
}
