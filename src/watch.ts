/**
 * Hearing that a command ended, without blocking the event loop or a libuv
 * pool thread: SIGCHLD on the main thread, the shim's watcher thread (a
 * pidfd per command) elsewhere, since Node delivers signals to no other.
 */
import { TsnsError } from './errors';
import type { RunResult } from './launch';
import * as native from './native';
import { closeFd, Socket } from './stdio';
import { decodeWaitStatus } from './wire';

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

export function isMainThread(): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  mainThread ??= (require('node:worker_threads') as typeof import('node:worker_threads')).isMainThread;
  return mainThread;
}

/** Reap whatever ended; once nothing is left, let the program (or worker) exit. */
export function reap(): void {
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

/** Be ready to hear of a command ending; call before it starts. */
export function watchChildren(): Watching {
  if (teardown) {
    clearImmediate(teardown);
    teardown = undefined;
  }
  watching ??= isMainThread() ? watchSignal() : watchNotices();
  return watching;
}

/** Resolves when `pid` (started after watchChildren()) has ended. */
export function waitFor(pid: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    waiting.set(pid, (status) => {
      if (status < 0) reject(new TsnsError(`cannot wait for pid ${pid}: errno ${-status}`, { stage: 'wait', code: -status }));
      else resolve(decodeWaitStatus(pid, status));
    });
  });
}
