/**
 * What a failure the shim reported means for the user: one line naming what
 * failed and the errno, and a hint where there is something to do.
 */
import { errnoName, systemError, TsnsError, type Stage } from './errors';
import type { LifecyclePlan } from './plan/lifecycle';
import { describeOp, type SandboxOp } from './sandbox';

/** Enough of a plan to explain a failure; what a caller does not have is left out. */
export interface FailureContext {
  namespaces: readonly string[];
  cloneFlagNames?: readonly string[];
  uidMapText?: string | null;
  gidMapText?: string | null;
  setgroups?: string | null;
  hostname?: string | null;
  domainname?: string | null;
  procDir?: string | null;
  propagation?: string | null;
  root?: string | null;
  wd?: string | null;
  setuid?: number | null;
  setgid?: number | null;
  monotonic?: number | null;
  boottime?: number | null;
  persistPath?: string | null;
  persistNamespace?: string | null;
  file: string;
  /** enter: the target pid and the namespace whose join failed */
  target?: number | null;
  joinNamespace?: string | null;
  /** the sandbox operation that failed; null for the new root itself */
  sandboxOp?: SandboxOp | null;
  /** the sandbox's operations (a plan's) */
  filesystem?: readonly SandboxOp[];
  /** the seccomp program that the kernel refused, from 0 */
  seccompIndex?: number | null;
  /** the profile whose program is the first, and its agent's socket */
  seccompProfile?: string | null;
  seccompListener?: string | null;
  /** --mount-binfmt, --load-interp */
  binfmt?: { dir: string; interp: string | null; early: boolean } | null;
  /** the cgroup the command could not be put in */
  cgroupDir?: string | null;
  /** bwrap's fd protocols; the --lock-file that failed */
  lifecycle?: LifecyclePlan;
  lockFile?: string | null;
}

type Explainer = (code: number, ctx: FailureContext, name: string, stage: Stage) => TsnsError;

const USERNS_SYSCTLS =
  'check sysctl user.max_user_namespaces (and kernel.unprivileged_userns_clone or kernel.apparmor_restrict_unprivileged_userns where they exist)';

function cloneHint(name: string, ctx: FailureContext): string | undefined {
  if (name === 'EPERM' || name === 'EACCES') {
    if (!ctx.namespaces.includes('user')) return 'creating namespaces needs root: run as root, or add --user (or -r/--map-root-user) to create them inside a new user namespace';
    return `unprivileged user namespaces look disabled: ${USERNS_SYSCTLS}`;
  }
  if (name === 'ENOSPC' || name === 'EUSERS') {
    return 'a namespace limit was reached: check /proc/sys/user/max_*_namespaces (e.g. sysctl user.max_user_namespaces) and the nesting depth';
  }
  if (name === 'EINVAL') return 'the kernel does not support one of these namespaces (check its CONFIG_*_NS options)';
  if (name === 'ENOMEM') return 'out of memory, or the pid namespace is being torn down';
  return undefined;
}

const idMap: Explainer = (code, ctx, name, stage) => {
  const text = (stage === 'uid_map' ? ctx.uidMapText : ctx.gidMapText)?.trim().replace(/\n/g, '; ');
  let hint: string | undefined;
  if (name === 'EPERM' && process.geteuid?.() !== 0) {
    hint = stage === 'gid_map' && ctx.setgroups !== 'deny'
      ? 'without root a gid map needs setgroups denied first (--setgroups=deny)'
      : 'without root only your own id can be mapped, as one line';
  }
  return systemError(`cannot write ${stage} '${text}'`, code, stage, hint);
};

const utsName: Explainer = (code, ctx, _name, stage) => systemError(
  `cannot set ${stage === 'sethostname' ? 'hostname' : 'domainname'} '${stage === 'sethostname' ? ctx.hostname : ctx.domainname}'`,
  code, stage,
);

