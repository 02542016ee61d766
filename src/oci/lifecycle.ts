/** start, state, kill, delete: the container's life after create, as runc has them. */
import { closeSync, openSync, readSync } from 'node:fs';
import { freezerState } from '../cgroup/ops';
import { killCgroup, removeCgroup } from '../cgroup/ops';
import { TsnsError } from '../errors';
import { signalNumber } from '../signals';
import type { Globals } from './create';
import { hookState, runHooks } from './hooks';
import { warn } from './log';
import { alive, dirOf, fifoOf, readState, removeContainerDir, statusOf, unlinkQuiet, withLock, withLockAsync, type ContainerState, type Status } from './state';

export function status(g: Globals, s: ContainerState): Status {
  return statusOf(g.root, s, () => s.cgroup !== null && freezerState(s.cgroup) !== 'thawed');
}

/** runc state's JSON, field for field (pid 0 once stopped). */
export function stateJson(g: Globals, s: ContainerState, owner = ''): Record<string, unknown> {
  const st = status(g, s);
  return {
    ociVersion: s.ociVersion, id: s.id, pid: st === 'stopped' ? 0 : s.pid, status: st, bundle: s.bundle, rootfs: s.rootfs,
    created: s.created, owner, ...(Object.keys(s.annotations).length ? { annotations: s.annotations } : {}),
  };
}

export async function start(g: Globals, id: string): Promise<void> {
  const s = readState(g.root, id);
  const st = status(g, s);
  if (st === 'stopped') throw new TsnsError('cannot start a container that has stopped', { stage: 'plan', hint: `'tsns-oci delete ${id}', then create it again` });
  if (st === 'running') throw new TsnsError('cannot start an already running container', { stage: 'plan' });
  if (st !== 'created') throw new TsnsError(`cannot start a container in the ${st} state`, { stage: 'plan', hint: st === 'paused' ? `'tsns-oci resume ${id}' first` : undefined });
  await withLockAsync(g.root, id, async () => {
    // The process waits in its open(O_WRONLY) of the fifo: ours lets it on, and its byte says it went.
    const fd = openSync(fifoOf(g.root, id), 'r');
    const buf = Buffer.alloc(1);
    const n = readSync(fd, buf, 0, 1, null);
    closeSync(fd);
    unlinkQuiet(fifoOf(g.root, id));
    if (n !== 1) throw new TsnsError('cannot start the container: its process ended before it was started', { stage: 'exec-fifo' });
    // Its startContainer hooks run now, in it, before the command (native/oci-hook.c); a failed one ends it
    // with status 1 and start has succeeded, as runc's does.
  });
  try {
    runHooks('poststart', s.hooks.poststart, hookState(s, 'running'));
  } catch (e) {
    // runc: a failed poststart hook ends the container
    kill(g, id, 'SIGKILL', false);
    throw e;
  }
}

export function parseSignal(text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : signalNumber(text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`);
  if (n === undefined || n <= 0 || n > 64) throw new TsnsError(`unknown signal "${text}"`, { stage: 'option', hint: 'a name (TERM, SIGKILL) or a number' });
  return n;
}

export function kill(g: Globals, id: string, signal: string, all: boolean): void {
  const s = readState(g.root, id);
  const sig = parseSignal(signal);
  if (all && s.cgroup) {
    killCgroup(s.cgroup, sig);
    return;
  }
  if (!alive(s)) throw new TsnsError('container not running', { stage: 'plan', hint: `'tsns-oci state ${id}' says stopped` });
  try {
    process.kill(s.pid, sig);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code !== 'ESRCH') throw new TsnsError(`cannot signal the container: ${err.message}`, { stage: 'plan' });
  }
}

export async function destroy(g: Globals, s: ContainerState): Promise<void> {
  if (alive(s)) {
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  if (s.cgroup?.unit) {
    // --systemd-cgroup's: the unit stopped through systemd, then what is left removed
    const { stopScope } = await import('./systemd');
    await stopScope(s.cgroup, s.rootless);
  } else if (s.cgroup) {
    try {
      removeCgroup(s.cgroup, s.cgroupFound);
    } catch (e) {
      warn(e instanceof Error ? e.message : String(e));
    }
  }
  removeContainerDir(g.root, s.id);
  try {
    runHooks('poststop', s.hooks.poststop, hookState({ ...s, pid: 0 }, 'stopped'));
  } catch (e) {
    warn(e instanceof Error ? e.message : String(e));
  }
}

export async function remove(g: Globals, id: string, force: boolean): Promise<void> {
  let s: ContainerState;
  try {
    s = readState(g.root, id);
  } catch (e) {
    // --force on a container that is not there is no error, as with runc
    if (force && e instanceof TsnsError) {
      removeContainerDir(g.root, id);
      return;
    }
    throw e;
  }
  withLock(g.root, id, () => {
    const st = status(g, s);
    if (st !== 'stopped' && st !== 'created' && !force) {
      throw new TsnsError(`cannot delete container ${id} that is not stopped: ${st}`, { stage: 'plan', hint: `'tsns-oci delete --force ${id}' kills it first` });
    }
  });
  await destroy(g, s);
}

export { dirOf };
