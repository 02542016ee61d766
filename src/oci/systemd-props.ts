/**
 * Pure: runc's systemd cgroup driver (libcontainer/cgroups/systemd) as
 * data — a `slice:prefix:name` cgroupsPath read, the unit's name, where its
 * cgroup lies in each hierarchy, and the unit properties that hold
 * linux.resources (v1's MemoryLimit, CPUShares, BlockIOWeight; v2's
 * MemoryMax, CPUWeight, MemorySwapMax; both's CPUQuota*, TasksMax,
 * AllowedCPUs, DevicePolicy/DeviceAllow), plus org.systemd.property.*
 * annotations. systemd.ts sends them.
 */
import { planError } from '../plan/identity';
import type { DeviceRule, LinuxResources } from '../cgroup/resources';
import { sharesToWeight, swapToV2 } from '../cgroup/limits';
import { variant, type Variant } from './dbus';

export type Property = [name: string, value: Variant];

export interface SystemdUnit {
  /** the slice the scope goes in ('' for the default: system.slice, user.slice rootless) */
  parent: string;
  /** the unit: PREFIX-NAME.scope, or NAME when it is a slice */
  unit: string;
  /** the container's name, for the unit's Description */
  name: string;
}

/** The unit a cgroupsPath names: runc's `slice:prefix:name`, or (empty) PREFIX-ID.scope in the default slice. */
export function systemdUnit(cgroupsPath: string | null | undefined, id: string): SystemdUnit {
  if (!cgroupsPath) return { parent: '', unit: `tsns-${id}.scope`, name: id };
  const parts = cgroupsPath.split(':');
  if (parts.length !== 3) {
    throw planError(`expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "${cgroupsPath}" instead`,
      'for example system.slice:tsns:NAME (linux.cgroupsPath in config.json)');
  }
  const [parent, prefix, name] = parts as [string, string, string];
  return { parent, unit: name.endsWith('.slice') ? name : `${prefix}-${name}.scope`, name };
}

/** systemd's path of a slice: test-a-b.slice → /test.slice/test-a.slice/test-a-b.slice (runc's ExpandSlice). */
export function expandSlice(slice: string): string {
  const bad = () => planError(`invalid slice name: ${slice}`, 'a slice name ends in .slice, its parts joined by single dashes (a-b.slice)');
  if (!slice.endsWith('.slice') || slice.length <= '.slice'.length || slice.includes('/')) throw bad();
  const base = slice.slice(0, -'.slice'.length);
  if (base === '-') return '/';
  let path = '';
  let prefix = '';
  for (const part of base.split('-')) {
    if (part === '') throw bad();
    path += `/${prefix}${part}.slice`;
    prefix += `${part}-`;
  }
  return path;
}

/**
 * A CPU or memory-node list ("0-2,4") as systemd's AllowedCPUs= takes it
 * over D-Bus: a bitmask of bytes, CPU 0 in the first byte's lowest bit.
 */
