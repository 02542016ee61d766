/**
 * tsns-oci --systemd-cgroup: the container's cgroup is a transient scope
 * that systemd makes, through its D-Bus API, as runc's systemd driver does
 * it (libcontainer/cgroups/systemd, runc 1.1): StartTransientUnit with
 * Slice, Delegate, PIDs, the accounting properties and
 * DefaultDependencies=false, waited for until its job is done; then the
 * hierarchies systemd does not manage joined by hand, the resource
 * properties set on the unit and the same limits written to the cgroup
 * files; `update` sets the properties again (SetUnitProperties) and
 * writes the files; `delete` stops the unit (StopUnit) and removes what
 * is left. Loaded only with --systemd-cgroup.
 *
 * The connection is runc's: as root the system bus, else systemd's private
 * socket (/run/systemd/private); rootless, the user's bus.
 */
import { closeSync, constants, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Cgroup, CgroupHierarchyDir } from '../cgroup/apply';
import { writeAll } from '../cgroup/apply';
import type { CgroupLayout, Hierarchy } from '../cgroup/detect';
import { deviceProgram } from '../cgroup/devices';
import { cgroupError, errnoOf, oomKillCount, readText, writeValue } from '../cgroup/files';
import { resourceWrites } from '../cgroup/limits';
import { dirFor, removeCgroup } from '../cgroup/ops';
import type { LinuxResources } from '../cgroup/resources';
import { TsnsError } from '../errors';
import { cgroupDevices } from '../native';
import { addressPaths, DbusConnection, DbusError, variant, type DbusValue, type Message } from './dbus';
import { debug, warn } from './log';
import {
  annotationProperties, expandSlice, resourceProperties, unitDir, type DeviceLookup, type Property, type SystemdUnit,
} from './systemd-props';

export { systemdUnit } from './systemd-props';

const SYSTEMD = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const JOB_TIMEOUT_MS = 30_000;

/** The v1 hierarchies runc's driver knows (legacySubsystems); a named hierarchy other than systemd's is not the container's. */
const V1_CONTROLLERS = ['cpuset', 'devices', 'memory', 'cpu', 'cpuacct', 'pids', 'blkio', 'hugetlb', 'perf_event', 'freezer', 'net_prio', 'net_cls', 'name=systemd', 'rdma', 'misc'];

interface Endpoint {
  what: string;
  address: string;
  bus: boolean;
}

/** Where systemd is reached, in runc's order. */
function endpoints(rootless: boolean): Endpoint[] {
  if (rootless) {
    const env = process.env.DBUS_SESSION_BUS_ADDRESS;
    const xdg = process.env.XDG_RUNTIME_DIR;
    const address = env || (xdg ? `unix:path=${join(xdg, 'bus')}` : '');
    return address ? [{ what: "the user's bus", address, bus: true }] : [];
  }
  const system = process.env.DBUS_SYSTEM_BUS_ADDRESS || 'unix:path=/run/dbus/system_bus_socket';
  const out = [{ what: 'the system bus', address: system, bus: true }];
  if (process.geteuid?.() === 0) out.push({ what: "systemd's private socket", address: 'unix:path=/run/systemd/private', bus: false });
  return out;
}

export async function connectSystemd(rootless: boolean): Promise<DbusConnection> {
  const tried: string[] = [];
  let errno: string | undefined;
  for (const e of endpoints(rootless)) {
    for (const path of addressPaths(e.address)) {
      try {
        const c = await DbusConnection.open(path, e.bus);
        debug(`systemd: connected through ${e.what} (${path})`);
        // Signals go to a private socket's peers unasked; on a bus, to those that subscribed and match.
        if (e.bus) {
          await c.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'AddMatch', 's',
            [`type='signal',sender='${SYSTEMD}',interface='${MANAGER}',member='JobRemoved'`]);
        }
        await c.call(SYSTEMD, MANAGER_PATH, MANAGER, 'Subscribe', '', []).catch(() => undefined);
        return c;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        errno ??= code;
        tried.push(`${e.what} ${path.replace(/^\0/, '@')}: ${(err as Error).message.replace(/^(connect )?\w+ /, '').trim() || code}`);
      }
    }
  }
  const none = rootless ? "no user bus ($DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR/bus are unset)" : 'no socket to try';
  throw new TsnsError(`cannot connect to systemd over D-Bus: ${tried.length ? tried.join('; ') : none}`, {
    stage: 'cgroup', ...(errno ? { errno } : {}),
    hint: rootless
      ? 'rootless --systemd-cgroup needs the user\'s systemd and its bus (the dbus-user-session package; systemctl --user start dbus)'
      : 'systemd must run as init, with its bus (dbus-daemon) or its private socket reachable: or leave out --systemd-cgroup',
  });
}

