/**
 * tsns-oci's cgroups beside runc's, on the same `runc spec` bundle and on
 * this machine's own layout (hybrid here: v1 controllers plus cgroup2 at
 * /sys/fs/cgroup/unified, which crun refuses): linux.resources and
 * linux.cgroupsPath read back from the host's cgroup files, update, pause
 * and resume (the process's state in /proc and the freezer's), events
 * --stats in runc's JSON shape, ps, kill --all and delete removing the
 * cgroup from every hierarchy. runc runs first; what tsns-oci shows is
 * compared with what runc showed. Rootless on cgroup v1: no cgroup when no
 * limits are asked, and one line when limits are asked that cannot be set.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hierarchyOf } from '../../src/cgroup/detect';
import { IS_ROOT, USER } from './helpers';
import { LAYOUT, leftovers, onThisLayout, parseCgroupFile } from './cgroup-lib';
import { busyboxRootfs, enginesPresent, rmTree, runcSpec, runtimesUnderTest, waitFor, workDir, type Runtime } from './oci-lib';

const RUNTIMES = runtimesUnderTest().map((rt) => [rt.name, rt] as [string, Runtime]);
const missing = enginesPresent('runc');
if (missing) console.warn(`skipping tsns-oci's cgroups beside runc's: they ${missing}`);
if (!IS_ROOT) console.warn("skipping tsns-oci's cgroups as root beside runc's: only root can make cgroups on this machine's v1 hierarchies");

const PARENT = `tsns-e2e-oci-${process.pid}`;
const MiB = 1 << 20;

/** What one runtime showed, by test: runc's first, then the others compared with it. */
const seen: Record<string, Record<string, unknown>> = {};
function sameAsRunc(what: string, rt: Runtime, value: unknown): void {
  const byRuntime = (seen[what] ??= {});
  byRuntime[rt.name] = value;
  if (rt.name !== 'runc' && 'runc' in byRuntime) expect(value, `${rt.name} beside runc: ${what}`).toEqual(byRuntime.runc);
}

