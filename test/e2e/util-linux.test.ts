/**
 * util-linux's rules and its newer options (2.39-2.42), as root and as user
 * 65534: compared with the installed unshare/nsenter/lsns where they have
 * the option (Debian 12 has 2.38), tested directly where they do not.
 */
import { execa, type ResultPromise } from 'execa';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pidfdIno } from '../../src/native';
import { IS_ROOT, MODES, requireCommands, requireFeature, ROOT, tsns, USER, type Mode } from './helpers';

const TOOLS = requireCommands('unshare', 'nsenter', 'lsns', 'setpriv', 'umount', 'ip', 'bash');
let dir = '';
const started: ResultPromise[] = [];
const targets: number[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsns-ul-'));
  chmodSync(dir, 0o777);
});

afterAll(async () => {
  // The sleeps first: an orphaned one would hold the wrappers' pipes.
  for (const pid of targets) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const p of started) p.kill('SIGKILL');
  await Promise.all(started.map((p) => p.catch(() => undefined)));
  rmSync(dir, { recursive: true, force: true });
});

/** A command as root or, from root, as user 65534. */
function as(mode: Mode, argv: readonly string[]): [string, string[]] {
  if (mode === 'user' && IS_ROOT) return ['setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...argv]];
  return [argv[0]!, argv.slice(1)];
}

async function runAs(mode: Mode, argv: readonly string[]) {
  const [file, args] = as(mode, argv);
  const r = await execa(file, args, { reject: false, stdin: 'ignore', cwd: '/' });
  return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode };
}

let serial = 0;
/**
 * A long-lived target: `script` runs in sh and ends by exec'ing `sleep`; the
 * pid of that sleep, once it is the sleep.
 */
