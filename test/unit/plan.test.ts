import { describe, expect, it } from 'vitest';
import { TsnsError } from '../../src/errors';
import type { PlanContext } from '../../src/context';
import { describePlan, planToJson } from '../../src/plan/describe';
import { makePlan, type RunOptions } from '../../src/plan/run';

const user: PlanContext = {
  uid: 1000,
  gid: 1001,
  privileged: false,
  env: { SHELL: '/bin/bash' },
  lookupUser: (n) => (n === 'alice' ? 1500 : undefined),
  lookupGroup: (n) => (n === 'staff' ? 50 : undefined),
  subordinateIds: () => [{ start: 100000, count: 65536 }],
  signalNumber: (n) => ({ SIGKILL: 9, SIGTERM: 15, TERM: 15 })[n],
  cwd: '/home/u',
  lstat: (p) => (p === '/bin' || p === '/lib' ? { kind: 'symlink', target: `usr${p}` } : ['/usr', '/etc'].includes(p) ? { kind: 'dir' } : null),
  readFd: (fd) => {
    if (fd === 7) return new Uint8Array(16);
    throw new TsnsError(`cannot read a seccomp program from fd ${fd}: Bad file descriptor (EBADF)`, { stage: 'option' });
  },
};
const root: PlanContext = { ...user, uid: 0, gid: 0, privileged: true };

const plan = (opts: RunOptions, ctx = user, cmd = ['true']) => makePlan(cmd, opts, ctx);

function planError(fn: () => unknown): TsnsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TsnsError);
    return e as TsnsError;
  }
  throw new Error('expected a TsnsError');
}

