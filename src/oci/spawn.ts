/**
 * Starting tsns-oci-init (native/oci-init.c) with a spec and the fds it
 * names: ours at fixed places of its fd table (after stdio and the
 * --preserve-fds ones), the spec on one pipe, its report on another.
 */
import type { ChildProcess } from 'node:child_process';
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
  child: ChildProcess;
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

export function spawnHelper(
  spec: Buffer, fds: HelperFds, mode: HelperMode, stateDirFd: number | null, preJoin: readonly number[] = [], onHooks?: (pid: number) => void,
  holdSpec = false,
): Helper {
  const base = 3 + fds.preserveFds;
  const stdio: ('inherit' | 'pipe' | number)[] = ['inherit', 'inherit', 'inherit'];
  for (let i = 0; i < fds.preserveFds; i++) stdio.push(3 + i);
  stdio.push('pipe', 'pipe', ...fds.ours);
  const args = [String(base), String(base + 1), typeof mode === 'string' ? mode : `tty:${mode.tty.sock},${mode.tty.host}`];
  const helperFd = (fd: number) => String(base + 2 + fds.ours.indexOf(fd));
  args.push(stateDirFd === null ? '-' : helperFd(stateDirFd));
  if (preJoin.length) args.push(preJoin.map(helperFd).join(','));
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
    const first = lines.find((l) => !l.startsWith('hooks ') && !l.startsWith('status '));
    if (first !== undefined) {
      const n = Number(first);
      resolveStart(n > 0 ? { pid: n } : { failure: decodeFailure(n < 0 ? n : -(1 << 16 | 5)) });
    }
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
    resolveStart({ failure: { stage: 'native', code: 5, index: 0 } });
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
