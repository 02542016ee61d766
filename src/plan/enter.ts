/**
 * Pure: `tsns enter` options → what to join, in which order, and how the
 * command runs there. What the target's namespaces are comes in through the
 * context, so the plan itself reads nothing.
 */
import { TsnsError } from '../errors';
import { JOIN_ORDER, namedNamespaces, NAMESPACES, type NamespaceName, type PerNamespace } from '../namespaces';

/** nsenter's options, in camelCase. A namespace is true (the target's) or a namespace file. */
export interface EnterNamespaceOptions extends PerNamespace<boolean | string> {
  /** every namespace of the target (the default when none is named) */
  all?: boolean;
  /** chroot: true for the target's root, or a directory */
  root?: boolean | string;
  /** working directory: true for the target's (the default when its mount namespace is joined), or a directory */
  wd?: boolean | string;
  /** keep this process's uid/gid after joining a user namespace (default: become 0 there) */
  preserveCredentials?: boolean;
  /** a uid, or 'follow': the owner of /proc/PID */
  setuid?: number | 'follow';
  setgid?: number | 'follow';
  /** give the command the target's environment */
  targetEnv?: boolean;
  /** -W: working directory, opened after joining and after the root changes */
  wdns?: string;
  /** -N: the network namespace of this socket fd of the target */
  netSocket?: number;
  /** join the parent of the user namespace (the target's, or the --user=FILE one) */
  userParent?: boolean;
  /** -t PID:INODE: the target must be the process whose pidfd has this inode */
  targetInode?: number;
  /** -F: no fork for a pid namespace: the command itself stays outside it, its children are in it */
  noFork?: boolean;
  /** with a user namespace joined: keep its capabilities across exec (ambient) */
  keepCaps?: boolean;
}

export interface EnterJoin {
  namespace: NamespaceName;
  /** /proc/PID/ns/X of the target, or a namespace file */
  path: string;
  /** the target's own, which setns(pidfd) may join all at once */
  fromTarget: boolean;
  /** not the namespace of path itself: the user namespace that owns it (--user-parent), or a socket's (--net-socket; path /proc/PID/fd/N) */
  via?: 'parent' | 'socket';
}

export interface EnterPlan {
  target: number | null;
  /** in join order */
  joins: EnterJoin[];
  /** the target's namespaces that tsns already shares: left alone (setns into one's own user namespace is refused) */
  shared: NamespaceName[];
  /** chroot to this directory, or to the target's root (/proc/PID/root) */
  root: string | null;
  rootFromTarget: boolean;
  wd: string | null;
  wdFromTarget: boolean;
  setuid: number | null;
  setgid: number | null;
  /** the command's environment: this process's, or the target's (-e) */
  environment: 'own' | 'target';
  /** -W: a directory changed to after joining (and after the root) */
  wdns: string | null;
  noFork: boolean;
  keepCaps: boolean;
  file: string;
  argv: string[];
}

export interface EnterContext {
  /** readlink of a /proc/PID/ns/X file; null when it cannot be read */
  nsLink(path: string): string | null;
  /** uid and gid of /proc/PID (-S/-G follow) */
  owner?(target: number): { uid: number; gid: number };
  /** the environment the command gets (SHELL for the default command) */
  env: Readonly<Record<string, string | undefined>>;
}

function optionError(message: string): TsnsError {
  return new TsnsError(message, { stage: 'option' });
}