export function rangeToBits(list: string, what: string): Buffer {
  const bits: number[] = [];
  for (const raw of list.split(',')) {
    const r = raw.trim();
    if (r === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(r);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
    if (!m || hi < lo || hi > 0xffff) throw planError(`resources.CPU.${what}="${list}" conversion error: invalid range: ${r}`);
    for (let i = lo; i <= hi; i++) bits.push(i);
  }
  if (bits.length === 0) throw planError(`resources.CPU.${what}="${list}" conversion error: empty value`);
  const out = Buffer.alloc(Math.floor(Math.max(...bits) / 8) + 1);
  for (const b of bits) out[b >> 3]! |= 1 << (b & 7);
  return out;
}

const U64_MAX = (1n << 64n) - 1n;
/** -1 (OCI's "unlimited") as systemd's infinity, as runc's uint64(-1) makes it. */
const u64 = (n: number) => (n < 0 ? U64_MAX : BigInt(n));
const t = (name: string, n: number | bigint): Property => [name, variant('t', typeof n === 'bigint' ? n : u64(n))];

/** runc's addCpuQuota: CPUQuotaPeriodUSec (systemd ≥ 242) and CPUQuotaPerSecUSec, rounded up to whole percents. */
function cpuQuota(out: Property[], quota: number, period: number, version: number): void {
  if (period !== 0 && version >= 242) out.push(t('CPUQuotaPeriodUSec', period));
  if (quota === 0 && period === 0) return;
  let perSec = U64_MAX;
  if (quota > 0) {
    perSec = (BigInt(quota) * 1000000n) / BigInt(period || 100000);
    if (perSec % 10000n !== 0n) perSec = (perSec / 10000n + 1n) * 10000n;
  }
  out.push(t('CPUQuotaPerSecUSec', perSec));
}

function cpuset(out: Property[], cpus: string | undefined, mems: string | undefined, version: number): void {
  // systemd has AllowedCPUs/AllowedMemoryNodes since 244; older ones get the cpuset files only.
  if (version < 244) return;
  if (cpus) out.push(['AllowedCPUs', variant('ay', rangeToBits(cpus, 'Cpus'))]);
  if (mems) out.push(['AllowedMemoryNodes', variant('ay', rangeToBits(mems, 'Mems'))]);
}

export interface DeviceLookup {
  /** /proc/devices' text, for a `c 136:*` rule's group (char-pts) */
  procDevices: string;
  exists(path: string): boolean;
}

const PERMS = (access: string | undefined) => ['r', 'w', 'm'].filter((p) => (access ?? 'rwm').includes(p));
const any = (n: number | undefined) => n === undefined || n === -1;

/**
 * The rules as systemd's DevicePolicy/DeviceAllow (runc's
 * generateDeviceProperties): replayed in order to a final allow list;
 * strict, with one entry per rule. What systemd cannot say (a `*:N` rule,
 * a major without a /proc/devices group, a device node that is missing) is
 * left to the cgroup files written next, with a warning.
 */
export function deviceProperties(rules: readonly DeviceRule[], look: DeviceLookup, warn: (w: string) => void): Property[] {
  let defaultAllow = false;
  let list = new Map<string, { type: string; major: number; minor: number; perms: Set<string> }>();
  for (const r of rules) {
    const type = r.type ?? 'a';
    if (type === 'a') {
      defaultAllow = r.allow;
      list = new Map();
      continue;
    }
    const major = any(r.major) ? -1 : r.major!;
    const minor = any(r.minor) ? -1 : r.minor!;
    const key = `${type} ${major}:${minor}`;
    const entry = list.get(key) ?? { type, major, minor, perms: new Set<string>() };
    // A rule the default already gives takes away an exception; one it does not give adds one.
    for (const p of PERMS(r.access)) {
      if (r.allow === defaultAllow) entry.perms.delete(p);
      else entry.perms.add(p);
    }
    if (entry.perms.size) list.set(key, entry);
    else list.delete(key);
  }
  const strict: Property[] = [['DevicePolicy', variant('s', 'strict')], ['DeviceAllow', variant('a(ss)', [])]];
  if (defaultAllow) {
    if (list.size === 0) return [['DevicePolicy', variant('s', 'auto')], ['DeviceAllow', variant('a(ss)', [])]];
    warn("systemd doesn't support blacklist device rules -- applying temporary deny-all rule");
    return strict;
  }
  const allow: [string, string][] = [];
  for (const e of list.values()) {
    const perms = ['r', 'w', 'm'].filter((p) => e.perms.has(p)).join('');
    const kind = e.type === 'b' ? 'block' : 'char';
    let path: string;
    if (e.major === -1) {
      if (e.minor !== -1) {
        warn(`systemd doesn't support '*:n' device rules -- temporarily ignoring rule: ${e.type} *:${e.minor} ${perms}`);
        continue;
      }
      path = `${kind}-*`;
    } else if (e.minor === -1) {
      const group = deviceGroup(look.procDevices, e.type, e.major);
      if (!group) {
        warn(`could not find device group for '${e.type}/${e.major}' in /proc/devices -- temporarily ignoring rule: ${e.type} ${e.major}:* ${perms}`);
        continue;
      }
      path = `${kind}-${group}`;
    } else {
      path = `/dev/${kind}/${e.major}:${e.minor}`;
      if (!look.exists(path) && !look.exists(`/sys${path}`)) {
        warn(`skipping device ${path} for systemd: no such device`);
        continue;
      }
    }
    allow.push([path, perms]);
  }
  return [strict[0]!, strict[1]!, ['DeviceAllow', variant('a(ss)', allow)]];
}

/** The /proc/devices name of a major number ("136 pts" → pts). */
function deviceGroup(text: string, type: string, major: number): string | null {
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === 'Character devices:') section = 'c';
    else if (line === 'Block devices:') section = 'b';
    else if (section === type) {
      const m = /^(\d+)\s+(\S+)$/.exec(line);
      if (m && Number(m[1]) === major) return m[2]!;
    }
  }
  return null;
}

