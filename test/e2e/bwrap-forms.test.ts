/** `tsns run ARGS -- cmd` against `bwrap ARGS cmd` on the same arguments, as root and unprivileged. */
import { execa, type Options } from 'execa';
import { accessSync, chmodSync, chownSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { callerIds, MODES, requireCommands, tsns, type Mode, type Run, IS_ROOT, USER } from './helpers';

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

/** Any command line as the mode's user (bwrap's comparisons), from / unless told. */
async function asMode(mode: Mode, cmd: readonly string[], cwd = '/'): Promise<Run> {
  const r = mode === 'user' && IS_ROOT
    ? await execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...cmd], { reject: false, cwd, stdin: 'ignore' })
    : await execa(cmd[0]!, cmd.slice(1), { reject: false, cwd, stdin: 'ignore' });
  return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode, signal: r.signal };
}

/** One error line and a hint line under it, exit 125. */
function expectOneError(r: Run, first: string | RegExp): void {
  const lines = r.stderr.split('\n');
  expect({ code: r.exitCode, n: lines.length, hint: lines[1] }).toEqual({ code: 125, n: 2, hint: expect.stringMatching(/^hint: \S/) });
  if (typeof first === 'string') expect(lines[0]).toBe(first);
  else expect(lines[0]).toMatch(first);
}

const dirs = mkdtempSync(join(tmpdir(), 'tsns-bwrap-forms-'));
chmodSync(dirs, 0o755);
afterAll(() => rmSync(dirs, { recursive: true, force: true }));

function enterable(d: string): boolean {
  try {
    accessSync(d, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A 0700 directory owned by uid. */
function privateDir(name: string, uid: number): string {
  const d = join(dirs, name);
  if (!existsSync(d)) {
    mkdirSync(d, 0o700);
    if (IS_ROOT) chownSync(d, uid, uid);
  }
  return d;
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

  it('--argv0 VALUE: the command runs with that argv[0], as /proc/PID/cmdline shows; the file run is still the command', async () => {
    const t = await tsns(mode, ['run', '--ro-bind', '/', '/', '--argv0', 'renamed', '--', 'sh', '-c', 'tr "\\0" "\\n" </proc/$$/cmdline', 'x']);
    expect({ out: t.stdout, err: t.stderr, code: t.exitCode }).toEqual({ out: 'renamed\n-c\ntr "\\0" "\\n" </proc/$$/cmdline\nx', err: '', code: 0 });
    // bwrap 0.11's words for the second one (0.8 here lacks --argv0).
    expectOneError(await tsns(mode, ['run', '--ro-bind', '/', '/', '--argv0', 'a', '--argv0', 'b', '--', 'true']), 'tsns: --argv0 used multiple times');
  });

  it.skipIf(!HAS_BWRAP)('--exec-label and --file-label where SELinux is absent: one line, a hint, 125; bwrap refuses them too', async () => {
    const selinux = existsSync('/sys/fs/selinux/enforce');
    for (const opt of ['--exec-label', '--file-label']) {
      const t = await tsns(mode, ['run', '--ro-bind', '/', '/', opt, 'system_u:object_r:container_file_t:s0', '--', 'true']);
      expectOneError(t, `tsns: ${opt}: SELinux labels are not supported: ${selinux ? 'tsns does not apply them' : 'SELinux is not enabled on this system'}`);
      const b = await asMode(mode, ['bwrap', '--ro-bind', '/', '/', opt, 'system_u:object_r:container_file_t:s0', 'true']);
      if (!selinux) expect([b.exitCode, b.stderr.trim()]).toEqual([1, 'bwrap: labeling not supported on this system']);
    }
  });

  it('--perms, --size and --chmod refusals: one line and a hint that says what to do', async () => {
    for (const [bad, first] of [
      [['--perms', '999', '--dir', '/x'], "tsns: --perms needs octal permissions up to 07777, such as 0755, not '999'"],
      [['--perms', '0700', '--perms', '0700', '--dir', '/x'], 'tsns: --perms given twice for the same action'],
      [['--perms', '0700', '--bind', '/', '/x'], /^tsns: --perms must be followed by an option that creates a file/],
      [['--size', '1', '--size', '1', '--tmpfs', '/x'], 'tsns: --size given twice for the same action'],
      [['--size', '1', '--dir', '/x'], 'tsns: --size must be followed by --tmpfs'],
      [['--chmod', '8', '/x'], "tsns: --chmod needs octal permissions up to 07777, such as 0755, not '8'"],
    ] as const) {
      expectOneError(await tsns(mode, ['run', '--ro-bind', '/', '/', ...bad, '--', 'true']), first);
    }
  });

  it.skipIf(!HAS_BWRAP)('--chdir is done as the sandbox user, after the switch to it, as bwrap does', async () => {
    const me = callerIds(mode).uid;
    // As root, --uid 5 in a user namespace is root's own uid; a directory of uid 5 is nobody's there.
    const mine = privateDir(`mine-${mode}`, me);
    // Without root no directory can be given away: /root (0700, root's) is one the caller may not enter.
    const others = IS_ROOT ? privateDir(`others-${mode}`, me === 0 ? 5 : 0) : enterable('/root') ? null : '/root';
    if (others === null) console.warn('skipping the refused --chdir: /root is enterable here, and only root can make a directory of another user');
    const cases: [string, boolean][] = [[mine, true], ...(others === null ? [] : [[others, false] as [string, boolean]])];
    for (const [d, ok] of cases) {
      const args = ['--unshare-user', '--uid', '5', '--gid', '5', '--bind', '/', '/', '--chdir', d];
      const t = await tsns(mode, ['run', ...args, '--', 'sh', '-c', 'id -u; pwd']);
      const b = await asMode(mode, ['bwrap', ...args, 'sh', '-c', 'id -u; pwd']);
      expect([t.exitCode, t.stdout]).toEqual(ok ? [0, `5\n${d}`] : [125, '']);
      expect([b.exitCode === 0, b.stdout]).toEqual([ok, ok ? t.stdout : '']);
      if (!ok) expectOneError(t, `tsns: cannot change directory to ${d}: Permission denied (EACCES)`);
    }
    if (mode !== 'root') return;
    // tsns's own -S/-G in a sandbox without a user namespace: root's directory is refused to uid 5 (it was entered as root
    // before), uid 5's is entered (bwrap's rule; bwrap itself has no --uid without a user namespace).
    const rootOnly = privateDir('root-only', 0);
    const fives = privateDir('fives', 5);
    expectOneError(await tsns(mode, ['run', '-S', '5', '-G', '5', '--bind', '/', '/', '--chdir', rootOnly, '--', 'true']),
      `tsns: cannot change directory to ${rootOnly}: Permission denied (EACCES)`);
    const t = await tsns(mode, ['run', '-S', '5', '-G', '5', '--bind', '/', '/', '--chdir', fives, '--', 'sh', '-c', 'id -u; pwd; echo $PWD']);
    expect([t.exitCode, t.stdout]).toEqual([0, `5\n${fives}\n${fives}`]);
    // Without --chdir: the caller's directory if the user may enter it, else $HOME, else / (PWD says which).
    const fallback = await tsns(mode, ['run', '-S', '5', '-G', '5', '--bind', '/', '/', '--', 'sh', '-c', 'pwd; echo $PWD'],
      { cwd: rootOnly, env: { ...process.env, HOME: fives } });
    expect(fallback.stdout).toBe(`${fives}\n${fives}`);
  });
});
