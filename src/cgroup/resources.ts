/**
 * Pure: the one normalized resource set tsns works with — the OCI runtime
 * spec's `linux.resources`, as config.json spells it — and how it is made
 * from podman/docker-style limits (`--memory=50m`, `--cpus=1.5`) with their
 * validations, or checked when it comes from a config file.
 *
 * Conventions, as runc has them: a field absent or 0 is "leave as it is";
 * -1 is "unlimited" where the kernel has one.
 */
import { planError } from '../plan/identity';

export interface DeviceRule {
  allow: boolean;
  /** 'a' (all), 'c' or 'b'; absent: all */
  type?: string;
  /** absent or -1: any */
  major?: number;
  minor?: number;
  /** some of 'rwm'; absent: all */
  access?: string;
}

export interface WeightDevice {
  major: number;
  minor: number;
  weight?: number;
  leafWeight?: number;
}

export interface ThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

export interface LinuxResources {
  devices?: DeviceRule[];
  memory?: {
    limit?: number;
    reservation?: number;
    /** memory + swap, in total */
    swap?: number;
    kernel?: number;
    kernelTCP?: number;
    swappiness?: number;
    disableOOMKiller?: boolean;
    useHierarchy?: boolean;
    checkBeforeUpdate?: boolean;
  };
  cpu?: {
    shares?: number;
    quota?: number;
    burst?: number;
    period?: number;
    realtimeRuntime?: number;
    realtimePeriod?: number;
    cpus?: string;
    mems?: string;
    idle?: number;
  };
  pids?: { limit: number };
  blockIO?: {
    weight?: number;
    leafWeight?: number;
    weightDevice?: WeightDevice[];
    throttleReadBpsDevice?: ThrottleDevice[];
    throttleWriteBpsDevice?: ThrottleDevice[];
    throttleReadIOPSDevice?: ThrottleDevice[];
    throttleWriteIOPSDevice?: ThrottleDevice[];
  };
  hugepageLimits?: { pageSize: string; limit: number }[];
  network?: { classID?: number; priorities?: { name: string; priority: number }[] };
  rdma?: Record<string, { hcaHandles?: number; hcaObjects?: number }>;
  /** cgroup v2 files by name, written verbatim after everything else */
  unified?: Record<string, string>;
}

/** podman's and docker's flags, as values (strings as typed, or numbers). */
export interface CgroupLimitOptions {
  /** BYTES with an optional b/k/m/g/t suffix (binary), as podman's --memory */
  memory?: string | number;
  /** memory + swap; -1: unlimited swap; default twice --memory (podman, docker) */
  memorySwap?: string | number;
  memoryReservation?: string | number;
  /** -1: unlimited */
  pidsLimit?: string | number;
  /** CPUs' worth of time, e.g. 1.5: quota = cpus × 100000 µs per 100000 µs period */
  cpus?: string | number;
  cpuShares?: string | number;
  cpuQuota?: string | number;
  cpuPeriod?: string | number;
  /** a list like 0-1,3 */
  cpusetCpus?: string;
  cpusetMems?: string;
  blkioWeight?: string | number;
}

/** What bounds a limit on this machine ("beyond the machine" is refused). */
export interface MachineLimits {
  memTotal: number;
  /** the CPUs and memory nodes our cgroup may use */
  cpus: readonly number[];
  mems: readonly number[];
}

const SUFFIX: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/**
 * Bytes as podman and docker read them (go-units RAMInBytes): a number with
 * an optional binary suffix, `50m` = 52428800, `1.5g`, `512KiB`.
 */
export function parseBytes(option: string, value: string | number, allowUnlimited = false): number {
  const text = String(value).trim();
  if (allowUnlimited && text === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?) ?([kmgtpb]?)(?:i?b)?$/i.exec(text);
  if (!m) {
    throw planError(`--${option}: invalid size '${value}'`,
      `give bytes with an optional suffix b, k, m, g or t (binary: 50m = 52428800)${allowUnlimited ? ', or -1 for unlimited' : ''}`);
  }
  const bytes = Math.floor(Number(m[1]) * SUFFIX[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(bytes)) throw planError(`--${option}: '${value}' is too large`);
  return bytes;
}

function integer(option: string, value: string | number, allowUnlimited = false): number {
  const text = String(value).trim();
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw planError(`--${option}: '${value}' is not a whole number`);
  const n = Number(text);
  if (n < 0 && !(allowUnlimited && n === -1)) {
    throw planError(`--${option}: '${value}' is negative`, allowUnlimited ? '-1 means unlimited; other negative values mean nothing' : undefined);
  }
  return n;
}

/** Above the kernel's largest NR_CPUS and MAX_NUMNODES: no list may name more, and none is expanded past it. */
const CPU_LIST_MAX = 65535;

/** A CPU or memory node list, `0-3,5`, as the kernel's cpuset files take it. */
export function parseCpuList(option: string, text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) throw planError(`--${option}: invalid list '${text}'`, 'give numbers and ranges, e.g. 0-1,3');
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (b < a) throw planError(`--${option}: invalid range '${part.trim()}' in '${text}'`);
    if (b > CPU_LIST_MAX) throw planError(`--${option}: ${m[2] ?? m[1]} is beyond any CPU or memory node number (at most ${CPU_LIST_MAX})`);
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}

