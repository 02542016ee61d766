/**
 * enter(): join the namespaces of a running process (or namespace files) and
 * run a command there, as nsenter(1) does. The joins happen in a child the
 * shim clones (Node is multithreaded: user and mount namespaces refuse it),
 * and a pid or time namespace gets one more fork so the command is inside.
 */
import { closeSync, constants, openSync, readFileSync, readlinkSync } from 'node:fs';
import { errnoName, nativeFailure, systemError, TsnsError } from './errors';
import type { RunResult } from './exit-status';
import { NAMESPACES, type NamespaceName } from './namespaces';
import { nsQuery } from './native';
import { BARE_LAUNCH, launch, type LaunchSpec, type ProcessOptions } from './spawn';

/** nsenter's options, in camelCase. A namespace is true (the target's) or a namespace file. */
export interface EnterOptions extends ProcessOptions {
  mount?: boolean | string;
  uts?: boolean | string;
  ipc?: boolean | string;
  net?: boolean | string;
  pid?: boolean | string;
  user?: boolean | string;
  cgroup?: boolean | string;
  time?: boolean | string;
  /** every namespace of the target (the default when none is named) */
  all?: boolean;
  /** chroot: true for the target's root, or a directory */
  root?: boolean | string;
  /** working directory: true for the target's (the default when its mount namespace is joined), or a directory */
  wd?: boolean | string;
  /** keep this process's uid/gid after joining a user namespace (default: become 0 there) */
  preserveCredentials?: boolean;
  setuid?: number;
  setgid?: number;
  /** give the command the target's environment */
  targetEnv?: boolean;
}

// Join order: the user namespace first, so that it grants the rights for the rest; mount last.
const JOIN_ORDER: NamespaceName[] = ['user', 'cgroup', 'ipc', 'uts', 'net', 'pid', 'time', 'mount'];

interface Join {
  ns: NamespaceName;
  path: string;
  fromTarget: boolean;
}

