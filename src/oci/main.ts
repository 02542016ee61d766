/**
 * tsns-oci: an OCI runtime with runc's command line, for podman, conmon,
 * containerd-shim-runc-v2 and people. Returns how to end; bin/tsns-oci.js
 * ends the process.
 */
import { TsnsError } from '../errors';
import { bool, containerId, int, list as listFlag, parseFlags, str, usage, type FlagDef } from './args';
import type { Globals } from './create';
import { debug, logError, setLog, writeOut } from './log';
import { defaultRoot, inUserNamespace, ociExitStatus } from './state';

export interface OciStatus {
  code: number;
  signal: number | null;
}

const OK: OciStatus = { code: 0, signal: null };

const GLOBAL: FlagDef[] = [
  { name: 'root', kind: 'string' }, { name: 'log', kind: 'string' }, { name: 'log-format', kind: 'string' }, { name: 'debug', kind: 'bool' },
  { name: 'systemd-cgroup', kind: 'bool' }, { name: 'rootless', kind: 'string' }, { name: 'criu', kind: 'string' },
  { name: 'version', alias: 'v', kind: 'bool' }, { name: 'help', alias: 'h', kind: 'bool' },
];

export const HELP = `tsns-oci: an OCI runtime with runc's command line

usage: tsns-oci [global options] command [command options] [arguments...]

commands:
  create     create a container (its process waits for start)
  start      start a created container
  run        create and start a container; wait for it unless --detach
  state      print a container's state as JSON
  kill       send a signal to a container's process (--all: every process in it)
  delete     delete a stopped container (--force: any)
  exec       run a process in a running container
  list       list containers (--format table|json, -q)
  ps         the processes of a container (--format table|json)
  pause      freeze a container's processes
  resume     thaw them
  update     change a container's cgroup limits (flags, or --resources FILE|-)
  events     a container's stats and OOM events as JSON (--stats, --interval)
  spec       write a starting config.json (--rootless, --bundle)
  features   what this runtime supports, as JSON

global options:
  --root DIR             state directory (default /run/tsns-oci; $XDG_RUNTIME_DIR/tsns-oci without root)
  --log FILE             log to FILE   --log-format text|json   --debug
  --systemd-cgroup       cgroups through systemd (needs systemd)   --rootless auto|true|false
`;

type Handler = (g: Globals, args: readonly string[]) => Promise<OciStatus>;

const CREATE_FLAGS: FlagDef[] = [
  { name: 'bundle', alias: 'b', kind: 'string' }, { name: 'pid-file', kind: 'string' }, { name: 'console-socket', kind: 'string' },
  { name: 'pidfd-socket', kind: 'string' }, { name: 'no-pivot', kind: 'bool' }, { name: 'no-new-keyring', kind: 'bool' },
  { name: 'preserve-fds', kind: 'string' }, { name: 'detach', alias: 'd', kind: 'bool' },
];

function createOptions(flags: Record<string, unknown>, id: string, command: 'create' | 'run') {
  const f = flags as Parameters<typeof str>[0];
  return {
    id, bundle: str(f, 'bundle') ?? process.cwd(), pidFile: str(f, 'pid-file') ?? null, consoleSocket: str(f, 'console-socket') ?? null,
    noPivot: bool(f, 'no-pivot'), noNewKeyring: bool(f, 'no-new-keyring'), preserveFds: int(f, 'preserve-fds', command), command,
    pidfdSocket: str(f, 'pidfd-socket') ?? null,
  };
}

