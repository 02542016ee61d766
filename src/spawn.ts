/**
 * run(): turn a plan into a running command through the native shim, and wait
 * for it without blocking the event loop or a libuv pool thread.
 */
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { NATIVE_STAGES, nativeFailure, systemError, TsnsError, type Stage } from './errors';
import { decodeWaitStatus, signalNumber, type RunResult } from './exit-status';
import { formatIdMap } from './idmap';
import { userName } from './inspect';
import * as native from './native';
import { makePlan, type Plan, type PlanContext, type Propagation, type RunOptions } from './plan';
import { encodeOp } from './sandbox';

const MS_PROPAGATION: Record<Propagation, number> = {
  unchanged: 0,
  private: 1 << 18,
  slave: 1 << 19,
  shared: 1 << 20,
};

/** How the command's fd 0, 1 or 2 is set up: like execa's stdio. */
export type StdioOption = 'inherit' | 'pipe' | 'ignore' | number;

/** How the command runs as a process, beyond its namespaces. */
export interface ProcessOptions {
  /** variables added to (or, undefined, removed from) the environment */
  env?: Readonly<Record<string, string | undefined>>;
  /** start from an empty environment instead of this process's */
  clearEnv?: boolean;
  /** one choice for all three, or [stdin, stdout, stderr]; default inherit */
  stdio?: StdioOption | readonly [StdioOption, StdioOption, StdioOption];
  /** written to stdin when it is 'pipe' */
  input?: string | Uint8Array;
  /** SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 sent to this process go to the command */
  forwardSignals?: boolean;
  /** aborting kills the command; the result has aborted: true */
  signal?: AbortSignal;
  /** milliseconds; then the command is killed and the result has timedOut: true */
  timeout?: number;
  /** signal for signal/timeout; default SIGKILL (a PID 1 without a handler ignores others) */
  killSignal?: string | number;
  /** called with the pid as soon as the command has been exec'd */
  onStart?: (pid: number) => void;
  /**
   * The command's arguments as bytes, for arguments that are not valid UTF-8
   * (a JavaScript string cannot hold them); same length as the command.
   */
  argvBytes?: readonly Uint8Array[];
  /** this process's own environment, byte for byte from /proc/self/environ (the CLI's; env still applies) */
  environBytes?: boolean;
}

export type RunAllOptions = RunOptions & ProcessOptions;

export const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

// Set by Node or a Node parent for this process only (IPC channel, cluster).
const OWN_VARIABLES = ['NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE', 'NODE_UNIQUE_ID'];

function readDb(file: string): string[][] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(':'));
  } catch {
    return [];
  }
}

function lookupIn(file: string, name: string): number | undefined {
  const f = readDb(file).find((e) => e[0] === name && /^\d+$/.test(e[2] ?? ''));
  return f ? Number(f[2]) : undefined;
}

/** Everything left to read on an fd the caller opened for tsns (`what` and `example` name it in an error). */
export function readFd(fd: number, what: string, example: string): Buffer {
  try {
    return readFileSync(fd);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw systemError(`cannot read ${what} from fd ${fd}`, -(err.errno ?? 0), 'option',
      err.code === 'EBADF' ? `open the file on that fd for tsns, e.g. ${fd}<${example}` : undefined);
  }
}

/** The caller as the kernel will judge it. */
export function systemContext(env: Readonly<Record<string, string | undefined>> = process.env): PlanContext {
  const uid = process.geteuid!();
  const gid = process.getegid!();
  return {
    uid,
    gid,
    privileged: uid === 0,
    env,
    lookupUser: (name) => lookupIn('/etc/passwd', name),
    lookupGroup: (name) => lookupIn('/etc/group', name),
    subordinateIds(kind) {
      // Both files name the user (login name or uid), as newuidmap/newgidmap check them.
      const names = new Set([String(uid), userName(uid)]);
      return readDb(`/etc/sub${kind}`)
        .filter((e) => names.has(e[0] ?? '') && /^\d+$/.test(e[1] ?? '') && /^\d+$/.test(e[2] ?? ''))
        .map((e) => ({ start: Number(e[1]), count: Number(e[2]) }));
    },
    signalNumber,
    cwd: process.cwd(),
    readFd: (fd) => readFd(fd, 'a seccomp program', 'filter.bpf'),
    lstat(path) {
      try {
        const st = lstatSync(path);
        if (st.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(path) };
        return { kind: st.isDirectory() ? 'dir' : 'file' };
      } catch {
        return null;
      }
    },
  };
}