async function target(mode: Mode, script: string): Promise<number> {
  const file = join(dir, `pid-${serial++}`);
  const [cmd, args] = as(mode, ['sh', '-c', script.replace(/PIDFILE/g, file)]);
  const p = execa(cmd, args, { reject: false, stdio: 'ignore', cwd: '/' });
  started.push(p);
  for (let i = 0; i < 200; i++) {
    const pid = existsSync(file) ? Number(readFileSync(file, 'utf8')) : 0;
    if (pid > 0 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') {
      targets.push(pid);
      return pid;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`target did not start: ${script}`);
}

const ns = (pid: number | 'self', type: string) => readlinkSync(`/proc/${pid}/ns/${type}`);
/** A shell's pid as our /proc sees it, also from inside a pid namespace: its child's parent. */
const OUTER_PID = 'cut -d" " -f4 /proc/self/stat > PIDFILE';

describe.runIf(TOOLS).each(MODES)('unshare\'s rules, as %s', (mode: Mode) => {
  const cat = ['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups'];

  it('-r denies setgroups, as root too, as unshare does', async () => {
    const ours = await tsns(mode, ['run', '-r', ...cat]);
    const theirs = await runAs(mode, ['unshare', '-r', ...cat]);
    expect(ours.stderr).toBe('');
    expect(ours.stdout).toBe(theirs.stdout);
    expect(ours.stdout.trim().split('\n').pop()).toBe('deny');
    // -c and --map-group the same; a --map-groups range leaves it (tested as root below).
    expect((await tsns(mode, ['run', '-c', 'cat', '/proc/self/setgroups'])).stdout).toBe('deny');
  });

  it('-r -S 0 -G 0 works with setgroups denied (unshare fails there: setgroups failed)', async () => {
    const r = await tsns(mode, ['run', '-r', '-S', '0', '-G', '0', 'sh', '-c', 'id -u; id -g; cat /proc/self/setgroups']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('0\n0\ndeny');
  });

  it('--setgroups=allow with -r: root keeps allow; without root the kernel needs deny, a clear error', async () => {
    const r = await tsns(mode, ['run', '-r', '--setgroups=allow', 'cat', '/proc/self/setgroups']);
    if (mode === 'root') {
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('allow');
    } else {
      expect(r.exitCode).toBe(125);
      expect(r.stderr).toMatch(/^tsns: --setgroups=allow cannot be used with a gid map written without root\n/);
    }
    // unshare refuses the pair even as root.
    expect((await runAs(mode, ['unshare', '-r', '--setgroups=allow', 'true'])).stderr).toMatch(/mutually exclusive/);
  });

  it('--map-users=all: every id of the caller\'s namespace (root), refused before anything is made (others)', async () => {
    const r = await tsns(mode, ['run', '--map-users=all', '--map-groups=all', ...cat]);
    if (mode === 'root') {
      expect(r.stderr).toBe('');
      expect(r.stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toEqual(['0 0 4294967295', '0 0 4294967295', 'allow']);
      // With -r the single id goes first and the range gives it up (util-linux 2.39's hole).
      const hole = await tsns(mode, ['run', '--map-users=all', '-r', ...cat]);
      expect(hole.stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toEqual(['0 0 1', '1 1 4294967294', '0 0 1', 'deny']);
    } else {
      expect(r.exitCode).toBe(125);
      expect(r.stderr).toMatch(/^tsns: uid range 0:0:4294967295 is outside your \/etc\/subuid ranges\n/);
    }
  });

  it('-l/--load-interp registers a binfmt_misc interpreter in the new namespaces only', async (ctx) => {
    const [major, minor] = release().split('.').map(Number);
    if (!requireFeature(major! > 6 || (major === 6 && minor! >= 7), 'binfmt_misc in user namespaces (Linux 6.7+)')) return ctx.skip();
    const file = join(dir, `hello-${mode}.tsnst`);
    writeFileSync(file, 'printed by cat\n', { mode: 0o755 });
    const rule = `:tsnst${mode}:E::tsnst::/bin/cat:`;
    const r = await tsns(mode, ['run', '-r', '-p', '--load-interp', rule, 'sh', '-c', `${file}; head -2 /proc/sys/fs/binfmt_misc/tsnst${mode}`]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('printed by cat\nenabled\ninterpreter /bin/cat');
    expect(existsSync(`/proc/sys/fs/binfmt_misc/tsnst${mode}`)).toBe(false);
    // The default place is in /proc: a new proc comes with it, which a user namespace allows only with --pid.
    const noPid = await tsns(mode, ['run', '-r', '--load-interp', rule, 'true']);
    expect(noPid.exitCode).toBe(125);
    expect(noPid.stderr.split('\n')[0]).toBe('tsns: cannot mount proc on /proc: Operation not permitted (EPERM)');
  });

  it('--forward-signals, as util-linux 2.42 spells it: SIGTERM reaches the command', async () => {
    const bin = join(mode === 'user' && IS_ROOT ? inject('stagedRoot') : ROOT, 'bin', 'tsns.js');
    const [cmd, args] = as(mode, [process.execPath, bin, 'run', '--forward-signals', '-r', 'sh', '-c',
      'trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.05; done']);
    const p = execa(cmd, args, { reject: false, stdin: 'ignore', cwd: '/' });
    p.stdout!.once('data', () => p.kill('SIGTERM'));
    const r = await p;
    expect(String(r.stdout)).toBe('ready\ngot TERM');
    expect(r.exitCode).toBe(7);
  });
});

describe.runIf(TOOLS && IS_ROOT)('unshare\'s rules, as root only', () => {
  it('a --map-groups range leaves setgroups alone, as unshare 2.39+ does', async () => {
    const r = await tsns('root', ['run', '-r', '--map-users=1:100000:10', '--map-groups=1:100000:10', 'cat', '/proc/self/setgroups']);
    expect(r.stdout).toBe('allow');
  });
});

describe.runIf(TOOLS).each(MODES)('nsenter\'s newer options, as %s', (mode: Mode) => {
  // nsenter -U without root fails setgroups (denied in the target) unless it keeps its ids; tsns need not, but compares so.
  const userns = mode === 'user' ? ['-U', '--preserve-credentials'] : [];

  it('-F/--no-fork with a pid namespace: the command stays outside it, its children go in, as nsenter -F', async () => {
    const pid = await target(mode, `exec unshare ${mode === 'user' ? '-r' : ''} -p -f sh -c '${OUTER_PID}; exec sleep 120'`);
    // $$ of the shell itself (outside), then of a child (inside: a small pid).
    const probe = ['sh', '-c', 'echo $$; sh -c "echo \\$\\$"'];
    const ours = await tsns(mode, ['enter', '-t', String(pid), ...userns, '-p', '-F', '--', ...probe]);
    const theirs = await runAs(mode, ['nsenter', '-t', String(pid), ...userns, '-p', '-F', '--', ...probe]);
    expect(ours.stderr).toBe('');
    const [outside, inside] = ours.stdout.split('\n').map(Number);
    const [theirOutside, theirInside] = theirs.stdout.split('\n').map(Number);
    expect(outside).toBeGreaterThan(10);
    expect(theirOutside).toBeGreaterThan(10);
    expect(inside).toBeLessThan(10);
    expect(theirInside).toBeLessThan(10);
    // Without -F the command itself is inside.
    expect(Number((await tsns(mode, ['enter', '-t', String(pid), ...userns, '-p', 'sh', '-c', 'echo $$'])).stdout)).toBeLessThan(10);
  });

  it('-N/--net-socket FD: the network namespace of the target\'s socket', async () => {
    // The socket is made in a new network namespace; as root the holder then goes back to ours.
    const back = mode === 'root' ? `exec nsenter --net=/proc/${process.pid}/ns/net ` : 'exec ';
    const pid = await target(mode, `exec unshare ${mode === 'user' ? '-r' : ''} -n bash -c 'ip link set lo up; exec 77<>/dev/udp/127.0.0.1/9; readlink /proc/self/ns/net > PIDFILE.ns; echo $$ > PIDFILE; ${back}sleep 120'`);
    const sockNs = readFileSync(join(dir, `pid-${serial - 1}.ns`), 'utf8').trim();
    if (mode === 'root') expect(ns(pid, 'net')).toBe(ns('self', 'net'));
    const r = await tsns(mode, ['enter', '-t', String(pid), ...userns, '-N', '77', 'readlink', '/proc/self/ns/net']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(sockNs);
    const notSocket = await tsns(mode, ['enter', '-t', String(pid), '-N', '0', 'true']);
    expect(notSocket.exitCode).toBe(125);
    expect(notSocket.stderr.split('\n')[0]).toBe(`tsns: fd 0 of pid ${pid} is not a socket with a network namespace: Inappropriate ioctl for device (ENOTTY)`);
    const noFd = await tsns(mode, ['enter', '-t', String(pid), '-N', '999', 'true']);
    expect(noFd.stderr.split('\n')[0]).toBe(`tsns: cannot take fd 999 of pid ${pid}: Bad file descriptor (EBADF)`);
  });

  it('--user-parent: the parent of the target\'s user namespace', async () => {
    const pid = await target(mode, "exec unshare -U -r sh -c 'readlink /proc/self/ns/user > PIDFILE.parent; exec unshare -U -r sh -c \"echo \\$\\$ > PIDFILE; exec sleep 120\"'");
    const parent = readFileSync(join(dir, `pid-${serial - 1}.parent`), 'utf8').trim();
    expect(ns(pid, 'user')).not.toBe(parent);
    const r = await tsns(mode, ['enter', '-t', String(pid), '--user-parent', 'readlink', '/proc/self/ns/user']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(parent);
    // Of the first user namespace: the kernel has nothing we may join, as nsenter says.
    const plain = await target(mode, 'echo $$ > PIDFILE; exec sleep 120');
    const own = await tsns(mode, ['enter', '-t', String(plain), '--user-parent', 'true']);
    expect(own.exitCode).toBe(125);
    expect(own.stderr.split('\n')[0]).toMatch(/^tsns: cannot open the parent of the user namespace \/proc\/\d+\/ns\/user: Operation not permitted \(EPERM\)$/);
  });

  it('-t PID:INODE names one process: its pidfd\'s inode (util-linux 2.42)', async () => {
    const pid = await target(mode, 'echo $$ > PIDFILE; exec sleep 120');
    const ino = pidfdIno(pid);
    expect(ino).toBeGreaterThan(0);
    const r = await tsns(mode, ['enter', '-t', `${pid}:${ino}`, '-u', 'true']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const other = await tsns(mode, ['enter', '-t', `${pid}:${ino + 1}`, '-u', 'true']);
    expect(other.exitCode).toBe(125);
    expect(other.stderr.split('\n')[0]).toBe(`tsns: cannot enter pid ${pid}:${ino + 1}: No such process (ESRCH)`);
  });

  it('-S/-G follow: the target\'s uid and gid', async () => {
    // Root's target runs as 65534, so that following it changes something.
    const pid = await target(mode, mode === 'root' && IS_ROOT
      ? `exec setpriv --reuid=${USER.uid} --regid=${USER.gid} --clear-groups sh -c 'echo $$ > PIDFILE; exec sleep 120'`
      : 'echo $$ > PIDFILE; exec sleep 120');
    const r = await tsns(mode, ['enter', '-t', String(pid), '-S', 'follow', '-G', 'follow', 'sh', '-c', 'id -u; id -g']);
    expect(r.stderr).toBe('');
    const st = statSync(`/proc/${pid}`);
    expect(r.stdout).toBe(`${st.uid}\n${st.gid}`);
  });

  it('-W/--wdns DIR is opened inside, -w DIR before joining, as nsenter does; not both', async () => {
    const pid = await target(mode, `exec unshare ${mode === 'user' ? '-r' : ''} -m sh -c 'mount -t tmpfs none /mnt && mkdir /mnt/inside && echo $$ > PIDFILE; exec sleep 120'`);
    const base = ['-t', String(pid), ...userns, '-m'];
    const ours = await tsns(mode, ['enter', ...base, '--wdns=/mnt/inside', 'pwd']);
    const theirs = await runAs(mode, ['nsenter', ...base, '--wdns=/mnt/inside', 'pwd']);
    expect(ours.stdout).toBe('/mnt/inside');
    expect(ours.stdout).toBe(theirs.stdout);
    expect((await tsns(mode, ['enter', ...base, '-W/mnt/inside', 'pwd'])).stdout).toBe('/mnt/inside');
    const before = await tsns(mode, ['enter', ...base, '--wd=/mnt/inside', 'pwd']);
    expect(before.exitCode).toBe(125);
    expect(before.stderr.split('\n')[0]).toBe('tsns: cannot open the working directory (/mnt/inside): No such file or directory (ENOENT)');
    expect((await runAs(mode, ['nsenter', ...base, '--wd=/mnt/inside', 'pwd'])).stderr).toMatch(/cannot open \/mnt\/inside/);
    const both = await tsns(mode, ['enter', ...base, '-w/', '-W/', 'true']);
    expect(both.stderr.split('\n')[0]).toBe('tsns: options --wd and --wdns cannot be combined');
  });

  it('--keep-caps keeps the joined user namespace\'s capabilities across exec as a non-root uid', async () => {
    const pid = await target(mode, 'exec unshare -U --map-user=1000 --map-group=1000 sh -c \'echo $$ > PIDFILE; exec sleep 120\'');
    const caps = ['sh', '-c', 'id -u; grep -E "^Cap(Eff|Amb)" /proc/self/status | cut -f2 | tr "\\n" " "'];
    const kept = await tsns(mode, ['enter', '-t', String(pid), '-U', '--preserve-credentials', '--keep-caps', ...caps]);
    expect(kept.stderr).toBe('');
    const [uid, eff, amb] = kept.stdout.split(/\s+/);
    expect(uid).toBe('1000');
    expect(eff).toBe(amb);
    expect(BigInt(`0x${amb}`)).toBeGreaterThan(0n);
    const dropped = await tsns(mode, ['enter', '-t', String(pid), '-U', '--preserve-credentials', ...caps]);
    expect(dropped.stdout.split(/\s+/).slice(1, 3)).toEqual(['0000000000000000', '0000000000000000']);
  });
});

describe.runIf(TOOLS).each(MODES)('lsns\'s newer options, as %s', (mode: Mode) => {
  it('-H/--list-columns: the columns, their types and descriptions (text, raw, JSON)', async () => {
    const text = await tsns(mode, ['ls', '-H']);
    expect(text.stdout.split('\n').slice(0, 3)).toEqual([
      '     NS <integer> namespace identifier (inode number)',
      '   TYPE <string>  kind of namespace',
      '   PATH <string>  path to the namespace',
    ]);
    expect(text.stdout.split('\n')).toHaveLength(13);
    expect((await tsns(mode, ['ls', '-H', '-r'])).stdout.split('\n')[0]).toBe('NS <integer> namespace\\x20identifier\\x20(inode\\x20number)');
    const json = JSON.parse((await tsns(mode, ['ls', '-H', '-J'])).stdout) as { 'lsns-columns': { holder: string; type: string; description: string }[] };
    expect(json['lsns-columns'][12]).toEqual({ holder: 'ONS', type: '<integer>', description: 'owner namespace identifier (inode number)' });
  });

  it('-Q/--filter: the rows lsns -p -t would show, and and/or on one level', async () => {
    const pid = await target(mode, `exec unshare ${mode === 'user' ? '-r' : ''} -u -i sh -c 'echo $$ > PIDFILE; exec sleep 120'`);
    const cols = ['-n', '-o', 'NS,TYPE,PID,COMMAND'];
    const ours = await tsns(mode, ['ls', ...cols, '-Q', `PID == ${pid} and TYPE == "uts"`]);
    const theirs = await runAs(mode, ['lsns', ...cols, '-p', String(pid), '-t', 'uts']);
    expect(ours.stderr).toBe('');
    expect(ours.stdout).toBe(theirs.stdout);
    // (ipc or uts) and PID: both rows; a regular expression; a holder that is not shown.
    const both = await tsns(mode, ['ls', '-n', '-o', 'TYPE', '-Q', `type == "ipc" or TYPE == "uts" and PID == ${pid} && COMMAND =~ "^sleep [0-9]+$"`]);
    expect(both.stdout.split('\n').sort()).toEqual(['ipc', 'uts']);
    const bad = await tsns(mode, ['ls', '-Q', 'NS ==']);
    expect(bad.exitCode).toBe(125);
    expect(bad.stderr.split('\n')[0]).toBe('tsns: failed to parse "NS ==": syntax error, unexpected end of file');
    expect((await tsns(mode, ['ls', '-Q', 'BOGUS == 1'])).stderr.split('\n')[0]).toBe('tsns: unknown column in --filter: BOGUS');
  });
});

describe.runIf(TOOLS && IS_ROOT)('lsns -P/--persistent: namespaces that only a bind mount keeps', () => {
  it.each(MODES)('lists them with no process, as %s', async (mode) => {
    const file = join(dir, `uts-${mode}`);
    mkdirSync(dir, { recursive: true });
    expect((await tsns('root', ['run', `--uts=${file}`, '--hostname=kept', 'true'])).exitCode).toBe(0);
    try {
      const inode = String(statSync(file).ino);
      const r = await tsns(mode, ['ls', '-P', '-n', '-o', 'NS,TYPE,NPROCS,NSFS']);
      expect(r.stderr).toBe('');
      expect(r.stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toContain(`${inode} uts 0 ${file}`);
    } finally {
      await execa('umount', [file]);
    }
  });
});