describe('makePlan', () => {
  it('turns namespace options into clone flags, in table order', () => {
    const p = plan({ uts: true, pid: true, user: true });
    expect(p.namespaces).toEqual(['uts', 'pid', 'user']);
    expect(p.cloneFlags).toBe(0x34000000);
    expect(p.cloneFlagNames).toEqual(['CLONE_NEWPID', 'CLONE_NEWUSER', 'CLONE_NEWUTS']);
  });

  it('--all is every namespace', () => {
    // clone(2) cannot make a time namespace: the child unshares it with the pid
    // namespace and forks, so the command is PID 1 in both.
    expect(plan({ all: true }).cloneFlags).toBe(0x5e020000);
    expect(plan({ all: true }).unshareFlagNames).toEqual(['CLONE_NEWPID', 'CLONE_NEWTIME']);
    expect(plan({ all: true }).supervisor).toBe('time');
  });

  it('no namespaces is a plain child', () => {
    const p = plan({});
    expect(p.cloneFlags).toBe(0);
    expect(p.mounts).toEqual([]);
  });

  it('--map-root-user maps the caller to 0 and denies setgroups when unprivileged', () => {
    const p = plan({ mapRootUser: true });
    expect(p.namespaces).toEqual(['user']);
    expect(p.uidMap).toEqual([{ inner: 0, outer: 1000, count: 1 }]);
    expect(p.gidMap).toEqual([{ inner: 0, outer: 1001, count: 1 }]);
    expect(p.setgroups).toBe('deny');
  });

  it('as root too, a single mapped gid denies setgroups, as util-linux does; a --map-groups range leaves it', () => {
    const p = plan({ mapRootUser: true }, root);
    expect(p.uidMap).toEqual([{ inner: 0, outer: 0, count: 1 }]);
    expect(p.setgroups).toBe('deny');
    expect(plan({ mapCurrentUser: true }, root).setgroups).toBe('deny');
    expect(plan({ mapGroup: 5 }, root).setgroups).toBe('deny');
    expect(plan({ mapUser: 5 }, root).setgroups).toBeNull();
    expect(plan({ mapRootUser: true, mapGroups: ['1:100000:10'] }, root).setgroups).toBeNull();
    expect(plan({ mapRootUser: true, mapGroups: ['1:100000:10'], setgroups: 'deny' }, root).setgroups).toBe('deny');
  });

  it('--map-users takes auto, subids and all, and a single id makes a hole in the ranges, as util-linux 2.39+ does', () => {
    const own = (kind: 'uid' | 'gid') => (kind === 'uid' ? [{ inner: 0, outer: 0, count: 4294967295 }] : [{ inner: 0, outer: 0, count: 4294967295 }]);
    const r = { ...root, ownIdMap: own, subordinateIds: () => [{ start: 100000, count: 65536 }] };
    expect(plan({ mapUsers: ['all'], mapRootUser: true }, r).uidMap).toEqual([{ inner: 0, outer: 0, count: 1 }, { inner: 1, outer: 1, count: 4294967294 }]);
    expect(plan({ mapUsers: ['all'], mapGroups: ['all'] }, r).gidMap).toEqual([{ inner: 0, outer: 0, count: 4294967295 }]);
    // unshare --map-users=5:100000:10 --map-user=7, as root
    expect(plan({ mapUsers: ['5:100000:10'], mapUser: 7 }, r).uidMap).toEqual([
      { inner: 7, outer: 0, count: 1 }, { inner: 5, outer: 100000, count: 2 }, { inner: 8, outer: 100002, count: 7 }]);
    // ranges keep their order; the one that holds inner 0 gives one id up
    expect(plan({ mapUsers: ['5:100000:10', '0:200000:3'], mapRootUser: true }, r).uidMap).toEqual([
      { inner: 0, outer: 0, count: 1 }, { inner: 5, outer: 100000, count: 10 }, { inner: 1, outer: 200000, count: 2 }]);
    expect(plan({ mapUsers: ['subids'] }, r).uidMap).toEqual([{ inner: 100000, outer: 100000, count: 65536 }]);
    expect(plan({ mapUsers: ['auto'], mapRootUser: true }, user).uidMap).toEqual([{ inner: 0, outer: 1000, count: 1 }, { inner: 1, outer: 100000, count: 65535 }]);
    expect(plan({ mapAuto: true }, user).uidMap).toEqual([{ inner: 0, outer: 100000, count: 65536 }]);
  });

  it('--map-current-user maps the caller to itself', () => {
    const p = plan({ mapCurrentUser: true });
    expect(p.uidMap).toEqual([{ inner: 1000, outer: 1000, count: 1 }]);
    expect(p.gidMap).toEqual([{ inner: 1001, outer: 1001, count: 1 }]);
  });

  it('--map-user/--map-group take numbers or names; the last word wins', () => {
    const p = plan({ mapRootUser: true, mapUser: 'alice', mapGroup: 'staff' });
    expect(p.uidMap).toEqual([{ inner: 1500, outer: 1000, count: 1 }]);
    expect(p.gidMap).toEqual([{ inner: 50, outer: 1001, count: 1 }]);
    expect(plan({ mapUser: '42' }).uidMap).toEqual([{ inner: 42, outer: 1000, count: 1 }]);
    expect(plan({ mapUser: 42 }).gidMap).toBeNull();
  });

  it('refuses an unknown user or group by name', () => {
    expect(planError(() => plan({ mapUser: 'mallory' })).message).toBe("no such user: 'mallory'");
    expect(planError(() => plan({ mapGroup: 'nogroup-x' })).message).toBe("no such group: 'nogroup-x'");
  });

  it('refuses --setgroups=allow with an unprivileged gid map, and --setgroups without a user namespace', () => {
    expect(planError(() => plan({ mapRootUser: true, setgroups: 'allow' })).stage).toBe('plan');
    expect(plan({ mapRootUser: true, setgroups: 'allow' }, root).setgroups).toBe('allow');
    expect(planError(() => plan({ setgroups: 'deny' })).message).toBe('--setgroups needs a new user namespace');
  });

  it('--hostname and --domainname imply --uts and are checked like the kernel does', () => {
    expect(plan({ hostname: 'demo' }).namespaces).toEqual(['uts']);
    expect(plan({ domainname: 'd' }).namespaces).toEqual(['uts']);
    expect(plan({ hostname: 'x'.repeat(64) }).hostname).toHaveLength(64);
    expect(planError(() => plan({ hostname: 'x'.repeat(65) })).message).toMatch(/longer than 64 bytes/);
    expect(planError(() => plan({ hostname: 'ü'.repeat(33) })).message).toMatch(/longer than 64 bytes/);
    expect(planError(() => plan({ hostname: 'a\0b' })).message).toMatch(/NUL/);
  });

  it('--mount-proc implies --mount, makes / private first, then mounts proc', () => {
    const p = plan({ pid: true, mountProc: true });
    expect(p.namespaces).toEqual(['mount', 'pid']);
    expect(p.procDir).toBe('/proc');
    expect(p.mounts.map((m) => m.kind)).toEqual(['propagation', 'proc']);
    expect(p.propagation).toBe('private');
    expect(plan({ mountProc: '/mnt/proc' }).procDir).toBe('/mnt/proc');
  });

  it('--propagation needs --mount; unchanged adds no mount', () => {
    expect(plan({ mount: true, propagation: 'slave' }).propagation).toBe('slave');
    expect(plan({ mount: true, propagation: 'unchanged' }).mounts).toEqual([]);
    expect(planError(() => plan({ propagation: 'shared' })).message).toBe('--propagation needs a new mount namespace');
  });

  it('no command runs $SHELL as a login shell, else /bin/sh', () => {
    const p = plan({}, user, []);
    expect(p).toMatchObject({ file: '/bin/bash', argv: ['-bash'], loginShell: true });
    expect(makePlan([], {}, { ...user, env: {} })).toMatchObject({ file: '/bin/sh', argv: ['-sh'] });
  });

  it('the command is taken as given', () => {
    expect(plan({}, user, ['ls', '-la', '--uts'])).toMatchObject({ file: 'ls', argv: ['ls', '-la', '--uts'], loginShell: false });
  });
});