// Children we still have to reap, and how to tell their callers.
const waiting = new Map<number, (status: number) => void>();

/** How this thread hears that a command ended. */
interface Watching {
  add(pid: number): void;
  stop(): void;
}
let watching: Watching | undefined;
let teardown: NodeJS.Immediate | undefined;

let mainThread: boolean | undefined;

/**
 * The CLI runs on Node's main thread and says so: loading
 * node:worker_threads to find out would cost it milliseconds.
 */
export function assumeMainThread(): void {
  mainThread = true;
}

function isMainThread(): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  mainThread ??= (require('node:worker_threads') as typeof import('node:worker_threads')).isMainThread;
  return mainThread;
}

function reap(): void {
  const pids = [...waiting.keys()];
  native.waitAll(pids).forEach((status, i) => {
    if (status === 0) return;
    const pid = pids[i]!;
    const done = waiting.get(pid)!;
    waiting.delete(pid);
    done(status);
  });
  // Not at once: a caller awaiting one run after another starts the next
  // before the immediate fires, and setting the watch up anew each time
  // costs more than the run's own JavaScript.
  if (waiting.size === 0 && watching && !teardown) teardown = setImmediate(stopWatching);
}

/** Let the program (or worker) exit once nothing is running. */
function stopWatching(): void {
  teardown = undefined;
  if (waiting.size > 0 || !watching) return;
  watching.stop();
  watching = undefined;
}

/** On the main thread: SIGCHLD. */
function watchSignal(): Watching {
  // A SIGCHLD listener alone does not keep the loop alive; this timer never fires usefully.
  const keepAlive = setInterval(() => {}, 0x7fffffff);
  process.on('SIGCHLD', reap);
  return {
    add() {},
    stop() {
      clearInterval(keepAlive);
      process.removeListener('SIGCHLD', reap);
    },
  };
}

/**
 * Elsewhere Node delivers no signals: the shim's watcher thread polls a
 * pidfd per command and writes to a pipe that this thread reads.
 */
function watchNotices(): Watching {
  const [r, w] = native.pipe();
  let ctl: number;
  try {
    ctl = native.watcherStart(w);
  } catch (e) {
    closeFd(r);
    closeFd(w);
    throw e;
  }
  const socket = new (Socket())({ fd: r, readable: true, writable: false });
  socket.on('data', reap);
  let poll: NodeJS.Timeout | undefined;
  return {
    add(pid) {
      // No pidfd_open (Linux before 5.3): ask every 10 ms instead.
      if (native.watch(ctl, pid) < 0) poll ??= setInterval(reap, 10);
    },
    stop() {
      clearInterval(poll);
      socket.destroy();
      // The watcher closes its fds, the pipe's write end among them, when it sees this.
      closeFd(ctl);
    },
  };
}

function watchChildren(): Watching {
  if (teardown) {
    clearImmediate(teardown);
    teardown = undefined;
  }
  watching ??= isMainThread() ? watchSignal() : watchNotices();
  return watching;
}

function waitFor(pid: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    waiting.set(pid, (status) => {
      if (status < 0) reject(new TsnsError(`cannot wait for pid ${pid}: errno ${-status}`, { stage: 'wait', code: -status }));
      else resolve(decodeWaitStatus(pid, status));
    });
  });
}

function environment(opts: ProcessOptions): (string | Uint8Array)[] {
  const extra = Object.entries(opts.env ?? {})
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  const drop = new Set([...OWN_VARIABLES, ...Object.keys(opts.env ?? {})]);
  if (opts.clearEnv) return extra;
  const raw = opts.environBytes ? readEnviron() : null;
  if (raw) {
    const entries: Buffer[] = [];
    for (let at = 0; at < raw.length;) {
      const end = raw.indexOf(0, at);
      const e = raw.subarray(at, end < 0 ? raw.length : end);
      at = end < 0 ? raw.length : end + 1;
      const eq = e.indexOf(0x3d);
      if (eq > 0 && !drop.has(e.subarray(0, eq).toString('latin1'))) entries.push(e);
    }
    return [...entries, ...extra];
  }
  // Keys, then one lookup each: process.env is a view of the C environment
  // and enumerating its entries costs twice as much.
  const env = process.env;
  const out: string[] = [];
  for (const k of Object.keys(env)) {
    const v = env[k];
    if (v !== undefined && !drop.has(k)) out.push(`${k}=${v}`);
  }
  return [...out, ...extra];
}

/** The kernel's copy of our environment (Node's decodes it as UTF-8); null without /proc. */
function readEnviron(): Buffer | null {
  try {
    return readFileSync('/proc/self/environ');
  } catch {
    return null;
  }
}

