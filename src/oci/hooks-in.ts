/**
 * createContainer and startContainer hooks, which run in the container's
 * namespaces: each is started by tsns-oci-init with the shim, joining the
 * container's user (where it has its own) and mount namespaces, with the
 * state on its stdin; a timeout kills it.
 */
import { closeSync, constants, openSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NAMESPACES } from '../namespaces';
import { BARE_LAUNCH, encodeSpec } from '../wire';
import type { HookName, OciHook } from './config';
import { explainStart } from './explain';
import { hookFailure, type HookState } from './hooks';
import { fdMapper, spawnHelper } from './spawn';
import { dirOf, type ContainerState } from './state';

const flag = (name: string) => NAMESPACES.find((n) => n.name === name)!.flag;

/** The fds of the container's user (when not ours) and mount namespaces, in join order. */
export function containerNamespaces(pid: number, types: readonly string[]): { type: number; fd: number }[] {
  const out: { type: number; fd: number }[] = [];
  for (const t of types) {
    const proc = t === 'mount' ? 'mnt' : t;
    const path = `/proc/${pid}/ns/${proc}`;
    if (readlinkSync(path) === readlinkSync(`/proc/self/ns/${proc}`)) continue;
    out.push({ type: flag(t), fd: openSync(path, constants.O_RDONLY) });
  }
  return out;
}

export async function runHooksInContainer(name: HookName, hooks: readonly OciHook[] | undefined, hs: HookState, s: Pick<ContainerState, 'id' | 'pid'> & { root?: string }): Promise<void> {
  // startContainer runs in the container as its process would (runc's runs in init): its pid namespace too, so that its /proc is its own.
  const types = name === 'startContainer' ? ['user', 'mount', 'pid'] : ['user', 'mount'];
  for (const [i, h] of (hooks ?? []).entries()) {
    const ns = containerNamespaces(s.pid, types);
    const stateFile = join(s.root ? dirOf(s.root, s.id) : '/tmp', `${name}-${i}.json`);
    writeFileSync(stateFile, JSON.stringify(hs), { mode: 0o600 });
    const input = openSync(stateFile, constants.O_RDONLY);
    const fds = { ours: [] as number[], preserveFds: 0 };
    const fd = fdMapper(fds);
    const spec = {
      ...BARE_LAUNCH, joins: ns.map((n) => ({ type: n.type, fd: fd(n.fd), fromTarget: false })), file: h.path, argv: h.args.length ? h.args : [h.path],
      env: h.env, searchPath: '/usr/sbin:/usr/bin:/sbin:/bin', stdio: [fd(input)], inheritFds: false,
    };
    const helper = spawnHelper(encodeSpec(spec), fds, 'wait', null);
    const started = await helper.started;
    for (const n of [...ns.map((x) => x.fd), input]) closeSync(n);
    if ('failure' in started) throw hookFailure(name, i, h, `could not run: ${explainStart(started.failure, null, [h.path]).message}`, '');
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    if (h.timeout !== null) {
      timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(started.pid, 'SIGKILL');
        } catch {
          // ended meanwhile
        }
      }, h.timeout * 1000);
    }
    const st = await helper.ended;
    if (timer) clearTimeout(timer);
    if (timedOut) throw hookFailure(name, i, h, `timed out after ${h.timeout} s`, '');
    if (st === null || st !== 0) throw hookFailure(name, i, h, st === null ? 'ended without a status' : (st & 0x7f) ? `was killed by signal ${st & 0x7f}` : `exited with status ${st >> 8}`, '');
  }
}