const idMapHelper: Explainer = (code, _ctx, name, stage) => systemError(
  `${stage} refused the ${stage === 'newuidmap' ? 'uid' : 'gid'} map`, code, stage,
  name === 'ENOENT' ? `install ${stage} (Debian: apt-get install uidmap)` : `check /etc/sub${stage === 'newuidmap' ? 'uid' : 'gid'}`,
);

function mountProcHint(name: string, ctx: FailureContext): string | undefined {
  if (name === 'ENOENT') return `create the directory ${ctx.procDir} first, or give another with --mount-proc=DIR`;
  if (name === 'EPERM' && !ctx.namespaces.includes('pid')) return 'a proc mount inside a user namespace needs a new pid namespace as well: add --pid';
  return undefined;
}

function execHint(name: string, ctx: FailureContext): string | undefined {
  if (name === 'ENOENT') return ctx.file.includes('/') ? undefined : `'${ctx.file}' is not in PATH`;
  if (name === 'EACCES') return 'check that it is a regular file with execute permission';
  return undefined;
}

function persistHint(name: string, ctx: FailureContext): string | undefined {
  if (name === 'EPERM') return 'binding a namespace onto a file is a mount in your mount namespace: run as root';
  if (name === 'EACCES') return 'you may not create that file: choose a path you can write, or run as root';
  if (name === 'EINVAL' && ctx.persistNamespace === 'mount') {
    return `a mount namespace can only be bound onto a file on a private mount: mount --bind DIR DIR && mount --make-private DIR, for the directory of ${ctx.persistPath}`;
  }
  if (name === 'EINVAL') return `${ctx.persistPath} exists and is not a regular file`;
  if (name === 'ENOENT') return 'its directory does not exist';
  return undefined;
}

function sandboxHint(name: string, op: SandboxOp): string | undefined {
  if (name === 'ENOENT' && (op.op === 'bind' || op.op === 'ro-bind' || op.op === 'dev-bind')) {
    return `the source ${op.src} does not exist; --${op.op}-try skips a missing one`;
  }
  if (op.op === 'bind-fd' || op.op === 'ro-bind-fd') {
    if (name === 'ENOENT') return `fd ${op.fd} is not open, or its file was deleted: open a directory (or a file, O_PATH) on it, as in ${op.fd}<DIR`;
    if (name === 'ENOTDIR') return `fd ${op.fd} is not a file or a directory tsns was handed (a pipe or a socket cannot be bound): open one on it, as in ${op.fd}<DIR`;
  }
  if (op.op === 'overlay' || op.op === 'tmp-overlay' || op.op === 'ro-overlay') {
    const all = [...op.lowers, ...(op.upper === undefined ? [] : [op.upper, op.work ?? ''])];
    if (name === 'ENOENT' || name === 'ENOTDIR') return `each of ${all.join(', ')} must be an existing directory (of the host)`;
    if (name === 'EINVAL' && op.upper !== undefined) return `WORKDIR (${op.work}) must be an empty directory on the same filesystem as RWSRC (${op.upper})`;
    if (name === 'ELOOP') return 'overlay directories may not overlap: none of the sources, RWSRC and WORKDIR may be inside another';
  }
  if (name === 'ENOENT' || name === 'ENOTDIR') return 'a directory on the way does not exist in the sandbox yet: create it first (--dir)';
  if (name === 'EPERM' && op.op === 'proc') return 'a new proc needs a new pid namespace as well: add --pid';
  if (name === 'EEXIST') return 'something is already there in the sandbox';
  if (name === 'ENOSYS') return 'read-only and nodev binds need mount_setattr (Linux 5.12+)';
  return undefined;
}