interface Call {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A runtime call with real files for stdio (a created container keeps the
 * stdio it was given until it starts: a pipe would never close). `user`:
 * as 65534, with HOME and XDG_RUNTIME_DIR in `home`.
 */
function oci(dir: string, rt: Runtime, root: string, args: readonly string[], o: { stdin?: string; user?: string } = {}): Call {
  const n = readdirSync(dir).length;
  const [out, err, inp] = ['out', 'err', 'in'].map((s) => join(dir, `.${s}-${n}`));
  writeFileSync(inp!, o.stdin ?? '');
  const fds = [openSync(inp!, 'r'), openSync(out!, 'w'), openSync(err!, 'w')];
  let argv = [o.user ? rt.userPath() : rt.path, '--root', root, ...args];
  if (o.user) {
    const env = ['env', `HOME=${o.user}`, `XDG_RUNTIME_DIR=${join(o.user, 'xdg')}`];
    argv = IS_ROOT ? ['setpriv', `--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...env, ...argv] : [...env, ...argv];
  }
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: fds, timeout: 60_000 });
  for (const fd of fds) closeSync(fd);
  return { code: r.status ?? -1, stdout: readFileSync(out!, 'utf8'), stderr: readFileSync(err!, 'utf8') };
}

function ok(c: Call, what: string): Call {
  expect(c.code, `${what}: ${c.stderr}`).toBe(0);
  return c;
}

/** /proc/PID/stat's state letter (R, S, D, …). */
function procState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

function hierarchyFor(controller: string) {
  return controller === '' ? LAYOUT.v2! : hierarchyOf(LAYOUT, controller, true)!;
}

/**
 * An absolute cgroupsPath as /proc/PID/cgroup shows it: itself on a host;
 * in a container that sees only its own subtree of the host's hierarchy
 * (mounted from its cgroup, no cgroup namespace), below that subtree, where
 * runc puts it.
 */
function shownAs(controller: string, path: string): string {
  const { root } = hierarchyFor(controller);
  return root === '/' || path === root || path.startsWith(`${root}/`) ? path : `${root}${path}`;
}

/** The directory of a cgroup path, as /proc/PID/cgroup shows it, in the hierarchy of `controller` ('' for v2). */
function hostDir(controller: string, path: string): string {
  const h = hierarchyFor(controller);
  const rel = h.root === '/' ? path : path.slice(h.root.length);
  return join(h.mountpoint, rel);
}

const v1 = (c: string) => LAYOUT.hierarchies.some((h) => h.version === 1 && h.controllers.includes(c));

/**
 * The first of `files` that a new cgroup of the hierarchy has (the kernel
 * and its I/O scheduler decide which exist; the root cgroup has none of
 * them): a probe cgroup is made and removed, as root.
 */
function fileOf(controller: string, files: string[]): string | null {
  const h = hierarchyOf(LAYOUT, controller, true);
  if (!h || !IS_ROOT) return null;
  const probe = join(h.mountpoint, `tsns-e2e-probe-${process.pid}`);
  try {
    mkdirSync(probe);
  } catch {
    return null;
  }
  try {
    return files.find((f) => existsSync(join(probe, f))) ?? null;
  } finally {
    rmdirSync(probe);
  }
}

/** The limit files a runtime writes for LIMITS, on this layout: [controller, file]. */
function limitFiles(): [string, string][] {
  const files: [string, string][] = v1('memory') ? [['memory', 'memory.limit_in_bytes'], ['memory', 'memory.soft_limit_in_bytes']] : [['memory', 'memory.max'], ['memory', 'memory.low']];
  files.push(['pids', 'pids.max']);
  files.push(...(v1('cpu') ? [['cpu', 'cpu.shares'], ['cpu', 'cpu.cfs_quota_us'], ['cpu', 'cpu.cfs_period_us']] as [string, string][] : [['cpu', 'cpu.weight'], ['cpu', 'cpu.max']] as [string, string][]));
  files.push(['cpuset', 'cpuset.cpus'], ['cpuset', 'cpuset.mems']);
  const weight = v1('blkio') ? fileOf('blkio', ['blkio.weight', 'blkio.bfq.weight']) : fileOf('io', ['io.bfq.weight', 'io.weight']);
  // (Only root can probe for it; without root the tests that set limits do not run.)
  if (weight !== null) files.push([v1('blkio') ? 'blkio' : 'io', weight]);
  else if (IS_ROOT) onThisLayout(false, 'a block I/O weight file in a new cgroup (blkio.weight, blkio.bfq.weight, io.bfq.weight, io.weight)');
  return files.filter(([c]) => hierarchyOf(LAYOUT, c, true) !== null);
}

const FILES = limitFiles();
const WEIGHT = FILES.some(([c]) => c === 'blkio' || c === 'io');
const LIMITS = {
  memory: { limit: 64 * MiB, reservation: 32 * MiB },
  pids: { limit: 42 },
  cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0', mems: '0' },
  ...(WEIGHT ? { blockIO: { weight: 300 } } : {}),
};

/** What the kernel must show for LIMITS, file by file (v2's cpu.weight is runc's conversion of shares). */
const EXPECTED: Record<string, string> = {
  'memory.limit_in_bytes': String(64 * MiB), 'memory.soft_limit_in_bytes': String(32 * MiB), 'memory.max': String(64 * MiB), 'memory.low': String(32 * MiB),
  'pids.max': '42', 'cpu.shares': '512', 'cpu.cfs_quota_us': '50000', 'cpu.cfs_period_us': '100000', 'cpu.weight': '20', 'cpu.max': '50000 100000',
  'cpuset.cpus': '0', 'cpuset.mems': '0', 'blkio.weight': '300', 'blkio.bfq.weight': '300', 'io.weight': 'default 300', 'io.bfq.weight': 'default 300',
};

/** Every hierarchy's controller name as /proc/PID/cgroup keys it ('' for v2). */
const KEYS = LAYOUT.hierarchies.map((h) => (h.version === 2 ? '' : h.controllers[0]!));

/** The shape of a JSON value: every key path with its type (values differ between two containers; the shape may not). */
function shape(v: unknown, at = ''): string[] {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return Object.entries(v).flatMap(([k, x]) => shape(x, `${at}.${k}`));
  return [`${at}: ${v === null ? 'null' : Array.isArray(v) ? `array of ${[...new Set(v.map((x) => typeof x))].join(',') || 'nothing'}` : typeof v}`];
}

describe.runIf(IS_ROOT && !missing)("tsns-oci's cgroups beside runc's, as root", () => {
  let dir = '';
  let rootfs = '';
  beforeAll(() => {
    dir = workDir('cgroup');
    rootfs = busyboxRootfs(join(dir, 'rootfs'));
  });
  afterAll(() => {
    // runc leaves the levels above a container's cgroup; tsns-oci removes those it made.
    for (const h of LAYOUT.hierarchies) {
      try {
        rmdirSync(join(h.mountpoint, PARENT));
      } catch {
        // not made there, or made and removed already
      }
    }
    expect(leftovers([], [PARENT])).toEqual([]);
    rmTree(dir);
  });

  describe.each(RUNTIMES)('%s', (_name, rt) => {
    let n = 0;
    /** A bundle of its own and an id for each container; the cgroup /PARENT/ID unless `cgroupsPath` says otherwise. */
    function container(args: string[], resources: Record<string, unknown> = {}, cgroupsPath?: string | null) {
      const id = `cg-${rt.name}-${process.pid}-${n++}`;
      const b = join(dir, `bundle-${id}`);
      mkdirSync(b);
      const config = runcSpec(args) as { root: { path: string }; linux: Record<string, unknown> };
      config.root.path = rootfs;
      config.linux.resources = { ...(config.linux.resources as object), ...resources };
      const path = cgroupsPath === undefined ? `/${PARENT}/${id}` : cgroupsPath;
      if (path !== null) config.linux.cgroupsPath = path;
      writeFileSync(join(b, 'config.json'), JSON.stringify(config, null, 2));
      const root = join(dir, `state-${rt.name}`);
      const call = (...a: string[]) => oci(dir, rt, root, a);
      const state = () => JSON.parse(ok(call('state', id), 'state').stdout) as { pid: number; status: string };
      return {
        id, path, call, state,
        create: () => ok(call('create', '--bundle', b, id), `${rt.name} create`),
        /** every hierarchy's cgroup path of the container's process */
        cgroups: () => parseCgroupFile(readFileSync(`/proc/${state().pid}/cgroup`, 'utf8')),
        /** kill and delete whatever happened; then nothing of it may be left in any hierarchy */
        async end() {
          call('kill', id, 'KILL');
          await waitFor(`${rt.name}'s ${id} to stop`, () => call('state', id).code !== 0 || state().status === 'stopped');
          call('delete', '--force', id);
          expect(call('state', id).code, `${rt.name} state after delete`).not.toBe(0);
          expect(leftovers([], [id]), `${rt.name} left cgroups behind`).toEqual([]);
        },
      };
    }

