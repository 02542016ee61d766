/**
 * exec: a process in a running (or created) container. tsns-oci-init
 * joins the container's user and pid namespaces itself, so the process it
 * starts is in them at once; the shim joins the others (mount last), puts
 * it in the container's cgroup, and applies the process's identity,
 * capabilities, rlimits and the container's seccomp.
 */
import { closeSync, constants, openSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cgroupSpawnFds, closeCgroupFds } from '../cgroup/launch';
import { TsnsError } from '../errors';
import { NAMESPACES } from '../namespaces';
import { seccompForOci } from '../seccomp/plan';
import { BARE_LAUNCH, EXTRA, HARDENING, OP_SEP, encodeSpec, type SpawnSpec } from '../wire';
import { bool, containerId, int, list, parseFlags, str, usage, type FlagDef } from './args';
import { Node } from './check';
import { parseConfig, parseProcess, readJsonFile, type OciProcess } from './config';
import { pidfdSocketPath, writeAtomic, type Globals } from './create';
import { explainStart } from './explain';
import { status } from './lifecycle';
import type { OciStatus } from './main';
import { processEntries, sessionKeyring } from './plan';
import { fdMapper, spawnHelper, type HelperMode } from './spawn';
import { checkConsoleSocket, consoleSlot, hostTerminal } from './terminal';
import { OCI_VERSION, readState } from './state';

const FLAGS: FlagDef[] = [
  { name: 'process', alias: 'p', kind: 'string' }, { name: 'detach', alias: 'd', kind: 'bool' }, { name: 'pid-file', kind: 'string' },
  { name: 'console-socket', kind: 'string' }, { name: 'pidfd-socket', kind: 'string' }, { name: 'tty', alias: 't', kind: 'bool' },
  { name: 'cwd', kind: 'string' }, { name: 'env', alias: 'e', kind: 'list' }, { name: 'user', alias: 'u', kind: 'string' },
  { name: 'additional-gids', alias: 'g', kind: 'list' }, { name: 'cap', alias: 'c', kind: 'list' }, { name: 'no-new-privs', kind: 'bool' },
  { name: 'preserve-fds', kind: 'string' }, { name: 'process-label', kind: 'string' }, { name: 'apparmor', kind: 'string' },
  { name: 'cgroup', kind: 'string' }, { name: 'ignore-paused', kind: 'bool' },
];

/** The namespaces of pid that are not ours, in the order they are joined. */
function namespacesOf(pid: number): { name: string; flag: number; path: string }[] {
  const order = ['user', 'pid', 'cgroup', 'ipc', 'uts', 'net', 'mount'];
  return order.map((name) => NAMESPACES.find((n) => n.name === name)!).flatMap((n) => {
    const path = `/proc/${pid}/ns/${n.proc}`;
    return readlinkSync(path) === readlinkSync(`/proc/self/ns/${n.proc}`) ? [] : [{ name: n.name, flag: n.flag, path }];
  });
}

function withFlags(p: OciProcess, f: ReturnType<typeof parseFlags>['flags'], args: string[]): OciProcess {
  const out: OciProcess = { ...p, user: { ...p.user }, env: [...p.env] };
  if (args.length) out.args = args;
  const user = str(f, 'user');
  if (user !== undefined) {
    const m = /^(\d+)(?::(\d+))?$/.exec(user);
    if (!m) throw usage(`invalid --user "${user}": expected UID[:GID]`, 'exec');
    out.user.uid = Number(m[1]);
    if (m[2] !== undefined) out.user.gid = Number(m[2]);
  }
  const gids = list(f, 'additional-gids');
  if (gids.length) out.user.additionalGids = gids.map((g) => {
    if (!/^\d+$/.test(g)) throw usage(`invalid --additional-gids "${g}"`, 'exec');
    return Number(g);
  });
  for (const e of list(f, 'env')) {
    const key = e.split('=')[0];
    out.env = [...out.env.filter((x) => x.split('=')[0] !== key), e];
  }
  if (str(f, 'cwd') !== undefined) out.cwd = str(f, 'cwd')!;
  if (bool(f, 'tty')) out.terminal = true;
  if (bool(f, 'no-new-privs')) out.noNewPrivileges = true;
  const caps = list(f, 'cap');
  if (caps.length && out.capabilities) {
    const add = (set: string[]) => [...new Set([...set, ...caps])];
    out.capabilities = { ...out.capabilities, bounding: add(out.capabilities.bounding), effective: add(out.capabilities.effective), permitted: add(out.capabilities.permitted), ambient: add(out.capabilities.ambient) };
  }
  return out;
}