function unitError(what: string, e: unknown): TsnsError {
  if (e instanceof TsnsError) return e;
  const name = e instanceof DbusError ? ` (${e.type})` : '';
  return new TsnsError(`${what}: ${(e as Error).message}${name}`, { stage: 'cgroup', ...(e instanceof DbusError ? {} : { errno: errnoOf(e).code }) });
}

/** A job's result ("done", "failed", "canceled", …) once systemd removed it. */
async function jobResult(c: DbusConnection, job: string): Promise<string> {
  const m: Message = await c.signal((s) => s.member === 'JobRemoved' && s.body[1] === job, JOB_TIMEOUT_MS);
  return String(m.body[3]);
}

async function managerProperty(c: DbusConnection, name: string): Promise<DbusValue> {
  const [v] = await c.call(SYSTEMD, MANAGER_PATH, 'org.freedesktop.DBus.Properties', 'Get', 'ss', [MANAGER, name]);
  return (v as { value: DbusValue }).value;
}

/** systemd's version (Manager.Version, "252.38-1~deb12u1" → 252); -1 when it cannot be read. */
async function systemdVersion(c: DbusConnection): Promise<number> {
  try {
    const m = /v?(\d+)/.exec(String(await managerProperty(c, 'Version')));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

const needsVersion = (r: LinuxResources) => Boolean(r.cpu?.period || r.cpu?.cpus || r.cpu?.mems || r.unified);

const lookup: DeviceLookup = { procDevices: readText('/proc/devices') ?? '', exists: existsSync };

/** PID 1's cgroup in each hierarchy, by hierarchy ID (0: v2), from /proc/1/cgroup. */
function initCgroups(): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of (readText('/proc/1/cgroup') ?? '').split('\n')) {
    const m = /^(\d+):[^:]*:(.*)$/.exec(line);
    if (m) out.set(Number(m[1]), m[2]!);
  }
  return out;
}

/** The unit's directory in every hierarchy of the container, as runc's driver computes them. */
async function scopeDirs(c: DbusConnection, layout: CgroupLayout, slice: string, unit: string, rootless: boolean): Promise<CgroupHierarchyDir[]> {
  const dir = (h: Hierarchy, d: string): CgroupHierarchyDir => ({ version: h.version, controllers: h.controllers, mountpoint: h.mountpoint, dir: d, made: [] });
  const slicePath = expandSlice(slice);
  if (layout.mode === 'v2') {
    // Rootless, the slice is the user's manager's: user.slice/user-UID.slice/user@UID.service/SLICE.
    const base = rootless ? String(await managerProperty(c, 'ControlGroup')) : '';
    return [dir(layout.v2!, unitDir(layout.v2!.mountpoint, null, `${base}${slicePath}`, unit))];
  }
  const init = initCgroups();
  return layout.hierarchies
    .filter((h) => h.version === 2 || h.controllers.some((x) => V1_CONTROLLERS.includes(x)))
    .map((h) => dir(h, unitDir(h.mountpoint, init.get(h.version === 2 ? 0 : h.id) ?? '/', slicePath, unit)));
}

/** v1's hierarchies systemd does not manage: made, cpuset filled from its parent, and the pid written (runc's joinCgroups). */
function joinOthers(dirs: CgroupHierarchyDir[], pid: number): void {
  for (const d of dirs) {
    if (d.version !== 1 || d.controllers.includes('name=systemd')) continue;
    const levels: string[] = [];
    for (let p = d.dir; !existsSync(p); p = p.slice(0, p.lastIndexOf('/'))) levels.unshift(p);
    try {
      for (const l of levels) {
        mkdirSync(l);
        d.made.push(l);
        if (d.controllers.includes('cpuset')) {
          for (const f of ['cpuset.cpus', 'cpuset.mems']) writeValue(`${l}/${f}`, (readText(`${l.slice(0, l.lastIndexOf('/'))}/${f}`) ?? '').trim());
        }
      }
      writeValue(`${d.dir}/cgroup.procs`, String(pid));
    } catch (e) {
      throw cgroupError(`cannot put the container's process in ${d.dir}`, e);
    }
  }
}