    it('linux.resources and linux.cgroupsPath: the limits read back from the host\'s cgroup files', async () => {
      const c = container(['sleep', '300'], LIMITS);
      try {
        c.create();
        const cg = c.cgroups();
        // Every hierarchy, v1 and v2 alike, has the container at cgroupsPath.
        expect(Object.fromEntries(KEYS.map((k) => [k, cg[k]]))).toEqual(Object.fromEntries(KEYS.map((k) => [k, shownAs(k, c.path!)])));
        const values = Object.fromEntries(FILES.map(([ctl, f]) => [f, readFileSync(join(hostDir(ctl, shownAs(ctl, c.path!)), f), 'utf8').trim()]));
        expect(values).toEqual(Object.fromEntries(Object.keys(values).map((f) => [f, EXPECTED[f]])));
        sameAsRunc('limits', rt, values);
        // runc spec's deny-all, then runc's allows for the default devices: the container can open /dev/null.
        if (v1('devices')) sameAsRunc('device rules', rt, readFileSync(join(hostDir('devices', shownAs('devices', c.path!)), 'devices.list'), 'utf8').trim().split('\n').sort());
      } finally {
        await c.end();
      }
    });

    it('a relative cgroupsPath, and none: under the caller\'s own cgroup in each hierarchy, as runc places them', async () => {
      const own = parseCgroupFile(readFileSync('/proc/self/cgroup', 'utf8'));
      const placed: Record<string, Record<string, string>> = {};
      for (const [what, path] of [['relative', `${PARENT}/rel`], ['none', null]] as const) {
        const c = container(['sleep', '300'], { pids: { limit: 9 } }, path);
        try {
          c.create();
          const cg = c.cgroups();
          const leaf = path ?? c.id;
          for (const k of KEYS) expect(cg[k], `${what} cgroupsPath, ${k || 'v2'}`).toBe(`${own[k] === '/' ? '' : own[k]}/${leaf}`);
          expect(readFileSync(join(hostDir('pids', cg.pids!), 'pids.max'), 'utf8').trim()).toBe('9');
          placed[what] = Object.fromEntries(KEYS.map((k) => [k, cg[k]!.replace(c.id, '<id>')]));
        } finally {
          await c.end();
        }
        if (path !== null) for (const k of KEYS) rmdirQuiet(hostDir(k, `${own[k] === '/' ? '' : own[k]}/${PARENT}`));
      }
      sameAsRunc('relative placement', rt, placed);
    });

