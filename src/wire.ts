/**
 * THE boundary with the native shim, on this side: what a plan becomes on
 * the wire, and what the shim's numbers mean when they come back.
 * native/wire.h is the other side; test/unit/wire.test.ts reads it and checks
 * that every table here is the same.
 */
import { TsnsError, type Stage } from './errors';
import { formatIdMap } from './idmap';
import type { RunResult } from './launch';
import type { EnterPlan } from './plan/enter';
import type { LifecyclePlan } from './plan/lifecycle';
import type { Plan, PlanSeccomp, Propagation } from './plan/run';
import type { SandboxOp } from './sandbox';
import { signalName } from './signals';

/** native/wire.h TSNS_TAGS: the tag byte of each spec entry. */
export const TAG = {
  FLAGS: 'f', PROPAGATION: 'P', FILE: 'x', SEARCH_PATH: 'S', UID_MAP: 'u', GID_MAP: 'g',
  UID_MAP_HELPER: 'm', GID_MAP_HELPER: 'n', SETGROUPS: 's', HOSTNAME: 'h', DOMAINNAME: 'd',
  PROC_DIR: 'p', ROOT: 'R', WD: 'W', MONOTONIC: 'M', BOOTTIME: 'B', UID: 'U', GID: 'G',
  KEEP_CAPS: 'k', KILL_SIGNAL: 'K', INIT: 'I', UNSHARE_PID: 'Q', PERSIST: 'N', PERSIST_LATE: 'L',
  TARGET: 'y', JOIN: 'J', ROOT_FD: 'r', CWD_FD: 'c', SANDBOX_OP: 'O', HARDENING: 'H', CAP_KEEP: 'C',
  SECCOMP: 'F', STDIO: 'D', INHERIT_FDS: 'w', EXTRA: 'v', CGROUP_PROCS: 'A', CGROUP_DIR: 'E', ARG: 'a', ENV: 'e',
  SECCOMP_FLAGS: 'T', SECCOMP_LISTENER: 'V', OCI_ROOT: 'X', OCI_MOUNT: 'Y', OCI_STEP: 'Z', WD_TRY: 'i',
  LOCK_FILE: 'l', INFO_FD: 'q', STATUS_FD: 't', BLOCK_FD: 'z', USERNS_BLOCK_FD: 'o',
  OCI_HOOK: '1', OCI_HOOK_STATE: '2',
} as const;

/** native/wire.h TSNS_EXTRAS: an EXTRA entry's first byte. */
export const EXTRA = {
  NO_FORK: 'F', BINFMT: 'b', INTERP: 'l', INTERP_EARLY: 'e', EXEC_FIFO: 'G', RLIMIT: 'H', GROUPS: 'J', CAPS: 'K', CONSOLE: 'M',
  SYNC_FD: '5', USERNS: '6', USERNS2: '7', PIDNS: '8', CONSOLE_FD: 'N', OCI_HOOKS: 'P', SESSION_KEYRING: 'R',
  PIDFD_SOCKET: 'T',
} as const;

/** native/wire.h TSNS_SANDBOX_OPS. */
export const SANDBOX_OP = {
  BIND: 'b', RO_BIND: 'r', DEV_BIND: 'v', TMPFS: 't', DIR: 'd', SYMLINK: 's', FILE: 'f', CHMOD: 'c',
  REMOUNT_RO: 'R', PROC: 'p', DEV: 'D', OVERLAY: 'o', BIND_DATA: 'a', RO_BIND_DATA: 'A', MQUEUE: 'm',
  RO_OVERLAY: 'O', RW_OVERLAY: 'w', BIND_FD: 'F', RO_BIND_FD: 'B',
} as const;
export const OP_SEP = '\x01';
export const OP_LIST_SEP = '\x02';
export const OP_TRY = 't';
export const FD_SOURCE = 'fd:';
/** A seccomp listener's value: listenerPath, LISTENER_SEP, the state to send, PID_MARK where the command's pid goes. */
export const LISTENER_SEP = '\x01';
export const PID_MARK = '\x02';
/** After a seccomp program's flags: load it before dropping privileges. */
export const SECCOMP_EARLY = 'e';