/** The limits in the cgroup files, as runc's fs drivers write them after the unit's properties. */
function writeFiles(cg: Cgroup, r: LinuxResources, warnings: string[]): void {
  const place = (ctl: string) => dirFor(cg, ctl)?.version ?? null;
  const rw = resourceWrites(r, place, (ctl) => `the scope is in no hierarchy with the ${ctl} controller`);
  warnings.push(...rw.warnings);
  writeAll(rw.writes.map((w) => ({ ...w, dir: dirFor(cg, w.controller)!.dir })), warnings);
  if (rw.bpfDevices && cg.v2Dir) {
    const fd = openSync(cg.v2Dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      const n = cgroupDevices(fd, deviceProgram(rw.bpfDevices));
      if (n < 0) throw cgroupError(`cannot attach the device rules to ${cg.v2Dir}`, Object.assign(new Error(), { errno: n }));
    } finally {
      closeSync(fd);
    }
  }
}

async function setProperties(c: DbusConnection, unit: string, props: Property[]): Promise<void> {
  if (props.length === 0) return;
  debug(`systemd: SetUnitProperties ${unit} ${props.map(([n]) => n).join(' ')}`);
  try {
    await c.call(SYSTEMD, MANAGER_PATH, MANAGER, 'SetUnitProperties', 'sba(sv)', [unit, true, props]);
  } catch (e) {
    throw unitError(`cannot set the properties of ${unit}`, e);
  }
}

async function stop(c: DbusConnection, unit: string): Promise<void> {
  let job: string;
  try {
    [job] = (await c.call(SYSTEMD, MANAGER_PATH, MANAGER, 'StopUnit', 'ss', [unit, 'replace'])) as [string];
  } catch (e) {
    // NoSuchUnit: systemd stopped it already, when its last process ended (runc ignores every error here).
    debug(`systemd: StopUnit ${unit}: ${(e as Error).message}`);
    return;
  }
  const result = await jobResult(c, job).catch((e: Error) => e.message);
  if (result !== 'done') warn(`error removing unit \`${unit}\`: got \`${result}\`. Continuing...`);
}

export interface ScopeRequest {
  layout: CgroupLayout;
  unit: SystemdUnit;
  resources: LinuxResources;
  annotations: Record<string, string>;
  rootless: boolean;
}

/** A scope about to be made: systemd reached, the request checked, its directories known (for cgroup mounts). */
export interface PlannedScope {
  q: ScopeRequest;
  slice: string;
  conn: DbusConnection;
  /** the container's Cgroup, once the scope exists (its directories are known before) */
  cgroup: Cgroup;
  started: boolean;
}

/**
 * Check what the scope needs and connect to systemd, before anything is
 * made: a bad path, annotation or missing systemd fails as runc fails it,
 * with nothing to undo.
 */
export async function planScope(q: ScopeRequest): Promise<PlannedScope> {
  if (!q.layout.systemd) throw new TsnsError('systemd not running on this host, cannot use systemd cgroups manager', { stage: 'plan', hint: 'leave out --systemd-cgroup' });
  if (q.rootless && q.layout.mode !== 'v2') {
    throw new TsnsError('cannot use rootless systemd cgroups manager on cgroup v1', { stage: 'plan', hint: 'leave out --systemd-cgroup: rootless, only cgroup v2 can be delegated' });
  }
  const slice = q.unit.parent || (q.rootless ? 'user.slice' : 'system.slice');
  expandSlice(slice);
  annotationProperties(q.annotations);
  resourceProperties(q.resources, q.layout.mode === 'v2', 999, lookup, () => undefined);
  const conn = await connectSystemd(q.rootless);
  try {
    const dirs = await scopeDirs(conn, q.layout, slice, q.unit.unit, q.rootless);
    const memory = dirs.find((d) => d.controllers.includes('memory')) ?? dirs.find((d) => d.version === 2);
    const oomFile = memory ? `${memory.dir}/${memory.version === 1 ? 'memory.oom_control' : 'memory.events'}` : null;
    const cgroup: Cgroup = { dirs, v2Dir: dirs.find((d) => d.version === 2)?.dir ?? null, fresh: false, oomFile, oomBefore: 0, warnings: [], unit: q.unit.unit };
    return { q, slice, conn, cgroup, started: false };
  } catch (e) {
    conn.close();
    throw e;
  }
}

