/**
 * Help texts, formatted by commander from the option tables; commander is
 * loaded only when help is asked for.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OptDef } from './args';

export function version(): string {
  // dist/cli.cjs when bundled, src/cli/ when run from source.
  for (const up of ['..', join('..', '..')]) {
    try {
      return (JSON.parse(readFileSync(join(__dirname, up, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      // not here
    }
  }
  return 'unknown';
}

type Command = import('commander').Command;

function program(): Command {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Command } = require('commander') as typeof import('commander');
  return new Command('tsns').description('run programs in new Linux namespaces').version(version());
}

/** Our option table as commander's help lists it; optional values in their `=` form. */
function describeOptions(cmd: Command, defs: readonly OptDef[]): void {
  for (const d of defs) {
    if (d.long === 'help') continue;
    const value = d.arg === 'required' ? ` ${(d.metavar ?? 'VALUE').split(' ').map((m) => `<${m}>`).join(' ')}` : d.arg === 'optional' ? `[=${d.metavar}]` : '';
    cmd.option(`${d.short ? `-${d.short}, ` : ''}--${d.long}${value}`, d.help);
  }
}

export interface CommandHelp {
  name: string;
  usage: string;
  description: string;
  options: readonly OptDef[];
  after?: string;
}

/** `tsns COMMAND --help`. */
export function commandHelp(h: CommandHelp): string {
  const cmd = program().command(h.name).usage(h.usage).description(h.description);
  describeOptions(cmd, h.options);
  if (h.after) cmd.addHelpText('after', h.after);
  return cmd.helpInformation();
}

/** `tsns --help`: the commands. */
export function programHelp(commands: readonly Pick<CommandHelp, 'name' | 'usage' | 'description'>[]): string {
  const p = program();
  for (const c of commands) p.command(c.name).usage(c.usage).description(c.description);
  return p.helpInformation();
}
