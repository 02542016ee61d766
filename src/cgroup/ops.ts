/**
 * What a runtime does to a cgroup once it exists: find it again, change its
 * limits, freeze and thaw it, list and signal its processes, count its OOM
 * kills, remove it. Each works on a Cgroup (apply.ts), on v1, v2 and hybrid.
 */
import { existsSync } from 'node:fs';
import { planError } from '../plan/identity';
import { type Cgroup, type CgroupHierarchyDir, unmake, writeAll } from './apply';
import { hierarchyOf, type CgroupLayout } from './detect';
import { cgroupError, oomKillCount, pidsIn, readKeyed, readText, removeDir, sleepMs, subdirs, writeValue } from './files';
import { controllersOf, resourceWrites } from './limits';
import { planCgroup } from './plan';
import type { LinuxResources } from './resources';

/** The directory holding a controller's files: its v1 hierarchy's, else the v2 one. */
export function dirFor(cg: Pick<Cgroup, 'dirs'>, controller: string): CgroupHierarchyDir | undefined {
  return cg.dirs.find((d) => d.version === 1 && d.controllers.includes(controller)) ??
    cg.dirs.find((d) => d.version === 2 && (controller === '' || (readText(`${d.dir}/cgroup.controllers`) ?? '').split(/\s+/).includes(controller)));
}

/**
 * An existing cgroup (an OCI container's cgroupsPath, say), in every
 * hierarchy where it exists. Nothing of it is removed by removeCgroup()
 * unless `made` says tsns made it.
 */
export function openCgroup(layout: CgroupLayout, path: string): Cgroup {
  const plan = planCgroup({ layout, resources: {}, placement: { kind: 'join', path }, scope: 'all' });
  const dirs = plan.dirs.filter((d) => existsSync(`${d.dir}/cgroup.procs`))
    .map((d) => ({ version: d.version, controllers: d.controllers, mountpoint: d.mountpoint, dir: d.dir, made: [] }));
  if (dirs.length === 0) throw planError(`cgroup ${path} does not exist in any hierarchy`);
  const memory = dirs.find((d) => d.controllers.includes('memory') || (d.version === 2 && hierarchyOf(layout, 'memory')?.version === 2));
  const oomFile = memory ? `${memory.dir}/${memory.version === 1 ? 'memory.oom_control' : 'memory.events'}` : null;
  return { dirs, v2Dir: dirs.find((d) => d.version === 2)?.dir ?? null, fresh: false, oomFile, oomBefore: oomFile ? oomKillCount(oomFile) ?? 0 : 0, warnings: [] };
}

/** v2: the controllers enabled down to the cgroup, where they are missing (runc's update does as much). */
function enableAlong(d: CgroupHierarchyDir, controllers: readonly string[]): void {
  const have = (readText(`${d.dir}/cgroup.controllers`) ?? '').split(/\s+/);
  const todo = controllers.filter((c) => !have.includes(c));
  if (todo.length === 0) return;
  const rel = d.dir.slice(d.mountpoint.replace(/\/+$/, '').length).split('/').filter(Boolean);
  let dir = d.mountpoint.replace(/\/+$/, '');
  for (const part of rel) {
    const enabled = (readText(`${dir}/cgroup.subtree_control`) ?? '').split(/\s+/);
    const add = todo.filter((c) => !enabled.includes(c));
    if (add.length) {
      try {
        writeValue(`${dir}/cgroup.subtree_control`, add.map((c) => `+${c}`).join(' '));
      } catch (e) {
        throw cgroupError(`cannot enable ${add.join(', ')} in ${dir}/cgroup.subtree_control`, e);
      }
    }
    dir = `${dir}/${part}`;
  }
}

/**
 * Change a running cgroup's limits (runc update). Only what `r` names
 * changes; device rules stay as they are, as with runc. Returns warnings.
 */