function searchPath(opts: ProcessOptions): string {
  const fromEnv = opts.env && 'PATH' in opts.env ? opts.env.PATH : opts.clearEnv ? undefined : process.env.PATH;
  return fromEnv ?? '/bin:/usr/bin';
}

interface Stdio {
  /** what the child gets on 0-2 */
  child: (number | null)[];
  /** our ends of the pipes: [stdin writer, stdout reader, stderr reader] */
  ours: (number | null)[];
}

function setupStdio(opts: ProcessOptions): Stdio {
  const choice = opts.stdio ?? (opts.input !== undefined ? ['pipe', 'inherit', 'inherit'] : 'inherit');
  const list = typeof choice === 'string' || typeof choice === 'number' ? [choice, choice, choice] : choice;
  const stdio: Stdio = { child: [null, null, null], ours: [null, null, null] };
  list.forEach((c, fd) => {
    if (c === 'inherit') return;
    if (c === 'ignore') stdio.child[fd] = -1;
    else if (typeof c === 'number') stdio.child[fd] = c;
    else {
      const [r, w] = native.pipe();
      stdio.child[fd] = fd === 0 ? r : w;
      stdio.ours[fd] = fd === 0 ? w : r;
    }
  });
  return stdio;
}

/** Our own pipes' fds: closed through the shim, which made them. */
function closeFd(fd: number | null): void {
  if (fd !== null) native.close(fd);
}

// node:net costs milliseconds to load: only when a stream is piped.
const Socket = (): typeof import('node:net').Socket =>
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('node:net') as typeof import('node:net')).Socket;

function collect(fd: number | null): Promise<string> | undefined {
  if (fd === null) return undefined;
  const socket = new (Socket())({ fd, readable: true, writable: false });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks).toString())));
}

function feed(fd: number | null, input: string | Uint8Array | undefined): void {
  if (fd === null) return;
  const socket = new (Socket())({ fd, readable: false, writable: true });
  socket.on('error', () => {}); // the command may not read it all (EPIPE)
  socket.end(input ?? '');
}

/** What the shim needs besides the process options. */
export type LaunchSpec = Omit<native.SpawnSpec, 'stdio' | 'searchPath' | 'env'>;

/** A launch that creates, maps and mounts nothing: run() and enter() fill in what they use. */
export const BARE_LAUNCH: LaunchSpec = {
  flags: 0, unsharePid: false, uidMap: null, gidMap: null, uidMapHelper: false, gidMapHelper: false,
  setgroups: null, hostname: null, domainname: null, procDir: null, propagation: 0, root: null, wd: null,
  monotonic: null, boottime: null, uid: null, gid: null, keepCaps: false, killSignal: null, init: false,
  persist: [], filesystem: [], seccomp: [], hardening: '', capKeep: null, target: null, joins: [], rootFd: null, cwdFd: null,
  file: '', argv: [],
};

/** Explains a failure the shim reported; `index` picks the file or namespace a stage names. */
export type FailureExplainer = (stage: Stage, code: number, index: number) => TsnsError;