export async function exec(g: Globals, argv: readonly string[]): Promise<OciStatus> {
  const { flags, operands } = parseFlags(argv, FLAGS, 'exec', { stopAfter: 1 });
  const id = containerId(operands, 'exec', Infinity);
  for (const name of ['process-label', 'apparmor', 'cgroup']) if (str(flags, name)) throw usage(`--${name} is not supported by tsns-oci`, 'exec');
  const s = readState(g.root, id);
  const st = status(g, s);
  if (st === 'stopped') throw new TsnsError('cannot exec in a stopped container', { stage: 'plan' });
  if (st === 'paused' && !bool(flags, 'ignore-paused')) throw new TsnsError('cannot exec in a paused container', { stage: 'plan', hint: 'resume it, or pass --ignore-paused' });
  const configFile = join(s.bundle, 'config.json');
  const config = parseConfig(readJsonFile(configFile), s.bundle, configFile);
  const file = str(flags, 'process');
  let proc: OciProcess;
  if (file !== undefined) proc = parseProcess(new Node(file, 'process', readJsonFile(resolve(file))));
  else {
    if (operands.length < 2) throw usage('exec needs a command (or --process FILE)', 'exec');
    proc = withFlags({ ...config.process, terminal: false }, flags, operands.slice(1));
  }
  const socket = str(flags, 'console-socket') ?? null;
  const detach = bool(flags, 'detach');
  checkConsoleSocket(socket, proc.terminal, detach, 'exec');
  // As create's (plan.ts): no groups from a runtime that is not root; as root, unless the container's user namespace denies setgroups.
  const rootlessEuid = process.geteuid?.() !== 0;
  if (rootlessEuid && proc.user.additionalGids.length) throw new TsnsError('cannot set any additional groups in a rootless container', { stage: 'plan', hint: 'leave additionalGids out, or run tsns-oci as root' });
  const preserveFds = int(flags, 'preserve-fds', 'exec');
  const fds = { ours: [] as number[], preserveFds };
  const fd = fdMapper(fds);
  // In the foreground without a console socket the terminal is tsns-oci-init's to relay.
  const own: number[] = [];
  let mode: HelperMode = detach ? 'detach' : 'wait';
  if (proc.terminal && !socket) {
    const [host, opened] = hostTerminal();
    if (opened) own.push(host);
    own.push(consoleSlot());
    mode = { tty: { sock: fd(own.at(-1)!), host: opened ? fd(host) : host } };
  }
  const ns = namespacesOf(s.pid).map((n) => ({ ...n, fd: openSync(n.path, constants.O_RDONLY) }));
  const cgFds = s.cgroup ? cgroupSpawnFds({ ...s.cgroup, fresh: false }) : null;
  try {
    const pre = ns.filter((n) => n.name === 'user' || n.name === 'pid').map((n) => n.fd);
    for (const n of pre) fd(n);
    const entries = processEntries(proc, file ?? configFile, 'process');
    const seccomp = seccompForOci(config.linux.seccomp, {
      capabilities: proc.capabilities?.bounding ?? [], noNewPrivileges: proc.noNewPrivileges, state: { ociVersion: OCI_VERSION, id, bundle: s.bundle, annotations: s.annotations },
    });
    const extras = [...entries.extras];
    if (!rootlessEuid) extras.push(`${EXTRA.GROUPS}${proc.user.additionalGids.join(',')}`);
    // As runc's exec: the container's keyring by name, its permissions as create left them.
    if (!s.noNewKeyring) extras.push(sessionKeyring(id));
    const size = [proc.consoleSize?.height ?? 0, proc.consoleSize?.width ?? 0];
    if (proc.terminal && socket) extras.push(`${EXTRA.CONSOLE}${[resolve(socket), ...size].join(OP_SEP)}`);
    else if (typeof mode !== 'string') extras.push(`${EXTRA.CONSOLE_FD}${[mode.tty.sock, ...size].join(OP_SEP)}`);
    // runc 1.2's --pidfd-socket: the process's pidfd, "setns" the data, as its exec's
    const pidfdSocket = str(flags, 'pidfd-socket');
    if (pidfdSocket) extras.push(`${EXTRA.PIDFD_SOCKET}${pidfdSocketPath(pidfdSocket)}${OP_SEP}setns`);
    const stdio: (number | null)[] = [];
    for (let i = 0; i < preserveFds; i++) stdio[3 + i] = 3 + i;
    const spec: SpawnSpec = {
      ...BARE_LAUNCH,
      joins: ns.filter((n) => n.name !== 'user' && n.name !== 'pid').map((n) => ({ type: n.flag, fd: fd(n.fd), fromTarget: false })),
      // No setgroups to write: the namespace is the container's, its setgroups file long settled (the
      // kernel refuses a write then); a runtime that is not root keeps its groups, root's setgroups(2)
      // where that file says deny fails harmlessly in the shim.
      wd: proc.cwd, uid: proc.user.uid, gid: proc.user.gid, setgroups: null,
      hardening: `${proc.noNewPrivileges ? HARDENING.NO_NEW_PRIVS : ''}${proc.terminal ? HARDENING.NEW_SESSION : ''}${rootlessEuid ? HARDENING.KEEP_GROUPS : ''}`,
      seccomp: seccomp?.seccomp ?? [], seccompListener: seccomp?.seccompListener ? { path: seccomp.seccompListener.path, state: seccomp.seccompListener.state } : null,
      extras, cgroupProcs: cgFds ? cgFds.procs.map(fd) : [], file: proc.args[0]!, argv: proc.args,
      env: entries.env.some((e) => e.startsWith('HOME=')) ? entries.env : [...entries.env, 'HOME=/'], searchPath: entries.searchPath, stdio, inheritFds: false,
      oci: entries.steps,
    };
    const helper = spawnHelper(encodeSpec(spec), fds, mode, null, pre);
    const resize = () => helper.child?.kill('SIGWINCH');
    if (helper.relaysTerminal) process.on('SIGWINCH', resize);
    const started = await helper.started;
    for (const n of ns) closeSync(n.fd);
    ns.length = 0;
    for (const n of own.splice(0)) closeSync(n);
    if (cgFds) closeCgroupFds(cgFds);
    if ('failure' in started) throw explainStart(started.failure, null, proc.args);
    const pidFile = str(flags, 'pid-file');
    if (pidFile) writeAtomic(resolve(pidFile), String(started.pid));
    const end = await helper.ended;
    process.off('SIGWINCH', resize);
    if (detach) return { code: 0, signal: null };
    if (end === null) return { code: 255, signal: null };
    if (end & 0x7f) return { code: 128 + (end & 0x7f), signal: null };
    return { code: (end >> 8) & 0xff, signal: null };
  } finally {
    for (const n of ns) closeSync(n.fd);
    for (const n of own) closeSync(n);
  }
}
