/**
 * Pure: where a cgroup goes in each hierarchy and which files get which
 * values — what `--dry-run` prints and what apply.ts carries out.
 *
 * Paths follow runc and docker: an absolute path is taken from each
 * hierarchy's root, a relative one from the caller's own cgroup there.
 * `tsns run` makes a cgroup of its own, named tsns-<pid>-<n>, under the
 * caller's cgroups (or --cgroup-parent), in the hierarchies its limits need
 * and the v2 one (which can freeze, kill and clone into); an OCI container
 * gets every hierarchy, as runc gives it.
 */
import { planError } from '../plan/identity';
import { hierarchyOf, whyMissing, type CgroupLayout, type Hierarchy } from './detect';
import type { DeviceRule, LinuxResources } from './resources';
import { controllersOf, resourceWrites, type CgroupWrite } from './limits';

export type CgroupPlacement =
  /** a new cgroup `name` under `parent` (absolute: from each root; relative or absent: from our own cgroup) */
  | { kind: 'create'; name: string; parent?: string }
  /** an existing cgroup, joined as it is */
  | { kind: 'join'; path: string }
  /** an OCI container's cgroupsPath: made where missing, used where it exists */
  | { kind: 'path'; path: string };

export interface CgroupDir {
  version: 1 | 2;
  /** the hierarchy's controllers (v2: those our cgroup offers) */
  controllers: string[];
  mountpoint: string;
  /** the cgroup's path from the hierarchy's root */
  path: string;
  dir: string;
  /** a directory that must exist already */
  base: string;
  /** the directories to make, top-down, the cgroup's own last; empty: joined as it is */
  levels: string[];
}

export interface PlannedWrite extends CgroupWrite {
  dir: string;
}

export interface CgroupPlan {
  placement: CgroupPlacement;
  dirs: CgroupDir[];
  writes: PlannedWrite[];
  /** v2: the controllers to enable along the way (subtree_control of base and each new level but the last) */
  enable: string[];
  /** v2 device rules, as an eBPF program attached to the v2 directory */
  bpfDevices: DeviceRule[] | null;
  warnings: string[];
  /** the v2 directory, which clone3(CLONE_INTO_CGROUP) can put the command in once tsns has made it */
  v2Dir: string | null;
  /** where the memory limit's OOM kills are counted: v1 memory.oom_control, v2 memory.events */
  oomFile: string | null;
}

export interface CgroupPlanInput {
  layout: CgroupLayout;
  resources: LinuxResources;
  placement: CgroupPlacement;
  /** 'needed': the hierarchies the limits use, and v2; 'all': every hierarchy (an OCI container's) */
  scope: 'needed' | 'all';
  /** runc's --systemd-cgroup was given */
  systemdCgroup?: boolean;
}

/** `slice:prefix:name`: systemd's form of a cgroup path (runc --systemd-cgroup). */
export function isSystemdPath(path: string): boolean {
  return /^[^/:]*:[^/:]*:[^/:]+$/.test(path);
}

function normalize(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw planError(`cgroup path '${path}' may not contain '..'`);
  return parts.join('/');
}

/** The hierarchy's directory of an absolute cgroup path, or null outside what is mounted. */
function dirIn(h: Hierarchy, path: string): string | null {
  if (h.root !== '/' && path !== h.root && !path.startsWith(`${h.root}/`)) return null;
  const rel = h.root === '/' ? path : path.slice(h.root.length);
  return `${h.mountpoint.replace(/\/+$/, '')}${rel === '/' ? '' : rel}`;
}

/** Where a cgroup path puts the cgroup in one hierarchy; the levels below what surely exists. */
function placeIn(h: Hierarchy, placement: CgroupPlacement): CgroupDir {
  const given = placement.kind === 'create' ? placement.parent : placement.path;
  const absolute = given !== undefined && given.startsWith('/');
  const rel = normalize(given ?? '');
  const leaf = placement.kind === 'create' ? normalize(placement.name) : '';
  const tail = [...(rel ? rel.split('/') : []), ...(leaf ? [leaf] : [])];
  const what = h.version === 2 ? 'the v2 hierarchy' : `the ${h.controllers.join(',')} hierarchy`;
  if (!absolute && h.ownDir === null) {
    throw planError(`cannot place a cgroup in ${what}: our own cgroup (${h.own}) is outside what is mounted at ${h.mountpoint}`,
      'a cgroup namespace hides it: run tsns outside the cgroup namespace, or give an absolute path');
  }
  const from = absolute ? '' : h.own === '/' ? '' : h.own;
  const asked = `${from}/${tail.join('/')}`.replace(/\/$/, '') || '/';
  const base = absolute ? h.mountpoint.replace(/\/+$/, '') : h.ownDir!;
  const inside = absolute ? dirIn(h, asked) : `${base}${tail.length ? `/${tail.join('/')}` : ''}`;
  // An absolute path outside what is mounted (a container that sees only its own subtree of the
  // host's hierarchy, without a cgroup namespace): below the mount all the same, as runc puts it,
  // which is where engines nested in such a container expect their containers' cgroups.
  // (Not in a cgroup namespace's view, whose mount root reads /../..: where / is there, is unknown.)
  const outside = inside === null;
  if (outside && h.root.split('/').includes('..')) throw planError(`cgroup path '${given}' is outside what is mounted at ${h.mountpoint} (its root is ${h.root})`);
  const dir = inside ?? `${base}${asked === '/' ? '' : asked}`;
  const path = outside ? `${h.root}${asked === '/' ? '' : asked}` : asked;
  // The parts below the base: from the mount's root for an absolute path.
  const below = absolute ? (outside ? asked : asked.slice(h.root === '/' ? 0 : h.root.length)).split('/').filter(Boolean) : tail;
  const levels = placement.kind === 'join' ? [] : below.map((_, i) => `${base}/${below.slice(0, i + 1).join('/')}`);
  return { version: h.version, controllers: h.controllers, mountpoint: h.mountpoint, path, dir, base, levels };
}