    it('update: flags, --resources FILE and --resources - change a running container\'s limits', async () => {
      const c = container(['sleep', '300'], LIMITS);
      try {
        c.create();
        ok(c.call('start', c.id), 'start');
        const read = (ctl: string, f: string) => readFileSync(join(hostDir(ctl, shownAs(ctl, c.path!)), f), 'utf8').trim();
        const mem = v1('memory') ? 'memory.limit_in_bytes' : 'memory.max';
        const steps: Record<string, string>[] = [];
        ok(c.call('update', '--memory', '96M', '--pids-limit', '50', '--cpu-share', '256', '--cpu-quota', '30000', c.id), 'update with flags');
        steps.push({ memory: read('memory', mem), pids: read('pids', 'pids.max'), cpu: v1('cpu') ? `${read('cpu', 'cpu.shares')} ${read('cpu', 'cpu.cfs_quota_us')}` : read('cpu', 'cpu.max') });
        const file = join(dir, `resources-${c.id}.json`);
        writeFileSync(file, JSON.stringify({ memory: { limit: 80 * MiB }, pids: { limit: 60 } }));
        ok(c.call('update', '--resources', file, c.id), 'update --resources FILE');
        steps.push({ memory: read('memory', mem), pids: read('pids', 'pids.max') });
        ok(oci(dir, rt, join(dir, `state-${rt.name}`), ['update', '--resources', '-', c.id], { stdin: JSON.stringify({ pids: { limit: 70 } }) }), 'update --resources -');
        steps.push({ memory: read('memory', mem), pids: read('pids', 'pids.max') });
        expect(steps).toEqual([
          { memory: String(96 * MiB), pids: '50', cpu: v1('cpu') ? '256 30000' : '30000 100000' },
          { memory: String(80 * MiB), pids: '60' },
          { memory: String(80 * MiB), pids: '70' },
        ]);
        expect(c.state().status).toBe('running');
        sameAsRunc('update', rt, steps);
      } finally {
        await c.end();
      }
    });

    it('pause freezes every process (the state in /proc and the freezer\'s), resume thaws them; a created container pauses too', async () => {
      const c = container(['sh', '-c', 'sleep 300 & sleep 300 & wait']);
      const freezer = () => (v1('freezer')
        ? readFileSync(join(hostDir('freezer', shownAs('freezer', c.path!)), 'freezer.state'), 'utf8').trim()
        : `frozen ${/frozen (\d)/.exec(readFileSync(join(hostDir('', shownAs('', c.path!)), 'cgroup.events'), 'utf8'))?.[1]}`);
      try {
        c.create();
        const seenHere: Record<string, unknown> = {};
        ok(c.call('pause', c.id), 'pause of a created container');
        seenHere.createdPaused = [c.state().status, freezer()];
        ok(c.call('resume', c.id), 'resume');
        seenHere.createdResumed = [c.state().status, freezer()];
        ok(c.call('start', c.id), 'start');
        const procs = () => readFileSync(join(hostDir('pids', shownAs('pids', c.path!)), 'cgroup.procs'), 'utf8').trim().split('\n').map(Number);
        await waitFor(`the container's three processes (${procs().length})`, () => procs().length === 3);
        ok(c.call('pause', c.id), 'pause');
        // A task frozen by the v1 freezer shows D (uninterruptible), by v2's cgroup.freeze S.
        seenHere.paused = [c.state().status, freezer(), procs().map(procState).join('')];
        expect(c.call('pause', c.id).code, 'pause of a paused container').not.toBe(0);
        ok(c.call('resume', c.id), 'resume');
        seenHere.resumed = [c.state().status, freezer(), procs().map(procState).join('')];
        expect(c.call('resume', c.id).code, 'resume of a running container').not.toBe(0);
        const thawed = v1('freezer') ? 'THAWED' : 'frozen 0';
        const frozen = v1('freezer') ? 'FROZEN' : 'frozen 1';
        const letter = v1('freezer') ? 'D' : 'S';
        expect(seenHere).toEqual({
          createdPaused: ['paused', frozen], createdResumed: ['created', thawed],
          paused: ['paused', frozen, letter.repeat(3)], resumed: ['running', thawed, 'SSS'],
        });
        // Paused, delete --force still ends it and removes its cgroup (a frozen task dies only once thawed).
        ok(c.call('pause', c.id), 'pause again');
        ok(c.call('delete', '--force', c.id), 'delete --force of a paused container');
        sameAsRunc('pause', rt, seenHere);
      } finally {
        await c.end();
      }
    });