/** native/wire.h TSNS_HARDENING. */
export const HARDENING = {
  NO_NEW_PRIVS: 'n', NEW_SESSION: 's', LO_UP: 'l', OVERLAY_USERXATTR: 'x', DISABLE_USERNS: 'f', ASSERT_USERNS_DISABLED: 'g', KEEP_GROUPS: 'u',
} as const;

/** native/wire.h TSNS_STAGES: [C name, number, the stage's name here]. */
export const STAGES = [
  ['SPEC', 1, 'spec'], ['PIPE', 2, 'pipe'], ['STACK', 3, 'stack'], ['CLONE', 4, 'clone'],
  ['SETGROUPS', 5, 'setgroups'], ['UID_MAP', 6, 'uid_map'], ['GID_MAP', 7, 'gid_map'], ['SYNC', 8, 'sync'],
  ['HOSTNAME', 9, 'sethostname'], ['DOMAINNAME', 10, 'setdomainname'], ['PROPAGATION', 11, 'propagation'],
  ['MOUNT_PROC', 12, 'mount-proc'], ['STDIO', 13, 'stdio'], ['EXEC', 14, 'exec'], ['PERSIST', 15, 'persist'],
  ['TIME', 16, 'time'], ['TIME_OFFSETS', 17, 'time-offsets'], ['FORK', 18, 'fork'], ['ROOT', 19, 'root'],
  ['WD', 20, 'wd'], ['SETGID', 21, 'setgid'], ['SETUID', 22, 'setuid'], ['CAPS', 23, 'caps'],
  ['PDEATHSIG', 24, 'pdeathsig'], ['NEWUIDMAP', 25, 'newuidmap'], ['NEWGIDMAP', 26, 'newgidmap'],
  ['TARGET', 27, 'target'], ['SETNS', 28, 'setns'], ['SANDBOX', 29, 'sandbox'], ['LO', 30, 'lo'],
  ['NO_NEW_PRIVS', 31, 'no-new-privs'], ['SETSID', 32, 'setsid'], ['SECCOMP', 33, 'seccomp'],
  ['NET_SOCKET', 40, 'net-socket'], ['SOCKET_NETNS', 41, 'socket-netns'], ['USER_PARENT', 42, 'user-parent'],
  ['BINFMT', 43, 'binfmt'], ['LOAD_INTERP', 44, 'load-interp'],
  ['CGROUP_PROCS', 45, 'cgroup-procs'], ['CGROUP_CLONE', 46, 'cgroup-clone'], ['CGROUPNS', 47, 'cgroupns'],
  ['SECCOMP_LISTENER', 50, 'seccomp-listener'], ['SECCOMP_HANDOFF', 51, 'seccomp-handoff'], ['SECCOMP_SEND', 52, 'seccomp-send'],
  ['OCI_ROOTFS', 70, 'oci-rootfs'], ['OCI_MOUNT', 71, 'oci-mount'], ['OCI_PIVOT', 72, 'oci-pivot'], ['OCI_STEP', 73, 'oci-step'],
  ['RLIMIT', 74, 'rlimit'], ['EXEC_FIFO', 75, 'exec-fifo'], ['GROUPS', 76, 'groups'], ['CONSOLE', 77, 'console'],
  ['OCI_CAPS', 78, 'oci-caps'], ['LOOKUP', 79, 'lookup'],
  ['LOCK_FILE', 60, 'lock-file'], ['BLOCK_FD', 61, 'block-fd'], ['INFO_FD', 62, 'info-fd'], ['USERNS_BLOCK', 63, 'userns-block-fd'],
  ['DISABLE_USERNS', 64, 'disable-userns'], ['USERNS_ENABLED', 65, 'assert-userns-disabled'], ['USERNS_JOIN', 66, 'userns'],
  ['USERNS2', 67, 'userns2'], ['PIDNS', 68, 'pidns'], ['OCI_HOOKS', 80, 'oci-hooks'],
  ['SESSION_KEYRING', 84, 'session-keyring'], ['KEYRING_PERM', 85, 'keyring-perm'],
  ['PIDFD_SOCKET', 87, 'pidfd-socket'], ['OCI_START_HOOK', 88, 'oci-start-hook'],
  ['OCI_MOUNT_PATH', 81, 'oci-mount-path'], ['OCI_STEP_PATH', 82, 'oci-step-path'], ['OCI_MOUNT_ON', 83, 'oci-mount-on'],
] as const;

