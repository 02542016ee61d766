/**
 * A cgroup's usage in the shape `runc events --stats` prints (runc's
 * types.Stats), from the v1 or v2 files wherever each controller lives.
 * Counters are bigint: memory limits read as 9223372036854771712, past
 * what a JavaScript number holds; eventJson() writes them as JSON numbers.
 * Zero values are left out where runc leaves them out (its omitempty).
 */
import { readdirSync } from 'node:fs';
import { parseCpuList } from './resources';
import type { Cgroup } from './apply';
import { readText } from './files';
import { dirFor } from './ops';

type Num = bigint;
type Entry = { limit: Num; usage?: Num; max?: Num; failcnt: Num };
export interface BlkioEntry { major?: Num; minor?: Num; op?: string; value?: Num }

export interface RuncStats {
  cpu: { usage: { total?: Num; percpu?: Num[]; percpu_kernel?: Num[]; percpu_user?: Num[]; kernel: Num; user: Num }; throttling: { periods?: Num; throttledPeriods?: Num; throttledTime?: Num } };
  cpuset: Record<string, unknown>;
  memory: { cache?: Num; usage: Entry; swap: Entry; kernel: Entry; kernelTCP: Entry; raw?: Record<string, Num> };
  pids: { current?: Num; limit?: Num };
  blkio: { ioServiceBytesRecursive?: BlkioEntry[]; ioServicedRecursive?: BlkioEntry[] };
  hugetlb: Record<string, { usage?: Num; max?: Num; failcnt: Num }>;
  intel_rdt: Record<string, never>;
  network_interfaces: null;
}

const MAX_U64 = 18446744073709551615n;

function big(text: string | null | undefined): Num {
  const t = (text ?? '').trim();
  if (t === 'max') return MAX_U64;
  return /^\d+$/.test(t) ? BigInt(t) : 0n;
}

function keyed(path: string): Record<string, Num> {
  const out: Record<string, Num> = {};
  for (const line of (readText(path) ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out[k] = BigInt(v);
  }
  return out;
}

/** runc's omitempty: a zero (or empty list) is not printed. */
function omitZero<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== 0n && !(Array.isArray(v) && v.length === 0))) as T;
}

function cpuStats(cg: Cgroup): RuncStats['cpu'] {
  const cpu = dirFor(cg, 'cpu');
  const acct = dirFor(cg, 'cpuacct');
  const usage: RuncStats['cpu']['usage'] = { kernel: 0n, user: 0n };
  let stat: Record<string, Num> = {};
  if (cpu?.version === 2) {
    stat = keyed(`${cpu.dir}/cpu.stat`);
    Object.assign(usage, { total: (stat.usage_usec ?? 0n) * 1000n, kernel: (stat.system_usec ?? 0n) * 1000n, user: (stat.user_usec ?? 0n) * 1000n });
  } else {
    if (cpu) stat = keyed(`${cpu.dir}/cpu.stat`);
    if (acct) {
      const words = (f: string) => (readText(`${acct.dir}/${f}`) ?? '').trim().split(/\s+/).filter(Boolean).map(big);
      const all = (readText(`${acct.dir}/cpuacct.usage_all`) ?? '').trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/).map(big));
      const ticks = keyed(`${acct.dir}/cpuacct.stat`);
      // cpuacct.stat counts USER_HZ (100) ticks.
      Object.assign(usage, {
        total: big(readText(`${acct.dir}/cpuacct.usage`)), percpu: words('cpuacct.usage_percpu'),
        percpu_kernel: all.map((r) => r[2] ?? 0n), percpu_user: all.map((r) => r[1] ?? 0n),
        kernel: (ticks.system ?? 0n) * 10_000_000n, user: (ticks.user ?? 0n) * 10_000_000n,
      });
    }
  }
  const throttledTime = cpu?.version === 2 ? (stat.throttled_usec ?? 0n) * 1000n : stat.throttled_time;
  // runc's CpuUsage: kernel and user have no omitempty, the rest has.
  return { usage: { ...omitZero(usage), kernel: usage.kernel, user: usage.user }, throttling: omitZero({ periods: stat.nr_periods, throttledPeriods: stat.nr_throttled, throttledTime }) };
}

