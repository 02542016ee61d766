/**
 * prestart, createRuntime and createContainer at runc's point: the
 * container's namespaces and mounts exist and its pivot_root is still to
 * come. The process says "hooks PID" on the helper's report pipe and reads
 * a byte from a pipe of ours (native/oci.c hooks_pause); we run the hooks
 * and write that byte, or close the pipe when one failed, and it ends.
 */
import { closeSync, writeSync } from 'node:fs';
import { pipe } from '../native';
import type { OciConfig } from './config';
import { runHooks, type HookState } from './hooks';
import { runHooksInContainer } from './hooks-in';

export interface PausedHooks {
  /** the read end, to hand to the helper */
  goFd: number;
  /**
   * run the three hooks for the paused process, then let it go on (or, on a
   * failure, end it); `cgroups`, the container's cgroup directories, are
   * createContainer's (prestart and createRuntime stay in ours, as runc's)
   */
  run(pid: number, state: HookState, root: string, cgroups?: readonly string[]): Promise<void>;
  /** the write end closed, wherever the start got to */
  close(): void;
}

/** null where the config has none of the three: then the process does not stop. */
export function pausedHooks(config: OciConfig, opened: number[]): PausedHooks | null {
  const h = config.hooks;
  if (!h.prestart?.length && !h.createRuntime?.length && !h.createContainer?.length) return null;
  const [r, w] = pipe();
  opened.push(r);
  let write: number | null = w;
  const close = () => {
    if (write !== null) closeSync(write);
    write = null;
  };
  return {
    goFd: r,
    close,
    async run(pid, state, root, cgroups = []) {
      try {
        runHooks('prestart', h.prestart, state);
        runHooks('createRuntime', h.createRuntime, state);
        await runHooksInContainer('createContainer', h.createContainer, state, { id: state.id, pid, root }, config.process.env, cgroups);
        writeSync(write!, 'g');
      } finally {
        close();
      }
    },
  };
}
