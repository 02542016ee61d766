/**
 * An OciConfig → the spawn the shim makes of it (wire.ts SpawnSpec): the
 * namespaces to create or join, the maps, the rootfs with its mounts,
 * devices and paths, the process's identity, capabilities, rlimits and
 * seccomp, and the exec fifo it waits on. Pure, but for the fds it is
 * handed: `fd()` gives the number tsns-oci-init will see an fd of ours as.
 */
import { capabilityMask } from '../capabilities';
import { DEFAULT_DEVICES as ALLOWED_DEVICES } from '../cgroup/devices';
import type { DeviceRule } from '../cgroup/resources';
import { parseIdMap } from '../idmap';
import { NAMESPACES } from '../namespaces';
import type { PlanSeccomp } from '../plan/run';
import { BARE_LAUNCH, EXTRA, HARDENING, OP_SEP, PID_MARK, TAG, type SpawnSpec } from '../wire';
import { ConfigError } from './check';
import type { CgroupMountPlan } from './cgroup-mount';
import type { OciConfig, OciDevice, OciHook, OciIdMapping, OciMount, OciProcess } from './config';
import { MOUNT_FLAGS as F } from './mount-options';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const OCI_NS: Record<string, string> = { pid: 'pid', network: 'net', mount: 'mount', ipc: 'ipc', uts: 'uts', user: 'user', cgroup: 'cgroup', time: 'time' };
const RLIMITS = ['CPU', 'FSIZE', 'DATA', 'STACK', 'CORE', 'RSS', 'NPROC', 'NOFILE', 'MEMLOCK', 'AS', 'LOCKS', 'SIGPENDING', 'MSGQUEUE', 'NICE', 'RTPRIO', 'RTTIME'];
/** linux.rootfsPropagation as runc gives it to "/": the r forms recursive, the others "/" alone. */
const PROPAGATION: Record<string, number> = {
  shared: F.MS_SHARED, slave: F.MS_SLAVE, private: F.MS_PRIVATE, unbindable: F.MS_UNBINDABLE,
  rshared: F.MS_SHARED | F.MS_REC, rslave: F.MS_SLAVE | F.MS_REC, rprivate: F.MS_PRIVATE | F.MS_REC, runbindable: F.MS_UNBINDABLE | F.MS_REC,
};
/** runc's devices, made in every container whose /dev is not a bind mount. */
export const DEFAULT_DEVICES: OciDevice[] = [
  ['/dev/null', 1, 3], ['/dev/zero', 1, 5], ['/dev/full', 1, 7], ['/dev/random', 1, 8], ['/dev/urandom', 1, 9], ['/dev/tty', 5, 0],
].map(([path, major, minor]) => ({ type: 'c', path: path as string, major: major as number, minor: minor as number, fileMode: 0o666, uid: 0, gid: 0 }));
const DEV_LINKS: [string, string][] = [['/proc/self/fd', '/dev/fd'], ['/proc/self/fd/0', '/dev/stdin'], ['/proc/self/fd/1', '/dev/stdout'], ['/proc/self/fd/2', '/dev/stderr']];

