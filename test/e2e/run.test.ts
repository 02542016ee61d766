import type { Options } from 'execa';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  asUser, callerIds, hostNamespaces, mountinfo, MODES, NS_FILES, NS_SCRIPT, parseNamespaces, requireCommands,
  tsns, type Mode,
} from './helpers';

const run = (mode: Mode, args: readonly string[], opts: Options = {}, onlyFds?: number) => tsns(mode, ['run', ...args], opts, onlyFds);

const NS_OPTION: Record<string, string> = {
  cgroup: '--cgroup', ipc: '--ipc', mnt: '--mount', net: '--net', pid: '--pid', user: '--user', uts: '--uts',
};

let notExecutable = '';
requireCommands('ps', 'ip', 'setpriv', 'awk');

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'tsns-run-'));
  chmodSync(dir, 0o755);
  notExecutable = join(dir, 'data');
  writeFileSync(notExecutable, 'not a program\n', { mode: 0o644 });
  return () => rmSync(dir, { recursive: true, force: true });
});

describe.each(MODES)('tsns run as %s', (mode: Mode) => {
  const me = callerIds(mode);

  it('sets the hostname inside and leaves the host alone', async () => {
    const before = hostname();
    const r = await run(mode, asUser(mode, ['--uts', '--hostname', 'demo', 'hostname']));
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('demo');
    expect(r.exitCode).toBe(0);
    expect(hostname()).toBe(before);
  });

  it('--hostname and --domainname imply --uts', async () => {
    const r = await run(mode, asUser(mode, ['--hostname=box', '--domainname=example', 'sh', '-c', 'hostname; cat /proc/sys/kernel/domainname']));
    expect(r.stdout).toBe('box\nexample');
    expect(readFileSync('/proc/sys/kernel/domainname', 'utf8').trim()).not.toBe('example');
  });

  it.each(Object.keys(NS_OPTION))('a new %s namespace differs from the host exactly there', async (ns) => {
    const host = hostNamespaces();
    const r = await run(mode, asUser(mode, [NS_OPTION[ns]!, 'sh', '-c', NS_SCRIPT]));
    expect(r.stderr).toBe('');
    const inside = parseNamespaces(r.stdout);
    const expected = new Set([ns, ...(mode === 'user' ? ['user'] : [])]);
    for (const n of NS_FILES) {
      if (expected.has(n)) expect(inside[n], n).not.toBe(host[n]);
      else expect(inside[n], n).toBe(host[n]);
    }
  });

  it('-muinpUC gives every namespace a new inode', async () => {
    const host = hostNamespaces();
    const r = await run(mode, ['-muinpUC', '--map-root-user', 'sh', '-c', NS_SCRIPT]);
    const inside = parseNamespaces(r.stdout);
    for (const n of NS_FILES) expect(inside[n], n).not.toBe(host[n]);
  });

  it('--all is every namespace', async () => {
    const host = hostNamespaces();
    const r = await run(mode, ['--all', '-r', 'sh', '-c', NS_SCRIPT]);
    const inside = parseNamespaces(r.stdout);
    for (const n of NS_FILES) expect(inside[n], n).not.toBe(host[n]);
  });

  it('the command is PID 1 and ps sees only the new pid namespace', async () => {
    const r = await run(mode, asUser(mode, ['--pid', '--mount-proc', 'ps', '-e', '-o', 'pid=,comm=']));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').map((l) => l.trim())).toEqual(['1 ps']);
    const sh = await run(mode, asUser(mode, ['--pid', 'sh', '-c', 'echo $$']));
    expect(sh.stdout).toBe('1');
  });

  it('--mount-proc leaves no mount behind on the host', async () => {
    // Other tests run alongside: compare the proc mounts, which this one could leave.
    const procs = () => mountinfo().filter((l) => / - proc /.test(l));
    const before = procs();
    const r = await run(mode, asUser(mode, ['--pid', '--mount-proc', 'true']));
    expect(r.exitCode).toBe(0);
    expect(procs()).toEqual(before);
  });

  it('--map-root-user makes the caller root inside', async () => {
    const r = await run(mode, ['--user', '--map-root-user', 'sh', '-c', 'id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups']);
    const lines = r.stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    // deny as root too, as unshare -r has it
    expect(lines).toEqual(['0', '0', `0 ${me.uid} 1`, `0 ${me.gid} 1`, 'deny']);
  });

  it('--map-current-user keeps the caller\'s ids', async () => {
    const r = await run(mode, ['-c', 'sh', '-c', 'id -u; id -g; cat /proc/self/uid_map']);
    const lines = r.stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines).toEqual([String(me.uid), String(me.gid), `${me.uid} ${me.uid} 1`]);
  });

  it('--map-user and --map-group pick the ids inside, by number or name', async () => {
    const r = await run(mode, ['--map-user=1234', '--map-group=daemon', 'sh', '-c', 'id -u; id -g; cat /proc/self/gid_map']);
    const lines = r.stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines).toEqual(['1234', '1', `1 ${me.gid} 1`]);
    const byName = await run(mode, ['--map-user', 'nobody', 'id', '-u']);
    expect(byName.stdout).toBe('65534');
  });

  it('--setgroups=deny is written when asked', async () => {
    const r = await run(mode, ['-r', '--setgroups=deny', 'cat', '/proc/self/setgroups']);
    expect(r.stdout).toBe('deny');
  });

  it('--user alone maps nobody: ids are the overflow ids', async () => {
    const r = await run(mode, ['--user', 'sh', '-c', 'id -u; wc -c < /proc/self/uid_map']);
    expect(r.stdout.split('\n')).toEqual(['65534', '0']);
  });

  it('a new network namespace has only lo', async () => {
    const r = await run(mode, asUser(mode, ['--net', 'ip', '-o', 'link']));
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toHaveLength(1);
    expect(r.stdout).toMatch(/^1: lo: /);
  });

  it('/ is recursively private in a new mount namespace, or as --propagation says', async () => {
    const rootEntry = 'awk \'$5 == "/" { for (i = 7; $i != "-"; i++) printf "%s ", $i; print "." }\' /proc/self/mountinfo';
    const priv = await run(mode, asUser(mode, ['--mount', 'sh', '-c', rootEntry]));
    expect(priv.stdout).toBe('.');
    if (mode === 'root') {
      const shared = await run(mode, ['--mount', '--propagation=shared', 'sh', '-c', rootEntry]);
      expect(shared.stdout).toMatch(/^shared:\d+ \.$/);
    }
  });

  it('passes exit codes through', async () => {
    for (const code of [0, 1, 7, 255]) {
      const r = await run(mode, asUser(mode, ['--uts', '--', 'sh', '-c', `exit ${code}`]));
      expect(r.exitCode).toBe(code);
    }
  });

  it.each(['TERM', 'KILL', 'SEGV'])('dies of the command\'s SIG%s', async (sig) => {
    const r = await run(mode, asUser(mode, ['--uts', 'sh', '-c', `kill -${sig} $$`]));
    expect(r.signal).toBe(`SIG${sig}`);
    expect(r.stderr).toBe('');
  });

  it('127 when the command is not found, 126 when it cannot be executed', async () => {
    // An unreadable PATH entry (root's own, for the unprivileged run) would make it EACCES, as in execvp.
    const missing = await run(mode, asUser(mode, ['--uts', 'no-such-command-tsns']), { env: { PATH: '/usr/bin:/bin' } });
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toMatch(/^tsns: failed to execute no-such-command-tsns: No such file or directory \(ENOENT\)$/m);
    const dir = await run(mode, asUser(mode, ['--uts', '/etc']));
    expect(dir.exitCode).toBe(126);
    expect(dir.stderr).toMatch(/^tsns: failed to execute \/etc: Permission denied \(EACCES\)$/m);
    const plain = await run(mode, asUser(mode, ['--uts', notExecutable]));
    expect(plain.exitCode).toBe(126);
  });

  it('runs a file without #! through /bin/sh, as execvp does', async () => {
    const r = await run(mode, asUser(mode, ['--uts', '/bin/true']));
    expect(r.exitCode).toBe(0);
  });

  it('the command sees 0-2 (blocking) and the fds tsns inherited, none of its own, and no ignored or blocked signals', async () => {
    // An extra inherited fd (3) reaches the command, as unshare passes it. ls lists its own fds:
    // 0-2, 3 and the directory it reads, which is 4 only if nothing of tsns's was left open.
    const own = await run(mode, asUser(mode, ['--uts', 'ls', '/proc/self/fd']), { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] }, 3);
    expect(own.stdout.split('\n')).toEqual(['0', '1', '2', '3', '4']);
    const script = 'for fd in 0 1 2; do grep flags /proc/$$/fdinfo/$fd; done';
    const r = await run(mode, asUser(mode, ['--uts', 'sh', '-c', script]), { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    for (const f of r.stdout.split('\n')) expect(Number.parseInt(f.split(/\s+/)[1]!, 8) & 0o4000, f).toBe(0);
    // The command's own view, before any shell changes its mask (Node ignores SIGPIPE, for one).
    const sig = await run(mode, asUser(mode, ['--uts', 'grep', '-E', '^Sig(Blk|Ign)', '/proc/self/status']));
    expect(sig.stdout.split('\n')).toEqual(['SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000']);
  });

  it('with no command runs $SHELL as a login shell', async () => {
    const r = await run(mode, asUser(mode, ['--uts']), { input: 'echo "$0"', env: { SHELL: '/bin/sh' } });
    expect(r.stdout).toBe('-sh');
  });

  it('passes arguments byte for byte', async () => {
    const args = ['a b', '', "it's", '"q"', '$HOME', '*', 'ünï'];
    const r = await run(mode, asUser(mode, ['--uts', 'printf', '[%s]\\n', ...args]));
    expect(r.stdout.split('\n')).toEqual(args.map((a) => `[${a}]`));
  });

  it('passes the environment, and options end at the command', async () => {
    const r = await run(mode, asUser(mode, ['--uts', 'sh', '-c', 'echo "$TSNS_TEST_VAR" "$@"', 'sh', '--uts', '-r']), {
      env: { TSNS_TEST_VAR: 'x y' },
    });
    expect(r.stdout).toBe('x y --uts -r');
  });
});