/**
 * The resource properties runc sets on a unit: v1's (genV1ResourcesProperties)
 * or, on a cgroup v2 machine, v2's (genV2ResourcesProperties). `version`
 * is systemd's, which some properties need.
 */
export function resourceProperties(r: LinuxResources, v2: boolean, version: number, look: DeviceLookup, warn: (w: string) => void): Property[] {
  const out: Property[] = r.devices?.length ? deviceProperties(r.devices, look, warn) : [];
  const m = r.memory ?? {};
  const c = r.cpu ?? {};
  if (!v2) {
    if (m.limit) out.push(t('MemoryLimit', m.limit));
    if (c.shares) out.push(t('CPUShares', c.shares));
    cpuQuota(out, c.quota ?? 0, c.period ?? 0, version);
    if (r.blockIO?.weight) out.push(t('BlockIOWeight', r.blockIO.weight));
  } else {
    if (m.limit) out.push(t('MemoryMax', m.limit));
    if (m.reservation) out.push(t('MemoryLow', m.reservation));
    const swap = m.swap === undefined ? 0 : swapToV2(m.swap, m.limit);
    if (swap !== 0) out.push(t('MemorySwapMax', swap));
    if (c.shares) out.push(t('CPUWeight', sharesToWeight(c.shares)));
    cpuQuota(out, c.quota ?? 0, c.period ?? 0, version);
  }
  if (r.pids && (r.pids.limit > 0 || r.pids.limit === -1)) out.push(t('TasksMax', r.pids.limit));
  cpuset(out, c.cpus, c.mems, version);
  if (v2) out.push(...unifiedProperties(r.unified ?? {}, version));
  return out;
}

/** runc's unifiedResToSystemdProps: the linux.resources.unified files systemd has a property for. */
function unifiedProperties(unified: Record<string, string>, version: number): Property[] {
  const out: Property[] = [];
  const number = (k: string, v: string) => {
    if (v === 'max') return U64_MAX;
    if (!/^\d+$/.test(v)) throw planError(`unified resource "${k}" value conversion error: "${v}" is not a number`);
    return BigInt(v);
  };
  const names: Record<string, string> = {
    'memory.high': 'MemoryHigh', 'memory.low': 'MemoryLow', 'memory.min': 'MemoryMin', 'memory.max': 'MemoryMax', 'memory.swap.max': 'MemorySwapMax', 'pids.max': 'TasksMax',
  };
  for (const [k, raw] of Object.entries(unified)) {
    const v = raw.trim();
    if (k.includes('/')) throw planError(`unified resource "${k}" must be a file name (no slashes)`);
    if (!k.includes('.')) throw planError(`unified resource "${k}" must be in the form CONTROLLER.PARAMETER`);
    if (k === 'cpu.max') {
      const f = v.split(/\s+/);
      if (f.length < 1 || f.length > 2) throw planError(`unified resource "${k}" value invalid: "${v}"`);
      cpuQuota(out, f[0] === 'max' ? 0 : Number(number(k, f[0]!)), f[1] === undefined ? 100000 : Number(number(k, f[1])), version);
    } else if (k === 'cpu.weight') out.push(t('CPUWeight', number(k, v)));
    else if (k === 'cpuset.cpus' || k === 'cpuset.mems') cpuset(out, k === 'cpuset.cpus' ? v : undefined, k === 'cpuset.mems' ? v : undefined, version);
    else if (names[k]) out.push(t(names[k]!, number(k, v)));
    // anything else is written to its file only
  }
  return out;
}

/**
 * One GVariant text value, as org.systemd.property.* annotations give it
 * (runc parses them with godbus's ParseVariant): true/false, numbers
 * (int32 unless typed: `uint64 5`, `@t 5`), 'strings', and arrays of them.
 */