function nsLink(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

function openOrFail(path: string, what: string, hint?: (code: string) => string | undefined): number {
  try {
    // Non-blocking: a FIFO given as a namespace file must fail, not wait for a writer.
    return openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const code = -(err.errno ?? -5);
    throw systemError(`cannot open ${what} (${path})`, code, 'target', hint?.(errnoName(code)));
  }
}

/** What to join, in order; namespaces the caller already shares are left out. */
function plannedJoins(target: number | null, opts: EnterOptions): Join[] {
  const named = NAMESPACES.filter((n) => opts[n.name] !== undefined && opts[n.name] !== false);
  const wanted = opts.all || named.length === 0 ? NAMESPACES.map((n) => n.name) : named.map((n) => n.name);
  const joins: Join[] = [];
  for (const ns of JOIN_ORDER) {
    if (!wanted.includes(ns)) continue;
    const proc = NAMESPACES.find((n) => n.name === ns)!.proc;
    const value = opts[ns];
    if (typeof value === 'string') {
      joins.push({ ns, path: value, fromTarget: false });
      continue;
    }
    if (target === null) {
      throw new TsnsError(`--${ns} needs a target (-t PID) or a namespace file (--${ns}=FILE)`, { stage: 'option' });
    }
    const theirs = nsLink(`/proc/${target}/ns/${proc}`);
    // Same namespace: nothing to join (and setns into one's own user namespace is refused).
    if (theirs !== null && theirs === nsLink(`/proc/self/ns/${proc}`)) continue;
    joins.push({ ns, path: `/proc/${target}/ns/${proc}`, fromTarget: true });
  }
  return joins;
}

/** What stands between the caller and another process's namespaces (ptrace access, in the kernel's terms). */
function traceHint(): string {
  return process.geteuid?.() === 0
    ? 'the kernel refuses even root here: a security module, or the process\'s own settings, deny tracing it'
    : 'you may enter only processes you could trace: your own (same uid, not more privileged), or any as root';
}

function checkTarget(target: number): void {
  if (!Number.isSafeInteger(target) || target < 1) {
    throw new TsnsError(`invalid target pid '${target}'`, { stage: 'option' });
  }
  try {
    readlinkSync(`/proc/${target}/ns/mnt`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      if (nsLink('/proc/self/ns/mnt') === null) {
        throw new TsnsError('cannot enter: /proc is not mounted here', { stage: 'target', errno: 'ENOENT', code: 2, hint: 'tsns reads /proc/PID/ns: mount proc on /proc' });
      }
      // Gone, or hidden from us by hidepid: kill(pid, 0) tells the two apart.
      let hidden = false;
      try {
        process.kill(target, 0);
        hidden = true;
      } catch (k) {
        hidden = (k as NodeJS.ErrnoException).code === 'EPERM';
      }
      if (hidden) {
        throw new TsnsError(`cannot enter pid ${target}: /proc does not show it to you (hidepid)`, {
          stage: 'target', errno: 'EACCES', code: 13, hint: traceHint(),
        });
      }
      throw systemError(`cannot enter pid ${target}`, 3, 'target', 'it is not running (any more)');
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw systemError(`cannot enter pid ${target}`, code === 'EACCES' ? 13 : 1, 'target', traceHint());
    }
    throw e;
  }
}

/**
 * Run `command` inside the namespaces of process `target` (or null with
 * namespace files). Resolves like run(): exit code or signal of the command.
 */
export async function enter(target: number | null, command: readonly string[], opts: EnterOptions = {}): Promise<RunResult> {
  if (target !== null) checkTarget(target);
  const joins = plannedJoins(target, opts);
  const fds: number[] = [];
  try {
    const spec: LaunchSpec = {
      ...BARE_LAUNCH,
      root: typeof opts.root === 'string' ? opts.root : null,
      wd: typeof opts.wd === 'string' ? opts.wd : null,
      target,
    };
    const joinSpecs: LaunchSpec['joins'][number][] = [];
    for (const j of joins) {
      const fd = openOrFail(j.path, `the ${j.ns} namespace`, (code) =>
        code === 'EACCES' || code === 'EPERM' ? traceHint() : undefined);
      fds.push(fd);
      const type = nsQuery(fd, 'type');
      const info = NAMESPACES.find((n) => n.name === j.ns)!;
      if (type < 0) throw new TsnsError(`${j.path} is not a namespace file`, { stage: 'option', hint: 'give /proc/PID/ns/TYPE or a file a namespace was bound onto (tsns run --TYPE=FILE)' });
      if (type !== info.flag) {
        const kind = NAMESPACES.find((n) => n.flag === type)?.proc ?? `type ${type}`;
        throw new TsnsError(`${j.path} is a ${kind} namespace, not ${info.proc}`, { stage: 'option' });
      }
      joinSpecs.push({ type: info.flag, fd, fromTarget: j.fromTarget });
    }
    spec.joins = joinSpecs;
    const joinsMount = joins.some((j) => j.ns === 'mount');
    if (target !== null && opts.root === true) fds.push((spec.rootFd = openOrFail(`/proc/${target}/root`, 'the target\'s root')));
    // After joining a mount namespace the cwd would be its /: use the target's, as nsenter -w does.
    if (target !== null && (opts.wd === true || (opts.wd === undefined && joinsMount))) {
      fds.push((spec.cwdFd = openOrFail(`/proc/${target}/cwd`, 'the target\'s working directory')));
    }
    const joinsUser = joins.some((j) => j.ns === 'user');
    spec.uid = opts.setuid ?? (joinsUser && !opts.preserveCredentials ? 0 : null);
    spec.gid = opts.setgid ?? (joinsUser && !opts.preserveCredentials ? 0 : null);

    let processOpts: ProcessOptions = opts;
    if (opts.targetEnv) {
      if (target === null) throw new TsnsError('--env takes the environment of a target: give -t PID', { stage: 'option' });
      let text: string;
      try {
        text = readFileSync(`/proc/${target}/environ`, 'utf8');
      } catch (e) {
        throw systemError(`cannot read the environment of pid ${target}`, -((e as NodeJS.ErrnoException).errno ?? -5), 'target');
      }
      const env = Object.fromEntries(text.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      processOpts = { ...opts, clearEnv: true, env: { ...env, ...opts.env } };
    }
    const shell = (processOpts.clearEnv ? processOpts.env?.SHELL : (processOpts.env?.SHELL ?? process.env.SHELL)) || '/bin/sh';
    spec.file = command[0] ?? shell;
    spec.argv = command.length ? [...command] : [shell];

    return await launch(spec, (stage, code, index) =>
      nativeFailure(stage, code, {
        namespaces: joins.map((j) => j.ns),
        root: spec.root ?? (spec.rootFd !== null ? `/proc/${target}/root` : null),
        wd: spec.wd ?? (spec.cwdFd !== null ? `/proc/${target}/cwd` : null),
        setuid: spec.uid,
        setgid: spec.gid,
        file: String(spec.file),
        target,
        joinNamespace: joins[index]?.ns ?? null,
      }), processOpts);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}