describe('sandbox', () => {
  it('a sandbox filesystem implies a mount namespace, the caller\'s own ids in a user namespace, no new privileges, no capabilities', () => {
    const p = plan({ filesystem: [{ op: 'ro-bind', src: 'lib' }, { op: 'tmpfs', dest: '/tmp' }] });
    expect(p.namespaces).toEqual(['mount', 'user']);
    expect(p.uidMap).toEqual([{ inner: 1000, outer: 1000, count: 1 }]);
    expect(p.filesystem).toEqual([{ op: 'ro-bind', src: '/home/u/lib', dest: '/home/u/lib' }, { op: 'tmpfs', dest: '/tmp' }]);
    expect(p).toMatchObject({ noNewPrivs: true, capKeep: '0' });
  });

  it('--cap-drop/--cap-add compute the kept set', () => {
    expect(plan({ capDrop: ['ALL'], capAdd: ['net_raw'] }).capKeep).toBe(String(1n << 13n));
    expect(BigInt(plan({ capDrop: ['CAP_SYS_ADMIN'] }).capKeep!) & (1n << 21n)).toBe(0n);
    expect(plan({}).capKeep).toBeNull();
    expect(planError(() => plan({ capDrop: ['CAP_NOPE'] })).message).toBe("unknown capability 'CAP_NOPE'");
  });

  it('--sandbox is the profile: symlinks as the host has them, read-only system, fresh /tmp and $HOME', () => {
    const p = plan({ sandbox: true }, { ...user, env: { HOME: '/home/u' } });
    expect(p.namespaces).toEqual(['mount', 'uts', 'ipc', 'net', 'pid', 'user', 'cgroup']);
    expect(p.filesystem.map((o) => o.op === 'symlink' ? `symlink ${o.target}:${o.dest}` : `${o.op} ${'dest' in o ? o.dest : ''}`)).toEqual([
      'ro-bind /usr', 'symlink usr/bin:/bin', 'symlink usr/lib:/lib', 'ro-bind /etc', 'tmpfs /tmp', 'tmpfs /home/u', 'dev /dev', 'proc /proc',
    ]);
    expect(p).toMatchObject({ newSession: true, noNewPrivs: true, capKeep: '0', loUp: true });
  });

  it('--unshare-all and --share-net', () => {
    expect(plan({ unshareAll: true, shareNet: true }).namespaces).toEqual(['uts', 'ipc', 'pid', 'user', 'cgroup']);
  });

  it('seccomp programs: bytes or an fd read through the context, whole 8-byte instructions, no new privileges', () => {
    const p = plan({ seccomp: [new Uint8Array([6, 0, 0, 0, 0, 0, 0xff, 0x7f]), 7] });
    expect(p.seccomp).toEqual([{ instructions: 1, hex: '060000000000ff7f' }, { instructions: 2, hex: '00'.repeat(16) }]);
    expect(p.noNewPrivs).toBe(true);
    expect(plan({ seccomp: [new Uint8Array(8)], noNewPrivs: false }).noNewPrivs).toBe(false);
    const odd = planError(() => plan({ seccomp: [new Uint8Array(8), new Uint8Array(9)] }));
    expect(odd.message).toBe('seccomp program 2 is 9 bytes: not 1 to 4096 8-byte BPF instructions');
    expect(odd.hint).toMatch(/seccomp_export_bpf/);
    expect(planError(() => plan({ seccomp: [new Uint8Array(8 * 4097)] })).message).toMatch(/^seccomp program 1 is 32776 bytes/);
    expect(planError(() => plan({ seccomp: [9] })).message).toMatch(/fd 9: Bad file descriptor/);
    expect(describePlan(p)).toContain('seccomp:    2 programs of 1, 2 instructions, loaded in that order just before exec\n');
    expect(describePlan(plan({ seccomp: [new Uint8Array(8)] }))).toContain('seccomp:    a program of 1 instruction, loaded just before exec\n');
    expect(planToJson(p).seccomp).toEqual([1, 2]);
  });

  it('refuses what cannot go together, and relative destinations', () => {
    expect(planError(() => plan({ filesystem: [{ op: 'tmpfs', dest: '/t' }], root: '/srv' })).message).toMatch(/--root cannot be combined/);
    expect(planError(() => plan({ filesystem: [{ op: 'tmpfs', dest: 't' }] })).message).toMatch(/absolute path/);
  });
});

describe('describePlan', () => {
  it('prints flags in hex with names, the maps, mounts and the command', () => {
    const text = describePlan(plan({ uts: true, pid: true, mapRootUser: true, mountProc: true, hostname: 'h' }, user, ['sh', '-c', 'echo hi']));
    expect(text).toBe(
      [
        'namespaces: mount uts pid user',
        'clone:      0x34020000 CLONE_NEWPID|CLONE_NEWUSER|CLONE_NEWUTS|CLONE_NEWNS',
        'uid_map:    0 1000 1',
        'gid_map:    0 1001 1',
        'setgroups:  deny',
        'hostname:   h',
        'mount:      make / recursively private',
        'mount:      mount proc on /proc (nosuid,nodev,noexec)',
        "command:    sh -c 'echo hi'",
        '',
      ].join('\n'),
    );
  });
});
