/**
 * `tsns run`: unshare(1)'s options, and bwrap's for the sandbox, → the same
 * plan and launch a program gets from run().
 */
import { loadedCgroups } from '../cgroup/lazy';
import { commandEnv, readFd, systemContext } from '../context';
import { describePlan, planToJson } from '../plan/describe';
import { makePlan } from '../plan/run';
import { execute, type RunAllOptions } from '../run';
import { fdNumber, parseArgs, UsageError, type Expand } from './args';
import { commandHelp } from './help';
import { BWRAP_OPTIONS } from './run-bwrap';
import { CGROUP_OPTIONS } from './run-cgroup';
import { SECCOMP_OPTIONS } from './run-seccomp';
import type { RunCommand, RunOpt, RunState } from './run-state';
import { UNSHARE_OPTIONS } from './run-unshare';
import { exitFor, SUCCESS, type CliStatus } from './status';
import { commandBytes, supervised } from './supervise';
import { trace } from './trace';
import { warningLine } from './level';
import { dieWithParent } from '../native';

export type { RunCommand } from './run-state';

const RUN_OPTIONS: RunOpt[] = [
  ...UNSHARE_OPTIONS,
  ...BWRAP_OPTIONS,
  ...SECCOMP_OPTIONS,
  ...CGROUP_OPTIONS,
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

/**
 * bwrap's rules for what waits on the next option: --perms and --size apply
 * to the one after them (either order), --overlay-src to an overlay option.
 */
function afterOption(s: RunState, def: RunOpt | undefined): void {
  if (def?.modifier) return;
  if (s.perms !== undefined) {
    throw new UsageError('--perms must be followed by an option that creates a file (--tmpfs, --dir, --file, --bind-data, --ro-bind-data)',
      'put --perms right before the option it is for, as in --perms 0700 --dir /x');
  }
  if (s.size !== undefined) throw new UsageError('--size must be followed by --tmpfs', 'put --size right before the --tmpfs it is for, as in --size 1048576 --tmpfs /tmp');
  if (def?.long !== 'overlay-src' && s.overlaySrc.length) {
    throw new UsageError('--overlay-src must be followed by another --overlay-src or one of --overlay, --tmp-overlay, or --ro-overlay',
      'end the --overlay-src list with --overlay RWSRC WORKDIR DEST, --tmp-overlay DEST or --ro-overlay DEST');
  }
}

/** The checks that need every option seen. */
function finish(s: RunState): RunCommand {
  const { out, options } = s;
  if (out.json && !out.dryRun) throw new UsageError('--json goes with --dry-run');
  // As bwrap: one program (the last --seccomp wins), or a list, not both.
  if (s.seccompFd !== undefined && s.addSeccomp.length) throw new UsageError('--seccomp cannot be combined with --add-seccomp-fd');
  if (s.seccompFd !== undefined) options.seccomp = [s.seccompFd];
  if (s.addSeccomp.length) options.seccomp = s.addSeccomp;
  // A --perms or --size left before the command applies to nothing; bwrap lets it be.
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
  const state: RunState = { out: { options, command: operands, dryRun: false, json: false, help: false, argsFromFd }, options, fs: [], addSeccomp: [], overlaySrc: [] };
  for (const { def, value, words } of parsed) {
    def.set(state, value, words);
    afterOption(state, def);
  }
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
  const onWarning = (m: string) => process.stderr.write(warningLine(m));
  // bwrap's --die-with-parent binds bwrap itself too, not only the command.
  if (options.dieWithParent) dieWithParent(process.ppid);
  const result = await supervised((opts) => execute(plan, { ...options, ...exact, onWarning, ...opts }), options, plan.lifecycle);
  if (result.oomKills) process.stderr.write(`tsns: ${loadedCgroups()!.oomMessage(result.oomKills, result.signal)}\n`);
  return exitFor(result);
}