    it('events --stats prints runc\'s JSON, key for key', async () => {
      const c = container(['sleep', '300'], LIMITS);
      try {
        c.create();
        ok(c.call('start', c.id), 'start');
        const out = ok(c.call('events', '--stats', c.id), 'events --stats').stdout;
        expect(out.trim().split('\n')).toHaveLength(1);
        const ev = JSON.parse(out) as { type: string; id: string; data: { pids: { limit: number }; memory: { usage: { limit: number } }; cpuset: { sched_relax_domain_level?: number } } };
        expect([ev.type, ev.id, ev.data.pids.limit, ev.data.memory.usage.limit]).toEqual(['stats', c.id, 42, 64 * MiB]);
        // runc leaves out a zero throttling count or an empty I/O list (omitempty): those keys come and go with the values.
        const comesAndGoes = /^\.(cpu\.throttling|blkio)\./;
        for (const k of shape(ev.data).filter((x) => comesAndGoes.test(x))) expect(k).toMatch(/^\.(cpu\.throttling\.(periods|throttledPeriods|throttledTime)|blkio\.io\w+Recursive): (number|array of .*)$/);
        sameAsRunc('events --stats', rt, shape(ev.data).filter((k) => !comesAndGoes.test(k)).sort());
      } finally {
        await c.end();
      }
    });

