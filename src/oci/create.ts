/**
 * create (and run): the bundle's config read and checked, the state
 * directory made, the cgroup made with its limits, and tsns-oci-init
 * started with the spawn: the container's process is left prepared and
 * waiting on ROOT/ID/exec.fifo; tsns-oci writes the state and the pid file
 * and exits (or, for run, starts it and waits).
 */
import { closeSync, constants, existsSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { applyCgroup, type Cgroup } from '../cgroup/apply';
import { detectLayout, type CgroupLayout } from '../cgroup/detect';
import { cgroupSpawnFds, closeCgroupFds, type CgroupFds } from '../cgroup/launch';
import { checkResources } from '../cgroup/limits';
import { removeCgroup } from '../cgroup/ops';
import { planCgroup } from '../cgroup/plan';
import type { LinuxResources } from '../cgroup/resources';
import { systemError, TsnsError } from '../errors';
import { seccompForOci } from '../seccomp/plan';
import { NAMESPACES } from '../namespaces';
import { encodeSpec, type SpawnSpec } from '../wire';
import { cgroupV1Mount, hasV1 } from './cgroup-mount';
import { parseConfig, readJsonFile, type OciConfig, type OciMount } from './config';
import { explainStart } from './explain';
import { hookState } from './hooks';
import { pausedHooks } from './hooks-paused';
import { debug, warn } from './log';
import { checkJoinedUserMaps, deviceRules, planOci, startState } from './plan';
import { fdMapper, reportFdOf, runHelperToEnd, spawnHelper, type Helper, type HelperFds, type HelperMode } from './spawn';
import { checkConsoleSocket, consoleSlot, hostTerminal } from './terminal';
import {
  inUserNamespace, makeContainerDir, OCI_VERSION, procStat, removeContainerDir, rfc3339Nano, writeState, type ContainerState,
} from './state';

export interface Globals {
  root: string;
  systemdCgroup: boolean;
  rootless: boolean;
}

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile: string | null;
  consoleSocket: string | null;
  noPivot: boolean;
  /** --no-new-keyring: the container keeps the caller's session keyring, its exec processes too */
  noNewKeyring: boolean;
  preserveFds: number;
  /** the command the caller gave (run -d detaches too), for messages; default by mode */
  command?: 'create' | 'run';
  /** --pidfd-socket: the process's pidfd is sent there */
  pidfdSocket: string | null;
}

/** Write a file atomically: a reader sees nothing, or all of it. */
export function writeAtomic(path: string, text: string): void {
  const tmp = join(dirname(path), `.${process.pid}.${Date.now()}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** --pidfd-socket: absolute, and a socket (the connect itself is the helper's, before the spawn). */
export function pidfdSocketPath(path: string | null): string | null {
  if (path === null) return null;
  const abs = resolve(path);
  let code = 0;
  try {
    if (!statSync(abs).isSocket()) code = 88; // ENOTSOCK
  } catch (e) {
    code = -((e as NodeJS.ErrnoException).errno ?? -2);
  }
  if (code) throw systemError(`cannot use --pidfd-socket ${path}`, code, 'pidfd-socket', 'the path of a unix socket that a receiver listens on');
  return abs;
}

function homeOf(c: OciConfig): string {
  try {
    for (const line of readFileSync(join(c.root.path, 'etc', 'passwd'), 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 6 && Number(f[2]) === c.process.user.uid && f[5]) return f[5];
    }
  } catch {
    // no passwd in the image
  }
  return '/';
}

/**
 * The container's cgroup, with its limits. Rootless and without limits
 * asked, none where none may be made (runc's way on v1); rootless with
 * limits that cannot be applied, one line says which, and how to go on.
 */
function ociResources(c: OciConfig): LinuxResources {
  const resources = c.linux.resources === undefined ? {} : checkResources(c.linux.resources);
  // runc appends its allowed devices to the config's rules (plan.ts deviceRules): engines' configs
  // deny all and count on them. Where a config has no rules at all, nothing is restricted.
  if (resources.devices?.length) resources.devices = deviceRules(resources.devices, c.linux.devices);
  return resources;
}

function makeCgroup(g: Globals, c: OciConfig, id: string, layout: CgroupLayout): Cgroup | null {
  const resources = ociResources(c);
  const limits = Object.keys(resources).filter((k) => k !== 'devices');
  try {
    const plan = planCgroup({ layout, resources, placement: { kind: 'path', path: c.linux.cgroupsPath ?? id }, scope: 'all', systemdCgroup: g.systemdCgroup });
    const cg = applyCgroup(plan);
    for (const w of cg.warnings) warn(w);
    return cg;
  } catch (e) {
    if (!g.rootless || !(e instanceof TsnsError) || g.systemdCgroup) throw e;
    if (limits.length === 0) {
      debug(`no cgroup for ${id}: ${e.message}`);
      return null;
    }
    if (e.errno !== 'EACCES' && e.errno !== 'EPERM' && e.errno !== 'EROFS') throw e;
    throw new TsnsError(`cannot apply the container's limits (linux.resources: ${limits.join(', ')}) without root: ${e.message}`, {
      stage: 'cgroup', errno: e.errno, code: e.code,
      hint: `${layout.mode === 'v2' ? 'limits without root need a cgroup v2 subtree delegated to you (systemd-run --user --scope -p Delegate=yes …)' : 'cgroup v1 cannot be delegated to a user'}: run as root, or leave linux.resources out of config.json to run without limits (as podman does rootless on cgroup v1)`,
    });
  }
}

