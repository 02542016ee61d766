/**
 * Running a command in its cgroup: leftovers of tsns processes that are
 * gone are cleared, the cgroup is made with its limits, the shim gets the
 * fds that put the command in it before its first instruction, and when
 * the command ends its OOM kills are counted and the cgroup is removed —
 * by tsns-monitor for the CLI (the words it is given here), by this module
 * when Node waits itself. Any failure on the way removes what was made.
 */
import { closeSync, constants, openSync, statSync } from 'node:fs';
import { TsnsError } from '../errors';
import type { ProcessOptions, RunResult } from '../launch';
import type { LaunchSpec } from '../wire';
import { applyCgroup, type Cgroup } from './apply';
import { cgroupError, processAlive, removeDir, subdirs } from './files';
import { oomKills, removeCgroup } from './ops';
import type { RunCgroup } from './run-plan';

const LEFTOVER = /^tsns-(\d+)-\d+$/;
/**
 * A cgroup is empty and named for a dead pid for a moment in the life of a
 * tsns in another pid namespace (between its mkdir and its clone): only an
 * older one is a leftover.
 */
const LEFTOVER_AGE_MS = 1000;

/** rmdir a tree of empty cgroups, deepest first; a busy one (still running) stays. */
function removeIfEmpty(dir: string): void {
  for (const s of subdirs(dir)) removeIfEmpty(s);
  try {
    removeDir(dir, 1);
  } catch {
    // not empty, or not ours to remove
  }
}

/**
 * The cgroups of tsns processes that died without removing them (killed
 * by SIGKILL): empty ones under the parents this run uses are removed.
 * A cgroup whose command still runs (its tsns died without --kill-child)
 * is left alone: its limits still hold.
 */
export function sweepLeftovers(parents: readonly string[]): void {
  for (const parent of new Set(parents)) {
    for (const dir of subdirs(parent)) {
      const m = LEFTOVER.exec(dir.slice(parent.length + 1));
      if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1])) && ageMs(dir) >= LEFTOVER_AGE_MS) removeIfEmpty(dir);
    }
  }
}

function ageMs(dir: string): number {
  try {
    const st = statSync(dir);
    return Date.now() - Math.max(st.mtimeMs, st.ctimeMs);
  } catch {
    return 0;
  }
}

/** What the shim needs to put a process into a cgroup before it runs (LaunchSpec.cgroupProcs, .cgroupDir). */
export interface CgroupFds {
  /** an O_WRONLY fd of each cgroup.procs the pid is written to */
  procs: number[];
  /** the directories the procs fds are of, in order, then the v2 one (for explaining a failure by its index) */
  dirs: string[];
  /** an fd of the v2 directory to clone3 into, when tsns has just made it; else null */
  dir: number | null;
}
type Fds = CgroupFds;

/** The fds for a spawn into `cg`; close them with closeCgroupFds() once the spawn returned. */
export function cgroupSpawnFds(cg: Cgroup): CgroupFds {
  return openFds(cg);
}

export function closeCgroupFds(fds: CgroupFds): void {
  closeFds(fds);
}

function openFds(cg: Cgroup): Fds {
  const fds: Fds = { procs: [], dirs: [], dir: null };
  try {
    for (const d of cg.dirs) {
      if (d.version === 2 && cg.fresh && d.dir === cg.v2Dir) continue;
      fds.procs.push(openSync(`${d.dir}/cgroup.procs`, constants.O_WRONLY));
      fds.dirs.push(d.dir);
    }
    if (cg.fresh && cg.v2Dir) {
      fds.dir = openSync(cg.v2Dir, constants.O_RDONLY | constants.O_DIRECTORY);
      fds.dirs.push(cg.v2Dir);
    }
    return fds;
  } catch (e) {
    closeFds(fds);
    throw cgroupError(`cannot open ${cg.dirs[fds.procs.length]?.dir ?? cg.v2Dir}/cgroup.procs`, e);
  }
}

function closeFds(fds: Fds): void {
  for (const fd of [...fds.procs, ...(fds.dir === null ? [] : [fds.dir])]) closeSync(fd);
  fds.procs = [];
  fds.dir = null;
}

/** What tsns-monitor does with the cgroup once the command ends (native/monitor.c). */
function monitorWords(cg: Cgroup): string[] {
  const words = cg.oomFile ? [`oom=${cg.oomBefore}:${cg.oomFile}`] : [];
  // v2 first: its cgroup.kill ends what is left at once, where v1 can only signal pid by pid.
  const v2First = [...cg.dirs].sort((a, b) => b.version - a.version);
  for (const d of v2First) if (d.made.includes(d.dir)) words.push(`cgroup=${d.dir}`);
  for (const d of cg.dirs) for (const p of d.made.filter((m) => m !== d.dir).reverse()) words.push(`parent=${p}`);
  return words;
}

const handedOver = new Map<number, string[]>();

/** The words for tsns-monitor when it takes over the wait for `pid` (empty: no cgroup). */
export function takeMonitorWords(pid: number): string[] {
  const words = handedOver.get(pid) ?? [];
  handedOver.delete(pid);
  return words;
}

function defaultWarning(message: string): void {
  process.emitWarning(message, 'TsnsWarning');
}

export type Starter = (spec: LaunchSpec, opts: ProcessOptions, cgroupDirs: readonly string[]) => Promise<RunResult>;

/** Make the cgroup, or with cgroupOptional say why not and go on without it. */
function makeCgroup(rc: RunCgroup, warn: (m: string) => void): Cgroup | null {
  if (rc.plan.placement.kind === 'create') sweepLeftovers(rc.plan.dirs.map((d) => d.dir.slice(0, d.dir.lastIndexOf('/'))));
  try {
    const cg = applyCgroup(rc.plan);
    for (const w of cg.warnings) warn(w);
    return cg;
  } catch (e) {
    if (!rc.optional || !(e instanceof TsnsError)) throw e;
    warn(`running without cgroup limits: ${e.message}`);
    return null;
  }
}

export async function launchInCgroup(rc: RunCgroup, spec: LaunchSpec, opts: ProcessOptions, start: Starter): Promise<RunResult> {
  const warn = opts.onWarning ?? defaultWarning;
  const cg = makeCgroup(rc, warn);
  if (!cg) return start(spec, opts, []);
  let fds: Fds;
  try {
    fds = openFds(cg);
  } catch (e) {
    removeCgroup(cg);
    throw e;
  }
  let result: RunResult;
  try {
    result = await start({ ...spec, cgroupProcs: fds.procs, cgroupDir: fds.dir }, {
      ...opts,
      onStart: (pid) => {
        closeFds(fds);
        handedOver.set(pid, monitorWords(cg));
        opts.onStart?.(pid);
      },
    }, fds.dirs);
  } catch (e) {
    closeFds(fds);
    removeCgroup(cg);
    throw e;
  }
  handedOver.delete(result.pid);
  const kills = oomKills(cg);
  try {
    removeCgroup(cg);
  } catch (e) {
    warn(e instanceof Error ? e.message : String(e));
  }
  return kills > 0 ? { ...result, oomKills: kills } : result;
}

