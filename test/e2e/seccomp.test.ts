/**
 * Seccomp profiles against the real kernel, as root and unprivileged: the
 * errno a command sees, argument filters, Docker's default profile and its
 * capability rules, SCMP_ACT_NOTIFY to a listening agent, profiles that
 * are refused; and the same profiles under podman + runc.
 */
import { execa, type Options, type ResultPromise } from 'execa';
import { chmodSync, closeSync, existsSync, openSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { engineProbe, rmTree } from './oci-lib';
import { allowAllFilter, hasCommand, IS_ROOT, MODES, requireFeature, ROOT, tsns, USER, type Mode } from './helpers';

const lib = createRequire(import.meta.url)(join(ROOT, 'dist', 'index.cjs')) as typeof import('../../src/index');
const DOCKER_CAPS = 'CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE'.split(' ');
const dockerCaps = ['--cap-drop', 'ALL', ...DOCKER_CAPS.flatMap((c) => ['--cap-add', c])];

let dir = '';
let probe = '';
let agent = '';
let dump = '';
const profile = (name: string) => join(dir, `${name}.json`);
const run = (mode: Mode, args: readonly string[], env: Record<string, string> = {}) => tsns(mode, ['run', ...args], { env });

const PROFILES: Record<string, unknown> = {
  mkdir: { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'], syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] },
  'mkdir-eacces': { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] },
  recent: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdirat', 'listns', 'mseal', 'statmount'], action: 'SCMP_ACT_ERRNO' }] },
  'bad-action': { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }, { names: ['getpid'], action: 'SCMP_ACT_DENY' }] },
  'bad-name': { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdri'], action: 'SCMP_ACT_ERRNO' }] },
  'bad-arch': { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AMD64'] },
  'bad-op': { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 8, op: 'SCMP_CMP_IS' }] }] },
  'notify-write': { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/none.sock', syscalls: [{ names: ['write'], action: 'SCMP_ACT_NOTIFY' }] },
};
// Written as text: 0xfedcba9876543210 is beyond what JSON.parse keeps exact.
const ARGS_PROFILE = `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
  {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [{"index": 0, "value": 4194304, "op": "SCMP_CMP_EQ"}]},
  {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 0, "value": 18364758544493064720, "op": "SCMP_CMP_EQ"}]},
  {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "args": [{"index": 1, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]}
]}`;

