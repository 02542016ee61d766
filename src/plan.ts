/**
 * Pure: run options → the plan the native shim carries out and --dry-run prints.
 * Every implication and every check that can be made before cloning lives here.
 */
import { basename } from 'node:path';
import { TsnsError } from './errors';
import { formatIdMap, IdMapError, validateIdMap, type IdMapEntry } from './idmap';
import { cloneFlagNames, NAMESPACES, namespace, type NamespaceName } from './namespaces';

export type Propagation = 'private' | 'shared' | 'slave' | 'unchanged';
export type Setgroups = 'allow' | 'deny';

/** The long options of `tsns run`, in camelCase. */
export interface RunOptions {
  mount?: boolean;
  uts?: boolean;
  ipc?: boolean;
  net?: boolean;
  pid?: boolean;
  user?: boolean;
  cgroup?: boolean;
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
  setgroups?: Setgroups;
  /** implies uts */
  hostname?: string;
  /** implies uts */
  domainname?: string;
  /** mount a new proc at '/proc' (true) or at DIR; implies mount */
  mountProc?: boolean | string;
  /** propagation of / in a new mount namespace; default private */
  propagation?: Propagation;
  /** the command's environment; default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Who is asking, and how names resolve: what makes the plan depend on the machine. */
export interface PlanContext {
  uid: number;
  gid: number;
  /** can write arbitrary id maps (root) */
  privileged: boolean;
  env: Readonly<Record<string, string | undefined>>;
  lookupUser(name: string): number | undefined;
  lookupGroup(name: string): number | undefined;
}

export interface PlanMount {
  readonly kind: 'propagation' | 'proc';
  readonly target: string;
  readonly description: string;
}

export interface Plan {
  namespaces: NamespaceName[];
  cloneFlags: number;
  cloneFlagNames: string[];
  uidMap: IdMapEntry[] | null;
  gidMap: IdMapEntry[] | null;
  setgroups: Setgroups | null;
  hostname: string | null;
  domainname: string | null;
  /** applied recursively to / in a new mount namespace; null without one */
  propagation: Propagation | null;
  procDir: string | null;
  mounts: PlanMount[];
  /** what is executed: a path or a name searched in PATH */
  file: string;
  argv: string[];
  /** started as a login shell because no command was given */
  loginShell: boolean;
}

function planError(message: string, hint?: string): TsnsError {
  return new TsnsError(message, { stage: 'plan', ...(hint === undefined ? {} : { hint }) });
}

function resolveId(value: number | string, kind: 'user' | 'group', lookup: (n: string) => number | undefined): number {
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n >= 0xffffffff) throw planError(`invalid ${kind} id '${value}'`);
    return n;
  }
  const id = lookup(value);
  if (id === undefined) throw planError(`no such ${kind}: '${value}'`, `check the name, or give a numeric ${kind === 'user' ? 'uid' : 'gid'}`);
  return id;
}

function checkUtsName(what: string, value: string): void {
  // The kernel's __NEW_UTS_LEN; a NUL would silently cut the name short.
  if (value.includes('\0')) throw planError(`${what} must not contain a NUL byte`);
  if (Buffer.byteLength(value) > 64) throw planError(`${what} '${value}' is longer than 64 bytes`);
}