export type NativeStage = (typeof STAGES)[number][2];

/** Stages whose errno carries, in its high byte, the index of the file, namespace, operation or program. */
export const INDEXED_STAGES = ['PERSIST', 'SETNS', 'SANDBOX', 'SECCOMP', 'CGROUP_PROCS', 'OCI_MOUNT', 'OCI_STEP', 'RLIMIT', 'LOCK_FILE', 'OCI_MOUNT_PATH', 'OCI_STEP_PATH', 'OCI_MOUNT_ON'] as const;
export const STAGE_SHIFT = 16;
export const INDEX_SHIFT = 8;
export const WAIT_SHIFT = 16;
export const WAIT_EXITED = 1;
export const WAIT_SIGNALED = 2;
export const PIPE_SHIFT = 16;

/** native/wire.h TSNS_NS_QUERIES: what tsns_ns_query() answers. */
export const NS_QUERY = { TYPE: 0, PARENT: 1, OWNER: 2, OWNER_UID: 3, NETNSID: 4 } as const;

const MS_PROPAGATION: Record<Propagation, number> = {
  unchanged: 0,
  private: 1 << 18,
  slave: 1 << 19,
  shared: 1 << 20,
};

/** Everything the child needs, flattened for the shim. */
export interface SpawnSpec {
  /** CLONE_NEW* for clone(2), plus CLONE_NEWTIME for the child to unshare */
  flags: number;
  /** with CLONE_NEWTIME and no init: the child unshares the pid namespace too */
  unsharePid: boolean;
  uidMap: string | null;
  gidMap: string | null;
  uidMapHelper: boolean;
  gidMapHelper: boolean;
  setgroups: string | null;
  hostname: string | null;
  domainname: string | null;
  procDir: string | null;
  /** MS_* bits applied recursively to /, 0 to leave it */
  propagation: number;
  root: string | null;
  wd: string | null;
  /** without wd: "PWD=DIR" entries, the first directory chdir takes is the command's and its PWD */
  wdTry: readonly string[];
  monotonic: number | null;
  boottime: number | null;
  uid: number | null;
  gid: number | null;
  keepCaps: boolean;
  killSignal: number | null;
  init: boolean;
  persist: readonly { source: string; path: string; late: boolean }[];
  /** sandbox operations, encoded (encodeOp) */
  filesystem: readonly string[];
  /** HARDENING letters */
  hardening: string;
  /** seccomp programs to load last (or early, before dropping privileges), in order */
  seccomp: readonly PlanSeccomp[];
  /** where the listener of a program with SECCOMP_FILTER_FLAG_NEW_LISTENER goes */
  seccompListener: { path: string; state: string } | null;
  /** capabilities to keep, decimal mask; null leaves them */
  capKeep: string | null;
  /** util-linux's newer steps and bwrap's fds, each an EXTRA code and its value (extraEntries) */
  extras: readonly string[];
  /** bwrap's fd protocols: lock files and the fds the shim itself reads or writes */
  lifecycle: LifecyclePlan | null;
  /** enter: the target pid, pinned with a pidfd */
  target: number | null;
  /** enter: namespaces to join in order; fromTarget ones may be joined at once through the pidfd */
  joins: readonly { type: number; fd: number; fromTarget: boolean }[];
  /** enter: fds of the target's root and cwd to change to after joining */
  rootFd: number | null;
  cwdFd: number | null;
  /** the command's fds by number: the fd of ours it gets there, -1 for /dev/null, null: 0-2 as they are, others closed */
  stdio: readonly (number | null)[];
  /** keep open every fd this process's caller handed it (the CLI, as unshare, nsenter and bwrap do) */
  inheritFds: boolean;
  /** fds of cgroup.procs files: the shim writes the child's pid into each before it runs */
  cgroupProcs: readonly number[];
  /** an fd of a v2 cgroup directory tsns made: the child is cloned into it (clone3 CLONE_INTO_CGROUP) */
  cgroupDir: number | null;
  file: string | Uint8Array;
  /** the PATH the command is searched in */
  searchPath: string;
  /** strings, or bytes where they are not UTF-8 (the CLI passes its own argv and environment exactly) */
  argv: readonly (string | Uint8Array)[];
  env: readonly (string | Uint8Array)[];
  /** tsns-oci: OCI_ROOT, OCI_MOUNT, OCI_STEP and OCI_HOOK entries as [tag, value], in order (src/oci/plan.ts) */
  oci?: readonly (readonly [string, string])[];
}

