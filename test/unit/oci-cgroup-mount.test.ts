import { describe, expect, it } from 'vitest';
import { cgroupV1Mount, hasV1 } from '../../src/oci/cgroup-mount';
import { parseConfig } from '../../src/oci/config';
import { MOUNT_ATTR, MOUNT_FLAGS as F } from '../../src/oci/mount-options';
import { planOci, type OciPlanInput } from '../../src/oci/plan';
import { EXTRA, HARDENING, OP_SEP, TAG } from '../../src/wire';
import { specTemplate } from '../../src/oci/spec';
import { HYBRID, layoutOf, V1_SYSTEMD, V2_SYSTEMD } from './cgroup-fixtures';

// A v1 host with systemd: merged hierarchies (cpu,cpuacct and net_cls,net_prio), a named one, and a
// second mount of the memory hierarchy elsewhere (runc binds the one at /sys/fs/cgroup only).
const V1 = layoutOf({ ...V1_SYSTEMD, mountinfo: `${V1_SYSTEMD.mountinfo}35 24 0:28 /sub /mnt/mem rw - cgroup cgroup rw,memory\n` });
const SESSION = '/user.slice/user-1000.slice/session-2.scope';

const base = () => JSON.parse(JSON.stringify({ ...specTemplate(false, 0, 0), process: { ...(specTemplate(false, 0, 0).process as object), terminal: false } })) as Record<string, any>;
const input = (over: Partial<OciPlanInput> = {}): OciPlanInput => ({
  config: parseConfig(base() as never, '/b'), rootless: false, uid: 0, gid: 0, noPivot: false, fd: (n) => n, stateDirFd: null, consoleSocket: null,
  preserveFds: 0, openNs: () => 0, seccomp: null, cgroup: null, home: '/', ...over,
});
const cgroupMount = { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', flags: F.MS_RDONLY | F.MS_NOSUID | F.MS_NODEV | F.MS_NOEXEC, propagation: 0, attr: 0, recAttr: 0, data: '' };

describe('a cgroup mount on a host with v1 hierarchies, as runc makes it', () => {
  it('is for v1 and hybrid hosts, not unified ones', () => {
    expect([V1, layoutOf(HYBRID), layoutOf(V2_SYSTEMD)].map(hasV1)).toEqual([true, true, false]);
  });

  it('a tmpfs, a read-only bind of the container\'s cgroup (or the caller\'s) per hierarchy, links for a merged one', () => {
    const cg = { dirs: [{ version: 1 as const, controllers: ['memory'], mountpoint: '/sys/fs/cgroup/memory', dir: '/sys/fs/cgroup/memory/box', made: [] }], v2Dir: null, fresh: false, oomFile: null, oomBefore: 0, warnings: [] };
    const p = cgroupV1Mount(cgroupMount, cg, V1, false);
    expect(p.mounts[0]).toMatchObject({ destination: '/sys/fs/cgroup', type: 'tmpfs', data: 'mode=755', flags: F.MS_NOSUID | F.MS_NOEXEC | F.MS_NODEV });
    expect(p.mounts.slice(1).map((b) => [b.destination, b.source])).toEqual([
      ['/sys/fs/cgroup/systemd', `/sys/fs/cgroup/systemd${SESSION}`],
      ['/sys/fs/cgroup/cpu,cpuacct', '/sys/fs/cgroup/cpu,cpuacct/user.slice'],
      ['/sys/fs/cgroup/net_cls,net_prio', '/sys/fs/cgroup/net_cls,net_prio'],
      ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/memory/box'],
      ['/sys/fs/cgroup/pids', `/sys/fs/cgroup/pids${SESSION}`],
      ['/sys/fs/cgroup/freezer', '/sys/fs/cgroup/freezer'],
    ]);
    for (const b of p.mounts.slice(1)) {
      expect(b.flags).toBe(F.MS_BIND | F.MS_REC);
      expect(b.attr).toBe(MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC);
    }
    expect(p.links).toEqual([
      ['cpu,cpuacct', '/sys/fs/cgroup/cpu'], ['cpu,cpuacct', '/sys/fs/cgroup/cpuacct'],
      ['net_cls,net_prio', '/sys/fs/cgroup/net_cls'], ['net_cls,net_prio', '/sys/fs/cgroup/net_prio'],
    ]);
  });

  it('a hybrid host: the v1 hierarchies only, not unified/', () => {
    const p = cgroupV1Mount(cgroupMount, null, layoutOf(HYBRID), false);
    expect(p.mounts.slice(1).map((b) => b.destination.slice('/sys/fs/cgroup/'.length))).toEqual(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'systemd']);
    expect(p.mounts.find((b) => b.destination.endsWith('/memory'))!.source).toBe('/sys/fs/cgroup/memory/process_api/14202edb1968a1d0578190e361cd2fb0');
  });

  it('with a cgroup namespace: each hierarchy mounted by the name of its mount point, named systemd as name=systemd', () => {
    const p = cgroupV1Mount(cgroupMount, null, V1, true);
    expect(p.mounts[0]).toMatchObject({ type: 'tmpfs', data: 'mode=755' });
    expect(p.mounts.slice(1).map((b) => [b.destination, b.source, b.type, b.data])).toEqual([
      ['/sys/fs/cgroup/systemd', 'systemd', 'cgroup', 'name=systemd'],
      ['/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'cgroup', 'cpu,cpuacct'],
      ['/sys/fs/cgroup/net_cls,net_prio', 'cgroup', 'cgroup', 'net_cls,net_prio'],
      ['/sys/fs/cgroup/memory', 'cgroup', 'cgroup', 'memory'],
      ['/sys/fs/cgroup/pids', 'cgroup', 'cgroup', 'pids'],
      ['/sys/fs/cgroup/freezer', 'cgroup', 'cgroup', 'freezer'],
    ]);
    for (const b of p.mounts.slice(1)) expect([b.flags, b.attr]).toEqual([F.MS_RDONLY | F.MS_NOSUID | F.MS_NODEV | F.MS_NOEXEC, 0]);
    expect(cgroupV1Mount({ ...cgroupMount, flags: 0 }, null, V1, true).mounts[1]!.flags).toBe(F.MS_NOSUID | F.MS_NODEV | F.MS_NOEXEC);
    expect(p.links).toHaveLength(4);
  });

  it('stands in for the config\'s cgroup mount in the plan, with a cgroup namespace as without', () => {
    const cgroupV1 = (m: Parameters<typeof cgroupV1Mount>[0], ns: boolean) => cgroupV1Mount(m, null, V1, ns);
    const cgroupMounts = (p: ReturnType<typeof planOci>) => p.oci!.filter(([t]) => t === TAG.OCI_MOUNT).map(([, v]) => v.split(OP_SEP))
      .filter((f) => f[0]!.startsWith('/sys/fs/cgroup')).map((f) => `${f[0]} ${f[2]} ${f[7]}`);
    expect(cgroupMounts(planOci(input({ cgroupV1 })))).toEqual(['/sys/fs/cgroup tmpfs mode=755', ...['systemd', 'cpu,cpuacct', 'net_cls,net_prio', 'memory', 'pids', 'freezer'].map((n) => `/sys/fs/cgroup/${n} bind `)]);
    const c = base();
    c.linux.namespaces.push({ type: 'cgroup' });
    const own = planOci(input({ config: parseConfig(c as never, '/b'), cgroupV1 }));
    expect(cgroupMounts(own)).toEqual(['/sys/fs/cgroup tmpfs mode=755', '/sys/fs/cgroup/systemd cgroup name=systemd',
      ...['cpu,cpuacct', 'net_cls,net_prio', 'memory', 'pids', 'freezer'].map((n) => `/sys/fs/cgroup/${n} cgroup ${n}`)]);
    // On a unified host the shim mounts the cgroup2 view: one mount, no data (which would ask for a v1 hierarchy).
    expect(cgroupMounts(planOci(input({ config: parseConfig(c as never, '/b') })))).toEqual(['/sys/fs/cgroup cgroup ']);
  });
});

describe('supplementary groups, by runc\'s rule', () => {
  const withGids = () => {
    const c = base();
    c.process.user.additionalGids = [5, 7];
    return parseConfig(c as never, '/b');
  };

  it('as root: set (the shim leaves them where the user namespace denies setgroups)', () => {
    expect(planOci(input({ config: withGids() })).extras).toContain(`${EXTRA.GROUPS}5,7`);
  });

  it('a runtime that is not root sets none, not even none (the groups it was given stay), and refuses additionalGids', () => {
    const spec = planOci(input({ uid: 1000, gid: 1000 }));
    expect(spec.extras.some((e) => e.startsWith(EXTRA.GROUPS))).toBe(false);
    expect(spec.hardening).toContain(HARDENING.KEEP_GROUPS);
    expect(planOci(input()).hardening).not.toContain(HARDENING.KEEP_GROUPS);
    expect(() => planOci(input({ config: withGids(), uid: 1000, gid: 1000 }))).toThrow(/additionalGids: cannot set any additional groups in a rootless container/);
  });
});