export function makePlan(command: readonly string[], options: RunOptions, ctx: PlanContext): Plan {
  const wanted = new Set<NamespaceName>();
  for (const ns of NAMESPACES) if (options.all || options[ns.name]) wanted.add(ns.name);

  // Identity.
  let innerUid: number | null = null;
  let innerGid: number | null = null;
  if (options.mapRootUser) innerUid = innerGid = 0;
  if (options.mapCurrentUser) {
    innerUid = ctx.uid;
    innerGid = ctx.gid;
  }
  if (options.mapUser !== undefined) innerUid = resolveId(options.mapUser, 'user', ctx.lookupUser);
  if (options.mapGroup !== undefined) innerGid = resolveId(options.mapGroup, 'group', ctx.lookupGroup);
  if (innerUid !== null || innerGid !== null) wanted.add('user');
  if (options.setgroups !== undefined && !wanted.has('user')) {
    throw planError('--setgroups needs a new user namespace', 'add --user (or -r)');
  }

  const uidMap = innerUid === null ? null : [{ inner: innerUid, outer: ctx.uid, count: 1 }];
  const gidMap = innerGid === null ? null : [{ inner: innerGid, outer: ctx.gid, count: 1 }];
  try {
    if (uidMap) validateIdMap(uidMap, 'uid map');
    if (gidMap) validateIdMap(gidMap, 'gid map');
  } catch (e) {
    if (e instanceof IdMapError) throw planError(e.message);
    throw e;
  }
  let setgroups: Setgroups | null = options.setgroups ?? null;
  if (gidMap && !ctx.privileged) {
    // The kernel refuses an unprivileged gid_map until setgroups is denied.
    if (setgroups === 'allow') {
      throw planError(
        '--setgroups=allow cannot be used with a gid map written without root',
        'the kernel requires setgroups to be denied first; drop --setgroups=allow or run as root',
      );
    }
    setgroups = 'deny';
  }

  // Environment inside.
  const hostname = options.hostname ?? null;
  const domainname = options.domainname ?? null;
  if (hostname !== null) checkUtsName('hostname', hostname);
  if (domainname !== null) checkUtsName('domainname', domainname);
  if (hostname !== null || domainname !== null) wanted.add('uts');

  let procDir: string | null = null;
  if (options.mountProc) {
    procDir = options.mountProc === true ? '/proc' : options.mountProc;
    if (procDir === '') throw planError('--mount-proc needs a directory');
    wanted.add('mount');
  }
  const mounts: PlanMount[] = [];
  let propagation: Propagation | null = null;
  if (wanted.has('mount')) {
    propagation = options.propagation ?? 'private';
    if (propagation !== 'unchanged') {
      mounts.push({ kind: 'propagation', target: '/', description: `make / recursively ${propagation}` });
    }
  } else if (options.propagation !== undefined) {
    throw planError('--propagation needs a new mount namespace', 'add --mount');
  }
  if (procDir !== null) {
    mounts.push({ kind: 'proc', target: procDir, description: `mount proc on ${procDir} (nosuid,nodev,noexec)` });
  }

  // The command; none means the caller's login shell, as unshare does.
  let file: string;
  let argv: string[];
  const loginShell = command.length === 0;
  if (loginShell) {
    file = ctx.env.SHELL || '/bin/sh';
    argv = [`-${basename(file)}`];
  } else {
    file = command[0]!;
    argv = [...command];
  }

  const namespaces = NAMESPACES.filter((n) => wanted.has(n.name)).map((n) => n.name);
  const cloneFlags = namespaces.reduce((f, n) => f | namespace(n).flag, 0) >>> 0;
  return {
    namespaces,
    cloneFlags,
    cloneFlagNames: cloneFlagNames(cloneFlags),
    uidMap,
    gidMap,
    setgroups,
    hostname,
    domainname,
    propagation,
    procDir,
    mounts,
    file,
    argv,
    loginShell,
  };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** What --dry-run prints. */
export function describePlan(plan: Plan): string {
  const lines: string[] = [];
  const row = (k: string, v: string) => lines.push(`${`${k}:`.padEnd(12)}${v}`);
  row('namespaces', plan.namespaces.length ? plan.namespaces.join(' ') : '(none: the command shares all of tsns\'s)');
  row('clone', `${hex(plan.cloneFlags)}${plan.cloneFlagNames.length ? ` ${plan.cloneFlagNames.join('|')}` : ''}`);
  if (plan.uidMap) row('uid_map', formatIdMap(plan.uidMap).trim().replace(/\n/g, '; '));
  if (plan.gidMap) row('gid_map', formatIdMap(plan.gidMap).trim().replace(/\n/g, '; '));
  if (plan.setgroups) row('setgroups', plan.setgroups);
  if (plan.hostname !== null) row('hostname', plan.hostname);
  if (plan.domainname !== null) row('domainname', plan.domainname);
  for (const m of plan.mounts) row('mount', m.description);
  row('command', `${plan.argv.map(quote).join(' ')}${plan.loginShell ? ` (login shell ${plan.file})` : ''}`);
  return `${lines.join('\n')}\n`;
}

/** Shell-quote for display, so the printed command can be pasted back. */
function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/** The plan as --dry-run --json prints it: stable keys, flags as a hex string too. */
export function planToJson(plan: Plan): Record<string, unknown> {
  return { ...plan, cloneFlagsHex: hex(plan.cloneFlags) };
}
