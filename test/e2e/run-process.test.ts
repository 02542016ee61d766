/** tsns run beyond namespaces: time, id ranges, identity, persistence, supervision, signals, environment. */
import { execa, type Options } from 'execa';
import { chmodSync, existsSync, mkdirSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUBIDS } from './subids';
import { asUser, callerIds, IS_ROOT, MODES, mountinfo, requireCommands, requireFeature, ROOT, skipWithout, tsns, type Mode } from './helpers';

const run = (mode: Mode, args: readonly string[], opts: Options = {}) => tsns(mode, ['run', ...args], opts);
const lines = (s: string) => s.split('\n').map((l) => l.trim().split(/\s+/).join(' '));

// Root's run gives user 65534 a range for the whole run (test/e2e/subids.ts);
// anyone else tests with the range /etc/subuid gives them.
const SUB = IS_ROOT ? { start: SUBIDS.start, count: SUBIDS.count } : ownRange();

function ownRange(): { start: number; count: number } | null {
  const me = userInfo();
  for (const line of existsSync('/etc/subuid') ? readFileSync('/etc/subuid', 'utf8').split('\n') : []) {
    const [name, start, count] = line.split(':');
    if ((name === me.username || name === String(me.uid)) && start && count) return { start: Number(start), count: Number(count) };
  }
  return null;
}

