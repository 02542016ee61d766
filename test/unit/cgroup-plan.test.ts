/**
 * Where a cgroup goes and what --dry-run says of it, on each captured
 * layout; the run's cgroup options; runc's events JSON with 64-bit values.
 */
import { describe, expect, it } from 'vitest';
import { describeCgroupPlan, planCgroup, type CgroupPlacement } from '../../src/cgroup/plan';
import { planRunCgroup, type CgroupContext } from '../../src/cgroup/run-plan';
import type { LinuxResources } from '../../src/cgroup/resources';
import { eventJson } from '../../src/cgroup/stats';
import { HYBRID, IN_CGROUPNS, layoutOf, V1_SYSTEMD, V2_SYSTEMD } from './cgroup-fixtures';

const MEM = '/sys/fs/cgroup/memory/process_api/14202edb1968a1d0578190e361cd2fb0';
const create = (name = 'tsns-1-0', parent?: string): CgroupPlacement => ({ kind: 'create', name, ...(parent === undefined ? {} : { parent }) });
const plan = (t: Parameters<typeof layoutOf>[0], resources: LinuxResources, placement: CgroupPlacement, scope: 'needed' | 'all' = 'needed', systemd = false) =>
  planCgroup({ layout: layoutOf(t, systemd), resources, placement, scope });

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('did not throw');
}

