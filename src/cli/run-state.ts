/** What `tsns run`'s options gather while parsing, and the shapes an option takes. */
import type { RunAllOptions } from '../run';
import type { SandboxOp } from '../sandbox';
import { UsageError, type OptDef } from './args';

export interface RunCommand {
  options: RunAllOptions;
  command: string[];
  dryRun: boolean;
  json: boolean;
  help: boolean;
  /** --args read words from an fd: the command line is no longer our argv's tail */
  argsFromFd: boolean;
}

/** What parsing has gathered so far. */
export interface RunState {
  out: RunCommand;
  options: RunAllOptions;
  fs: SandboxOp[];
  // bwrap's --perms and --size apply to the next operation that takes them.
  perms?: number;
  size?: number | bigint;
  // --overlay-src words waiting for the overlay option that uses them.
  overlaySrc: string[];
  seccompFd?: number;
  addSeccomp: number[];
}

export interface RunOpt extends OptDef {
  /** --perms, --size (and --args): they apply to what follows, which must take them */
  modifier?: boolean;
  /** value: the first word; words: all of them, for an option that takes several */
  set(s: RunState, value: string | undefined, words: readonly string[]): void;
}

export const flag = (long: string, help: string, set: (o: RunAllOptions) => void, short?: string): RunOpt =>
  ({ long, ...(short ? { short } : {}), arg: 'none', help, set: (s) => set(s.options) });

export const valued = (long: string, metavar: string, help: string, set: (s: RunState, v: string) => void, short?: string): RunOpt =>
  ({ long, ...(short ? { short } : {}), arg: 'required', metavar, help, set: (s, v) => set(s, v!) });

/** An option of several words (bwrap's `--bind SRC DEST`): the table says how many. */
export const multi = (long: string, metavars: readonly string[], help: string, set: (s: RunState, words: readonly string[]) => void): RunOpt =>
  ({ long, arg: 'required', words: metavars.length, metavar: metavars.join(' '), help, set: (s, _v, words) => set(s, words) });

export function seconds(option: string, value: string): number {
  if (!/^-?\d+$/.test(value)) throw new UsageError(`--${option} needs a whole number of seconds, not '${value}'`);
  return Number(value);
}

/** The pending --perms for an operation, used up. */
export function perms(s: RunState): { perms?: number } {
  const p = s.perms === undefined ? {} : { perms: s.perms };
  s.perms = undefined;
  return p;
}

export function permsAndSize(s: RunState): { perms?: number; size?: number | bigint } {
  const t = { ...perms(s), ...(s.size === undefined ? {} : { size: s.size }) };
  s.size = undefined;
  return t;
}