/** The tests of ranges need one; root's run always has it. */
function subordinateRange(): { start: number; count: number } | null {
  return requireFeature(SUB !== null, 'a range for this user in /etc/subuid and /etc/subgid (usermod --add-subuids)') ? SUB : null;
}
let dir = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsns-proc-'));
  chmodSync(dir, 0o755);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.each(MODES)('as %s', (mode: Mode) => {
  const me = callerIds(mode);

  it('-T with --boottime and --monotonic shifts the clocks inside only', async () => {
    const host = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    const r = await run(mode, asUser(mode, ['--boottime=100000', '--monotonic=200000', 'sh', '-c', 'cat /proc/uptime /proc/self/timens_offsets']));
    expect(r.stderr).toBe('');
    const [uptime, ...offsets] = r.stdout.split('\n');
    expect(Number(uptime!.split(' ')[0]) - host).toBeGreaterThan(99000);
    expect(lines(offsets.join('\n'))).toEqual(['monotonic 200000 0', 'boottime 100000 0']);
    expect(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) - host).toBeLessThan(1000);
  });

  it('-T gives a new time namespace; with --pid the command is still PID 1', async () => {
    const r = await run(mode, asUser(mode, ['-T', '--pid', 'sh', '-c', 'echo $$; readlink /proc/self/ns/time']));
    const [pid, ns] = r.stdout.split('\n');
    expect(pid).toBe('1');
    expect(ns).toMatch(/^time:\[\d+\]$/);
    expect(ns).not.toBe(readlinkSync('/proc/self/ns/time'));
  });

  it('--map-users/--map-groups write ranges (unprivileged through newuidmap and /etc/subuid)', async (ctx) => {
    if (mode === 'user') skipWithout(ctx, 'newuidmap', 'newgidmap');
    const sub = mode === 'root' ? { start: 100000 } : subordinateRange();
    if (!sub) return;
    const outer = sub.start;
    const r = await run(mode, [`--map-users=0:${outer}:1000`, `--map-groups=${outer},0,1000`, 'sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id -u']);
    expect(r.stderr).toBe('');
    // tsns's own uid is not in these maps, so until -S the command is the overflow uid, as with unshare.
    expect(lines(r.stdout)).toEqual([`0 ${outer} 1000`, `0 ${outer} 1000`, '65534']);
  });

  it('--map-auto maps the first subordinate range from 0, or from 1 after -r', async () => {
    if (mode === 'root') return; // root has no /etc/subuid range here
    const sub = subordinateRange();
    if (!sub) return;
    const r = await run(mode, ['-r', '--map-auto', 'cat', '/proc/self/uid_map']);
    // As util-linux 2.39+: the range gives up the id -r took (one fewer), so `1 START COUNT-1`.
    expect(lines(r.stdout)).toEqual([`0 ${me.uid} 1`, `1 ${sub.start} ${sub.count - 1}`]);
    const alone = await run(mode, ['--map-auto', 'cat', '/proc/self/uid_map']);
    expect(lines(alone.stdout)).toEqual([`0 ${sub.start} ${sub.count}`]);
    const subids = await run(mode, ['--map-subids', 'cat', '/proc/self/uid_map']);
    expect(lines(subids.stdout)).toEqual([`${sub.start} ${sub.start} ${sub.count}`]);
  });

  it('-S/-G set the ids the command runs as', async () => {
    const sub = mode === 'root' ? { start: 100000 } : subordinateRange();
    if (!sub) return;
    const outer = sub.start;
    const r = await run(mode, [`--map-users=0:${outer}:2000`, `--map-groups=0:${outer}:2000`, '-S', '1000', '-G', '1001', 'sh', '-c', 'id -u; id -g; id -G']);
    expect(r.stdout.split('\n')).toEqual(['1000', '1001', '1001']);
  });

  it('--keep-caps keeps the namespace\'s capabilities for a non-root uid', async () => {
    const script = 'grep -E "^Cap(Eff|Amb)" /proc/self/status | cut -f2';
    const kept = await run(mode, ['--map-user=1000', '--keep-caps', 'sh', '-c', script]);
    const [eff, amb] = kept.stdout.split('\n');
    expect(eff).not.toMatch(/^0+$/);
    expect(amb).toBe(eff);
    const dropped = await run(mode, ['--map-user=1000', 'sh', '-c', script]);
    expect(dropped.stdout.split('\n')).toEqual(['0000000000000000', '0000000000000000']);
  });

  it('-R changes root and -w the working directory', async () => {
    const wd = await run(mode, asUser(mode, ['-R', '/', '-w', '/usr/share', 'pwd']));
    expect(wd.stdout).toBe('/usr/share');
    // An empty root has no shell in it: the command is looked up inside.
    const empty = await run(mode, asUser(mode, ['-R', dir, '/bin/sh', '-c', 'true']));
    expect(empty.exitCode).toBe(127);
    const missing = await run(mode, asUser(mode, ['-w', '/no/such/dir', 'true']));
    expect(missing.exitCode).toBe(125);
    expect(missing.stderr).toMatch(/^tsns: cannot change directory to \/no\/such\/dir: No such file or directory \(ENOENT\)$/m);
  });

  it('--clear-env and --env set exactly the command\'s environment; tsns adds nothing', async () => {
    const clear = await run(mode, asUser(mode, ['--clear-env', '--env=A=1', '--env=B=x=y', '/usr/bin/env']));
    expect(clear.stdout.split('\n').sort()).toEqual(['A=1', 'B=x=y', 'PWD=/']); // PWD as bwrap sets it
    const inherited = await run(mode, asUser(mode, ['--env=A=2', 'sh', '-c', 'echo "$A $KEEP ${NODE_UNIQUE_ID-unset} ${NODE_CHANNEL_FD-unset}"']), {
      env: { KEEP: 'kept', NODE_UNIQUE_ID: '7' },
    });
    expect(inherited.stdout).toBe('2 kept unset unset');
  });

  it('--init is PID 1: it reaps orphans and the command is PID 2', async () => {
    const script = 'echo $$; sh -c "sleep 0.1 & exit 0"; sleep 0.4; ps -e -o stat=,comm= | grep -c "^Z" || true; ps -p 1 -o comm=';
    const r = await run(mode, asUser(mode, ['--init', '--mount-proc', 'sh', '-c', script]));
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['2', '0', 'tsns-init']);
  });

  it('--forward-signals passes signals sent to tsns on to the command', async () => {
    const p = execa(process.execPath, [join(ROOT, 'bin', 'tsns.js'), 'run', '--forward-signals', '--uts', 'sh', '-c',
      'trap "echo got-usr1; exit 3" USR1; echo ready; while :; do sleep 0.05; done'], { reject: false, buffer: true, stdin: 'ignore' });
    if (mode === 'user') return void (p.kill('SIGKILL'), await p);
    await new Promise<void>((resolve) => p.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
    p.kill('SIGUSR1');
    const r = await p;
    expect(r.stdout).toBe('ready\ngot-usr1');
    expect(r.exitCode).toBe(3);
  });
});