/** What a plan gives the shim; the process options (launch.ts) add the rest. */
export type LaunchSpec = Omit<SpawnSpec, 'stdio' | 'inheritFds' | 'searchPath' | 'env'>;

/** A launch that creates, maps and mounts nothing: each plan fills in what it uses. */
export const BARE_LAUNCH: LaunchSpec = {
  flags: 0, unsharePid: false, uidMap: null, gidMap: null, uidMapHelper: false, gidMapHelper: false,
  setgroups: null, hostname: null, domainname: null, procDir: null, propagation: 0, root: null, wd: null, wdTry: [],
  monotonic: null, boottime: null, uid: null, gid: null, keepCaps: false, killSignal: null, init: false,
  persist: [], filesystem: [], seccomp: [], seccompListener: null, hardening: '', capKeep: null, extras: [], target: null, joins: [], rootFd: null, cwdFd: null,
  cgroupProcs: [], cgroupDir: null, file: '', argv: [], lifecycle: null,
};

const OP_CODE: Record<SandboxOp['op'], string> = {
  bind: SANDBOX_OP.BIND, 'ro-bind': SANDBOX_OP.RO_BIND, 'dev-bind': SANDBOX_OP.DEV_BIND, tmpfs: SANDBOX_OP.TMPFS,
  dir: SANDBOX_OP.DIR, symlink: SANDBOX_OP.SYMLINK, file: SANDBOX_OP.FILE, chmod: SANDBOX_OP.CHMOD,
  'remount-ro': SANDBOX_OP.REMOUNT_RO, proc: SANDBOX_OP.PROC, dev: SANDBOX_OP.DEV, overlay: SANDBOX_OP.RW_OVERLAY,
  'tmp-overlay': SANDBOX_OP.OVERLAY, 'ro-overlay': SANDBOX_OP.RO_OVERLAY, 'bind-fd': SANDBOX_OP.BIND_FD, 'ro-bind-fd': SANDBOX_OP.RO_BIND_FD,
  'bind-data': SANDBOX_OP.BIND_DATA, 'ro-bind-data': SANDBOX_OP.RO_BIND_DATA, mqueue: SANDBOX_OP.MQUEUE,
};

/**
 * A sandbox operation as native/sandbox.c reads it: code, a, b, mode (octal),
 * size, and for an overlay of its own upper layer, upper and work. The modes
 * are bwrap's defaults where none is given, since the parents the shim makes
 * follow them.
 */