function cpusetStats(cg: Cgroup): Record<string, unknown> {
  const d = dirFor(cg, 'cpuset');
  if (!d) return { cpu_exclusive: 0n, mem_hardwall: 0n, mem_exclusive: 0n, memory_migrate: 0n, memory_spread_page: 0n, memory_spread_slab: 0n, memory_pressure: 0n, sched_load_balance: 0n, sched_relax_domain_level: 0n };
  const list = (f: string) => {
    const t = (readText(`${d.dir}/${f}`) ?? '').trim();
    return t ? parseCpuList(f, t).map(BigInt) : [];
  };
  const n = (f: string) => big(readText(`${d.dir}/cpuset.${f}`));
  const signed = (f: string) => BigInt((readText(`${d.dir}/cpuset.${f}`) ?? '0').trim() || '0');
  const v1 = d.version === 1;
  return {
    ...omitZero({ cpus: list(v1 ? 'cpuset.cpus' : 'cpuset.cpus.effective') }),
    cpu_exclusive: v1 ? n('cpu_exclusive') : 0n,
    ...omitZero({ mems: list(v1 ? 'cpuset.mems' : 'cpuset.mems.effective') }),
    mem_hardwall: v1 ? n('mem_hardwall') : 0n, mem_exclusive: v1 ? n('mem_exclusive') : 0n, memory_migrate: v1 ? n('memory_migrate') : 0n,
    memory_spread_page: v1 ? n('memory_spread_page') : 0n, memory_spread_slab: v1 ? n('memory_spread_slab') : 0n,
    memory_pressure: v1 ? n('memory_pressure') : 0n, sched_load_balance: v1 ? n('sched_load_balance') : 0n,
    sched_relax_domain_level: v1 ? signed('sched_relax_domain_level') : 0n,
  };
}

function memoryStats(cg: Cgroup): RuncStats['memory'] {
  const d = dirFor(cg, 'memory');
  const zero: Entry = { limit: 0n, failcnt: 0n };
  if (!d) return { usage: zero, swap: zero, kernel: zero, kernelTCP: zero };
  const f = (name: string) => big(readText(`${d.dir}/${name}`));
  const raw = keyed(`${d.dir}/memory.stat`);
  if (d.version === 1) {
    const entry = (prefix: string): Entry => ({
      limit: f(`${prefix}limit_in_bytes`), ...omitZero({ usage: f(`${prefix}usage_in_bytes`), max: f(`${prefix}max_usage_in_bytes`) }), failcnt: f(`${prefix}failcnt`),
    });
    return { ...omitZero({ cache: raw.cache }), usage: entry('memory.'), swap: entry('memory.memsw.'), kernel: entry('memory.kmem.'),
      kernelTCP: entry('memory.kmem.tcp.'), ...(Object.keys(raw).length ? { raw } : {}) };
  }
  const events = keyed(`${d.dir}/memory.events`);
  const usage: Entry = { limit: f('memory.max'), ...omitZero({ usage: f('memory.current'), max: f('memory.peak') }), failcnt: events.max ?? 0n };
  // As runc's fs2: swap as memory+swap, for v1's sake.
  const swapMax = f('memory.swap.max');
  const swap: Entry = {
    limit: swapMax === MAX_U64 || usage.limit === MAX_U64 ? MAX_U64 : swapMax + usage.limit,
    ...omitZero({ usage: f('memory.swap.current') + f('memory.current') }), failcnt: 0n,
  };
  return { ...omitZero({ cache: raw.file }), usage, swap, kernel: zero, kernelTCP: zero, ...(Object.keys(raw).length ? { raw } : {}) };
}

