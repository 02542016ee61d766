/**
 * What an OCI runtime does with a cgroup (src/cgroup/), against the
 * kernel: a container-style cgroup in every hierarchy, a command put into
 * it by `tsns run --cgroup-path`, then ps, pause/resume (the state in
 * /proc), update, events --stats, kill --all and delete; device rules on
 * v1 and as a v2 eBPF program; hugetlb on the v2 side of a hybrid; a
 * failed write undoing everything; and the files runc writes for the
 * same linux.resources, compared. Runs as root (cgroups cannot be made
 * without it here); every test walks all hierarchies afterwards.
 */
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyCgroup, type Cgroup } from '../../src/cgroup/apply';
import type { CgroupLayout } from '../../src/cgroup/detect';
import {
  cgroupProcs, freezeCgroup, freezerState, killCgroup, openCgroup, removeCgroup, thawCgroup, updateCgroup,
} from '../../src/cgroup/ops';
import { planCgroup } from '../../src/cgroup/plan';
import type { LinuxResources } from '../../src/cgroup/resources';
import { cgroupStats, eventJson } from '../../src/cgroup/stats';
import { hasCommand, IS_ROOT, requireFeature, ROOT } from './helpers';
import { busyboxBundle, hostFile, LAYOUT, leftovers, onThisLayout, outputMatching, parseCgroupFile, startTsns, BLKIO_WEIGHT } from './cgroup-lib';

const tsns = createRequire(import.meta.url)(join(ROOT, 'dist', 'index.cjs')) as typeof import('../../src/index');
const names: string[] = [];
const pids: number[] = [process.pid];

afterEach(() => {
  expect(leftovers(pids, names)).toEqual([]);
  names.length = 0;
});

function name(what: string): string {
  const n = `tsns-e2e-${what}-${process.pid}`;
  names.push(n);
  return n;
}

const onV1 = (c: string) => LAYOUT.hierarchies.some((h) => h.version === 1 && h.controllers.includes(c));

/** A container-style cgroup (every hierarchy, runc's placement of a relative cgroupsPath). */
function container(path: string, resources: LinuxResources, layout: CgroupLayout = LAYOUT) {
  return applyCgroup(planCgroup({ layout, resources, placement: { kind: 'path', path }, scope: 'all' }));
}

/** fn with a container-style cgroup, which is emptied and removed afterwards whatever happens. */
async function withContainer(what: string, resources: LinuxResources, fn: (cg: Cgroup, path: string) => Promise<void>, layout: CgroupLayout = LAYOUT) {
  const path = name(what);
  const cg = container(path, resources, layout);
  try {
    await fn(cg, path);
  } finally {
    thawCgroup(cg);
    removeCgroup(cg);
  }
}

/** `tsns run --cgroup-path=PATH` running `script`, once it has printed ready. */
async function runIn(path: string, script: string) {
  const p = startTsns('root', ['run', `--cgroup-path=${path}`, 'sh', '-c', `${script}; echo ready; exec sleep 1000`]);
  pids.push(p.pid!);
  await outputMatching(p, /ready\n/);
  // Wrapped: the process is a promise too, which an async function's result would wait for.
  return { p };
}

function procState(pid: number): string {
  return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
}

const until = async (ok: () => boolean) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  return ok();
};

