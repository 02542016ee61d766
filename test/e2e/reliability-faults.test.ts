/**
 * Issue 8, part 5: faults. tsns killed while the command runs; commands that
 * fork and leave; failures after the namespaces exist; a namespace limit; a
 * /proc that hides processes or is not there.
 *
 * Scenarios that orphan processes run inside an outer `tsns run --init
 * --mount-proc`, whose init reaps them (PID 1 of this machine does not), and
 * whose private /proc lets the script see exactly its own processes.
 */
import { existsSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, IS_ROOT, MODES, requireCommands, ROOT, type Mode } from './helpers';
import {
  asMode, listTree, mounts, mountsDiff, reaper, removeReaper, scratchDir, STACK_TRACE, tsnsBin, tsnsReaped,
} from './reliability-lib';

const tsns = createRequire(import.meta.url)(join(ROOT, 'dist', 'index.cjs')) as typeof import('../../src/index');

let dir = '';

const TOOLS = requireCommands('setpriv', 'pgrep', 'ps', 'cc');

beforeAll(() => {
  if (!TOOLS) return;
  reaper();
  dir = scratchDir('tsns-faults-');
  writeFileSync(join(dir, 'data'), 'not a program\n');
  chmodSync(join(dir, 'data'), 0o644);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  removeReaper();
});

/** Run `script` (sh, with the inner tsns command as "$@") inside an outer tsns init with its own /proc. */
function underInit(script: string, inner: readonly string[]) {
  const outer = IS_ROOT ? ['run', '--init', '--mount-proc'] : ['run', '-r', '--init', '--mount-proc'];
  return tsnsReaped('root', [...outer, '--', 'sh', '-c', script, 'sh', ...inner], { timeout: 30_000 });
}

/** The inner `tsns run` as `mode`, with the unprivileged form of `opts`. */
function innerRun(mode: Mode, opts: readonly string[]): string[] {
  return asMode(mode, [process.execPath, tsnsBin(mode), 'run', ...asUser(mode, opts)]);
}

const KILL_SCRIPT = String.raw`
"$@" -- sleep 1000 &
t=$!
i=0
while ! c=$(pgrep -x -f 'sleep 1000'); do
  i=$((i + 1)); [ $i -gt 300 ] && { echo "no command"; exit 90; }
  sleep 0.05
done
kill -KILL $t; wait $t 2>/dev/null; echo "tsns $?"
i=0
while pgrep -x -f 'sleep 1000' >/dev/null && [ $i -lt 20 ]; do i=$((i + 1)); sleep 0.05; done
if c=$(pgrep -x -f 'sleep 1000'); then echo "command alive"; kill -KILL $c; else echo "command gone"; fi
sleep 0.2
echo "zombies $(ps -eo stat= | grep -c '^Z')"
echo "others $(ps -eo comm= | grep -vx -e sh -e ps -e grep -e tr -e tsns-init | tr '\n' ' ')"
`;

const FORK_SCRIPT = String.raw`
start=$(date +%s%N)
"$@" sh -c 'sleep 1000 & sleep 1000 & (sleep 1000 &); exit 3'
echo "tsns $?"
echo "ms $(( ($(date +%s%N) - start) / 1000000 ))"
sleep 0.2
echo "sleepers $(pgrep -x -f 'sleep 1000' | wc -l)"
echo "zombies $(ps -eo stat= | grep -c '^Z')"
`;

const SHAPES: [string, string[]][] = [
  ['a new UTS namespace', ['--uts']],
  ['the command as PID 1', ['--pid']],
  ['an init', ['--init']],
  ['a time namespace (a middle process)', ['--monotonic=5']],
];

describe.concurrent.each(MODES)('tsns killed with SIGKILL as %s', (mode: Mode) => {
  it.each(SHAPES)('--kill-child: nothing survives (%s)', async (_name, opts) => {
    const r = await underInit(KILL_SCRIPT, innerRun(mode, [...opts, '--kill-child']));
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stdout.split('\n')).toEqual(['tsns 137', 'command gone', 'zombies 0', 'others ']);
    expect(r.leftovers).toEqual([]);
  });

  it.each(SHAPES)('without --kill-child the command keeps running (%s)', async (_name, opts) => {
    const r = await underInit(KILL_SCRIPT, innerRun(mode, opts));
    expect(r.stdout.split('\n')).toEqual(['tsns 137', 'command alive', 'zombies 0', 'others ']);
    expect(r.leftovers).toEqual([]);
  });

  it('--kill-child=SIGTERM: the command gets SIGTERM', async () => {
    // The command says when its trap is set (a marker file), so the signal cannot come first;
    // what its trap saw goes to a file, printed in order once it is gone.
    const script = String.raw`
mark=$(mktemp -u /tmp/tsns-term-XXXXXX)
"$@" -- sh -c 'trap "echo got TERM > $0.got; rm -f $0; exit 0" TERM; : > $0; while :; do sleep 0.05; done' "$mark" 2>&1 &
t=$!
i=0
while [ ! -e "$mark" ]; do i=$((i + 1)); [ $i -gt 300 ] && { echo "no command"; exit 90; }; sleep 0.05; done
kill -KILL $t; wait $t 2>/dev/null; echo "tsns $?"
i=0
while [ -e "$mark" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.05; done
sleep 0.1
cat "$mark.got" 2>/dev/null || echo "no TERM"; rm -f "$mark.got"
echo "zombies $(ps -eo stat= | grep -c '^Z')"
`;
    const r = await underInit(script, innerRun(mode, ['--uts', '--kill-child=SIGTERM']));
    expect(r.stdout.split('\n')).toEqual(['tsns 137', 'got TERM', 'zombies 0']);
  });
});