function chooseHierarchies(layout: CgroupLayout, controllers: readonly string[], scope: CgroupPlanInput['scope'], fromRoot: boolean): Hierarchy[] {
  if (scope === 'all') return layout.hierarchies;
  const chosen = new Set<Hierarchy>();
  for (const c of controllers) {
    const h = c === '' ? layout.v2 : hierarchyOf(layout, c, fromRoot);
    if (h) chosen.add(h);
  }
  if (layout.v2) chosen.add(layout.v2);
  // Nothing asked for on a v1-only machine: every hierarchy but named ones, so the command is still accounted.
  if (chosen.size === 0) for (const h of layout.hierarchies) if (!h.controllers.every((c) => c.startsWith('name='))) chosen.add(h);
  return layout.hierarchies.filter((h) => chosen.has(h));
}

export function planCgroup(input: CgroupPlanInput): CgroupPlan {
  const { layout, resources, placement, scope } = input;
  if (layout.mode === 'none') throw planError('cannot use cgroups: no cgroup filesystem is mounted (none in /proc/self/mountinfo)');
  const givenPath = placement.kind === 'create' ? placement.parent : placement.path;
  if (input.systemdCgroup && !layout.systemd) throw planError('systemd not running on this host, cannot use systemd cgroups manager', 'leave out --systemd-cgroup');
  if (input.systemdCgroup && !isSystemdPath(givenPath ?? '')) {
    throw planError(`expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "${givenPath ?? ''}" instead`);
  }
  if (givenPath !== undefined && isSystemdPath(givenPath)) {
    throw planError(layout.systemd
      ? `cgroup path '${givenPath}' is systemd's slice:prefix:name form, which tsns does not manage through systemd`
      : `systemd not running on this host, cannot use systemd cgroups manager (cgroup path '${givenPath}')`,
    'give a cgroupfs path instead, e.g. /tsns/NAME');
  }
  // What v2 offers depends on where the cgroup goes: from our own cgroup, or from the root.
  const fromRoot = givenPath !== undefined && givenPath.startsWith('/');
  const place = (c: string) => (c === '' ? (layout.v2 ? 2 : null) : hierarchyOf(layout, c, fromRoot)?.version ?? null);
  const rw = resourceWrites(resources, place, (c) => whyMissing(layout, c, fromRoot));
  const needed = controllersOf(rw.writes);
  const hierarchies = chooseHierarchies(layout, needed, scope, fromRoot);
  const dirs = hierarchies.map((h) => placeIn(h, placement));
  const dirOf = (controller: string) => {
    const h = controller === '' ? layout.v2 : hierarchyOf(layout, controller, fromRoot);
    return dirs[hierarchies.indexOf(h!)]!.dir;
  };
  const writes = rw.writes.map((w) => ({ ...w, dir: dirOf(w.controller) }));
  const v2Index = layout.v2 ? hierarchies.indexOf(layout.v2) : -1;
  const memory = hierarchyOf(layout, 'memory', fromRoot);
  // (Joined, a cgroup may turn out to exist in fewer: apply.ts keeps the ones it finds.)
  const memoryDir = memory && hierarchies.includes(memory) ? dirs[hierarchies.indexOf(memory)]!.dir : null;
  return {
    placement,
    dirs,
    writes,
    enable: needed.filter((c) => place(c) === 2),
    bpfDevices: rw.bpfDevices,
    warnings: rw.warnings,
    v2Dir: v2Index >= 0 ? dirs[v2Index]!.dir : null,
    oomFile: memoryDir && memory ? `${memoryDir}/${memory.version === 1 ? 'memory.oom_control' : 'memory.events'}` : null,
  };
}

/** The plan as --dry-run prints it: the cgroup, then each hierarchy's directory and files. */
export function describeCgroupPlan(plan: CgroupPlan): string[] {
  const p = plan.placement;
  const lines = [p.kind === 'join'
    ? `${p.path}, an existing cgroup, joined as it is`
    : p.kind === 'create'
      ? `${p.name}, new under ${p.parent ?? "the caller's own cgroups"}; removed when the command ends`
      : `${p.path}, made where missing`];
  for (const d of plan.dirs) {
    lines.push(`${(d.version === 2 ? 'v2' : `v1 ${d.controllers.join(',')}`).padEnd(11)}${d.dir}`);
    for (const w of plan.writes.filter((x) => x.dir === d.dir)) {
      lines.push(`  ${w.file} = ${w.value}${w.instead?.length ? ` (or ${w.instead.map((i) => `${i.file} = ${i.value}`).join(', ')})` : ''}`);
    }
    if (d.version === 2 && plan.enable.length) lines.push(`  cgroup.subtree_control += ${plan.enable.map((c) => `+${c}`).join(' ')} (the levels above)`);
    if (d.version === 2 && plan.bpfDevices) lines.push(`  devices: an eBPF program of ${plan.bpfDevices.length} rule${plan.bpfDevices.length === 1 ? '' : 's'}`);
  }
  const into = p.kind !== 'join' && plan.v2Dir !== null;
  const others = plan.dirs.length - (into ? 1 : 0);
  lines.push(`placement: ${[
    into ? 'cloned into the v2 cgroup (clone3 CLONE_INTO_CGROUP)' : '',
    others ? `its pid written to ${others === 1 && !into ? 'the' : 'each other'} cgroup.procs before it runs` : '',
  ].filter(Boolean).join('; ')}`);
  for (const w of plan.warnings) lines.push(`warning: ${w}`);
  return lines;
}