describe.runIf(IS_ROOT)('cgroup operations for an OCI runtime', () => {
  it('ps, pause and resume, update, events --stats, kill --all, delete', async () => {
    await withContainer('oci', { pids: { limit: 50 }, memory: { limit: 64 << 20 }, cpu: { shares: 512 } }, async (cg, path) => {
      expect(cg.dirs.length).toBe(LAYOUT.hierarchies.length);
      const { p } = await runIn(path, 'true');
      const procs = cgroupProcs(cg);
      expect(procs).toHaveLength(1);
      const pid = procs[0]!;
      expect(await until(() => readFileSync(`/proc/${pid}/cmdline`, 'utf8') === 'sleep\u00001000\u0000')).toBe(true);
      // The reopened cgroup (what a runtime without saved state finds) is the same one.
      expect(openCgroup(LAYOUT, path).dirs.map((d) => d.dir)).toEqual(cg.dirs.map((d) => d.dir));

      freezeCgroup(cg);
      expect(freezerState(cg)).toBe('frozen');
      // v1's freezer leaves its tasks in D (the refrigerator); v2's in S, with cgroup.events saying frozen.
      expect(procState(pid)).toBe(onV1('freezer') ? 'D' : 'S');
      thawCgroup(cg);
      expect(await until(() => freezerState(cg) === 'thawed' && procState(pid) === 'S')).toBe(true);

      updateCgroup(cg, { pids: { limit: 100 }, memory: { limit: 128 << 20, swap: 256 << 20 }, cpu: { quota: 25000, period: 100000 } });
      const cgOf = parseCgroupFile(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
      expect(readFileSync(hostFile(cgOf, 'pids', 'pids.max'), 'utf8').trim()).toBe('100');
      if (onV1('memory')) {
        expect(readFileSync(hostFile(cgOf, 'memory', 'memory.limit_in_bytes'), 'utf8').trim()).toBe(String(128 << 20));
        expect(readFileSync(hostFile(cgOf, 'memory', 'memory.memsw.limit_in_bytes'), 'utf8').trim()).toBe(String(256 << 20));
        // memory+swap below the memory limit: refused as the kernel refuses it.
        expect(() => updateCgroup(cg, { memory: { swap: 64 << 20 } })).toThrow(/memory\.memsw\.limit_in_bytes.*Invalid argument \(EINVAL\)/);
        // Both lowered together: written in the order the kernel accepts.
        updateCgroup(cg, { memory: { limit: 32 << 20, swap: 32 << 20 } });
        expect(readFileSync(hostFile(cgOf, 'memory', 'memory.memsw.limit_in_bytes'), 'utf8').trim()).toBe(String(32 << 20));
      }

      const line = eventJson('stats', 'c1', cgroupStats(cg));
      const ev = JSON.parse(line);
      expect(ev).toMatchObject({ type: 'stats', id: 'c1', data: { pids: { current: 1, limit: 100 }, intel_rdt: {}, network_interfaces: null } });
      expect(Object.keys(ev.data)).toEqual(['cpu', 'cpuset', 'memory', 'pids', 'blkio', 'hugetlb', 'intel_rdt', 'network_interfaces']);
      expect(ev.data.memory.usage.limit).toBe(onV1('memory') ? 32 << 20 : 128 << 20);
      // Counters past 2^53 stay exact: an unlimited v1 kernel-memory limit.
      if (onV1('memory')) expect(line).toContain('"kernel":{"limit":9223372036854771712');

      killCgroup(cg, 'SIGTERM');
      expect((await p).signal).toBe('SIGTERM');
      removeCgroup(cg);
      expect(cg.dirs.some((d) => existsSync(d.dir))).toBe(false);
    });
  });

  it('kill --all with SIGKILL reaches every process, and delete then removes the cgroup', async () => {
    await withContainer('killall', { pids: { limit: 50 } }, async (cg, path) => {
      const { p } = await runIn(path, 'sleep 1000 & sleep 1000 & true');
      expect(cgroupProcs(cg)).toHaveLength(3);
      killCgroup(cg, 'SIGKILL');
      expect((await p).signal).toBe('SIGKILL');
      expect(await until(() => cgroupProcs(cg).length === 0)).toBe(true);
    });
  });

  const DEVICE_SCRIPT = 'echo x > /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null 2>&1 || echo zero-denied';
  const NULL_ONLY = [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }];

  it('device rules on v1: only what they allow can be opened', async () => {
    if (!onThisLayout(onV1('devices'), 'the v1 devices controller')) return;
    await withContainer('devices', { devices: NULL_ONLY }, async (cg, path) => {
      const res = await startTsns('root', ['run', `--cgroup-path=${path}`, 'sh', '-c', DEVICE_SCRIPT]);
      expect(String(res.stdout)).toBe('null-ok\nzero-denied');
      expect(readFileSync(join(cg.dirs.find((d) => d.controllers.includes('devices'))!.dir, 'devices.list'), 'utf8').trim()).toBe('c 1:3 rwm');
    });
  });

  it('device rules on v2: an eBPF program denies what they do not allow', async () => {
    if (!onThisLayout(LAYOUT.v2 !== null, 'a cgroup v2 hierarchy')) return;
    // This machine's layout without its v1 devices hierarchy: the rules go to v2, as on a v2 machine.
    const v2only: CgroupLayout = { ...LAYOUT, hierarchies: LAYOUT.hierarchies.filter((h) => !h.controllers.includes('devices')) };
    await withContainer('bpf', { devices: NULL_ONLY }, async (_cg, path) => {
      const res = await startTsns('root', ['run', `--cgroup-path=${path}`, 'sh', '-c', DEVICE_SCRIPT]);
      expect(String(res.stdout)).toBe('null-ok\nzero-denied');
    }, v2only);
  });

  it('hugetlb on the v2 side of a hybrid machine, which runc refuses and crun refuses to run on', async () => {
    const v2 = LAYOUT.v2;
    if (!onThisLayout(LAYOUT.mode === 'hybrid' && (v2?.controllers.includes('hugetlb') ?? false), 'hugetlb on the v2 side of a hybrid machine')) return;
    const rootControl = join(v2!.mountpoint, 'cgroup.subtree_control');
    const before = readFileSync(rootControl, 'utf8');
    const path = name('hugetlb');
    try {
      const cg = container(path, { hugepageLimits: [{ pageSize: '2MB', limit: 4 << 20 }] });
      expect(readFileSync(join(cg.v2Dir!, 'hugetlb.2MB.max'), 'utf8').trim()).toBe(String(4 << 20));
      removeCgroup(cg);
    } finally {
      // Enabled in the root for this test only: as it was before.
      if (!before.includes('hugetlb')) writeFileSync(rootControl, '-hugetlb');
    }
  });

  it('a write the kernel refuses undoes the whole cgroup, and says which file and why', () => {
    const path = name('refused');
    expect(() => container(path, { pids: { limit: 10 }, blockIO: { throttleReadBpsDevice: [{ major: 9, minor: 9, rate: 1 }] } }))
      .toThrow(/^cannot set blkio\.throttle\.read_bps_device to '9:9 1' in \S+: No such device \(ENODEV\)$/);
  });

  it('the library: run() with OCI resources, its cgroup gone when it resolves', async () => {
    let seen: Record<string, string> = {};
    const r = await tsns.run(['sleep', '0.2'], {
      resources: { pids: { limit: 33 } },
      onStart: (pid) => (seen = parseCgroupFile(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))),
    });
    expect(r.exitCode).toBe(0);
    expect(seen.pids).toMatch(new RegExp(`/tsns-${process.pid}-\\d+$`));
    expect(existsSync(hostFile(seen, 'pids', ''))).toBe(false);
    const oom = await tsns.run(['tail', '/dev/zero'], { memory: '32m', memorySwap: '32m' });
    expect(oom).toMatchObject({ signal: 'SIGKILL', oomKills: 1 });
  });
});

