/**
 * Issue 8, part 1: bad input. Every refusal is one `tsns: …` line (and at most
 * one `hint: …` line) with exit 125 — 126/127 for a command that cannot be
 * executed or found — no stack trace, and nothing left behind: no file, no
 * mount, no process. And good input passes through untouched, byte for byte.
 */
import { execa } from 'execa';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, callerIds, IS_ROOT, MODES, requireCommands, ROOT, type Mode } from './helpers';
import {
  listTree, mounts, mountsDiff, reaped, reaper, removeReaper, scratchDir, STACK_TRACE, tsnsBin, tsnsReaped, asMode,
} from './reliability-lib';

const tsns = createRequire(import.meta.url)(join(ROOT, 'dist', 'index.cjs')) as typeof import('../../src/index');

/** Larger than any pid_max (PID_MAX_LIMIT is 2^22): never a live process. */
const NO_SUCH_PID = String(4194305);

let dir = '';
let fifoDir = '';
/** A root process the test user may not trace. */
let rootTarget: ReturnType<typeof execa> | null = null;

const TOOLS = requireCommands('setpriv', 'cc');

beforeAll(() => {
  if (!TOOLS) return;
  reaper();
  dir = scratchDir('tsns-bad-');
  fifoDir = scratchDir('tsns-fifo-');
  writeFileSync(join(dir, 'data'), 'not a program\n', { mode: 0o644 });
  chmodSync(join(dir, 'data'), 0o644);
  mkdirSync(join(dir, 'subdir'));
  chmodSync(join(dir, 'subdir'), 0o777);
  if (IS_ROOT) rootTarget = execa('sleep', ['300'], { reject: false, stdin: 'ignore' });
});

afterAll(async () => {
  if (rootTarget) {
    rootTarget.kill('SIGKILL');
    await rootTarget;
  }
  rmSync(dir, { recursive: true, force: true });
  rmSync(fifoDir, { recursive: true, force: true });
  removeReaper();
});

interface BadCase {
  name: string;
  /** argv after bin/tsns.js; `mode` picks the unprivileged form where it differs */
  args(mode: Mode): string[];
  modes?: Mode[];
  /** refused while parsing argv, whoever runs it: tried in one mode only */
  parseOnly?: boolean;
  /** the exit status; 125 unless said */
  exit?: number;
  /** the `tsns:` line must match */
  message: RegExp;
  /** paths (relative to the scratch dir) that must not exist afterwards */
  absent?: string[];
}

const ranges = (n: number) => Array.from({ length: n }, (_, i) => `--map-users=${i}:${100000 + i}:1`);

