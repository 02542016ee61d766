/**
 * run(): turn a plan into a running command through the native shim, and wait
 * for it without blocking the event loop or a libuv pool thread.
 */
import { readFileSync } from 'node:fs';
import { NATIVE_STAGES, nativeFailure, TsnsError } from './errors';
import { decodeWaitStatus, type RunResult } from './exit-status';
import { formatIdMap } from './idmap';
import * as native from './native';
import { makePlan, type Plan, type PlanContext, type Propagation, type RunOptions } from './plan';

const MS_PROPAGATION: Record<Propagation, number> = {
  unchanged: 0,
  private: 1 << 18,
  slave: 1 << 19,
  shared: 1 << 20,
};

function lookupIn(file: string, name: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  return undefined;
}

/** The caller as the kernel will judge it. */
export function systemContext(env: Readonly<Record<string, string | undefined>> = process.env): PlanContext {
  const uid = process.geteuid!();
  return {
    uid,
    gid: process.getegid!(),
    privileged: uid === 0,
    env,
    lookupUser: (name) => lookupIn('/etc/passwd', name),
    lookupGroup: (name) => lookupIn('/etc/group', name),
  };
}

// Children we still have to reap, and how to tell their callers.
const waiting = new Map<number, (status: number) => void>();
let keepAlive: NodeJS.Timeout | undefined;

function reap(): void {
  for (const [pid, done] of waiting) {
    const status = native.wait(pid);
    if (status !== 0) {
      waiting.delete(pid);
      done(status);
    }
  }
  if (waiting.size === 0 && keepAlive) {
    // Let the program exit once nothing is running.
    clearInterval(keepAlive);
    keepAlive = undefined;
    process.removeListener('SIGCHLD', reap);
  }
}

function watchChildren(): void {
  if (keepAlive) return;
  // A SIGCHLD listener alone does not keep the loop alive; this timer never fires usefully.
  keepAlive = setInterval(() => {}, 0x7fffffff);
  process.on('SIGCHLD', reap);
}

function waitFor(pid: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    waiting.set(pid, (status) => {
      if (status < 0) reject(new TsnsError(`cannot wait for pid ${pid}: errno ${-status}`, { stage: 'wait', code: -status }));
      else resolve(decodeWaitStatus(pid, status));
    });
  });
}

function environment(env: Readonly<Record<string, string | undefined>>): string[] {
  return Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
}

/** Start the command a plan describes; resolves when it has ended. */
export function execute(plan: Plan, env: Readonly<Record<string, string | undefined>> = process.env): Promise<RunResult> {
  watchChildren();
  const ret = native.spawn({
    flags: plan.cloneFlags,
    uidMap: plan.uidMap && formatIdMap(plan.uidMap),
    gidMap: plan.gidMap && formatIdMap(plan.gidMap),
    setgroups: plan.setgroups,
    hostname: plan.hostname,
    domainname: plan.domainname,
    procDir: plan.procDir,
    propagation: plan.propagation ? MS_PROPAGATION[plan.propagation] : 0,
    file: plan.file,
    searchPath: env.PATH ?? '/bin:/usr/bin',
    argv: plan.argv,
    env: environment(env),
  });
  if (ret < 0) {
    reap();
    const stage = NATIVE_STAGES[Math.floor(-ret / 0x10000)] ?? 'native';
    return Promise.reject(
      nativeFailure(stage, -ret & 0xffff, {
        ...plan,
        uidMapText: plan.uidMap && formatIdMap(plan.uidMap),
        gidMapText: plan.gidMap && formatIdMap(plan.gidMap),
        privileged: process.geteuid!() === 0,
      }),
    );
  }
  return waitFor(ret);
}

/**
 * Run `command` in new namespaces. Resolves with its exit code or signal; rejects
 * with TsnsError when tsns itself fails (including a command that cannot be executed).
 */
export async function run(command: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const env = options.env ?? process.env;
  return execute(makePlan(command, options, systemContext(env)), env);
}
