/**
 * Pure: `tsns run` options → the plan the native shim carries out and
 * --dry-run prints. Every implication and every check that can be made
 * before cloning lives here.
 */
import { basename } from 'node:path';
import { ALL_CAPS, capabilityMask } from '../capabilities';
import type { RunCgroup } from '../cgroup/run-plan';
import { wantsCgroup, type CgroupRunOptions } from '../cgroup/wants';
import type { PlanContext } from '../context';
import type { IdMapEntry } from '../idmap';
import { cloneFlagNames, NAMESPACES, namespace, UNSHARE_ALL, type NamespaceName, type PerNamespace } from '../namespaces';
import { normalizeOp, sandboxProfile, type SandboxOp } from '../sandbox';
import type { SeccompListener } from '../seccomp/notify';
import { profilePlan, wantsProfile, type PlanSeccompProfile, type SeccompProfileOption } from '../seccomp/plan';
import { planBinfmt, type BinfmtOptions, type BinfmtPlan } from './binfmt';
import { checkLabels, procOps, pwdOf, sandboxIds, withArgv0, type BwrapRunOptions, type PlanPwd } from './bwrap';
import { buildIdMap, planError, resolveId, setgroupsFor, type Setgroups } from './identity';
import { mapsGiven, planLifecycle, tryNamespaces, type LifecycleOptions, type LifecyclePlan } from './lifecycle';

export type { Setgroups } from './identity';
export type Propagation = 'private' | 'shared' | 'slave' | 'unchanged';

/** A namespace option: true for a new one, a path to also persist it there (bind mount). */
export type NamespaceOption = boolean | string;

/** The long options of `tsns run`, in camelCase; one key per namespace. */
export interface RunOptions extends PerNamespace<NamespaceOption>, BinfmtOptions, CgroupRunOptions, BwrapRunOptions, LifecycleOptions {
  /** every namespace */
  all?: boolean;
  /** map the caller to root inside (implies user) */
  mapRootUser?: boolean;
  /** map the caller to the same uid/gid inside (implies user) */
  mapCurrentUser?: boolean;
  /** uid (or user name) the caller becomes inside (implies user) */
  mapUser?: number | string;
  /** gid (or group name) the caller becomes inside (implies user) */
  mapGroup?: number | string;
  /**
   * uid ranges in order: `INNER:OUTER:COUNT` (or util-linux 2.38's `OUTER,INNER,COUNT`), entries,
   * 'auto' (the first /etc/subuid block from 0), 'subids' (it as itself), 'all' (every uid this namespace has)
   */
  mapUsers?: readonly (string | IdMapEntry)[];
  /** gid ranges, as mapUsers */
  mapGroups?: readonly (string | IdMapEntry)[];
  /** map the caller's first /etc/subuid and /etc/subgid ranges from 0 (or 1 after -r) */
  mapAuto?: boolean;
  setgroups?: Setgroups;
  /** uid (or name) to become inside before exec */
  setuid?: number | string;
  /** gid (or name) to become inside before exec */
  setgid?: number | string;
  /** keep the user namespace's capabilities across exec as a non-root uid (ambient) */
  keepCaps?: boolean;
  /** implies uts */
  hostname?: string;
  /** implies uts */
  domainname?: string;
  /** mount a new proc at '/proc' (true) or at DIR; implies mount */
  mountProc?: boolean | string;
  /** propagation of / in a new mount namespace; default private */
  propagation?: Propagation;
  /** chroot to DIR before exec */
  root?: string;
  /** working directory of the command (inside root) */
  wd?: string;
  /** CLOCK_MONOTONIC offset in seconds; implies time */
  monotonic?: number;
  /** CLOCK_BOOTTIME offset in seconds; implies time */
  boottime?: number;
  /** the command gets this signal (true: SIGKILL) when tsns dies */
  killChild?: boolean | string | number;
  /** a minimal init as PID 1 that reaps orphans and forwards signals; implies pid */
  init?: boolean;
  /** the sandbox filesystem: a new root on tmpfs built by these operations in order (implies mount) */
  filesystem?: readonly SandboxOp[];
  /** setsid(): the command cannot reach the caller's terminal (TIOCSTI) */
  newSession?: boolean;
  /** PR_SET_NO_NEW_PRIVS; on by default with a sandbox filesystem or a seccomp program */
  noNewPrivs?: boolean;
  /**
   * seccomp filters: compiled classic BPF programs (as seccomp_export_bpf()
   * writes them), or fds to read one from each; loaded in this order as the
   * last step before exec (the kernel runs the last loaded first)
   */
  seccomp?: readonly (Uint8Array | number)[];
  /**
   * a seccomp profile (Docker's or the OCI format), compiled with libseccomp:
   * a JSON file's path, 'default' (Docker's default profile, judged by the
   * capabilities the command will have), 'unconfined' (none), or the
   * profile as an object; its program is loaded before the seccomp ones
   */
  seccompProfile?: SeccompProfileOption;
  /** capabilities to drop from every set ('ALL' for all), then capAdd to keep */
  capDrop?: readonly string[];
  capAdd?: readonly string[];
  /** bwrap's --die-with-parent: killChild SIGKILL (the CLI also ties tsns itself to its parent) */
  dieWithParent?: boolean;
  /** bwrap's --unshare-all: ipc, pid, net, uts, and user and cgroup where the kernel allows them; shareNet keeps the network */
  unshareAll?: boolean;
  shareNet?: boolean;
  /**
   * The ready profile: --unshare-all, read-only /usr /bin /lib /lib64 /etc,
   * tmpfs /tmp and $HOME, --dev /dev, --proc /proc, a new session, no new
   * privileges, all capabilities dropped; filesystem adds to it.
   */
  sandbox?: boolean;
}

