import { describe, expect, it } from 'vitest';
import { cgroupV1Mount, ownCgroups, v1Hierarchies } from '../../src/oci/cgroup-mount';
import { parseConfig } from '../../src/oci/config';
import { MOUNT_ATTR, MOUNT_FLAGS as F } from '../../src/oci/mount-options';
import { planOci, type OciPlanInput } from '../../src/oci/plan';
import { EXTRA, OP_SEP, TAG } from '../../src/wire';
import { specTemplate } from '../../src/oci/spec';

// A hybrid host: v1 hierarchies (one of them merged, one named) and the v2 one at unified/.
const MOUNTINFO = [
  '30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
  '31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
  '32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd',
  '33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct',
  '34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory',
  // a second mount of the memory hierarchy: runc binds the first only
  '35 24 0:30 /sub /mnt/mem rw - cgroup cgroup rw,memory',
].join('\n');
const PROC_CGROUP = '3:memory:/user/session\n2:cpu,cpuacct:/user\n1:name=systemd:/user/session.scope\n0::/user\n';

const base = () => JSON.parse(JSON.stringify({ ...specTemplate(false, 0, 0), process: { ...(specTemplate(false, 0, 0).process as object), terminal: false } })) as Record<string, any>;
const input = (over: Partial<OciPlanInput> = {}): OciPlanInput => ({
  config: parseConfig(base() as never, '/b'), rootless: false, uid: 0, gid: 0, noPivot: false, fd: (n) => n, stateDirFd: null, consoleSocket: null,
  preserveFds: 0, openNs: () => 0, seccomp: null, cgroup: null, home: '/', ...over,
});

describe('a cgroup mount on a host with v1 hierarchies, as runc makes it', () => {
  const hs = v1Hierarchies(MOUNTINFO);

  it('finds each v1 hierarchy once, not the v2 one', () => {
    expect(hs.map((h) => [h.mountpoint, h.controllers.join(',')])).toEqual([
      ['/sys/fs/cgroup/systemd', 'name=systemd'], ['/sys/fs/cgroup/cpu,cpuacct', 'cpu,cpuacct'], ['/sys/fs/cgroup/memory', 'memory'],
    ]);
  });

  it('a tmpfs, a read-only bind of the container\'s cgroup (or the caller\'s) per hierarchy, links for a merged one', () => {
    const m = { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', flags: F.MS_RDONLY | F.MS_NOSUID | F.MS_NODEV | F.MS_NOEXEC, propagation: 0, attr: 0, data: '' };
    const cg = { dirs: [{ version: 1 as const, controllers: ['memory'], mountpoint: '/sys/fs/cgroup/memory', dir: '/sys/fs/cgroup/memory/box', made: [] }], v2Dir: null, fresh: false, oomFile: null, oomBefore: 0, warnings: [] };
    const p = cgroupV1Mount(m, cg, hs, ownCgroups(PROC_CGROUP));
    expect(p.mounts[0]).toMatchObject({ destination: '/sys/fs/cgroup', type: 'tmpfs', data: 'mode=755', flags: F.MS_NOSUID | F.MS_NOEXEC | F.MS_NODEV });
    expect(p.mounts.slice(1).map((b) => [b.destination, b.source])).toEqual([
      ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/systemd/user/session.scope'],
      ['/sys/fs/cgroup/cpu,cpuacct', '/sys/fs/cgroup/cpu,cpuacct/user'],
      ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/memory/box'],
    ]);
    for (const b of p.mounts.slice(1)) {
      expect(b.flags).toBe(F.MS_BIND | F.MS_REC);
      expect(b.attr).toBe(MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC);
    }
    expect(p.links).toEqual([['cpu,cpuacct', '/sys/fs/cgroup/cpu'], ['cpu,cpuacct', '/sys/fs/cgroup/cpuacct']]);
  });

  it('stands in for the config\'s cgroup mount in the plan, but not with a cgroup namespace', () => {
    const cgroupV1 = (m: Parameters<typeof cgroupV1Mount>[0]) => cgroupV1Mount(m, null, hs, ownCgroups(PROC_CGROUP));
    const spec = planOci(input({ cgroupV1 }));
    const mounts = spec.oci!.filter(([t]) => t === TAG.OCI_MOUNT).map(([, v]) => v.split(OP_SEP)[0]);
    expect(mounts.filter((d) => d?.startsWith('/sys/fs/cgroup'))).toEqual(['/sys/fs/cgroup', '/sys/fs/cgroup/systemd', '/sys/fs/cgroup/cpu,cpuacct', '/sys/fs/cgroup/memory']);
    const c = base();
    c.linux.namespaces.push({ type: 'cgroup' });
    const own = planOci(input({ config: parseConfig(c as never, '/b'), cgroupV1 }));
    expect(own.oci!.filter(([t, v]) => t === TAG.OCI_MOUNT && v.startsWith('/sys/fs/cgroup'))).toHaveLength(1);
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

  it('a runtime that is not root sets none, and refuses additionalGids', () => {
    expect(planOci(input({ uid: 1000, gid: 1000 })).extras.some((e) => e.startsWith(EXTRA.GROUPS))).toBe(false);
    expect(() => planOci(input({ config: withGids(), uid: 1000, gid: 1000 }))).toThrow(/additionalGids: cannot set any additional groups in a rootless container/);
  });
});
