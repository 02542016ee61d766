/**
 * launch(): start a command from a spec (any plan's) through the shim, and
 * see it to its end — stdio, timeout, abort, forwarded signals — without
 * blocking the event loop.
 */
import { readFileSync } from 'node:fs';
import { TsnsError, type Stage } from './errors';
import * as native from './native';
import { FORWARDED_SIGNALS, signalNumber } from './signals';
import { closeFd, collect, feed, setupStdio, type Stdio, type StdioOption } from './stdio';
import { isMainThread, reap, waitFor, watchChildren } from './watch';
import { decodeFailure, encodeSpec, type LaunchSpec } from './wire';

export interface RunResult {
  /** pid of the command, in tsns's own pid namespace */
  pid: number;
  /** exit code, or null when a signal ended the command */
  exitCode: number | null;
  /** name of the signal that ended the command, e.g. 'SIGTERM' */
  signal: string | null;
  /** what the command wrote, when its stdout/stderr was 'pipe' */
  stdout?: string;
  stderr?: string;
  /** killed because the timeout passed */
  timedOut?: boolean;
  /** killed because the AbortSignal fired */
  aborted?: boolean;
  /** processes the command's memory limit killed (cgroup limits only; absent when none) */
  oomKills?: number;
}

/** How the command runs as a process, beyond its namespaces. */
export interface ProcessOptions {
  /** variables added to (or, undefined, removed from) the environment */
  env?: Readonly<Record<string, string | undefined>>;
  /** start from an empty environment instead of this process's */
  clearEnv?: boolean;
  /**
   * one choice for all three, or [stdin, stdout, stderr, fd 3, …] as
   * child_process takes it: from fd 3 on, an fd of this process to pass on
   * at that number ('ignore' passes none); default inherit
   */
  stdio?: StdioOption | readonly StdioOption[];
  /** more fds to pass on: the command's fd number → an fd of this process */
  fds?: Readonly<Record<number, number>>;
  /**
   * pass on every fd this process inherited from its parent, as unshare,
   * nsenter and bwrap do (the CLI does); by default the command gets only
   * stdio and fds, as with child_process
   */
  inheritFds?: boolean;
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
  /** told what tsns had to warn about (a limit this kernel ignores, running without limits); default process.emitWarning */
  onWarning?: (message: string) => void;
}

/** Explains a failure the shim reported; `index` picks the file or namespace a stage names. */
export type FailureExplainer = (stage: Stage, code: number, index: number) => TsnsError;

// Set by Node or a Node parent for this process only (IPC channel, cluster).
const OWN_VARIABLES = ['NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE', 'NODE_UNIQUE_ID'];

/** The kernel's copy of our environment (Node's decodes it as UTF-8); null without /proc. */
function readEnviron(): Buffer | null {
  try {
    return readFileSync('/proc/self/environ');
  } catch {
    return null;
  }
}

/** Entries of an environ block whose names are not in `drop`. */
function environEntries(raw: Buffer, drop: ReadonlySet<string>): Buffer[] {
  const entries: Buffer[] = [];
  for (let at = 0; at < raw.length;) {
    const end = raw.indexOf(0, at);
    const e = raw.subarray(at, end < 0 ? raw.length : end);
    at = end < 0 ? raw.length : end + 1;
    const eq = e.indexOf(0x3d);
    if (eq > 0 && !drop.has(e.subarray(0, eq).toString('latin1'))) entries.push(e);
  }
  return entries;
}

