/**
 * Pure: a seccomp profile as JSON — the OCI runtime spec's `linux.seccomp`
 * object, Docker's profile format (which adds archMap, `name`, comments and
 * includes/excludes), and podman's errno names — read into one checked form.
 * Every error names the bad value and where it is (`syscalls[3].action`).
 * Unknown keys are ignored, as Docker, podman and runc ignore them.
 */
import { CAPABILITIES } from '../capabilities';
import { TsnsError } from '../errors';
import { JsonError, parseJson, type JsonValue } from './json';
import { ACTIONS, ARCHES, errnoNumber, GO_ARCHES, MAX_ERRNO, OPERATORS, PROFILE_FLAGS, type Action, type Operator } from './tables';

export interface SeccompArg {
  index: number;
  /** datum_a: the value compared, or the mask of MASKED_EQ */
  value: bigint;
  /** datum_b: what MASKED_EQ compares the masked argument with */
  valueTwo: bigint;
  op: Operator;
}

/** Docker's includes/excludes. */
export interface SeccompFilter {
  caps: string[];
  arches: string[];
  /** [kernel, major], from "4.8" */
  minKernel: [number, number] | null;
}

export interface SeccompSyscall {
  names: string[];
  action: Action;
  errnoRet: number | null;
  args: SeccompArg[];
  includes: SeccompFilter | null;
  excludes: SeccompFilter | null;
  /** where the group is in the profile: `syscalls[3]` */
  path: string;
}

export interface SeccompProfile {
  defaultAction: Action;
  defaultErrnoRet: number | null;
  architectures: string[];
  archMap: { architecture: string; subArchitectures: string[] }[];
  /** null when the profile has no `flags` (which has a meaning of its own: SPEC_ALLOW) */
  flags: string[] | null;
  listenerPath: string | null;
  listenerMetadata: string | null;
  syscalls: SeccompSyscall[];
}

/** A profile given as an object: JSON.parse's output, or parseJson's (which keeps 64-bit values exact). */
export type SeccompProfileInput = Readonly<Record<string, unknown>>;

export function profileError(source: string, path: string, message: string, hint?: string): TsnsError {
  return new TsnsError(`invalid seccomp profile ${source}: ${path ? `${path}: ` : ''}${message}`, {
    stage: 'plan', ...(hint === undefined ? {} : { hint }),
  });
}

const ACTION_HINT = `actions: ${Object.keys(ACTIONS).join(', ')}`;
const shown = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : typeof v === 'bigint' ? v.toString() : JSON.stringify(v) ?? String(v));

/** Reads one profile; `fail` carries the source's name. */
class Checker {
  constructor(readonly source: string) {}

  fail(path: string, message: string, hint?: string): never {
    throw profileError(this.source, path, message, hint);
  }