describe('errors', () => {
  it('unprivileged --net without --user: clone EPERM, with a hint', async () => {
    if (!MODES.includes('user')) return;
    const r = await run('user', ['--net', 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toBe(
      'tsns: cannot create namespaces (clone CLONE_NEWNET): Operation not permitted (EPERM)\n' +
        'hint: creating namespaces needs root: run as root, or add --user (or -r/--map-root-user) to create them inside a new user namespace',
    );
  });

  it('unprivileged --mount-proc without --pid says to add --pid', async () => {
    if (!MODES.includes('user')) return;
    const r = await run('user', ['-r', '--mount-proc', 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^tsns: cannot mount proc on \/proc: Operation not permitted \(EPERM\)\nhint: .*add --pid$/);
  });

  it('unprivileged --setgroups=allow with a gid map is refused before anything is made', async () => {
    if (!MODES.includes('user')) return;
    const r = await run('user', ['-r', '--setgroups=allow', 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^tsns: --setgroups=allow cannot be used with a gid map written without root\nhint: /);
  });

  it.each([
    [['--frob', 'true'], "tsns: unrecognized option '--frob'"],
    [['-X', 'true'], "tsns: invalid option -- 'X'"],
    [['--hostname'], "tsns: option '--hostname' requires an argument"],
    [['--map-'], "tsns: option '--map-' is ambiguous; possibilities: '--map-root-user' '--map-current-user' '--map-user' '--map-group' '--map-users' '--map-groups' '--map-auto' '--map-subids'"],
    [['--all=x', 'true'], "tsns: option '--all' doesn't allow an argument"],
    [['--setgroups=maybe', 'true'], "tsns: unsupported --setgroups argument 'maybe'; use one of: allow, deny"],
    [['--json', 'true'], 'tsns: --json goes with --dry-run'],
    [['--hostname', 'x'.repeat(65), 'true'], `tsns: hostname '${'x'.repeat(65)}' is longer than 64 bytes`],
    [['--map-user=no-such-user-tsns', 'true'], "tsns: no such user: 'no-such-user-tsns'"],
    [['--propagation=private', 'true'], 'tsns: --propagation needs a new mount namespace'],
  ])('%j: one line, exit 125', async (args, message) => {
    const r = await run(MODES[0]!, args);
    expect(r.exitCode).toBe(125);
    expect(r.stderr.split('\n')[0]).toBe(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('--mount-proc onto a missing directory names it', async () => {
    const mode = MODES[0]!;
    const r = await run(mode, asUser(mode, ['--pid', '--mount-proc=/no/such/dir', 'true']));
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^tsns: cannot mount proc on \/no\/such\/dir: No such file or directory \(ENOENT\)\nhint: create the directory/);
  });

  it('an unknown subcommand exits 125', async () => {
    const r = await tsns(MODES[0]!, ['frob']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr.split('\n')[0]).toBe("tsns: unknown command 'frob'");
  });
});

describe('--dry-run', () => {
  it('prints the plan and creates nothing', async () => {
    const r = await run(MODES[0]!, ['--dry-run', '--uts', '--pid', '--user', '--map-root-user', 'bash']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^clone:\s+0x34000000 CLONE_NEWPID\|CLONE_NEWUSER\|CLONE_NEWUTS$/m);
    expect(r.stdout).toMatch(/^uid_map:\s+0 \d+ 1$/m);
    expect(r.stdout).toMatch(/^command:\s+bash$/m);
  });

  it('--json prints it as JSON', async () => {
    const r = await run(MODES[0]!, ['--dry-run', '--json', '--mount-proc', '--hostname=x', 'ps']);
    const plan = JSON.parse(r.stdout);
    expect(plan).toMatchObject({
      namespaces: ['mount', 'uts'],
      cloneFlagsHex: '0x04020000',
      cloneFlagNames: ['CLONE_NEWUTS', 'CLONE_NEWNS'],
      hostname: 'x',
      procDir: '/proc',
      argv: ['ps'],
    });
  });
});
