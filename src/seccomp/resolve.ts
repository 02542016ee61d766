/**
 * Pure: a profile made concrete for one command on one machine, as Docker
 * (moby's setupSeccomp) does before it hands the OCI object to runc —
 * archMap picks the host's architectures, and a group's includes/excludes
 * keep or drop it by the host's architecture, its kernel version and the
 * capabilities the command will really have.
 */
import { ALL_CAPS, CAPABILITIES } from '../capabilities';
import type { IdMapEntry } from '../idmap';
import type { SeccompArg, SeccompFilter, SeccompProfile } from './profile';
import { GO_ARCHES, hostArch, type Action } from './tables';

export interface SeccompHostFacts {
  /** Node's process.arch */
  arch: string;
  /** uname's release, e.g. "6.1.0-18-amd64" */
  kernel: string;
  /** the command's capabilities, as a bit mask (commandCapabilities) */
  caps: bigint;
}

/** A name with where it stands in the profile (`syscalls[3].names[1]`), for errors. */
export interface NamedSyscall {
  name: string;
  path: string;
}

export interface ResolvedSyscall {
  names: NamedSyscall[];
  action: Action;
  errnoRet: number | null;
  args: SeccompArg[];
  path: string;
}

/** The OCI object a runtime would be given: no archMap, no includes/excludes left. */
export interface ResolvedProfile {
  defaultAction: Action;
  defaultErrnoRet: number | null;
  architectures: NamedSyscall[];
  flags: string[] | null;
  listenerPath: string | null;
  listenerMetadata: string | null;
  syscalls: ResolvedSyscall[];
  /** the groups includes/excludes dropped, by path */
  dropped: string[];
}

/** "6.1.0-18-amd64" → [6, 1], as Docker reads uname with "%d.%d". */
export function kernelVersion(release: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

const atLeast = (k: [number, number], min: [number, number]) => k[0] > min[0] || (k[0] === min[0] && k[1] >= min[1]);

export function capabilityNames(mask: bigint): string[] {
  return CAPABILITIES.filter((_, i) => (mask >> BigInt(i)) & 1n).map((c) => `CAP_${c}`);
}

/** Whether a group stays, in moby's order of tests: any exclude drops it, every include must hold. */
function kept(s: { includes: SeccompFilter | null; excludes: SeccompFilter | null }, arch: string, caps: ReadonlySet<string>, kernel: [number, number]): boolean {
  const ex = s.excludes;
  if (ex) {
    if (ex.arches.includes(arch)) return false;
    if (ex.caps.some((c) => caps.has(c))) return false;
    if (ex.minKernel && atLeast(kernel, ex.minKernel)) return false;
  }
  const inc = s.includes;
  if (inc) {
    if (inc.arches.length && !inc.arches.includes(arch)) return false;
    if (inc.caps.some((c) => !caps.has(c))) return false;
    if (inc.minKernel && !atLeast(kernel, inc.minKernel)) return false;
  }
  return true;
}

/** The host's architectures from archMap (the entry for the host's own), else `architectures`. */
function architectures(p: SeccompProfile, arch: string): NamedSyscall[] {
  const own = p.architectures.map((name, i) => ({ name, path: `architectures[${i}]` }));
  const i = p.archMap.findIndex((e) => e.architecture === GO_ARCHES[arch]);
  if (i < 0) return own;
  const e = p.archMap[i]!;
  return [...own, { name: e.architecture, path: `archMap[${i}].architecture` },
    ...e.subArchitectures.map((name, j) => ({ name, path: `archMap[${i}].subArchitectures[${j}]` }))];
}

export function resolveProfile(p: SeccompProfile, host: SeccompHostFacts): ResolvedProfile {
  const arch = hostArch(host.arch);
  const caps = new Set(capabilityNames(host.caps));
  const kernel = kernelVersion(host.kernel);
  const dropped: string[] = [];
  const syscalls: ResolvedSyscall[] = [];
  for (const s of p.syscalls) {
    if (!kept(s, arch, caps, kernel)) {
      dropped.push(s.path);
      continue;
    }
    const names = s.names.map((name, j) => ({ name, path: `${s.path}.names[${j}]` }));
    syscalls.push({ names, action: s.action, errnoRet: s.errnoRet, args: s.args, path: s.path });
  }
  return {
    defaultAction: p.defaultAction,
    defaultErrnoRet: p.defaultErrnoRet,
    architectures: architectures(p, arch),
    flags: p.flags,
    listenerPath: p.listenerPath,
    listenerMetadata: p.listenerMetadata,
    syscalls,
    dropped,
  };
}

/** Who the command will be, as a plan says it. */
export interface CommandIdentity {
  /** the caller's uid */
  uid: number;
  /** the command gets a new user namespace (in which it starts with every capability) */
  userNamespace: boolean;
  uidMap: readonly IdMapEntry[] | null;
  setuid: number | null;
  keepCaps: boolean;
  /** the capabilities kept, a decimal mask; null: all there are */
  capKeep: string | null;
  /** the caller's bounding set, which limits all of them */
  bounding: bigint;
}

/**
 * The capabilities the command has once it runs: the bounding set (less what
 * is dropped) for root of its user namespace or with --keep-caps; none for
 * anyone else, whom exec leaves without.
 */
export function commandCapabilities(id: CommandIdentity): bigint {
  const mapped = id.uidMap?.find((e) => id.uid >= e.outer && id.uid < e.outer + e.count);
  // Unmapped in a new user namespace, the caller is the overflow uid.
  const inside = !id.userNamespace ? id.uid : mapped ? mapped.inner + id.uid - mapped.outer : 65534;
  const uid = id.setuid ?? inside;
  const privileged = id.uid === 0 || id.userNamespace;
  if (!privileged || (uid !== 0 && !id.keepCaps)) return 0n;
  return id.bounding & (id.capKeep === null ? ALL_CAPS : BigInt(id.capKeep));
}
