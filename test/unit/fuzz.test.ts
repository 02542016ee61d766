/**
 * Issue 8, part 2: property-based fuzzing of the command line (fast-check).
 *
 * argv arrays are built from tsns's real option table (read back from its own
 * --help, so new options are fuzzed too), in every spelling getopt_long allows
 * (--opt, --opt=V, --opt V, abbreviations, -x, -xV, -x V, clusters), with
 * random and nasty values, `--` and random words.
 *
 * Properties: parseRun/parseEnter (and the plan made from a parsed run) throw
 * nothing but TsnsError; the real CLI (`run --dry-run …`, and `enter` with a
 * pid that cannot exist, so nothing ever runs) exits 0 or 125, never prints a
 * stack trace, never hangs.
 */
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseEnter } from '../../src/cli/enter';
import { main } from '../../src/cli/main';
import { parseRun } from '../../src/cli/run';
import { formatError, TsnsError } from '../../src/errors';
import { signalNumber } from '../../src/signals';
import type { PlanContext } from '../../src/context';
import { describePlan, planToJson } from '../../src/plan/describe';
import { makePlan } from '../../src/plan/run';
import { systemContext } from '../../src/context';

const ROOT = resolve(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'tsns.js');
/** Larger than any pid_max (PID_MAX_LIMIT is 2^22): never a live process. */
const NO_SUCH_PID = '4194305';

type ArgKind = 'none' | 'required' | 'optional';
interface Opt {
  long: string;
  short?: string;
  arg: ArgKind;
}

/** The option table as `tsns <cmd> --help` prints it (commander, from cli.ts's own table). */
async function optionTable(cmd: 'run' | 'enter'): Promise<Opt[]> {
  let text = '';
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => ((text += String(chunk)), true)) as typeof process.stdout.write;
  try {
    await main([cmd, '--help']);
  } finally {
    process.stdout.write = write;
  }
  const opts: Opt[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s{2}(?:-(\w), )?--([\w-]+)(\[=[^\]]+\]| <[^>]+>)?\s/.exec(line);
    if (!m) continue;
    opts.push({ long: m[2]!, ...(m[1] ? { short: m[1] } : {}), arg: m[3] === undefined ? 'none' : m[3].startsWith('[') ? 'optional' : 'required' });
  }
  return opts;
}

const RUN_OPTS = await optionTable('run');
const ENTER_OPTS = await optionTable('enter');

// ---------------------------------------------------------------------------
// Values and words.

const NASTY = [
  '', ' ', '-', '--', '=', '==', '-1', '0', '1', '65534', '4294967295', '4294967296', '99999999999999999999', '1e3', '0x10',
  '0:0:1', '0:100000:65536', '1,2,3', '0:0:0', 'a:b:c', '::', 'allow', 'deny', 'private', 'shared', 'slave', 'unchanged',
  'SIGKILL', 'TERM', '9', '64', '65', 'SIGNOPE', 'root', 'nobody', 'no-such-user', 'K=V', '=V', 'K=', 'PATH=/x',
  '/', '/proc', '/nonexistent', '/nonexistent/dir/file', '/etc/passwd', '/dev/null', '.', '..', 'relative/path',
  'a b', 'tab\there', 'new\nline', "'", '"', '\\', '$HOME', '*', '%s%n', 'ü', '€€€', '😀', 'x'.repeat(65), 'x'.repeat(300),
  '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf',
];

/** No value that could name a real process or namespace: enter must never actually enter anything. */
const TARGETS = [NO_SUCH_PID, '0', '-1', '', 'abc', '99999999999999999999', '4194306', ' 4194305', '4194305 '];
const ENTER_FILES = ['', '/nonexistent', '/nonexistent/dir', '/etc/passwd', '/', '.', '/dev/null', 'relative', 'x y', 'ü'];