export function encodeOp(o: SandboxOp): string {
  let a = '';
  let mode: number | undefined;
  let size: number | bigint | undefined;
  let tryFlag = false;
  let more: string[] = [];
  let code = OP_CODE[o.op];
  switch (o.op) {
    case 'bind': case 'ro-bind': case 'dev-bind': a = o.src; tryFlag = o.try ?? false; break;
    case 'bind-fd': case 'ro-bind-fd': a = `${FD_SOURCE}${o.fd}`; break;
    case 'bind-data': case 'ro-bind-data': a = `${FD_SOURCE}${o.fd}`; mode = o.perms ?? 0o600; break;
    case 'symlink': a = o.target; break;
    case 'file': a = typeof o.src === 'number' ? `${FD_SOURCE}${o.src}` : o.src; mode = o.perms ?? 0o666; break;
    case 'overlay': case 'tmp-overlay': case 'ro-overlay':
      a = o.lowers.join(OP_LIST_SEP);
      if (o.op === 'overlay' && o.upper !== undefined) more = [o.upper, o.work ?? ''];
      else if (o.op === 'overlay') code = SANDBOX_OP.OVERLAY;
      break;
    case 'tmpfs': mode = o.perms ?? 0o755; size = o.size; break;
    case 'dir': mode = o.perms ?? 0o755; break;
    case 'chmod': mode = o.perms; break;
  }
  const dest = 'dest' in o && o.dest !== undefined ? o.dest : '';
  return [`${code}${tryFlag ? OP_TRY : ''}`, a, dest, mode === undefined ? '' : mode.toString(8), size === undefined ? '' : String(size), ...more].join(OP_SEP);
}

/** A plan's util-linux steps and bwrap's namespace fds as EXTRA entries. */
export function extraEntries(x: { noFork?: boolean; binfmt?: { dir: string; interp: string | null; early: boolean } | null; lifecycle?: LifecyclePlan }): string[] {
  const out: string[] = [];
  const l = x.lifecycle;
  if (l) {
    const fds: [string, number | null][] = [[EXTRA.SYNC_FD, l.syncFd], [EXTRA.USERNS, l.userns], [EXTRA.USERNS2, l.userns2], [EXTRA.PIDNS, l.pidns]];
    for (const [code, fd] of fds) if (fd !== null) out.push(`${code}${fd}`);
  }
  if (x.noFork) out.push(EXTRA.NO_FORK);
  if (x.binfmt) {
    out.push(`${EXTRA.BINFMT}${x.binfmt.dir}`);
    if (x.binfmt.interp !== null) out.push(`${EXTRA.INTERP}${x.binfmt.interp}`);
    if (x.binfmt.early) out.push(EXTRA.INTERP_EARLY);
  }
  return out;
}

/** A run plan as the shim takes it. */
export function runSpec(plan: Plan): LaunchSpec {
  const hardening = [
    plan.noNewPrivs && HARDENING.NO_NEW_PRIVS, plan.newSession && HARDENING.NEW_SESSION, plan.loUp && HARDENING.LO_UP,
    plan.namespaces.includes('user') && HARDENING.OVERLAY_USERXATTR,
    plan.lifecycle.disableUserns && HARDENING.DISABLE_USERNS, plan.lifecycle.assertUsernsDisabled && HARDENING.ASSERT_USERNS_DISABLED,
  ];
  return {
    ...BARE_LAUNCH,
    flags: plan.cloneFlags | plan.unshareFlags,
    unsharePid: plan.unshareFlagNames.includes('CLONE_NEWPID'),
    uidMap: plan.uidMap && formatIdMap(plan.uidMap),
    gidMap: plan.gidMap && formatIdMap(plan.gidMap),
    uidMapHelper: plan.uidMapHelper,
    gidMapHelper: plan.gidMapHelper,
    setgroups: plan.setgroups,
    hostname: plan.hostname,
    domainname: plan.domainname,
    procDir: plan.procDir,
    propagation: plan.propagation ? MS_PROPAGATION[plan.propagation] : 0,
    root: plan.root,
    wd: plan.wd,
    wdTry: (plan.pwd?.wdTry ?? []).map((d) => `PWD=${d}`),
    monotonic: plan.monotonic,
    boottime: plan.boottime,
    uid: plan.setuid,
    gid: plan.setgid,
    keepCaps: plan.keepCaps,
    killSignal: plan.killSignal,
    init: plan.supervisor === 'init',
    persist: plan.persist,
    filesystem: plan.filesystem.map(encodeOp),
    seccomp: plan.seccomp,
    seccompListener: plan.seccompListener,
    hardening: hardening.filter(Boolean).join(''),
    capKeep: plan.capKeep,
    extras: extraEntries(plan),
    lifecycle: plan.lifecycle,
    file: plan.file,
    argv: plan.argv,
  };
}

