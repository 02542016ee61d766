/**
 * Pure: run options → the plan the native shim carries out and --dry-run prints.
 * Every implication and every check that can be made before cloning lives here.
 */
import { basename } from 'node:path';
import { TsnsError } from './errors';
import { formatIdMap, IdMapError, validateIdMap, type IdMapEntry } from './idmap';
import { ALL_CAPS, capabilityMask } from './capabilities';
import { cloneFlagNames, NAMESPACES, namespace, type NamespaceName } from './namespaces';
import { describeOp, normalizeOp, sandboxProfile, type PathKind, type SandboxOp } from './sandbox';

export type Propagation = 'private' | 'shared' | 'slave' | 'unchanged';
export type Setgroups = 'allow' | 'deny';

/** A namespace option: true for a new one, a path to also persist it there (bind mount). */
export type NamespaceOption = boolean | string;

/** The long options of `tsns run`, in camelCase. */
export interface RunOptions {
  mount?: NamespaceOption;
  uts?: NamespaceOption;
  ipc?: NamespaceOption;
  net?: NamespaceOption;
  pid?: NamespaceOption;
  user?: NamespaceOption;
  cgroup?: NamespaceOption;
  time?: NamespaceOption;
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
  /** uid ranges, `INNER:OUTER:COUNT` (or util-linux 2.38's `OUTER,INNER,COUNT`) or entries */
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
  /** capabilities to drop from every set ('ALL' for all), then capAdd to keep */
  capDrop?: readonly string[];
  capAdd?: readonly string[];
  /** bwrap's name for killChild: SIGKILL */
  dieWithParent?: boolean;
  /** bwrap's --unshare-all: user, ipc, pid, net, uts, cgroup; shareNet keeps the network */
  unshareAll?: boolean;
  shareNet?: boolean;
  /**
   * The ready profile: --unshare-all, read-only /usr /bin /lib /lib64 /etc,
   * tmpfs /tmp and $HOME, --dev /dev, --proc /proc, a new session, no new
   * privileges, all capabilities dropped; filesystem adds to it.
   */
  sandbox?: boolean;
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
  /** the caller's ranges in /etc/subuid or /etc/subgid */
  subordinateIds(kind: 'uid' | 'gid'): { start: number; count: number }[];
  signalNumber(name: string): number | undefined;
  /** relative sandbox paths are taken from here */
  cwd: string;
  lstat(path: string): PathKind;
  /** everything an open fd still holds (a seccomp program); throws TsnsError */
  readFd(fd: number): Uint8Array;
}

export interface PlanMount {
  readonly kind: 'propagation' | 'proc' | 'persist';
  readonly target: string;
  readonly description: string;
}

