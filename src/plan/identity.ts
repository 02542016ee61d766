/**
 * Pure: who the command is inside a new user namespace — the uid and gid
 * maps from -r/-c/--map-user/--map-users/--map-auto, whether a setuid helper
 * must write them, setgroups, and ids given by name or number.
 */
import type { PlanContext } from '../context';
import { TsnsError } from '../errors';
import { IdMapError, validateIdMap, type IdMapEntry } from '../idmap';

export type Setgroups = 'allow' | 'deny';

export function planError(message: string, hint?: string): TsnsError {
  return new TsnsError(message, { stage: 'plan', ...(hint === undefined ? {} : { hint }) });
}

/** A uid or gid given as a number or a name. */
export function resolveId(value: number | string, kind: 'user' | 'group', lookup: (n: string) => number | undefined): number {
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n >= 0xffffffff) throw planError(`invalid ${kind} id '${value}'`);
    return n;
  }
  const id = lookup(value);
  if (id === undefined) throw planError(`no such ${kind}: '${value}'`, `check the name, or give a numeric ${kind === 'user' ? 'uid' : 'gid'}`);
  return id;
}

/** `INNER:OUTER:COUNT`, or util-linux 2.38's `OUTER,INNER,COUNT`. */
export function parseRange(option: string, text: string): IdMapEntry {
  const m = /^(\d{1,10}):(\d{1,10}):(\d{1,10})$/.exec(text) ?? /^(\d{1,10}),(\d{1,10}),(\d{1,10})$/.exec(text);
  if (!m) throw planError(`invalid --${option} range '${text}'`, 'write it as INNER:OUTER:COUNT, e.g. 0:100000:65536');
  const [a, b, count] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return text.includes(':') ? { inner: a, outer: b, count } : { inner: b, outer: a, count };
}

export interface IdMapInput {
  kind: 'uid' | 'gid';
  option: string;
  single: number | null;
  ranges: readonly (string | IdMapEntry)[] | undefined;
  auto: boolean;
  own: number;
}

export interface IdMapPlan {
  map: IdMapEntry[] | null;
  /** written through newuidmap/newgidmap (ranges beyond the caller's own id, without root) */
  helper: boolean;
}

function autoRange(input: IdMapInput, map: readonly IdMapEntry[], sub: readonly { start: number; count: number }[]): IdMapEntry {
  const first = sub[0];
  if (!first) {
    throw planError(`--map-auto: no range for you in /etc/sub${input.kind}`, `add one, e.g. with usermod --add-sub${input.kind}s 100000-165535 USER`);
  }
  return { inner: map.some((e) => e.inner === 0) ? 1 : 0, outer: first.start, count: first.count };
}

/** Without root every range must be the caller's own id or inside its subordinate ranges. */
function checkSubordinate(input: IdMapInput, map: readonly IdMapEntry[], sub: readonly { start: number; count: number }[]): void {
  for (const e of map) {
    const ok = (e.outer === input.own && e.count === 1) || sub.some((s) => e.outer >= s.start && e.outer + e.count <= s.start + s.count);
    if (!ok) {
      throw planError(
        `${input.kind} range ${e.inner}:${e.outer}:${e.count} is outside your /etc/sub${input.kind} ranges`,
        sub.length ? `yours: ${sub.map((s) => `${s.start}-${s.start + s.count - 1}`).join(', ')}` : `you have none in /etc/sub${input.kind}; ask root to add one, or run as root`,
      );
    }
  }
}

/** One id map from -r/-c/--map-user, --map-users and --map-auto; and whether a helper must write it. */
export function buildIdMap(input: IdMapInput, ctx: PlanContext): IdMapPlan {
  const map: IdMapEntry[] = [];
  if (input.single !== null) map.push({ inner: input.single, outer: input.own, count: 1 });
  for (const r of input.ranges ?? []) map.push(typeof r === 'string' ? parseRange(input.option, r) : r);
  const sub = input.auto || (!ctx.privileged && map.some((e) => e.outer !== input.own || e.count !== 1))
    ? ctx.subordinateIds(input.kind)
    : [];
  if (input.auto) map.push(autoRange(input, map, sub));
  if (map.length === 0) return { map: null, helper: false };
  try {
    validateIdMap(map, `${input.kind} map`);
  } catch (e) {
    if (e instanceof IdMapError) throw planError(e.message);
    throw e;
  }
  const ownOnly = map.length === 1 && map[0]!.outer === input.own && map[0]!.count === 1;
  if (ctx.privileged || ownOnly) return { map, helper: false };
  checkSubordinate(input, map, sub);
  return { map, helper: true };
}

/**
 * What is written to /proc/PID/setgroups, if anything. As util-linux: a
 * single gid mapped by -r, -c or --map-group with no --map-groups range
 * denies setgroups, root or not. Unlike util-linux, root may keep it with
 * --setgroups=allow (unshare refuses the pair); without root the kernel
 * needs the deny first.
 */
export function setgroupsFor(asked: Setgroups | undefined, gids: IdMapPlan, singleOnly: boolean, ctx: PlanContext): Setgroups | null {
  if (!gids.map || gids.helper) return asked ?? null;
  if (!singleOnly && ctx.privileged) return asked ?? null;
  if (asked === 'allow') {
    if (ctx.privileged) return 'allow';
    throw planError(
      '--setgroups=allow cannot be used with a gid map written without root',
      'the kernel requires setgroups to be denied first; drop --setgroups=allow, or map through /etc/subgid (--map-groups), or run as root',
    );
  }
  return 'deny';
}
