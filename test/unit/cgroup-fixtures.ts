/** Cgroup layouts captured from real machines, for the unit tests. */
import { buildLayout } from '../../src/cgroup/detect';

export const HYBRID = {
  mountinfo: `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`,
  cgroups: `#subsys_name	hierarchy	num_cgroups	enabled
cpuset	3	1	1
cpu	1	1	1
cpuacct	2	1	1
blkio	7	1	1
memory	4	14	1
devices	5	1	1
freezer	6	1	1
net_cls	0	1	1
perf_event	0	1	1
net_prio	0	1	1
hugetlb	0	1	1
pids	8	1	1
`,
  self: `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/14202edb1968a1d0578190e361cd2fb0
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`,
  files: { '/sys/fs/cgroup/unified/cgroup.controllers': 'hugetlb\n' } as Record<string, string>,
};

export const V1_SYSTEMD = {
  mountinfo: `25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
32 25 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
33 25 0:30 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,freezer
`,
  cgroups: `#subsys_name	hierarchy	num_cgroups	enabled
cpu	3	90	1
cpuacct	3	90	1
memory	5	120	1
net_cls	4	1	1
net_prio	4	1	1
pids	6	98	1
freezer	7	1	1
hugetlb	0	1	0
`,
  self: `7:freezer:/
6:pids:/user.slice/user-1000.slice/session-2.scope
5:memory:/user.slice/user-1000.slice/session-2.scope
4:net_cls,net_prio:/
3:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
0::/user.slice/user-1000.slice/session-2.scope
`,
  files: {} as Record<string, string>,
};

export const V2_SYSTEMD = {
  mountinfo: `26 23 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`,
  cgroups: `#subsys_name	hierarchy	num_cgroups	enabled
cpuset	0	152	1
cpu	0	152	1
memory	0	152	1
pids	0	152	1
io	0	152	1
`,
  self: '0::/user.slice/user-1000.slice/user@1000.service/app.slice/tsns.scope\n',
  files: {
    '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n',
    '/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/tsns.scope/cgroup.controllers': 'cpu memory pids\n',
  } as Record<string, string>,
};

/** Inside a cgroup namespace made below /tsns-probe/ns, with the host's mounts. */
export const IN_CGROUPNS = {
  mountinfo: `210 202 0:35 /../.. /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
212 202 0:37 /../.. /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`,
  cgroups: 'pids\t8\t3\t1\nhugetlb\t0\t1\t1\n',
  self: '8:pids:/\n0::/\n',
  files: {} as Record<string, string>,
};

export function layoutOf(t: { mountinfo: string; cgroups: string; self: string; files: Record<string, string> }, systemd = false) {
  return buildLayout({ mountinfo: t.mountinfo, cgroups: t.cgroups, self: t.self, readFile: (p) => t.files[p] ?? null, systemd });
}