const sandbox: Explainer = (code, ctx, name, stage) => {
  const op = ctx.sandboxOp;
  if (!op) {
    return systemError('cannot set up the sandbox root (tmpfs on /tmp, pivot_root)', code, stage,
      name === 'EPERM' ? 'a sandbox needs a mount namespace you own: run as root, or with a user namespace' : undefined);
  }
  if (name === 'ESTALE' && (op.op === 'bind-fd' || op.op === 'ro-bind-fd')) {
    return systemError(`${describeOp(op)}: what got mounted on ${op.dest} is not the file fd ${op.fd} is open on`, code, stage,
      `the path fd ${op.fd} has (ls -l /proc/self/fd/${op.fd}) now leads to something else: it was moved, deleted or replaced; open the fd again`);
  }
  return systemError(`${describeOp(op)} failed`, code, stage, sandboxHint(name, op));
};

function seccompHint(name: string): string | undefined {
  if (name === 'EINVAL') return 'it must be classic BPF compiled for this architecture, as seccomp_export_bpf() writes it';
  if (name === 'EACCES') return 'a seccomp filter needs no new privileges (leave --no-new-privs on) or CAP_SYS_ADMIN';
  if (name === 'EPERM' || name === 'ENOSYS') return 'an earlier seccomp program must allow prctl/seccomp for the next one to load';
  return undefined;
}

function setnsHint(name: string, ctx: FailureContext): string | undefined {
  if (name === 'EPERM') {
    return ctx.joinNamespace === 'user'
      ? 'a user namespace can be joined only by its owner, or as root'
      : 'joining needs CAP_SYS_ADMIN in the namespace\'s owning user namespace: run as root, or join its user namespace too (-U)';
  }
  if (name === 'EINVAL') return 'the target may have exited during the join, or the namespace cannot be joined from here';
  return undefined;
}

function wdHint(name: string, ctx: FailureContext): string | undefined {
  const where = ctx.filesystem?.length ? ' in the sandbox' : '';
  // In a sandbox the change comes after the switch to the command's user, as in bwrap.
  if (name === 'EACCES') return `the command's user may not enter ${ctx.wd}${where}: choose a directory it can enter`;
  const what = name === 'ENOENT' ? 'does not exist' : name === 'ENOTDIR' ? 'is not a directory' : null;
  if (what) return `${ctx.wd} ${what}${where}: ${where ? 'make it with --dir, or choose another' : 'choose another'}`;
  return undefined;
}

function timeHint(name: string): string | undefined {
  if (name === 'EPERM') return 'needs root, or add --user (or -r)';
  if (name === 'EINVAL') return 'the kernel has no time namespaces (Linux 5.6+, CONFIG_TIME_NS)';
  return undefined;
}

