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

/** The --map-users words beside ranges: the first /etc/subuid block from 0, the same block as itself, every id we have. */
export type RangeWord = 'auto' | 'subids' | 'all';
export type RangeInput = string | IdMapEntry;

export interface IdMapInput {
  kind: 'uid' | 'gid';
  option: string;
  single: number | null;
  /** ranges in command-line order: INNER:OUTER:COUNT, OUTER,INNER,COUNT, a RangeWord, or entries */
  ranges: readonly RangeInput[] | undefined;
  /** --map-auto given as a flag (the library's mapAuto): an 'auto' after the ranges */
  auto: boolean;
  own: number;
}

export interface IdMapPlan {
  map: IdMapEntry[] | null;
  /** written through newuidmap/newgidmap (ranges beyond the caller's own id, without root) */
  helper: boolean;
}

/** A range as util-linux holds it; inner null: from 0 (auto), once placed. */
interface Range { inner: number | null; outer: number; count: number }

function subidRange(input: IdMapInput, word: 'auto' | 'subids', ctx: PlanContext): Range {
  const first = ctx.subordinateIds(input.kind)[0];
  if (!first) {
    throw planError(`--${input.option}=${word}: no range for you in /etc/sub${input.kind}`,
      `add one, e.g. with usermod --add-sub${input.kind}s 100000-165535 USER`);
  }
  return { inner: word === 'subids' ? first.start : null, outer: first.start, count: first.count };
}

function expandRange(input: IdMapInput, r: RangeInput, ctx: PlanContext): Range[] {
  if (typeof r !== 'string') return [r];
  if (r === 'auto' || r === 'subids') return [subidRange(input, r, ctx)];
  if (r === 'all') {
    // Every id this namespace has, as itself (util-linux 2.40).
    const own = ctx.ownIdMap?.(input.kind);
    if (!own) throw planError(`--${input.option}=all: cannot read /proc/self/${input.kind}_map`);
    return own.map((e) => ({ inner: e.inner, outer: e.inner, count: e.count }));
  }
  return [parseRange(input.option, r)];
}

const U32 = 2 ** 32;

/**
 * util-linux's add_single_map_range: the single id first, and every range
 * that holds its inner or outer id gives up one id there (its top one),
 * split into up to three pieces around the hole. Ranges keep their order.
 */
export function withSingle(ranges: readonly Range[], outer: number, inner: number | null): IdMapEntry[] {
  const out: IdMapEntry[] = inner === null ? [] : [{ inner, outer, count: 1 }];
  for (const r of ranges) {
    const map = { inner: r.inner ?? 0, outer: r.outer, count: r.count };
    if (inner === null) {
      out.push(map);
      continue;
    }
    // As util-linux, one past a range's end counts as inside it too.
    if ((outer >= map.outer && outer <= (map.outer + map.count) % U32) || (inner >= map.inner && inner <= (map.inner + map.count) % U32)) map.count--;
    const outerOffset = Math.min(outer > map.outer ? outer - map.outer : 0, map.count);
    const innerOffset = Math.min(inner > map.inner ? inner - map.inner : 0, map.count);
    const lo = { outer: map.outer, inner: map.inner, count: Math.min(innerOffset, outerOffset) };
    const mid = { outer: lo.outer + lo.count, inner: lo.inner + lo.count, count: Math.abs(outerOffset - innerOffset) };
    if (mid.outer === outer) mid.outer++;
    if (mid.inner === inner) mid.inner++;
    const hi = { outer: mid.outer + mid.count, inner: mid.inner + mid.count, count: map.count - lo.count - mid.count };
    if (hi.outer === outer) hi.outer++;
    if (hi.inner === inner) hi.inner++;
    for (const piece of [lo, mid, hi]) if (piece.count) out.push(piece);
  }
  return out;
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
  const given = [...(input.ranges ?? []), ...(input.auto ? ['auto'] : [])];
  const ranges = given.flatMap((r) => expandRange(input, r, ctx));
  const map = ranges.length ? withSingle(ranges, input.own, input.single) : input.single === null ? [] : [{ inner: input.single, outer: input.own, count: 1 }];
  if (map.length === 0) return { map: null, helper: false };
  try {
    validateIdMap(map, `${input.kind} map`);
  } catch (e) {
    if (e instanceof IdMapError) throw planError(e.message);
    throw e;
  }
  const ownOnly = map.length === 1 && map[0]!.outer === input.own && map[0]!.count === 1;
  if (ctx.privileged || ownOnly) return { map, helper: false };
  checkSubordinate(input, map, ctx.subordinateIds(input.kind));
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
