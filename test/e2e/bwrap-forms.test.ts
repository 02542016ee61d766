/** `tsns run ARGS -- cmd` against `bwrap ARGS cmd` on the same arguments, as root and unprivileged. */
import { execa, type Options } from 'execa';
import { openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MODES, requireCommands, tsns, type Mode, IS_ROOT, USER } from './helpers';

const HAS_BWRAP = requireCommands('bwrap');
const SCRIPT = 'cd /tmp; for f in a a/b c c/d e f f/g f/g/h i i/j i/j/k l l/m n o y; do stat -c "%a %F $f" $f; done; pwd; echo "PWD=$PWD"; id -u; id -g; env | grep -v "^_=" | sort; grep " /proc " /proc/self/mountinfo | cut -d" " -f5,9';
const ARGS = ['--ro-bind', '/', '/', '--tmpfs', '/tmp', '--bind', '/etc/hostname', '/tmp/a/b/h', '--bind', '/etc', '/tmp/c/d', '--dir', '/tmp/e',
  '--perms', '0700', '--dir', '/tmp/f/g/h', '--perms', '0640', '--file', '3', '/tmp/i/j/k', '--perms', '0600', '--tmpfs', '/tmp/l/m',
  '--file', '4', '/tmp/n', '--bind-data', '5', '/tmp/o', '--symlink', 'x', '/tmp/y/z', '--proc', '/proc',
  '--chdir', '/etc', '--setenv', 'GONE', '1', '--clearenv', '--setenv', 'A', 'a b', '--setenv', 'B', '2', '--unsetenv', 'B'];

// fds 3-5 for --file and --bind-data to read (each is read once, then closed).
const stdio = () => { const n = openSync('/dev/null', 'r'); return ['ignore', 'pipe', 'pipe', n, n, n] as const; };

async function bwrap(mode: Mode, args: readonly string[]) {
  const fds = stdio() as unknown as Options['stdio'];
  const cmd = ['bwrap', ...args, 'sh', '-c', SCRIPT];
  const r = mode === 'user' && IS_ROOT
    ? await execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...cmd], { reject: false, cwd: '/', stdio: fds })
    : await execa(cmd[0]!, cmd.slice(1), { reject: false, cwd: '/', stdio: fds });
  return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode };
}

describe.each(MODES)('as %s, the same as bwrap', (mode: Mode) => {
  it.skipIf(!HAS_BWRAP)('modes of what binds, --dir, --file, --bind-data, --tmpfs make; --proc; env; ids', async () => {
    for (const extra of [[], ['--unshare-user', '--uid', '5', '--gid', '6'], ['--unshare-pid']]) {
      const args = [...extra, ...ARGS];
      const b = await bwrap(mode, args);
      const t = await tsns(mode, ['run', ...args, '--', 'sh', '-c', SCRIPT], { stdio: stdio() as unknown as Options['stdio'] });
      expect(b.stderr).toBe('');
      expect({ out: t.stdout, err: t.stderr, code: t.exitCode }).toEqual({ out: b.stdout, err: '', code: b.exitCode });
    }
  });

  it.skipIf(!HAS_BWRAP)('refuses what bwrap refuses: --perms twice, --size 0, a --perms nothing takes', async () => {
    for (const bad of [['--perms', '0700', '--perms', '0700', '--dir', '/x'], ['--size', '0', '--tmpfs', '/x'], ['--perms', '0700', '--bind', '/', '/x']]) {
      const b = await bwrap(mode, ['--ro-bind', '/', '/', ...bad]);
      const t = await tsns(mode, ['run', '--ro-bind', '/', '/', ...bad, '--', 'true']);
      expect([b.exitCode !== 0, t.exitCode]).toEqual([true, 125]);
      expect(t.stderr.split('\n')[0]).toContain(b.stderr.replace(/^bwrap: /, '').trim().split(' ').slice(0, 3).join(' '));
    }
  });
});