const EXPLAIN: Partial<Record<Stage, Explainer>> = {
  clone: (code, ctx, name, stage) => systemError(
    `cannot create namespaces (clone ${ctx.cloneFlagNames?.join('|') || 'without new namespaces'})`, code, stage, cloneHint(name, ctx)),
  setgroups: (code, ctx, _name, stage) => systemError(`cannot write '${ctx.setgroups}' to setgroups`, code, stage),
  uid_map: idMap,
  gid_map: idMap,
  sethostname: utsName,
  setdomainname: utsName,
  propagation: (code, ctx, _name, stage) => systemError(`cannot make / ${ctx.propagation} in the new mount namespace`, code, stage),
  'mount-proc': (code, ctx, name, stage) => systemError(`cannot mount proc on ${ctx.procDir}`, code, stage, mountProcHint(name, ctx)),
  exec: (code, ctx, name, stage) => systemError(`failed to execute ${ctx.file}`, code, stage, execHint(name, ctx)),
  persist: (code, ctx, name, stage) => systemError(
    `cannot bind the ${ctx.persistNamespace} namespace onto ${ctx.persistPath}`, code, stage, persistHint(name, ctx)),
  time: (code, _ctx, name, stage) => systemError('cannot create a time namespace (unshare CLONE_NEWTIME)', code, stage, timeHint(name)),
  'time-offsets': (code, ctx, name, stage) => systemError(
    `cannot set the clock offsets (monotonic ${ctx.monotonic ?? 0}, boottime ${ctx.boottime ?? 0})`, code, stage,
    name === 'ERANGE' || name === 'EINVAL' ? 'an offset may not take the clock below zero or past the kernel limit' : undefined),
  root: (code, ctx, name, stage) => systemError(`cannot change root to ${ctx.root}`, code, stage,
    name === 'EPERM' ? 'chroot needs root, or a user namespace (add -r)' : undefined),
  wd: (code, ctx, name, stage) => systemError(`cannot change directory to ${ctx.wd}`, code, stage, wdHint(name, ctx)),
  setuid: (code, ctx, name, stage) => systemError(`cannot set uid ${ctx.setuid}`, code, stage,
    name === 'EINVAL' ? `uid ${ctx.setuid} is not mapped in the user namespace` : undefined),
  setgid: (code, ctx, name, stage) => systemError(`cannot set gid ${ctx.setgid}`, code, stage,
    name === 'EINVAL' ? `gid ${ctx.setgid} is not mapped in the user namespace` : undefined),
  newuidmap: idMapHelper,
  newgidmap: idMapHelper,
  sandbox,
  lo: (code, _ctx, _name, stage) => systemError('cannot bring lo up in the new network namespace', code, stage),
  'no-new-privs': (code, _ctx, _name, stage) => systemError('cannot set no_new_privs', code, stage),
  setsid: (code, _ctx, _name, stage) => systemError('cannot start a new session', code, stage),
  seccomp: (code, ctx, name, stage) => systemError(ctx.seccompProfile && !ctx.seccompIndex
    ? `cannot load the seccomp profile ${ctx.seccompProfile}` : `cannot load seccomp program ${(ctx.seccompIndex ?? 0) + 1 - (ctx.seccompProfile ? 1 : 0)}`,
  code, stage, seccompHint(name)),
  'seccomp-listener': (code, ctx, name, stage) => systemError(`cannot connect to the seccomp agent at ${ctx.seccompListener}`, code, stage,
    name === 'ENOENT' || name === 'ECONNREFUSED' ? 'start the agent first: it must listen on that unix socket (listenerPath)' : undefined),
  'seccomp-handoff': (code, _ctx, _name, stage) => systemError('cannot hand the seccomp listener over from the command', code, stage,
    'the profile must let the command sendmsg, read and close until its exec'),
  'seccomp-send': (code, ctx, _name, stage) => systemError(`cannot send the seccomp listener to the agent at ${ctx.seccompListener}`, code, stage),
  fork: (code, ctx, name, stage) => systemError('cannot fork the command', code, stage,
    name === 'ENOMEM' && ctx.namespaces.includes('pid') ? 'the pid namespace has no init any more (its PID 1 exited)' : undefined),
  target: (code, ctx, name, stage) => systemError(`cannot enter pid ${ctx.target}`, code, stage, name === 'ESRCH' ? 'it is not running (any more)' : undefined),
  'cgroup-procs': (code, ctx, name, stage) => systemError(`cannot put the command into the cgroup ${ctx.cgroupDir}`, code, stage,
    name === 'ENOSPC' ? 'its cpuset has no CPUs or memory nodes' : name === 'EACCES' || name === 'EPERM' ? 'you may not move processes there: run as root, or in a cgroup delegated to you' : undefined),
  'cgroup-clone': (code, ctx, name, stage) => systemError(`cannot clone the command into the cgroup ${ctx.cgroupDir} (clone3 CLONE_INTO_CGROUP)`, code, stage,
    name === 'EBUSY' || name === 'EOPNOTSUPP' ? 'that cgroup cannot hold processes (it has controllers enabled for its children, or is threaded)' : undefined),
  cgroupns: (code, _ctx, _name, stage) => systemError('cannot create a cgroup namespace (unshare CLONE_NEWCGROUP)', code, stage),
  setns: (code, ctx, name, stage) => systemError(
    `cannot join the ${ctx.joinNamespace} namespace${ctx.target ? ` of pid ${ctx.target}` : ''}`, code, stage, setnsHint(name, ctx)),
};

