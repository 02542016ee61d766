/**
 * Starting tsns-oci-init (native/oci-init.c) with a spec and the fds it
 * names: ours at fixed places of its fd table (after stdio and the
 * --preserve-fds ones), the spec on one pipe, its report on another.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { OCI_INIT_PATH } from '../native';
import { decodeFailure, type NativeFailure } from '../wire';

export interface HelperFds {
  /** the fds the helper gets, in order, from 3 + preserveFds + 2 (after the spec and report pipes) */
  ours: number[];
  preserveFds: number;
}

/** Where an fd of ours lands in the helper; call before spawnHelper. */
export function fdMapper(h: HelperFds): (ours: number) => number {
  return (fd) => {
    let i = h.ours.indexOf(fd);
    if (i < 0) i = h.ours.push(fd) - 1;
    return 3 + h.preserveFds + 2 + i;
  };
}

export interface Helper {
  /** null once the helper has ended (runHelperToEnd) */
  child: ChildProcess | null;
  /** the container's pid, or the shim's failure */
  started: Promise<{ pid: number } | { failure: NativeFailure }>;
  /** with 'wait': the container's raw wait status; the helper's end otherwise */
  ended: Promise<number | null>;
  /** the helper relays the container's terminal: a SIGWINCH is for it (it resizes the pty) */
  relaysTerminal: boolean;
  /** with holdSpec: send the spec now (until then the helper waits, having done nothing) */
  releaseSpec: () => void;
}

/**
 * 'detach': the helper exits once the process is prepared; 'wait': it stays
 * its parent; tty: as 'wait', relaying the process's terminal (the spec's
 * CONSOLE_FD is `sock`, a slot of the helper's that it puts its socket pair's
 * end in) to its stdio, with `host` (the helper's number) the caller's terminal.
 */
export type HelperMode = 'detach' | 'wait' | { tty: { sock: number; host: number } };

/** Where the helper's report pipe lands in it: the container's process writes "hooks PID" there (native/oci.c). */
export const reportFdOf = (fds: HelperFds): number => 3 + fds.preserveFds + 1;

/** The helper's command line and fd table (null: an fd left for the caller to fill, a pipe). */
function helperCall(fds: HelperFds, mode: HelperMode, stateDirFd: number | null, preJoin: readonly number[]): { args: string[]; slots: (number | null)[] } {
  const base = 3 + fds.preserveFds;
  const slots: (number | null)[] = [0, 1, 2];
  for (let i = 0; i < fds.preserveFds; i++) slots.push(3 + i);
  slots.push(null, null, ...fds.ours);
  const args = [String(base), String(base + 1), typeof mode === 'string' ? mode : `tty:${mode.tty.sock},${mode.tty.host}`];
  const helperFd = (fd: number) => String(base + 2 + fds.ours.indexOf(fd));
  args.push(stateDirFd === null ? '-' : helperFd(stateDirFd));
  if (preJoin.length) args.push(preJoin.map(helperFd).join(','));
  return { args, slots };
}

/** The report's first line that is neither "hooks PID" nor "status N": the pid, or the failure. */
function startOf(lines: string[]): { pid: number } | { failure: NativeFailure } | null {
  const first = lines.find((l) => !l.startsWith('hooks ') && !l.startsWith('status '));
  if (first === undefined) return null;
  const n = Number(first);
  return n > 0 ? { pid: n } : { failure: decodeFailure(n < 0 ? n : -(1 << 16 | 5)) };
}

const DIED: { failure: NativeFailure } = { failure: { stage: 'native', code: 5, index: 0 } };