/** A sorted list of numbers in the kernel's list form, `0-1,3`. */
export function formatCpuList(list: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < list.length;) {
    let j = i;
    while (j + 1 < list.length && list[j + 1] === list[j]! + 1) j++;
    parts.push(i === j ? `${list[i]}` : `${list[i]}-${list[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function cpusetList(option: string, text: string, available: readonly number[], what: string): string {
  const list = parseCpuList(option, text);
  const missing = list.filter((c) => !available.includes(c));
  if (missing.length) {
    throw planError(`--${option}: requested ${what} are not available - requested ${text}, available: ${formatCpuList(available)}`);
  }
  return formatCpuList(list);
}

function memoryLimits(o: CgroupLimitOptions, machine: MachineLimits, doubleSwap: boolean): LinuxResources['memory'] {
  const limit = o.memory === undefined ? undefined : parseBytes('memory', o.memory);
  const reservation = o.memoryReservation === undefined ? undefined : parseBytes('memory-reservation', o.memoryReservation);
  let swap = o.memorySwap === undefined ? undefined : parseBytes('memory-swap', o.memorySwap, true);
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (limit !== undefined && limit > machine.memTotal) {
    throw planError(`--memory: ${o.memory} is more than this machine's memory (${machine.memTotal} bytes, ${gib(machine.memTotal)})`);
  }
  if (limit === 0) throw planError('--memory: 0 is no limit', 'give a size, e.g. --memory=512m');
  if (reservation !== undefined && reservation > machine.memTotal) {
    throw planError(`--memory-reservation: ${o.memoryReservation} is more than this machine's memory (${gib(machine.memTotal)})`);
  }
  if (swap !== undefined && swap !== -1) {
    if (limit === undefined) throw planError('you should always set a memory limit when using a memoryswap limit, see usage', 'add --memory');
    if (swap < limit) throw planError('minimum memoryswap limit should be larger than memory limit, see usage');
  }
  if (limit !== undefined && reservation !== undefined && reservation > limit) {
    throw planError('minimum memory limit cannot be less than memory reservation limit, see usage');
  }
  // podman and docker: without --memory-swap, as much swap again as memory.
  if (swap === undefined && limit !== undefined && doubleSwap) swap = 2 * limit;
  const m = { ...(limit === undefined ? {} : { limit }), ...(reservation === undefined ? {} : { reservation }), ...(swap === undefined ? {} : { swap }) };
  return Object.keys(m).length ? m : undefined;
}

const MAX_PERIOD = 1_000_000;
const MIN_QUOTA = 1000;