export function parseVariantText(text: string): Variant {
  const TYPES: Record<string, string> = { byte: 'y', int16: 'n', uint16: 'q', int32: 'i', uint32: 'u', int64: 'x', uint64: 't', double: 'd', boolean: 'b', string: 's' };
  let s = text.trim();
  let sig: string | null = null;
  const typed = /^(?:@(\w+)|(byte|int16|uint16|int32|uint32|int64|uint64|double|boolean|string))\s+/.exec(s);
  if (typed) {
    sig = typed[1] ?? TYPES[typed[2]!]!;
    s = s.slice(typed[0].length);
  }
  const scalar = (v: string, want: string | null): Variant => {
    if (v === 'true' || v === 'false') return variant(want ?? 'b', v === 'true');
    const q = /^'((?:[^'\\]|\\.)*)'$|^"((?:[^"\\]|\\.)*)"$/.exec(v);
    if (q) return variant(want ?? 's', (q[1] ?? q[2]!).replace(/\\(.)/g, '$1'));
    if (/^-?\d+$/.test(v)) {
      const k = want ?? 'i';
      return variant(k, 'xt'.includes(k) ? BigInt(v) : Number(v));
    }
    if (/^-?\d*\.\d+(e-?\d+)?$/.test(v)) return variant(want ?? 'd', Number(v));
    throw new Error(`cannot parse '${v}'`);
  };
  if (s.startsWith('[')) {
    if (!s.endsWith(']')) throw new Error(`cannot parse '${text}'`);
    const inner = s.slice(1, -1).trim();
    const items = inner === '' ? [] : (inner.match(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^,\s][^,]*/g) ?? []).map((x) => x.trim());
    const elem = sig?.startsWith('a') ? sig.slice(1) : null;
    const values = items.map((x) => scalar(x, elem));
    const e = elem ?? values[0]?.sig;
    if (!e) throw new Error(`an empty array needs a type (@as [])`);
    if (values.some((v) => v.sig !== e)) throw new Error(`the elements of '${text}' differ in type`);
    return variant(`a${e}`, values.map((v) => v.value));
  }
  return scalar(s, sig);
}

/** org.systemd.property.NAME annotations as unit properties (runc's initSystemdProps); xSec values become xUSec. */
export function annotationProperties(annotations: Record<string, string>): Property[] {
  const out: Property[] = [];
  for (const [k, v] of Object.entries(annotations)) {
    if (!k.startsWith('org.systemd.property.')) continue;
    let name = k.slice('org.systemd.property.'.length);
    if (!/^[A-Z][A-Za-z0-9]*$/.test(name)) throw planError(`annotation ${k} name incorrect: it must start with A-Z and be only letters and digits`);
    let value: Variant;
    try {
      value = parseVariantText(v);
    } catch (e) {
      throw planError(`annotation ${k}=${v} value parse error: ${(e as Error).message}`);
    }
    if (/[a-z]Sec$/.test(name)) {
      name = `${name.slice(0, -3)}USec`;
      if (!'ynqiuxtd'.includes(value.sig) || value.sig.length !== 1) throw planError(`annotation ${k}=${v} value parse error: not a number`);
      const n = value.value as number | bigint;
      value = variant('t', typeof n === 'bigint' ? n * 1000000n : BigInt(Math.round(n * 1e6)));
    }
    out.push([name, value]);
  }
  return out;
}

/**
 * Where systemd puts the unit's cgroup in one hierarchy: runc's
 * getSubsystemPath on v1 and hybrid (the mountpoint, then PID 1's own
 * cgroup there less its init.scope, the slice's path, the unit), and its
 * v2 path on a unified machine (the mountpoint, the slice, the unit).
 */
export function unitDir(mountpoint: string, initCgroup: string | null, slicePath: string, unit: string): string {
  const init = initCgroup === null ? '' : initCgroup.replace(/\/+$/, '').replace(/(^|\/)init\.scope$/, '');
  return [mountpoint.replace(/\/+$/, ''), init, slicePath, unit].join('/').replace(/\/{2,}/g, '/').replace(/\/$/, '');
}
