/**
 * tsns's cgroups: limits for `tsns run` and for an OCI runtime, on cgroup
 * v1, v2 and hybrid machines.
 *
 * The steps, each its own module:
 *
 *   detectLayout()                     detect.ts   the hierarchies, from /proc/self/mountinfo,
 *                                                  /proc/cgroups and /proc/self/cgroup
 *   checkResources(json)               limits.ts   OCI linux.resources (or `update -r`) checked as runc does
 *   resourcesFromLimits(flags, machine) resources.ts podman/docker flags (memory: '50m', cpus: '1.5', …)
 *   planCgroup({ layout, resources,    plan.ts     where it goes in each hierarchy, which file gets
 *                placement, scope })               which value (pure; describeCgroupPlan() prints it)
 *   applyCgroup(plan) → Cgroup         apply.ts    mkdir, cpuset copied down, v2 controllers enabled,
 *                                                  limits written, v2 device program; undone on failure
 *
 * A Cgroup is plain JSON (keep it in the container's state). With it:
 *
 *   openCgroup(layout, path)           an existing cgroup found again (no Cgroup saved)
 *   updateCgroup(cg, resources)        runc update (its flags: resourcesFromUpdate(flags); -r: checkResources(json))
 *   freezeCgroup(cg) / thawCgroup(cg)  runc pause / resume: v1 freezer.state, else v2 cgroup.freeze
 *   freezerState(cg)                   'frozen' | 'freezing' | 'thawed'
 *   cgroupStats(cg), eventJson()       runc events --stats: {"type":"stats","id":…,"data":…}
 *   oomKills(cg)                       OOM kills since it was made: poll for runc events' "oom"
 *   cgroupProcs(cg)                    runc ps: every pid in it and its sub-cgroups
 *   killCgroup(cg, signal)             runc kill --all (frozen meanwhile; SIGKILL on v2 is cgroup.kill)
 *   removeCgroup(cg, found?)           runc delete: what is left killed, rmdir everywhere, and the
 *                                      levels above that tsns made, if empty (found: also a cgroup
 *                                      that was there before create, as runc removes it)
 *
 * Putting a process in before its first instruction: cgroupSpawnFds(cg)
 * opens what the shim takes (LaunchSpec.cgroupProcs: an O_WRONLY fd of each
 * cgroup.procs; LaunchSpec.cgroupDir: an fd of the v2 directory when
 * Cgroup.fresh, for clone3 CLONE_INTO_CGROUP); closeCgroupFds() once the
 * spawn returned. launchInCgroup() does all of it around a launch, and
 * removes the cgroup when the command ends.
 *
 * An OCI runtime: placement { kind: 'path', path: cgroupsPath || id },
 * scope 'all'; a `slice:prefix:name` path is refused with runc's error
 * when systemd does not run (layout.systemd). DEFAULT_DEVICES are runc's
 * allowed devices, to append to a config's rules.
 */
export { buildLayout, detectLayout, hierarchyOf, whyMissing } from './detect';
export type { CgroupLayout, CgroupMode, Hierarchy } from './detect';
export { checkResources, resourceWrites, sharesToWeight, blkioToIoWeight, swapToV2 } from './limits';
export type { CgroupWrite } from './limits';
export { formatCpuList, mergeResources, parseBytes, parseCpuList, resourcesFromLimits, resourcesFromUpdate } from './resources';
export type { CgroupLimitOptions, DeviceRule, LinuxResources, MachineLimits, RuncUpdateFlags } from './resources';
export { describeCgroupPlan, isSystemdPath, planCgroup } from './plan';
export type { CgroupPlacement, CgroupPlan, CgroupPlanInput } from './plan';
export { applyCgroup } from './apply';
export type { Cgroup, CgroupHierarchyDir } from './apply';
export {
  cgroupProcs, dirFor, freezeCgroup, freezerState, killCgroup, oomKills, oomMessage, openCgroup, removeCgroup, thawCgroup, updateCgroup,
} from './ops';
export type { FreezerState } from './ops';
export { cgroupStats, eventJson } from './stats';
export type { RuncStats } from './stats';
export { DEFAULT_DEVICES, deviceProgram } from './devices';
export { closeCgroupFds, cgroupSpawnFds, launchInCgroup, sweepLeftovers, takeMonitorWords } from './launch';
export type { CgroupFds } from './launch';
export { planRunCgroup, systemCgroupContext, systemCgroupPlanner } from './run-plan';
export type { CgroupContext, CgroupPlanner, RunCgroup } from './run-plan';
export { wantsCgroup } from './wants';
export type { CgroupRunOptions } from './wants';