const text = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 2, arbitrary: fc.string({ maxLength: 16 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
  { weight: 1, arbitrary: fc.integer({ min: -5, max: 2 ** 33 }).map(String) },
);

/** Values for an option: for enter, only targets and files that cannot exist or are not namespaces. */
function valueFor(cmd: 'run' | 'enter', opt: Opt): fc.Arbitrary<string> {
  if (cmd === 'enter' && opt.long === 'target') return fc.constantFrom(...TARGETS);
  if (cmd === 'enter' && opt.arg === 'optional') return fc.constantFrom(...ENTER_FILES);
  // argv cannot carry a NUL byte.
  return text.map((v) => v.replace(/\0/g, ''));
}

/** One option in any spelling getopt_long accepts (and some it does not). */
function optionTokens(cmd: 'run' | 'enter', table: Opt[]): fc.Arbitrary<string[]> {
  const one = fc.constantFrom(...table).chain((opt) => {
    const value = valueFor(cmd, opt);
    const spellings: fc.Arbitrary<string[]>[] = [
      fc.constant([`--${opt.long}`]),
      fc.nat({ max: opt.long.length - 1 }).map((n) => [`--${opt.long.slice(0, n + 1)}`]),
      value.map((v) => [`--${opt.long}=${v}`]),
    ];
    if (opt.arg === 'required') spellings.push(value.map((v) => [`--${opt.long}`, v]));
    if (opt.short) {
      spellings.push(fc.constant([`-${opt.short}`]));
      if (opt.arg === 'required') {
        spellings.push(value.map((v) => [`-${opt.short}${v}`]), value.map((v) => [`-${opt.short}`, v]));
      }
    }
    return fc.oneof(...spellings);
  });
  const flags = table.filter((o) => o.short && o.arg !== 'required').map((o) => o.short!);
  const cluster = fc.array(fc.constantFrom(...flags), { minLength: 2, maxLength: 5 }).map((s) => [`-${s.join('')}`]);
  const junk = fc.constantFrom('--', '-', '--=', '---', '-=', '--no-such-option', '-Q').map((t) => [t]);
  return fc.oneof({ weight: 8, arbitrary: one }, { weight: 2, arbitrary: cluster }, { weight: 1, arbitrary: junk });
}

const WORDS = ['true', 'sh', '-c', 'exit 3', 'ls', '-la', '--', '--uts', '-r', '1', 'a b', '', 'ü'];
const words = fc.array(fc.oneof(fc.constantFrom(...WORDS), text.map((v) => v.replace(/\0/g, ''))), { maxLength: 4 });

const runArgv = fc.tuple(fc.array(optionTokens('run', RUN_OPTS), { maxLength: 8 }), words)
  .map(([opts, rest]) => [...opts.flat(), ...rest]);
/**
 * enter: `-t PID-that-cannot-exist`, options, that pid again as an operand, then words.
 * The leading -t makes sure no word (say '1', after a value-less option took the
 * operand) is ever taken for a target; every other target value cannot exist either.
 */
const enterArgv = fc.tuple(fc.array(optionTokens('enter', ENTER_OPTS), { maxLength: 8 }), words)
  .map(([opts, rest]) => ['-t', NO_SUCH_PID, ...opts.flat(), NO_SUCH_PID, ...rest]);

// ---------------------------------------------------------------------------

/** This machine for makePlan (paths, signals), with the caller and its ids fixed. */
function context(privileged: boolean): PlanContext {
  return {
    ...systemContext({ SHELL: '/bin/sh', HOME: '/nonexistent-home' }),
    uid: privileged ? 0 : 1000,
    gid: privileged ? 0 : 1000,
    privileged,
    lookupUser: (n) => (n === 'root' ? 0 : n === 'nobody' ? 65534 : undefined),
    lookupGroup: (n) => (n === 'root' ? 0 : n === 'nogroup' ? 65534 : undefined),
    subordinateIds: () => [{ start: 100000, count: 65536 }],
    signalNumber,
    // Never this process's own fds: an empty program, which the plan refuses.
    readFd: () => new Uint8Array(0),
  };
}

function onlyTsnsErrors(fn: () => void): TsnsError | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof TsnsError) return e;
    throw e;
  }
}

describe('the option table read back from --help', () => {
  it('has the options the fuzzers need', () => {
    expect(RUN_OPTS.map((o) => o.long)).toEqual(expect.arrayContaining(['mount', 'map-users', 'mount-proc', 'kill-child', 'dry-run', 'json']));
    expect(ENTER_OPTS.map((o) => o.long)).toEqual(expect.arrayContaining(['target', 'net', 'root', 'wd', 'preserve-credentials']));
    expect(RUN_OPTS.find((o) => o.long === 'mount-proc')?.arg).toBe('optional');
    expect(RUN_OPTS.find((o) => o.long === 'hostname')?.arg).toBe('required');
  });
});