const notifyProfile = (socket: string) => ({
  defaultAction: 'SCMP_ACT_ALLOW', listenerPath: socket, listenerMetadata: 'from-the-test',
  syscalls: [{ names: ['getppid', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }],
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsns-seccomp-'));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'data'), { mode: 0o777 });
  chmodSync(join(dir, 'data'), 0o777);
  for (const [name, p] of Object.entries(PROFILES)) writeFileSync(profile(name), JSON.stringify(p), { mode: 0o644 });
  writeFileSync(profile('args'), ARGS_PROFILE, { mode: 0o644 });
  writeFileSync(profile('not-json'), '{"defaultAction": "SCMP_ACT_ALLOW",\n "syscalls": [}\n', { mode: 0o644 });
  writeFileSync(profile('default-exported'), JSON.stringify(lib.defaultSeccompProfile()), { mode: 0o644 });
  [probe, agent, dump] = ['sysprobe', 'seccomp-agent', 'dump-seccomp'].map((f) => join(dir, f)) as [string, string, string];
  await Promise.all([[probe, 'sysprobe.c'], [agent, 'seccomp-agent.c'], [dump, 'dump-seccomp.c']]
    .map(([out, src]) => execa('cc', ['-O2', '-o', out!, join(ROOT, 'test', 'fixtures', src!)])));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The agent (test/fixtures/seccomp-agent.c), listening once it has said so. */
async function startAgent(name: string): Promise<{ socket: string; state: string; done: ResultPromise<{ reject: false }> }> {
  const socket = join(dir, `${name}.sock`);
  const state = join(dir, `${name}.state`);
  const done = execa(agent, [socket, state], { reject: false, timeout: 30_000 });
  await new Promise<void>((resolve, reject) => {
    done.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    done.catch(reject);
  });
  return { socket, state, done };
}

describe.each(MODES)('as %s', (mode: Mode) => {
  it('a profile makes mkdir fail with exactly the errno it names; --seccomp programs stack on it', async () => {
    const target = join(dir, 'data', `made-${mode}`);
    const r = await run(mode, ['--seccomp-profile', profile('mkdir'), '--', 'sh', '-c', `mkdir ${target}; echo rc=$?; ${probe} mkdirat -100 ${target}; grep ^Seccomp /proc/self/status`]);
    expect(r.stderr).toMatch(/^mkdir: cannot create directory .*: Operation not permitted$/);
    expect(r.stdout).toBe('rc=1\n-1 EPERM\nSeccomp:\t2\nSeccomp_filters:\t1');
    expect(existsSync(target)).toBe(false);
    const eacces = await run(mode, [`--seccomp-profile=${profile('mkdir-eacces')}`, '--', probe, 'mkdirat', '-100', target]);
    expect(eacces.stdout).toBe('-1 EACCES');
    // bwrap's semantics: programs stack, the profile's first; the kernel runs them all and the strictest answer wins.
    const allowAll = join(dir, `allow-${mode}.bpf`);
    writeFileSync(allowAll, allowAllFilter(), { mode: 0o644 });
    const fd = openSync(allowAll, 'r');
    try {
      const stacked = await tsns(mode, ['run', '--seccomp-profile', profile('mkdir'), '--seccomp', '3', '--', 'sh', '-c', `grep ^Seccomp_filters /proc/self/status; ${probe} mkdirat -100 ${target}`],
        { stdio: ['ignore', 'pipe', 'pipe', fd] as Options['stdio'] });
      expect(stacked.stdout).toBe('Seccomp_filters:\t2\n-1 EPERM');
    } finally {
      closeSync(fd);
    }
    const allowed = await run(mode, ['--', probe, 'mkdirat', '-100', target]);
    expect(allowed.stdout).toBe('0 0');
    rmSync(target, { recursive: true });
  });

  it('argument filters: personality with one value refused, another allowed; 64-bit and masked values compared whole', async () => {
    const calls = [['personality', '0x400000'], ['personality', '0xffffffff'], ['getppid', '0xfedcba9876543210'], ['getppid', '0x76543210'],
      ['getpid', '0', '0x108'], ['getpid', '0', '0x109']];
    const r = await run(mode, ['--seccomp-profile', profile('args'), '--', 'sh', '-c', calls.map((c) => `${probe} ${c.join(' ')} | cut -d' ' -f2`).join('; ')]);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['EACCES', '0', 'EPERM', '0', 'EINVAL', '0']);
  });

  it("the default profile runs ordinary work and refuses what Docker's refuses, by the command's capabilities", async () => {
    const work = await run(mode, ['--seccomp-profile=default', '--', 'sh', '-c', 'ls / >/dev/null && cat /etc/passwd | head -1 && echo "$(id -u) ok"']);
    expect(work.stderr).toBe('');
    expect(work.stdout).toMatch(/^root:x:0:0:.*\n\d+ ok$/);
    // Each call with what it gets without a filter, then under the default profile (no CAP_SYS_ADMIN).
    const calls = ['unshare 0x10000000', 'keyctl 0 -1', 'add_key', 'personality 0x400000', 'socket 40 1 0', 'clone3 0 0', '457'];
    const script = calls.map((c) => `${probe} ${c} | cut -d' ' -f2`).join('; ');
    const caps = mode === 'root' ? dockerCaps : [];
    const without = await run(mode, [...caps, '--', 'sh', '-c', script]);
    const under = await run(mode, ['--seccomp-profile=default', ...caps, '--', 'sh', '-c', script]);
    expect(under.stdout.split('\n')).toEqual(['EPERM', 'EPERM', 'EPERM', 'EPERM', 'EPERM', 'ENOSYS', 'ENOSYS']);
    expect(without.stdout.split('\n').filter((e, i) => e === under.stdout.split('\n')[i])).toEqual([]);
    // With CAP_SYS_ADMIN (root's own, or root of a new user namespace) Docker's profile allows unshare.
    const admin = await run(mode, ['--seccomp-profile=default', ...(mode === 'user' ? ['-r'] : []), '--', probe, 'unshare', '0x10000000']);
    expect(admin.stdout).toBe('0 0');
  });

  it('SCMP_ACT_NOTIFY: the listener and the state go to the agent, which answers for the command', async () => {
    // The command as tsns's child, and behind an init in a pid namespace of its own.
    const layouts = [[], [...(mode === 'user' ? ['-r'] : []), '--pid', '--init']];
    for (const [i, layout] of layouts.entries()) {
      const a = await startAgent(`agent-${mode}-${i}`);
      writeFileSync(profile(`notify-${mode}`), JSON.stringify(notifyProfile(a.socket)), { mode: 0o644 });
      const target = join(dir, 'data', `notified-${mode}`);
      const r = await run(mode, [...layout, `--seccomp-profile=${profile(`notify-${mode}`)}`, '--', 'sh', '-c',
        `${probe} getppid 7; ${probe} mkdirat -100 ${target}; ${probe} getppid 0 | cut -d' ' -f2`]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('4242 0\n-1 EROFS\n0');
      expect(existsSync(target)).toBe(false);
      const agentRun = await a.done;
      expect(agentRun.exitCode).toBe(0);
      const state = JSON.parse(readFileSync(a.state, 'utf8'));
      expect(state).toMatchObject({ fds: ['seccompFd'], metadata: 'from-the-test', state: { status: 'creating', id: `tsns-${state.pid}`, pid: state.pid } });
      // The agent saw the notifications come from the pid the state names (the command's, in the agent's pid namespace).
      const pids = String(agentRun.stdout).split('\n').slice(1).map((l) => Number(l.split(' ')[1]));
      expect(pids.length).toBeGreaterThanOrEqual(3);
      expect(pids).toContain(state.pid);
    }
    const gone = await run(mode, [`--seccomp-profile=${profile(`notify-${mode}`)}`, 'true']);
    expect([gone.exitCode, gone.stderr]).toEqual([125,
      `tsns: cannot connect to the seccomp agent at ${join(dir, `agent-${mode}-1.sock`)}: Connection refused (ECONNREFUSED)\nhint: start the agent first: it must listen on that unix socket (listenerPath)`]);
  });

  it('bad profiles: the value and its JSON path, exit 125, nothing run', async () => {
    const marker = join(dir, 'data', `ran-${mode}`);
    const cases: [string, string][] = [
      ['bad-action', 'syscalls[1].action: unknown action "SCMP_ACT_DENY"\nhint: actions: SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_LOG, SCMP_ACT_ALLOW, SCMP_ACT_NOTIFY'],
      ['bad-name', 'syscalls[0].names[1]: unknown system call "mkdri"\nhint: neither libseccomp'],
      ['bad-arch', 'architectures[1]: unknown architecture "SCMP_ARCH_AMD64"\nhint: architectures: SCMP_ARCH_X86, SCMP_ARCH_X86_64'],
      ['bad-op', 'syscalls[0].args[0].op: unknown operator "SCMP_CMP_IS"\nhint: operators: SCMP_CMP_NE'],
      ['not-json', "not JSON: unexpected '}' at line 2 column 15"],
      ['notify-write', 'syscalls[0].names[0]: SCMP_ACT_NOTIFY cannot be used for write\nhint: tsns itself calls write'],
    ];
    for (const [name, text] of cases) {
      const r = await run(mode, [`--seccomp-profile=${profile(name)}`, '--', 'touch', marker]);
      expect([name, r.exitCode]).toEqual([name, 125]);
      expect(r.stderr.startsWith(`tsns: invalid seccomp profile ${profile(name)}: ${text}`), r.stderr).toBe(true);
    }
    const missing = await run(mode, ['--seccomp-profile=/no/such.json', '--', 'touch', marker]);
    expect([missing.exitCode, missing.stderr]).toEqual([125,
      "tsns: cannot read the seccomp profile /no/such.json: No such file or directory (ENOENT)\nhint: give a profile file (JSON), or 'default' for the built-in one"]);
    expect(existsSync(marker)).toBe(false);
  });

  it('a name newer than libseccomp is skipped, and TSNS_DEBUG says so; --dry-run says what the profile does', async () => {
    const plan = await run(mode, [`--seccomp-profile=${profile('recent')}`, '--dry-run', '--json', 'true']);
    const skipped: string[] = JSON.parse(plan.stdout).seccompProfile.skipped;
    const r = await run(mode, [`--seccomp-profile=${profile('recent')}`, '--', probe, 'mkdirat', '-100', join(dir, 'data', 'x')], { TSNS_DEBUG: '1' });
    expect(r.stdout).toBe('-1 EPERM');
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toEqual(skipped.map((n) => expect.stringMatching(new RegExp(`^tsns: seccomp: ${n} \\(syscalls\\[0\\]\\.names\\[\\d\\]\\) is unknown to libseccomp [\\d.]+: skipped$`))));
    const text = await run(mode, ['--seccomp-profile=default', '--dry-run', 'true']);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/^seccomp: {4}profile default: default SCMP_ACT_ERRNO \(EPERM\), \d+ rules on \d+ system calls, architectures SCMP_ARCH_X86_64 SCMP_ARCH_X86 SCMP_ARCH_X32$/m);
  });

  it('a run without a profile loads neither libseccomp nor the compiler', async () => {
    const staged = mode === 'user' && IS_ROOT;
    const code = `const tsns = require(${JSON.stringify(join(staged ? inject('stagedRoot') : ROOT, 'dist', 'index.cjs'))});
      const maps = () => require('node:fs').readFileSync('/proc/self/maps', 'utf8');
      (async () => {
        await tsns.run(['true']);
        const plain = /libseccomp|libtsns-seccomp/.test(maps());
        await tsns.run(['true'], { seccompProfile: 'default' });
        console.log(JSON.stringify({ plain, profile: /libseccomp\\.so/.test(maps()) && /libtsns-seccomp/.test(maps()) }));
      })();`;
    const setpriv = staged ? ['setpriv', `--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--'] : [];
    const [file, ...args] = [...setpriv, process.execPath, '-e', code];
    const r = await execa(file!, args, { cwd: '/', reject: false });
    expect(r.stderr).toBe('');
    expect(JSON.parse(String(r.stdout))).toEqual({ plain: false, profile: true });
  });
});

/** podman with runc, on a store of its own (the machine's containers are left alone) and a busybox root. */
function podmanSetup(w = join(dir, 'podman')): { podman: (args: string[]) => ReturnType<typeof execa>; rootfs: string } {
  const rootfs = join(w, 'rootfs');
  for (const d of ['bin', 'tmp', 'proc', 'dev', 'sys', 'etc']) mkdirSync(join(rootfs, d), { recursive: true });
  writeFileSync(join(rootfs, 'bin', 'busybox'), readFileSync('/bin/busybox'), { mode: 0o755 });
  // Root lacks CAP_SYS_RESOURCE here: no default ulimits. This containers.conf replaces the system one, so the
  // container gets podman's built-in capabilities: Docker's 14.
  writeFileSync(join(w, 'containers.conf'), '[containers]\ndefault_ulimits = []\n');
  // vfs: the overlay driver cannot stack on an overlay root (podman nested in a container), and --rootfs needs no layers.
  const podman = (args: string[]) => execa('podman', ['--root', join(w, 'storage'), '--runroot', join(w, 'runroot'), '--storage-driver', 'vfs', '--runtime', '/usr/sbin/runc', ...args],
    { reject: false, env: { CONTAINERS_CONF: join(w, 'containers.conf') }, timeout: 60_000 });
  return { podman, rootfs };
}

/** busybox's applets as relative links (its --install's absolute ones break inside a container). */
async function linkApplets(rootfs: string): Promise<void> {
  const applets = (await execa('/bin/busybox', ['--list'])).stdout.split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(rootfs, 'bin', a));
}

const podmanUsable = IS_ROOT && hasCommand('podman') && existsSync('/usr/sbin/runc') && existsSync('/bin/busybox');
// Nested in a container, podman may not run even runc's containers: then it says why, and the comparison skips.
const podmanCannot = podmanUsable ? await engineProbe('podman', async () => {
  const w = mkdtempSync(join(tmpdir(), 'tsns-seccomp-probe-'));
  try {
    const pm = podmanSetup(w);
    await linkApplets(pm.rootfs);
    const r = await pm.podman(['run', '--rm', '--network', 'none', '--rootfs', pm.rootfs, '/bin/true']);
    await pm.podman(['rm', '-a', '-f', '-t', '0']);
    return r;
  } finally {
    rmTree(w);
  }
}) : null;

// podman + runc as root only: rootless podman needs a home and subordinate ids that 65534 lacks.
describe.runIf(IS_ROOT && requireFeature(podmanUsable, 'podman, runc and busybox-static for the comparison (Debian: apt-get install podman runc busybox-static)') && !podmanCannot)('compared with podman + runc (as root)', () => {
  let pm: ReturnType<typeof podmanSetup>;
  beforeAll(async () => {
    pm = podmanSetup();
    await linkApplets(pm.rootfs);
  });
  afterAll(async () => {
    await pm?.podman(['rm', '-a', '-f', '-t', '0']);
  });

  const inPodman = (prof: string, cmd: string[]) => pm.podman(['run', '--rm', '--network', 'none', '--security-opt', `seccomp=${prof}`, '--rootfs', pm.rootfs, ...cmd]);

  it('the same profile does the same: mkdir refused, unshare refused by the default', async () => {
    const script = 'mkdir /tmp/x; echo mkdir=$?; unshare -U true 2>/dev/null; echo unshare=$?';
    for (const name of ['mkdir', 'default-exported']) {
      const theirs = await inPodman(profile(name), ['/bin/sh', '-c', script]);
      const ours = await run('root', [`--seccomp-profile=${profile(name)}`, ...dockerCaps, '--', join(pm.rootfs, 'bin', 'sh'), '-c', script.replaceAll('/tmp/x', join(dir, 'data', `cmp-${name}`))]);
      expect([name, ours.stdout]).toEqual([name, String(theirs.stdout)]);
    }
  });

  it('loads the same program as runc for the same profile and capabilities', async () => {
    for (const name of ['mkdir', 'default-exported']) {
      const started = await pm.podman(['run', '-d', '--network', 'none', '--security-opt', `seccomp=${profile(name)}`, '--rootfs', pm.rootfs, '/bin/sleep', '30']);
      expect([started.exitCode, String(started.stderr)]).toEqual([0, '']);
      const id = String(started.stdout).trim();
      const pid = String((await pm.podman(['inspect', '--format', '{{.State.Pid}}', id])).stdout).trim();
      const theirs = join(dir, `runc-${name}.bpf`);
      expect((await execa(dump, [pid, theirs])).exitCode).toBe(0);
      await pm.podman(['rm', '-f', '-t', '0', id]);

      const ours = join(dir, `tsns-${name}.bpf`);
      let commandPid = 0;
      const running = lib.run(['sleep', '30'], {
        seccompProfile: profile(name), capDrop: ['ALL'], capAdd: DOCKER_CAPS, onStart: (p) => (commandPid = p),
      });
      await execa(dump, [String(commandPid), ours]);
      process.kill(commandPid, 'SIGKILL');
      await running;
      const [a, b] = [readFileSync(theirs), readFileSync(ours)];
      // runc orders its ENOSYS stub's architectures as a Go map iterates (at random): the rest must be the same, byte for byte.
      expect([name, b.length, stubLength(b)]).toEqual([name, a.length, stubLength(a)]);
      expect(b.subarray(stubLength(b)).equals(a.subarray(stubLength(a))), name).toBe(true);
    }
  });
});

/** Where libseccomp's program starts after runc's stub: the stub ends with `ret ENOSYS` (0x00050026). */
function stubLength(prog: Buffer): number {
  if (prog.readUInt16LE(0) !== 0x20 || prog.readUInt32LE(4) !== 4) return 0;
  for (let i = 0; i < Math.min(prog.length / 8, 64); i++) {
    if (prog.readUInt16LE(i * 8) === 0x06 && prog.readUInt32LE(i * 8 + 4) === 0x00050026) return (i + 1) * 8;
  }
  return 0;
}