export interface Created {
  state: ContainerState;
  helper: Helper;
}

export async function create(g: Globals, o: CreateOptions, mode: 'detach' | 'wait'): Promise<Created> {
  const bundle = resolve(o.bundle);
  const config = parseConfig(readJsonFile(join(bundle, 'config.json'), join(bundle, 'config.json')), bundle, join(bundle, 'config.json'));
  checkConsoleSocket(o.consoleSocket, config.process.terminal, mode === 'detach', o.command ?? (mode === 'detach' ? 'create' : 'run'));
  checkJoinedUserMaps(config, joinedMap, join(bundle, 'config.json'), debug);
  if (!existsSync(config.root.path)) throw systemError(`cannot use the rootfs ${config.root.path}`, 2, 'plan', 'root.path in config.json is relative to the bundle');
  const dir = makeContainerDir(g.root, o.id);
  const opened: number[] = [];
  let cg: Cgroup | null = null;
  let cgFds: CgroupFds | null = null;
  let helper: Helper | null = null;
  let containerPid = 0;
  let hooks: ReturnType<typeof pausedHooks> = null;
  // --systemd-cgroup: its D-Bus client and systemd's half of the cgroup, loaded only then.
  const sd = g.systemdCgroup ? await import('./systemd') : null;
  let scope: import('./systemd').PlannedScope | null = null;
  // Read once: the mounts and this process's cgroups do not change during a create.
  let layoutMemo: CgroupLayout | null = null;
  const layoutOf = () => (layoutMemo ??= detectLayout());
  const cleanup = () => {
    hooks?.close();
    if (helper?.child?.pid) helper.child.kill('SIGKILL');
    if (containerPid > 0) killQuiet(containerPid);
    for (const fd of opened) closeSync(fd);
    opened.length = 0;
    if (cgFds) closeCgroupFds(cgFds);
    cgFds = null;
    if (cg) {
      try {
        removeCgroup(cg);
      } catch (e) {
        warn(e instanceof Error ? e.message : String(e));
      }
    }
    removeContainerDir(g.root, o.id);
  };
  try {
    const seccomp = seccompForOci(config.linux.seccomp, {
      capabilities: config.process.capabilities?.bounding ?? [], noNewPrivileges: config.process.noNewPrivileges,
      state: { ociVersion: OCI_VERSION, id: o.id, bundle, annotations: config.annotations },
    });
    if (sd) {
      scope = await sd.planScope({
        layout: layoutOf(), unit: sd.systemdUnit(config.linux.cgroupsPath, o.id), resources: ociResources(config),
        annotations: config.annotations, rootless: g.rootless,
      });
    } else cg = makeCgroup(g, config, o.id, layoutOf());
    const stateDir = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    opened.push(stateDir);
    const fds = { ours: [] as number[], preserveFds: o.preserveFds };
    const fd = fdMapper(fds);
    const layout = config.mounts.some((m) => m.type === 'cgroup') ? layoutOf() : null;
    // In the foreground without a console socket the terminal is tsns-oci-init's to relay.
    let helperMode: HelperMode = mode;
    if (mode === 'wait' && config.process.terminal) {
      const [host, ownFd] = hostTerminal();
      if (ownFd) opened.push(host);
      const sock = consoleSlot();
      opened.push(sock);
      helperMode = { tty: { sock: fd(sock), host: ownFd ? fd(host) : host } };
    }
    cgFds = cg ? cgroupSpawnFds(cg) : null;
    hooks = pausedHooks(config, opened);
    const spec = planOci({
      hooksFds: hooks ? { report: reportFdOf(fds), go: fd(hooks.goFd) } : null,
      config, rootless: g.rootless, uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0, noPivot: o.noPivot, noNewKeyring: o.noNewKeyring, id: o.id, fd,
      stateDirFd: fd(stateDir), consoleSocket: o.consoleSocket ? resolve(o.consoleSocket) : null, preserveFds: o.preserveFds,
      consoleFd: typeof helperMode === 'string' ? null : helperMode.tty.sock,
      openNs: (path) => {
        try {
          const n = openSync(path, constants.O_RDONLY);
          opened.push(n);
          return n;
        } catch (e) {
          throw systemError(`cannot open the namespace ${path}`, -((e as NodeJS.ErrnoException).errno ?? -2), 'setns');
        }
      },
      seccomp: seccomp ? { programs: seccomp.seccomp, listener: seccomp.seccompListener ? { path: seccomp.seccompListener.path, state: seccomp.seccompListener.state } : null } : null,
      cgroup: cgFds ? { procs: cgFds.procs.map(fd), dir: cgFds.dir === null ? null : fd(cgFds.dir) } : null,
      home: homeOf(config),
      ...(layout && hasV1(layout) ? { cgroupV1: (m: OciMount, cgroupns: boolean) => cgroupV1Mount(m, cg ?? scope?.cgroup ?? null, layout, cgroupns) } : {}),
      startState: startState({ ociVersion: OCI_VERSION, id: o.id, bundle, annotations: config.annotations }),
      pidfdSocket: pidfdSocketPath(o.pidfdSocket), kcore: existsSync('/proc/kcore'), inUserns: inUserNamespace(),
    }, join(bundle, 'config.json'));
    const preJoin = pidJoinForHelper(spec, fds);
    debug(`create ${o.id}: starting tsns-oci-init`);
    // prestart, createRuntime and createContainer run where runc runs them: the process stops before its pivot (hooks-paused.ts).
    let hookRun: Promise<unknown> | null = null;
    let hookError: unknown = null;
    const paused = hooks;
    const onHooks = paused ? (pid: number) => {
      containerPid = pid;
      // cg: with --systemd-cgroup the scope's, known by now (the process waits for its spec until then).
      hookRun = paused.run(pid, hookState({ id: o.id, pid, bundle, annotations: config.annotations }, 'creating'), g.root, cg?.dirs.map((d) => d.dir) ?? []).catch((e: unknown) => {
        hookError = e;
      });
    } : undefined;
    helper = helperMode === 'detach' && !paused && !scope
      ? runHelperToEnd(encodeSpec(preJoin.spec), fds, dir, stateDir, preJoin.fds)
      : spawnHelper(encodeSpec(preJoin.spec), fds, helperMode, stateDir, preJoin.fds, onHooks, scope !== null);
    if (sd && scope) {
      // systemd's scope starts with tsns-oci-init in it, which has done nothing yet: the container is its child.
      cg = await sd.startScope(scope, helper.child!.pid!);
      for (const w of cg.warnings) warn(w);
      helper.releaseSpec();
    }
    const started = await helper.started;
    if (hookRun) await hookRun;
    hooks?.close();
    for (const n of opened) closeSync(n);
    opened.length = 0;
    if (cgFds) closeCgroupFds(cgFds);
    cgFds = null;
    if (hookError) throw hookError;
    if ('failure' in started) throw explainStart(started.failure, config, config.process.args, spec.oci);
    const pid = started.pid;
    containerPid = pid;
    if (sd && helperMode !== 'detach') sd.leaveScope(scope!.q.layout, helper.child!.pid!);
    scope?.conn.close();
    const now = Date.now();
    const state: ContainerState = {
      ociVersion: OCI_VERSION, id: o.id, pid, startTime: procStat(pid)?.startTime ?? 0, bundle, rootfs: config.root.path,
      created: rfc3339Nano(now, Number(process.hrtime.bigint() % 1000000n)), annotations: config.annotations,
      hooks: { poststart: config.hooks.poststart, poststop: config.hooks.poststop },
      cgroup: cg, cgroupFound: cg !== null && cg.dirs.every((d) => !d.made.includes(d.dir)), rootless: g.rootless,
      user: { uid: config.process.user.uid, gid: config.process.user.gid }, env: config.process.env, cwd: config.process.cwd,
      noNewKeyring: o.noNewKeyring,
    };
    writeState(g.root, state);
    if (o.pidFile) writeAtomic(resolve(o.pidFile), String(pid));
    return { state, helper };
  } catch (e) {
    if (scope) {
      cg = null;
      hooks?.close();
      if (helper?.child?.pid) helper.child.kill('SIGKILL');
      await sd!.dropScope(scope);
    }
    cleanup();
    throw e;
  }
}