function binfmtDir(ctx: FailureContext): string {
  return ctx.binfmt?.early ? '/proc/sys/fs/binfmt_misc' : ctx.binfmt?.dir ?? '?';
}

// unshare --mount-binfmt and --load-interp.
Object.assign(EXPLAIN, {
  binfmt: (code, ctx, name, stage) => systemError(`cannot mount binfmt_misc on ${binfmtDir(ctx)}`, code, stage,
    name === 'EPERM' ? 'binfmt_misc in a user namespace needs Linux 6.7 or later' : name === 'ENOENT' ? 'the directory does not exist (with the default place, /proc must be mounted: add --pid)' : undefined),
  'load-interp': (code, ctx, name, stage) => systemError(`cannot register '${ctx.binfmt?.interp}' in ${binfmtDir(ctx)}/register`, code, stage,
    name === 'EINVAL' ? 'the rule is malformed, or the interpreter does not exist' : name === 'EEXIST' ? 'an entry of that name is registered already' : undefined),
} satisfies Partial<Record<Stage, Explainer>>);

// bwrap's fd protocols and process rules.
Object.assign(EXPLAIN, {
  'lock-file': (code, ctx, name, stage) => systemError(`cannot lock ${ctx.lockFile} (--lock-file)`, code, stage,
    name === 'ENOENT' ? 'the file must exist in the sandbox: bind it there, or create it (--file)' : undefined),
  'info-fd': (code, ctx, name, stage) => systemError(`cannot write the sandbox's information to fd ${ctx.lifecycle?.infoFd ?? ctx.lifecycle?.jsonStatusFd}`, code, stage,
    name === 'EBADF' ? 'open that fd for writing, e.g. 5>info.json' : undefined),
  'userns-block-fd': (code, ctx, _name, stage) => systemError(`cannot read fd ${ctx.lifecycle?.usernsBlockFd} (--userns-block-fd)`, code, stage),
  'disable-userns': (code, _ctx, name, stage) => systemError('cannot disable user namespaces in the sandbox (user.max_user_namespaces, a nested user namespace)', code, stage,
    name === 'ENOSPC' ? 'the user namespace limit is reached already' : undefined),
  // The shim's EEXIST stands for "a new user namespace was made": no errno to report.
  'assert-userns-disabled': (_code, _ctx, _name, stage) => new TsnsError(
    'creation of new user namespaces was not disabled as requested: unshare(CLONE_NEWUSER) succeeded in the sandbox',
    { stage, hint: 'add --disable-userns, or run where user.max_user_namespaces is 0 for the sandbox' }),
  userns: (code, ctx, name, stage) => systemError(`cannot join the user namespace on fd ${ctx.lifecycle?.userns} (--userns)`, code, stage,
    name === 'EINVAL' ? 'it might not be a descendant of the current user namespace, or the fd is not a user namespace' : name === 'EPERM' ? 'you need CAP_SYS_ADMIN in it: own it, or be root' : undefined),
  userns2: (code, ctx, name, stage) => systemError(`cannot switch to the user namespace on fd ${ctx.lifecycle?.userns2} (--userns2)`, code, stage,
    name === 'EPERM' ? 'it must be a namespace you may join from the one given to --userns' : undefined),
  pidns: (code, ctx, name, stage) => systemError(`cannot join the pid namespace on fd ${ctx.lifecycle?.pidns} (--pidns)`, code, stage,
    name === 'EINVAL' ? 'it is not a pid namespace, or not one below your own' : name === 'EPERM' ? 'joining needs CAP_SYS_ADMIN in its user namespace: add --userns with its owner' : undefined),
} satisfies Partial<Record<Stage, Explainer>>);

/** The one-line report of a failure in the native shim, with its hint. */
export function nativeFailure(stage: Stage, code: number, ctx: FailureContext): TsnsError {
  const explain = EXPLAIN[stage];
  return explain ? explain(code, ctx, errnoName(code), stage) : systemError(`${stage} failed`, code, stage);
}
