/**
 * `tsns run` with cgroup limits, against the kernel: the limits read back
 * from the host's cgroup files while the command runs, a fork bomb stopped
 * by --pids-limit, an allocation past --memory killed and reported, a
 * cgroup namespace rooted at the command's cgroup, the cgroup removed on
 * every path (normal end, signal, tsns killed, a failed start), bad values
 * refused before anything is made; without root, a clear refusal and
 * --cgroup-optional, and limits in a delegated cgroup v2 subtree. Every
 * test walks all hierarchies afterwards: nothing of it is left.
 */
import { execa } from 'execa';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { CI, IS_ROOT, MODES, requireFeature, ROOT, USER, type Mode } from './helpers';
import { hostFile, LAYOUT, leftovers, onThisLayout, outputMatching, ownPrefix, parseCgroupFile, pathIn, readHost, startTsns, visiblePath, BLKIO_WEIGHT } from './cgroup-lib';

const started: number[] = [];

async function tsnsRun(mode: Mode, args: readonly string[], opts = {}) {
  const p = startTsns(mode, ['run', ...args], opts);
  if (p.pid) started.push(p.pid);
  const r = await p;
  return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode, signal: r.signal };
}

afterEach(() => {
  // Nothing any tsns of this test made is left, in any hierarchy.
  expect(leftovers(started)).toEqual([]);
  started.length = 0;
});

beforeAll(() => {
  requireFeature(LAYOUT.mode !== 'none', 'a mounted cgroup filesystem');
});

/** A path as a regular expression's literal text. */
const re = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const onV1 = (c: string) => LAYOUT.hierarchies.some((h) => h.version === 1 && h.controllers.includes(c));