/** A path as runc cleans it (filepath.Clean of an absolute one): no //, no /./, no trailing /, .. resolved lexically. */
function cleanPath(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

const deviceStep = (d: OciDevice, bind: boolean): [string, string] => [TAG.OCI_STEP, `${bind ? 'N' : 'n'}${[d.path, d.type === 'u' ? 'c' : d.type, d.major, d.minor, (d.fileMode ?? 0o666).toString(8), d.uid ?? -1, d.gid ?? -1].join(OP_SEP)}`];

/**
 * /dev as runc 1.1 sets it up: unless a mount binds something onto /dev
 * (bind or rbind), the default devices and the config's own (one of the
 * config's naming a default's path takes its place) are made in whatever
 * /dev is there — a mount of the config's or the rootfs's own directory,
 * where they stay after the container — with the fd and stdio links
 * (/dev/core too where the kernel has /proc/kcore), and /dev/ptmx is made a
 * link to pts/ptmx, in place of whatever was there, a device the config
 * names included. Over a bound /dev nothing is made, not even the config's
 * devices: that /dev is someone else's (the host's, as often as not). With
 * `bind` (a user namespace: the container's or the runtime's own) the
 * host's node of each path is bound onto a file there, even where the
 * path exists already; else it is made, and one already there is left.
 */
export function deviceSteps(c: Pick<OciConfig, 'mounts' | 'linux'>, kcore: boolean, bind: boolean): [string, string][] {
  if (c.mounts.some((m) => cleanPath(m.destination) === '/dev' && (m.flags & F.MS_BIND) !== 0)) return [];
  const own = c.linux.devices.filter((d) => cleanPath(d.path) !== '/dev/ptmx');
  const listed = new Set(c.linux.devices.map((d) => d.path));
  const steps = [...DEFAULT_DEVICES.filter((d) => !listed.has(d.path)), ...own].map((d) => deviceStep(d, bind));
  const links = kcore ? [...DEV_LINKS, ['/proc/kcore', '/dev/core'] as [string, string]] : DEV_LINKS;
  steps.push([TAG.OCI_STEP, `Lpts/ptmx${OP_SEP}/dev/ptmx`]);
  for (const [target, link] of links) steps.push([TAG.OCI_STEP, `l${target}${OP_SEP}${link}`]);
  return steps;
}

export interface OciPlanInput {
  config: OciConfig;
  /** the caller is not root: maps beyond itself go through newuidmap, setgroups is denied */
  rootless: boolean;
  uid: number;
  gid: number;
  noPivot: boolean;
  /** --no-new-keyring: the process keeps the caller's session keyring */
  noNewKeyring?: boolean;
  /** the container's id: its session keyring is _ses.ID; absent, none is joined (as with noNewKeyring) */
  id?: string;
  /** fd of ours → the number tsns-oci-init sees it as */
  fd: (ours: number) => number;
  /** the state directory, open (helper's number); null: no fifo (exec) */
  stateDirFd: number | null;
  /** the helper's report pipe and a pipe's read end: the process stops there before the pivot for the hooks (native/oci.c hooks_pause) */
  hooksFds?: { report: number; go: number } | null;
  consoleSocket: string | null;
  /** no --console-socket, a foreground run: the helper's fd for its socket pair (the terminal is relayed); else null */
  consoleFd?: number | null;
  preserveFds: number;
  /** namespace paths opened: path → our fd */
  openNs: (path: string) => number;
  seccomp: { programs: PlanSeccomp[]; listener: { path: string; state: string } | null } | null;
  cgroup: { procs: number[]; dir: number | null } | null;
  /** the container's HOME when its environment has none (its /etc/passwd, as runc reads it) */
  home: string;
  /** on a host with v1 hierarchies: what stands for a `cgroup` mount, with a cgroup namespace of the container's own or not (cgroup-mount.ts) */
  cgroupV1?: (m: OciMount, cgroupns: boolean) => CgroupMountPlan;
  /** the startContainer hooks' stdin (startState()); needed when the config has any */
  startState?: string;
  /** --pidfd-socket, absolute */
  pidfdSocket?: string | null;
  /** the kernel has /proc/kcore: /dev/core links to it, as runc's */
  kcore?: boolean;
  /** tsns-oci runs in a user namespace (of a rootless engine's): devices are bound, never made */
  inUserns?: boolean;
}

/**
 * The state the startContainer hooks read, made before the process exists:
 * status "created" and, as the runtime spec has it, the pid as the host
 * sees it (runc 1.1 gives the container's own, 1), which the process puts
 * in for PID_MARK (native/oci-hook.c).
 */
export function startState(s: { ociVersion: string; id: string; bundle: string; annotations: Record<string, string> }): string {
  const text = JSON.stringify({ ociVersion: s.ociVersion, id: s.id, status: 'created', pid: 1, bundle: s.bundle, ...(Object.keys(s.annotations).length ? { annotations: s.annotations } : {}) });
  // a string's quotes are escaped in JSON, so the first "pid":1, is the key's
  return text.replace('"pid":1,', `"pid":${PID_MARK},`);
}

/** The startContainer hooks as the wire has them (native/oci.h struct oci_hook). */
export function startHookEntries(hooks: readonly OciHook[], source: string): [string, string][] {
  return hooks.map((h, i) => {
    const args = h.args.length ? h.args : [h.path];
    for (const [k, v] of [...args.map((a, j) => [`args[${j}]`, a]), ...(h.env ?? []).map((e, j) => [`env[${j}]`, e])]) {
      if (v!.includes(OP_SEP)) throw new ConfigError(source, `hooks.startContainer[${i}].${k}`, 'contains the byte 0x01, which tsns-oci cannot pass on');
    }
    return [TAG.OCI_HOOK, [h.timeout ?? 0, h.path, args.length, h.env === null ? -1 : h.env.length, ...args, ...(h.env ?? [])].join(OP_SEP)];
  });
}

/**
 * The device rules a container's cgroup gets, as runc 1.1 makes them
 * (specconv.CreateCgroupConfig): the config's own, then runc's allowed
 * devices (null, zero, full, tty, random, urandom, ptmx, /dev/pts/*, tun,
 * and mknod of any). Engines (podman, containerd) write only a "deny all"
 * and leave those to the runtime: without them the container cannot open
 * /dev/null (so `cmd &` in a shell fails at once) nor /dev/ptmx (so no
 * console). A default device whose path linux.devices names gives up its
 * rule with its node (the config's device takes its place), and
 * linux.devices adds no rules of its own: what the container may open is
 * the config's rules' business. No rules at all: none are added, as
 * nothing is restricted then.
 */
export function deviceRules(rules: readonly DeviceRule[] | undefined, devices: readonly OciDevice[]): DeviceRule[] | undefined {
  if (!rules?.length) return rules === undefined ? undefined : [...rules];
  const named = new Set(devices.map((d) => d.path));
  const replaced = DEFAULT_DEVICES.filter((d) => named.has(d.path));
  const kept = ALLOWED_DEVICES.filter((r) => !replaced.some((d) => r.type === d.type && r.major === d.major && r.minor === d.minor));
  return [...rules, ...kept];
}

/** keyctl's KEY_USR_SEARCH and KEY_OTH_SEARCH. */
const KEY_USR_SEARCH = 0x80000;
const KEY_OTH_SEARCH = 0x8;

/**
 * runc's session keyring: the container's process joins `_ses.ID` (made
 * when there is none), not the caller's; create adds `search` to its
 * permissions (the owner's, or with a user namespace everyone's) so that
 * exec can join it too, as it does with no bits to add.
 */
export function sessionKeyring(id: string, addPerm = 0): string {
  return `${EXTRA.SESSION_KEYRING}${addPerm ? addPerm.toString(16) : ''}${OP_SEP}_ses.${id}`;
}

const mapText = (m: readonly OciIdMapping[]) => m.map((x) => `${x.containerID} ${x.hostID} ${x.size}\n`).join('');

function capsEntry(p: OciProcess, source: string): string | null {
  const c = p.capabilities;
  if (!c) return null;
  const mask = (names: string[], set: string) => names.reduce((m, name, i) => {
    const bit = capabilityMask(name);
    if (bit === undefined || name.toUpperCase() === 'ALL') throw new ConfigError(source, `process.capabilities.${set}[${i}]`, `unknown capability ${name}`);
    return m | bit;
  }, 0n);
  return `${EXTRA.CAPS}${[mask(c.bounding, 'bounding'), mask(c.effective, 'effective'), mask(c.permitted, 'permitted'), mask(c.inheritable, 'inheritable'), mask(c.ambient, 'ambient')].join(',')}`;
}

/** The process's own part, shared by create and exec: identity, caps, rlimits, env. */
export function processEntries(p: OciProcess, source: string, base: string): { extras: string[]; steps: [string, string][]; env: string[]; searchPath: string } {
  const extras: string[] = [];
  const caps = capsEntry(p, source);
  if (caps) extras.push(caps);
  p.rlimits.forEach((r, i) => {
    const res = RLIMITS.indexOf(r.type.replace(/^RLIMIT_/, ''));
    if (!r.type.startsWith('RLIMIT_') || res < 0) throw new ConfigError(source, `${base}.rlimits[${i}].type`, `unknown rlimit ${r.type}`);
    if (r.soft > r.hard) throw new ConfigError(source, `${base}.rlimits[${i}]`, 'soft is above hard');
    extras.push(`${EXTRA.RLIMIT}${res} ${r.soft} ${r.hard}`);
  });
  const steps: [string, string][] = [];
  if (p.user.umask !== null) steps.push([TAG.OCI_STEP, `u${p.user.umask.toString(8)}`]);
  if (p.oomScoreAdj !== null) steps.push([TAG.OCI_STEP, `o${p.oomScoreAdj}`]);
  const path = p.env.find((e) => e.startsWith('PATH='));
  return { extras, steps, env: p.env, searchPath: path ? path.slice(5) : DEFAULT_PATH };
}

export function planOci(input: OciPlanInput, source = 'config.json'): SpawnSpec {
  const { config: c } = input;
  const lin = c.linux;
  let flags = 0;
  const joins: SpawnSpec['joins'][number][] = [];
  const types = new Set(lin.namespaces.map((n) => n.type));
  // The user namespace first: it grants the rights for joining the rest.
  const order = [...lin.namespaces].sort((a, b) => (a.type === 'user' ? -1 : 0) - (b.type === 'user' ? -1 : 0));
  for (const ns of order) {
    const info = NAMESPACES.find((n) => n.name === OCI_NS[ns.type])!;
    if (ns.path === null) flags |= info.flag;
    else joins.push({ type: info.flag, fd: input.fd(input.openNs(ns.path)), fromTarget: false });
  }
  const at = (i: number) => `linux.namespaces`;
  if (!types.has('mount')) throw new ConfigError(source, at(0), 'a mount namespace is required', 'add {"type": "mount"}');
  if ((c.hostname || c.domainname) && !types.has('uts')) throw new ConfigError(source, c.hostname ? 'hostname' : 'domainname', 'needs a UTS namespace of its own', 'add {"type": "uts"} to linux.namespaces');
  const newUser = (flags & NAMESPACES.find((n) => n.name === 'user')!.flag) !== 0;
  // With a user namespace joined by path they are that namespace's (runc wants them then, as a CRI pod's config has them): not written.
  const joinedUser = lin.namespaces.some((n) => n.type === 'user' && n.path !== null);
  if ((lin.uidMappings.length || lin.gidMappings.length) && !newUser && !joinedUser) throw new ConfigError(source, 'linux.uidMappings', 'id mappings need a new user namespace', 'add {"type": "user"} to linux.namespaces');
  if (newUser && (!lin.uidMappings.length || !lin.gidMappings.length)) throw new ConfigError(source, 'linux.uidMappings', 'a new user namespace needs uidMappings and gidMappings');
  const self = (m: readonly OciIdMapping[], id: number) => m.length === 1 && m[0]!.hostID === id && m[0]!.size === 1;
  const helperUid = newUser && input.rootless && !self(lin.uidMappings, input.uid);
  const helperGid = newUser && input.rootless && !self(lin.gidMappings, input.gid);
  const setgroups = newUser && input.rootless && !helperGid ? 'deny' : null;
  const p = c.process;
  // runc's rule: a runtime that is not root sets no groups (not even none: setgroups(2) is not called,
  // where the kernel would allow it), and refuses to be asked for some; as
  // root (also root of a rootless engine's user namespace) they are set unless the process's user
  // namespace denies setgroups, which the shim finds out in the container (native/oci.c).
  const rootlessEuid = input.uid !== 0;
  if (rootlessEuid && p.user.additionalGids.length) throw new ConfigError(source, 'process.user.additionalGids', 'cannot set any additional groups in a rootless container', 'leave additionalGids out, or run tsns-oci as root');

  const proc = processEntries(p, source, 'process');
  // "/" as rootfsPropagation says (rslave without one) before the rootfs's bind, in the container (native/oci-root.c),
  // where the mount the rootfs is on is then made private if it is shared, as runc does.
  const rootProp = lin.rootfsPropagation ? PROPAGATION[lin.rootfsPropagation]! : F.MS_SLAVE | F.MS_REC;
  // runc refuses these with --no-pivot, in these words.
  if (input.noPivot && rootProp & F.MS_PRIVATE) throw new ConfigError(source, 'linux.rootfsPropagation', `rootfsPropagation of [r]private is not safe without pivot_root`, 'use rslave (the default) or leave out --no-pivot');
  const oci: [string, string][] = [[TAG.OCI_ROOT, `${c.root.readonly ? 'r' : ''}${input.noPivot ? 'n' : ''}${rootProp}:${c.root.path}`]];
  const links: [string, string][] = [];
  for (const m0 of c.mounts) {
    // The shim mounts a `cgroup` mount without data as the namespace's cgroup2 view (runc passes no data there either).
    const expanded = m0.type === 'cgroup' && input.cgroupV1 ? input.cgroupV1(m0, types.has('cgroup'))
      : { mounts: [m0.type === 'cgroup' ? { ...m0, data: '' } : m0], links: [] };
    links.push(...expanded.links);
    for (const m of expanded.mounts) oci.push([TAG.OCI_MOUNT, [m.destination, m.source ?? '', m.type ?? '', m.flags, m.propagation, m.attr, m.recAttr, m.data].join(OP_SEP)]);
  }
  for (const [target, link] of links) oci.push([TAG.OCI_STEP, `l${target}${OP_SEP}${link}`]);
  oci.push(...proc.steps);
  oci.push(...deviceSteps(c, input.kcore ?? false, types.has('user') || (input.inUserns ?? false)));
  for (const path of lin.maskedPaths) oci.push([TAG.OCI_STEP, `m${path}`]);
  for (const path of lin.readonlyPaths) oci.push([TAG.OCI_STEP, `r${path}`]);
  for (const [k, v] of Object.entries(lin.sysctl)) oci.push([TAG.OCI_STEP, `s${k.replace(/\./g, '/')}${OP_SEP}${v}`]);
  if (lin.personality !== null) oci.push([TAG.OCI_STEP, `p${lin.personality}`]);
  if (c.hooks.startContainer?.length) {
    oci.push(...startHookEntries(c.hooks.startContainer, source));
    oci.push([TAG.OCI_HOOK_STATE, input.startState ?? '{}']);
  }

  const extras = [...proc.extras];
  if (input.stateDirFd !== null) extras.push(`${EXTRA.EXEC_FIFO}${input.stateDirFd}`);
  if (input.hooksFds) extras.push(`${EXTRA.OCI_HOOKS}${input.hooksFds.report},${input.hooksFds.go}`);
  if (input.pidfdSocket) extras.push(`${EXTRA.PIDFD_SOCKET}${input.pidfdSocket}${OP_SEP}standard`);
  if (!rootlessEuid) extras.push(`${EXTRA.GROUPS}${p.user.additionalGids.join(',')}`);
  if (!input.noNewKeyring && input.id !== undefined) extras.push(sessionKeyring(input.id, types.has('user') ? KEY_OTH_SEARCH : KEY_USR_SEARCH));
  if (p.terminal) {
    const size = [p.consoleSize?.height ?? 0, p.consoleSize?.width ?? 0];
    if (input.consoleSocket) extras.push(`${EXTRA.CONSOLE}${[input.consoleSocket, ...size].join(OP_SEP)}`);
    else if (input.consoleFd != null) extras.push(`${EXTRA.CONSOLE_FD}${[input.consoleFd, ...size].join(OP_SEP)}`);
    // create has refused it already (terminal.ts checkConsoleSocket): not a user's error here.
    else throw new Error('planOci: a terminal needs consoleSocket or consoleFd');
  }
  const env = proc.env.some((e) => e.startsWith('HOME=')) ? proc.env : [...proc.env, `HOME=${input.home}`];
  const stdio: (number | null)[] = [];
  for (let i = 0; i < input.preserveFds; i++) stdio[3 + i] = 3 + i;
  return {
    ...BARE_LAUNCH,
    flags, joins,
    uidMap: newUser ? mapText(lin.uidMappings) : null, gidMap: newUser ? mapText(lin.gidMappings) : null,
    uidMapHelper: helperUid, gidMapHelper: helperGid, setgroups,
    hostname: c.hostname, domainname: c.domainname, propagation: 0,
    wd: p.cwd, uid: p.user.uid, gid: p.user.gid,
    // runc's init always starts a session of its own; a runtime that is not root leaves the groups it was given (see above).
    hardening: `${p.noNewPrivileges ? HARDENING.NO_NEW_PRIVS : ''}${HARDENING.NEW_SESSION}${rootlessEuid ? HARDENING.KEEP_GROUPS : ''}`,
    seccomp: input.seccomp?.programs ?? [], seccompListener: input.seccomp?.listener ?? null,
    extras, cgroupProcs: input.cgroup?.procs ?? [], cgroupDir: input.cgroup?.dir ?? null,
    file: p.args[0]!, argv: p.args, env, searchPath: proc.searchPath, stdio, inheritFds: false, oci,
  };
}

/**
 * Mappings given beside a user namespace joined by path must be that
 * namespace's own, as runc 1.2 checks (1.1 took them unread): a config whose
 * ids say one thing where the kernel does another would mislead whatever
 * reads it. `read` gives the joined namespace's uid_map or gid_map as this
 * process sees them, or null where its path alone does not say (then the
 * check is left out, and `skipped` says so).
 */
export function checkJoinedUserMaps(
  c: OciConfig, read: (path: string, file: 'uid_map' | 'gid_map') => string | null, source = 'config.json', skipped: (why: string) => void = () => {},
): void {
  const joined = c.linux.namespaces.find((n) => n.type === 'user' && n.path !== null)?.path;
  if (!joined) return;
  const sorted = (m: readonly OciIdMapping[]) => [...m].sort((a, b) => a.containerID - b.containerID).map((e) => `${e.containerID} ${e.hostID} ${e.size}`);
  for (const [key, file] of [['uidMappings', 'uid_map'], ['gidMappings', 'gid_map']] as const) {
    const given = c.linux[key];
    if (!given.length) continue;
    const text = read(joined, file);
    if (text === null) {
      skipped(`linux.${key} not checked against the user namespace at ${joined}: not a /proc/PID/ns/user path`);
      continue;
    }
    const real = parseIdMap(text).sort((a, b) => a.inner - b.inner).map((e) => `${e.inner} ${e.outer} ${e.count}`);
    if (sorted(given).join(',') !== real.join(',')) {
      throw new ConfigError(source, `linux.${key}`, `${sorted(given).join(', ')} is not the mapping of the user namespace joined at ${joined}, which is ${real.join(', ') || 'empty'}`,
        `give that namespace's ${file} (containerID hostID size), or leave linux.${key} out`);
    }
  }
}