describe.concurrent.each(MODES)('the command forks children and exits, as %s', (mode: Mode) => {
  it.each([
    ['--pid: they die with the namespace', ['--pid']],
    ['--init: they die with the namespace', ['--init']],
    ['--pid and a time namespace', ['--pid', '--monotonic=5']],
  ])('%s, and tsns does not wait for them', async (_name, opts) => {
    const r = await underInit(FORK_SCRIPT, innerRun(mode, opts));
    const out = Object.fromEntries(r.stdout.split('\n').map((l) => l.split(' ') as [string, string]));
    expect(out.tsns).toBe('3');
    expect(Number(out.ms)).toBeLessThan(5000);
    expect(out.sleepers).toBe('0');
    expect(out.zombies).toBe('0');
    expect(r.leftovers).toEqual([]);
  });

  it('--init reaps orphans while the command runs', async () => {
    const r = await tsnsReaped(mode, ['run', ...asUser(mode, ['--init', '--mount-proc', '--', 'sh', '-c',
      '(sleep 0.1 &); (sleep 0.1 &); (sleep 0.1 &); sleep 0.8; ps -eo stat=,comm= | grep "^Z"; echo "pid1 $(cat /proc/1/comm)"'])]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('pid1 tsns-init');
    expect(r.leftovers).toEqual([]);
  });
});

describe.each(MODES)('a failure after the namespaces exist, as %s', (mode: Mode) => {
  const persist = (name: string) => (mode === 'root' ? [`--uts=${join(dir, name)}`, `--ipc=${join(dir, `${name}-ipc`)}`] : []);

  it.each([
    ['a command not found', 'no-such-command-tsns', 127, /failed to execute no-such-command-tsns: No such file or directory \(ENOENT\)/],
    ['a command not executable', '@data', 126, /failed to execute .*data: Permission denied \(EACCES\)/],
  ] as const)('%s: the error names the stage and errno; nothing persists', async (_name, cmd, exit, message) => {
    const before = { mounts: mounts(), tree: listTree(dir) };
    const command = cmd.startsWith('@') ? join(dir, cmd.slice(1)) : cmd;
    const r = await tsnsReaped(mode, ['run', ...asUser(mode, [...persist(`exec-${exit}`), '--mount', '--pid', '--mount-proc', '--net', command])], {
      env: { PATH: '/usr/bin:/bin' },
    });
    expect(r.exitCode).toBe(exit);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(message);
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.leftovers).toEqual([]);
    expect(listTree(dir)).toEqual(before.tree);
    expect(mountsDiff(before.mounts, mounts(), dir)).toEqual([]);
  });

  it('a --wd that does not exist: stage wd, and nothing persists', async () => {
    const before = { mounts: mounts(), tree: listTree(dir) };
    const r = await tsnsReaped(mode, ['run', ...asUser(mode, [...persist('wd'), '--mount', `--wd=${dir}/nowhere`, 'true'])]);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^tsns: cannot change directory to (\S*)nowhere: No such file or directory \(ENOENT\)\nhint: \1nowhere does not exist: choose another$/);
    expect(r.leftovers).toEqual([]);
    expect(listTree(dir)).toEqual(before.tree);
    expect(mountsDiff(before.mounts, mounts(), dir)).toEqual([]);
  });
});

describe.runIf(IS_ROOT)('a failure after the namespaces exist, through run()', () => {
  it('rejects with stage exec and errno ENOENT; the namespace file is gone', async () => {
    const file = join(dir, 'api-exec');
    const before = mounts();
    const err = await tsns.run(['no-such-command-tsns'], { uts: file, mount: true, pid: true, mountProc: true })
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(tsns.TsnsError);
    expect(err).toMatchObject({ stage: 'exec', errno: 'ENOENT', code: 2 });
    expect(existsSync(file)).toBe(false);
    expect(mountsDiff(before, mounts(), dir)).toEqual([]);
  });
});