function blkioEntries(text: string | null, v2Keys?: Record<string, string>): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const parts = line.trim().split(/\s+/);
    const dev = /^(\d+):(\d+)$/.exec(parts[0] ?? '');
    if (!dev) continue;
    const [major, minor] = [BigInt(dev[1]!), BigInt(dev[2]!)];
    if (v2Keys) {
      const kv = Object.fromEntries(parts.slice(1).map((p) => p.split('=')));
      for (const [key, op] of Object.entries(v2Keys)) out.push(omitZero({ major, minor, op, value: big(kv[key]) }));
    } else if (parts.length === 3) out.push(omitZero({ major, minor, op: parts[1], value: big(parts[2]) }));
  }
  return out;
}

function blkioStats(cg: Cgroup): RuncStats['blkio'] {
  const v1 = dirFor(cg, 'blkio');
  if (v1?.version === 1) {
    const read = (name: string) => readText(`${v1.dir}/blkio.throttle.${name}`) ?? readText(`${v1.dir}/blkio.bfq.${name}`);
    return omitZero({ ioServiceBytesRecursive: blkioEntries(read('io_service_bytes_recursive')), ioServicedRecursive: blkioEntries(read('io_serviced_recursive')) });
  }
  const io = dirFor(cg, 'io');
  if (!io) return {};
  const stat = readText(`${io.dir}/io.stat`);
  return omitZero({
    ioServiceBytesRecursive: blkioEntries(stat, { rbytes: 'Read', wbytes: 'Write' }),
    ioServicedRecursive: blkioEntries(stat, { rios: 'Read', wios: 'Write' }),
  });
}

function hugetlbStats(cg: Cgroup): RuncStats['hugetlb'] {
  const d = dirFor(cg, 'hugetlb');
  const out: RuncStats['hugetlb'] = {};
  if (!d) return out;
  for (const size of hugePageSizes()) {
    const f = (n: string) => big(readText(`${d.dir}/hugetlb.${size}.${n}`));
    out[size] = d.version === 1
      ? { ...omitZero({ usage: f('usage_in_bytes'), max: f('max_usage_in_bytes') }), failcnt: f('failcnt') }
      : { ...omitZero({ usage: f('current') }), failcnt: keyed(`${d.dir}/hugetlb.${size}.events`).max ?? 0n };
  }
  return out;
}

/** The huge page sizes, as cgroup file names spell them (2MB, 1GB). */
function hugePageSizes(): string[] {
  try {
    return readdirSync('/sys/kernel/mm/hugepages').map((d) => {
      const kb = Number(/(\d+)kB/.exec(d)?.[1] ?? 0);
      return kb >= 1 << 20 ? `${kb >> 20}GB` : kb >= 1 << 10 ? `${kb >> 10}MB` : `${kb}KB`;
    });
  } catch {
    return [];
  }
}

/** The cgroup's usage, as `runc events --stats` reports it in "data". */
export function cgroupStats(cg: Cgroup): RuncStats {
  const pids = dirFor(cg, 'pids');
  const limit = pids ? (readText(`${pids.dir}/pids.max`) ?? '').trim() : '';
  return {
    cpu: cpuStats(cg),
    cpuset: cpusetStats(cg),
    memory: memoryStats(cg),
    pids: pids ? omitZero({ current: big(readText(`${pids.dir}/pids.current`)), limit: limit === 'max' ? 0n : big(limit) }) : {},
    blkio: blkioStats(cg),
    hugetlb: hugetlbStats(cg),
    intel_rdt: {},
    network_interfaces: null,
  };
}

/** One line of `runc events`: {"type":…,"id":…,"data":…}, bigints as JSON numbers. */
export function eventJson(type: 'stats' | 'oom' | string, id: string, data?: unknown): string {
  const text = JSON.stringify({ type, id, ...(data === undefined ? {} : { data }) }, (_k, v) => (typeof v === 'bigint' ? `\u0000${v}\u0000` : v));
  // Signed too: cpuset's sched_relax_domain_level is -1 by default.
  return text.replace(/"\\u0000(-?\d+)\\u0000"/g, '$1');
}