export function spawnHelper(
  spec: Buffer, fds: HelperFds, mode: HelperMode, stateDirFd: number | null, preJoin: readonly number[] = [], onHooks?: (pid: number) => void,
  holdSpec = false,
): Helper {
  const base = 3 + fds.preserveFds;
  const { args, slots } = helperCall(fds, mode, stateDirFd, preJoin);
  const stdio = slots.map((s, i) => (s === null ? 'pipe' : i < 3 ? 'inherit' : s));
  // Required here: the calls that start no helper (state, kill, delete) do not load node:child_process.
  const { spawn } = require('node:child_process') as typeof import('node:child_process');
  const child = spawn(OCI_INIT_PATH, args, { stdio, detached: mode !== 'detach' });
  const specPipe = child.stdio[base] as NodeJS.WritableStream;
  // Held, the helper is a process without a container yet: one a systemd scope can start with (systemd.ts).
  if (holdSpec) specPipe.on('error', () => undefined);
  else specPipe.end(spec);
  const report = child.stdio[base + 1] as NodeJS.ReadableStream;
  let text = '';
  let resolveStart!: (v: { pid: number } | { failure: NativeFailure }) => void;
  let resolveEnd!: (v: number | null) => void;
  const started = new Promise<{ pid: number } | { failure: NativeFailure }>((r) => (resolveStart = r));
  const ended = new Promise<number | null>((r) => (resolveEnd = r));
  let status: number | null = null;
  let hooksSeen = false;
  const take = () => {
    // Before the start's outcome, the process may say it waits for the hooks before its pivot.
    const lines = text.split('\n').slice(0, -1);
    const hooks = lines.find((l) => l.startsWith('hooks '));
    if (hooks && !hooksSeen) {
      hooksSeen = true;
      onHooks?.(Number(hooks.slice(6)));
    }
    const start = startOf(lines);
    if (start) resolveStart(start);
    const st = /status (-?\d+)/.exec(text);
    if (st) status = Number(st[1]);
  };
  report.on('data', (d: Buffer) => {
    text += d.toString();
    take();
  });
  child.on('error', (e) => {
    resolveStart({ failure: { stage: 'spec', code: (e as NodeJS.ErrnoException).errno ? -(e as NodeJS.ErrnoException).errno! : 2, index: 0 } });
    resolveEnd(null);
  });
  let finished = false;
  let exited = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    take();
    // the helper died before a word: its failure is a native one
    resolveStart(DIED);
    resolveEnd(status);
    (report as NodeJS.ReadableStream & { destroy(): void }).destroy();
  };
  // Its last line may still be in the pipe at its exit: taken as soon as it comes, or at the pipe's end.
  report.on('data', () => {
    if (exited && status !== null) finish();
  });
  report.on('end', () => {
    if (exited) finish();
  });
  // Not 'close': the container's process holds copies of the pipes until its exec.
  child.on('exit', () => {
    exited = true;
    // The pipe's end is not awaited alone: a process of the container's may still hold it.
    if (mode !== 'detach' && status === null) setTimeout(finish, 20);
    else setImmediate(finish);
  });
  return { child, started, ended, relaysTerminal: typeof mode !== 'string', releaseSpec: () => holdSpec && specPipe.end(spec) };
}

interface SyncResult {
  status: number | null;
  /** a negative errno where the helper could not be started */
  error?: number;
}

/**
 * spawnSync without node:child_process: its binding, where this Node
 * offers it (loading child_process with its streams and net costs about
 * 5 ms, a tenth of a create). The public call otherwise, and where
 * --pending-deprecation (or NODE_PENDING_DEPRECATION=1) would make
 * process.binding print a warning.
 */
function spawnSyncFds(file: string, args: string[], fds: number[]): SyncResult {
  const flags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  let binding: { spawn(o: object): SyncResult } | null = null;
  if (!flags.includes('--pending-deprecation') && process.env.NODE_PENDING_DEPRECATION !== '1') {
    try {
      binding = (process as unknown as { binding(name: string): typeof binding }).binding('spawn_sync');
    } catch {
      // not offered by this Node
    }
  }
  if (binding) {
    const envPairs = Object.entries(process.env).map(([k, v]) => `${k}=${v}`);
    return binding.spawn({ file, args: [file, ...args], envPairs, stdio: fds.map((fd) => ({ type: 'fd', fd })), detached: false });
  }
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const r = spawnSync(file, args, { stdio: fds });
  return { status: r.status, ...(r.error ? { error: (r.error as NodeJS.ErrnoException).errno ?? -5 } : {}) };
}

/**
 * 'detach' with nothing for tsns-oci to do while the helper works (no
 * hooks, no systemd scope): the helper is run to its end, its spec and its
 * report in files of `dir` unlinked at once. Pipes would not do: the
 * container's process holds a copy of the report's until its exec, so the
 * pipe's end comes only at `start`.
 */
export function runHelperToEnd(spec: Buffer, fds: HelperFds, dir: string, stateDirFd: number, preJoin: readonly number[]): Helper {
  const { args, slots } = helperCall(fds, 'detach', stateDirFd, preJoin);
  const scratch = (name: string) => {
    const path = join(dir, `.${name}.${process.pid}`);
    const fd = openSync(path, 'w+', 0o600);
    unlinkSync(path);
    return fd;
  };
  const specFd = scratch('spec');
  let reportFd = -1;
  try {
    reportFd = scratch('report');
    writeSync(specFd, spec, 0, spec.length, 0);
    const filled = slots.map((s, i) => s ?? (i === 3 + fds.preserveFds ? specFd : reportFd));
    const r = spawnSyncFds(OCI_INIT_PATH, args, filled);
    let started: { pid: number } | { failure: NativeFailure };
    if (r.error) started = { failure: { stage: 'spec', code: -r.error, index: 0 } };
    else {
      const buf = Buffer.alloc(256);
      const n = readSync(reportFd, buf, 0, buf.length, 0);
      started = startOf(buf.subarray(0, n).toString().split('\n').slice(0, -1)) ?? DIED;
    }
    return { child: null, started: Promise.resolve(started), ended: Promise.resolve(null), relaysTerminal: false, releaseSpec: () => undefined };
  } finally {
    closeSync(specFd);
    if (reportFd >= 0) closeSync(reportFd);
  }
}
