/** The sandbox filesystem and hardening (bwrap's options), as root and unprivileged. */
import { execa, type Options } from 'execa';
import { chmodSync, chownSync, closeSync, copyFileSync, openSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowAllFilter, denyMkdirFilter, hasCommand, IS_ROOT, mountinfo, MODES, requireCommands, ROOT, skipWithout, tsns, type Mode } from './helpers';

const run = (mode: Mode, args: readonly string[], opts: Options = {}) => tsns(mode, ['run', ...args], opts);
// What every sandbox here starts from: the system read-only, as the --sandbox profile has it.
const SYSTEM = ['--ro-bind', '/usr', '/usr', '--ro-bind', '/etc', '/etc', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--symlink', 'usr/sbin', '/sbin', '--proc', '/proc', '--dev', '/dev'];
let dir = '';
let tiocsti = '';
const HAS_CC = requireCommands('cc');

beforeAll(async () => {
  if (!HAS_CC) return;
  dir = mkdtempSync(join(tmpdir(), 'tsns-sandbox-'));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'data'));
  // World-writable, so that the unprivileged overlay test may change it (in its upper layer only).
  writeFileSync(join(dir, 'data', 'hello'), 'hello\n', { mode: 0o666 });
  chmodSync(join(dir, 'data', 'hello'), 0o666);
  mkdirSync(join(dir, 'data', 'sub'));
  chmodSync(join(dir, 'data'), 0o777);
  mkdirSync(join(dir, 'data-user'));
  writeFileSync(join(dir, 'data-user', 'hello'), 'hello\n');
  if (IS_ROOT) {
    chownSync(join(dir, 'data-user'), 65534, 65534);
    chownSync(join(dir, 'data-user', 'hello'), 65534, 65534);
  }
  tiocsti = join(dir, 'tiocsti');
  await execa('cc', ['-o', tiocsti, join(ROOT, 'test', 'fixtures', 'tiocsti.c')]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(MODES)('as %s', (mode: Mode) => {
  const sb = (args: readonly string[], opts: Options = {}) => run(mode, ['--pid', ...SYSTEM, ...args], opts);

  it('only what was asked for exists: the new root is a tmpfs, the host is gone', async () => {
    const r = await sb(['--', 'sh', '-c', 'ls / | tr "\\n" " "; echo; test -e /home || test -e /var || echo no-host; awk \'$5 == "/" {print $9}\' /proc/self/mountinfo']);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['bin dev etc lib lib64 proc sbin usr ', 'no-host', 'tmpfs']);
  });

  it('read-only binds refuse writes, recursively, and cannot be remounted writable', async () => {
    const r = await sb(['--ro-bind', `${dir}/data`, '/data', '--', 'sh', '-c',
      'echo x > /data/new 2>&1 || echo refused; echo x > /data/sub/new 2>&1 || echo refused-sub; cat /data/hello; mount -o remount,rw /data 2>/dev/null && echo remounted || echo no-remount']);
    expect(r.stdout.split('\n')).toEqual(['refused', 'refused-sub', 'hello', 'no-remount']);
    expect(existsSync(join(dir, 'data', 'new'))).toBe(false);
  });

  it('a --bind is writable and writes reach the host; a missing source is named', async () => {
    const r = await sb(['--bind', `${dir}/data`, '/data', '--', 'sh', '-c', 'echo from-inside > /data/written']);
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(dir, 'data', 'written'), 'utf8')).toBe('from-inside\n');
    rmSync(join(dir, 'data', 'written'));
    const missing = await sb(['--ro-bind', '/no/such/src', '/x', 'true']);
    expect(missing.exitCode).toBe(125);
    expect(missing.stderr).toBe(
      'tsns: --ro-bind /no/such/src /x failed: No such file or directory (ENOENT)\nhint: the source /no/such/src does not exist; --ro-bind-try skips a missing one',
    );
    const tried = await sb(['--ro-bind-try', '/no/such/src', '/x', 'true']);
    expect(tried.exitCode).toBe(0);
  });

  it('tmpfs writes stay inside; --size, --perms, --dir, --symlink, --file, --chmod', async () => {
    const mark = `tsns-sandbox-write-${process.pid}`;
    const r = await sb(['--size', '1048576', '--perms', '1777', '--tmpfs', '/tmp', '--perms', '0700', '--dir', '/work/a',
      '--symlink', '/work/a', '/work/link', '--file', `${dir}/data/hello`, '/work/motd', '--chmod', '0600', '/work/motd', '--',
      'sh', '-c', `echo x > /tmp/${mark} && df -B1 /tmp | tail -1 | awk "{print \\$2}"; stat -c "%a" /tmp /work/a /work/motd | tr "\\n" " "; echo; readlink /work/link; cat /work/motd`]);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['1048576', '1777 700 600 ', '/work/a', 'hello']);
    expect(existsSync(join(tmpdir(), mark))).toBe(false);
  });

  it('--file from an open file descriptor', async () => {
    const fd = openSync(join(dir, 'data', 'hello'), 'r');
    try {
      const r = await sb(['--file', '3', '/input', '--', 'cat', '/input'], { stdio: ['ignore', 'pipe', 'pipe', fd] as Options['stdio'] });
      expect(r.stdout).toBe('hello');
    } finally {
      closeSync(fd);
    }
  });

  it('--seccomp FD: the program judges the command, not tsns\'s setup; --add-seccomp-fd loads several', async () => {
    const deny = join(dir, `deny-mkdir-${mode}.bpf`);
    const allow = join(dir, `allow-${mode}.bpf`);
    writeFileSync(deny, denyMkdirFilter());
    writeFileSync(allow, allowAllFilter());
    const script = 'mkdir /tmp/a || echo denied; touch /tmp/f && echo touched; grep "^Seccomp" /proc/self/status | tr "\\t\\n" "  "';
    // As in bwrap, a program is read from where the fd stands: fresh fds for every run.
    const withPrograms = async <T>(fn: (stdio: Options['stdio']) => Promise<T>): Promise<T> => {
      const fds = [openSync(deny, 'r'), openSync(allow, 'r')];
      try {
        return await fn(['ignore', 'pipe', 'pipe', ...fds] as Options['stdio']);
      } finally {
        fds.forEach((fd) => closeSync(fd));
      }
    };
    const one = await withPrograms((stdio) => sb(['--tmpfs', '/tmp', '--seccomp', '3', '--', 'sh', '-c', script], { stdio }));
    expect(one.stderr).toMatch(/^mkdir: cannot create directory .\/tmp\/a.: Operation not permitted$/);
    expect(one.stdout).toBe('denied\ntouched\nSeccomp: 2 Seccomp_filters: 1 ');
    const two = await withPrograms((stdio) => sb(['--tmpfs', '/tmp', '--add-seccomp-fd', '4', '--add-seccomp-fd', '3', '--', 'sh', '-c', script], { stdio }));
    expect(two.stdout).toBe('denied\ntouched\nSeccomp: 2 Seccomp_filters: 2 ');
    // Without a sandbox too; no new privileges comes with it.
    const target = join(dir, 'data', `seccomp-${mode}`); // a directory both users may write to
    const plain = await withPrograms((stdio) => run(mode, ['--seccomp', '3', '--', 'sh', '-c', `grep NoNewPrivs /proc/self/status; mkdir ${target} 2>/dev/null || echo denied`], { stdio }));
    expect(plain.stdout).toBe('NoNewPrivs:\t1\ndenied');
    expect(existsSync(target)).toBe(false);
  });

  it('--args FD: options read from an fd, NUL-separated, parsed in its place', async () => {
    const file = join(dir, `args-${mode}.bin`);
    writeFileSync(file, '--uts\0--hostname\0from-fd\0--tmpfs\0/tmp\0');
    const fd = openSync(file, 'r');
    try {
      const r = await sb(['--args', '3', '--', 'sh', '-c', 'hostname; touch /tmp/x && echo tmpfs'], { stdio: ['ignore', 'pipe', 'pipe', fd] as Options['stdio'] });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('from-fd\ntmpfs');
    } finally {
      closeSync(fd);
    }
    const bad = await run(mode, ['--args', '99', 'true']);
    expect(bad.stderr).toBe('tsns: cannot read arguments (--args) from fd 99: Bad file descriptor (EBADF)\nhint: open the file on that fd for tsns, e.g. 99<args.bin');
    expect(bad.exitCode).toBe(125);
  });

  it('seccomp failures: not BPF, not open, refused by the kernel, --seccomp with --add-seccomp-fd', async () => {
    const odd = join(dir, `odd-${mode}.bpf`);
    const bad = join(dir, `bad-${mode}.bpf`);
    writeFileSync(odd, Buffer.alloc(7));
    // One instruction with an opcode the kernel does not know.
    writeFileSync(bad, Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0]));
    const fds = [openSync(odd, 'r'), openSync(bad, 'r')];
    const stdio = ['ignore', 'pipe', 'pipe', ...fds] as Options['stdio'];
    try {
      const cases: [string[], string][] = [
        [['--seccomp', '3'], 'tsns: seccomp program 1 (fd 3) is 7 bytes: not 1 to 4096 8-byte BPF instructions\nhint: give a compiled classic BPF program, as seccomp_export_bpf() writes it'],
        [['--seccomp', '99'], 'tsns: cannot read a seccomp program from fd 99: Bad file descriptor (EBADF)\nhint: open the file on that fd for tsns, e.g. 99<filter.bpf'],
        [['--seccomp', '4'], 'tsns: cannot load seccomp program 1: Invalid argument (EINVAL)\nhint: it must be classic BPF compiled for this architecture, as seccomp_export_bpf() writes it'],
        [['--seccomp', '4', '--add-seccomp-fd', '4'], "tsns: --seccomp cannot be combined with --add-seccomp-fd\nhint: see 'tsns run --help'"],
      ];
      for (const [args, stderr] of cases) {
        const r = await run(mode, [...args, 'true'], { stdio });
        expect(r.stderr, args.join(' ')).toBe(stderr);
        expect(r.exitCode, args.join(' ')).toBe(125);
      }
    } finally {
      fds.forEach((fd) => closeSync(fd));
    }
  });

  it('overlay writes vanish with the sandbox', async () => {
    // Copy-up keeps the owner, so the unprivileged run needs files it owns (root's would be unmapped: EOVERFLOW).
    const lower = mode === 'user' ? join(dir, 'data-user') : join(dir, 'data');
    const r = await sb(['--overlay-src', lower, '--tmp-overlay', '/data', '--', 'sh', '-c', 'echo changed > /data/hello; echo new > /data/new; cat /data/hello /data/new']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('changed\nnew');
    expect(readFileSync(join(lower, 'hello'), 'utf8')).toBe('hello\n');
    expect(existsSync(join(lower, 'new'))).toBe(false);
  });

  it('--dev gives a minimal /dev with a new devpts', async () => {
    const r = await sb(['--', 'sh', '-c', 'ls /dev | tr "\\n" " "; echo; echo hi > /dev/null && head -c 4 /dev/zero | od -An -tx1; awk \'$5 == "/dev/pts" {print $9}\' /proc/self/mountinfo']);
    expect(r.stdout.split('\n')).toEqual([
      'core fd full null ptmx pts random shm stderr stdin stdout tty urandom zero ',
      ' 00 00 00 00',
      'devpts',
    ]);
  });

  it('--cap-drop ALL leaves no capabilities; --cap-add keeps one; no new privileges', async () => {
    const caps = 'grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs)" /proc/self/status | cut -f2 | tr "\\n" " "';
    const none = await sb(['--cap-drop', 'ALL', '--', 'sh', '-c', caps]);
    expect(none.stdout).toBe('0000000000000000 0000000000000000 0000000000000000 0000000000000000 0000000000000000 1 ');
    const one = await sb(['--cap-drop', 'ALL', '--cap-add', 'CAP_NET_RAW', '--', 'sh', '-c', caps]);
    expect(one.stdout).toBe('0000000000002000 0000000000002000 0000000000002000 0000000000002000 0000000000002000 1 ');
  });

  it('a new network namespace has lo up: ping works', async (ctx) => {
    skipWithout(ctx, 'ping');
    const r = await run(mode, [...(mode === 'user' ? ['-r'] : []), '--net', 'ping', '-c1', '-W2', '127.0.0.1']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/1 packets transmitted, 1 received/);
  });

  it('--new-session: the command cannot inject input into the caller\'s terminal (TIOCSTI)', async (ctx) => {
    skipWithout(ctx, 'script');
    const bin = mode === 'user' && IS_ROOT ? join(dir, 'tiocsti') : tiocsti;
    const base = mode === 'user' ? ['-r'] : ['--uts'];
    const inTerminal = (args: string[]) => execa('script', ['-qec', args.join(' '), '/dev/null'], { reject: false, cwd: '/' });
    const tsnsBin = mode === 'user' && IS_ROOT ? null : join(ROOT, 'bin', 'tsns.js');
    if (!tsnsBin) return; // the pty belongs to root here; the unprivileged run is covered by the plan
    const isolated = await inTerminal(['node', tsnsBin, 'run', ...base, '--new-session', bin]);
    expect(isolated.stdout.trim()).toMatch(/^refused: (ENXIO|EPERM|EIO)$/);
  });

  it('--sandbox: the ready profile', async () => {
    const r = await run(mode, ['--sandbox', '--', 'sh', '-c',
      'id -u; ls / | tr "\\n" " "; echo; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status | cut -f2 | tr "\\n" " "; echo; touch /usr/x 2>/dev/null || echo ro; echo ok > /tmp/x && cat /tmp/x; ps -e -o pid= | wc -l; cat /proc/sys/kernel/hostname >/dev/null; ip -o link | wc -l']);
    expect(r.stderr).toBe('');
    const [uid, root, hard, ro, tmp, procs, links] = r.stdout.split('\n');
    expect(uid).toBe(mode === 'root' ? '0' : '65534');
    expect(root).toMatch(/^bin dev etc lib lib64 proc (root |nonexistent )?sbin tmp usr $/);
    expect(hard).toBe('0000000000000000 1 ');
    expect([ro, tmp]).toEqual(['ro', 'ok']);
    expect(Number(procs)).toBeLessThanOrEqual(4);
    expect(links!.trim()).toBe('1');
    const plan = await run(mode, ['--dry-run', '--sandbox', 'true']);
    expect(plan.stdout).toMatch(/sandbox: +--ro-bind \/usr/);
    expect(plan.stdout).toMatch(/^caps: +all dropped$/m);
  });

  it('leaves nothing behind on the host', async () => {
    const ours = () => mountinfo().filter((l) => / - (tmpfs|overlay|devpts) /.test(l) || l.includes(dir));
    const before = ours();
    await sb(['--tmpfs', '/tmp', '--overlay-src', `${dir}/data`, '--tmp-overlay', '/data', 'true']);
    expect(ours()).toEqual(before);
  });
});