describe('parseRun and parseEnter, fuzzed', () => {
  it('parseRun, and the plan of what it parsed, throw only TsnsError (2000 runs)', () => {
    fc.assert(fc.property(runArgv, fc.boolean(), (argv, privileged) => {
      onlyTsnsErrors(() => {
        const cmd = parseRun(argv);
        expect(Array.isArray(cmd.command)).toBe(true);
        onlyTsnsErrors(() => {
          const plan = makePlan(cmd.command, cmd.options, context(privileged));
          describePlan(plan);
          JSON.stringify(planToJson(plan));
        });
      });
    }), { numRuns: 2000 });
  });

  it('parseEnter throws only TsnsError (2000 runs)', () => {
    fc.assert(fc.property(enterArgv, (argv) => {
      onlyTsnsErrors(() => parseEnter(argv));
    }), { numRuns: 2000 });
  });

  it('a target parseEnter accepts is a positive safe integer (the pid as typed)', () => {
    fc.assert(fc.property(enterArgv, (argv) => {
      onlyTsnsErrors(() => {
        const { target } = parseEnter(argv);
        expect(target === null || (Number.isSafeInteger(target) && target > 0), `target ${target}`).toBe(true);
      });
    }), { numRuns: 500, examples: [[['-t', '99999999999999999999', 'true']]] });
  });

  it('once -- ends the options, everything after it is the command, untouched', () => {
    fc.assert(fc.property(fc.array(optionTokens('run', RUN_OPTS), { maxLength: 6 }), words, (opts, rest) => {
      const head = opts.flat();
      let probe;
      try {
        // '-c' is an option: it comes back as the command only if this '--' ended the options.
        probe = parseRun([...head, '--', '-c']);
      } catch (e) {
        if (e instanceof TsnsError) return true;
        throw e;
      }
      fc.pre(probe.command.length === 1 && probe.command[0] === '-c');
      expect(parseRun([...head, '--', ...rest]).command).toEqual(rest);
      return true;
    }), { numRuns: 1000 });
  });

  it('a usage or plan error is one line, plus at most one hint line', () => {
    fc.assert(fc.property(runArgv, fc.boolean(), (argv, privileged) => {
      const err = onlyTsnsErrors(() => {
        const cmd = parseRun(argv);
        makePlan(cmd.command, cmd.options, context(privileged));
      });
      if (err) {
        const lines = formatError(err).split('\n').filter((l) => l !== '');
        expect(lines.length, formatError(err)).toBeLessThanOrEqual(err.hint ? 2 : 1);
      }
    }), { numRuns: 1000, examples: [[['--map-group', 'new\nline', 'true'], false]] });
  });
});

// ---------------------------------------------------------------------------
// The real CLI, as processes.

interface Outcome {
  argv: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  timedOut: boolean;
}

const cwd = mkdtempSync(join(tmpdir(), 'tsns-fuzz-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function cli(argv: string[]): Promise<Outcome> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [BIN, ...argv], { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stderr = '';
    let timedOut = false;
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, 10_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ argv, code, signal, stderr, timedOut });
    });
  });
}

function checkOutcome(o: Outcome): void {
  const where = JSON.stringify(o.argv);
  expect(o.timedOut, `hung: ${where}`).toBe(false);
  expect(o.signal, where).toBeNull();
  expect([0, 125], `${where}\n${o.stderr}`).toContain(o.code);
  expect(o.stderr, where).not.toMatch(/\n\s+at /);
  expect(o.stderr, where).not.toMatch(/internal error/);
  // --level-prefix puts bwrap's syslog level in front of each line.
  if (o.code === 125) expect(/^(<\d>)?tsns: /.test(o.stderr), `${where}\n${o.stderr}`).toBe(true);
}

const built = existsSync(join(ROOT, 'dist', 'cli.cjs'));

describe.runIf(built)('the CLI, fuzzed as processes', () => {
  // Four processes at a time: 25 x 4 = 100 of each.
  it('run --dry-run …: exits 0 or 125, no stack trace, no hang (100 runs)', async () => {
    await fc.assert(fc.asyncProperty(fc.array(runArgv, { minLength: 4, maxLength: 4 }), async (batch) => {
      const outcomes = await Promise.all(batch.map((argv) => cli(['run', '--dry-run', ...argv])));
      for (const o of outcomes) checkOutcome(o);
    }), { numRuns: 25, endOnFailure: true });
  }, 120_000);

  it('enter … PID-that-cannot-exist …: exits 125 (0 for --help), no stack trace, no hang (100 runs)', async () => {
    await fc.assert(fc.asyncProperty(fc.array(enterArgv, { minLength: 4, maxLength: 4 }), async (batch) => {
      const outcomes = await Promise.all(batch.map((argv) => cli(['enter', ...argv])));
      for (const o of outcomes) {
        checkOutcome(o);
        if (o.code === 0) expect(o.argv.some((a) => /^-h|^--h|^-[a-zA-Z]*h/.test(a)), JSON.stringify(o.argv)).toBe(true);
      }
    }), { numRuns: 25, endOnFailure: true });
  }, 120_000);
});