    it('events --interval streams stats lines, the first one interval in, as runc\'s ticker', async () => {
      const c = container(['sleep', '300'], { pids: { limit: 11 } });
      try {
        c.create();
        ok(c.call('start', c.id), 'start');
        const root = join(dir, `state-${rt.name}`);
        const p = spawn(rt.path, ['--root', root, 'events', '--interval', '700ms', c.id], { stdio: ['ignore', 'pipe', 'pipe'] });
        const lines: { at: number; line: string }[] = [];
        const t0 = Date.now();
        let buf = '';
        p.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            lines.push({ at: Date.now() - t0, line: buf.slice(0, i) });
            buf = buf.slice(i + 1);
          }
        });
        await waitFor(`${rt.name}'s second stats line`, () => lines.length >= 2);
        p.kill('SIGTERM');
        await new Promise((r) => p.once('close', r));
        const evs = lines.map((l) => JSON.parse(l.line) as { type: string; id: string; data: { pids: { limit: number } } });
        expect(evs.slice(0, 2).map((e) => [e.type, e.id, e.data.pids.limit])).toEqual([['stats', c.id, 11], ['stats', c.id, 11]]);
        // Not at once: the first line comes an interval after the start (less a margin for start-up).
        expect(lines[0]!.at, `${rt.name}: the first stats line`).toBeGreaterThanOrEqual(600);
        sameAsRunc('events --interval', rt, evs.slice(0, 2).map((e) => shape(e.data).filter((k) => !/^\.(cpu\.throttling|blkio)\./.test(k)).sort()));
      } finally {
        await c.end();
      }
    });

    it('unified on a controller of a v1 hierarchy is refused, nothing made', async () => {
      if (!onThisLayout(v1('memory'), 'the memory controller on a v1 hierarchy')) return;
      const c = container(['true'], { unified: { 'memory.high': String(50 * MiB) } });
      const r = c.call('create', '--bundle', join(dir, `bundle-${c.id}`), c.id);
      expect(r.code, `${rt.name} create: ${r.stderr}`).not.toBe(0);
      if (rt.name === 'tsns-oci') expect(r.stderr).toMatch(/^tsns: cannot use unified resource "memory\.high": the memory controller is on cgroup v1 here\nhint: /);
      expect(c.call('state', c.id).code).not.toBe(0);
      expect(leftovers([], [c.id])).toEqual([]);
      sameAsRunc('unified on v1', rt, 'refused');
    });

    it('hugepageLimits read back where the hugetlb controller is; runc refuses them on a hybrid layout\'s v2 hierarchy', async () => {
      const h = hierarchyOf(LAYOUT, 'hugetlb', true);
      if (!onThisLayout(h !== null && existsSync('/sys/kernel/mm/hugepages/hugepages-2048kB'), 'the hugetlb controller and 2 MB pages')) return;
      const c = container(['sleep', '300'], { hugepageLimits: [{ pageSize: '2MB', limit: 4 * MiB }] });
      const onV2Only = h!.version === 2 && LAYOUT.hierarchies.some((x) => x.version === 1);
      try {
        const r = c.call('create', '--bundle', join(dir, `bundle-${c.id}`), c.id);
        if (rt.name === 'runc' && onV2Only) {
          // runc's v1 manager looks for a v1 hugetlb hierarchy and fails; tsns-oci sets the limit where the controller is.
          expect(r.code).not.toBe(0);
          expect(r.stderr).toMatch(/hugetlb/);
          return;
        }
        ok(r, `${rt.name} create`);
        const key = h!.version === 2 ? '' : 'hugetlb';
        const file = h!.version === 2 ? 'hugetlb.2MB.max' : 'hugetlb.2MB.limit_in_bytes';
        expect(readFileSync(join(hostDir(key, shownAs(key, c.path!)), file), 'utf8').trim()).toBe(String(4 * MiB));
      } finally {
        await c.end();
      }
    });

    it('ps lists the container\'s pids, kill --all reaches each of them, delete removes the cgroup in every hierarchy', async () => {
      const c = container(['sh', '-c', 'sleep 300 & sleep 300 & wait; exec sleep 300'], { pids: { limit: 10 } });
      try {
        c.create();
        ok(c.call('start', c.id), 'start');
        const procs = () => readFileSync(join(hostDir('pids', shownAs('pids', c.path!)), 'cgroup.procs'), 'utf8').trim().split('\n').filter(Boolean).map(Number).sort((a, b) => a - b);
        await waitFor(`the container's three processes (${procs().length})`, () => procs().length === 3);
        const json = JSON.parse(ok(c.call('ps', '--format', 'json', c.id), 'ps --format json').stdout) as number[];
        expect([...json].sort((a, b) => a - b)).toEqual(procs());
        const table = ok(c.call('ps', c.id), 'ps').stdout.trim().split('\n');
        const col = table[0]!.trim().split(/\s+/).indexOf('PID');
        expect(col).toBeGreaterThanOrEqual(0);
        expect(table.slice(1).map((l) => Number(l.trim().split(/\s+/)[col])).sort((a, b) => a - b)).toEqual(procs());
        // The shell is PID 1 inside and has no handler: TERM reaches the two sleeps, which die, and not it (it goes on as one sleep).
        ok(c.call('kill', '--all', c.id, 'TERM'), 'kill --all TERM');
        await waitFor('the two sleeps to die of kill --all', () => procs().length === 1);
        ok(c.call('kill', '--all', c.id, 'KILL'), 'kill --all KILL');
        await waitFor('the container to stop', () => c.state().status === 'stopped');
        expect(procs()).toEqual([]);
        ok(c.call('delete', c.id), 'delete');
        // Walk every hierarchy: nothing of it is left, anywhere.
        expect(leftovers([], [c.id])).toEqual([]);
        expect(readdirSync(join(dir, `state-${rt.name}`))).toEqual([]);
        sameAsRunc('ps, kill --all, delete', rt, { psJson: json.length, table: table.length - 1 });
      } finally {
        await c.end();
      }
    });
  });
});

function rmdirQuiet(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    // not there
  }
}