/** Start a command through the shim and wait for it: the part run() and enter() share. */
export async function launch(spec: LaunchSpec, explain: FailureExplainer, opts: ProcessOptions = {}): Promise<RunResult> {
  if (opts.signal?.aborted) {
    throw new TsnsError('the command was not started: its AbortSignal was already aborted', { stage: 'option' });
  }
  if (opts.forwardSignals && !isMainThread()) {
    throw new TsnsError('forwardSignals works only on the main thread: Node delivers signals to no other', { stage: 'option' });
  }
  const killSignal = opts.killSignal === undefined ? 9 : signalNumber(String(opts.killSignal));
  if (killSignal === undefined) throw new TsnsError(`unknown killSignal '${opts.killSignal}'`, { stage: 'option' });
  for (const name of Object.keys(opts.env ?? {})) {
    if (name === '' || name.includes('=')) {
      throw new TsnsError(`env: ${name === '' ? 'a variable needs a name' : `a variable's name cannot contain '=': ${JSON.stringify(name)}`}`, { stage: 'option' });
    }
  }
  const stdio = setupStdio(opts);
  const watch = watchChildren();
  let ret: number;
  try {
    const bytes = opts.argvBytes && opts.argvBytes.length === spec.argv.length ? opts.argvBytes : null;
    ret = native.spawn({
      ...spec,
      ...(bytes ? { argv: bytes, file: spec.file === spec.argv[0] ? bytes[0]! : spec.file } : {}),
      stdio: stdio.child,
      searchPath: searchPath(opts),
      env: environment(opts),
    });
  } catch (e) {
    // Nothing started (a NUL in an argument, say): let go of the pipes and the watch.
    stdio.ours.forEach(closeFd);
    reap();
    throw e;
  } finally {
    // The child has its copies (or never will); ours are the other ends.
    stdio.child.forEach((fd, i) => stdio.ours[i] !== null && closeFd(fd));
  }
  if (ret < 0) {
    stdio.ours.forEach(closeFd);
    reap();
    const stage = NATIVE_STAGES[Math.floor(-ret / 0x10000)] ?? 'native';
    const low = -ret & 0xffff;
    // These stages carry the index of their file, namespace or program in the errno's high byte.
    const indexed = stage === 'persist' || stage === 'setns' || stage === 'sandbox' || stage === 'seccomp';
    const [code, index] = indexed ? [low & 0xff, low >> 8] : [low, 0];
    throw explain(stage, code, index);
  }
  const pid = ret;
  watch.add(pid);
  const ended = waitFor(pid);
  try {
    opts.onStart?.(pid);
  } catch (e) {
    // The caller's callback failed: the command is not left running unwatched.
    stdio.ours.forEach(closeFd);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await ended.catch(() => {});
    throw e;
  }
  feed(stdio.ours[0] ?? null, opts.input);
  const out = collect(stdio.ours[1] ?? null);
  const err = collect(stdio.ours[2] ?? null);

  const forward = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  if (opts.forwardSignals) for (const s of FORWARDED_SIGNALS) process.on(s, forward);
  let timedOut = false;
  let aborted = false;
  const kill = () => {
    try {
      process.kill(pid, killSignal);
    } catch {
      // already gone
    }
  };
  const timer = opts.timeout === undefined ? undefined : setTimeout(() => ((timedOut = true), kill()), opts.timeout);
  const onAbort = () => ((aborted = true), kill());
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await ended;
    const [stdout, stderr] = await Promise.all([out, err]);
    return {
      ...result,
      ...(stdout === undefined ? {} : { stdout }),
      ...(stderr === undefined ? {} : { stderr }),
      ...(timedOut ? { timedOut } : {}),
      ...(aborted ? { aborted } : {}),
    };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    if (opts.forwardSignals) for (const s of FORWARDED_SIGNALS) process.removeListener(s, forward);
  }
}

/** Start the command a plan describes; resolves when it has ended. */
export function execute(plan: Plan, opts: ProcessOptions = {}): Promise<RunResult> {
  const spec: LaunchSpec = {
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
    monotonic: plan.monotonic,
    boottime: plan.boottime,
    uid: plan.setuid,
    gid: plan.setgid,
    keepCaps: plan.keepCaps,
    killSignal: plan.killSignal,
    init: plan.supervisor === 'init',
    persist: plan.persist,
    filesystem: plan.filesystem.map(encodeOp),
    seccomp: plan.seccomp.map((p) => p.hex),
    hardening: [plan.noNewPrivs && 'n', plan.newSession && 's', plan.loUp && 'l', plan.namespaces.includes('user') && 'x']
      .filter(Boolean).join(''),
    capKeep: plan.capKeep,
    file: plan.file,
    argv: plan.argv,
  };
  return launch(spec, (stage, code, index) =>
    nativeFailure(stage, code, {
      ...plan,
      uidMapText: plan.uidMap && formatIdMap(plan.uidMap),
      gidMapText: plan.gidMap && formatIdMap(plan.gidMap),
      persistPath: plan.persist[index]?.path ?? null,
      persistNamespace: plan.persist[index]?.namespace ?? null,
      // The shim counts sandbox operations from 1; 0 is the new root itself.
      sandboxOp: stage === 'sandbox' && index > 0 ? plan.filesystem[index - 1] ?? null : null,
      seccompIndex: stage === 'seccomp' ? index : null,
    }), opts);
}

/**
 * Run `command` in new namespaces. Resolves with its exit code or signal; rejects
 * with TsnsError when tsns itself fails (including a command that cannot be executed).
 */
export async function run(command: readonly string[], options: RunAllOptions = {}): Promise<RunResult> {
  // The plan reads a variable or two: copy the environment only to overlay options.env.
  const env = options.clearEnv ? { ...options.env } : options.env ? { ...process.env, ...options.env } : process.env;
  const ctx = systemContext(env);
  return execute(makePlan(command, options, ctx), options);
}