/** The fds enter opened for its plan: each join's namespace (type: its CLONE_NEW* flag), the target's root and cwd. */
export interface EnterFds {
  joins: readonly { type: number; fd: number; fromTarget: boolean }[];
  rootFd: number | null;
  cwdFd: number | null;
}

/** An enter plan, with the fds opened for it, as the shim takes it. */
export function enterSpec(plan: EnterPlan, fds: EnterFds): LaunchSpec {
  // -r DIR and -w DIR come as fds opened before joining; -W DIR is a path inside.
  return {
    ...BARE_LAUNCH,
    wd: plan.wdns,
    target: plan.target,
    joins: fds.joins,
    rootFd: fds.rootFd,
    cwdFd: fds.cwdFd,
    uid: plan.setuid,
    gid: plan.setgid,
    keepCaps: plan.keepCaps,
    extras: extraEntries(plan),
    file: plan.file,
    argv: plan.argv,
  };
}

function nulError(text: string): TsnsError {
  return new TsnsError(`an argument or environment entry contains a NUL byte: ${JSON.stringify(text)}`, { stage: 'spec' });
}

/** The spec's bytes: tag, value, NUL, entry after entry; native/spec.c reads them. */
export function encodeSpec(s: SpawnSpec): Buffer {
  // Entries gather in one string, encoded once; byte entries (rare) split it.
  const chunks: Buffer[] = [];
  let text = '';
  const add = (tag: string, value: string | number | Uint8Array) => {
    if (typeof value !== 'object') {
      const v = String(value);
      if (v.includes('\0')) throw nulError(v);
      text += `${tag}${v}\0`;
      return;
    }
    if (value.includes(0)) throw nulError(Buffer.from(value).toString());
    chunks.push(Buffer.from(`${text}${tag}`), Buffer.from(value));
    text = '\0';
  };
  add(TAG.FLAGS, s.flags);
  add(TAG.PROPAGATION, s.propagation);
  add(TAG.FILE, s.file);
  add(TAG.SEARCH_PATH, s.searchPath);
  const optional: [string, string | number | null][] = [
    [TAG.UID_MAP, s.uidMap], [TAG.GID_MAP, s.gidMap], [TAG.SETGROUPS, s.setgroups], [TAG.HOSTNAME, s.hostname],
    [TAG.DOMAINNAME, s.domainname], [TAG.PROC_DIR, s.procDir], [TAG.ROOT, s.root], [TAG.WD, s.wd],
    [TAG.MONOTONIC, s.monotonic], [TAG.BOOTTIME, s.boottime], [TAG.UID, s.uid], [TAG.GID, s.gid],
    [TAG.KILL_SIGNAL, s.killSignal], [TAG.TARGET, s.target], [TAG.ROOT_FD, s.rootFd], [TAG.CWD_FD, s.cwdFd],
    [TAG.CAP_KEEP, s.capKeep], [TAG.HARDENING, s.hardening || null], [TAG.CGROUP_DIR, s.cgroupDir],
  ];
  for (const [tag, value] of optional) if (value !== null) add(tag, value);
  const flags: [string, boolean][] = [
    [TAG.UID_MAP_HELPER, s.uidMapHelper], [TAG.GID_MAP_HELPER, s.gidMapHelper], [TAG.KEEP_CAPS, s.keepCaps],
    [TAG.INIT, s.init], [TAG.UNSHARE_PID, s.unsharePid],
  ];
  for (const [tag, on] of flags) if (on) add(tag, '');
  if (s.inheritFds) add(TAG.INHERIT_FDS, '');
  for (const x of s.extras) add(TAG.EXTRA, x);
  for (const p of s.persist) add(p.late ? TAG.PERSIST_LATE : TAG.PERSIST, `${p.source}:${p.path}`);
  for (const o of s.filesystem) add(TAG.SANDBOX_OP, o);
  for (const d of s.wdTry) add(TAG.WD_TRY, d);
  for (const p of s.seccomp) {
    add(TAG.SECCOMP, p.hex);
    if (p.flags || p.early) add(TAG.SECCOMP_FLAGS, `${p.flags ?? 0}${p.early ? SECCOMP_EARLY : ''}`);
  }
  if (s.seccompListener) add(TAG.SECCOMP_LISTENER, `${s.seccompListener.path}${LISTENER_SEP}${s.seccompListener.state}`);
  for (const j of s.joins) add(TAG.JOIN, `${j.type}:${j.fd}${j.fromTarget ? 't' : ''}`);
  for (const fd of s.cgroupProcs) add(TAG.CGROUP_PROCS, fd);
  const l = s.lifecycle;
  if (l) {
    for (const p of l.lockFiles) add(TAG.LOCK_FILE, p);
    const fds: [string, number | null][] = [[TAG.INFO_FD, l.infoFd], [TAG.STATUS_FD, l.jsonStatusFd], [TAG.BLOCK_FD, l.blockFd], [TAG.USERNS_BLOCK_FD, l.usernsBlockFd]];
    for (const [tag, fd] of fds) if (fd !== null) add(tag, fd);
  }
  s.stdio.forEach((fd, target) => {
    if (fd !== null) add(TAG.STDIO, `${target}:${fd}`);
  });
  for (const [tag, value] of s.oci ?? []) add(tag, value);
  for (const a of s.argv) add(TAG.ARG, a);
  for (const e of s.env) add(TAG.ENV, e);
  if (chunks.length === 0) return Buffer.from(text);
  chunks.push(Buffer.from(text));
  return Buffer.concat(chunks);
}

