/**
 * For the cgroup tests: tsns as a process whose pid is known (the cgroups
 * it makes are named after it), the host's cgroup files read back, every
 * hierarchy walked for leftovers, and a busybox bundle for runc.
 */
import { execa, type Options, type ResultPromise } from 'execa';
import { mkdirSync, readdirSync, readFileSync, rmdirSync, symlinkSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { detectLayout, hierarchyOf, type CgroupLayout } from '../../src/cgroup/detect';
import { IS_ROOT, ROOT, USER, type Mode } from './helpers';

export const LAYOUT: CgroupLayout = detectLayout();

/**
 * A variant that only a layout of another kind has (a v1 devices
 * controller, a v2 hierarchy, hugetlb on a hybrid's v2 side): not a
 * missing feature, so it is no failure on CI either; it says so.
 */
/**
 * Whether a new v1 blkio cgroup has a weight file: blkio.weight (CFQ's) or
 * blkio.bfq.weight (BFQ's). A kernel with neither scheduler (CFQ is gone
 * since Linux 5.0, and BFQ may be left out) has none, and runc and tsns
 * both fail a block I/O weight there (ENOENT). Root only (it makes a
 * cgroup); true where blkio is not a v1 hierarchy.
 */
export function blkioWeightOnV1(): boolean {
  const h = hierarchyOf(LAYOUT, 'blkio', true);
  if (!h || h.version !== 1) return true;
  const probe = join(h.mountpoint, `tsns-e2e-weight-${process.pid}`);
  try {
    mkdirSync(probe);
    return ['blkio.weight', 'blkio.bfq.weight'].some((f) => existsSync(join(probe, f)));
  } catch {
    return false;
  } finally {
    try {
      rmdirSync(probe);
    } catch {
      // not made
    }
  }
}

/** The block I/O weight where this kernel has it; null (said once) where it has not. */
export const BLKIO_WEIGHT = IS_ROOT && !blkioWeightOnV1() ? null : 300;
if (BLKIO_WEIGHT === null) console.warn('cgroup tests: no block I/O weight is set: this kernel\'s blkio cgroups have no blkio.weight or blkio.bfq.weight (no CFQ or BFQ I/O scheduler)');

export function onThisLayout(ok: boolean, what: string): boolean {
  if (!ok) console.warn(`not on this machine's cgroup layout (${LAYOUT.mode}): ${what}`);
  return ok;
}

/** tsns started as a process (not awaited): its pid names the cgroups it makes. */
export function startTsns(mode: Mode, args: readonly string[], opts: Options = {}): ResultPromise {
  const bin = mode === 'user' && IS_ROOT ? join(inject('stagedRoot'), 'bin', 'tsns.js') : join(ROOT, 'bin', 'tsns.js');
  const options: Options = { reject: false, cwd: '/', timeout: 30_000, ...(opts.stdio === undefined ? { stdin: 'ignore' as const } : {}), ...opts };
  const command = [process.execPath, bin, ...args];
  if (mode === 'user' && IS_ROOT) {
    return execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...command], options);
  }
  return execa(command[0]!, command.slice(1), options);
}

/** Resolves with the output so far once it matches `re`. */
export function outputMatching(p: ResultPromise, re: RegExp, stream: 'stdout' | 'stderr' = 'stdout'): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const s = p[stream]!;
    const onData = (d: Buffer) => {
      text += d.toString();
      if (re.test(text)) {
        s.off('data', onData);
        resolve(text);
      }
    };
    s.on('data', onData);
    p.then(() => reject(new Error(`ended before printing ${re}: ${JSON.stringify(text)}`)), reject);
  });
}

/** /proc/PID/cgroup's lines as controller → path ('' for v2). */
export function parseCgroupFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.trim().split('\n')) {
    const [, ctrls, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (ctrls === '') out[''] = path;
    else for (const c of ctrls!.split(',')) out[c] = path;
  }
  return out;
}