export interface PlanSeccomp {
  instructions: number;
  hex: string;
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
  /** capabilities kept in every set, as a decimal bit mask; null: untouched */
  capKeep: string | null;
  /** bring lo up in the new network namespace */
  loUp: boolean;
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

/** `INNER:OUTER:COUNT`, or util-linux 2.38's `OUTER,INNER,COUNT`. */
export function parseRange(option: string, text: string): IdMapEntry {
  const m = /^(\d{1,10}):(\d{1,10}):(\d{1,10})$/.exec(text) ?? /^(\d{1,10}),(\d{1,10}),(\d{1,10})$/.exec(text);
  if (!m) throw planError(`invalid --${option} range '${text}'`, 'write it as INNER:OUTER:COUNT, e.g. 0:100000:65536');
  const [a, b, count] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return text.includes(':') ? { inner: a, outer: b, count } : { inner: b, outer: a, count };
}

function offset(what: string, value: number | undefined): number | null {
  if (value === undefined) return null;
  if (!Number.isSafeInteger(value)) throw planError(`--${what} needs a whole number of seconds, not '${value}'`);
  return value;
}

interface IdMapInput {
  kind: 'uid' | 'gid';
  option: string;
  single: number | null;
  ranges: readonly (string | IdMapEntry)[] | undefined;
  auto: boolean;
  own: number;
}

/** One id map from -r/-c/--map-user, --map-users and --map-auto; and whether a helper must write it. */
function buildIdMap(input: IdMapInput, ctx: PlanContext): { map: IdMapEntry[] | null; helper: boolean } {
  const map: IdMapEntry[] = [];
  if (input.single !== null) map.push({ inner: input.single, outer: input.own, count: 1 });
  for (const r of input.ranges ?? []) map.push(typeof r === 'string' ? parseRange(input.option, r) : r);
  const sub = input.auto || (!ctx.privileged && map.some((e) => e.outer !== input.own || e.count !== 1))
    ? ctx.subordinateIds(input.kind)
    : [];
  if (input.auto) {
    const first = sub[0];
    if (!first) {
      throw planError(`--map-auto: no range for you in /etc/sub${input.kind}`, `add one, e.g. with usermod --add-sub${input.kind}s 100000-165535 USER`);
    }
    map.push({ inner: map.some((e) => e.inner === 0) ? 1 : 0, outer: first.start, count: first.count });
  }
  if (map.length === 0) return { map: null, helper: false };
  try {
    validateIdMap(map, `${input.kind} map`);
  } catch (e) {
    if (e instanceof IdMapError) throw planError(e.message);
    throw e;
  }
  const ownOnly = map.length === 1 && map[0]!.outer === input.own && map[0]!.count === 1;
  if (ctx.privileged || ownOnly) return { map, helper: false };
  for (const e of map) {
    const ok = (e.outer === input.own && e.count === 1) || sub.some((s) => e.outer >= s.start && e.outer + e.count <= s.start + s.count);
    if (!ok) {
      throw planError(
        `${input.kind} range ${e.inner}:${e.outer}:${e.count} is outside your /etc/sub${input.kind} ranges`,
        sub.length ? `yours: ${sub.map((s) => `${s.start}-${s.start + s.count - 1}`).join(', ')}` : `you have none in /etc/sub${input.kind}; ask root to add one, or run as root`,
      );
    }
  }
  return { map, helper: true };
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

export function makePlan(command: readonly string[], input: RunOptions, ctx: PlanContext): Plan {
  let options = input;
  if (options.sandbox) {
    options = {
      ...options,
      unshareAll: true,
      newSession: true,
      capDrop: options.capDrop ?? ['ALL'],
      filesystem: [...sandboxProfile(ctx.env.HOME, ctx.lstat), ...(options.filesystem ?? [])],
    };
  }
  const wanted = new Set<NamespaceName>();
  for (const ns of NAMESPACES) if (options.all || options[ns.name]) wanted.add(ns.name);
  if (options.unshareAll) {
    for (const ns of ['user', 'ipc', 'pid', 'uts', 'cgroup'] as const) wanted.add(ns);
    if (!options.shareNet) wanted.add('net');
  }
  const filesystem = (options.filesystem ?? []).map((o) => normalizeOp(o, ctx.cwd));
  const seccomp = seccompPrograms(options.seccomp ?? [], ctx);
  const mapped = options.mapRootUser || options.mapCurrentUser || options.mapUser !== undefined || options.mapUsers?.length || options.mapAuto;
  if (filesystem.length) {
    wanted.add('mount');
    if (options.root !== undefined) throw planError('--root cannot be combined with a sandbox filesystem', 'bind what the command needs instead, and use --chdir');
    if (options.mountProc) throw planError('--mount-proc cannot be combined with a sandbox filesystem', 'use --proc /proc');
    // Without setuid, as bwrap: the caller's own ids in a user namespace of its own.
    if (!ctx.privileged) wanted.add('user');
  }
  // Files cannot be created in a user namespace whose ids are unmapped (EOVERFLOW): map the caller as itself.
  if ((filesystem.length || options.unshareAll) && wanted.has('user') && !mapped) {
    options = { ...options, mapCurrentUser: true };
  }

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
  const auto = options.mapAuto ?? false;
  const uids = buildIdMap({ kind: 'uid', option: 'map-users', single: innerUid, ranges: options.mapUsers, auto, own: ctx.uid }, ctx);
  const gids = buildIdMap({ kind: 'gid', option: 'map-groups', single: innerGid, ranges: options.mapGroups, auto, own: ctx.gid }, ctx);
  if (uids.map || gids.map) wanted.add('user');
  if (options.setgroups !== undefined && !wanted.has('user')) {
    throw planError('--setgroups needs a new user namespace', 'add --user (or -r)');
  }
  let setgroups: Setgroups | null = options.setgroups ?? null;
  if (gids.map && !gids.helper && !ctx.privileged) {
    // The kernel refuses an unprivileged gid_map until setgroups is denied.
    if (setgroups === 'allow') {
      throw planError(
        '--setgroups=allow cannot be used with a gid map written without root',
        'the kernel requires setgroups to be denied first; drop --setgroups=allow, or map through /etc/subgid (--map-groups), or run as root',
      );
    }
    setgroups = 'deny';
  }
  const setuid = options.setuid === undefined ? null : resolveId(options.setuid, 'user', ctx.lookupUser);
  const setgid = options.setgid === undefined ? null : resolveId(options.setgid, 'group', ctx.lookupGroup);

  // Environment inside.
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
  const root = options.root ?? null;
  const wd = options.wd ?? null;
  if (root === '' || wd === '') throw planError(`--${root === '' ? 'root' : 'wd'} needs a directory`);
  if (procDir !== null) {
    mounts.push({ kind: 'proc', target: procDir, description: `mount proc on ${procDir}${root ? ` inside ${root}` : ''} (nosuid,nodev,noexec)` });
  }

  let killSignal: number | null = null;
  const killChild = options.killChild ?? (options.dieWithParent ? true : undefined);
  if (killChild !== undefined && killChild !== false) {
    const value = killChild === true ? 'SIGKILL' : String(killChild);
    const num = ctx.signalNumber(value);
    if (num === undefined || num < 1 || num > 64) throw planError(`--kill-child: unknown signal '${value}'`);
    killSignal = num;
  }

  // Process layout: a time namespace is unshared by the child, which forks the
  // command into it; without --init a new pid namespace goes with it, so that
  // the command is still PID 1.
  const supervisor = options.init ? 'init' : wanted.has('time') ? 'time' : null;
  const unshareNs = new Set<NamespaceName>();
  if (wanted.has('time')) unshareNs.add('time');
  if (supervisor === 'time' && wanted.has('pid')) unshareNs.add('pid');

  const persist: PlanPersist[] = [];
  for (const ns of NAMESPACES) {
    const value = options[ns.name];
    if (typeof value !== 'string') continue;
    if (value === '') throw planError(`--${ns.name}= needs a file to bind the namespace to`);
    const late = unshareNs.has(ns.name);
    const source = `ns/${late ? `${ns.proc}_for_children` : ns.proc}`;
    persist.push({ namespace: ns.name, path: value, source, late });
    mounts.push({ kind: 'persist', target: value, description: `bind /proc/PID/${source} onto ${value}` });
  }
  // The shim binds the early ones first, then waits for the child before the late ones.
  persist.sort((a, b) => Number(a.late) - Number(b.late));

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
  const flagsOf = (list: NamespaceName[]) => list.reduce((f, n) => f | namespace(n).flag, 0) >>> 0;
  const cloneFlags = flagsOf(namespaces.filter((n) => !unshareNs.has(n)));
  const unshareFlags = flagsOf([...unshareNs]);
  return {
    namespaces,
    cloneFlags,
    cloneFlagNames: cloneFlagNames(cloneFlags),
    unshareFlags,
    unshareFlagNames: cloneFlagNames(unshareFlags),
    uidMap: uids.map,
    gidMap: gids.map,
    uidMapHelper: uids.helper,
    gidMapHelper: gids.helper,
    setgroups,
    hostname,
    domainname,
    propagation,
    procDir,
    mounts,
    persist,
    monotonic,
    boottime,
    root,
    wd,
    setuid,
    setgid,
    keepCaps: options.keepCaps ?? false,
    killSignal,
    supervisor,
    filesystem,
    noNewPrivs: options.noNewPrivs ?? (filesystem.length > 0 || seccomp.length > 0),
    newSession: options.newSession ?? false,
    seccomp,
    capKeep: capKeep(options, filesystem.length > 0),
    loUp: wanted.has('net'),
    file,
    argv,
    loginShell,
  };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function flagsText(flags: number, names: string[]): string {
  return `${hex(flags)}${names.length ? ` ${names.join('|')}` : ''}`;
}

/** What --dry-run prints. */
export function describePlan(plan: Plan): string {
  const lines: string[] = [];
  const row = (k: string, v: string) => lines.push(`${`${k}:`.padEnd(12)}${v}`);
  const mapText = (m: IdMapEntry[], helper: string | null) =>
    `${formatIdMap(m).trim().replace(/\n/g, '; ')}${helper ? ` (through ${helper})` : ''}`;
  row('namespaces', plan.namespaces.length ? plan.namespaces.join(' ') : '(none: the command shares all of tsns\'s)');
  row('clone', flagsText(plan.cloneFlags, plan.cloneFlagNames));
  if (plan.unshareFlags) row('unshare', `${flagsText(plan.unshareFlags, plan.unshareFlagNames)} in the child, then fork the command`);
  if (plan.uidMap) row('uid_map', mapText(plan.uidMap, plan.uidMapHelper ? 'newuidmap' : null));
  if (plan.gidMap) row('gid_map', mapText(plan.gidMap, plan.gidMapHelper ? 'newgidmap' : null));
  if (plan.setgroups) row('setgroups', plan.setgroups);
  if (plan.hostname !== null) row('hostname', plan.hostname);
  if (plan.domainname !== null) row('domainname', plan.domainname);
  if (plan.monotonic !== null) row('monotonic', `${plan.monotonic} s`);
  if (plan.boottime !== null) row('boottime', `${plan.boottime} s`);
  for (const m of plan.mounts) row('mount', m.description);
  if (plan.root !== null) row('root', plan.root);
  if (plan.wd !== null) row('wd', plan.wd);
  if (plan.setgid !== null) row('setgid', String(plan.setgid));
  if (plan.setuid !== null) row('setuid', String(plan.setuid));
  if (plan.keepCaps) row('caps', 'kept across exec (ambient)');
  if (plan.supervisor === 'init') row('init', 'PID 1 reaps orphans and forwards signals; the command is PID 2');
  if (plan.filesystem.length) row('root', 'a new tmpfs, built in this order, then pivot_root:');
  for (const o of plan.filesystem) row('  sandbox', describeOp(o));
  if (plan.loUp) row('net', 'bring lo up');
  if (plan.noNewPrivs) row('privileges', 'no new privileges (PR_SET_NO_NEW_PRIVS)');
  if (plan.newSession) row('session', 'new session (setsid)');
  if (plan.seccomp.length) {
    const counts = plan.seccomp.map((p) => p.instructions);
    const one = counts.length === 1;
    row('seccomp', `${one ? 'a program' : `${counts.length} programs`} of ${counts.join(', ')} instruction${counts.length === 1 && counts[0] === 1 ? '' : 's'}, ` +
      `loaded ${one ? '' : 'in that order '}just before exec`);
  }
  if (plan.capKeep !== null) row('caps', BigInt(plan.capKeep) === 0n ? 'all dropped' : `keep mask 0x${BigInt(plan.capKeep).toString(16)}`);
  if (plan.killSignal !== null) row('kill-child', `signal ${plan.killSignal} when tsns dies`);
  row('command', `${plan.argv.map(quote).join(' ')}${plan.loginShell ? ` (login shell ${plan.file})` : ''}`);
  return `${lines.join('\n')}\n`;
}

/** Shell-quote for display, so the printed command can be pasted back. */
function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/** The plan as --dry-run --json prints it: stable keys, flags as a hex string too. */
export function planToJson(plan: Plan): Record<string, unknown> {
  // The programs' instruction counts: their bytes are no reading for a person.
  return {
    ...plan, seccomp: plan.seccomp.map((p) => p.instructions), cloneFlagsHex: hex(plan.cloneFlags), unshareFlagsHex: hex(plan.unshareFlags),
  };
}