const CLONE_NEWPID = NAMESPACES.find((n) => n.name === 'pid')!.flag;
const CLONE_NEWUSER = NAMESPACES.find((n) => n.name === 'user')!.flag;

/**
 * A pid namespace joined by path (a pod's, through the CRI) is entered by
 * tsns-oci-init itself, before the spawn: setns(2) moves only a process's
 * children into a pid namespace, so joined in the shim it would need a
 * middle process that forks the command and stays its parent. That middle
 * would be the pid in --pid-file, and the engine's shim, which reaps the
 * container as subreaper, would see the middle's exit instead of the
 * command's (runc's init is the container's process itself). A user
 * namespace joined by path (a CRI pod's) is entered first, by the helper
 * as well, after it has made the exec fifo as the caller, with or without
 * a joined pid namespace: the namespaces the spawn makes are then that
 * namespace's, as runc's are (made before it, they would be the host's, and
 * a new UTS namespace's hostname, for one, could not be set: EPERM).
 */
function pidJoinForHelper(spec: SpawnSpec, fds: HelperFds): { spec: SpawnSpec; fds: number[] } {
  const pid = spec.joins.find((j) => j.type === CLONE_NEWPID);
  const user = spec.joins.find((j) => j.type === CLONE_NEWUSER);
  const pre = [user, pid].filter((j) => j !== undefined);
  if (!pre.length) return { spec, fds: [] };
  const ours = (j: (typeof pre)[number]) => fds.ours[j.fd - (3 + fds.preserveFds + 2)]!;
  return { spec: { ...spec, joins: spec.joins.filter((j) => !pre.includes(j)) }, fds: pre.map(ours) };
}

/** A joined user namespace's map, where its path names a process: /proc/PID/ns/user (the CRI's, a pod's pause). */
function joinedMap(path: string, file: 'uid_map' | 'gid_map'): string | null {
  const m = /^\/proc\/(\d+|self)\/ns\/user$/.exec(path);
  if (!m) return null;
  try {
    return readFileSync(`/proc/${m[1]}/${file}`, 'utf8');
  } catch (e) {
    throw systemError(`cannot read the ${file} of the user namespace ${path}`, -((e as NodeJS.ErrnoException).errno ?? -2), 'setns', 'linux.namespaces names a process that has ended?');
  }
}

function killQuiet(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