const CASES: BadCase[] = [
  { name: 'unknown long option', parseOnly: true, args: () => ['run', '--bogus', 'true'], message: /unrecognized option '--bogus'/ },
  { name: 'unknown short option', parseOnly: true, args: () => ['run', '-Z', 'true'], message: /invalid option -- 'Z'/ },
  { name: 'unknown option of enter', parseOnly: true, args: () => ['enter', '--bogus', '1', 'true'], message: /unrecognized option '--bogus'/ },
  { name: 'unknown option of ls', parseOnly: true, args: () => ['ls', '--bogus'], message: /unrecognized option '--bogus'/ },
  { name: 'unknown command', parseOnly: true, args: () => ['frobnicate'], message: /unknown command 'frobnicate'/ },
  { name: 'ambiguous abbreviation', parseOnly: true, args: () => ['run', '--map', 'true'], message: /ambiguous/ },
  { name: 'long option missing its value', parseOnly: true, args: () => ['run', '--hostname'], message: /'--hostname' requires an argument/ },
  { name: 'short option missing its value', parseOnly: true, args: () => ['run', '-S'], message: /requires an argument -- 'S'/ },
  { name: 'enter -t missing its value', parseOnly: true, args: () => ['enter', '-t'], message: /requires an argument -- 't'/ },
  { name: 'a flag given a value', parseOnly: true, args: () => ['run', '--fork=yes', 'true'], message: /doesn't allow an argument/ },
  { name: '--map-users with two fields', args: () => ['run', '--map-users=1:2', 'true'], message: /invalid --map-users range '1:2'/ },
  { name: '--map-users not numbers', args: () => ['run', '--map-users=a:b:c', 'true'], message: /invalid --map-users range/ },
  {
    name: '--map-users with count 0',
    args: (mode) => ['run', `--map-users=0:${callerIds(mode).uid}:0`, 'true'],
    message: /count of 0/,
  },
  {
    name: '--map-users overlapping inside',
    args: () => ['run', '--map-users=0:100000:10', '--map-users=5:200000:10', 'true'],
    message: /overlap inside/,
  },
  {
    name: '--map-users overlapping outside',
    args: () => ['run', '--map-users=0:100000:10', '--map-users=100:100005:10', 'true'],
    message: /overlap outside/,
  },
  { name: '--map-users with 341 ranges', args: () => ['run', ...ranges(341), 'true'], message: /341 ranges.*at most 340/ },
  { name: '--map-users beyond the largest id', args: () => ['run', '--map-users=0:4294967295:1', 'true'], message: /beyond the largest id/ },
  { name: '--map-user naming no user', args: () => ['run', '--map-user=no-such-user-tsns', 'true'], message: /no such user: 'no-such-user-tsns'/ },
  { name: '--map-group naming no group', args: () => ['run', '--map-group=no-such-group-tsns', 'true'], message: /no such group/ },
  { name: '--hostname of 65 bytes', args: () => ['run', `--hostname=${'h'.repeat(65)}`, 'true'], message: /longer than 64 bytes/ },
  { name: '--hostname of 22 characters but 66 bytes', args: () => ['run', `--hostname=${'€'.repeat(22)}`, 'true'], message: /longer than 64 bytes/ },
  { name: '--domainname of 65 bytes', args: () => ['run', `--domainname=${'d'.repeat(65)}`, 'true'], message: /longer than 64 bytes/ },
  {
    name: '--setgroups=allow with an unprivileged -r',
    modes: ['user'],
    args: () => ['run', '--setgroups=allow', '-r', 'true'],
    message: /--setgroups=allow cannot be used/,
  },
  { name: '--setgroups with a bad value', parseOnly: true, args: () => ['run', '-U', '--setgroups=maybe', 'true'], message: /unsupported --setgroups argument/ },
  { name: '--setgroups without a user namespace', args: () => ['run', '--setgroups=deny', 'true'], message: /--setgroups needs a new user namespace/ },
  { name: '--json without --dry-run', parseOnly: true, args: () => ['run', '--json', 'true'], message: /--json goes with --dry-run/ },
  { name: '--monotonic not a number', parseOnly: true, args: () => ['run', '--monotonic=soon', 'true'], message: /whole number of seconds/ },
  { name: '--kill-child with an unknown signal', args: () => ['run', '--kill-child=SIGNOPE', 'true'], message: /unknown signal/ },
  { name: '--env without =', parseOnly: true, args: () => ['run', '--env=NOEQUALS', 'true'], message: /--env needs NAME=VALUE/ },
  { name: '--propagation without a mount namespace', args: () => ['run', '--propagation=shared', 'true'], message: /needs a new mount namespace/ },
  {
    name: '--mount-proc=DIR that does not exist',
    args: (mode) => ['run', ...asUser(mode, ['--pid', `--mount-proc=${dir}/no-such-dir`, 'true'])],
    message: /cannot mount proc on .*no-such-dir: .*\(ENOENT\)/,
    absent: ['no-such-dir'],
  },
  {
    name: '--wd that does not exist',
    args: (mode) => ['run', ...asUser(mode, ['--uts', `--wd=${dir}/no-such-dir`, 'true'])],
    message: /cannot change directory to .*\(ENOENT\)/,
  },
  {
    name: '--root that does not exist',
    args: (mode) => ['run', ...asUser(mode, ['--uts', `--root=${dir}/no-such-dir`, 'true'])],
    message: /cannot change root to .*\(ENOENT\)/,
  },
  {
    name: '--uts=FILE in a directory that does not exist',
    args: (mode) => ['run', ...asUser(mode, [`--uts=${dir}/no-such-dir/ns`, 'true'])],
    message: /cannot bind the uts namespace onto .*\(ENOENT\)/,
    absent: ['no-such-dir'],
  },
  { name: 'enter a pid that does not exist', args: () => ['enter', NO_SUCH_PID, 'true'], message: /cannot enter pid 4194305: .*\(ESRCH\)/ },
  { name: 'enter -t with a pid that does not exist', args: () => ['enter', '-t', NO_SUCH_PID, 'true'], message: /\(ESRCH\)/ },
  { name: 'enter pid 0', parseOnly: true, args: () => ['enter', '-t', '0', 'true'], message: /invalid pid '0'/ },
  { name: 'enter without a target', parseOnly: true, args: () => ['enter', 'true'], message: /no target/ },
  {
    name: 'enter a process we may not trace',
    modes: ['user'],
    args: () => ['enter', String(rootTarget?.pid ?? 1), 'true'],
    message: /cannot enter pid \d+: .*\((EACCES|EPERM)\)/,
  },
  { name: 'enter a FILE that is not a namespace', args: () => ['enter', '--net=/etc/passwd', 'true'], message: /is not a namespace file/ },
  { name: 'enter a directory as namespace FILE', args: () => ['enter', `--net=${dir}`, 'true'], message: /is not a namespace file/ },
  { name: 'enter a FILE that does not exist', args: () => ['enter', `--net=${dir}/nope`, 'true'], message: /cannot open the net namespace .*\(ENOENT\)/ },
  { name: 'enter a namespace FILE of another type', args: () => ['enter', '--net=/proc/self/ns/uts', 'true'], message: /is a uts namespace, not net/ },
  {
    name: 'a command that is a directory',
    args: (mode) => ['run', ...asUser(mode, ['--uts', `${dir}/subdir`])],
    exit: 126,
    message: /failed to execute .*subdir: .*\(EACCES\)/,
  },
  {
    name: 'a command that is not executable',
    args: (mode) => ['run', ...asUser(mode, ['--uts', `${dir}/data`])],
    exit: 126,
    message: /failed to execute .*data: .*\(EACCES\)/,
  },
  {
    name: 'a command that is not found',
    args: (mode) => ['run', ...asUser(mode, ['--uts', 'no-such-command-tsns'])],
    exit: 127,
    message: /failed to execute no-such-command-tsns: .*\(ENOENT\)/,
  },
  {
    name: 'a command path that does not exist',
    args: (mode) => ['run', ...asUser(mode, ['--uts', `${dir}/nope/cmd`])],
    exit: 127,
    message: /\(ENOENT\)/,
  },
];


describe.each(MODES)('bad input as %s', (mode: Mode) => {
  const cases = CASES.filter((c) => (!c.modes || c.modes.includes(mode)) && (!c.parseOnly || mode === MODES[0]));

  // Concurrent: each case is mostly Node starting up. None of them may create anything, so the
  // scratch directory and the mount table must look the same before and after each.
  it.concurrent.for(cases.map((c) => [c.name, c] as const))('%s', async ([, c], { expect }) => {
    const before = { mounts: mounts(), tree: listTree(dir) };
    // A PATH the test user can search: an unsearchable entry (root's ~/bin) turns "not found" into EACCES, as execvp(3) has it.
    const r = await tsnsReaped(mode, c.args(mode), { cwd: dir, env: { TMPDIR: dir, PATH: '/usr/local/bin:/usr/bin:/bin' } });
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect(r.exitCode, r.stderr).toBe(c.exit ?? 125);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(lines.length, r.stderr).toBeGreaterThanOrEqual(1);
    expect(lines.length, r.stderr).toBeLessThanOrEqual(2);
    expect(lines[0]).toMatch(/^tsns: /);
    expect(lines[0]).toMatch(c.message);
    if (lines[1] !== undefined) expect(lines[1]).toMatch(/^hint: /);
    // Nothing created: no process, no file, no mount.
    expect(r.leftovers).toEqual([]);
    expect(listTree(dir)).toEqual(before.tree);
    for (const p of c.absent ?? []) expect(existsSync(join(dir, p)), p).toBe(false);
    expect(mountsDiff(before.mounts, mounts(), dir)).toEqual([]);
  });

  it('enter --net=FIFO fails instead of hanging (open blocks on a FIFO without a writer)', async () => {
    const fifo = join(fifoDir, `fifo-${mode}`);
    await execa('mkfifo', ['-m', '0666', fifo]);
    try {
      const r = await tsnsReaped(mode, ['enter', `--net=${fifo}`, 'true'], { cwd: fifoDir, timeout: 3000 });
      expect(r.timedOut, 'tsns enter hung opening the FIFO').toBe(false);
      expect(r.exitCode).toBe(125);
      expect(r.stderr).toMatch(/^tsns: .*not a namespace/);
      expect(r.leftovers).toEqual([]);
    } finally {
      rmSync(fifo, { force: true });
    }
  });
});

describe.runIf(IS_ROOT)('bad input through the API', () => {
  it.each([
    ['hostname with a NUL', ['true'], { hostname: 'a\0b' }],
    ['domainname with a NUL', ['true'], { domainname: 'a\0b' }],
    ['an argument with a NUL', ['echo', 'a\0b'], { uts: true }],
    ['a command name with a NUL', ['tr\0ue'], { uts: true }],
    ['an environment value with a NUL', ['true'], { uts: true, env: { X: 'a\0b' } }],
    ['a namespace FILE with a NUL', ['true'], { uts: `/tmp/a\0b` }],
    ['--mount-proc with a NUL', ['true'], { mountProc: '/pr\0c' }],
    ['a hostname of 65 bytes', ['true'], { hostname: 'x'.repeat(65) }],
    ['a count of 0', ['true'], { mapUsers: [{ inner: 0, outer: 0, count: 0 }] }],
    ['a negative setuid', ['true'], { user: true, setuid: -1 }],
    ['a fractional offset', ['true'], { monotonic: 1.5 }],
    ['an unknown kill signal', ['true'], { uts: true, killSignal: 'SIGNOPE' }],
  ] as [string, string[], Parameters<typeof tsns.run>[1]][])('%s rejects with TsnsError', async (_name, cmd, options) => {
    const before = mounts();
    const err = await tsns.run(cmd, options).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(tsns.TsnsError);
    expect((err as Error).message).not.toMatch(/\0/);
    expect(mountsDiff(before, mounts(), '/tmp/a')).toEqual([]);
  });
});

describe.each(MODES)('arguments pass through as %s', (mode: Mode) => {
  const ARGS = ['', ' ', 'a b', '"double"', "'single'", 'tab\there', 'new\nline', '--', '-x', '--uts', '$HOME', '*', '\\',
    'üñí €😀', '=', 'a=b', '  lead', 'trail  ', ';|&', '$(id)', '`id`'];

  it('spaces, quotes, empty strings, options after the command: byte for byte', async () => {
    const r = await tsnsReaped(mode, ['run', ...asUser(mode, ['--uts', '--', 'sh', '-c', 'printf "%s\\0" "$@" | base64 -w0', 'sh', ...ARGS])]);
    expect(r.exitCode).toBe(0);
    expect(Buffer.from(r.stdout, 'base64').toString('utf8').split('\0').slice(0, -1)).toEqual(ARGS);
    expect(r.leftovers).toEqual([]);
  });

  it('non-UTF-8 bytes in argv reach the command unchanged', async () => {
    // Node cannot pass such bytes as a string: the shell makes them (0xff 0xfe).
    const script = 'exec "$0" "$1" run $2 -- sh -c \'printf %s "$1" | od -An -tx1\' sh "$(printf \'a\\377\\376b\')"';
    const extra = mode === 'user' ? '-r --uts' : '--uts';
    const r = await reaped(asMode(mode, ['sh', '-c', script, process.execPath, tsnsBin(mode), extra]));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split(/\s+/)).toEqual(['61', 'ff', 'fe', '62']);
  });

  it('non-UTF-8 bytes in the environment reach the command unchanged', async () => {
    const script = 'X="$(printf \'a\\377b\')"; export X; exec "$0" "$1" run $2 -- sh -c \'printf %s "$X" | od -An -tx1\'';
    const extra = mode === 'user' ? '-r --uts' : '--uts';
    const r = await reaped(asMode(mode, ['sh', '-c', script, process.execPath, tsnsBin(mode), extra]));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split(/\s+/)).toEqual(['61', 'ff', '62']);
  });
});

describe.runIf(IS_ROOT)('very long argument lists', () => {
  it('100 000 arguments reach the command', async () => {
    const args = Array.from({ length: 100_000 }, (_, i) => `a${i}`);
    const r = await tsnsReaped('root', ['run', '--uts', '--', 'sh', '-c', 'echo $# "$1" "${100000}"', 'sh', ...args], { timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('100000 a0 a99999');
    expect(r.exitCode).toBe(0);
  });

  it('about 1.5 MB of arguments reach the command', async () => {
    const args = Array.from({ length: 15 }, (_, i) => String.fromCharCode(97 + i).repeat(100_000));
    const r = await tsnsReaped('root', ['run', '--uts', '--', 'sh', '-c', 'n=0; for a; do n=$((n + ${#a})); done; echo $# $n', 'sh', ...args], {
      timeout: 30_000,
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('15 1500000');
  });
});