function joinsOf(target: number | null, opts: EnterNamespaceOptions, ctx: EnterContext): { joins: EnterJoin[]; shared: NamespaceName[] } {
  const named = namedNamespaces(opts).map((n) => n.name);
  // --net-socket names the network namespace, --user-parent the user one.
  if (opts.netSocket !== undefined) named.push('net');
  if (opts.userParent) named.push('user');
  const wanted = new Set<NamespaceName>(opts.all || named.length === 0 ? NAMESPACES.map((n) => n.name) : named);
  if ((opts.netSocket !== undefined || opts.userParent) && target === null) {
    throw optionError(`--${opts.userParent ? 'user-parent' : 'net-socket'} needs a target: give -t PID`);
  }
  const joins: EnterJoin[] = [];
  const shared: NamespaceName[] = [];
  for (const ns of JOIN_ORDER) {
    if (!wanted.has(ns.name)) continue;
    const value = opts[ns.name];
    if (ns.name === 'net' && opts.netSocket !== undefined) {
      joins.push({ namespace: 'net', path: `/proc/${target}/fd/${opts.netSocket}`, fromTarget: false, via: 'socket' });
      continue;
    }
    if (ns.name === 'user' && opts.userParent) {
      // As nsenter: whatever it is, even tsns's own (which the kernel refuses).
      joins.push({ namespace: 'user', path: typeof value === 'string' ? value : `/proc/${target}/ns/user`, fromTarget: false, via: 'parent' });
      continue;
    }
    if (typeof value === 'string') {
      joins.push({ namespace: ns.name, path: value, fromTarget: false });
      continue;
    }
    if (target === null) throw optionError(`--${ns.name} needs a target (-t PID) or a namespace file (--${ns.name}=FILE)`);
    const path = `/proc/${target}/ns/${ns.proc}`;
    const theirs = ctx.nsLink(path);
    if (theirs !== null && theirs === ctx.nsLink(`/proc/self/ns/${ns.proc}`)) shared.push(ns.name);
    else joins.push({ namespace: ns.name, path, fromTarget: true });
  }
  return { joins, shared };
}

export function makeEnterPlan(target: number | null, command: readonly string[], opts: EnterNamespaceOptions, ctx: EnterContext): EnterPlan {
  if (target !== null && (!Number.isSafeInteger(target) || target < 1)) throw optionError(`invalid target pid '${target}'`);
  const { joins, shared } = joinsOf(target, opts, ctx);
  if (opts.targetEnv && target === null) throw optionError('--env takes the environment of a target: give -t PID');
  const joinsUser = joins.some((j) => j.namespace === 'user');
  const joinsMount = joins.some((j) => j.namespace === 'mount');
  const asRoot = joinsUser && !opts.preserveCredentials ? 0 : null;
  const shell = ctx.env.SHELL || '/bin/sh';
  if (opts.wd !== undefined && opts.wdns !== undefined) throw optionError('--wd and --wdns cannot be combined');
  const follow = (id: number | 'follow' | undefined, which: 'uid' | 'gid'): number | undefined => {
    if (id !== 'follow') return id;
    if (target === null || !ctx.owner) throw optionError(`--set${which} follow takes the ${which} of a target: give -t PID`);
    return ctx.owner(target)[which];
  };
  const root = typeof opts.root === 'string' ? opts.root : null;
  return {
    target,
    joins,
    shared,
    root,
    rootFromTarget: target !== null && opts.root === true,
    // As nsenter, a directory given with -w is opened before joining; after a new root without one, the
    // command starts where tsns was. After joining a mount namespace the cwd would be its /: the target's, as nsenter -w does.
    wd: typeof opts.wd === 'string' ? opts.wd : (root !== null || opts.root === true) && opts.wd === undefined && opts.wdns === undefined && !joinsMount ? '.' : null,
    wdFromTarget: target !== null && (opts.wd === true || (opts.wd === undefined && opts.wdns === undefined && joinsMount)),
    setuid: follow(opts.setuid, 'uid') ?? asRoot,
    setgid: follow(opts.setgid, 'gid') ?? asRoot,
    environment: opts.targetEnv ? 'target' : 'own',
    wdns: opts.wdns ?? null,
    noFork: opts.noFork ?? false,
    keepCaps: (opts.keepCaps ?? false) && joinsUser,
    file: command[0] ?? shell,
    argv: command.length ? [...command] : [shell],
  };
}