describe('cgroup plans', () => {
  it('hybrid: the hierarchies the limits use, and v2, under our own cgroups', () => {
    const p = plan(HYBRID, { memory: { limit: 1 << 20 }, pids: { limit: 5 } }, create());
    expect(p.dirs.map((d) => [d.version, d.dir, d.levels])).toEqual([
      [1, `${MEM}/tsns-1-0`, [`${MEM}/tsns-1-0`]],
      [1, '/sys/fs/cgroup/pids/tsns-1-0', ['/sys/fs/cgroup/pids/tsns-1-0']],
      [2, '/sys/fs/cgroup/unified/tsns-1-0', ['/sys/fs/cgroup/unified/tsns-1-0']],
    ]);
    expect(p.dirs[0]!.path).toBe('/process_api/14202edb1968a1d0578190e361cd2fb0/tsns-1-0');
    expect(p.writes.map((w) => `${w.dir.split('/')[4]} ${w.file}`)).toEqual(['memory memory.limit_in_bytes', 'pids pids.max']);
    expect(p.v2Dir).toBe('/sys/fs/cgroup/unified/tsns-1-0');
    expect(p.oomFile).toBe(`${MEM}/tsns-1-0/memory.oom_control`);
    expect(p.enable).toEqual([]);
  });

  it('an absolute parent is taken from each hierarchy\'s root, a relative one from our own', () => {
    const abs = plan(HYBRID, { memory: { limit: 1 << 20 } }, create('n', '/a/b'));
    expect(abs.dirs[0]).toMatchObject({ path: '/a/b/n', dir: '/sys/fs/cgroup/memory/a/b/n', base: '/sys/fs/cgroup/memory' });
    expect(abs.dirs[0]!.levels).toEqual(['/sys/fs/cgroup/memory/a', '/sys/fs/cgroup/memory/a/b', '/sys/fs/cgroup/memory/a/b/n']);
    const rel = plan(HYBRID, { memory: { limit: 1 << 20 } }, create('n', 'a/./b/'));
    expect(rel.dirs[0]!.levels).toEqual([`${MEM}/a`, `${MEM}/a/b`, `${MEM}/a/b/n`]);
    expect(message(() => plan(HYBRID, {}, create('n', 'a/../../x')))).toMatch(/may not contain '\.\.'/);
  });

  it('an OCI container gets every hierarchy; a joined cgroup is made nowhere', () => {
    const all = plan(HYBRID, {}, { kind: 'path', path: 'ctr' }, 'all');
    expect(all.dirs).toHaveLength(10);
    expect(all.dirs.find((d) => d.controllers.includes('name=systemd'))!.dir).toBe('/sys/fs/cgroup/systemd/ctr');
    const join = plan(HYBRID, {}, { kind: 'join', path: '/x' }, 'all');
    expect(join.dirs.every((d) => d.levels.length === 0)).toBe(true);
  });

  it('v2: the controllers are enabled on the way, and the v2 directory holds every file', () => {
    const p = plan(V2_SYSTEMD, { memory: { limit: 1 << 20 }, pids: { limit: 5 } }, create());
    const own = '/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/tsns.scope';
    expect(p.dirs.map((d) => d.dir)).toEqual([`${own}/tsns-1-0`]);
    expect(p.enable).toEqual(['memory', 'pids']);
    expect(p.writes.map((w) => w.file)).toEqual(['memory.max', 'pids.max']);
    expect(p.oomFile).toBe(`${own}/tsns-1-0/memory.events`);
    expect(message(() => plan(V2_SYSTEMD, { blockIO: { weight: 100 } }, create()))).toMatch(/cannot set the block I\/O limits: .*io controller is not in \/sys\/fs\/cgroup\/user.slice/);
    // From the root, what the root offers.
    const fromRoot = plan(V2_SYSTEMD, { blockIO: { weight: 100 } }, create('n', '/tsns'));
    expect(fromRoot.dirs.map((d) => d.dir)).toEqual(['/sys/fs/cgroup/tsns/n']);
    expect(fromRoot.enable).toEqual(['io']);
  });

  it('v1 only: co-mounted controllers are one directory, and there is nothing to clone into', () => {
    const p = plan(V1_SYSTEMD, { cpu: { shares: 512 } }, create());
    expect(p.dirs.map((d) => d.dir)).toEqual(['/sys/fs/cgroup/cpu,cpuacct/user.slice/tsns-1-0']);
    expect(p.v2Dir).toBeNull();
    // Nothing asked for: every hierarchy but the named one, so the command is still accounted.
    expect(plan(V1_SYSTEMD, {}, create()).dirs).toHaveLength(5);
  });

  it('in a cgroup namespace, refuses what it cannot map', () => {
    expect(message(() => plan(IN_CGROUPNS, { pids: { limit: 5 } }, create()))).toMatch(/our own cgroup \(\/\) is outside what is mounted at \/sys\/fs\/cgroup\/pids/);
  });

  it('systemd\'s slice:prefix:name paths: runc\'s error without systemd, a refusal with it', () => {
    expect(message(() => plan(HYBRID, {}, { kind: 'path', path: 'system.slice:tsns:x' }, 'all')))
      .toBe("systemd not running on this host, cannot use systemd cgroups manager (cgroup path 'system.slice:tsns:x')");
    expect(message(() => plan(HYBRID, {}, { kind: 'path', path: 'system.slice:tsns:x' }, 'all', true))).toMatch(/does not manage through systemd/);
    const withFlag = (path: string, systemd: boolean) => message(() => planCgroup({ layout: layoutOf(HYBRID, systemd), resources: {}, placement: { kind: 'path', path }, scope: 'all', systemdCgroup: true }));
    expect(withFlag('/x', false)).toBe('systemd not running on this host, cannot use systemd cgroups manager');
    expect(withFlag('/x', true)).toBe('expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "/x" instead');
  });

  it('--dry-run\'s lines', () => {
    expect(describeCgroupPlan(plan(HYBRID, { pids: { limit: 5 } }, create()))).toEqual([
      "tsns-1-0, new under the caller's own cgroups; removed when the command ends",
      'v1 pids    /sys/fs/cgroup/pids/tsns-1-0',
      '  pids.max = 5',
      'v2         /sys/fs/cgroup/unified/tsns-1-0',
      'placement: cloned into the v2 cgroup (clone3 CLONE_INTO_CGROUP); its pid written to each other cgroup.procs before it runs',
    ]);
    expect(describeCgroupPlan(plan(V1_SYSTEMD, { pids: { limit: 5 } }, { kind: 'join', path: '/x' }, 'all')).at(-1))
      .toBe('placement: its pid written to each other cgroup.procs before it runs');
  });
});

