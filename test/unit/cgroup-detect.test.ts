/**
 * The layout parsers, on texts captured from real machines: this hybrid
 * one (v1 controllers each on its own hierarchy, cgroup2 at
 * /sys/fs/cgroup/unified carrying hugetlb), a v1-only systemd machine with
 * co-mounted controllers, a systemd v2-only one, and a container's view
 * inside a cgroup namespace.
 */
import { describe, expect, it } from 'vitest';
import { dirOf, hierarchyOf, parseMountinfo, parseProcCgroups, parseProcSelfCgroup, whyMissing } from '../../src/cgroup/detect';
import { HYBRID, IN_CGROUPNS, layoutOf, V1_SYSTEMD, V2_SYSTEMD } from './cgroup-fixtures';

describe('cgroup layout detection', () => {
  it('parses mountinfo, keeping only cgroup mounts, escapes undone', () => {
    const m = parseMountinfo(`${HYBRID.mountinfo}50 30 0:40 /a\\040b /mnt/x\\040y rw - cgroup2 cgroup2 rw,nsdelegate\n`);
    expect(m).toHaveLength(11);
    expect(m[0]).toEqual({ device: '0:28', root: '/', mountpoint: '/sys/fs/cgroup/cpu', fstype: 'cgroup', superOptions: ['rw', 'cpu'] });
    expect(m[10]).toMatchObject({ root: '/a b', mountpoint: '/mnt/x y', superOptions: ['rw', 'nsdelegate'] });
  });

  it('parses /proc/cgroups and /proc/self/cgroup', () => {
    expect(parseProcCgroups(HYBRID.cgroups).find((k) => k.name === 'hugetlb')).toEqual({ name: 'hugetlb', hierarchy: 0, enabled: true });
    expect(parseProcSelfCgroup(V1_SYSTEMD.self)[3]).toEqual({ id: 4, controllers: ['net_cls', 'net_prio'], path: '/' });
    expect(parseProcSelfCgroup('0::/\n')).toEqual([{ id: 0, controllers: [], path: '/' }]);
  });

  it('sees this machine as hybrid: one v1 hierarchy per controller, hugetlb on v2', () => {
    const l = layoutOf(HYBRID);
    expect(l.mode).toBe('hybrid');
    expect(l.hierarchies.map((h) => h.controllers.join(','))).toEqual(
      ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'name=systemd', 'hugetlb']);
    expect(hierarchyOf(l, 'memory')).toMatchObject({ version: 1, id: 4, ownDir: '/sys/fs/cgroup/memory/process_api/14202edb1968a1d0578190e361cd2fb0' });
    expect(hierarchyOf(l, 'pids')).toMatchObject({ id: 8, ownDir: '/sys/fs/cgroup/pids' });
    expect(hierarchyOf(l, 'hugetlb')).toMatchObject({ version: 2, mountpoint: '/sys/fs/cgroup/unified', ownDir: '/sys/fs/cgroup/unified' });
    expect(hierarchyOf(l, 'net_cls')).toBeNull();
    expect(whyMissing(l, 'net_cls')).toMatch(/not in \/sys\/fs\/cgroup\/unified\/cgroup.controllers/);
    expect(whyMissing(l, 'rdma')).toMatch(/no rdma controller/);
    expect(l.nsdelegate).toBe(false);
  });

  it('knows co-mounted v1 controllers and named hierarchies', () => {
    const l = layoutOf(V1_SYSTEMD);
    expect(l.mode).toBe('v1');
    expect(l.v2).toBeNull();
    expect(hierarchyOf(l, 'cpuacct')).toBe(hierarchyOf(l, 'cpu'));
    expect(hierarchyOf(l, 'cpu')).toMatchObject({ id: 3, controllers: ['cpu', 'cpuacct'], ownDir: '/sys/fs/cgroup/cpu,cpuacct/user.slice' });
    expect(l.hierarchies.find((h) => h.controllers.includes('name=systemd'))).toMatchObject({ id: 1 });
    expect(whyMissing(l, 'hugetlb')).toMatch(/disabled/);
  });

  it('sees a systemd v2 machine as v2, with its controllers from our cgroup', () => {
    const l = layoutOf(V2_SYSTEMD, true);
    expect(l.mode).toBe('v2');
    expect(l.nsdelegate).toBe(true);
    expect(l.systemd).toBe(true);
    expect(l.v2!.rootControllers).toContain('io');
    expect(l.v2).toMatchObject({ controllers: ['cpu', 'memory', 'pids'], ownDir: '/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/tsns.scope' });
    expect(hierarchyOf(l, 'io')).toBeNull();
  });

  it('in a cgroup namespace, does not map paths it cannot see', () => {
    const l = layoutOf(IN_CGROUPNS);
    expect(hierarchyOf(l, 'pids')!.ownDir).toBeNull();
    expect(l.v2!.ownDir).toBeNull();
  });

  it('maps a cgroup path to a directory below a mount of part of a hierarchy', () => {
    expect(dirOf('/sys/fs/cgroup/pids', '/', '/a/b')).toBe('/sys/fs/cgroup/pids/a/b');
    expect(dirOf('/sys/fs/cgroup/pids', '/', '/')).toBe('/sys/fs/cgroup/pids');
    expect(dirOf('/c', '/docker/abc', '/docker/abc/x')).toBe('/c/x');
    expect(dirOf('/c', '/docker/abc', '/docker/abcd')).toBeNull();
    expect(dirOf('/c', '/../..', '/')).toBeNull();
  });

  it('prefers, of several mounts of one hierarchy, the one that shows our cgroup', () => {
    const text = `${HYBRID.mountinfo}60 30 0:35 /other /mnt/pids rw - cgroup cgroup rw,pids\n`;
    const l = layoutOf({ ...HYBRID, mountinfo: text });
    expect(hierarchyOf(l, 'pids')!.mountpoint).toBe('/sys/fs/cgroup/pids');
    expect(l.hierarchies.filter((h) => h.controllers.includes('pids'))).toHaveLength(1);
  });
});
