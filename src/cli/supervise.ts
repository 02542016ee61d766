/**
 * The CLI's side of running a command: hand the wait to native/monitor.c,
 * and pass the command the bytes of its arguments and environment exactly.
 */
import { closeSync, readFileSync } from 'node:fs';
import type { LifecyclePlan } from '../plan/lifecycle';
import type { ProcessOptions, RunResult } from '../launch';
import { loadedCgroups } from '../cgroup/lazy';
import { blockMonitorSignals, execMonitor, preload, reclaimTty } from '../native';
import { trace, TRACE } from './trace';

/**
 * Start the command, then hand the wait to native/monitor.c (an exec in
 * place: same pid, the command still our child), so that a long-running
 * command is watched by a megabyte rather than a Node process. Where that
 * exec fails, Node waits as before.
 */
export async function supervised(start: (opts: ProcessOptions) => Promise<RunResult>, opts: ProcessOptions, life?: LifecyclePlan): Promise<RunResult> {
  const forward = opts.forwardSignals ?? false;
  if (!forward) {
    // As `unshare --fork` does: the terminal's ^C and a plain kill are the command's to handle.
    const ignore = () => {};
    process.on('SIGINT', ignore);
    process.on('SIGTERM', ignore);
  }
  // process.uptime, not performance: the performance global loads perf_hooks (milliseconds).
  let t = process.uptime();
  preload();
  trace('ffi', (process.uptime() - t) * 1e3);
  blockMonitorSignals(forward);
  t = process.uptime();
  const result = await start({
    // As unshare, nsenter and bwrap: the command gets the fds tsns's caller handed it.
    inheritFds: true,
    onStart: (pid) => {
      trace('clone-exec', (process.uptime() - t) * 1e3);
      // As bwrap's monitor: the sandbox's fds are not ours to hold (a sync fd
      // would never close; the shim closed the info and userns-block fds); the
      // status fd gets its last object from the monitor.
      for (const fd of life ? [life.syncFd, life.blockFd] : []) if (fd !== null && fd > 2) closeQuietly(fd);
      const status = life?.jsonStatusFd ?? null;
      const words = [...(loadedCgroups()?.takeMonitorWords(pid) ?? []), ...(status === null ? [] : [`json-status=${status}`])];
      execMonitor(pid, forward, TRACE, words.length ? words : undefined);
    },
  });
  reclaimTty();
  return result;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // not open here (it was never ours)
  }
}

/**
 * Our own arguments as the kernel has them. Node decodes argv as UTF-8, so
 * bytes that are not survive only here; `args` must be the tail of our argv.
 */
function argumentBytes(args: readonly string[]): Buffer[] | undefined {
  let raw: Buffer;
  try {
    raw = readFileSync('/proc/self/cmdline');
  } catch {
    return undefined;
  }
  const all: Buffer[] = [];
  for (let at = 0; at < raw.length;) {
    const end = raw.indexOf(0, at);
    all.push(raw.subarray(at, end < 0 ? raw.length : end));
    at = end < 0 ? raw.length : end + 1;
  }
  const tail = all.slice(all.length - args.length);
  // Only when they are the same arguments (not, say, main() called by a program).
  if (tail.length !== args.length || tail.some((b, i) => b.toString() !== args[i])) return undefined;
  return tail;
}

// Node decodes argv and the environment as UTF-8 and puts U+FFFD where that
// fails; without one, the strings are the bytes and /proc need not be read.
const LOSSY = '\uFFFD';

/**
 * The command's bytes: the operands are the tail of the subcommand's
 * arguments, unless words read by --args moved them (`fromArgv` false).
 */
export function commandBytes(args: readonly string[], command: readonly string[], fromArgv: boolean): { argvBytes?: Buffer[]; environBytes: boolean } {
  const lossy = fromArgv && args.some((a) => a.includes(LOSSY));
  const bytes = lossy ? argumentBytes(args)?.slice(args.length - command.length) : undefined;
  const env = process.env;
  const environBytes = Object.keys(env).some((k) => k.includes(LOSSY) || env[k]!.includes(LOSSY));
  return { ...(bytes && command.length ? { argvBytes: bytes } : {}), environBytes };
}