describe.each(MODES)('a namespace limit, as %s', (mode: Mode) => {
  // The limit is set in a user namespace of its own: the host's sysctl is never touched.
  const limited = (sysctl: string, inner: string[]) => tsnsReaped(mode, ['run', '-r', '--', 'sh', '-c',
    `echo 0 > /proc/sys/user/${sysctl} && exec "$@"`, 'sh', process.execPath, tsnsBin(mode), 'run', ...inner]);

  it('max_user_namespaces = 0: the error says ENOSPC and names the sysctl', async () => {
    const r = await limited('max_user_namespaces', ['-r', 'true']);
    expect(r.exitCode).toBe(125);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^tsns: cannot create namespaces .*\(ENOSPC\)$/);
    expect(lines[1]).toMatch(/^hint: .*user\.max_user_namespaces/);
  });

  it('max_uts_namespaces = 0: the error says ENOSPC and points at the limits', async () => {
    const r = await limited('max_uts_namespaces', ['--uts', 'true']);
    expect(r.exitCode).toBe(125);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/\(ENOSPC\)$/);
    expect(lines[1]).toMatch(/^hint: .*max_(uts|\*)_namespaces/);
  });
});

describe.runIf(IS_ROOT && MODES.includes('user'))('an unprivileged user and a /proc that hides or lacks processes', () => {
  /** Each command as the test user inside a new mount namespace whose /proc is set up by `setup`. */
  async function withProc(setup: string, commands: string[][]): Promise<{ code: number; out: string }[]> {
    const bin = tsnsBin('user');
    const user = asMode('user', [process.execPath, bin]).map((a) => `'${a}'`).join(' ');
    const script = [setup, ...commands.map((c) => `${user} ${c.map((a) => `'${a}'`).join(' ')} 2>&1; echo "@@rc $?"`)].join('\n');
    const r = await tsnsReaped('root', ['run', '--mount', '--', 'sh', '-c', script]);
    expect(r.leftovers).toEqual([]);
    const parts = r.stdout.split(/@@rc (\d+)\n?/);
    const results: { code: number; out: string }[] = [];
    for (let i = 0; i + 1 < parts.length; i += 2) results.push({ out: parts[i]!, code: Number(parts[i + 1]) });
    expect(results, r.stdout + r.stderr).toHaveLength(commands.length);
    return results;
  }

  function clearError(res: { code: number; out: string }) {
    expect(res.out).not.toMatch(STACK_TRACE);
    expect(res.out).not.toMatch(/internal error/);
    expect([0, 125]).toContain(res.code);
    if (res.code === 125) {
      const lines = res.out.split('\n').filter(Boolean);
      expect(lines[0]).toMatch(/^tsns: /);
      expect(lines.length).toBeLessThanOrEqual(2);
    }
  }

  it('hidepid=2: enter and ls give a clear answer, not a crash', async () => {
    const res = await withProc('mount -t proc -o hidepid=2 proc /proc || exit 99', [
      ['enter', '1', 'true'], ['enter', '--net=/proc/1/ns/net', 'true'], ['ls'], ['ls', '-p', '1'], ['ls', '--json'],
    ]);
    for (const r of res) clearError(r);
    expect(res[0]!.code).toBe(125);
    expect(res[1]!.code).toBe(125);
    expect(res[2]!.code).toBe(0);
  });

  it('hidepid=2: enter of a hidden process does not claim it is not running', async () => {
    const [r] = await withProc('mount -t proc -o hidepid=2 proc /proc || exit 99', [['enter', '1', 'true']]);
    expect(r!.code).toBe(125);
    expect(r!.out).not.toMatch(/not running/);
  });

  it('/proc not mounted: enter and ls give a clear error that names /proc', async () => {
    const res = await withProc('umount -l /proc || exit 99', [['enter', '1', 'true'], ['ls']]);
    for (const r of res) clearError(r);
    for (const r of res) {
      expect(r.code, r.out).toBe(125);
      expect(r.out).toMatch(/^tsns: .*\/proc/);
    }
  });

  it('/proc not mounted: run -r fails clearly', async () => {
    const [r] = await withProc('umount -l /proc || exit 99', [['run', '-r', 'true']]);
    clearError(r!);
    expect(r!.code).toBe(125);
  });
});

// A sanity check that the scratch directory did not collect anything from the runs above.
describe('the scratch directory', () => {
  it('holds only what the tests put there', () => {
    expect(listTree(dir)).toEqual(['data']);
    expect(readFileSync(join(dir, 'data'), 'utf8')).toBe('not a program\n');
  });
});
