/**
 * Pure: bwrap's fd protocols and process rules (--lock-file, --sync-fd,
 * --block-fd, --userns-block-fd, --info-fd, --json-status-fd, --userns,
 * --userns2, --pidns, --disable-userns, --assert-userns-disabled, the -try
 * namespaces) → what the plan carries, with bwrap's checks.
 */
import type { PlanContext } from '../context';
import type { NamespaceName } from '../namespaces';
import { planError } from './identity';

export interface LifecycleOptions {
  /** take a read lock on each path (in the sandbox) for as long as the sandbox lives */
  lockFile?: readonly string[];
  /** an fd the sandbox keeps open until it ends (the command itself does not get it) */
  syncFd?: number;
  /** the command waits for a byte (or end of file) on this fd before exec */
  blockFd?: number;
  /** tsns waits for a byte on this fd after creating the user namespace, before the child goes on; the caller writes the id maps (needs infoFd) */
  usernsBlockFd?: number;
  /** bwrap's info: {"child-pid": N, "<type>-namespace": INODE, …}, written before the child goes on */
  infoFd?: number;
  /** the same object on one line, then {"exit-code": N} when the command ends (JSON lines) */
  jsonStatusFd?: number;
  /** join the user namespace open on this fd; the other new namespaces are then made in it */
  userns?: number;
  /** after the setup, switch to the user namespace open on this fd (with userns) */
  userns2?: number;
  /** the command's pid namespace (with pid: the parent of the new one) */
  pidns?: number;
  /** the command cannot create user namespaces (needs a new user namespace) */
  disableUserns?: boolean;
  /** fail unless the command cannot create user namespaces */
  assertUsernsDisabled?: boolean;
  /** bwrap's --unshare-user-try and --unshare-cgroup-try: a new one where the kernel allows it */
  unshareUserTry?: boolean;
  unshareCgroupTry?: boolean;
}

export interface LifecyclePlan {
  lockFiles: string[];
  syncFd: number | null;
  blockFd: number | null;
  usernsBlockFd: number | null;
  infoFd: number | null;
  jsonStatusFd: number | null;
  userns: number | null;
  userns2: number | null;
  pidns: number | null;
  disableUserns: boolean;
  assertUsernsDisabled: boolean;
}

function fd(name: string, value: number | undefined): number | null {
  if (value === undefined) return null;
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) throw planError(`--${name}: invalid fd '${value}'`);
  return value;
}

/** The -try namespaces: wanted where this kernel lets the caller make one, as bwrap probes. */
export function tryNamespaces(options: LifecycleOptions, wanted: Set<NamespaceName>, ctx: PlanContext): void {
  if (options.unshareUserTry && (ctx.canUnshare?.('user') ?? true)) wanted.add('user');
  if (options.unshareCgroupTry && (ctx.canUnshare?.('cgroup') ?? true)) wanted.add('cgroup');
}

/** Whether the options name an id map of their own (not one tsns implies). */
export function mapsGiven(o: { mapRootUser?: boolean; mapCurrentUser?: boolean; mapUser?: unknown; mapGroup?: unknown; mapUsers?: readonly unknown[]; mapGroups?: readonly unknown[]; mapAuto?: boolean }): boolean {
  return Boolean(o.mapRootUser || o.mapCurrentUser || o.mapUser !== undefined || o.mapGroup !== undefined || o.mapUsers?.length || o.mapGroups?.length || o.mapAuto);
}

/**
 * bwrap's checks, in bwrap's words where it has them. `userAsked`: a new user
 * namespace named by an option (not implied by a sandbox); `wanted` is
 * final. Returns the plan part and whether tsns writes no id maps.
 */
export function planLifecycle(options: LifecycleOptions, wanted: Set<NamespaceName>, userAsked: boolean, mapsNamed: boolean): { plan: LifecyclePlan; noMaps: boolean } {
  const plan: LifecyclePlan = {
    lockFiles: [...(options.lockFile ?? [])],
    syncFd: fd('sync-fd', options.syncFd),
    blockFd: fd('block-fd', options.blockFd),
    usernsBlockFd: fd('userns-block-fd', options.usernsBlockFd),
    infoFd: fd('info-fd', options.infoFd),
    jsonStatusFd: fd('json-status-fd', options.jsonStatusFd),
    userns: fd('userns', options.userns),
    userns2: fd('userns2', options.userns2),
    pidns: fd('pidns', options.pidns),
    disableUserns: options.disableUserns ?? false,
    assertUsernsDisabled: options.assertUsernsDisabled ?? false,
  };
  if (plan.lockFiles.some((p) => p === '' || p.includes('\0'))) throw planError('--lock-file needs a path', 'name the file to lock, as the sandbox sees it: --lock-file /path');
  if (plan.usernsBlockFd !== null && !wanted.has('user')) throw planError('--userns-block-fd requires --unshare-user', 'add --unshare-user: the fd waits for the maps of a new user namespace');
  if (plan.usernsBlockFd !== null && plan.infoFd === null) throw planError('--userns-block-fd requires --info-fd', 'the caller reads the child\'s pid there to write its id maps');
  if (plan.usernsBlockFd !== null && mapsNamed) throw planError('--userns-block-fd: the caller writes the id maps; do not give tsns a map option too', 'drop --uid/--gid and the --map-* options, or --userns-block-fd');
  if (plan.userns !== null && userAsked) throw planError('--userns not compatible --unshare-user', 'drop --unshare-user: the namespace on the fd is the user namespace');
  if (plan.userns !== null && options.unshareUserTry) throw planError('--userns not compatible --unshare-user-try', 'drop --unshare-user-try: the namespace on the fd is the user namespace');
  if (plan.userns !== null && mapsNamed) throw planError('--userns: the namespace joined has its id maps already', 'drop the map options (--uid/--gid, -r, --map-*)');
  if (plan.disableUserns && !wanted.has('user')) throw planError('--disable-userns requires --unshare-user', 'add --unshare-user (or --user)');
  if (plan.disableUserns && plan.usernsBlockFd !== null) throw planError('--disable-userns is not compatible with --userns-block-fd', 'drop one of them');
  if (plan.userns !== null) wanted.delete('user');
  return { plan, noMaps: plan.usernsBlockFd !== null || plan.userns !== null };
}

/** Whether any of bwrap's fd protocols or process rules is asked for. */
export function lifecycleUsed(p: LifecyclePlan): boolean {
  return p.lockFiles.length > 0 || p.disableUserns || p.assertUsernsDisabled ||
    [p.syncFd, p.blockFd, p.usernsBlockFd, p.infoFd, p.jsonStatusFd, p.userns, p.userns2, p.pidns].some((v) => v !== null);
}
