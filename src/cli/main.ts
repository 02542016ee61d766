/**
 * The command line: which command, and how a failure of tsns is reported.
 * Returns how to end instead of ending, so that bin/tsns.js is the only
 * place a process ends (native/end.c carries out a death by signal).
 */
import { join } from 'node:path';
import { formatError, TsnsError } from '../errors';
import { die as nativeDie } from '../native';
import { assumeMainThread } from '../watch';
import { UsageError } from './args';
import { ENTER_HELP, enterCommand } from './enter';
import { levelLines, useLevelPrefix } from './level';
import { programHelp, version } from './help';
import { lsCommand } from './ls';
import { RUN_HELP, runCommand } from './run';
import { SUCCESS, type CliStatus } from './status';

export type { CliStatus } from './status';

async function ociCommand(rest: readonly string[]): Promise<CliStatus> {
  // With its code cache, as bin/tsns-oci.js loads it (both are in dist/ and bin/ of one package).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { cachedRequire } = require('../../bin/cached-require.js') as { cachedRequire(file: string): unknown };
  const oci = cachedRequire(join(__dirname, 'oci.cjs')) as { ociMain(argv: readonly string[]): Promise<CliStatus> };
  return oci.ociMain(rest);
}
export { trace } from './trace';

const LS_HELP = { name: 'ls', usage: '[options] [namespace]', description: "list namespaces and their processes (lsns); see 'tsns ls --help'" };

const COMMANDS: Record<string, (args: readonly string[]) => Promise<CliStatus>> = {
  run: runCommand,
  enter: enterCommand,
  ls: lsCommand,
};

async function printError(err: TsnsError): Promise<void> {
  let text = formatError(err);
  if (process.stderr.isTTY && !process.env.NO_COLOR && text !== levelLines(text)) {
    process.stderr.write(levelLines(text));
    return;
  }
  text = levelLines(text);
  if (process.stderr.isTTY && !process.env.NO_COLOR) {
    // Loaded only when colour is printed: it costs milliseconds at start-up.
    const chalk = (await import('chalk')).default;
    text = text.replace(/^tsns:/, chalk.red.bold('tsns:')).replace(/^hint:/m, chalk.yellow('hint:'));
  }
  process.stderr.write(text);
}

async function dispatch(sub: string | undefined, rest: readonly string[]): Promise<CliStatus> {
  const command = sub === undefined ? undefined : COMMANDS[sub];
  if (command) return command(rest);
  // `tsns oci ...` is tsns-oci: its bundle, loaded only here.
  if (sub === 'oci') return ociCommand(rest);
  switch (sub) {
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(programHelp([RUN_HELP, ENTER_HELP, LS_HELP]));
      return { code: sub === undefined ? 125 : 0, signal: null };
    case 'help':
      // `tsns help run` is `tsns run --help`.
      if (rest[0] !== undefined && COMMANDS[rest[0]]) return COMMANDS[rest[0]]!(['--help']);
      process.stdout.write(programHelp([RUN_HELP, ENTER_HELP, LS_HELP]));
      return SUCCESS;
    case '-V':
    case '--version':
      process.stdout.write(`tsns ${version()}\n`);
      return SUCCESS;
    default:
      throw new UsageError(`unknown command '${sub}'`, "commands: run, enter, ls; see 'tsns --help'");
  }
}

/** The whole CLI. */
export async function main(argv: readonly string[]): Promise<CliStatus> {
  assumeMainThread();
  try {
    const [sub, ...rest] = argv;
    useLevelPrefix(sub, rest);
    return await dispatch(sub, rest);
  } catch (e) {
    if (!(e instanceof TsnsError)) throw e;
    if (process.env.TSNS_DEBUG) process.stderr.write(`${e.stack}\n`);
    await printError(e);
    return { code: e.exitCode, signal: null };
  }
}

/** Die of the command's signal (native/end.c); returns only if that did not kill us. */
export function die(signal: number): void {
  nativeDie(signal);
}