describe.runIf(IS_ROOT)('the same linux.resources as runc writes them', () => {
  it('every file gets the value runc gives it', async () => {
    if (!requireFeature(hasCommand('runc'), 'runc, to compare with')) return;
    const resources = {
      memory: { limit: 50 << 20, reservation: 40 << 20, swap: 100 << 20, swappiness: 10 },
      pids: { limit: 20 },
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0', mems: '0' },
      ...(BLKIO_WEIGHT ? { blockIO: { weight: BLKIO_WEIGHT } } : {}),
    };
    const dir = mkdtempSync(join(tmpdir(), 'tsns-runc-'));
    const id = name('runc');
    const runc = ['--root', join(dir, 'state')];
    const files: [string, string][] = [
      ['memory', 'memory.limit_in_bytes'], ['memory', 'memory.soft_limit_in_bytes'], ['memory', 'memory.memsw.limit_in_bytes'], ['memory', 'memory.swappiness'],
      ['pids', 'pids.max'], ['cpu', 'cpu.shares'], ['cpu', 'cpu.cfs_quota_us'], ['cpu', 'cpu.cfs_period_us'], ['cpuset', 'cpuset.cpus'], ['cpuset', 'cpuset.mems'],
    ].filter(([c]) => onV1(c!)) as [string, string][];
    let theirs: string[] = [];
    try {
      busyboxBundle(join(dir, 'bundle'), ['sleep', '30'], resources, id);
      const created = await execa('runc', [...runc, 'create', '--bundle', join(dir, 'bundle'), id], { reject: false, stdio: 'ignore' });
      expect(created.exitCode).toBe(0);
      const state = JSON.parse(String((await execa('runc', [...runc, 'state', id])).stdout));
      const cgOf = parseCgroupFile(readFileSync(`/proc/${state.pid}/cgroup`, 'utf8'));
      theirs = files.map(([c, f]) => readFileSync(hostFile(cgOf, c, f), 'utf8').trim());
    } finally {
      await execa('runc', [...runc, 'delete', '-f', id], { reject: false });
      rmSync(dir, { recursive: true, force: true });
    }
    let ours: string[] = [];
    await tsns.run(['sleep', '0.3'], {
      resources,
      onStart: (pid) => {
        const cgOf = parseCgroupFile(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
        ours = files.map(([c, f]) => readFileSync(hostFile(cgOf, c, f), 'utf8').trim());
      },
    });
    expect(ours).toEqual(theirs);
    expect(theirs.length).toBeGreaterThan(0);
  });
});

// On a kernel without CFQ or BFQ (this one may be such), a block I/O weight has no file to go to.
describe.runIf(IS_ROOT && BLKIO_WEIGHT === null)('a block I/O weight where the kernel has no weight file', () => {
  it('fails with the files it looked for and what the weight needs, leaving no cgroup', async () => {
    const r = await execa(process.execPath, [join(ROOT, 'bin', 'tsns.js'), 'run', '--blkio-weight=300', 'true'], { reject: false });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^tsns: cannot set blkio\.bfq\.weight to '300' in \S+: No such file or directory \(ENOENT\)\nhint: this kernel has no blkio\.weight or blkio\.bfq\.weight: a block I\/O weight needs the BFQ I\/O scheduler/);
    expect(leftovers([r.pid!])).toEqual([]);
  });
});
