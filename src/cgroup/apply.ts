/**
 * Carrying out a cgroup plan (plan.ts): make the directories, copy cpuset's
 * values down into new v1 levels (a process cannot join an empty cpuset),
 * enable the v2 controllers, write the limits, attach a v2 device program —
 * and on any failure undo what was made, so that nothing is left behind.
 */
import { mkdirSync, openSync, closeSync, constants } from 'node:fs';
import { cgroupDevices } from '../native';
import { deviceProgram } from './devices';
import { cgroupError, errnoOf, oomKillCount, readNumber, readText, removeDir, writeValue } from './files';
import type { PlannedWrite, CgroupPlan } from './plan';

/** A cgroup in one hierarchy, as tsns made or found it. */
export interface CgroupHierarchyDir {
  version: 1 | 2;
  controllers: string[];
  mountpoint: string;
  dir: string;
  /** the directories tsns made, top-down (the cgroup's own last); removed again, bottom-up */
  made: string[];
}

/** A cgroup in every hierarchy it is in: JSON, so that a runtime can keep it in its state. */
export interface Cgroup {
  dirs: CgroupHierarchyDir[];
  /** its v2 directory */
  v2Dir: string | null;
  /** the v2 directory was made just now: clone3(CLONE_INTO_CGROUP) may put a process there */
  fresh: boolean;
  /** where OOM kills are counted, and how many there were before the command */
  oomFile: string | null;
  oomBefore: number;
  warnings: string[];
  /** the systemd unit (tsns-oci --systemd-cgroup) whose cgroup this is: systemd made it, and removes it */
  unit?: string;
}

/** Why an unprivileged caller cannot make a cgroup here, and what to do. */
function permissionHint(version: 1 | 2): string {
  const optional = '--cgroup-optional runs the command without limits';
  if (process.geteuid?.() === 0) return `root may not write there (a read-only cgroup mount, or a container's): ${optional}`;
  return version === 1
    ? `on cgroup v1 only root can make cgroups (v1 cannot be delegated to a user safely): run as root, or ${optional}, as podman does rootless on v1`
    : `without root, limits need a cgroup v2 subtree delegated to you (systemd-run --user --scope -p Delegate=yes …); or ${optional}`;
}

/** mkdir each level (an existing one is fine), recording the ones made here. */
function makeLevels(levels: readonly string[], made: string[], version: 1 | 2): void {
  for (let attempt = 0; ; attempt++) {
    try {
      for (const dir of levels) {
        try {
          mkdirSync(dir);
          made.push(dir);
        } catch (e) {
          if (errnoOf(e).code !== 'EEXIST') throw e;
        }
      }
      return;
    } catch (e) {
      // A parent made by another tsns may vanish as it ends: make it again.
      if (errnoOf(e).code !== 'ENOENT' || attempt === 3) {
        const at = levels.find((l) => !made.includes(l)) ?? levels[levels.length - 1];
        const { code } = errnoOf(e);
        throw cgroupError(`cannot create the cgroup ${at}`, e, code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? permissionHint(version) : undefined);
      }
    }
  }
}

/** v1 cpuset: a new level starts with no CPUs and no memory nodes; give it its parent's. */
function inheritCpuset(base: string, levels: readonly string[]): void {
  let parent = base;
  for (const dir of levels) {
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if ((readText(`${dir}/${file}`) ?? '').trim() !== '') continue;
      const value = (readText(`${parent}/${file}`) ?? '').trim();
      try {
        writeValue(`${dir}/${file}`, value);
      } catch (e) {
        throw cgroupError(`cannot copy ${file} '${value}' from ${parent} into ${dir}`, e);
      }
    }
    parent = dir;
  }
}

/** v2: the controllers enabled in subtree_control from the base down to the cgroup's parent. */
function enableControllers(base: string, levels: readonly string[], controllers: readonly string[]): void {
  if (controllers.length === 0) return;
  const offered = (readText(`${base}/cgroup.controllers`) ?? '').split(/\s+/);
  const missing = controllers.filter((c) => !offered.includes(c));
  if (missing.length) {
    throw cgroupError(`cannot enable the ${missing.join(', ')} controller in ${base}`, Object.assign(new Error(), { code: 'ENOENT', errno: 2 }),
      `${base}/cgroup.controllers offers only '${offered.join(' ').trim()}': the controller must be delegated to this subtree`);
  }
  for (const dir of [base, ...levels.slice(0, -1)]) {
    const enabled = (readText(`${dir}/cgroup.subtree_control`) ?? '').split(/\s+/);
    const todo = controllers.filter((c) => !enabled.includes(c));
    if (todo.length === 0) continue;
    try {
      writeValue(`${dir}/cgroup.subtree_control`, todo.map((c) => `+${c}`).join(' '));
    } catch (e) {
      throw cgroupError(`cannot enable ${todo.join(', ')} in ${dir}/cgroup.subtree_control`, e, errnoOf(e).code === 'EBUSY'
        ? `${dir} has processes of its own, and cgroup v2 enables controllers only for cgroups without them: give --cgroup-parent a cgroup that has none`
        : undefined);
    }
  }
}