/** Whether 65534 can make a cgroup in `controller`'s v1 hierarchy, where its own cgroup is (no: rootless on v1). */
function userCanMakeV1Cgroups(): boolean {
  const h = LAYOUT.hierarchies.find((x) => x.version === 1 && x.ownDir !== null && !x.controllers.some((c) => c.startsWith('name=')));
  if (!h) return false;
  const probe = join(h.ownDir!, `tsns-e2e-probe-${process.pid}`);
  const r = IS_ROOT
    ? spawnSync('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', 'mkdir', probe])
    : spawnSync('mkdir', [probe]);
  rmdirQuiet(probe);
  return r.status === 0;
}

const V1 = LAYOUT.hierarchies.some((h) => h.version === 1);
const ROOTLESS_V1 = !missing && onThisLayout(V1, 'cgroup v1 hierarchies, where rootless containers get no cgroup') && !userCanMakeV1Cgroups();

describe.runIf(ROOTLESS_V1)('rootless on cgroup v1, beside runc', () => {
  let dir = '';
  let rootfs = '';
  const me = IS_ROOT ? USER : { uid: process.geteuid!(), gid: process.getegid!() };
  beforeAll(() => {
    dir = workDir('cg-rootless', me);
    mkdirSync(join(dir, 'xdg'), { mode: 0o700 });
    if (IS_ROOT) spawnSync('chown', [`${me.uid}:${me.gid}`, join(dir, 'xdg')]);
    rootfs = busyboxRootfs(join(dir, 'rootfs'), me);
  });
  afterAll(() => rmTree(dir));

  /** A rootless bundle: a user namespace mapping the caller to root, only /proc mounted. */
  function rootlessBundle(id: string, resources: Record<string, unknown>): string {
    const b = join(dir, `bundle-${id}`);
    mkdirSync(b);
    const config = runcSpec(['cat', '/proc/self/cgroup']) as { root: { path: string }; mounts: unknown[]; linux: Record<string, unknown> };
    config.root.path = rootfs;
    config.mounts = [{ destination: '/proc', type: 'proc', source: 'proc' }];
    config.linux.namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'user' }];
    config.linux.uidMappings = [{ containerID: 0, hostID: me.uid, size: 1 }];
    config.linux.gidMappings = [{ containerID: 0, hostID: me.gid, size: 1 }];
    config.linux.resources = resources;
    writeFileSync(join(b, 'config.json'), JSON.stringify(config, null, 2));
    chmodSync(b, 0o755);
    return b;
  }

  describe.each(RUNTIMES)('%s', (_name, rt) => {
    const root = () => join(dir, `state-${rt.name}`);

    it('no limits asked: the container runs without a cgroup of its own', async () => {
      const id = `rl-${rt.name}-${process.pid}`;
      const r = oci(dir, rt, root(), ['run', '--bundle', rootlessBundle(id, {}), id], { user: dir });
      expect(r.code, r.stderr).toBe(0);
      // The caller's own cgroups, as 65534 starts it (setpriv moves nothing).
      expect(parseCgroupFile(r.stdout)).toEqual(parseCgroupFile(readFileSync('/proc/self/cgroup', 'utf8')));
      expect(leftovers([], [id])).toEqual([]);
      sameAsRunc('rootless without limits', rt, { code: r.code, cgroup: r.stdout });
    });

    it('limits asked: refused, in one line naming them, and nothing is left', async () => {
      const id = `rl-limits-${rt.name}-${process.pid}`;
      const r = oci(dir, rt, root(), ['run', '--bundle', rootlessBundle(id, { memory: { limit: 64 * MiB }, pids: { limit: 20 } }), id], { user: dir });
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
      if (rt.name === 'tsns-oci') {
        expect(r.code).toBe(125);
        const lines = r.stderr.trim().split('\n');
        expect(lines[0]).toMatch(/^tsns: cannot apply the container's limits \(linux\.resources: memory, pids\) without root: .+ \((EACCES|EPERM|EROFS)\)$/);
        expect(lines.slice(1)).toEqual([expect.stringMatching(/^hint: .*linux\.resources/)]);
      }
      expect(leftovers([], [id])).toEqual([]);
      expect(existsSync(join(root(), id))).toBe(false);
      sameAsRunc('rootless with limits', rt, { failed: r.code !== 0 });
    });
  });
});