const COMMANDS: Record<string, Handler> = {
  async create(g, args) {
    const { flags, operands } = parseFlags(args, CREATE_FLAGS, 'create', { interspersed: true });
    const { create } = await import('./create');
    const { helper } = await create(g, createOptions(flags, containerId(operands, 'create'), 'create'), 'detach');
    await helper.ended;
    return OK;
  },
  async run(g, args) {
    const { flags, operands } = parseFlags(args, [...CREATE_FLAGS, { name: 'keep', kind: 'bool' }, { name: 'no-subreaper', kind: 'bool' }], 'run', { interspersed: true });
    const { run } = await import('./run');
    return run(g, createOptions(flags, containerId(operands, 'run'), 'run'), bool(flags, 'detach'), bool(flags, 'keep'));
  },
  async start(g, args) {
    const { operands } = parseFlags(args, [], 'start', { interspersed: true });
    const { start } = await import('./lifecycle');
    await start(g, containerId(operands, 'start'));
    return OK;
  },
  async state(g, args) {
    const { operands } = parseFlags(args, [], 'state', { interspersed: true });
    const { stateJson } = await import('./lifecycle');
    const { readState } = await import('./state');
    writeOut(JSON.stringify(stateJson(g, readState(g.root, containerId(operands, 'state'))), null, 2));
    return OK;
  },
  async kill(g, args) {
    const { flags, operands } = parseFlags(args, [{ name: 'all', alias: 'a', kind: 'bool' }], 'kill', { interspersed: true });
    const { kill } = await import('./lifecycle');
    kill(g, containerId(operands, 'kill', 2), operands[1] ?? 'SIGTERM', bool(flags, 'all'));
    return OK;
  },
  async delete(g, args) {
    const { flags, operands } = parseFlags(args, [{ name: 'force', alias: 'f', kind: 'bool' }], 'delete', { interspersed: true });
    const { remove } = await import('./lifecycle');
    await remove(g, containerId(operands, 'delete'), bool(flags, 'force'));
    return OK;
  },
  async list(g, args) {
    const { flags } = parseFlags(args, [{ name: 'format', alias: 'f', kind: 'string' }, { name: 'quiet', alias: 'q', kind: 'bool' }], 'list', { interspersed: true });
    const format = str(flags, 'format') ?? 'table';
    if (format !== 'table' && format !== 'json') throw usage(`invalid format option "${format}"`, 'list');
    const { list } = await import('./list');
    writeOut(list(g, format, bool(flags, 'quiet')));
    return OK;
  },
  async spec(_g, args) {
    const { flags } = parseFlags(args, [{ name: 'bundle', alias: 'b', kind: 'string' }, { name: 'rootless', kind: 'bool' }], 'spec', { interspersed: true });
    const { writeSpec } = await import('./spec');
    writeSpec(str(flags, 'bundle') ?? process.cwd(), bool(flags, 'rootless'));
    return OK;
  },
  async features() {
    const { features } = await import('./features');
    writeOut(`${JSON.stringify(features(), null, 4)}\n`);
    return OK;
  },
  async exec(g, args) {
    const { exec } = await import('./exec');
    return exec(g, args);
  },
  async ps(g, args) {
    const { ps } = await import('./cgroups');
    return ps(g, args);
  },
  async pause(g, args) {
    const { pause } = await import('./cgroups');
    return pause(g, args, true);
  },
  async resume(g, args) {
    const { pause } = await import('./cgroups');
    return pause(g, args, false);
  },
  async update(g, args) {
    const { update } = await import('./cgroups');
    return update(g, args);
  },
  async events(g, args) {
    const { events } = await import('./cgroups');
    return events(g, args);
  },
};

function rootless(value: string | undefined): boolean {
  if (value === undefined || value === 'auto') return process.geteuid?.() !== 0 || inUserNamespace();
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw usage(`invalid --rootless value "${value}" (auto, true or false)`);
}

export async function ociMain(argv: readonly string[]): Promise<OciStatus> {
  try {
    const { flags, operands } = parseFlags(argv, GLOBAL, '');
    const format = str(flags, 'log-format') ?? 'text';
    if (format !== 'text' && format !== 'json') throw usage(`invalid log-format: ${format}`);
    setLog({ file: str(flags, 'log') ?? null, format, debug: bool(flags, 'debug') });
    if (bool(flags, 'version')) {
      writeOut('tsns-oci version 0.1.0\nspec: 1.2.0\n');
      return OK;
    }
    const [command, ...rest] = operands;
    if (command === undefined || bool(flags, 'help') || command === 'help') {
      writeOut(HELP);
      return command === undefined && !bool(flags, 'help') ? { code: 125, signal: null } : OK;
    }
    const handler = COMMANDS[command];
    if (!handler) throw usage(`No help topic for '${command}'`);
    if (rest.includes('--help') || rest.includes('-h')) {
      writeOut(HELP);
      return OK;
    }
    const g: Globals = { root: str(flags, 'root') ?? defaultRoot(), systemdCgroup: bool(flags, 'systemd-cgroup'), rootless: rootless(str(flags, 'rootless')) };
    debug(`tsns-oci ${argv.join(' ')}`);
    return await handler(g, rest);
  } catch (e) {
    if (!(e instanceof TsnsError)) throw e;
    if (process.env.TSNS_DEBUG) process.stderr.write(`${e.stack}\n`);
    logError(e);
    return { code: ociExitStatus(e), signal: null };
  }
}

export { listFlag };