export function updateCgroup(cg: Cgroup, r: LinuxResources): string[] {
  const place = (c: string) => dirFor(cg, c)?.version ?? null;
  const why = (c: string) => `the cgroup is in no hierarchy with the ${c} controller`;
  const rw = resourceWrites({ ...r, devices: undefined }, place, why);
  const v2 = cg.dirs.find((d) => d.version === 2);
  if (v2) enableAlong(v2, controllersOf(rw.writes).filter((c) => place(c) === 2 && c !== ''));
  const warnings = [...rw.warnings];
  writeAll(rw.writes.map((w) => ({ ...w, dir: dirFor(cg, w.controller)!.dir })), warnings);
  return warnings;
}

/** Every process in the cgroup and its sub-cgroups. */
export function cgroupProcs(cg: Pick<Cgroup, 'dirs'>): number[] {
  const primary = cg.dirs.find((d) => d.version === 2) ?? cg.dirs[0];
  if (!primary) return [];
  const all = new Set<number>();
  const walk = (dir: string) => {
    for (const p of pidsIn(dir)) all.add(p);
    for (const s of subdirs(dir)) walk(s);
  };
  walk(primary.dir);
  return [...all].sort((a, b) => a - b);
}

export type FreezerState = 'frozen' | 'freezing' | 'thawed';

function freezerOf(cg: Pick<Cgroup, 'dirs'>): CgroupHierarchyDir | undefined {
  // As runc on a hybrid machine: the v1 freezer where there is one.
  return cg.dirs.find((d) => d.version === 1 && d.controllers.includes('freezer')) ?? cg.dirs.find((d) => d.version === 2);
}

export function freezerState(cg: Pick<Cgroup, 'dirs'>): FreezerState {
  const f = freezerOf(cg);
  if (!f) return 'thawed';
  if (f.version === 1) {
    const s = (readText(`${f.dir}/freezer.state`) ?? '').trim();
    return s === 'FROZEN' ? 'frozen' : s === 'FREEZING' ? 'freezing' : 'thawed';
  }
  const events = readKeyed(`${f.dir}/cgroup.events`);
  if (events.frozen === 1) return 'frozen';
  return (readText(`${f.dir}/cgroup.freeze`) ?? '').trim() === '1' ? 'freezing' : 'thawed';
}

function setFreezer(f: CgroupHierarchyDir, frozen: boolean): void {
  const file = f.version === 1 ? 'freezer.state' : 'cgroup.freeze';
  const value = f.version === 1 ? (frozen ? 'FROZEN' : 'THAWED') : frozen ? '1' : '0';
  try {
    writeValue(`${f.dir}/${file}`, value);
  } catch (e) {
    throw cgroupError(`cannot ${frozen ? 'freeze' : 'thaw'} ${f.dir} (${file})`, e);
  }
}

/** Freeze every process (runc pause), and wait until the kernel says they are. */
export function freezeCgroup(cg: Pick<Cgroup, 'dirs'>, timeoutMs = 5000): void {
  const f = freezerOf(cg);
  if (!f) throw planError('cannot freeze: the cgroup has neither a v1 freezer nor a v2 directory');
  const until = Date.now() + timeoutMs;
  for (let i = 1; ; i++) {
    setFreezer(f, true);
    if (freezerState({ dirs: [f] }) === 'frozen') return;
    if (Date.now() > until) {
      setFreezer(f, false);
      throw cgroupError(`cannot freeze ${f.dir}: it did not finish freezing in ${timeoutMs} ms`, Object.assign(new Error(), { code: 'EBUSY', errno: 16 }));
    }
    // runc's remedy for a v1 freeze that hangs on a task in the middle of a fork: thaw once in a while.
    if (f.version === 1 && i % 50 === 0) setFreezer(f, false);
    sleepMs(i < 10 ? 1 : 10);
  }
}