/** Start the scope with `pid` in it (tsns-oci-init, before it starts the container), join the other hierarchies, set its limits. */
export async function startScope(p: PlannedScope, pid: number): Promise<Cgroup> {
  const { q, slice, conn: c, cgroup: cg } = p;
  const v2 = q.layout.mode === 'v2';
  const base: Property[] = [['Description', variant('s', `tsns-oci container ${q.unit.name}`)]];
  if (q.unit.unit.endsWith('.slice')) base.push(['Wants', variant('as', [slice])]);
  else base.push(['Slice', variant('s', slice)], ['Delegate', variant('b', true)]);
  base.push(['PIDs', variant('au', [pid])]);
  // Accounting always on, as runc: the fs driver's behaviour, and the memory cgroup cannot be joined well later.
  base.push(['MemoryAccounting', variant('b', true)], ['CPUAccounting', variant('b', true)],
    [v2 ? 'IOAccounting' : 'BlockIOAccounting', variant('b', true)], ['TasksAccounting', variant('b', true)],
    ['DefaultDependencies', variant('b', false)], ...annotationProperties(q.annotations));
  debug(`systemd: StartTransientUnit ${q.unit.unit} in ${slice}, pid ${pid}`);
  try {
    const [job] = (await c.call(SYSTEMD, MANAGER_PATH, MANAGER, 'StartTransientUnit', 'ssa(sv)a(sa(sv))', [q.unit.unit, 'replace', base, []])) as [string];
    p.started = true;
    const result = await jobResult(c, job);
    if (result !== 'done') {
      await c.call(SYSTEMD, MANAGER_PATH, MANAGER, 'ResetFailedUnit', 's', [q.unit.unit]).catch(() => undefined);
      p.started = false;
      throw new TsnsError(`error creating systemd unit \`${q.unit.unit}\`: got \`${result}\``, { stage: 'cgroup', hint: `see \`systemctl status ${q.unit.unit}\` and systemd's log` });
    }
  } catch (e) {
    // runc: a unit that exists already is the container's (a scope its engine made, say)
    if (!(e instanceof DbusError && e.type.includes('org.freedesktop.systemd1.UnitExists'))) throw unitError(`cannot start the systemd unit ${q.unit.unit}`, e);
  }
  joinOthers(cg.dirs, pid);
  const version = needsVersion(q.resources) ? await systemdVersion(c) : -1;
  await setProperties(c, q.unit.unit, resourceProperties(q.resources, v2, version, lookup, (w) => cg.warnings.push(w)));
  writeFiles(cg, q.resources, cg.warnings);
  cg.oomBefore = cg.oomFile ? oomKillCount(cg.oomFile) ?? 0 : 0;
  return cg;
}

/** The scope no longer wanted (a failed create): its unit stopped, what is left of its cgroups removed, the connection closed. */
export async function dropScope(p: PlannedScope): Promise<void> {
  try {
    if (p.started) await stop(p.conn, p.q.unit.unit).catch(() => undefined);
    removeCgroup(p.cgroup, true);
  } catch (e) {
    warn(e instanceof Error ? e.message : String(e));
  } finally {
    p.conn.close();
  }
}

/** runc update: the unit's properties, then the cgroup files. Returns warnings. */
export async function updateScope(cg: Cgroup, r: LinuxResources, layout: CgroupLayout, rootless: boolean): Promise<string[]> {
  const c = await connectSystemd(rootless);
  const warnings: string[] = [];
  try {
    const version = needsVersion(r) ? await systemdVersion(c) : -1;
    // Device rules are left as create set them (runc freezes the container around
    // SetUnitProperties because systemd re-applies them disruptively; none are sent here).
    await setProperties(c, cg.unit!, resourceProperties({ ...r, devices: undefined }, layout.mode === 'v2', version, lookup, (w) => warnings.push(w)));
  } finally {
    c.close();
  }
  writeFiles(cg, { ...r, devices: undefined }, warnings);
  return warnings;
}

/** runc delete: stop the unit (systemd kills what is left and removes its cgroups), then remove the rest. */
export async function stopScope(cg: Cgroup, rootless: boolean): Promise<void> {
  try {
    const c = await connectSystemd(rootless);
    try {
      await stop(c, cg.unit!);
    } finally {
      c.close();
    }
  } catch (e) {
    warn(e instanceof Error ? e.message : String(e));
  }
  removeCgroup(cg, true);
}


/**
 * tsns-oci-init, which stays the container's parent in the foreground, out
 * of the scope again once the container runs: back in tsns-oci's own
 * cgroups, so that the scope holds the container's processes only (as
 * runc's, whose own process is never in it).
 */
export function leaveScope(layout: CgroupLayout, pid: number): void {
  for (const h of layout.hierarchies) {
    if (h.ownDir === null) continue;
    try {
      writeValue(`${h.ownDir}/cgroup.procs`, String(pid));
    } catch (e) {
      debug(`systemd: cannot move tsns-oci-init back to ${h.ownDir}: ${(e as Error).message}`);
    }
  }
}
