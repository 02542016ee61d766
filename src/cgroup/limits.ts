/**
 * Pure: a resource set (resources.ts) → the files to write, for the
 * hierarchy version each controller lives on here, with runc's conversions
 * (shares → cpu.weight, memory+swap → memory.swap.max, blkio → io weights)
 * and its order; and the check of a resource set that came from a file.
 *
 * What a version cannot do is refused where a limit would be lost
 * (realtime, network on v2), and reported as a warning where runc ignores
 * it too (swappiness and the OOM killer switch on v2, kernel memory).
 */
import { planError } from '../plan/identity';
import { checkDeviceRule, v1DeviceWrites } from './devices';
import type { DeviceRule, LinuxResources, ThrottleDevice } from './resources';

export interface CgroupWrite {
  /** the controller whose hierarchy holds the file; '' for a cgroup v2 core file (cgroup.*) */
  controller: string;
  file: string;
  value: string;
  /** other files to write instead, in order, when this one does not exist */
  instead?: { file: string; value: string }[];
  /** a file that may be missing: then it is skipped with this warning */
  missing?: string;
  /**
   * writes of one group go in the order given; when one fails with EINVAL
   * the group is written again in reverse (v1 memory and memory+swap must
   * stay ordered at every moment; CFS period and quota likewise)
   */
  group?: string;
}

export interface ResourceWrites {
  writes: CgroupWrite[];
  /** device rules for a cgroup v2 eBPF program (null: none, or they are v1 writes) */
  bpfDevices: DeviceRule[] | null;
  warnings: string[];
}

/** Where a controller lives here: 1, 2, or null with the reason. */
export type Placement = (controller: string) => 1 | 2 | null;
export type WhyMissing = (controller: string) => string;