describe('tsns run\'s cgroup options', () => {
  let n = 0;
  const ctx: CgroupContext = { layout: () => layoutOf(HYBRID), machine: () => ({ memTotal: 1 << 30, cpus: [0, 1], mems: [0] }), nextName: () => `tsns-9-${n++}` };

  it('no option: no cgroup', () => {
    expect(planRunCgroup({}, ctx)).toBeNull();
    expect(planRunCgroup({ cgroupOptional: true }, ctx)).toBeNull();
  });

  it('limits make a new cgroup, with a name of its own each time', () => {
    const a = planRunCgroup({ pidsLimit: 4, memory: '8m' }, ctx)!;
    const b = planRunCgroup({ pidsLimit: 4 }, ctx)!;
    expect(a.plan.placement).not.toEqual(b.plan.placement);
    expect(a.resources).toEqual({ memory: { limit: 8 << 20, swap: 16 << 20 }, pids: { limit: 4 } });
    expect(a.description[0]).toMatch(/^tsns-9-\d, new under/);
  });

  it('OCI resources and flags: the flags win where both say something', () => {
    const r = planRunCgroup({ resources: { pids: { limit: 9 }, cpu: { shares: 100 } }, pidsLimit: 3 }, ctx)!;
    expect(r.resources).toEqual({ pids: { limit: 3 }, cpu: { shares: 100 } });
  });

  it('--cgroup-path joins, alone', () => {
    expect(planRunCgroup({ cgroupPath: '/x' }, ctx)!.plan.placement).toEqual({ kind: 'join', path: '/x' });
    expect(message(() => planRunCgroup({ cgroupPath: '/x', pidsLimit: 3 }, ctx))).toMatch(/joins an existing cgroup as it is/);
    expect(message(() => planRunCgroup({ cgroupPath: '/x', cgroupParent: '/y' }, ctx))).toMatch(/cannot be given together/);
    expect(message(() => planRunCgroup({ cgroupParent: 'a\nb' }, ctx))).toMatch(/no newline/);
  });
});

describe('runc events JSON', () => {
  it('writes bigints as exact JSON numbers', () => {
    expect(eventJson('stats', 'x', { memory: { limit: 9223372036854771712n, usage: 5n }, name: 'a' }))
      .toBe('{"type":"stats","id":"x","data":{"memory":{"limit":9223372036854771712,"usage":5},"name":"a"}}');
    expect(eventJson('oom', 'x')).toBe('{"type":"oom","id":"x"}');
  });
});

/** A privileged container's view on cgroup v1 without a cgroup namespace: each hierarchy mounted from its own cgroup. */
const IN_CONTAINER = {
  mountinfo: `381 380 0:28 /libpod_parent/libpod-1 /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
388 380 0:35 /libpod_parent/libpod-1 /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
`,
  cgroups: 'cpu\t1\t3\t1\npids\t8\t3\t1\n',
  self: '8:pids:/libpod_parent/libpod-1\n1:cpu:/libpod_parent/libpod-1\n',
  files: {} as Record<string, string>,
};

describe('absolute cgroup paths where the hierarchies are mounted from a container\'s own cgroup', () => {
  it('inside what is mounted: there; outside it: below the mount all the same, as runc puts it', () => {
    const inside = plan(IN_CONTAINER, { pids: { limit: 5 } }, { kind: 'path', path: '/libpod_parent/libpod-1/c' }, 'all');
    expect(inside.dirs.map((d) => [d.dir, d.path, d.levels])).toEqual([
      ['/sys/fs/cgroup/cpu/c', '/libpod_parent/libpod-1/c', ['/sys/fs/cgroup/cpu/c']],
      ['/sys/fs/cgroup/pids/c', '/libpod_parent/libpod-1/c', ['/sys/fs/cgroup/pids/c']],
    ]);
    const outside = plan(IN_CONTAINER, { pids: { limit: 5 } }, { kind: 'path', path: '/default/c' }, 'all');
    expect(outside.dirs.map((d) => [d.dir, d.path, d.levels])).toEqual([
      ['/sys/fs/cgroup/cpu/default/c', '/libpod_parent/libpod-1/default/c', ['/sys/fs/cgroup/cpu/default', '/sys/fs/cgroup/cpu/default/c']],
      ['/sys/fs/cgroup/pids/default/c', '/libpod_parent/libpod-1/default/c', ['/sys/fs/cgroup/pids/default', '/sys/fs/cgroup/pids/default/c']],
    ]);
    expect(outside.writes.map((w) => `${w.dir}/${w.file}`)).toEqual(['/sys/fs/cgroup/pids/default/c/pids.max']);
  });

  it('in a cgroup namespace\'s view (a mount root of /../..) an absolute path outside it is still refused', () => {
    expect(message(() => plan(IN_CGROUPNS, { pids: { limit: 5 } }, { kind: 'path', path: '/x' }, 'all'))).toMatch(/cgroup path '\/x' is outside what is mounted at \/sys\/fs\/cgroup\/pids/);
  });
});