describe('while the command runs', () => {
  it('the CLI has become the small native monitor, and still ends as the command does', async () => {
    const p = execa(process.execPath, [join(ROOT, 'bin', 'tsns.js'), 'run', ...asUser(MODES[0]!, ['--uts']), 'sh', '-c', 'echo up; read x; exit 6'],
      { reject: false, stdin: 'pipe' });
    await new Promise<void>((resolve) => p.stdout!.on('data', () => resolve()));
    // The command may print before tsns has finished handing over.
    let status = '';
    for (let i = 0; i < 100 && !/^Name:\ttsns-monitor$/m.test(status); i++) {
      await new Promise((r) => setTimeout(r, 20));
      status = readFileSync(`/proc/${p.pid}/status`, 'utf8');
    }
    expect(status).toMatch(/^Name:\ttsns-monitor$/m);
    // A megabyte or two, where a waiting Node process holds tens.
    expect(Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1])).toBeLessThan(4096);
    p.stdin!.end('\n');
    expect((await p).exitCode).toBe(6);
  });
});

describe.runIf(IS_ROOT)('persistent namespaces (--ns=FILE)', () => {
  requireCommands('nsenter');
  it('--uts=FILE keeps the namespace after the command ends; umount releases it', async () => {
    const file = join(dir, 'uts');
    const r = await run('root', [`--uts=${file}`, '--hostname=kept', 'true']);
    expect(r.exitCode).toBe(0);
    expect((await execa('nsenter', [`--uts=${file}`, 'hostname'])).stdout).toBe('kept');
    await execa('umount', [file]);
    expect(lstatSync(file).mode & 0o777).toBe(0o600);
    rmSync(file);
  });

  it('--pid=FILE and --time=FILE bind the namespaces the child unshared', async () => {
    const pid = join(dir, 'pid');
    const time = join(dir, 'time');
    const r = await run('root', [`--pid=${pid}`, `--time=${time}`, '--boottime=5000', 'true']);
    expect(r.stderr).toBe('');
    const entered = await execa('nsenter', [`--time=${time}`, 'cat', '/proc/uptime']);
    expect(Number(entered.stdout.split(' ')[0])).toBeGreaterThan(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) + 4000);
    expect(mountinfo().filter((l) => l.includes(pid) || l.includes(time))).toHaveLength(2);
    await execa('umount', [pid, time]);
    rmSync(pid);
    rmSync(time);
  });

  it('leaves nothing behind when the command cannot be executed', async () => {
    const file = join(dir, 'never');
    const r = await run('root', [`--uts=${file}`, 'no-such-command-tsns']);
    expect(r.exitCode).toBe(127);
    expect(existsSync(file)).toBe(false);
    expect(mountinfo().filter((l) => l.includes(file))).toEqual([]);
  });

  it('never follows a symlink, and names a missing directory', async () => {
    const link = join(dir, 'link');
    symlinkSync('/etc/passwd', link);
    const r = await run('root', [`--net=${link}`, 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^tsns: cannot bind the net namespace onto .*link: .*\(ELOOP|EINVAL\)/m);
    const missing = await run('root', ['--ipc=/no/such/dir/f', 'true']);
    expect(missing.stderr.split('\n')[0]).toBe('tsns: cannot bind the ipc namespace onto /no/such/dir/f: No such file or directory (ENOENT)');
  });

  it('unprivileged: says that binding needs root', async () => {
    if (!MODES.includes('user')) return;
    const open = join(dir, 'open');
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    const r = await run('user', ['-r', `--uts=${join(open, 'u')}`, 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^tsns: cannot bind the uts namespace .*\(EPERM\)\nhint: .*run as root/);
    expect(existsSync(join(open, 'u'))).toBe(false);
  });
});

describe('bad ranges are refused before anything is made', () => {
  it.each([
    [['--map-users=0:100000'], "tsns: invalid --map-users range '0:100000'"],
    [['--map-users=0:100000:0'], 'tsns: uid map range 0:100000:0 has a count of 0; it must be at least 1'],
    [['--map-users=0:100000:10', '--map-users=5:200000:10'], 'tsns: uid map ranges 0:100000:10 and 5:200000:10 overlap inside'],
    [Array.from({ length: 341 }, (_, i) => `--map-users=${i}:${100000 + i}:1`), 'tsns: uid map has 341 ranges; the kernel allows at most 340'],
    [['--kill-child=SIGNOPE'], "tsns: --kill-child: unknown signal 'SIGNOPE'"],
    [['--monotonic=1.5'], "tsns: --monotonic needs a whole number of seconds, not '1.5'"],
    [['--env=novalue'], "tsns: --env needs NAME=VALUE, not 'novalue'"],
  ])('%j', async (args, message) => {
    const r = await run(MODES[0]!, [...args, 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr.split('\n')[0]).toBe(message);
  });

  it('unprivileged: a range outside /etc/subuid', async () => {
    if (!MODES.includes('user')) return;
    const r = await run('user', ['--map-users=0:5000:10', 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^tsns: uid range 0:5000:10 is outside your \/etc\/subuid ranges\nhint: /);
    if (SUB) expect(r.stderr).toMatch(new RegExp(`yours: ${SUB.start}-${SUB.start + SUB.count - 1}$`));
  });
});

describe.runIf(IS_ROOT)('--kill-child', () => {
  // Inside a pid namespace whose init reaps, so that killed processes leave no zombies behind.
  // With `ready`, tsns is killed only once the command has a child of its own: a shell that
  // forks has set its traps, so the signal cannot arrive before the handler does.
  const scenario = (flag: string, cmd = 'sleep 1000', ready = false) => `
    node ${join(ROOT, 'bin', 'tsns.js')} run ${flag} ${cmd} & t=$!
    for i in $(seq 100); do c=$(echo $(cat /proc/$t/task/$t/children 2>/dev/null)); [ -n "$c" ] && break; sleep 0.05; done
    ${ready ? 'for i in $(seq 100); do [ -n "$(cat /proc/$c/task/$c/children 2>/dev/null)" ] && break; sleep 0.05; done' : ''}
    kill -KILL $t; sleep 0.3
    s=$(awk '{print $3}' /proc/$c/stat 2>/dev/null)
    if [ -z "$s" ] || [ "$s" = Z ]; then echo dead; else echo alive; kill -KILL $c; fi`;

  it('the command dies with tsns, even when tsns is SIGKILLed', async () => {
    const r = await run('root', ['--init', '--mount-proc', 'sh', '-c', scenario('--kill-child')]);
    expect(r.stdout).toBe('dead');
  });

  it('without it, the command keeps running, as with unshare', async () => {
    const r = await run('root', ['--init', '--mount-proc', 'sh', '-c', scenario('')]);
    expect(r.stdout).toBe('alive');
  });

  it('--kill-child=SIGTERM sends that signal', async () => {
    const r = await run('root', ['--init', '--mount-proc', 'sh', '-c', scenario('--kill-child=SIGTERM', "sh -c 'trap \"echo term; exit\" TERM; while :; do sleep 0.05; done'", true)]);
    expect(r.stdout.split('\n')).toContain('term');
  });
});

describe('exit status table', () => {
  const codes = [0, 1, 2, 125, 126, 127, 255];
  const signals = ['TERM', 'KILL', 'SEGV', 'INT'];
  const layouts: [string, string[]][] = [['plain', []], ['--pid', ['--pid']], ['--init', ['--init']]];

  it.each(layouts)('%s: exit codes pass through', async (_name, flags) => {
    const mode = MODES[0]!;
    for (const code of codes) {
      const r = await run(mode, asUser(mode, [...flags, 'sh', '-c', `exit ${code}`]));
      expect(r.exitCode, `exit ${code}`).toBe(code);
      expect(r.stderr).toBe('');
    }
  });

  it.each(layouts)('%s: a command killed by a signal kills tsns with it', async (name, flags) => {
    const mode = MODES[0]!;
    for (const sig of signals) {
      const r = await run(mode, asUser(mode, [...flags, 'sh', '-c', `kill -${sig} $$; exit 9`]));
      if (name === '--pid') {
        // PID 1 of a namespace ignores signals it has no handler for, even its own (and sh may handle
        // some itself): whatever the kernel and the shell make of it, unshare --pid --fork sees the same.
        const theirs = await execa('unshare', asUser(mode, ['--fork', '--pid', 'sh', '-c', `kill -${sig} $$; exit 9`]), {
          reject: false, stdin: 'ignore', cwd: '/',
          ...(mode === 'user' && IS_ROOT ? { uid: 65534, gid: 65534 } : {}),
        });
        expect([r.exitCode, r.signal], sig).toEqual([theirs.exitCode, theirs.signal]);
        expect(r.signal).toBeUndefined();
      } else {
        expect(r.signal, sig).toBe(`SIG${sig}`);
      }
      expect(r.stderr).toBe('');
    }
  });

  it.runIf(IS_ROOT)('matches unshare --fork where util-linux is right (not SIGKILL, which 2.38 reports as exit 1)', async () => {
    for (const flags of [[], ['--pid']]) {
      for (const cmd of ['exit 0', 'exit 42', 'kill -TERM $$; exit 9', 'kill -INT $$; exit 9', 'kill -SEGV $$; exit 9']) {
        const ours = await run('root', [...flags, 'sh', '-c', cmd]);
        const theirs = await execa('unshare', ['--fork', ...flags, 'sh', '-c', cmd], { reject: false, stdin: 'ignore' });
        expect([ours.exitCode, ours.signal], `${flags} ${cmd}`).toEqual([theirs.exitCode, theirs.signal]);
      }
    }
  });
});

describe.runIf(IS_ROOT)('interactive use in a terminal', () => {
  requireCommands('tmux');
  it('tsns run --pid --fork bash: job control, ^C reaches the foreground job, the terminal comes back sane', async () => {
    const session = `tsns-${process.pid}`;
    const tmux = (...a: string[]) => execa('tmux', ['-L', session, ...a], { reject: false });
    const screen = async () => (await tmux('capture-pane', '-p', '-t', session)).stdout;
    const until = async (re: RegExp) => {
      for (let i = 0; i < 100; i++) {
        if (re.test(await screen())) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`never saw ${re} on:\n${await screen()}`);
    };
    try {
      await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '30', 'env PS1="outer$ " sh');
      await until(/outer\$/);
      await tmux('send-keys', '-t', session, `PS1='inner# ' node ${join(ROOT, 'bin', 'tsns.js')} run --pid --fork --mount-proc bash --norc -i`, 'Enter');
      await until(/inner#\s*$/m);
      await tmux('send-keys', '-t', session, 'sleep 100', 'Enter');
      await new Promise((r) => setTimeout(r, 300));
      await tmux('send-keys', '-t', session, 'C-c');
      await tmux('send-keys', '-t', session, 'echo "status=$? pid=$$"', 'Enter');
      await until(/status=130 pid=1/);
      await tmux('send-keys', '-t', session, 'sleep 100 &', 'Enter');
      await tmux('send-keys', '-t', session, 'jobs', 'Enter');
      await until(/\[1\]\+\s+Running\s+sleep 100 &/);
      await tmux('send-keys', '-t', session, 'exit', 'Enter');
      await until(/outer\$\s*$/m);
      // The outer shell owns the terminal again and it still echoes and reads lines.
      await tmux('send-keys', '-t', session, 'echo back-$((40+2))', 'Enter');
      await until(/^back-42$/m);
      await tmux('send-keys', '-t', session, 'stty -a | grep -o "icanon\\|-icanon" | head -1', 'Enter');
      await until(/^icanon$/m);
    } finally {
      await tmux('kill-server');
    }
  });
});