function environment(opts: ProcessOptions): (string | Uint8Array)[] {
  const extra = Object.entries(opts.env ?? {})
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  const drop = new Set([...OWN_VARIABLES, ...Object.keys(opts.env ?? {})]);
  if (opts.clearEnv) return extra;
  const raw = opts.environBytes ? readEnviron() : null;
  if (raw) return [...environEntries(raw, drop), ...extra];
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

function searchPath(opts: ProcessOptions): string {
  const fromEnv = opts.env && 'PATH' in opts.env ? opts.env.PATH : opts.clearEnv ? undefined : process.env.PATH;
  return fromEnv ?? '/bin:/usr/bin';
}

/** What launch() refuses before anything is made; the kill signal to use. */
function checkOptions(opts: ProcessOptions): number {
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
  return killSignal;
}

/** Clone and exec; the pid, or the explained failure (nothing left behind either way). */
function start(spec: LaunchSpec, stdio: Stdio, explain: FailureExplainer, opts: ProcessOptions): number {
  let ret: number;
  try {
    const bytes = opts.argvBytes && opts.argvBytes.length === spec.argv.length ? opts.argvBytes : null;
    ret = native.spawn(encodeSpec({
      ...spec,
      ...(bytes ? { argv: bytes, file: spec.file === spec.argv[0] ? bytes[0]! : spec.file } : {}),
      stdio: stdio.child,
      inheritFds: opts.inheritFds ?? false,
      searchPath: searchPath(opts),
      env: environment(opts),
    }));
  } catch (e) {
    // Nothing started (a NUL in an argument, say): let go of the pipes and the watch.
    stdio.ours.forEach(closeFd);
    reap();
    throw e;
  } finally {
    // The child has its copies (or never will); ours are the other ends.
    stdio.child.forEach((fd, i) => (stdio.ours[i] ?? null) !== null && closeFd(fd));
  }
  if (ret < 0) {
    stdio.ours.forEach(closeFd);
    reap();
    const failure = decodeFailure(ret);
    throw explain(failure.stage, failure.code, failure.index);
  }
  return ret;
}

function kill(pid: number, signal: number | NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Until `finish` settles (the command ended and its output is in), kill it
 * on timeout or abort and pass signals on if asked.
 */
async function supervise(pid: number, finish: () => Promise<RunResult>, killSignal: number, opts: ProcessOptions): Promise<RunResult> {
  const forward = (sig: NodeJS.Signals) => kill(pid, sig);
  if (opts.forwardSignals) for (const s of FORWARDED_SIGNALS) process.on(s, forward);
  let timedOut = false;
  let aborted = false;
  const timer = opts.timeout === undefined ? undefined : setTimeout(() => ((timedOut = true), kill(pid, killSignal)), opts.timeout);
  const onAbort = () => ((aborted = true), kill(pid, killSignal));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await finish();
    return { ...result, ...(timedOut ? { timedOut } : {}), ...(aborted ? { aborted } : {}) };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    if (opts.forwardSignals) for (const s of FORWARDED_SIGNALS) process.removeListener(s, forward);
  }
}

/** Start a command through the shim and wait for it: what every plan's launch shares. */
export async function launch(spec: LaunchSpec, explain: FailureExplainer, opts: ProcessOptions = {}): Promise<RunResult> {
  const killSignal = checkOptions(opts);
  const stdio = setupStdio(opts.stdio ?? (opts.input !== undefined ? ['pipe', 'inherit', 'inherit'] : 'inherit'), opts.fds);
  const watch = watchChildren();
  const pid = start(spec, stdio, explain, opts);
  watch.add(pid);
  const ended = waitFor(pid);
  try {
    opts.onStart?.(pid);
  } catch (e) {
    // The caller's callback failed: the command is not left running unwatched.
    stdio.ours.forEach(closeFd);
    kill(pid, 'SIGKILL');
    await ended.catch(() => {});
    throw e;
  }
  feed(stdio.ours[0] ?? null, opts.input);
  const out = collect(stdio.ours[1] ?? null);
  const err = collect(stdio.ours[2] ?? null);
  return supervise(pid, async () => {
    const result = await ended;
    const [stdout, stderr] = await Promise.all([out, err]);
    return { ...result, ...(stdout === undefined ? {} : { stdout }), ...(stderr === undefined ? {} : { stderr }) };
  }, killSignal, opts);
}
