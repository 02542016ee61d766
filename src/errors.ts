import { getSystemErrorMap } from 'node:util';
import { describeOp, type SandboxOp } from './sandbox';

/** Where tsns failed. The numbered ones mirror `enum stage` in native/tsns.c. */
export type Stage =
  | 'option'
  | 'plan'
  | 'spec'
  | 'pipe'
  | 'stack'
  | 'clone'
  | 'setgroups'
  | 'uid_map'
  | 'gid_map'
  | 'sync'
  | 'sethostname'
  | 'setdomainname'
  | 'propagation'
  | 'mount-proc'
  | 'stdio'
  | 'exec'
  | 'persist'
  | 'time'
  | 'time-offsets'
  | 'fork'
  | 'root'
  | 'wd'
  | 'setgid'
  | 'setuid'
  | 'caps'
  | 'pdeathsig'
  | 'newuidmap'
  | 'newgidmap'
  | 'target'
  | 'setns'
  | 'sandbox'
  | 'lo'
  | 'no-new-privs'
  | 'setsid'
  | 'seccomp'
  | 'wait'
  | 'native';

export const NATIVE_STAGES: readonly Stage[] = [
  'native', 'spec', 'pipe', 'stack', 'clone', 'setgroups', 'uid_map', 'gid_map', 'sync',
  'sethostname', 'setdomainname', 'propagation', 'mount-proc', 'stdio', 'exec', 'persist', 'time',
  'time-offsets', 'fork', 'root', 'wd', 'setgid', 'setuid', 'caps', 'pdeathsig', 'newuidmap', 'newgidmap',
  'target', 'setns', 'sandbox', 'lo', 'no-new-privs', 'setsid', 'seccomp',
];

export interface TsnsErrorDetails {
  stage: Stage;
  /** errno name, e.g. 'EPERM'; absent for failures that are not system calls */
  errno?: string;
  /** errno number */
  code?: number;
  hint?: string;
}

/** A failure of tsns itself (not the command's own non-zero exit). */
export class TsnsError extends Error {
  readonly stage: Stage;
  readonly errno: string | undefined;
  readonly code: number | undefined;
  readonly hint: string | undefined;

  constructor(message: string, details: TsnsErrorDetails) {
    super(message);
    this.name = 'TsnsError';
    this.stage = details.stage;
    this.errno = details.errno;
    this.code = details.code;
    this.hint = details.hint;
  }

  /** The exit status DESIGN §2 gives this failure: 127 not found, 126 not executable, else 125. */
  get exitCode(): number {
    if (this.stage !== 'exec') return 125;
    return this.errno === 'ENOENT' ? 127 : 126;
  }
}

export function errnoName(code: number): string {
  return getSystemErrorMap().get(-code)?.[0] ?? `errno ${code}`;
}

export function errnoMessage(code: number): string {
  const msg = getSystemErrorMap().get(-code)?.[1] ?? `error ${code}`;
  return msg.charAt(0).toUpperCase() + msg.slice(1);
}

/** `what: Reason (ENAME)` with the errno spelled out, as every system-call failure is reported. */
export function systemError(what: string, code: number, stage: Stage, hint?: string): TsnsError {
  const name = errnoName(code);
  return new TsnsError(`${what}: ${errnoMessage(code)} (${name})`, {
    stage,
    errno: name,
    code,
    ...(hint === undefined ? {} : { hint }),
  });
}

/** A value from the user shown in a message: control characters escaped, so an error stays one line. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** Two lines at most: the error and a hint. */
export function formatError(err: TsnsError): string {
  return `tsns: ${oneLine(err.message)}\n${err.hint ? `hint: ${oneLine(err.hint)}\n` : ''}`;
}

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
  /** the seccomp program that the kernel refused, from 0 */
  seccompIndex?: number | null;
}

const USERNS_SYSCTLS =
  'check sysctl user.max_user_namespaces (and kernel.unprivileged_userns_clone or kernel.apparmor_restrict_unprivileged_userns where they exist)';