function writeHint(w: PlannedWrite, code: string): string | undefined {
  if (code === 'EBUSY' && w.controller === 'memory') {
    const usage = readNumber(`${w.dir}/memory.usage_in_bytes`) ?? readNumber(`${w.dir}/memory.current`);
    return `the cgroup uses more memory already${usage === null ? '' : ` (${usage} bytes)`}`;
  }
  if (code === 'ERANGE' || (code === 'EINVAL' && w.controller === 'cpuset')) return 'those CPUs or memory nodes are not available to the cgroup';
  if (code === 'ENODEV') return 'no such block device';
  if (code === 'EINVAL' && w.file.startsWith('cpu.rt_')) return 'every cgroup above it needs a realtime budget of its own (cpu.rt_runtime_us)';
  if (code === 'ENOENT' && /weight/.test(w.file) && /^(blkio|io)$/.test(w.controller)) {
    return `this kernel has no ${[w.file, ...(w.instead ?? []).map((i) => i.file)].join(' or ')}: a block I/O weight needs the BFQ I/O scheduler (CONFIG_IOSCHED_BFQ), or io.weight's iocost on cgroup v2; leave the weight out`;
  }
  if (code === 'ENOENT') return `this kernel has no ${w.file}`;
  return undefined;
}

/** One write, or the first of its `instead` files that exists; false: skipped as missing. */
function writeOne(w: PlannedWrite, warnings: string[]): boolean {
  const choices = [{ file: w.file, value: w.value }, ...(w.instead ?? [])];
  for (const [i, c] of choices.entries()) {
    try {
      writeValue(`${w.dir}/${c.file}`, c.value);
      return true;
    } catch (e) {
      const { code } = errnoOf(e);
      if (code === 'ENOENT' && i < choices.length - 1) continue;
      if (code === 'ENOENT' && w.missing) {
        warnings.push(w.missing);
        return false;
      }
      throw Object.assign(cgroupError(`cannot set ${c.file} to '${c.value}' in ${w.dir}`, e, writeHint(w, code)), { errnoCode: code });
    }
  }
  return false;
}

/** The writes in order; a group failing with EINVAL is written again the other way round. */
export function writeAll(writes: readonly PlannedWrite[], warnings: string[]): void {
  for (let i = 0; i < writes.length;) {
    const w = writes[i]!;
    let end = i + 1;
    while (w.group !== undefined && end < writes.length && writes[end]!.group === w.group) end++;
    const group = writes.slice(i, end);
    try {
      for (const g of group) writeOne(g, warnings);
    } catch (e) {
      if (group.length < 2 || (e as { errnoCode?: string }).errnoCode !== 'EINVAL') throw e;
      for (const g of [...group].reverse()) writeOne(g, warnings);
    }
    i += group.length;
  }
}

function attachDevices(plan: CgroupPlan): void {
  if (!plan.bpfDevices || !plan.v2Dir) return;
  const fd = openSync(plan.v2Dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    const r = cgroupDevices(fd, deviceProgram(plan.bpfDevices));
    if (r < 0) throw cgroupError(`cannot attach the device rules to ${plan.v2Dir}`, Object.assign(new Error(), { errno: r }), 'eBPF device programs need CAP_BPF or CAP_SYS_ADMIN (Linux 4.15+)');
  } finally {
    closeSync(fd);
  }
}

/** Remove what apply made, the cgroups' own last levels first; never anything else. */
export function unmake(cg: Pick<Cgroup, 'dirs'>): void {
  for (const d of cg.dirs) {
    for (const dir of [...d.made].reverse()) {
      try {
        removeDir(dir, dir === d.dir ? 8 : 1);
      } catch {
        // shared with another cgroup by now, or already gone
      }
    }
  }
}

/** An existing cgroup, in every hierarchy where it exists; nothing is made or written. */
function joinCgroup(plan: CgroupPlan): Cgroup {
  const dirs = plan.dirs.filter((d) => readText(`${d.dir}/cgroup.procs`) !== null)
    .map((d) => ({ version: d.version, controllers: d.controllers, mountpoint: d.mountpoint, dir: d.dir, made: [] }));
  const path = plan.placement.kind === 'join' ? plan.placement.path : '';
  if (dirs.length === 0) {
    throw cgroupError(`cannot join the cgroup ${path}: it exists in no hierarchy (${plan.dirs.map((d) => d.dir).join(', ')})`,
      Object.assign(new Error(), { code: 'ENOENT', errno: 2 }), 'make it first, or give --cgroup-parent=PATH to have tsns make one under PATH');
  }
  const oomFile = plan.oomFile && dirs.some((d) => plan.oomFile!.startsWith(`${d.dir}/`)) ? plan.oomFile : null;
  const v2Dir = dirs.find((d) => d.version === 2)?.dir ?? null;
  return { dirs, v2Dir, fresh: false, oomFile, oomBefore: oomFile ? oomKillCount(oomFile) ?? 0 : 0, warnings: [...plan.warnings] };
}

/** Make the plan's cgroup and write its limits; everything made is removed again if a step fails. */
export function applyCgroup(plan: CgroupPlan): Cgroup {
  if (plan.placement.kind === 'join') return joinCgroup(plan);
  const dirs: CgroupHierarchyDir[] = plan.dirs.map((d) => ({ version: d.version, controllers: d.controllers, mountpoint: d.mountpoint, dir: d.dir, made: [] }));
  const cg: Cgroup = { dirs, v2Dir: plan.v2Dir, fresh: false, oomFile: plan.oomFile, oomBefore: 0, warnings: [...plan.warnings] };
  try {
    plan.dirs.forEach((d, i) => {
      makeLevels(d.levels, dirs[i]!.made, d.version);
      if (d.version === 1 && d.controllers.includes('cpuset')) inheritCpuset(d.base, d.levels);
      if (d.version === 2) enableControllers(d.base, d.levels, plan.enable);
    });
    cg.fresh = plan.v2Dir !== null && dirs.some((d) => d.dir === plan.v2Dir && d.made.includes(d.dir));
    writeAll(plan.writes, cg.warnings);
    attachDevices(plan);
    cg.oomBefore = plan.oomFile ? oomKillCount(plan.oomFile) ?? 0 : 0;
    return cg;
  } catch (e) {
    unmake(cg);
    throw e;
  }
}
