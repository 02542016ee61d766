/**
 * Pure: bwrap's rules that a plan follows once its namespaces are known —
 * the sandbox's ids (--uid/--gid), its /proc without a pid namespace, its
 * working directory and PWD, argv[0], and the SELinux options it refuses.
 */
import type { PlanContext } from '../context';
import type { NamespaceName } from '../namespaces';
import type { SandboxOp } from '../sandbox';
import { planError } from './identity';

export interface BwrapRunOptions {
  /** bwrap's --uid: the uid inside the user namespace, mapped to the caller's (needs one) */
  uid?: number;
  /** bwrap's --gid, as uid */
  gid?: number;
  /** argv[0] of the command, the file executed staying command[0] (bwrap's --argv0) */
  argv0?: string;
  /** SELinux labels (bwrap's --exec-label, --file-label): refused, tsns does not label */
  execLabel?: string;
  fileLabel?: string;
  /** a process option too (launch.ts); the plan reads it because PWD goes with it, as in bwrap */
  clearEnv?: boolean;
}

/** Where the command starts and what its PWD says, when tsns sets PWD. */
export interface PlanPwd {
  /** the value of PWD, or the first candidate of wdTry */
  value: string;
  /** without --chdir in a sandbox: the directories tried in order (bwrap's: the caller's, $HOME, /) */
  wdTry: string[];
}

interface IdOptions extends BwrapRunOptions {
  mapUser?: string | number;
  mapGroup?: string | number;
  mapCurrentUser?: boolean;
}

function checkId(what: 'uid' | 'gid', value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0 || value > 0xfffffffe)) throw planError(`invalid ${what}: ${value}`);
}

/**
 * --uid/--gid as bwrap: inside a user namespace they are the ids the
 * caller's map to; without one they may only name the caller's own.
 */
export function sandboxIds<O extends IdOptions>(options: O, wanted: ReadonlySet<NamespaceName>, ctx: Pick<PlanContext, 'uid' | 'gid'>): O {
  const { uid, gid } = options;
  checkId('uid', uid);
  checkId('gid', gid);
  if (uid === undefined && gid === undefined) return options;
  if (!wanted.has('user')) {
    if (uid !== undefined && uid !== ctx.uid) throw planError('--uid needs a new user namespace', 'add --unshare-user (or --user)');
    if (gid !== undefined && gid !== ctx.gid) throw planError('--gid needs a new user namespace', 'add --unshare-user (or --user)');
    return options;
  }
  return { ...options, mapCurrentUser: false, mapUser: String(uid ?? options.mapUser ?? ctx.uid), mapGroup: String(gid ?? options.mapGroup ?? ctx.gid) };
}

/** bwrap's --proc without a new pid namespace: a fresh proc is refused there, so the host's is bound instead. */
export function procOps(filesystem: readonly SandboxOp[], wanted: ReadonlySet<NamespaceName>): SandboxOp[] {
  if (wanted.has('pid')) return [...filesystem];
  return filesystem.map((o) => (o.op === 'proc' ? { op: 'bind', src: '/proc', dest: o.dest } : o));
}

/**
 * PWD, as bwrap sets it (always, in a sandbox) and as --clear-env keeps it:
 * the directory given, else in a sandbox the caller's if it is there, else
 * $HOME, else /; else the directory the command starts in.
 */
export function pwdOf(o: { sandboxed: boolean; clearEnv: boolean; wd: string | null; root: string | null }, ctx: Pick<PlanContext, 'cwd' | 'env'>): PlanPwd | null {
  if (!o.sandboxed && !o.clearEnv) return null;
  if (o.wd !== null) return { value: o.wd, wdTry: [] };
  if (!o.sandboxed) return { value: o.root !== null ? '/' : ctx.cwd, wdTry: [] };
  const wdTry = [ctx.cwd, ...(ctx.env.HOME ? [ctx.env.HOME] : []), '/'];
  return { value: wdTry[0]!, wdTry };
}

/** SELinux labels are not something tsns applies: say so before anything starts. */
export function checkLabels(options: BwrapRunOptions, ctx: Pick<PlanContext, 'lstat'>): void {
  const which = options.execLabel !== undefined ? 'exec-label' : options.fileLabel !== undefined ? 'file-label' : null;
  if (which === null) return;
  const selinux = ctx.lstat('/sys/fs/selinux/enforce') !== null;
  throw planError(`--${which}: SELinux labels are not supported: ${selinux ? 'tsns does not apply them' : 'SELinux is not enabled on this system'}`,
    selinux ? 'run bwrap for a labelled sandbox' : 'leave out --exec-label and --file-label');
}

/** The command's argv with bwrap's --argv0 in place of argv[0]. */
export function withArgv0(argv: readonly string[], argv0: string | undefined): string[] {
  if (argv0 === undefined || argv.length === 0) return [...argv];
  return [argv0, ...argv.slice(1)];
}
