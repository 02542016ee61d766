/**
 * enter(): join the namespaces of a running process (or namespace files) and
 * run a command there, as nsenter(1) does. The joins happen in a child the
 * shim clones (Node is multithreaded: user and mount namespaces refuse it),
 * and a pid or time namespace gets one more fork so the command is inside.
 */
import { closeSync, constants, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { commandEnv } from './context';
import { errnoName, systemError, TsnsError } from './errors';
import { nativeFailure } from './explain';
import { launch, type ProcessOptions, type RunResult } from './launch';
import { namespace, namespaceByFlag } from './namespaces';
import { nsOwnerFd, nsQuery, pidfdIno, socketNetns } from './native';
import { makeEnterPlan, type EnterNamespaceOptions, type EnterPlan } from './plan/enter';
import { decodeFailure, enterSpec, type EnterFds } from './wire';

/** nsenter's options, in camelCase, and how the command runs as a process. */
export interface EnterOptions extends EnterNamespaceOptions, ProcessOptions {}

function nsLink(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/** What stands between the caller and another process's namespaces (ptrace access, in the kernel's terms). */
function traceHint(): string {
  return process.geteuid?.() === 0
    ? 'the kernel refuses even root here: a security module, or the process\'s own settings, deny tracing it'
    : 'you may enter only processes you could trace: your own (same uid, not more privileged), or any as root';
}

/** Gone, or hidden from us by hidepid: kill(pid, 0) tells the two apart. */
function missingTarget(target: number): TsnsError {
  if (nsLink('/proc/self/ns/mnt') === null) {
    return new TsnsError('cannot enter: /proc is not mounted here', { stage: 'target', errno: 'ENOENT', code: 2, hint: 'tsns reads /proc/PID/ns: mount proc on /proc' });
  }
  let hidden = false;
  try {
    process.kill(target, 0);
    hidden = true;
  } catch (k) {
    hidden = (k as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (hidden) {
    return new TsnsError(`cannot enter pid ${target}: /proc does not show it to you (hidepid)`, {
      stage: 'target', errno: 'EACCES', code: 13, hint: traceHint(),
    });
  }
  return systemError(`cannot enter pid ${target}`, 3, 'target', 'it is not running (any more)');
}

function checkTarget(target: number): void {
  if (!Number.isSafeInteger(target) || target < 1) {
    throw new TsnsError(`invalid target pid '${target}'`, { stage: 'option' });
  }
  try {
    readlinkSync(`/proc/${target}/ns/mnt`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw missingTarget(target);
    if (code === 'EACCES' || code === 'EPERM') {
      throw systemError(`cannot enter pid ${target}`, code === 'EACCES' ? 13 : 1, 'target', traceHint());
    }
    throw e;
  }
}

/** The target's environment, for -e: the command starts from it alone. */
function targetProcessOptions(target: number | null, opts: EnterOptions): ProcessOptions {
  if (!opts.targetEnv || target === null) return opts;
  let text: string;
  try {
    text = readFileSync(`/proc/${target}/environ`, 'utf8');
  } catch (e) {
    throw systemError(`cannot read the environment of pid ${target}`, -((e as NodeJS.ErrnoException).errno ?? -5), 'target');
  }
  const env = Object.fromEntries(text.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return { ...opts, clearEnv: true, env: { ...env, ...opts.env } };
}

/** -t PID:INODE: the process with that pid must be the one whose pidfd had that inode. */
function checkInode(target: number, inode: number): void {
  const ino = pidfdIno(target);
  if (ino < 0) throw systemError(`cannot enter pid ${target}`, -ino, 'target', 'it is not running (any more)');
  if (ino !== inode) {
    throw systemError(`cannot enter pid ${target}:${inode}`, 3, 'target', `pid ${target} is another process now (its pidfd's inode is ${ino})`);
  }
}

function prepare(target: number | null, command: readonly string[], opts: EnterOptions): { plan: EnterPlan; processOpts: ProcessOptions } {
  if (target !== null) checkTarget(target);
  if (target !== null && opts.targetInode !== undefined) checkInode(target, opts.targetInode);
  const processOpts = targetProcessOptions(target, opts);
  const owner = (pid: number) => {
    const st = statSync(`/proc/${pid}`);
    return { uid: st.uid, gid: st.gid };
  };
  return { plan: makeEnterPlan(target, command, opts, { nsLink, owner, env: commandEnv(processOpts) }), processOpts };
}

/** The plan enter() would carry out for `target`, made without joining anything (what --dry-run prints). */
export function planEnter(target: number | null, command: readonly string[], opts: EnterOptions = {}): EnterPlan {
  return prepare(target, command, opts).plan;
}

function openOrFail(path: string, what: string, hint?: (code: string) => string | undefined, flags = 0): number {
  try {
    // Non-blocking: a FIFO given as a namespace file must fail, not wait for a writer.
    return openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | flags);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const code = -(err.errno ?? -5);
    throw systemError(`cannot open ${what} (${path})`, code, 'target', hint?.(errnoName(code)));
  }
}

/** Open every namespace the plan joins (checking that it is one, of the right type), and the target's root and cwd. */
function openPlan(plan: EnterPlan, fds: number[]): EnterFds {
  const joins: EnterFds['joins'][number][] = [];
  for (const j of plan.joins) {
    const fd = j.via === 'socket' ? socketNamespace(plan.target!, j.path) : openOrFail(j.path, `the ${j.namespace} namespace`, (code) =>
      code === 'EACCES' || code === 'EPERM' ? traceHint() : undefined);
    fds.push(fd);
    if (j.via === 'parent') {
      const parent = nsOwnerFd(fd);
      if (parent < 0) throw systemError(`cannot open the parent of the user namespace ${j.path}`, -parent, 'user-parent', parentHint(errnoName(-parent)));
      fds.push(parent);
      joins.push({ type: namespace('user').flag, fd: parent, fromTarget: false });
      continue;
    }
    const type = nsQuery(fd, 'type');
    const info = namespace(j.namespace);
    if (type < 0) throw new TsnsError(`${j.path} is not a namespace file`, { stage: 'option', hint: 'give /proc/PID/ns/TYPE or a file a namespace was bound onto (tsns run --TYPE=FILE)' });
    if (type !== info.flag) {
      throw new TsnsError(`${j.path} is a ${namespaceByFlag(type)?.proc ?? `type ${type}`} namespace, not ${info.proc}`, { stage: 'option' });
    }
    joins.push({ type: info.flag, fd, fromTarget: j.fromTarget });
  }
  const open = (on: boolean, file: string, what: string) => {
    if (!on) return null;
    const fd = openOrFail(`/proc/${plan.target}/${file}`, what);
    fds.push(fd);
    return fd;
  };
  // As nsenter: -r DIR and -w DIR are opened here, before joining anything.
  const dir = (path: string | null, what: string) => {
    if (path === null) return null;
    const fd = openOrFail(path, what, undefined, constants.O_DIRECTORY);
    fds.push(fd);
    return fd;
  };
  const rootFd = open(plan.rootFromTarget, 'root', 'the target\'s root') ?? dir(plan.root, 'the root directory');
  const cwdFd = open(plan.wdFromTarget, 'cwd', 'the target\'s working directory') ?? dir(plan.wd, 'the working directory');
  return { joins, rootFd, cwdFd };
}

/** nsenter -N: the target's socket's network namespace, as an fd of ours. */
function socketNamespace(target: number, path: string): number {
  const sockfd = Number(path.slice(path.lastIndexOf('/') + 1));
  const r = socketNetns(target, sockfd);
  if (r >= 0) return r;
  const { stage, code } = decodeFailure(r);
  const what = stage === 'socket-netns' ? `fd ${sockfd} of pid ${target} is not a socket with a network namespace` : `cannot take fd ${sockfd} of pid ${target}`;
  const hint = stage === 'net-socket' && errnoName(code) === 'EBADF' ? `pid ${target} has no fd ${sockfd}: see ls -l /proc/${target}/fd` : stage === 'net-socket' ? traceHint() : undefined;
  throw systemError(what, code, stage, hint);
}

function parentHint(name: string): string | undefined {
  if (name === 'EPERM') return 'the parent user namespace is outside yours: tsns cannot reach it';
  if (name === 'ENOTTY') return 'the kernel lacks NS_GET_USERNS (Linux 4.9+)';
  return undefined;
}

/**
 * Run `command` inside the namespaces of process `target` (or null with
 * namespace files). Resolves like run(): exit code or signal of the command.
 */
export async function enter(target: number | null, command: readonly string[], opts: EnterOptions = {}): Promise<RunResult> {
  const { plan, processOpts } = prepare(target, command, opts);
  const fds: number[] = [];
  try {
    const opened = openPlan(plan, fds);
    return await launch(enterSpec(plan, opened), (stage, code, index) =>
      nativeFailure(stage, code, {
        namespaces: plan.joins.map((j) => j.namespace),
        root: plan.root ?? (plan.rootFromTarget ? `/proc/${target}/root` : null),
        wd: plan.wdns ?? plan.wd ?? (plan.wdFromTarget ? `/proc/${target}/cwd` : null),
        setuid: plan.setuid,
        setgid: plan.setgid,
        file: plan.file,
        target,
        joinNamespace: plan.joins[index]?.namespace ?? null,
      }), processOpts);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}