function cloneHint(code: number, ctx: FailureContext): string | undefined {
  const withUser = ctx.namespaces.includes('user');
  const name = errnoName(code);
  if (name === 'EPERM' || name === 'EACCES') {
    if (!withUser) return 'creating namespaces needs root: run as root, or add --user (or -r/--map-root-user) to create them inside a new user namespace';
    return `unprivileged user namespaces look disabled: ${USERNS_SYSCTLS}`;
  }
  if (name === 'ENOSPC' || name === 'EUSERS') {
    return 'a namespace limit was reached: check /proc/sys/user/max_*_namespaces (e.g. sysctl user.max_user_namespaces) and the nesting depth';
  }
  if (name === 'EINVAL') return 'the kernel does not support one of these namespaces (check its CONFIG_*_NS options)';
  if (name === 'ENOMEM') return 'out of memory, or the pid namespace is being torn down';
  return undefined;
}

/** The one-line report of a failure in the native shim, with its hint. */
export function nativeFailure(stage: Stage, code: number, ctx: FailureContext): TsnsError {
  const name = errnoName(code);
  const perm = name === 'EPERM';
  switch (stage) {
    case 'clone':
      return systemError(
        `cannot create namespaces (clone ${ctx.cloneFlagNames?.join('|') || 'without new namespaces'})`,
        code, stage, cloneHint(code, ctx),
      );
    case 'setgroups':
      return systemError(`cannot write '${ctx.setgroups}' to setgroups`, code, stage);
    case 'uid_map':
    case 'gid_map': {
      const text = (stage === 'uid_map' ? ctx.uidMapText : ctx.gidMapText)?.trim().replace(/\n/g, '; ');
      let hint: string | undefined;
      if (perm && process.geteuid?.() !== 0) {
        hint = stage === 'gid_map' && ctx.setgroups !== 'deny'
          ? 'without root a gid map needs setgroups denied first (--setgroups=deny)'
          : 'without root only your own id can be mapped, as one line';
      }
      return systemError(`cannot write ${stage} '${text}'`, code, stage, hint);
    }
    case 'sethostname':
    case 'setdomainname':
      return systemError(
        `cannot set ${stage === 'sethostname' ? 'hostname' : 'domainname'} '${stage === 'sethostname' ? ctx.hostname : ctx.domainname}'`,
        code, stage,
      );
    case 'propagation':
      return systemError(`cannot make / ${ctx.propagation} in the new mount namespace`, code, stage);
    case 'mount-proc': {
      let hint: string | undefined;
      if (name === 'ENOENT') hint = `create the directory ${ctx.procDir} first, or give another with --mount-proc=DIR`;
      else if (perm && !ctx.namespaces.includes('pid')) hint = 'a proc mount inside a user namespace needs a new pid namespace as well: add --pid';
      return systemError(`cannot mount proc on ${ctx.procDir}`, code, stage, hint);
    }
    case 'exec': {
      let hint: string | undefined;
      if (name === 'ENOENT') hint = ctx.file.includes('/') ? undefined : `'${ctx.file}' is not in PATH`;
      else if (name === 'EACCES') hint = 'check that it is a regular file with execute permission';
      return systemError(`failed to execute ${ctx.file}`, code, stage, hint);
    }
    case 'persist': {
      let hint: string | undefined;
      if (perm) hint = 'binding a namespace onto a file is a mount in your mount namespace: run as root';
      else if (name === 'EACCES') hint = 'you may not create that file: choose a path you can write, or run as root';
      else if (name === 'EINVAL' && ctx.persistNamespace === 'mount') {
        hint = `a mount namespace can only be bound onto a file on a private mount: mount --bind DIR DIR && mount --make-private DIR, for the directory of ${ctx.persistPath}`;
      } else if (name === 'EINVAL') hint = `${ctx.persistPath} exists and is not a regular file`;
      else if (name === 'ENOENT') hint = 'its directory does not exist';
      return systemError(`cannot bind the ${ctx.persistNamespace} namespace onto ${ctx.persistPath}`, code, stage, hint);
    }
    case 'time':
      return systemError(
        'cannot create a time namespace (unshare CLONE_NEWTIME)',
        code, stage,
        perm ? 'needs root, or add --user (or -r)' : name === 'EINVAL' ? 'the kernel has no time namespaces (Linux 5.6+, CONFIG_TIME_NS)' : undefined,
      );
    case 'time-offsets':
      return systemError(`cannot set the clock offsets (monotonic ${ctx.monotonic ?? 0}, boottime ${ctx.boottime ?? 0})`, code, stage,
        name === 'ERANGE' || name === 'EINVAL' ? 'an offset may not take the clock below zero or past the kernel limit' : undefined);
    case 'root':
      return systemError(`cannot change root to ${ctx.root}`, code, stage,
        perm ? 'chroot needs root, or a user namespace (add -r)' : undefined);
    case 'wd':
      return systemError(`cannot change directory to ${ctx.wd}`, code, stage);
    case 'setuid':
      return systemError(`cannot set uid ${ctx.setuid}`, code, stage,
        name === 'EINVAL' ? `uid ${ctx.setuid} is not mapped in the user namespace` : undefined);
    case 'setgid':
      return systemError(`cannot set gid ${ctx.setgid}`, code, stage,
        name === 'EINVAL' ? `gid ${ctx.setgid} is not mapped in the user namespace` : undefined);
    case 'newuidmap':
    case 'newgidmap':
      return systemError(`${stage} refused the ${stage === 'newuidmap' ? 'uid' : 'gid'} map`, code, stage,
        name === 'ENOENT' ? `install ${stage} (Debian: apt-get install uidmap)` : `check /etc/sub${stage === 'newuidmap' ? 'uid' : 'gid'}`);
    case 'sandbox': {
      const op = ctx.sandboxOp;
      if (!op) return systemError('cannot set up the sandbox root (tmpfs on /tmp, pivot_root)', code, stage,
        perm ? 'a sandbox needs a mount namespace you own: run as root, or with a user namespace' : undefined);
      let hint: string | undefined;
      if (name === 'ENOENT' && (op.op === 'bind' || op.op === 'ro-bind' || op.op === 'dev-bind')) {
        hint = `the source ${op.src} does not exist; --${op.op}-try skips a missing one`;
      } else if (name === 'ENOENT' && op.op === 'overlay') hint = `a lower directory of ${op.lowers.join(',')} does not exist`;
      else if (name === 'ENOENT' || name === 'ENOTDIR') hint = 'a directory on the way does not exist in the sandbox yet: create it first (--dir)';
      else if (perm && op.op === 'proc') hint = 'a new proc needs a new pid namespace as well: add --pid';
      else if (name === 'EEXIST') hint = 'something is already there in the sandbox';
      else if (name === 'ENOSYS') hint = 'read-only and nodev binds need mount_setattr (Linux 5.12+)';
      return systemError(`${describeOp(op)} failed`, code, stage, hint);
    }
    case 'lo':
      return systemError('cannot bring lo up in the new network namespace', code, stage);
    case 'no-new-privs':
      return systemError('cannot set no_new_privs', code, stage);
    case 'setsid':
      return systemError('cannot start a new session', code, stage);
    case 'seccomp': {
      const n = (ctx.seccompIndex ?? 0) + 1;
      const hint = name === 'EINVAL' ? 'it must be classic BPF compiled for this architecture, as seccomp_export_bpf() writes it'
        : name === 'EACCES' ? 'a seccomp filter needs no new privileges (leave --no-new-privs on) or CAP_SYS_ADMIN'
        : name === 'EPERM' || name === 'ENOSYS' ? 'an earlier seccomp program must allow prctl/seccomp for the next one to load'
        : undefined;
      return systemError(`cannot load seccomp program ${n}`, code, stage, hint);
    }
    case 'fork':
      return systemError('cannot fork the command', code, stage,
        name === 'ENOMEM' && ctx.namespaces.includes('pid') ? 'the pid namespace has no init any more (its PID 1 exited)' : undefined);
    case 'target':
      return systemError(`cannot enter pid ${ctx.target}`, code, stage, name === 'ESRCH' ? 'it is not running (any more)' : undefined);
    case 'setns': {
      let hint: string | undefined;
      if (perm) {
        hint = ctx.joinNamespace === 'user'
          ? 'a user namespace can be joined only by its owner, or as root'
          : 'joining needs CAP_SYS_ADMIN in the namespace\'s owning user namespace: run as root, or join its user namespace too (-U)';
      } else if (name === 'EINVAL') hint = 'the target may have exited during the join, or the namespace cannot be joined from here';
      return systemError(`cannot join the ${ctx.joinNamespace} namespace${ctx.target ? ` of pid ${ctx.target}` : ''}`, code, stage, hint);
    }
    default:
      return systemError(`${stage} failed`, code, stage);
  }
}
