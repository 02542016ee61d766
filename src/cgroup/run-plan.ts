/**
 * `tsns run`'s cgroup: its options, and the plan they make (part of the
 * run's plan, what --dry-run prints). Nothing is read from the machine
 * unless a cgroup option is given: a run without one costs nothing more.
 */
import { readFileSync } from 'node:fs';
import { planError } from '../plan/identity';
import { detectLayout, hierarchyOf, type CgroupLayout } from './detect';
import { describeCgroupPlan, planCgroup, type CgroupPlan } from './plan';
import { mergeResources, parseCpuList, resourcesFromLimits, type LinuxResources, type MachineLimits } from './resources';
import { hasLimitOptions, isEmptyResources, wantsCgroup, type CgroupRunOptions } from './wants';

export type { CgroupRunOptions } from './wants';

/** The cgroup part of a run's plan. */
export interface RunCgroup {
  plan: CgroupPlan;
  resources: LinuxResources;
  optional: boolean;
  /** what --dry-run prints of it, a line each */
  description: string[];
}

/** What a cgroup plan needs to know of the machine; read only when a cgroup is asked for. */
export interface CgroupContext {
  layout(): CgroupLayout;
  machine(): MachineLimits;
  /** the name of the next cgroup this process makes: tsns-<pid>-<n> */
  nextName(): string;
}

function checkPath(option: string, path: string): void {
  if (path === '' || /[\n\0]/.test(path)) throw planError(`--${option} needs a cgroup path (no newline or NUL in it)`);
}

export function planRunCgroup(o: CgroupRunOptions, ctx: CgroupContext): RunCgroup | null {
  if (!wantsCgroup(o)) return null;
  if (o.cgroupPath !== undefined) {
    checkPath('cgroup-path', o.cgroupPath);
    if (o.cgroupParent !== undefined) throw planError('--cgroup-path and --cgroup-parent cannot be given together', 'one joins an existing cgroup, the other makes one under PATH');
    if (hasLimitOptions(o) || (o.resources && !isEmptyResources(o.resources))) {
      throw planError('--cgroup-path joins an existing cgroup as it is: limits cannot be given with it', 'give --cgroup-parent=PATH instead, and tsns makes a cgroup with the limits under PATH');
    }
  }
  if (o.cgroupParent !== undefined) checkPath('cgroup-parent', o.cgroupParent);
  const resources = mergeResources(o.resources, hasLimitOptions(o) ? resourcesFromLimits(o, ctx.machine()) : {});
  const placement = o.cgroupPath !== undefined
    ? { kind: 'join' as const, path: o.cgroupPath }
    : { kind: 'create' as const, name: ctx.nextName(), ...(o.cgroupParent === undefined ? {} : { parent: o.cgroupParent }) };
  // An existing cgroup is joined wherever it exists: every hierarchy is looked at.
  const plan = planCgroup({ layout: ctx.layout(), resources, placement, scope: placement.kind === 'join' ? 'all' : 'needed' });
  return {
    plan, resources, optional: o.cgroupOptional ?? false,
    // Made when printed (--dry-run), not on every run.
    get description() {
      return describeCgroupPlan(plan);
    },
  };
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/** The CPUs (or memory nodes) our cpuset allows, else those online. */
function allowed(layout: CgroupLayout, what: 'cpus' | 'mems'): number[] {
  const h = hierarchyOf(layout, 'cpuset');
  const own = h?.ownDir ? read(h.version === 1 ? `${h.ownDir}/cpuset.effective_${what}` : `${h.ownDir}/cpuset.${what}.effective`) : null;
  const online = what === 'cpus' ? read('/sys/devices/system/cpu/online') : read('/sys/devices/system/node/online');
  const text = own || online || '0';
  return parseCpuList(what, text);
}

let serial = 0;

/** Plans a run's cgroup; PlanContext.cgroups is one. */
export interface CgroupPlanner {
  planRun(o: CgroupRunOptions): RunCgroup | null;
}

/** This machine's planner: its layout read once per planner, when first needed. */
export function systemCgroupPlanner(): CgroupPlanner {
  const ctx = systemCgroupContext();
  return { planRun: (o) => planRunCgroup(o, ctx) };
}

export function systemCgroupContext(): CgroupContext {
  let layout: CgroupLayout | undefined;
  const getLayout = () => (layout ??= detectLayout());
  return {
    layout: getLayout,
    // Each bound read only if a limit needs it.
    machine: () => ({
      get memTotal() {
        const kb = Number(/^MemTotal:\s+(\d+)/m.exec(read('/proc/meminfo') ?? '')?.[1] ?? 0);
        return kb * 1024 || Number.MAX_SAFE_INTEGER;
      },
      get cpus() {
        return allowed(getLayout(), 'cpus');
      },
      get mems() {
        return allowed(getLayout(), 'mems');
      },
    }),
    nextName: () => `tsns-${process.pid}-${serial++}`,
  };
}
