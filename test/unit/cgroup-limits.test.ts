/**
 * Limits: podman's flags → resources (its validations, the machine's
 * bounds), resources → files for v1 and v2 (runc's conversions and order),
 * config files' resources checked, and device rules as v1 lines and as a
 * v2 eBPF program (run here by a small interpreter).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_DEVICES, deviceProgram, runDeviceProgram, v1DeviceWrites } from '../../src/cgroup/devices';
import { blkioToIoWeight, checkResources, resourceWrites, sharesToWeight, swapToV2, type Placement } from '../../src/cgroup/limits';
import { formatCpuList, parseBytes, parseCpuList, resourcesFromLimits, resourcesFromUpdate, type LinuxResources } from '../../src/cgroup/resources';

const MACHINE = { memTotal: 24 * 2 ** 30, cpus: [0, 1], mems: [0] };
const V1: Placement = (c) => (['memory', 'pids', 'cpu', 'cpuset', 'blkio', 'devices'].includes(c) ? 1 : c === 'hugetlb' || c === '' ? 2 : null);
const V2: Placement = (c) => (['memory', 'pids', 'cpu', 'cpuset', 'io', 'hugetlb', ''].includes(c) ? 2 : null);
const why = (c: string) => `no ${c} here`;
const files = (r: LinuxResources, p: Placement) => resourceWrites(r, p, why).writes.map((w) => `${w.file}=${w.value}`);

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('did not throw');
}

describe('podman-style limit flags', () => {
  it('reads sizes as podman does: binary suffixes, -1 only where unlimited means something', () => {
    expect(parseBytes('memory', '50m')).toBe(52428800);
    expect(parseBytes('memory', '1.5g')).toBe(1610612736);
    expect(parseBytes('memory', '512KiB')).toBe(524288);
    expect(parseBytes('memory', 4096)).toBe(4096);
    expect(parseBytes('memory-swap', '-1', true)).toBe(-1);
    expect(message(() => parseBytes('memory', 'bogus'))).toBe("--memory: invalid size 'bogus'");
    expect(message(() => parseBytes('memory', '-1'))).toBe("--memory: invalid size '-1'");
  });

  it('gives swap twice the memory unless told, and checks the pair', () => {
    expect(resourcesFromLimits({ memory: '50m' }, MACHINE).memory).toEqual({ limit: 52428800, swap: 104857600 });
    expect(resourcesFromLimits({ memory: '50m' }, MACHINE, false).memory).toEqual({ limit: 52428800 });
    expect(resourcesFromLimits({ memory: '50m', memorySwap: -1 }, MACHINE).memory).toEqual({ limit: 52428800, swap: -1 });
    expect(message(() => resourcesFromLimits({ memory: '50m', memorySwap: '10m' }, MACHINE))).toMatch(/minimum memoryswap limit should be larger than memory limit/);
    expect(message(() => resourcesFromLimits({ memorySwap: '10m' }, MACHINE))).toMatch(/always set a memory limit/);
    expect(message(() => resourcesFromLimits({ memory: '10m', memoryReservation: '20m' }, MACHINE))).toMatch(/cannot be less than memory reservation/);
    expect(message(() => resourcesFromLimits({ memory: '100g' }, MACHINE))).toMatch(/more than this machine's memory/);
  });

  it('turns --cpus into a CFS quota, within the machine', () => {
    expect(resourcesFromLimits({ cpus: '1.5' }, MACHINE).cpu).toEqual({ period: 100000, quota: 150000 });
    expect(message(() => resourcesFromLimits({ cpus: '3' }, MACHINE))).toMatch(/only 2 CPUs available/);
    expect(message(() => resourcesFromLimits({ cpus: '0.001' }, MACHINE))).toMatch(/cannot be less than 1ms/);
    expect(message(() => resourcesFromLimits({ cpus: '1', cpuQuota: 50000 }, MACHINE))).toMatch(/cannot be set together/);
    expect(message(() => resourcesFromLimits({ cpuPeriod: 500 }, MACHINE))).toMatch(/period cannot be less than 1ms/);
    expect(message(() => resourcesFromLimits({ cpuShares: 1 }, MACHINE))).toMatch(/minimum allowed cpu-shares is 2/);
    expect(message(() => resourcesFromLimits({ cpusetCpus: '5' }, MACHINE))).toBe('--cpuset-cpus: requested CPUs are not available - requested 5, available: 0-1');
    expect(resourcesFromLimits({ cpusetCpus: '1,0', cpusetMems: '0' }, MACHINE).cpu).toEqual({ cpus: '0-1', mems: '0' });
  });

  it('checks pids and block I/O weights', () => {
    expect(resourcesFromLimits({ pidsLimit: 20 }, MACHINE).pids).toEqual({ limit: 20 });
    expect(resourcesFromLimits({ pidsLimit: '-1' }, MACHINE).pids).toEqual({ limit: -1 });
    expect(message(() => resourcesFromLimits({ pidsLimit: '-5' }, MACHINE))).toBe("--pids-limit: '-5' is negative");
    expect(message(() => resourcesFromLimits({ pidsLimit: 'many' }, MACHINE))).toMatch(/not a whole number/);
    expect(message(() => resourcesFromLimits({ blkioWeight: 5 }, MACHINE))).toMatch(/from 10 to 1000/);
  });

  it('reads runc update\'s flags as runc does: no defaults, -1 for unlimited', () => {
    expect(resourcesFromUpdate({ memory: '32M' })).toEqual({ memory: { limit: 33554432 } });
    expect(resourcesFromUpdate({ memory: '-1' })).toEqual({ memory: { limit: -1, swap: -1 } });
    expect(resourcesFromUpdate({ memorySwap: '128m', pidsLimit: '-1', cpuShare: '256', cpuQuota: '25000', blkioWeight: '5' })).toEqual({
      memory: { swap: 134217728 }, cpu: { shares: 256, quota: 25000 }, blockIO: { weight: 5 }, pids: { limit: -1 },
    });
    expect(resourcesFromUpdate({})).toEqual({});
  });

  it('reads and writes CPU lists', () => {
    expect(parseCpuList('x', '0-2,5,4')).toEqual([0, 1, 2, 4, 5]);
    expect(formatCpuList([0, 1, 2, 4, 5, 7])).toBe('0-2,4-5,7');
    expect(message(() => parseCpuList('cpuset-cpus', '2-1'))).toMatch(/invalid range/);
    // A huge number must be refused, not expanded one by one.
    expect(message(() => parseCpuList('cpuset-mems', '99999999999999999999'))).toMatch(/beyond any CPU or memory node number/);
    expect(message(() => parseCpuList('cpuset-cpus', '0-70000'))).toMatch(/at most 65535/);
  });
});

describe('resources → cgroup files', () => {
  const r: LinuxResources = {
    memory: { limit: 52428800, swap: 104857600, reservation: 41943040 },
    pids: { limit: 20 },
    cpu: { shares: 1024, quota: 50000, period: 100000, cpus: '0', mems: '0' },
    blockIO: { weight: 100, throttleReadBpsDevice: [{ major: 254, minor: 0, rate: 1048576 }] },
  };

  it('v1: runc\'s files, cpuset first, memory before memory+swap', () => {
    expect(files(r, V1)).toEqual([
      'cpuset.cpus=0', 'cpuset.mems=0',
      'memory.limit_in_bytes=52428800', 'memory.memsw.limit_in_bytes=104857600', 'memory.soft_limit_in_bytes=41943040',
      'cpu.shares=1024', 'cpu.cfs_period_us=100000', 'cpu.cfs_quota_us=50000',
      'pids.max=20',
      'blkio.weight=100', 'blkio.throttle.read_bps_device=254:0 1048576',
    ]);
    const w = resourceWrites(r, V1, why).writes;
    expect(w.find((x) => x.file === 'blkio.weight')!.instead).toEqual([{ file: 'blkio.bfq.weight', value: '100' }]);
    expect(w.filter((x) => x.group === 'memory').map((x) => x.file)).toEqual(['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']);
  });

  it('v1: unlimited memory+swap goes first, and unlimited memory means unlimited swap', () => {
    expect(files({ memory: { limit: -1, swap: -1 } }, V1)).toEqual(['memory.memsw.limit_in_bytes=-1', 'memory.limit_in_bytes=-1']);
    expect(files({ memory: { limit: -1 } }, V1)).toEqual(['memory.memsw.limit_in_bytes=-1', 'memory.limit_in_bytes=-1']);
    expect(files({ pids: { limit: -1 } }, V1)).toEqual(['pids.max=max']);
  });

  it('v2: converted values', () => {
    expect(files(r, V2)).toEqual([
      'cpuset.cpus=0', 'cpuset.mems=0',
      'memory.swap.max=52428800', 'memory.max=52428800', 'memory.low=41943040',
      'cpu.weight=100', 'cpu.max=50000 100000',
      'pids.max=20',
      'io.bfq.weight=100', 'io.max=254:0 rbps=1048576',
    ]);
    expect(resourceWrites(r, V2, why).writes.find((x) => x.file === 'io.bfq.weight')!.instead).toEqual([{ file: 'io.weight', value: '910' }]);
    expect(files({ cpu: { quota: -1, period: 50000 } }, V2)).toEqual(['cpu.max=max 50000']);
    expect(files({ memory: { limit: -1, swap: -1 } }, V2)).toEqual(['memory.swap.max=max', 'memory.max=max']);
  });

  it('runc\'s conversions', () => {
    expect([2, 256, 512, 1024, 2048, 262144].map(sharesToWeight)).toEqual([1, 35, 59, 100, 174, 10000]);
    expect([10, 100, 500, 1000].map(blkioToIoWeight)).toEqual([1, 910, 4950, 10000]);
    expect(swapToV2(100, 50)).toBe(50);
    expect(swapToV2(0, -1)).toBe(-1);
    expect(message(() => swapToV2(100, undefined))).toBe('unable to set swap limit without memory limit');
    expect(message(() => swapToV2(10, 50))).toBe('memory+swap limit should be >= memory limit');
  });

  it('warns where runc ignores, refuses where a limit would be lost', () => {
    const w = resourceWrites({ memory: { swappiness: 10, kernel: 1 << 20, disableOOMKiller: true } }, V2, why);
    expect(w.writes).toEqual([]);
    expect(w.warnings).toHaveLength(3);
    expect(message(() => resourceWrites({ cpu: { realtimeRuntime: 1000 } }, V2, why))).toMatch(/no realtime/);
    expect(message(() => resourceWrites({ network: { classID: 1 } }, V1, why))).toBe('cannot set the network class ID: no net_cls here');
    expect(message(() => resourceWrites({ rdma: { mlx4_0: { hcaHandles: 2 } } }, V1, why))).toMatch(/no rdma here/);
  });

  it('hugetlb and unified: on v2 even on a hybrid machine, never for a v1 controller', () => {
    expect(files({ hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }] }, V1)).toEqual(['hugetlb.2MB.max=4194304']);
    expect(files({ unified: { 'hugetlb.2MB.max': '4194304', 'cgroup.max.depth': '3' } }, V1)).toEqual(['hugetlb.2MB.max=4194304', 'cgroup.max.depth=3']);
    expect(message(() => resourceWrites({ unified: { 'pids.max': '10' } }, V1, why))).toMatch(/the pids controller is on cgroup v1 here/);
    expect(message(() => resourceWrites({ unified: { '../x': '1' } }, V2, why))).toMatch(/must be a file name/);
    expect(message(() => resourceWrites({ unified: { 'rdma.max': '1' } }, V2, why))).toMatch(/controller "rdma" not available/);
  });

  it('checks resources from a config file as runc does', () => {
    expect(checkResources(undefined)).toEqual({});
    expect(message(() => checkResources({ memory: { limit: '50M' } }))).toMatch(/linux.resources.memory.limit must be a whole number/);
    expect(message(() => checkResources({ memory: { swappiness: 150 } }))).toBe('invalid memory swappiness value: 150 (valid range is 0-100)');
    expect(message(() => checkResources({ memory: { limit: 100, swap: 50 } }))).toMatch(/should be >= memory limit/);
    expect(message(() => checkResources({ cpu: { shares: 1 } }))).toMatch(/minimum allowed cpu-shares is 2/);
    expect(message(() => checkResources({ devices: [{ allow: true, type: 'x' }] }))).toMatch(/type 'x'/);
    expect(message(() => checkResources({ unified: { a: 1 } }))).toMatch(/unified must map/);
  });
});

describe('device rules', () => {
  const rules = [{ allow: false, access: 'rwm' }, ...DEFAULT_DEVICES];

  it('as v1 lines, in order', () => {
    expect(v1DeviceWrites(rules).slice(0, 4)).toEqual([
      { file: 'devices.deny', value: 'a' },
      { file: 'devices.allow', value: 'c *:* m' },
      { file: 'devices.allow', value: 'b *:* m' },
      { file: 'devices.allow', value: 'c 1:3 rwm' },
    ]);
  });

  it('as a v2 program: the last matching rule decides, nothing matched is denied', () => {
    const p = deviceProgram(rules);
    expect(p.length % 8).toBe(0);
    expect(runDeviceProgram(p, 'c', 'rw', 1, 3)).toBe(1);
    expect(runDeviceProgram(p, 'c', 'rw', 1, 1)).toBe(0);
    expect(runDeviceProgram(p, 'c', 'm', 8, 0)).toBe(1);
    expect(runDeviceProgram(p, 'b', 'r', 8, 0)).toBe(0);
    expect(runDeviceProgram(p, 'c', 'w', 136, 4)).toBe(1);
    const noRules = deviceProgram([]);
    expect(runDeviceProgram(noRules, 'c', 'r', 1, 3)).toBe(0);
    // A later deny of one access wins over an earlier allow of all.
    const p2 = deviceProgram([{ allow: true, type: 'a' }, { allow: false, type: 'c', major: 1, minor: 3, access: 'w' }]);
    expect(runDeviceProgram(p2, 'c', 'r', 1, 3)).toBe(1);
    expect(runDeviceProgram(p2, 'c', 'rw', 1, 3)).toBe(0);
    expect(runDeviceProgram(p2, 'b', 'rwm', 8, 1)).toBe(1);
  });
});
