/**
 * OCI hooks: each program run with the container's state on its stdin,
 * its own args and env, killed at its timeout. prestart, createRuntime,
 * poststart and poststop run in tsns-oci's namespaces; createContainer
 * in the container's (hooks-in.ts); startContainer in the container's
 * process itself, between start and the command's exec (native/oci-hook.c).
 */
import { TsnsError } from '../errors';
import type { HookName, OciHook } from './config';
import { OCI_VERSION, type ContainerState } from './state';

export interface HookState {
  ociVersion: string;
  id: string;
  status: string;
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}

export function hookState(s: Pick<ContainerState, 'id' | 'pid' | 'bundle' | 'annotations'>, status: string): HookState {
  return { ociVersion: OCI_VERSION, id: s.id, status, ...(s.pid > 0 ? { pid: s.pid } : {}), bundle: s.bundle, annotations: s.annotations };
}

/** A hook without "env" gets its runner's environment (Go's exec does so for runc's). */
export function hookEnv(env: readonly string[] | null): Record<string, string | undefined> {
  if (env === null) return { ...process.env };
  const out: Record<string, string> = {};
  for (const e of env) {
    const eq = e.indexOf('=');
    if (eq > 0) out[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return out;
}

export function hookFailure(name: HookName, i: number, h: OciHook, why: string, output: string): TsnsError {
  const tail = output.trim().split('\n').slice(-1)[0] ?? '';
  const e = new TsnsError(`${name} hook #${i} (${h.path}) ${why}${tail ? `: ${tail}` : ''}`, { stage: 'plan', hint: `hooks.${name}[${i}] in config.json` });
  // an engine reads runc's status for a failed hook: 1 (state.ts ociExitStatus)
  return Object.assign(e, { ociStatus: 1 });
}

/** Runs the hooks in order; the first that fails (or outlives its timeout) is an error. */
export function runHooks(name: HookName, hooks: readonly OciHook[] | undefined, state: HookState): void {
  if (!hooks?.length) return;
  // Required here, not at the top: node:child_process (with net and streams) costs every call of tsns-oci milliseconds to load.
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  hooks.forEach((h, i) => {
    const r = spawnSync(h.path, h.args.slice(1), {
      argv0: h.args[0] ?? h.path, input: JSON.stringify(state), env: hookEnv(h.env),
      stdio: ['pipe', 'pipe', 'pipe'], timeout: h.timeout === null ? undefined : h.timeout * 1000, killSignal: 'SIGKILL',
    });
    const output = `${r.stdout?.toString() ?? ''}${r.stderr?.toString() ?? ''}`;
    if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') throw hookFailure(name, i, h, `timed out after ${h.timeout} s`, output);
    // A hook that exits without reading its stdin closes the pipe under our write of the state: as with runc,
    // that EPIPE is no failure of its own, the hook's exit status says how it went.
    if (r.error && !((r.error as NodeJS.ErrnoException).code === 'EPIPE' && (r.status !== null || r.signal))) {
      throw hookFailure(name, i, h, `could not run: ${r.error.message}`, output);
    }
    if (r.signal) throw hookFailure(name, i, h, `was killed by ${r.signal}`, output);
    if (r.status !== 0) throw hookFailure(name, i, h, `exited with status ${r.status}`, output);
  });
}
