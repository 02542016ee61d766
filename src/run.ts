/** run(): options → plan → the shim, for `tsns run` and for programs. */
import { closeSync, writeSync } from 'node:fs';
import { cgroups } from './cgroup/lazy';
import { signalNumber } from './signals';
import { commandEnv, systemContext } from './context';
import { nativeFailure } from './explain';
import { formatIdMap } from './idmap';
import { launch, type FailureExplainer, type ProcessOptions, type RunResult } from './launch';
import { makePlan, type Plan, type RunOptions } from './plan/run';
import { runSpec } from './wire';

export type RunAllOptions = RunOptions & ProcessOptions;

/** A failure the shim reported for this plan; `cgroupDirs`: the cgroups its fds were of, in order. */
function explainer(plan: Plan, cgroupDirs: readonly string[] = []): FailureExplainer {
  return (stage, code, index) =>
    nativeFailure(stage, code, {
      ...plan,
      uidMapText: plan.uidMap && formatIdMap(plan.uidMap),
      gidMapText: plan.gidMap && formatIdMap(plan.gidMap),
      persistPath: plan.persist[index]?.path ?? null,
      persistNamespace: plan.persist[index]?.namespace ?? null,
      // The shim counts sandbox operations from 1; 0 is the new root itself.
      sandboxOp: stage === 'sandbox' && index > 0 ? plan.filesystem[index - 1] ?? null : null,
      seccompIndex: stage === 'seccomp' ? index : null,
      seccompProfile: plan.seccompProfile?.source ?? null,
      seccompListener: plan.seccompListener?.path ?? null,
      lockFile: stage === 'lock-file' ? plan.lifecycle.lockFiles[index] ?? null : null,
      cgroupDir: stage === 'cgroup-procs' ? cgroupDirs[index] ?? null : stage === 'cgroup-clone' ? cgroupDirs[cgroupDirs.length - 1] ?? null : null,
    });
}

/** Start the command a plan describes; resolves when it has ended. */
export async function execute(plan: Plan, given: ProcessOptions = {}): Promise<RunResult> {
  // The shim points PWD at the directory it took (plan.pwd.wdTry); this entry is the one it replaces.
  const opts = plan.pwd ? { ...given, env: { ...given.env, PWD: plan.pwd.value } } : given;
  const result = await (plan.cgroup
    ? cgroups().launchInCgroup(plan.cgroup, runSpec(plan), opts, (spec, o, dirs) => launch(spec, explainer(plan, dirs), o))
    : launch(runSpec(plan), explainer(plan), opts));
  const fd = plan.lifecycle.jsonStatusFd;
  if (fd !== null) writeStatus(fd, result);
  return result;
}

/** bwrap's last --json-status-fd object: the exit code in the shell's encoding. */
function writeStatus(fd: number, result: RunResult): void {
  const code = result.exitCode ?? 128 + (signalNumber(result.signal ?? '') ?? 0);
  try {
    writeSync(fd, `{ "exit-code": ${code} }\n`);
    closeSync(fd);
  } catch {
    // the reader is gone, as bwrap ignores it
  }
}

/** The plan run() would carry out, made without creating anything (what --dry-run prints). */
export function planRun(command: readonly string[], options: RunAllOptions = {}): Plan {
  return makePlan(command, options, systemContext(commandEnv(options)));
}

/**
 * Run `command` in new namespaces. Resolves with its exit code or signal; rejects
 * with TsnsError when tsns itself fails (including a command that cannot be executed).
 */
export async function run(command: readonly string[], options: RunAllOptions = {}): Promise<RunResult> {
  return execute(planRun(command, options), options);
}