export interface PlanMount {
  readonly kind: 'propagation' | 'proc' | 'persist';
  readonly target: string;
  readonly description: string;
}

export interface PlanSeccomp {
  instructions: number;
  hex: string;
  /** seccomp(2) flags (SECCOMP_FILTER_FLAG_*); default none */
  flags?: number;
  /** loaded before privileges are dropped, not last (a profile without no_new_privs, as runc does) */
  early?: boolean;
}

/** A namespace bound onto a file so that it outlives its processes. */
export interface PlanPersist {
  namespace: NamespaceName;
  path: string;
  /** the file under /proc/PID/ that is bound */
  source: string;
  /** bound only once the child has unshared its time (and pid) namespace */
  late: boolean;
}

export interface Plan {
  namespaces: NamespaceName[];
  /** CLONE_NEW* flags given to clone(2) */
  cloneFlags: number;
  cloneFlagNames: string[];
  /** namespaces the child unshares itself before forking the command (time, and pid with it) */
  unshareFlags: number;
  unshareFlagNames: string[];
  uidMap: IdMapEntry[] | null;
  gidMap: IdMapEntry[] | null;
  /** write the maps through newuidmap/newgidmap (unprivileged ranges) */
  uidMapHelper: boolean;
  gidMapHelper: boolean;
  setgroups: Setgroups | null;
  hostname: string | null;
  domainname: string | null;
  /** applied recursively to / in a new mount namespace; null without one */
  propagation: Propagation | null;
  procDir: string | null;
  mounts: PlanMount[];
  persist: PlanPersist[];
  monotonic: number | null;
  boottime: number | null;
  root: string | null;
  wd: string | null;
  setuid: number | null;
  setgid: number | null;
  keepCaps: boolean;
  /** signal number sent to the command when tsns dies */
  killSignal: number | null;
  /** a process stays between tsns and the command: an init (PID 1), or the parent a time namespace needs */
  supervisor: 'init' | 'time' | null;
  /** the sandbox filesystem, absolute paths, in order */
  filesystem: SandboxOp[];
  noNewPrivs: boolean;
  newSession: boolean;
  /** seccomp programs in load order, hex-encoded, with their instruction counts */
  seccomp: PlanSeccomp[];
  /** the seccomp profile whose program comes first in seccomp */
  seccompProfile: PlanSeccompProfile | null;
  /** where a profile's SCMP_ACT_NOTIFY listener goes */
  seccompListener: SeccompListener | null;
  /** capabilities kept in every set, as a decimal bit mask; null: untouched */
  capKeep: string | null;
  /** bring lo up in the new network namespace */
  loUp: boolean;
  /** --mount-binfmt, --load-interp */
  binfmt: BinfmtPlan | null;
  /** what is executed: a path or a name searched in PATH */
  file: string;
  argv: string[];
  /** started as a login shell because no command was given */
  loginShell: boolean;
  /** PWD as tsns sets it (in a sandbox, and with --clear-env); null: the environment's */
  pwd: PlanPwd | null;
  /** the command's cgroup, its limits; null: it stays in tsns's own cgroups */
  cgroup: RunCgroup | null;
  /** bwrap's fd protocols and process rules */
  lifecycle: LifecyclePlan;
}