function cpuLimits(o: CgroupLimitOptions, machine: MachineLimits): LinuxResources['cpu'] {
  const cpu: NonNullable<LinuxResources['cpu']> = {};
  if (o.cpus !== undefined) {
    if (o.cpuQuota !== undefined || o.cpuPeriod !== undefined) throw planError('--cpu-quota and --cpus cannot be set together', 'give one of them');
    const text = String(o.cpus).trim();
    if (!/^\d*\.?\d+$/.test(text)) throw planError(`--cpus: '${o.cpus}' is not a number of CPUs`, 'e.g. --cpus=1.5');
    const n = Number(text);
    if (n > machine.cpus.length) {
      throw planError(`--cpus: range of CPUs is from 0.01 to ${machine.cpus.length.toFixed(2)}, as there are only ${machine.cpus.length} CPUs available`);
    }
    cpu.period = 100_000;
    cpu.quota = Math.round(n * 100_000);
    if (cpu.quota < MIN_QUOTA) throw planError('--cpus: CPU cfs quota cannot be less than 1ms (i.e. 1000)', 'e.g. --cpus=0.01 or more');
  }
  if (o.cpuShares !== undefined) {
    const s = integer('cpu-shares', o.cpuShares);
    if (s !== 0 && s < 2) throw planError('--cpu-shares: the minimum allowed cpu-shares is 2');
    if (s > 262144) throw planError('--cpu-shares: the maximum allowed cpu-shares is 262144');
    if (s) cpu.shares = s;
  }
  if (o.cpuPeriod !== undefined) {
    const p = integer('cpu-period', o.cpuPeriod);
    if (p < 1000 || p > MAX_PERIOD) throw planError('--cpu-period: CPU cfs period cannot be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
    cpu.period = p;
  }
  if (o.cpuQuota !== undefined) {
    const q = integer('cpu-quota', o.cpuQuota, true);
    if (q !== -1 && q < MIN_QUOTA) throw planError('--cpu-quota: CPU cfs quota cannot be less than 1ms (i.e. 1000)', '-1 means unlimited');
    cpu.quota = q;
  }
  if (o.cpusetCpus !== undefined) cpu.cpus = cpusetList('cpuset-cpus', o.cpusetCpus, machine.cpus, 'CPUs');
  if (o.cpusetMems !== undefined) cpu.mems = cpusetList('cpuset-mems', o.cpusetMems, machine.mems, 'memory nodes');
  return Object.keys(cpu).length ? cpu : undefined;
}

/**
 * podman's/docker's limit flags → resources, with their validations and
 * the machine's bounds. `doubleSwap`: without --memory-swap, allow as much
 * swap again as memory (what podman and docker do when creating; runc's
 * update leaves swap alone).
 */
export function resourcesFromLimits(o: CgroupLimitOptions, machine: MachineLimits, doubleSwap = true): LinuxResources {
  const r: LinuxResources = {};
  const memory = memoryLimits(o, machine, doubleSwap);
  if (memory) r.memory = memory;
  const cpu = cpuLimits(o, machine);
  if (cpu) r.cpu = cpu;
  if (o.pidsLimit !== undefined) {
    const n = integer('pids-limit', o.pidsLimit, true);
    // As docker: 0 is no limit.
    r.pids = { limit: n === 0 ? -1 : n };
  }
  if (o.blkioWeight !== undefined) {
    const w = integer('blkio-weight', o.blkioWeight);
    if (w !== 0 && (w < 10 || w > 1000)) throw planError('--blkio-weight: range of blkio weight is from 10 to 1000');
    if (w) r.blockIO = { weight: w };
  }
  return r;
}

/** Two resource sets, the second's fields winning: a config's, then the flags given with it. */
export function mergeResources(a: LinuxResources | undefined, b: LinuxResources): LinuxResources {
  const out: LinuxResources = { ...a };
  for (const key of Object.keys(b) as (keyof LinuxResources)[]) {
    const mine = out[key];
    const theirs = b[key];
    const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
    (out as Record<string, unknown>)[key] = isObject(mine) && isObject(theirs) ? { ...(mine as object), ...(theirs as object) } : theirs;
  }
  return out;
}

/** `runc update`'s flags, by their names there (--cpu-share is singular in runc). */
export interface RuncUpdateFlags {
  memory?: string;
  memorySwap?: string;
  memoryReservation?: string;
  kernelMemory?: string;
  kernelMemoryTcp?: string;
  cpuShare?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  cpuRtPeriod?: string;
  cpuRtRuntime?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  blkioWeight?: string;
  pidsLimit?: string;
}

/**
 * runc update's flags → resources, as runc reads them: sizes with go-units'
 * suffixes or -1, no defaults (memory alone leaves swap as it is, except
 * that unlimited memory makes swap unlimited too, as runc does), and no
 * checks beyond the numbers' form: the kernel judges the values.
 */
export function resourcesFromUpdate(f: RuncUpdateFlags): LinuxResources {
  const size = (option: string, v: string | undefined) => (v === undefined ? undefined : parseBytes(option, v, true));
  const int = (option: string, v: string | undefined, signed = false) => (v === undefined ? undefined : integer(option, v, signed));
  const drop = <T extends object>(o: T): T | undefined => {
    const kept = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
    return Object.keys(kept).length ? kept : undefined;
  };
  const memory = drop({
    limit: size('memory', f.memory), swap: size('memory-swap', f.memorySwap), reservation: size('memory-reservation', f.memoryReservation),
    kernel: size('kernel-memory', f.kernelMemory), kernelTCP: size('kernel-memory-tcp', f.kernelMemoryTcp),
  });
  if (memory?.limit === -1 && memory.swap === undefined) memory.swap = -1;
  const cpu = drop({
    shares: int('cpu-share', f.cpuShare), period: int('cpu-period', f.cpuPeriod), quota: int('cpu-quota', f.cpuQuota, true),
    realtimePeriod: int('cpu-rt-period', f.cpuRtPeriod), realtimeRuntime: int('cpu-rt-runtime', f.cpuRtRuntime, true),
    cpus: f.cpusetCpus, mems: f.cpusetMems,
  });
  const weight = int('blkio-weight', f.blkioWeight);
  const pids = int('pids-limit', f.pidsLimit, true);
  return {
    ...(memory ? { memory } : {}), ...(cpu ? { cpu } : {}), ...(weight === undefined ? {} : { blockIO: { weight } }),
    ...(pids === undefined ? {} : { pids: { limit: pids } }),
  };
}