describe.runIf(IS_ROOT)('no new privileges: a setuid binary gains nothing', () => {
  it('outside a sandbox setuid-root works; inside it does not', async () => {
    const bin = join(dir, 'id-suid');
    copyFileSync('/usr/bin/id', bin);
    chownSync(bin, 0, 0);
    chmodSync(bin, 0o4755);
    const common = ['--map-users=0:0:2000', '--map-groups=0:0:2000', '-S', '1000', '-G', '1000', '--pid'];
    const plain = await run('root', [...common, bin, '-u']);
    expect(plain.stdout).toBe('0');
    // As bwrap, the parents a bind makes are 0700: a --dir (0755) lets uid 1000 through.
    const sandboxed = await run('root', [...common, ...SYSTEM, '--dir', tmpdir(), '--ro-bind', dir, dir, bin, '-u']);
    expect(sandboxed.stdout).toBe('1000');
  });
});

describe.runIf(hasCommand('bwrap'))('against bwrap, where it is installed', () => {
  /** Run cmd with `file` opened afresh on its fd 3 (both read it from the start). */
  const withFd3 = async (file: string, cmd: string, args: string[]) => {
    const fd = openSync(file, 'r');
    try {
      return await execa(cmd, args, { reject: false, cwd: '/', stdio: ['ignore', 'pipe', 'pipe', fd] as Options['stdio'] });
    } finally {
      closeSync(fd);
    }
  };

  const cases: [string, string[]][] = [
    ['ro bind refuses writes', ['sh', '-c', 'touch /usr/x 2>/dev/null && echo wrote || echo refused']],
    ['host paths are absent', ['sh', '-c', 'test -e /home && echo host || echo absent']],
    ['/dev devices', ['sh', '-c', 'for d in null zero full random urandom tty; do test -c /dev/$d && printf "$d "; done']],
    ['tmpfs is writable', ['sh', '-c', 'echo x > /tmp/y && cat /tmp/y']],
  ];
  it.each(cases)('%s, as bwrap has it', async (_name, command) => {
    const bwrapArgs = ['--unshare-all', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp'];
    const tsnsArgs = ['--unshare-all', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp'];
    const theirs = await execa('bwrap', [...bwrapArgs, ...command], { reject: false, cwd: '/' });
    const ours = await run(MODES[0]!, [...tsnsArgs, ...command]);
    expect(ours.stdout).toBe(theirs.stdout);
    expect(ours.exitCode).toBe(theirs.exitCode);
  });

  it('--args FD, as bwrap has it', async () => {
    const file = join(dir, 'args-bwrap.bin');
    writeFileSync(file, '--unshare-uts\0--hostname\0from-fd\0');
    const theirs = await withFd3(file, 'bwrap', ['--args', '3', '--ro-bind', '/', '/', 'hostname']);
    const ours = await withFd3(file, process.execPath, [join(ROOT, 'bin', 'tsns.js'), 'run', '--args', '3', '--ro-bind', '/', '/', 'hostname']);
    expect(ours.stdout).toBe(theirs.stdout);
    expect(ours.stdout).toBe('from-fd');
  });

  it('--seccomp FD, as bwrap has it', async () => {
    const file = join(dir, 'deny-mkdir-bwrap.bpf');
    writeFileSync(file, denyMkdirFilter());
    const command = ['sh', '-c', 'mkdir /tmp/a 2>/dev/null || echo denied; grep -c "^Seccomp_filters:.*1" /proc/self/status'];
    const theirs = await withFd3(file, 'bwrap', ['--unshare-all', '--ro-bind', '/', '/', '--tmpfs', '/tmp', '--seccomp', '3', ...command]);
    const ours = await withFd3(file, process.execPath, [join(ROOT, 'bin', 'tsns.js'), 'run', '--unshare-all', '--ro-bind', '/', '/', '--tmpfs', '/tmp', '--seccomp', '3', ...command]);
    expect(ours.stdout).toBe(theirs.stdout);
    expect(ours.stdout).toBe('denied\n1');
  });
});