describe.each(MODES)('cgroup limits as %s', (mode: Mode) => {
  const r = (args: readonly string[]) => (mode === 'user' ? ['-r', ...args] : [...args]);

  it('bad values are refused with exit 125, before anything is made', async () => {
    const cases: [string[], RegExp][] = [
      [['--memory=bogus'], /^tsns: --memory: invalid size 'bogus'\nhint: /],
      [['--memory=-5m'], /--memory: invalid size '-5m'/],
      [['--pids-limit=-7'], /--pids-limit: '-7' is negative/],
      [['--cpus=64'], /range of CPUs is from 0.01 to \d+\.00, as there are only \d+ CPUs available/],
      [['--cpuset-cpus=77'], /requested CPUs are not available - requested 77, available: /],
      [['--memory=100t'], /more than this machine's memory/],
      [['--memory=10m', '--memory-swap=5m'], /minimum memoryswap limit should be larger than memory limit/],
      [['--cpu-period=10'], /CPU cfs period cannot be less than 1ms/],
      [['--cgroup-path=/x', '--memory=10m'], /--cgroup-path joins an existing cgroup as it is/],
      [['--cgroup-parent=system.slice:tsns:x'], /systemd not running on this host, cannot use systemd cgroups manager/],
    ];
    for (const [args, message] of cases) {
      const res = await tsnsRun(mode, r([...args, 'true']));
      expect(res.exitCode, args.join(' ')).toBe(125);
      expect(res.stderr, args.join(' ')).toMatch(message);
      expect(res.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    }
  });

  it('--dry-run prints the cgroup, its files and values, and makes nothing', async () => {
    const res = await tsnsRun(mode, r(['--dry-run', '--memory=50m', '--pids-limit=20', 'true']));
    expect(res.exitCode).toBe(0);
    expect(res.stdout).toMatch(/^cgroup: +tsns-\d+-0, new under the caller's own cgroups; removed when the command ends$/m);
    if (onV1('memory')) expect(res.stdout).toMatch(/^ +memory\.limit_in_bytes = 52428800$/m);
    expect(res.stdout).toMatch(/^ +pids\.max = 20$/m);
    expect(res.stdout).toMatch(/^ +placement: /m);
    const json = JSON.parse((await tsnsRun(mode, r(['--dry-run', '--json', '--pids-limit=20', 'true']))).stdout);
    expect(json.cgroup.plan.writes).toContainEqual(expect.objectContaining({ controller: 'pids', file: 'pids.max', value: '20' }));
  });

  if (mode === 'user') {
    it('without root and without a delegated cgroup: one line says why, and --cgroup-optional runs without limits', async () => {
      const res = await tsnsRun(mode, ['-r', '--pids-limit=10', 'true']);
      expect(res.exitCode).toBe(125);
      expect(res.stderr).toMatch(/^tsns: cannot create the cgroup \S+: Permission denied \(EACCES\)\nhint: .*--cgroup-optional runs the command without limits/);
      if (onV1('pids')) expect(res.stderr).toMatch(/on cgroup v1 only root can make cgroups/);
      const opt = await tsnsRun(mode, ['-r', '--pids-limit=10', '--cgroup-optional', 'sh', '-c', 'echo ran']);
      expect(opt.exitCode).toBe(0);
      expect(opt.stdout).toBe('ran');
      expect(opt.stderr).toMatch(/^tsns: warning: running without cgroup limits: cannot create the cgroup .*Permission denied \(EACCES\)$/);
    });
    return;
  }

  it('the running command\'s limits read back from the host\'s cgroup files', async () => {
    const p = startTsns(mode, ['run', '--memory=50m', '--memory-swap=100m', '--memory-reservation=40m', '--pids-limit=20',
      '--cpus=0.5', '--cpu-shares=512', '--cpuset-cpus=0', '--cpuset-mems=0', ...(BLKIO_WEIGHT ? [`--blkio-weight=${BLKIO_WEIGHT}`] : []),
      'sh', '-c', 'cat /proc/self/cgroup; echo ready; read x'], { stdin: 'pipe' });
    started.push(p.pid!);
    const cg = parseCgroupFile((await outputMatching(p, /ready\n/)).replace('ready\n', ''));
    try {
      expect(cg.pids).toMatch(new RegExp(`/tsns-${p.pid}-0$`));
      expect(readHost(cg, 'pids', 'pids.max')).toBe('20');
      if (onV1('memory')) {
        expect(readHost(cg, 'memory', 'memory.limit_in_bytes')).toBe('52428800');
        expect(readHost(cg, 'memory', 'memory.memsw.limit_in_bytes')).toBe('104857600');
        expect(readHost(cg, 'memory', 'memory.soft_limit_in_bytes')).toBe('41943040');
      } else {
        expect(readHost(cg, 'memory', 'memory.max')).toBe('52428800');
        expect(readHost(cg, 'memory', 'memory.swap.max')).toBe('52428800');
        expect(readHost(cg, 'memory', 'memory.low')).toBe('41943040');
      }
      if (onV1('cpu')) {
        expect([readHost(cg, 'cpu', 'cpu.cfs_quota_us'), readHost(cg, 'cpu', 'cpu.cfs_period_us'), readHost(cg, 'cpu', 'cpu.shares')]).toEqual(['50000', '100000', '512']);
      } else {
        expect([readHost(cg, 'cpu', 'cpu.max'), readHost(cg, 'cpu', 'cpu.weight')]).toEqual(['50000 100000', '59']);
      }
      expect([readHost(cg, 'cpuset', 'cpuset.cpus'), readHost(cg, 'cpuset', 'cpuset.mems')]).toEqual(['0', '0']);
      const weight = onV1('blkio') ? (existsSync(hostFile(cg, 'blkio', 'blkio.weight')) ? 'blkio.weight' : 'blkio.bfq.weight') : 'io.bfq.weight';
      if (BLKIO_WEIGHT) expect(readHost(cg, onV1('blkio') ? 'blkio' : 'io', weight)).toMatch(/^(default )?300$/);
      if (LAYOUT.v2) expect(cg['']).toMatch(new RegExp(`/tsns-${p.pid}-0$`));
    } finally {
      p.stdin!.end('\n');
    }
    const res = await p;
    expect(res.exitCode).toBe(0);
    expect(existsSync(hostFile(cg, 'pids', ''))).toBe(false);
  });

  it('a fork bomb is stopped by --pids-limit, and what it forked is killed when the command ends', async () => {
    const res = await tsnsRun(mode, ['--pids-limit=20', 'sh', '-c', 'for i in $(seq 200); do sleep 613 & done; wait']);
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toMatch(/Cannot fork|Resource temporarily unavailable/);
    const sleepers = await execa('pgrep', ['-x', '-f', 'sleep 613'], { reject: false });
    expect(String(sleepers.stdout)).toBe('');
  });

  it('an allocation past --memory is killed, reported, and ends tsns as the kernel ended the command', async () => {
    // tail keeps everything it reads from /dev/zero, which has no newline.
    const res = await tsnsRun(mode, ['--memory=32m', '--memory-swap=32m', 'tail', '/dev/zero']);
    expect(res.signal).toBe('SIGKILL');
    expect(res.stderr).toMatch(/^tsns: killed by the memory limit \(oom_kill 1\)$/m);
    const child = await tsnsRun(mode, ['--memory=32m', '--memory-swap=32m', 'sh', '-c', 'tail /dev/zero; echo "tail: $?"']);
    expect(child.exitCode).toBe(0);
    expect(child.stdout).toBe('tail: 137');
    expect(child.stderr).toMatch(/^tsns: the memory limit killed a process of the command \(oom_kill 1\)$/m);
  });

  it('exit codes, signals and a failed exec all leave nothing behind', async () => {
    expect((await tsnsRun(mode, ['--pids-limit=10', 'sh', '-c', 'exit 7'])).exitCode).toBe(7);
    expect((await tsnsRun(mode, ['--pids-limit=10', 'sh', '-c', 'kill -TERM $$'])).signal).toBe('SIGTERM');
    const missing = await tsnsRun(mode, ['--pids-limit=10', '/nonexistent/command']);
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toMatch(/^tsns: failed to execute \/nonexistent\/command: No such file or directory \(ENOENT\)$/m);
  });

  it('a new cgroup namespace is rooted at the command\'s cgroup, in every namespace layout', async () => {
    for (const extra of [[], ['--pid'], ['--init'], ['--monotonic=5'], ['-r']]) {
      const res = await tsnsRun(mode, [...extra, '--cgroup', '--pids-limit=10', 'cat', '/proc/self/cgroup']);
      expect(res.exitCode, extra.join(' ')).toBe(0);
      const cg = parseCgroupFile(res.stdout);
      expect(cg.pids, extra.join(' ')).toBe('/');
      if (LAYOUT.v2) expect(cg[''], extra.join(' ')).toBe('/');
    }
  });

  it('--init, a time namespace and a user namespace: the command is in its cgroup too', async () => {
    for (const extra of [['--init'], ['--boottime=100'], ['-r', '--pid', '--mount-proc']]) {
      const res = await tsnsRun(mode, [...extra, '--pids-limit=10', 'cat', '/proc/self/cgroup']);
      expect(parseCgroupFile(res.stdout).pids, extra.join(' ')).toMatch(/\/tsns-\d+-0$/);
    }
  });

  it('--cgroup-parent makes the levels it needs and removes the ones it made', async () => {
    const parent = `tsns-e2e-parent-${process.pid}`;
    const res = await tsnsRun(mode, [`--cgroup-parent=${parent}/inner`, '--pids-limit=10', 'cat', '/proc/self/cgroup']);
    expect(res.stderr).toBe('');
    expect(pathIn(parseCgroupFile(res.stdout), 'pids')).toMatch(new RegExp(`^${re(ownPrefix('pids'))}/${parent}/inner/tsns-\\d+-0$`));
    expect(leftovers([], [parent])).toEqual([]);
    // Absolute: from the root of what is mounted (a container may see only its own subtree of the host's).
    const abs = await tsnsRun(mode, [`--cgroup-parent=${visiblePath(parent)}`, '--pids-limit=10', 'cat', '/proc/self/cgroup']);
    expect(abs.stderr).toBe('');
    expect(pathIn(parseCgroupFile(abs.stdout), 'pids')).toMatch(new RegExp(`^${re(visiblePath(parent))}/tsns-\\d+-0$`));
    expect(leftovers([], [parent])).toEqual([]);
  });

  it('--cgroup-path puts the command into an existing cgroup, and leaves it there', async () => {
    const name = `tsns-e2e-join-${process.pid}`;
    const dir = join(LAYOUT.hierarchies.find((h) => h.controllers.includes('pids'))!.mountpoint, name);
    mkdirSync(dir);
    try {
      writeFileSync(join(dir, 'pids.max'), '7');
      const res = await tsnsRun(mode, [`--cgroup-path=${visiblePath(name)}`, 'sh', '-c', `cat /proc/self/cgroup; cat ${dir}/pids.max`]);
      expect(res.stderr).toBe('');
      expect(pathIn(parseCgroupFile(res.stdout.split('\n').slice(0, -1).join('\n')), 'pids')).toBe(visiblePath(name));
      expect(res.stdout.split('\n').pop()).toBe('7');
      expect(existsSync(dir)).toBe(true);
      const none = await tsnsRun(mode, [`--cgroup-path=${visiblePath('tsns-e2e-does-not-exist')}`, 'true']);
      expect(none.exitCode).toBe(125);
      expect(none.stderr.startsWith(`tsns: cannot join the cgroup ${visiblePath('tsns-e2e-does-not-exist')}: it exists in no hierarchy`), none.stderr).toBe(true);
    } finally {
      rmdirSync(dir);
    }
  });

  it('tsns ls shows a namespace\'s process\'s cgroup in a CGROUP column', async () => {
    const p = startTsns(mode, ['run', '--pid', '--pids-limit=10', 'sh', '-c', 'echo ready; exec sleep 30'], { stdin: 'ignore' });
    started.push(p.pid!);
    await outputMatching(p, /ready\n/);
    try {
      const ls = await startTsns(mode, ['ls', '-t', 'pid', '-n', '-o', 'COMMAND,CGROUP']);
      const line = String(ls.stdout).split('\n').find((l) => l.startsWith('sleep 30 '));
      // Below our own cgroup (the root on a host; a container's own cgroup in a container).
      expect(line).toMatch(new RegExp(`[ :,]${re(ownPrefix('pids'))}/tsns-${p.pid}-0( |$)`));
    } finally {
      await execa('pkill', ['-KILL', '-x', '-f', 'sleep 30', '-P', String(p.pid)], { reject: false });
      await p;
    }
  });

  it('tsns killed by SIGKILL with --kill-child: the next tsns removes the cgroup it left', async () => {
    const p = startTsns(mode, ['run', '--kill-child', '--pid', '--pids-limit=10', 'sh', '-c', 'cat /proc/self/cgroup; echo ready; exec sleep 1000'], { stdin: 'ignore' });
    started.push(p.pid!);
    const cg = parseCgroupFile((await outputMatching(p, /ready\n/)).replace('ready\n', ''));
    const dir = hostFile(cg, 'pids', '');
    p.kill('SIGKILL');
    await p;
    // The command died with tsns (--kill-child), and took its pid namespace along.
    for (let i = 0; i < 100 && readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim() !== ''; i++) await new Promise((res) => setTimeout(res, 20));
    expect(readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim()).toBe('');
    expect(existsSync(dir)).toBe(true);
    await new Promise((res) => setTimeout(res, 1100));
    expect((await tsnsRun(mode, ['--pids-limit=10', 'true'])).exitCode).toBe(0);
    expect(existsSync(dir)).toBe(false);
  });

  it('clone3 refused by a seccomp filter: the pid is written to the v2 cgroup.procs instead', async () => {
    if (!onThisLayout(LAYOUT.v2 !== null, 'a cgroup v2 hierarchy')) return;
    const dir = mkdtempSync(join(tmpdir(), 'tsns-cg-'));
    try {
      writeFileSync(join(dir, 'filter.bpf'), clone3Enosys());
      const inner = [process.execPath, join(ROOT, 'bin', 'tsns.js'), 'run', '--cgroup-parent=.', 'cat', '/proc/self/cgroup'];
      const fd = openSync(join(dir, 'filter.bpf'), 'r');
      const res = await tsnsRun(mode, ['--seccomp', '3', '--', ...inner], { stdio: ['ignore', 'pipe', 'pipe', fd] }).finally(() => closeSync(fd));
      expect(res.stderr).toBe('');
      expect(parseCgroupFile(res.stdout)['']).toMatch(/\/tsns-\d+-0$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A limit on the v2 side, set without root in the delegated subtree: here
 * that is hugetlb (this hybrid machine's only v2 controller), through the
 * library, since no podman flag sets it. Root enables the controller at the
 * top, as systemd would for a delegated unit.
 */
async function limitedWithoutRoot(rel: string, script: string, bin: string): Promise<void> {
  const v2 = LAYOUT.v2!;
  if (!v2.rootControllers.includes('hugetlb')) return;
  const lib = join(bin, '..', '..', 'dist', 'index.cjs');
    const program = `const t = require(${JSON.stringify(lib)}); const fs = require('fs');
      t.run(['true'], { cgroupParent: ${JSON.stringify(`${rel}/runs`)}, resources: { hugepageLimits: [{ pageSize: '2MB', limit: 2097152 }] },
        onStart: (pid) => { const p = fs.readFileSync('/proc/' + pid + '/cgroup', 'utf8').match(/^0::(.*)$/m)[1];
          console.log(p, fs.readFileSync(${JSON.stringify(v2.mountpoint)} + p + '/hugetlb.2MB.max', 'utf8').trim()); } })
        .then((r) => console.log('exit', r.exitCode), (e) => console.log('error', e.message));`;
  const res = await execa('sh', ['-c', script, 'sh', process.execPath, '-e', program], { reject: false, cwd: '/' });
  expect(String(res.stdout)).toMatch(new RegExp(`^${rel}/runs/tsns-\\d+-0 2097152\nexit 0$`));
}

/** A seccomp program: clone3 fails with ENOSYS (as container runtimes' filters have it), all else allowed. */
function clone3Enosys(): Buffer {
  const nr = 435; // clone3, on x86_64 and aarch64 alike
  const insns: [number, number, number, number][] = [[0x20, 0, 0, 0], [0x15, 0, 1, nr], [0x06, 0, 0, 0x00050000 | 38], [0x06, 0, 0, 0x7fff0000]];
  const out = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, jt, jf, k], i) => {
    out.writeUInt16LE(code, i * 8);
    out.writeUInt8(jt, i * 8 + 2);
    out.writeUInt8(jf, i * 8 + 3);
    out.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return out;
}

describe('cgroup limits without root, in a delegated cgroup v2 subtree', () => {
  it('the command goes into a cgroup of the user\'s own under it', async () => {
    if (!IS_ROOT || !MODES.includes('user')) return;
    if (!onThisLayout(LAYOUT.v2?.ownDir !== undefined && LAYOUT.v2?.ownDir !== null, 'a cgroup v2 hierarchy to delegate')) return;
    // As systemd's Delegate=yes: a subtree and its control files owned by the user; tsns itself in a leaf of it.
    const top = join(LAYOUT.v2!.ownDir!, `tsns-e2e-delegated-${process.pid}`);
    // hugetlb, this machine's one v2 controller, enabled at the top as systemd does for a delegated unit (undone below).
    const rootControl = join(LAYOUT.v2!.mountpoint, 'cgroup.subtree_control');
    const hugetlbBefore = readFileSync(rootControl, 'utf8').includes('hugetlb');
    if (!hugetlbBefore && LAYOUT.v2!.rootControllers.includes('hugetlb')) writeFileSync(rootControl, '+hugetlb');
    mkdirSync(join(top, 'client'), { recursive: true });
    mkdirSync(join(top, 'runs'));
    for (const d of [top, join(top, 'client'), join(top, 'runs')]) {
      for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads']) chownSync(join(d, f), USER.uid, USER.gid);
    }
    chmodSync(top, 0o755);
    try {
      const rel = top.slice(LAYOUT.v2!.mountpoint.length);
      const tsnsArgs = ['-r', `--cgroup-parent=${rel}/runs`, 'cat', '/proc/self/cgroup'];
      const bin = join(inject('stagedRoot'), 'bin', 'tsns.js');
      const script = `echo $$ > ${join(top, 'client', 'cgroup.procs')} && exec setpriv --reuid=${USER.uid} --regid=${USER.gid} --clear-groups -- "$@"`;
      const res = await execa('sh', ['-c', script, 'sh', process.execPath, bin, 'run', ...tsnsArgs], { reject: false, cwd: '/' });
      expect(res.stderr).toBe('');
      expect(parseCgroupFile(String(res.stdout))['']).toMatch(new RegExp(`^${rel}/runs/tsns-\\d+-0$`));
      const refused = await execa('sh', ['-c', script, 'sh', process.execPath, bin, 'run', '-r', '--pids-limit=5', 'true'], { reject: false, cwd: '/' });
      if (onV1('pids')) expect(String(refused.stderr)).toMatch(/on cgroup v1 only root can make cgroups/);
      await limitedWithoutRoot(rel, script, bin);
    } finally {
      for (let i = 0; i < 50 && readFileSync(join(top, 'client', 'cgroup.procs'), 'utf8').trim(); i++) await new Promise((res) => setTimeout(res, 20));
      for (const d of [join(top, 'client'), join(top, 'runs'), top]) rmdirSync(d);
      if (!hugetlbBefore && LAYOUT.v2!.rootControllers.includes('hugetlb')) writeFileSync(rootControl, '-hugetlb');
    }
    if (CI) expect(existsSync(top)).toBe(false);
  });
});