/**
 * A controller's path in parseCgroupFile()'s result ('' for v2); a clear
 * error, with what there was, when the process has no such line (a
 * command that failed printed nothing, or the hierarchy is not there).
 */
export function pathIn(cgroupOf: Record<string, string>, controller: string): string {
  const path = cgroupOf[controller];
  if (path === undefined) {
    throw new Error(`no ${controller === '' ? 'v2 (0::)' : controller} line in the /proc/PID/cgroup read: ${JSON.stringify(cgroupOf)}`);
  }
  return path;
}

/**
 * The cgroup path every hierarchy here is mounted from: '/' on a host, a
 * container's own cgroup where it sees only its subtree of the host's
 * hierarchies (v1 without a cgroup namespace); null when they differ. An
 * absolute cgroup path can reach only what lies below it.
 */
export function mountRoot(): string | null {
  const roots = new Set(LAYOUT.hierarchies.map((h) => h.root));
  return roots.size === 1 ? [...roots][0]! : null;
}

/** An absolute cgroup path for `name` that this machine's mounts show: /NAME below the root they are mounted from. */
export function visiblePath(name: string): string {
  const root = mountRoot();
  if (root === null) throw new Error(`the cgroup hierarchies are mounted from different roots: ${LAYOUT.hierarchies.map((h) => `${h.mountpoint} ${h.root}`).join(', ')}`);
  return `${root === '/' ? '' : root}/${name}`;
}

/** Our own path in a controller's hierarchy ('' for v2), '' for the root: a relative cgroup goes below it. */
export function ownPrefix(controller: string): string {
  const h = controller === '' ? LAYOUT.v2 : hierarchyOf(LAYOUT, controller);
  return !h || h.own === '/' ? '' : h.own;
}

/** The host's file of a controller's cgroup, as a process's /proc/PID/cgroup names it. */
export function hostFile(cgroupOf: Record<string, string>, controller: string, file: string): string {
  const h = controller === '' ? LAYOUT.v2 : hierarchyOf(LAYOUT, controller);
  if (!h) throw new Error(`no hierarchy here has the ${controller} controller (${LAYOUT.mode} layout)`);
  const path = pathIn(cgroupOf, controller === '' ? '' : h.controllers[0]!);
  const rel = h.root === '/' ? path : path.slice(h.root.length);
  return join(h.mountpoint, rel, file);
}

export function readHost(cgroupOf: Record<string, string>, controller: string, file: string): string {
  return readFileSync(hostFile(cgroupOf, controller, file), 'utf8').trim();
}

/**
 * Every cgroup directory in every hierarchy whose name is one of ours:
 * tsns-<pid>-<n> of the given pids, or a name given.
 */
export function leftovers(pids: readonly number[], names: readonly string[] = []): string[] {
  const mine = (name: string) => names.includes(name) || pids.some((p) => name.startsWith(`tsns-${p}-`));
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 8) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (mine(e.name)) found.push(join(dir, e.name));
      walk(join(dir, e.name), depth + 1);
    }
  };
  for (const h of LAYOUT.hierarchies) walk(h.mountpoint, 0);
  return found;
}

/** A busybox root filesystem and `runc spec`'s config.json, with these args and resources. */
export function busyboxBundle(dir: string, args: readonly string[], resources: unknown, cgroupsPath: string): string {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'sys', 'dev', 'tmp']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const tool of ['sh', 'sleep', 'cat', 'true', 'head', 'tail']) {
    if (!existsSync(join(rootfs, 'bin', tool))) symlinkSync('busybox', join(rootfs, 'bin', tool));
  }
  const config = {
    ociVersion: '1.0.2-dev',
    process: { terminal: false, user: { uid: 0, gid: 0 }, args, env: ['PATH=/bin'], cwd: '/', noNewPrivileges: true },
    root: { path: 'rootfs', readonly: true },
    hostname: 'runc',
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
    linux: {
      resources,
      cgroupsPath,
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [], readonlyPaths: [],
    },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 1));
  return dir;
}