/** The kernel's limit on a classic BPF program (BPF_MAXINSNS). */
const BPF_MAX_INSTRUCTIONS = 4096;

function seccompPrograms(programs: readonly (Uint8Array | number)[], ctx: PlanContext): PlanSeccomp[] {
  return programs.map((p, i) => {
    const bytes = typeof p === 'number' ? ctx.readFd(p) : p;
    const from = typeof p === 'number' ? ` (fd ${p})` : '';
    // struct sock_filter: u16 code, u8 jt, u8 jf, u32 k.
    if (bytes.length === 0 || bytes.length % 8 !== 0 || bytes.length / 8 > BPF_MAX_INSTRUCTIONS) {
      throw planError(`seccomp program ${i + 1}${from} is ${bytes.length} bytes: not 1 to ${BPF_MAX_INSTRUCTIONS} 8-byte BPF instructions`,
        'give a compiled classic BPF program, as seccomp_export_bpf() writes it');
    }
    return { instructions: bytes.length / 8, hex: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex') };
  });
}

function checkUtsName(what: string, value: string): void {
  // The kernel's __NEW_UTS_LEN; a NUL would silently cut the name short.
  if (value.includes('\0')) throw planError(`${what} must not contain a NUL byte`);
  if (Buffer.byteLength(value) > 64) throw planError(`${what} '${value}' is longer than 64 bytes`);
}

function offset(what: string, value: number | undefined): number | null {
  if (value === undefined) return null;
  if (!Number.isSafeInteger(value)) throw planError(`--${what} needs a whole number of seconds, not '${value}'`);
  return value;
}

function capKeep(options: RunOptions, sandboxed: boolean): string | null {
  // As bwrap: a sandbox keeps no capabilities unless asked to, or its root
  // could simply remount a read-only bind writable.
  if (!options.capDrop?.length && !options.capAdd?.length) return sandboxed ? '0' : null;
  let keep = ALL_CAPS;
  const mask = (name: string) => {
    const m = capabilityMask(name);
    if (m === undefined) throw planError(`unknown capability '${name}'`, 'names as in capabilities(7), e.g. CAP_NET_RAW or net_raw, or ALL');
    return m;
  };
  if (sandboxed && !options.capDrop?.length) keep = 0n;
  for (const c of options.capDrop ?? []) keep &= ~mask(c);
  for (const c of options.capAdd ?? []) keep |= mask(c);
  return keep.toString();
}

/** --sandbox is shorthand for options; returns them spelled out. */
function withProfile(options: RunOptions, ctx: PlanContext): RunOptions {
  if (!options.sandbox) return options;
  return {
    ...options,
    unshareAll: true,
    newSession: true,
    capDrop: options.capDrop ?? ['ALL'],
    filesystem: [...sandboxProfile(ctx.env.HOME, ctx.lstat), ...(options.filesystem ?? [])],
  };
}

/** The namespaces the options name directly (the implied ones are added as the plan goes). */
function namedNamespaces(options: RunOptions): Set<NamespaceName> {
  const wanted = new Set<NamespaceName>();
  for (const ns of NAMESPACES) if (options.all || options[ns.name]) wanted.add(ns.name);
  if (options.unshareAll) {
    // As bwrap: user and cgroup as their -try options (see tryNamespaces).
    for (const ns of UNSHARE_ALL) if ((ns.name !== 'net' || !options.shareNet) && !ns.bwrapTry) wanted.add(ns.name);
  }
  return wanted;
}

/** A sandbox filesystem implies a mount namespace, and without root a user namespace of the caller's own ids. */
function sandboxImplications(options: RunOptions, filesystem: readonly SandboxOp[], wanted: Set<NamespaceName>, ctx: PlanContext): RunOptions {
  if (filesystem.length) {
    wanted.add('mount');
    if (options.root !== undefined) throw planError('--root cannot be combined with a sandbox filesystem', 'bind what the command needs instead, and use --chdir');
    if (options.mountProc) throw planError('--mount-proc cannot be combined with a sandbox filesystem', 'use --proc /proc');
    // Without setuid, as bwrap: the caller's own ids in a user namespace of its own (or the one joined).
    if (!ctx.privileged && options.userns === undefined) wanted.add('user');
  }
  const mapped = options.mapRootUser || options.mapCurrentUser || options.mapUser !== undefined || options.mapUsers?.length || options.mapAuto;
  // Files cannot be created in a user namespace whose ids are unmapped (EOVERFLOW): map the caller as itself.
  if ((filesystem.length || options.unshareAll) && wanted.has('user') && !mapped) return { ...options, mapCurrentUser: true };
  return options;
}

type Identity = Pick<Plan, 'uidMap' | 'gidMap' | 'uidMapHelper' | 'gidMapHelper' | 'setgroups' | 'setuid' | 'setgid'>;

function identity(options: RunOptions, wanted: Set<NamespaceName>, ctx: PlanContext): Identity {
  let innerUid: number | null = null;
  let innerGid: number | null = null;
  if (options.mapRootUser) innerUid = innerGid = 0;
  if (options.mapCurrentUser) {
    innerUid = ctx.uid;
    innerGid = ctx.gid;
  }
  if (options.mapUser !== undefined) innerUid = resolveId(options.mapUser, 'user', ctx.lookupUser);
  if (options.mapGroup !== undefined) innerGid = resolveId(options.mapGroup, 'group', ctx.lookupGroup);
  const auto = options.mapAuto ?? false;
  const uids = buildIdMap({ kind: 'uid', option: 'map-users', single: innerUid, ranges: options.mapUsers, auto, own: ctx.uid }, ctx);
  const gids = buildIdMap({ kind: 'gid', option: 'map-groups', single: innerGid, ranges: options.mapGroups, auto, own: ctx.gid }, ctx);
  if (uids.map || gids.map) wanted.add('user');
  if (options.setgroups !== undefined && !wanted.has('user')) {
    throw planError('--setgroups needs a new user namespace', 'add --user (or -r)');
  }
  return {
    uidMap: uids.map,
    gidMap: gids.map,
    uidMapHelper: uids.helper,
    gidMapHelper: gids.helper,
    setgroups: setgroupsFor(options.setgroups, gids, innerGid !== null && !options.mapGroups?.length && !auto, ctx),
    setuid: options.setuid === undefined ? null : resolveId(options.setuid, 'user', ctx.lookupUser),
    setgid: options.setgid === undefined ? null : resolveId(options.setgid, 'group', ctx.lookupGroup),
  };
}

type Inside = Pick<Plan, 'hostname' | 'domainname' | 'monotonic' | 'boottime' | 'procDir' | 'propagation' | 'root' | 'wd'>;

/** What the command finds inside: names, clocks, proc, propagation, root and directory. */
function inside(options: RunOptions, wanted: Set<NamespaceName>): Inside {
  const hostname = options.hostname ?? null;
  const domainname = options.domainname ?? null;
  if (hostname !== null) checkUtsName('hostname', hostname);
  if (domainname !== null) checkUtsName('domainname', domainname);
  if (hostname !== null || domainname !== null) wanted.add('uts');

  const monotonic = offset('monotonic', options.monotonic);
  const boottime = offset('boottime', options.boottime);
  if (monotonic !== null || boottime !== null) wanted.add('time');
  if (options.init) wanted.add('pid');

  let procDir: string | null = null;
  if (options.mountProc) {
    procDir = options.mountProc === true ? '/proc' : options.mountProc;
    if (procDir === '') throw planError('--mount-proc needs a directory');
    wanted.add('mount');
  }
  let propagation: Propagation | null = null;
  if (wanted.has('mount')) propagation = options.propagation ?? 'private';
  else if (options.propagation !== undefined) throw planError('--propagation needs a new mount namespace', 'add --mount');
  const root = options.root ?? null;
  const wd = options.wd ?? null;
  if (root === '' || wd === '') throw planError(`--${root === '' ? 'root' : 'wd'} needs a directory`);
  return { hostname, domainname, monotonic, boottime, procDir, propagation, root, wd };
}

function killSignalFor(options: RunOptions, ctx: PlanContext): number | null {
  const killChild = options.killChild ?? (options.dieWithParent ? true : undefined);
  if (killChild === undefined || killChild === false) return null;
  const value = killChild === true ? 'SIGKILL' : String(killChild);
  const num = ctx.signalNumber(value);
  if (num === undefined || num < 1 || num > 64) throw planError(`--kill-child: unknown signal '${value}'`);
  return num;
}

/** Namespaces bound onto files, in table order. */
function persisted(options: RunOptions, unshared: ReadonlySet<NamespaceName>): PlanPersist[] {
  const persist: PlanPersist[] = [];
  for (const ns of NAMESPACES) {
    const value = options[ns.name];
    if (typeof value !== 'string') continue;
    if (value === '') throw planError(`--${ns.name}= needs a file to bind the namespace to`);
    const late = unshared.has(ns.name);
    persist.push({ namespace: ns.name, path: value, source: `ns/${late ? `${ns.proc}_for_children` : ns.proc}`, late });
  }
  return persist;
}

function mountsOf(inner: Inside, persist: readonly PlanPersist[]): PlanMount[] {
  const mounts: PlanMount[] = [];
  if (inner.propagation !== null && inner.propagation !== 'unchanged') {
    mounts.push({ kind: 'propagation', target: '/', description: `make / recursively ${inner.propagation}` });
  }
  if (inner.procDir !== null) {
    mounts.push({ kind: 'proc', target: inner.procDir, description: `mount proc on ${inner.procDir}${inner.root ? ` inside ${inner.root}` : ''} (nosuid,nodev,noexec)` });
  }
  for (const p of persist) {
    mounts.push({ kind: 'persist', target: p.path, description: `bind /proc/PID/${p.source} onto ${p.path}` });
  }
  return mounts;
}

/** The command; none means the caller's login shell, as unshare does. */
export function commandOf(command: readonly string[], env: PlanContext['env']): Pick<Plan, 'file' | 'argv' | 'loginShell'> {
  if (command.length > 0) return { file: command[0]!, argv: [...command], loginShell: false };
  const file = env.SHELL || '/bin/sh';
  return { file, argv: [`-${basename(file)}`], loginShell: true };
}

function cgroupOf(options: RunOptions, ctx: PlanContext): RunCgroup | null {
  if (!ctx.cgroups) throw planError('cgroup limits cannot be planned here (no cgroup planner in the context)');
  return ctx.cgroups.planRun(options);
}

export function makePlan(command: readonly string[], input: RunOptions, ctx: PlanContext): Plan {
  let options = withProfile(input, ctx);
  const wanted = namedNamespaces(options);
  const userAsked = wanted.has('user');
  tryNamespaces({ ...options, unshareUserTry: options.unshareUserTry || options.unshareAll, unshareCgroupTry: options.unshareCgroupTry || options.unshareAll }, wanted, ctx);
  const filesystem = (options.filesystem ?? []).map((o) => normalizeOp(o, ctx.cwd));
  const seccomp = seccompPrograms(options.seccomp ?? [], ctx);
  options = sandboxIds(sandboxImplications(options, filesystem, wanted, ctx), wanted, ctx);
  checkLabels(options, ctx);
  let ids = identity(options, wanted, ctx);
  const life = planLifecycle({ ...options, unshareUserTry: options.unshareUserTry || (options.unshareAll && options.userns !== undefined) }, wanted, userAsked, mapsGiven(input));
  // --userns-block-fd: the caller writes the maps; --userns: they are there.
  if (life.noMaps) ids = { ...ids, uidMap: null, gidMap: null, uidMapHelper: false, gidMapHelper: false, setgroups: null };
  const binfmt = planBinfmt(options, wanted);
  options = binfmt.options;
  const inner = inside(options, wanted);
  const killSignal = killSignalFor(options, ctx);

  // Process layout: a time namespace is unshared by the child, which forks the
  // command into it; without --init a new pid namespace goes with it, so that
  // the command is still PID 1.
  const supervisor = options.init ? 'init' : wanted.has('time') ? 'time' : null;
  const unshared = new Set<NamespaceName>();
  if (wanted.has('time')) unshared.add('time');
  if (supervisor === 'time' && wanted.has('pid')) unshared.add('pid');
  const persist = persisted(options, unshared);
  const mounts = mountsOf(inner, persist);
  // The shim binds the early ones first, then waits for the child before the late ones.
  persist.sort((a, b) => Number(a.late) - Number(b.late));

  const command0 = commandOf(command, ctx.env);
  const namespaces = NAMESPACES.filter((n) => wanted.has(n.name)).map((n) => n.name);
  const flagsOf = (list: NamespaceName[]) => list.reduce((f, n) => f | namespace(n).flag, 0) >>> 0;
  const cloneFlags = flagsOf(namespaces.filter((n) => !unshared.has(n)));
  const unshareFlags = flagsOf([...unshared]);
  const plan: Plan = {
    namespaces,
    cloneFlags,
    cloneFlagNames: cloneFlagNames(cloneFlags),
    unshareFlags,
    unshareFlagNames: cloneFlagNames(unshareFlags),
    uidMap: ids.uidMap,
    gidMap: ids.gidMap,
    uidMapHelper: ids.uidMapHelper,
    gidMapHelper: ids.gidMapHelper,
    setgroups: ids.setgroups,
    hostname: inner.hostname,
    domainname: inner.domainname,
    propagation: inner.propagation,
    procDir: inner.procDir,
    mounts,
    persist,
    monotonic: inner.monotonic,
    boottime: inner.boottime,
    root: inner.root,
    wd: inner.wd,
    setuid: ids.setuid,
    setgid: ids.setgid,
    keepCaps: options.keepCaps ?? false,
    killSignal,
    supervisor,
    filesystem: procOps(filesystem, wanted),
    noNewPrivs: options.noNewPrivs ?? (filesystem.length > 0 || seccomp.length > 0 || wantsProfile(options.seccompProfile)),
    newSession: options.newSession ?? false,
    seccomp,
    seccompProfile: null,
    seccompListener: null,
    capKeep: capKeep(options, filesystem.length > 0),
    loUp: wanted.has('net'),
    binfmt: binfmt.binfmt,
    ...command0,
    argv: withArgv0(command0.argv, options.argv0),
    pwd: pwdOf({ sandboxed: filesystem.length > 0, clearEnv: options.clearEnv ?? false, wd: inner.wd, root: inner.root }, ctx),
    cgroup: wantsCgroup(options) ? cgroupOf(options, ctx) : null,
    lifecycle: life.plan,
  };
  return wantsProfile(options.seccompProfile) ? { ...plan, ...profilePlan(plan, options.seccompProfile, ctx) } : plan;
}