/** runc's (opencontainers/cgroups ≥ 0.0.3) and crun's shares → cpu.weight: 1024 → 100, the v2 default. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  return Math.ceil(10 ** ((l * l + 125 * l) / 612 - 7 / 34));
}

/** runc's blkio weight (10..1000) → io.weight (1..10000). */
export function blkioToIoWeight(weight: number): number {
  return weight === 0 ? 0 : 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/** runc's ConvertMemorySwapToCgroupV2Value: OCI's memory+swap → memory.swap.max. */
export function swapToV2(swap: number, limit: number | undefined): number {
  const memory = limit ?? 0;
  if (memory === -1 && swap === 0) return -1;
  if (swap === -1 || swap === 0) return swap;
  if (memory === 0 || memory === -1) throw planError('unable to set swap limit without memory limit');
  if (swap < memory) throw planError('memory+swap limit should be >= memory limit');
  return swap - memory;
}

const num = (v: number, version: 1 | 2) => (v === -1 ? (version === 2 ? 'max' : '-1') : String(v));

function memoryWrites(m: NonNullable<LinuxResources['memory']>, v: 1 | 2, out: ResourceWrites): void {
  const w = (file: string, value: string, extra: Partial<CgroupWrite> = {}) => out.writes.push({ controller: 'memory', file, value, ...extra });
  const limit = m.limit ?? 0;
  const noSwapAccounting = 'there is no swap accounting here (the file is missing): the memory+swap limit is not applied';
  if (v === 1) {
    // runc: unlimited memory with swap unset is unlimited memory+swap too.
    const swap = m.swap ?? (limit === -1 ? -1 : 0);
    const limitWrite = () => limit && w('memory.limit_in_bytes', num(limit, 1), { group: 'memory' });
    const swapWrite = () => swap && w('memory.memsw.limit_in_bytes', num(swap, 1), { group: 'memory', missing: noSwapAccounting });
    // Raising to unlimited: memory+swap first, or the limit would pass it.
    if (swap === -1) swapWrite(), limitWrite();
    else limitWrite(), swapWrite();
    if (m.reservation) w('memory.soft_limit_in_bytes', num(m.reservation, 1));
    if (m.swappiness !== undefined && m.swappiness !== -1) w('memory.swappiness', String(m.swappiness));
    if (m.kernelTCP) w('memory.kmem.tcp.limit_in_bytes', num(m.kernelTCP, 1));
    if (m.disableOOMKiller) w('memory.oom_control', '1');
  } else {
    if (m.swap !== undefined) {
      const swap = swapToV2(m.swap, m.limit);
      if (swap) w('memory.swap.max', num(swap, 2), { missing: noSwapAccounting });
    }
    if (limit) w('memory.max', num(limit, 2));
    if (m.reservation) w('memory.low', num(m.reservation, 2));
    if (m.swappiness !== undefined && m.swappiness !== -1) out.warnings.push('memory swappiness is ignored: cgroup v2 has no per-cgroup swappiness');
    if (m.kernelTCP) out.warnings.push('the kernel TCP memory limit is ignored: cgroup v2 has none');
    if (m.disableOOMKiller) out.warnings.push('disableOOMKiller is ignored: cgroup v2 cannot disable the OOM killer for a cgroup');
  }
  if (m.kernel) out.warnings.push('kernel memory settings are ignored (the kernel no longer enforces them)');
}

function cpuWrites(c: NonNullable<LinuxResources['cpu']>, v: 1 | 2, cpuset: 1 | 2 | null, out: ResourceWrites): void {
  const w = (file: string, value: string, extra: Partial<CgroupWrite> = {}) => out.writes.push({ controller: 'cpu', file, value, ...extra });
  if (v === 1) {
    if (c.shares) w('cpu.shares', String(c.shares));
    if (c.period) w('cpu.cfs_period_us', String(c.period), { group: 'cfs' });
    if (c.quota) w('cpu.cfs_quota_us', String(c.quota), { group: 'cfs' });
    if (c.burst !== undefined) w('cpu.cfs_burst_us', String(c.burst));
    if (c.realtimePeriod) w('cpu.rt_period_us', String(c.realtimePeriod), { group: 'rt' });
    if (c.realtimeRuntime) w('cpu.rt_runtime_us', num(c.realtimeRuntime, 1), { group: 'rt' });
  } else {
    if (c.shares) w('cpu.weight', String(sharesToWeight(c.shares)));
    if (c.quota || c.period) w('cpu.max', `${c.quota && c.quota > 0 ? c.quota : 'max'}${c.period ? ` ${c.period}` : ''}`);
    if (c.burst !== undefined) w('cpu.max.burst', String(c.burst));
    if (c.realtimePeriod || c.realtimeRuntime) throw planError('cannot set the realtime runtime: cgroup v2 has no realtime scheduling budget');
  }
  if (c.idle !== undefined) w('cpu.idle', String(c.idle));
  if ((c.cpus || c.mems) && cpuset) {
    if (c.cpus) out.writes.push({ controller: 'cpuset', file: 'cpuset.cpus', value: c.cpus });
    if (c.mems) out.writes.push({ controller: 'cpuset', file: 'cpuset.mems', value: c.mems });
  }
}

const THROTTLES = [
  ['throttleReadBpsDevice', 'read_bps_device', 'rbps'], ['throttleWriteBpsDevice', 'write_bps_device', 'wbps'],
  ['throttleReadIOPSDevice', 'read_iops_device', 'riops'], ['throttleWriteIOPSDevice', 'write_iops_device', 'wiops'],
] as const;

function blockWrites(b: NonNullable<LinuxResources['blockIO']>, v: 1 | 2, out: ResourceWrites): void {
  const controller = v === 1 ? 'blkio' : 'io';
  const w = (file: string, value: string, extra: Partial<CgroupWrite> = {}) => out.writes.push({ controller, file, value, ...extra });
  const dev = (d: { major: number; minor: number }) => `${d.major}:${d.minor}`;
  if (v === 1) {
    // Without CFQ (Linux ≥ 5.0) the weight is BFQ's, as runc finds it.
    if (b.weight) w('blkio.weight', String(b.weight), { instead: [{ file: 'blkio.bfq.weight', value: String(b.weight) }] });
    if (b.leafWeight) w('blkio.leaf_weight', String(b.leafWeight));
    for (const d of b.weightDevice ?? []) {
      if (d.weight) w('blkio.weight_device', `${dev(d)} ${d.weight}`, { instead: [{ file: 'blkio.bfq.weight_device', value: `${dev(d)} ${d.weight}` }] });
      if (d.leafWeight) w('blkio.leaf_weight_device', `${dev(d)} ${d.leafWeight}`);
    }
    for (const [key, file] of THROTTLES) for (const d of b[key] ?? []) w(`blkio.throttle.${file}`, `${dev(d)} ${d.rate}`);
    return;
  }
  if (b.weight) w('io.bfq.weight', String(b.weight), { instead: [{ file: 'io.weight', value: String(blkioToIoWeight(b.weight)) }] });
  if (b.leafWeight) out.warnings.push('the block I/O leaf weight is ignored: cgroup v2 has none');
  for (const d of b.weightDevice ?? []) {
    if (d.weight) w('io.bfq.weight', `${dev(d)} ${d.weight}`, { instead: [{ file: 'io.weight', value: `${dev(d)} ${blkioToIoWeight(d.weight)}` }] });
  }
  for (const [key, , name] of THROTTLES) {
    for (const d of b[key] ?? []) w('io.max', `${dev(d)} ${name}=${d.rate === 0 ? 'max' : d.rate}`);
  }
}

function unifiedWrites(unified: Record<string, string>, place: Placement, why: WhyMissing, out: ResourceWrites): void {
  for (const [file, value] of Object.entries(unified)) {
    if (file.includes('/') || file === '' || file === '.' || file === '..') throw planError(`unified resource "${file}" must be a file name (no slashes)`);
    const prefix = file.slice(0, file.indexOf('.') < 0 ? file.length : file.indexOf('.'));
    if (prefix === 'cgroup') {
      if (place('') !== 2) throw planError(`cannot use unified resource "${file}": there is no cgroup v2 hierarchy`);
      out.writes.push({ controller: '', file, value });
      continue;
    }
    const v = place(prefix);
    if (v === 1) {
      throw planError(`cannot use unified resource "${file}": the ${prefix} controller is on cgroup v1 here`, 'set it with its linux.resources field instead');
    }
    if (v === null) throw planError(`unified resource "${file}" can't be set: controller "${prefix}" not available (${why(prefix)})`);
    out.writes.push({ controller: prefix, file, value });
  }
}

function need(place: Placement, why: WhyMissing, controller: string, what: string): 1 | 2 {
  const v = place(controller);
  if (v === null) throw planError(`cannot set ${what}: ${why(controller)}`);
  return v;
}

function blockVersion(place: Placement, why: WhyMissing): 1 | 2 {
  if (place('blkio') === 1) return 1;
  if (place('io') === 2) return 2;
  throw planError(`cannot set the block I/O limits: ${why(place('') === 2 ? 'io' : 'blkio')}`);
}

function otherWrites(r: LinuxResources, place: Placement, why: WhyMissing, out: ResourceWrites): void {
  for (const h of r.hugepageLimits ?? []) {
    if (!/^\d+[KMGT]B$/.test(h.pageSize)) throw planError(`hugepage size '${h.pageSize}' is not like 2MB or 1GB`);
    const v = need(place, why, 'hugetlb', `the hugetlb limit for ${h.pageSize} pages`);
    out.writes.push({ controller: 'hugetlb', file: v === 1 ? `hugetlb.${h.pageSize}.limit_in_bytes` : `hugetlb.${h.pageSize}.max`, value: num(h.limit, v) });
  }
  if (r.network?.classID !== undefined) {
    if (need(place, why, 'net_cls', 'the network class ID') === 2) throw planError('network limits are not supported on cgroup v2');
    out.writes.push({ controller: 'net_cls', file: 'net_cls.classid', value: String(r.network.classID) });
  }
  for (const p of r.network?.priorities ?? []) {
    if (need(place, why, 'net_prio', 'the network priorities') === 2) throw planError('network limits are not supported on cgroup v2');
    out.writes.push({ controller: 'net_prio', file: 'net_prio.ifpriomap', value: `${p.name} ${p.priority}` });
  }
  for (const [device, l] of Object.entries(r.rdma ?? {})) {
    const parts = [l.hcaHandles === undefined ? '' : `hca_handle=${l.hcaHandles}`, l.hcaObjects === undefined ? '' : `hca_object=${l.hcaObjects}`].filter(Boolean);
    if (parts.length === 0) continue;
    need(place, why, 'rdma', `the rdma limits of ${device}`);
    out.writes.push({ controller: 'rdma', file: 'rdma.max', value: `${device} ${parts.join(' ')}` });
  }
}

/**
 * The writes that make a cgroup hold `r`, for where each controller lives
 * here (`place`), in runc's order: cpuset, devices, memory, cpu, pids,
 * block I/O, hugetlb, network, rdma; `unified` last, overriding the rest.
 */
export function resourceWrites(r: LinuxResources, place: Placement, why: WhyMissing): ResourceWrites {
  const out: ResourceWrites = { writes: [], bpfDevices: null, warnings: [] };
  if (r.devices?.length) {
    if (place('devices') === 1) {
      for (const d of v1DeviceWrites(r.devices)) out.writes.push({ controller: 'devices', ...d });
    } else if (place('') === 2) out.bpfDevices = [...r.devices];
    else throw planError(`cannot set the device rules: ${why('devices')}`);
  }
  if (r.memory && Object.keys(r.memory).length) memoryWrites(r.memory, need(place, why, 'memory', 'the memory limit'), out);
  if (r.cpu && Object.keys(r.cpu).length) {
    const c = r.cpu;
    const wantsCpu = c.shares || c.quota || c.period || c.burst !== undefined || c.realtimePeriod || c.realtimeRuntime || c.idle !== undefined;
    const cpuset = c.cpus || c.mems ? need(place, why, 'cpuset', 'the CPU set') : null;
    // Only cpus/mems: no cpu write is made, whatever the version passed.
    cpuWrites(c, wantsCpu ? need(place, why, 'cpu', 'the CPU limits') : 1, cpuset, out);
  }
  if (r.pids && r.pids.limit !== 0) {
    need(place, why, 'pids', 'the pids limit');
    out.writes.push({ controller: 'pids', file: 'pids.max', value: r.pids.limit < 0 ? 'max' : String(r.pids.limit) });
  }
  if (r.blockIO && Object.keys(r.blockIO).length) blockWrites(r.blockIO, blockVersion(place, why), out);
  otherWrites(r, place, why, out);
  if (r.unified && Object.keys(r.unified).length) unifiedWrites(r.unified, place, why, out);
  // cpuset first, as runc: its values must be in place before anything joins.
  out.writes.sort((a, b) => Number(b.controller === 'cpuset') - Number(a.controller === 'cpuset'));
  return out;
}

/** The controllers a write list needs (v2 enables them in subtree_control). */
export function controllersOf(writes: readonly CgroupWrite[]): string[] {
  return [...new Set(writes.map((w) => w.controller).filter(Boolean))];
}

function isInt(v: unknown, min = -Infinity): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

function checkFields(obj: Record<string, unknown> | undefined, where: string, fields: Record<string, 'int' | 'uint' | 'bool' | 'string'>): void {
  if (obj === undefined) return;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw planError(`${where} must be an object`);
  for (const [key, kind] of Object.entries(fields)) {
    const v = obj[key];
    if (v === undefined || v === null) continue;
    const ok = kind === 'int' ? isInt(v) : kind === 'uint' ? isInt(v, 0) : kind === 'bool' ? typeof v === 'boolean' : typeof v === 'string';
    if (!ok) throw planError(`${where}.${key} must be ${kind === 'int' ? 'a whole number' : kind === 'uint' ? 'a whole number ≥ 0' : kind === 'bool' ? 'true or false' : 'a string'}, not ${JSON.stringify(v)}`);
  }
}

function checkThrottles(list: unknown, where: string): void {
  if (list === undefined) return;
  if (!Array.isArray(list)) throw planError(`${where} must be a list`);
  list.forEach((d: ThrottleDevice, i) => checkFields(d as never, `${where}[${i}]`, { major: 'uint', minor: 'uint', rate: 'uint' }));
}

/**
 * A resource set from a config file (OCI's linux.resources, or `update
 * --resources`), checked as runc checks it before anything is written.
 */
export function checkResources(input: unknown, where = 'linux.resources'): LinuxResources {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) throw planError(`${where} must be an object`);
  const r = input as LinuxResources & Record<string, unknown>;
  checkFields(r.memory as never, `${where}.memory`, {
    limit: 'int', reservation: 'int', swap: 'int', kernel: 'int', kernelTCP: 'int', swappiness: 'int', disableOOMKiller: 'bool', useHierarchy: 'bool',
  });
  const sw = r.memory?.swappiness;
  if (sw !== undefined && sw !== null && sw !== -1 && (sw < 0 || sw > 100)) throw planError(`invalid memory swappiness value: ${sw} (valid range is 0-100)`);
  const m = r.memory;
  if (m?.limit && m.swap && m.limit > 0 && m.swap > 0 && m.swap < m.limit) throw planError('memory+swap limit should be >= memory limit');
  checkFields(r.cpu as never, `${where}.cpu`, {
    shares: 'uint', quota: 'int', burst: 'uint', period: 'uint', realtimeRuntime: 'int', realtimePeriod: 'uint', cpus: 'string', mems: 'string', idle: 'int',
  });
  const shares = r.cpu?.shares;
  if (shares && shares < 2) throw planError('the minimum allowed cpu-shares is 2');
  if (shares && shares > 262144) throw planError('the maximum allowed cpu-shares is 262144');
  checkFields(r.pids as never, `${where}.pids`, { limit: 'int' });
  checkFields(r.blockIO as never, `${where}.blockIO`, { weight: 'uint', leafWeight: 'uint' });
  for (const [key] of THROTTLES) checkThrottles(r.blockIO?.[key], `${where}.blockIO.${key}`);
  (r.blockIO?.weightDevice ?? []).forEach((d, i) => checkFields(d as never, `${where}.blockIO.weightDevice[${i}]`, { major: 'uint', minor: 'uint', weight: 'uint', leafWeight: 'uint' }));
  (r.hugepageLimits ?? []).forEach((h, i) => checkFields(h as never, `${where}.hugepageLimits[${i}]`, { pageSize: 'string', limit: 'int' }));
  if (r.devices !== undefined && !Array.isArray(r.devices)) throw planError(`${where}.devices must be a list`);
  (r.devices ?? []).forEach(checkDeviceRule);
  if (r.unified !== undefined && (typeof r.unified !== 'object' || Object.values(r.unified).some((v) => typeof v !== 'string'))) {
    throw planError(`${where}.unified must map file names to strings`);
  }
  return r;
}
