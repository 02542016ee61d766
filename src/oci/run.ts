/**
 * run: create, start, and in the foreground wait for the container's end
 * (tsns-oci-init stays its parent and forwards signals; tsns-oci forwards
 * its own to the helper), then delete it; the exit status is the
 * container's. With --detach it is create + start.
 */
import { create, type CreateOptions, type Globals } from './create';
import { destroy, start } from './lifecycle';
import { readState } from './state';

const FORWARD: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

export interface RunStatus {
  code: number;
  signal: number | null;
}

export async function run(g: Globals, o: CreateOptions, detach: boolean, keep: boolean): Promise<RunStatus> {
  const { state, helper } = await create(g, o, detach ? 'detach' : 'wait');
  const forward = (sig: NodeJS.Signals) => {
    try {
      // The pty's size follows the caller's terminal; the kernel tells the container.
      if (sig === 'SIGWINCH' && helper.relaysTerminal) helper.child?.kill(sig);
      else process.kill(state.pid, sig);
    } catch {
      // ended meanwhile
    }
  };
  if (!detach) for (const s of FORWARD) process.on(s, forward);
  try {
    await start(g, o.id);
  } catch (e) {
    await destroy(g, readState(g.root, o.id));
    throw e;
  }
  if (detach) {
    await helper.ended;
    return { code: 0, signal: null };
  }
  const st = await helper.ended;
  for (const s of FORWARD) process.off(s, forward);
  if (!keep) await destroy(g, readState(g.root, o.id));
  if (st === null) return { code: 255, signal: null };
  if (st & 0x7f) return { code: 128 + (st & 0x7f), signal: null };
  return { code: (st >> 8) & 0xff, signal: null };
}