  object(v: unknown, path: string): Readonly<Record<string, unknown>> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, `must be an object, not ${shown(v)}`);
    return v as Record<string, unknown>;
  }

  string(v: unknown, path: string): string {
    if (typeof v !== 'string') this.fail(path, `must be a string, not ${shown(v)}`);
    return v;
  }

  optString(o: Readonly<Record<string, unknown>>, key: string, path: string): string | null {
    return o[key] === undefined || o[key] === null ? null : this.string(o[key], path);
  }

  strings(v: unknown, path: string): string[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) this.fail(path, `must be a list of strings, not ${shown(v)}`);
    return v.map((s, i) => this.string(s, `${path}[${i}]`));
  }

  /** One of `names`, as the list or a value each, or fail naming the value. */
  oneOf<T extends string>(v: unknown, path: string, names: readonly T[], what: string, hint: string): T {
    const s = this.string(v, path);
    if (!(names as readonly string[]).includes(s)) this.fail(path, `unknown ${what} ${JSON.stringify(s)}`, hint);
    return s as T;
  }

  u64(v: unknown, path: string): bigint {
    if (typeof v === 'bigint' && v >= 0n && v < 1n << 64n) return v;
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
    if (typeof v === 'number' && Number.isInteger(v) && v > 0) {
      this.fail(path, `${v} is beyond 2^53 and has lost its exact value to JSON.parse`, 'read the profile with parseJson() from tsns, or give it as a file');
    }
    return this.fail(path, `must be a whole number from 0 to 18446744073709551615, not ${shown(v)}`);
  }

  /** errnoRet, or podman's errno (a name like "ENOSYS" or a number), which wins. */
  errno(o: Readonly<Record<string, unknown>>, retKey: string, nameKey: string, path: string): number | null {
    const named = o[nameKey];
    if (named !== undefined && named !== null && named !== '') {
      const n = typeof named === 'number' ? named : errnoNumber(this.string(named, `${path}${nameKey}`));
      if (n === undefined) this.fail(`${path}${nameKey}`, `unknown errno ${shown(named)}`, 'names as in errno(3), e.g. EPERM or ENOSYS');
      return this.errnoValue(n, `${path}${nameKey}`);
    }
    const ret = o[retKey];
    return ret === undefined || ret === null ? null : this.errnoValue(ret, `${path}${retKey}`);
  }

  errnoValue(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= MAX_ERRNO) {
      this.fail(path, `${shown(v)} is not an errno: it must be a whole number from 0 to ${MAX_ERRNO - 1}`);
    }
    return v;
  }

  arg(v: unknown, path: string): SeccompArg {
    const o = this.object(v, path);
    const index = o.index;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 5) {
      this.fail(`${path}.index`, `${shown(index)} is not an argument index: system calls have arguments 0 to 5`);
    }
    const op = this.oneOf(o.op, `${path}.op`, Object.keys(OPERATORS) as Operator[], 'operator', `operators: ${Object.keys(OPERATORS).join(', ')}`);
    return {
      index, op,
      value: this.u64(o.value ?? 0, `${path}.value`),
      valueTwo: this.u64(o.valueTwo ?? 0, `${path}.valueTwo`),
    };
  }

  filter(v: unknown, path: string): SeccompFilter | null {
    if (v === undefined || v === null) return null;
    const o = this.object(v, path);
    const caps = this.strings(o.caps, `${path}.caps`);
    caps.forEach((c, i) => {
      if (!(CAPABILITIES as readonly string[]).includes(c.replace(/^CAP_/, '')) || !c.startsWith('CAP_')) {
        this.fail(`${path}.caps[${i}]`, `unknown capability ${JSON.stringify(c)}`, 'names as in capabilities(7), e.g. CAP_SYS_ADMIN');
      }
    });
    const arches = this.strings(o.arches, `${path}.arches`);
    arches.forEach((a, i) => {
      if (GO_ARCHES[a] === undefined) this.fail(`${path}.arches[${i}]`, `unknown architecture ${JSON.stringify(a)}`, `Docker's names: ${Object.keys(GO_ARCHES).join(', ')}`);
    });
    return { caps, arches, minKernel: this.kernel(o.minKernel, `${path}.minKernel`) };
  }

  /** "<kernel>.<major>", each 0-255, as Docker reads it. */
  kernel(v: unknown, path: string): [number, number] | null {
    if (v === undefined || v === null || v === '') return null;
    const m = /^(\d+)\.(\d+)$/.exec(this.string(v, path));
    const k = m ? [Number(m[1]), Number(m[2])] as [number, number] : null;
    if (!k || k[0] > 255 || k[1] > 255 || (k[0] === 0 && k[1] === 0)) this.fail(path, `invalid kernel version ${shown(v)}`, 'write it as "<kernel>.<major>", e.g. "4.8"');
    return k;
  }

  syscall(v: unknown, path: string): SeccompSyscall {
    const o = this.object(v, path);
    if (o.name !== undefined && o.names !== undefined) {
      this.fail(path, "both 'name' and 'names' are given", "use either 'name' or 'names'");
    }
    const names = o.name !== undefined ? [this.string(o.name, `${path}.name`)] : this.strings(o.names, `${path}.names`);
    if (o.action === undefined) this.fail(path, 'has no action', ACTION_HINT);
    const action = this.oneOf(o.action, `${path}.action`, Object.keys(ACTIONS) as Action[], 'action', ACTION_HINT);
    if (o.args !== undefined && o.args !== null && !Array.isArray(o.args)) this.fail(`${path}.args`, `must be a list, not ${shown(o.args)}`);
    const args = ((o.args ?? []) as unknown[]).map((a, i) => this.arg(a, `${path}.args[${i}]`));
    if (args.length > 6) this.fail(`${path}.args`, `has ${args.length} conditions: libseccomp takes at most 6 per rule`);
    return {
      names, action, args, path,
      errnoRet: this.errno(o, 'errnoRet', 'errno', `${path}.`),
      includes: this.filter(o.includes, `${path}.includes`),
      excludes: this.filter(o.excludes, `${path}.excludes`),
    };
  }

  archMap(v: unknown): SeccompProfile['archMap'] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) this.fail('archMap', `must be a list, not ${shown(v)}`);
    return v.map((e, i) => {
      const o = this.object(e, `archMap[${i}]`);
      return {
        architecture: this.arch(o.architecture, `archMap[${i}].architecture`),
        subArchitectures: this.strings(o.subArchitectures, `archMap[${i}].subArchitectures`).map((a, j) => this.arch(a, `archMap[${i}].subArchitectures[${j}]`)),
      };
    });
  }

  arch(v: unknown, path: string): string {
    return this.oneOf(v, path, ARCHES, 'architecture', `architectures: ${ARCHES.join(', ')}`);
  }

  profile(v: unknown): SeccompProfile {
    const o = this.object(v, '');
    if (o.defaultAction === undefined || o.defaultAction === '') this.fail('defaultAction', 'is missing', ACTION_HINT);
    if (o.architectures !== undefined && o.archMap !== undefined && o.architectures !== null && o.archMap !== null) {
      this.fail('', "both 'architectures' and 'archMap' are given", "use either 'architectures' or 'archMap'");
    }
    if (o.syscalls !== undefined && o.syscalls !== null && !Array.isArray(o.syscalls)) this.fail('syscalls', `must be a list, not ${shown(o.syscalls)}`);
    const flags = o.flags === undefined || o.flags === null ? null : this.strings(o.flags, 'flags');
    flags?.forEach((f, i) => this.oneOf(f, `flags[${i}]`, Object.keys(PROFILE_FLAGS), 'flag', `flags: ${Object.keys(PROFILE_FLAGS).join(', ')}`));
    return {
      defaultAction: this.oneOf(o.defaultAction, 'defaultAction', Object.keys(ACTIONS) as Action[], 'action', ACTION_HINT),
      defaultErrnoRet: this.errno(o, 'defaultErrnoRet', 'defaultErrno', ''),
      architectures: this.strings(o.architectures, 'architectures').map((a, i) => this.arch(a, `architectures[${i}]`)),
      archMap: this.archMap(o.archMap),
      flags,
      listenerPath: this.optString(o, 'listenerPath', 'listenerPath'),
      listenerMetadata: this.optString(o, 'listenerMetadata', 'listenerMetadata'),
      syscalls: ((o.syscalls ?? []) as unknown[]).map((s, i) => this.syscall(s, `syscalls[${i}]`)),
    };
  }
}

/** A profile object (OCI or Docker format) checked; `source` names it in errors (a file, 'default'). */
export function parseProfile(value: unknown, source: string): SeccompProfile {
  return new Checker(source).profile(value);
}

/** A profile's JSON text, parsed with 64-bit values kept exact, then checked. */
export function parseProfileText(text: string, source: string): SeccompProfile {
  let value: JsonValue;
  try {
    value = parseJson(text);
  } catch (e) {
    if (e instanceof JsonError) throw profileError(source, '', `not JSON: ${e.message}`);
    throw e;
  }
  return parseProfile(value, source);
}
