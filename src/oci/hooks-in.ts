/**
 * createContainer hooks, which run in the container's namespaces before
 * its pivot: each is started by tsns-oci-init with the shim, joining every
 * namespace of the container's that is not ours (runc runs them in its
 * init, which is in all of them) as root of the container's user namespace,
 * with the state on its stdin, and in the container's cgroups (runc's init
 * is in them by then, and its hooks with it); a timeout kills it.
 * (startContainer runs in
 * the container's process itself: native/oci-hook.c.)
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

/** The fds of the container's namespaces that are not ours, of these types, in join order. */
export function containerNamespaces(pid: number, types: readonly string[]): { type: number; fd: number }[] {
  const out: { type: number; fd: number }[] = [];
  for (const t of types) {
    const proc = NAMESPACES.find((n) => n.name === t)!.proc;
    const path = `/proc/${pid}/ns/${proc}`;
    if (readlinkSync(path) === readlinkSync(`/proc/self/ns/${proc}`)) continue;
    out.push({ type: flag(t), fd: openSync(path, constants.O_RDONLY) });
  }
  return out;
}

/** The order the shim joins them in: the user namespace first, for the rights to the rest; the mount namespace last. */
const JOIN_ORDER = ['user', 'pid', 'cgroup', 'ipc', 'uts', 'net', 'mount'];

/**
 * `env` is the container process's, for a hook without "env" of its own
 * (runc's inherit its init's); `cgroups` the directories of the container's
 * cgroups (none: it has none of its own, the hook stays in ours).
 */
export async function runHooksInContainer(
  name: HookName, hooks: readonly OciHook[] | undefined, hs: HookState, s: Pick<ContainerState, 'id' | 'pid'> & { root?: string }, env: readonly string[] = [],
  cgroups: readonly string[] = [],
): Promise<void> {
  for (const [i, h] of (hooks ?? []).entries()) {
    const ns = containerNamespaces(s.pid, JOIN_ORDER);
    const procs: number[] = [];
    try {
      for (const d of cgroups) procs.push(openSync(join(d, 'cgroup.procs'), constants.O_WRONLY));
    } catch (e) {
      for (const n of [...ns.map((x) => x.fd), ...procs]) closeSync(n);
      throw hookFailure(name, i, h, `could not join the container's cgroup: ${(e as Error).message}`, '');
    }
    const ownUserNs = ns.some((n) => n.type === flag('user'));
    // The user and pid namespaces tsns-oci-init joins itself, so that the hook it starts is in that pid namespace with no middle process (whose status would be the one seen).
    const pre = ns.filter((n) => n.type === flag('user') || n.type === flag('pid'));
    const stateFile = join(s.root ? dirOf(s.root, s.id) : '/tmp', `${name}-${i}.json`);
    writeFileSync(stateFile, JSON.stringify(hs), { mode: 0o600 });
    const input = openSync(stateFile, constants.O_RDONLY);
    const fds = { ours: [] as number[], preserveFds: 0 };
    const fd = fdMapper(fds);
    for (const n of pre) fd(n.fd);
    const spec = {
      ...BARE_LAUNCH, joins: ns.filter((n) => !pre.includes(n)).map((n) => ({ type: n.type, fd: fd(n.fd), fromTarget: false })), file: h.path, argv: h.args.length ? h.args : [h.path],
      env: h.env ?? [...env], searchPath: '/usr/sbin:/usr/bin:/sbin:/bin', stdio: [fd(input)], inheritFds: false, cgroupProcs: procs.map(fd),
      // root of the container's user namespace, as runc's init is before it takes the process's identity
      ...(ownUserNs ? { uid: 0, gid: 0 } : {}),
    };
    const helper = spawnHelper(encodeSpec(spec), fds, 'wait', null, pre.map((n) => n.fd));
    const started = await helper.started;
    for (const n of [...ns.map((x) => x.fd), ...procs, input]) closeSync(n);
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
