/**
 * The one argument parser every command uses: getopt_long's rules, as
 * util-linux parses them — an optional value only in the `--opt=VALUE` form
 * (so `--mount-proc ps` runs ps), unambiguous prefixes of long options,
 * clustered short flags, and options end at the first operand (a leading
 * '+'), or at `--`. An option may also take several words, as bwrap's do
 * (`--bind SRC DEST`).
 */
import { TsnsError } from '../errors';

export type ArgKind = 'none' | 'required' | 'optional';

export interface OptDef {
  long: string;
  short?: string;
  arg: ArgKind;
  /** the value's name in help; for several words, theirs separated by spaces */
  metavar?: string;
  help: string;
  /** words a required option takes (bwrap's `--bind SRC DEST` takes 2); default 1 */
  words?: number;
  /** an optional value may be glued to the short form too (nsenter's -m/path; unshare's -m is a flag) */
  shortValue?: boolean;
}

/** An option as given: its value (the first word), and every word when it takes several. */
export interface Given<D extends OptDef = OptDef> {
  def: D;
  value: string | undefined;
  words: readonly string[];
}

export interface Parsed<D extends OptDef = OptDef> {
  options: Given<D>[];
  operands: string[];
}

export class UsageError extends TsnsError {
  constructor(message: string, hint = "see 'tsns run --help'") {
    super(message, { stage: 'option', hint });
  }
}

function findLong<D extends OptDef>(defs: readonly D[], name: string): D {
  const exact = defs.find((d) => d.long === name);
  if (exact) return exact;
  const matches = defs.filter((d) => d.long.startsWith(name));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new UsageError(`option '--${name}' is ambiguous; possibilities: ${matches.map((m) => `'--${m.long}'`).join(' ')}`);
  }
  throw new UsageError(`unrecognized option '--${name}'`);
}

/**
 * Words to parse in place of an option (bwrap's --args FD), or undefined to
 * keep the option as it is.
 */
export type Expand = (def: OptDef, value: string) => readonly string[] | undefined;

class Cursor {
  i = 0;
  // Words up to this index were read by an expansion, which may not expand again.
  expandedUntil = -1;
  constructor(readonly args: string[]) {}

  /** The next `n` words as an option's values, or a getopt-style complaint. */
  take(n: number, missing: string): string[] {
    if (this.i + n >= this.args.length) throw new UsageError(missing);
    const words = this.args.slice(this.i + 1, this.i + 1 + n);
    this.i += n;
    return words;
  }
}

function parseLong<D extends OptDef>(defs: readonly D[], arg: string, at: Cursor): Given<D> {
  const eq = arg.indexOf('=');
  const def = findLong(defs, eq < 0 ? arg.slice(2) : arg.slice(2, eq));
  const inline = eq < 0 ? undefined : arg.slice(eq + 1);
  if (def.arg === 'none' && inline !== undefined) throw new UsageError(`option '--${def.long}' doesn't allow an argument`);
  if (def.arg !== 'required') return { def, value: inline, words: inline === undefined ? [] : [inline] };
  const n = def.words ?? 1;
  const missing = n > 1 ? `option '--${def.long}' requires ${n} arguments` : `option '--${def.long}' requires an argument`;
  const words = inline === undefined ? at.take(n, missing) : [inline, ...at.take(n - 1, missing)];
  return { def, value: words[0], words };
}

function parseShort<D extends OptDef>(defs: readonly D[], arg: string, at: Cursor): Given<D>[] {
  const out: Given<D>[] = [];
  for (let j = 1; j < arg.length; j++) {
    const ch = arg[j]!;
    const def = defs.find((d) => d.short === ch);
    if (!def) throw new UsageError(`invalid option -- '${ch}'`);
    if (def.arg === 'required') {
      const glued = arg.slice(j + 1);
      const value = glued === '' ? at.take(1, `option requires an argument -- '${ch}'`)[0]! : glued;
      out.push({ def, value, words: [value] });
      break;
    }
    // getopt's "x::" (nsenter's, not unshare's plain "m"): an optional value only glued on (-m/path, -W/etc).
    if (def.arg === 'optional' && def.shortValue && j + 1 < arg.length) {
      const value = arg.slice(j + 1);
      out.push({ def, value, words: [value] });
      break;
    }
    out.push({ def, value: undefined, words: [] });
  }
  return out;
}

function parseArgsOrThrow<D extends OptDef>(defs: readonly D[], input: readonly string[], expand?: Expand): Parsed<D> {
  const options: Given<D>[] = [];
  const at = new Cursor([...input]);
  for (; at.i < at.args.length; at.i++) {
    const arg = at.args[at.i]!;
    if (arg === '--') {
      at.i++;
      break;
    }
    if (arg.startsWith('--')) {
      const given = parseLong(defs, arg, at);
      options.push(given);
      const words = given.value === undefined ? undefined : expand?.(given.def, given.value);
      if (words) {
        if (at.i <= at.expandedUntil) throw new UsageError(`--${given.def.long} cannot be used in words --${given.def.long} read`);
        at.args.splice(at.i + 1, 0, ...words);
        at.expandedUntil = at.i + words.length;
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      options.push(...parseShort(defs, arg, at));
      continue;
    }
    break;
  }
  return { options, operands: at.args.slice(at.i) };
}

/** getopt_long with a leading '+': options stop at the first operand; errors carry `usage` as their hint. */
export function parseArgs<D extends OptDef>(defs: readonly D[], args: readonly string[], usage = "see 'tsns run --help'", expand?: Expand): Parsed<D> {
  try {
    return parseArgsOrThrow(defs, args, expand);
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(e.message, usage);
    throw e;
  }
}

/** A value that must be one of a few words. */
export function oneOf<T extends string>(option: string, value: string, allowed: readonly T[], usage?: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`unsupported --${option} argument '${value}'; use one of: ${allowed.join(', ')}`, usage);
}

/** A value that must name an open file descriptor. */
export function fdNumber(option: string, value: string, usage?: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 0x7fffffff) throw new UsageError(`--${option} needs an open file descriptor's number, not '${value}'`, usage);
  return Number(value);
}
