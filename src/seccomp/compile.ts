/**
 * A resolved profile → the program the shim loads, as runc builds it:
 * one rule per name (a rule whose action is the default's is left out),
 * conditions on a repeated argument split into one rule each (an OR), names
 * resolved by libseccomp, a name libseccomp does not know skipped when it is
 * a real system call newer than libseccomp and refused when it is not, the
 * program compiled and exported by libseccomp (native/seccomp/compile.c),
 * runc's ENOSYS stub in front, and the seccomp(2) flags worked out.
 */
import { errnoName } from '../errors';
import type { SeccompCompiler } from '../native';
import { encodeInsns, enosysStub, type StubArch } from './enosys';
import { profileError, type SeccompArg } from './profile';
import type { NamedSyscall, ResolvedProfile } from './resolve';
import { ACTIONS, EPERM, libseccompArchName, OPERATORS, PROFILE_FLAGS, RECENT_SYSCALLS, SECCOMP_FLAG, type Action } from './tables';

/** What --dry-run says of a profile. */
export interface SeccompSummary {
  /** the file, 'default', or where the object came from */
  source: string;
  /** e.g. 'SCMP_ACT_ERRNO (EPERM)' */
  defaultAction: string;
  architectures: string[];
  /** rules given to libseccomp */
  rules: number;
  /** distinct system calls they name */
  syscalls: number;
  /** names this libseccomp does not know, skipped (as Docker and runc skip them) */
  skipped: string[];
  /** Docker groups whose includes/excludes left them out */
  dropped: number;
  /** seccomp(2) flags the program is loaded with */
  flags: string[];
  instructions: number;
  listenerPath: string | null;
  libseccomp: string;
}

export interface CompiledProfile {
  bytes: Buffer;
  flags: number;
  /** some rule is SCMP_ACT_NOTIFY: the program is loaded with a listener for listenerPath */
  notify: boolean;
  summary: SeccompSummary;
}

const BPF_MAX_INSTRUCTIONS = 4096;
/** Big enough for anything the kernel would take, twice over. */
const OUTPUT_BYTES = 2 * BPF_MAX_INSTRUCTIONS * 8;
/** The audit architecture x32 programs run under; libseccomp's token for x32 is its own. */
const X32_TOKEN = 0x4000003e;
const X86_64_AUDIT = 0xc000003e;
/** native/seccomp/compile.c's failure places. */
const AT = { INIT: 1, EXPORT: 2, SIZE: 3, ARCH: 0x100, RULE: 0x10000 };
/** What libseccomp answers for a name it does not know at all. */
const NR_UNKNOWN = -1;

/**
 * The child hands the listener to tsns with sendmsg() after loading, and
 * reports a failed exec with write() (runc refuses write for the same reason):
 * a notification on either would wait for an agent that has no fd yet.
 */
const NOT_NOTIFIED = new Set(['write', 'sendmsg']);