/** Thaw it (runc resume); a cgroup that is gone has nothing to thaw. */
export function thawCgroup(cg: Pick<Cgroup, 'dirs'>): void {
  const f = freezerOf(cg);
  if (f && existsSync(f.dir)) setFreezer(f, false);
}

/**
 * Send `signal` to every process in the cgroup (runc kill --all): frozen
 * meanwhile so that none forks past it, and thawed after; SIGKILL on v2 is cgroup.kill.
 * (A cgroup that had cgroup.kill cannot have processes cloned into it
 * again: Linux kills them at once. tsns never reuses one.)
 */
export function killCgroup(cg: Pick<Cgroup, 'dirs'>, signal: NodeJS.Signals | number = 'SIGKILL'): void {
  const v2 = cg.dirs.find((d) => d.version === 2);
  if ((signal === 'SIGKILL' || signal === 9) && v2 && existsSync(`${v2.dir}/cgroup.kill`)) {
    writeValue(`${v2.dir}/cgroup.kill`, '1');
    // A task frozen by a v1 freezer dies only once thawed.
    if (freezerState(cg) !== 'thawed') thawCgroup(cg);
    return;
  }
  const f = freezerOf(cg);
  if (f && freezerState(cg) !== 'frozen') freezeCgroup(cg);
  try {
    for (const pid of cgroupProcs(cg)) {
      try {
        process.kill(pid, signal);
      } catch {
        // gone already
      }
    }
  } finally {
    // Thawed afterwards even if it was paused, as runc does: a frozen task would not die of its SIGKILL.
    if (f) thawCgroup(cg);
  }
}

/** The OOM kills since the cgroup was made (or opened). */
export function oomKills(cg: Pick<Cgroup, 'oomFile' | 'oomBefore'>): number {
  if (!cg.oomFile) return 0;
  return Math.max(0, (oomKillCount(cg.oomFile) ?? cg.oomBefore) - cg.oomBefore);
}

/** What tsns says when the memory limit killed: the command itself (SIGKILL), or one of its processes. */
export function oomMessage(kills: number, signal: string | null): string {
  return signal === 'SIGKILL' ? `killed by the memory limit (oom_kill ${kills})` : `the memory limit killed a process of the command (oom_kill ${kills})`;
}

/** rmdir a cgroup and its sub-cgroups, deepest first. */
function removeTree(dir: string): boolean {
  let ok = true;
  for (const s of subdirs(dir)) ok = removeTree(s) && ok;
  try {
    return removeDir(dir) && ok;
  } catch (e) {
    throw cgroupError(`cannot remove the cgroup ${dir}`, e);
  }
}

/**
 * Remove a cgroup tsns made: kill what is left in it, wait until it is
 * empty, rmdir it in every hierarchy, then the levels above it that tsns
 * made, where they are empty. Throws if a directory stays busy. `found`:
 * also where tsns found it already there (runc delete removes a
 * container's cgroup however it came to be).
 */
export function removeCgroup(cg: Cgroup, found = false): void {
  const own = cg.dirs.filter((d) => found || d.made.includes(d.dir));
  if (own.length === 0) return;
  if (cgroupProcs({ dirs: own }).length) {
    killCgroup({ dirs: own });
    // On v1 a task may fork between the listing and its kill: again until none is left.
    for (let i = 0; i < 200 && cgroupProcs({ dirs: own }).length; i++) {
      if (i % 10 === 9) killCgroup({ dirs: own.filter((d) => d.version === 1) });
      sleepMs(5);
    }
  }
  const busy = own.filter((d) => !removeTree(d.dir)).map((d) => d.dir);
  unmake({ dirs: cg.dirs.map((d) => ({ ...d, made: d.made.filter((m) => m !== d.dir) })) });
  if (busy.length) {
    throw cgroupError(`cannot remove the cgroup ${busy.join(', ')}`, Object.assign(new Error(), { code: 'EBUSY', errno: 16 }),
      'a process in it did not die: see its cgroup.procs');
  }
}

