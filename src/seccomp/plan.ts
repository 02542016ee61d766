/**
 * A seccomp profile in a plan: read it (a file, 'default', or an object),
 * resolve it for the command as the plan has it (its capabilities from its
 * identity and capKeep), compile it, and put its program first among the
 * plan's seccomp programs. Also the same for an OCI runtime's
 * `linux.seccomp` (seccompForOci).
 */
import { capabilityMask } from '../capabilities';
import type { PlanContext } from '../context';
import type { Plan, PlanSeccomp } from '../plan/run';
import { compileProfile, type CompiledProfile, type SeccompSummary } from './compile';
import { defaultSeccompProfile } from './default';
import { systemSeccompContext, type SeccompContext } from './host';
import { seccompListener, type ListenerState, type SeccompListener } from './notify';
import { parseProfile, parseProfileText, type SeccompProfile, type SeccompProfileInput } from './profile';
import { capabilityNames, commandCapabilities, resolveProfile, type ResolvedProfile } from './resolve';

/** RunOptions.seccompProfile: a file, 'default' (Docker's), 'unconfined' (none), or the profile itself. */
export type SeccompProfileOption = string | SeccompProfileInput;

/** What a plan says of its profile. */
export interface PlanSeccompProfile extends SeccompSummary {
  /** the capabilities includes/excludes were judged by: the command's */
  capabilities: string[];
}

export function wantsProfile(option: SeccompProfileOption | undefined): option is SeccompProfileOption {
  return option !== undefined && option !== 'unconfined';
}

function loadProfile(option: SeccompProfileOption, sc: SeccompContext): { profile: SeccompProfile; source: string } {
  if (option === 'default') return { profile: parseProfile(defaultSeccompProfile(), 'default'), source: 'default' };
  if (typeof option === 'string') return { profile: parseProfileText(sc.readFile(option), option), source: option };
  return { profile: parseProfile(option, '(object)'), source: '(object)' };
}

export interface ProfileLaunch {
  /** the profile's program, to load before any other */
  program: PlanSeccomp;
  listener: SeccompListener | null;
  summary: PlanSeccompProfile;
}

interface Judged {
  caps: bigint;
  /** no no_new_privs: load before dropping privileges, as runc does, while CAP_SYS_ADMIN is still there */
  early: boolean;
  state: ListenerState;
}

/**
 * Programs compiled in this process, by what went in: a program that runs
 * many commands with one profile compiles it once (libseccomp takes tens of
 * milliseconds for Docker's default on three architectures).
 */
const compiledBefore = new Map<string, CompiledProfile>();
const MEMO_SIZE = 16;

function compiledFor(resolved: ResolvedProfile, source: string, sc: SeccompContext): CompiledProfile {
  const key = JSON.stringify([source, resolved], (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  const known = compiledBefore.get(key);
  if (known) return known;
  const c = compileProfile(resolved, sc.compiler(), { source, debug: sc.debug });
  if (compiledBefore.size === MEMO_SIZE) compiledBefore.delete(compiledBefore.keys().next().value!);
  compiledBefore.set(key, c);
  return c;
}

function launchOf(profile: SeccompProfile, source: string, judged: Judged, sc: SeccompContext): ProfileLaunch {
  const resolved = resolveProfile(profile, { arch: sc.arch, kernel: sc.kernel, caps: judged.caps });
  const compiled = compiledFor(resolved, source, sc);
  return {
    program: { instructions: compiled.bytes.length / 8, hex: compiled.bytes.toString('hex'), flags: compiled.flags, early: judged.early },
    listener: compiled.notify ? seccompListener(resolved.listenerPath!, resolved.listenerMetadata, judged.state, source) : null,
    summary: { ...compiled.summary, capabilities: capabilityNames(judged.caps) },
  };
}

/** The plan's seccomp with the profile's program first. */
export function profilePlan(plan: Plan, option: SeccompProfileOption, ctx: PlanContext): Pick<Plan, 'seccomp' | 'seccompProfile' | 'seccompListener'> {
  const sc = ctx.seccomp ?? systemSeccompContext();
  const { profile, source } = loadProfile(option, sc);
  const caps = commandCapabilities({
    uid: ctx.uid, userNamespace: plan.namespaces.includes('user'), uidMap: plan.uidMap, setuid: plan.setuid,
    keepCaps: plan.keepCaps, capKeep: plan.capKeep, bounding: sc.bounding(),
  });
  const launch = launchOf(profile, source, { caps, early: !plan.noNewPrivs, state: { bundle: ctx.cwd } }, sc);
  return { seccomp: [launch.program, ...plan.seccomp], seccompProfile: launch.summary, seccompListener: launch.listener };
}

/** The container, as an OCI runtime has it from config.json. */
export interface OciSeccompContainer {
  /** process.capabilities.bounding: what includes/excludes are judged by, as Docker judges them */
  capabilities: readonly string[];
  /** process.noNewPrivileges: without it the filter is loaded before the capabilities are dropped (runc's order) */
  noNewPrivileges: boolean;
  /** for the agent of a NOTIFY profile: the container's state */
  state?: ListenerState;
}

/** What a launch takes from an OCI `linux.seccomp`: spread `seccomp` and `seccompListener` into the LaunchSpec. */
export interface OciSeccompLaunch {
  seccomp: PlanSeccomp[];
  seccompListener: SeccompListener | null;
  summary: PlanSeccompProfile;
}

/**
 * An OCI runtime's `linux.seccomp` (config.json) → what the launch needs;
 * null when there is no seccomp (absent, or no defaultAction and no
 * syscalls, as runc has it). Read config.json with parseJson() so that
 * 64-bit argument values stay exact. Errors are TsnsErrors naming the JSON
 * path under linux.seccomp.
 */
export function seccompForOci(seccomp: unknown, container: OciSeccompContainer, sc: SeccompContext = systemSeccompContext()): OciSeccompLaunch | null {
  if (seccomp === undefined || seccomp === null) return null;
  const o = seccomp as Record<string, unknown>;
  const none = (v: unknown) => v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);
  if (none(o.defaultAction) && none(o.syscalls)) return null;
  const profile = parseProfile(seccomp, 'linux.seccomp');
  const caps = container.capabilities.filter((c) => c.startsWith('CAP_')).reduce((m, c) => m | (capabilityMask(c) ?? 0n), 0n);
  const launch = launchOf(profile, 'linux.seccomp', { caps, early: !container.noNewPrivileges, state: container.state ?? {} }, sc);
  return { seccomp: [launch.program], seccompListener: launch.listener, summary: launch.summary };
}