export interface NativeFailure {
  stage: Stage;
  /** errno */
  code: number;
  /** which file, namespace, operation or program the stage names (INDEXED_STAGES); else 0 */
  index: number;
}

const STAGE_BY_NUMBER = new Map<number, (typeof STAGES)[number]>(STAGES.map((s) => [s[1], s]));

/** tsns_spawn()'s negative return: -(stage << 16 | errno), the index in the errno's high byte for some stages. */
export function decodeFailure(ret: number): NativeFailure {
  const entry = STAGE_BY_NUMBER.get(Math.floor(-ret / 2 ** STAGE_SHIFT));
  const low = -ret & (2 ** STAGE_SHIFT - 1);
  const indexed = entry !== undefined && (INDEXED_STAGES as readonly string[]).includes(entry[0]);
  const mask = (1 << INDEX_SHIFT) - 1;
  return { stage: entry ? entry[2] : 'native', code: indexed ? low & mask : low, index: indexed ? low >> INDEX_SHIFT : 0 };
}

/** The shim's wait word: kind << 16 | value, kind WAIT_EXITED (value: the code) or WAIT_SIGNALED (the signal). */
export function decodeWaitStatus(pid: number, word: number): RunResult {
  const kind = Math.floor(word / 2 ** WAIT_SHIFT);
  const value = word & (2 ** WAIT_SHIFT - 1);
  if (kind === WAIT_SIGNALED) return { pid, exitCode: null, signal: signalName(value) };
  return { pid, exitCode: value, signal: null };
}

/** tsns_pipe()'s answer: [read end, write end]. */
export function decodePipe(ret: number): [number, number] {
  return [Math.floor(ret / 2 ** PIPE_SHIFT), ret % 2 ** PIPE_SHIFT];
}
