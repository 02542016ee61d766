/**
 * runc's command line, parsed as runc (urfave/cli) parses it: `-flag` and
 * `--flag` alike, values as `--flag=V` or `--flag V`, booleans as `--flag`
 * or `--flag=true|false`, global options before the command, a command's
 * options before its operands (exec's command is everything after the id).
 */
import { TsnsError } from '../errors';

export type FlagKind = 'bool' | 'string' | 'list';

export interface FlagDef {
  name: string;
  alias?: string;
  kind: FlagKind;
}

export type Flags = Record<string, string | boolean | string[] | undefined>;

export interface ParsedArgs {
  flags: Flags;
  operands: string[];
}

export function usage(message: string, command?: string): TsnsError {
  return new TsnsError(message, { stage: 'option', hint: `see 'tsns-oci ${command ? `${command} ` : ''}--help'` });
}

/**
 * Parses until the first operand, or with `interspersed` (most commands: urfave
 * reorders) anywhere until `--`; `stopAfter` operands end the options for
 * good (exec ID COMMAND...: the command's own flags are its own).
 */
export function parseFlags(args: readonly string[], defs: readonly FlagDef[], command: string, opts: { interspersed?: boolean; stopAfter?: number } = {}): ParsedArgs {
  const flags: Flags = {};
  const operands: string[] = [];
  const byName = new Map<string, FlagDef>();
  for (const d of defs) {
    byName.set(d.name, d);
    if (d.alias) byName.set(d.alias, d);
  }
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (opts.stopAfter !== undefined && operands.length >= opts.stopAfter) break;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      operands.push(a);
      if (!opts.interspersed && opts.stopAfter === undefined) {
        i++;
        break;
      }
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const def = byName.get(name);
    if (!def) throw usage(`flag provided but not defined: -${name}`, command);
    let value: string | undefined = eq < 0 ? undefined : body.slice(eq + 1);
    if (def.kind === 'bool') {
      if (value !== undefined && !/^(true|false|1|0|t|f|TRUE|FALSE|True|False)$/.test(value)) throw usage(`invalid boolean value "${value}" for -${name}`, command);
      flags[def.name] = value === undefined || /^(true|1|t|TRUE|True)$/.test(value);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= args.length) throw usage(`flag needs an argument: -${name}`, command);
      value = args[++i]!;
    }
    if (def.kind === 'list') flags[def.name] = [...((flags[def.name] as string[] | undefined) ?? []), value];
    else flags[def.name] = value;
  }
  operands.push(...args.slice(i));
  return { flags, operands };
}

export const str = (f: Flags, name: string): string | undefined => {
  const v = f[name];
  return typeof v === 'string' ? v : undefined;
};
export const bool = (f: Flags, name: string): boolean => f[name] === true;
export const list = (f: Flags, name: string): string[] => (Array.isArray(f[name]) ? (f[name] as string[]) : []);

export function int(f: Flags, name: string, command: string, fallback = 0): number {
  const v = str(f, name);
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v)) throw usage(`invalid value "${v}" for flag -${name}: parse error`, command);
  return Number(v);
}

/** The one container id a command takes, checked as runc checks it. */
export function containerId(operands: readonly string[], command: string, max = 1): string {
  const id = operands[0];
  if (id === undefined || id === '') throw usage(`"${command}" requires a container id`, command);
  if (operands.length > max) throw usage(`"${command}" requires exactly ${max} argument(s)`, command);
  if (!/^[\w+\-.]+$/.test(id) || id === '.' || id === '..') throw usage(`invalid container id format: ${id}`, command);
  return id;
}