export function actionValue(action: Action, errnoRet: number | null): number {
  const base = ACTIONS[action];
  if (action === 'SCMP_ACT_ERRNO' || action === 'SCMP_ACT_TRACE') return (base | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
  return base;
}

export function describeAction(action: Action, errnoRet: number | null): string {
  if (action === 'SCMP_ACT_ERRNO') return `${action} (${errnoName(errnoRet ?? EPERM)})`;
  if (action === 'SCMP_ACT_TRACE') return `${action} (${errnoRet ?? EPERM})`;
  return action;
}

interface Call extends NamedSyscall {
  action: number;
  args: SeccompArg[];
}

/** The profile's names, one entry each, with their group's action: what runc's loop goes through. */
function flatten(p: ResolvedProfile, source: string): Call[] {
  const calls: Call[] = [];
  for (const s of p.syscalls) {
    for (const n of s.names) {
      if (s.action === 'SCMP_ACT_NOTIFY' && NOT_NOTIFIED.has(n.name)) {
        throw profileError(source, n.path, `SCMP_ACT_NOTIFY cannot be used for ${n.name}`,
          `tsns itself calls ${n.name} between loading the filter and the exec, before the agent has the listener`);
      }
      calls.push({ ...n, action: actionValue(s.action, s.errnoRet), args: s.args });
    }
  }
  return calls;
}

const entries = (list: readonly string[]) => Buffer.from(`${list.join('\0')}\0`);

/** Each distinct name's number: [native, then each architecture], from libseccomp. */
function resolveNames(lib: SeccompCompiler, names: readonly string[], tokens: readonly number[]): Map<string, number[]> {
  const per = 1 + tokens.length;
  const out = Buffer.alloc(Math.max(4, names.length * per * 4));
  const r = lib.resolve(entries([...tokens.map((t) => `A${t}`), ...names.map((n) => `N${n}`)]), out);
  if (r !== names.length) throw new Error(`libseccomp resolved ${r} of ${names.length} system call names`);
  const nrs = new Int32Array(out.buffer, out.byteOffset, names.length * per);
  return new Map(names.map((n, i) => [n, [...nrs.subarray(i * per, (i + 1) * per)]]));
}

/** Conditions on one argument twice cannot be one rule (libseccomp: EINVAL): runc makes each its own rule. */
function conditionSets(args: readonly SeccompArg[]): SeccompArg[][] {
  const indexes = new Set(args.map((a) => a.index));
  return indexes.size === args.length ? [[...args]] : args.map((a) => [a]);
}

function versionText(lib: SeccompCompiler): string {
  const v = lib.query(0, 0);
  return v < 0 ? 'unknown' : `${v >> 16}.${(v >> 8) & 0xff}.${v & 0xff}`;
}

/** The seccomp(2) flags: the profile's, SPEC_ALLOW when it names none (as runc ≥1.2 and crun), a listener for NOTIFY. */
function loadFlags(p: ResolvedProfile, notify: boolean, lib: SeccompCompiler, source: string, debug: (l: string) => void): number {
  const kernelTakes = (f: number) => lib.query(3, f) === 1;
  let flags = 0;
  if (p.flags === null && kernelTakes(SECCOMP_FLAG.SPEC_ALLOW)) flags |= SECCOMP_FLAG.SPEC_ALLOW;
  for (const [i, name] of (p.flags ?? []).entries()) {
    const bit = PROFILE_FLAGS[name] ?? 0;
    if (bit === SECCOMP_FLAG.WAIT_KILLABLE_RECV && !notify) {
      debug(`flags[${i}]: ${name} applies only to a filter with a listener (SCMP_ACT_NOTIFY): left out`);
      continue;
    }
    if (bit && !kernelTakes(bit | (bit === SECCOMP_FLAG.WAIT_KILLABLE_RECV ? SECCOMP_FLAG.NEW_LISTENER : 0))) {
      throw profileError(source, `flags[${i}]`, `this kernel does not support ${name}`, 'leave the flag out of the profile');
    }
    flags |= bit;
  }
  if (notify) {
    if (!kernelTakes(SECCOMP_FLAG.NEW_LISTENER)) {
      throw profileError(source, '', 'SCMP_ACT_NOTIFY needs seccomp user notification, which this kernel lacks (Linux 5.0+)');
    }
    flags |= SECCOMP_FLAG.NEW_LISTENER;
  }
  return flags;
}

export function flagNames(flags: number): string[] {
  return Object.entries(SECCOMP_FLAG).filter(([, bit]) => flags & bit).map(([name]) => `SECCOMP_FILTER_FLAG_${name}`);
}

/** libseccomp's tokens for the profile's architectures; one it lacks is an error at its path. */
function archTokens(p: ResolvedProfile, lib: SeccompCompiler, source: string, version: string): number[] {
  return p.architectures.map((a) => {
    const token = lib.arch(libseccompArchName(a.name));
    if (token === 0) throw profileError(source, a.path, `libseccomp ${version} does not support ${a.name}`, 'leave the architecture out of the profile');
    return token >>> 0;
  });
}

/** The names libseccomp knows, each call with its number; an unknown recent one is skipped, an unknown other refused. */
function knownCalls(calls: readonly Call[], nrs: Map<string, number[]>, source: string, version: string, debug: (l: string) => void): { known: Call[]; skipped: string[] } {
  const skipped = new Set<string>();
  const known = calls.filter((c) => {
    if (nrs.get(c.name)![0] !== NR_UNKNOWN) return true;
    if (!RECENT_SYSCALLS.has(c.name)) {
      throw profileError(source, c.path, `unknown system call ${JSON.stringify(c.name)}`,
        `neither libseccomp ${version} nor tsns knows it: check the spelling`);
    }
    if (!skipped.has(c.name)) debug(`seccomp: ${c.name} (${c.path}) is unknown to libseccomp ${version}: skipped`);
    skipped.add(c.name);
    return false;
  });
  return { known, skipped: [...skipped] };
}

/** The description compile.c takes: default, architectures, then each rule and its conditions. */
function description(def: number, tokens: readonly number[], rules: readonly { call: Call; nr: number; conds: SeccompArg[] }[]): Buffer {
  return entries([
    `D${def}`,
    ...tokens.map((t) => `A${t}`),
    ...rules.flatMap(({ call, nr, conds }) => [
      `R${call.action} ${nr}`,
      ...conds.map((a) => `C${a.index} ${OPERATORS[a.op]} ${a.value} ${a.valueTwo}`),
    ]),
  ]);
}

function compileFailure(r: number, ctx: { source: string; def: string; rules: readonly { call: Call }[]; p: ResolvedProfile }): Error {
  const where = Math.floor(-r / 65536);
  const err = errnoName(-r % 65536);
  if (where >= AT.RULE) {
    const call = ctx.rules[where - AT.RULE]!.call;
    return profileError(ctx.source, call.path, `libseccomp refused the rule for ${call.name} (${err})`);
  }
  if (where >= AT.ARCH) {
    const a = ctx.p.architectures[where - AT.ARCH]!;
    return profileError(ctx.source, a.path, `libseccomp cannot add ${a.name} (${err})`);
  }
  if (where === AT.INIT) return profileError(ctx.source, 'defaultAction', `libseccomp refused the default action ${ctx.def} (this kernel may lack it)`);
  if (where === AT.SIZE) return profileError(ctx.source, '', `the compiled program has more than the kernel's ${BPF_MAX_INSTRUCTIONS} instructions`);
  return profileError(ctx.source, '', `libseccomp could not export the program (${err})`);
}

/** The stub's architectures: the profile's and the native one, each with the highest number any name has there. */
function stubArches(tokens: readonly number[], native: number, calls: readonly Call[], nrs: Map<string, number[]>): StubArch[] {
  const columns = [[native, 0], ...tokens.map((t, i) => [t, i + 1])] as const;
  const seen = new Set<number>();
  return columns.filter(([t]) => !seen.has(t) && seen.add(t)).map(([token, col]) => ({
    token,
    audit: token === X32_TOKEN ? X86_64_AUDIT : token,
    max: Math.max(0, ...calls.map((c) => nrs.get(c.name)?.[col] ?? 0)),
  }));
}

export interface CompileOptions {
  /** names the profile in errors and the summary */
  source: string;
  /** TSNS_DEBUG's lines */
  debug?: (line: string) => void;
}

export function compileProfile(p: ResolvedProfile, lib: SeccompCompiler, opts: CompileOptions): CompiledProfile {
  const { source } = opts;
  const debug = opts.debug ?? (() => {});
  if (p.defaultAction === 'SCMP_ACT_NOTIFY') throw profileError(source, 'defaultAction', 'SCMP_ACT_NOTIFY cannot be the default action');
  const version = versionText(lib);
  const def = actionValue(p.defaultAction, p.defaultErrnoRet);
  const tokens = archTokens(p, lib, source, version);
  const calls = flatten(p, source);
  const nrs = resolveNames(lib, [...new Set(calls.map((c) => c.name))], tokens);
  const { known, skipped } = knownCalls(calls, nrs, source, version, debug);
  const rules = known.filter((c) => c.action !== def)
    .flatMap((call) => conditionSets(call.args).map((conds) => ({ call, nr: nrs.get(call.name)![0]!, conds })));
  const notify = rules.some((r) => r.call.action === ACTIONS.SCMP_ACT_NOTIFY);
  if (notify && !p.listenerPath) {
    throw profileError(source, rules.find((r) => r.call.action === ACTIONS.SCMP_ACT_NOTIFY)!.call.path,
      'SCMP_ACT_NOTIFY needs listenerPath: the unix socket of the agent tsns sends the listener to');
  }
  const out = Buffer.alloc(OUTPUT_BYTES);
  const r = lib.compile(description(def, tokens, rules), out);
  if (r < 0) throw compileFailure(r, { source, def: describeAction(p.defaultAction, p.defaultErrnoRet), rules, p });
  // Without a default that denies, nothing is left for the stub to correct.
  const denies = !['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE'].includes(p.defaultAction);
  const stub = denies ? encodeInsns(enosysStub(stubArches(tokens, lib.query(2, 0) >>> 0, known, nrs))) : Buffer.alloc(0);
  const bytes = Buffer.concat([stub, out.subarray(0, r)]);
  if (bytes.length / 8 > BPF_MAX_INSTRUCTIONS) {
    throw profileError(source, '', `the compiled program has ${bytes.length / 8} instructions, more than the kernel's ${BPF_MAX_INSTRUCTIONS}`);
  }
  const flags = loadFlags(p, notify, lib, source, debug);
  return {
    bytes, flags, notify,
    summary: {
      source,
      defaultAction: describeAction(p.defaultAction, p.defaultErrnoRet),
      architectures: p.architectures.map((a) => a.name),
      rules: rules.length,
      syscalls: new Set(rules.map((x) => x.call.name)).size,
      skipped,
      dropped: p.dropped.length,
      flags: flagNames(flags),
      instructions: bytes.length / 8,
      listenerPath: notify ? p.listenerPath : null,
      libseccomp: version,
    },
  };
}
