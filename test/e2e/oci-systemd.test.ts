/**
 * tsns-oci --systemd-cgroup beside runc --systemd-cgroup, against a real
 * systemd (systemd-lib.ts boots one for this file: this machine's init is
 * not systemd). Each runtime runs in systemd's mount and pid namespaces, on
 * the same bundle: the unit exists with runc's properties (systemctl show),
 * the container's cgroup is where systemd put it in every hierarchy of this
 * hybrid machine with the limit files written, update changes both, and
 * delete stops the unit and leaves no cgroup. runc runs first; tsns-oci's
 * results are compared with its.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLKIO_WEIGHT } from './cgroup-lib';
import { CI, IS_ROOT, USER } from './helpers';
import { bundle, enginesPresent, rmTree, runcSpec, runtimesUnderTest, workDir, type Runtime } from './oci-lib';
import { bootSystemd, type Systemd } from './systemd-lib';

const RUNTIMES = runtimesUnderTest().map((rt) => [rt.name, rt] as [string, Runtime]);
const missing = enginesPresent('runc');
if (missing) console.warn(`skipping --systemd-cgroup beside runc: they ${missing}`);
if (!IS_ROOT) console.warn('skipping --systemd-cgroup against a real systemd as 65534: booting systemd in namespaces of its own, and scopes on this machine\'s cgroup v1 hierarchies, need root');

let sd: Systemd | null = null;
let why = '';
let dir = '';
const root = (rt: Runtime) => `/run/e2e-${rt.name}`;

beforeAll(async () => {
  if (!IS_ROOT || missing) return;
  dir = workDir('sd');
  try {
    sd = await bootSystemd(dir);
  } catch (e) {
    why = (e as Error).message;
    // The probe: systemd cannot boot here. On this machine it must.
    if (CI) throw new Error(`systemd did not boot: ${why}`);
    console.warn(`skipping --systemd-cgroup against a real systemd: it did not boot: ${why}`);
  }
}, 60_000);

afterAll(async () => {
  await sd?.stop();
  if (dir) rmTree(dir);
}, 60_000);

const seen: Record<string, Record<string, unknown>> = {};
function sameAsRunc(what: string, rt: Runtime, value: unknown): void {
  const by = (seen[what] ??= {});
  by[rt.name] = value;
  if (rt.name !== 'runc' && 'runc' in by) expect(value, `${rt.name} beside runc: ${what}`).toEqual(by.runc);
}

/**
 * A runtime call in systemd's namespaces, its stdio files (a detached
 * container keeps what it was given: a pipe would never close).
 */
function oci(rt: Runtime, args: readonly string[]) {
  const argv = rt.name === 'runc' ? [rt.path] : [process.execPath, rt.path];
  const [out, err] = ['out', 'err'].map((n) => join(dir, `.${n}-${++calls}`));
  const fds = [openSync('/dev/null', 'r'), openSync(out!, 'w'), openSync(err!, 'w')];
  try {
    const cmd = sd!.enter([...argv, '--systemd-cgroup', '--root', root(rt), ...args]);
    const r = spawnSync(cmd[0]!, cmd.slice(1), { stdio: fds, timeout: 20_000 });
    return { status: r.status ?? 128, stdout: readFileSync(out!, 'utf8'), stderr: readFileSync(err!, 'utf8') };
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}
let calls = 0;

function show(unit: string, props: readonly string[]): Record<string, string> {
  const r = sd!.run(['systemctl', 'show', unit, ...props.map((p) => `--property=${p}`)]);
  return Object.fromEntries(r.stdout.trim().split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

const HIERARCHIES = ['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids', 'systemd', 'unified'].filter((h) => existsSync(`/sys/fs/cgroup/${h}`));
const PROPS = ['Slice', 'Delegate', 'DefaultDependencies', 'MemoryAccounting', 'CPUAccounting', 'BlockIOAccounting', 'TasksAccounting', 'MemoryLimit', 'CPUShares',
  'CPUQuotaPerSecUSec', 'CPUQuotaPeriodUSec', 'TasksMax', 'AllowedCPUs', 'DevicePolicy', 'ActiveState', 'LoadState'];

/** The scope's directory in each hierarchy (the host's view), the container's pids there (systemd's view), and the limit files. */
function cgroupOf(unit: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const h of HIERARCHIES) {
    // blkio: whose process is in it is not compared. This systemd (PID 1 in /NAME, not in
    // NAME/init.scope, for blkio) moves the process of every unit but the first since its boot
    // to /system.slice/UNIT of blkio's root, runc's as tsns-oci's; the scope's directory is there.
    const d = `/sys/fs/cgroup/${h}/${sd!.name}/system.slice/${unit}`;
    if (h === 'blkio') {
      out[h] = existsSync(d) ? 'there' : 'missing';
      continue;
    }
    out[h] = existsSync(d) ? sd!.run(['cat', `${d}/cgroup.procs`]).stdout.trim().split('\n').filter(Boolean).length : 'missing';
  }
  const file = (h: string, f: string) => {
    try {
      return readFileSync(`/sys/fs/cgroup/${h}/${sd!.name}/system.slice/${unit}/${f}`, 'utf8').trim();
    } catch {
      return 'missing';
    }
  };
  out.files = {
    'memory.limit_in_bytes': file('memory', 'memory.limit_in_bytes'), 'cpu.shares': file('cpu', 'cpu.shares'), 'cpu.cfs_quota_us': file('cpu', 'cpu.cfs_quota_us'),
    'cpu.cfs_period_us': file('cpu', 'cpu.cfs_period_us'), 'pids.max': file('pids', 'pids.max'), 'cpuset.cpus': file('cpuset', 'cpuset.cpus'),
    ...(BLKIO_WEIGHT !== null ? { 'blkio.weight': file('blkio', 'blkio.weight') } : {}),
  };
  return out;
}

describe.runIf(IS_ROOT && !missing)('--systemd-cgroup against a real systemd', () => {
  describe.each(RUNTIMES)('%s', (_name, rt) => {
    const ready = () => {
      if (!sd) {
        console.warn(`skipped: ${why}`);
        return false;
      }
      return true;
    };
    const unit = `tsnse2e-${rt.name}.scope`;

    it('run -d: the unit, with the properties runc gives it, and the cgroup files of every hierarchy', () => {
      if (!ready()) return;
      const config = runcSpec(['sleep', '1000']);
      const linux = config.linux as Record<string, unknown>;
      linux.cgroupsPath = `system.slice:tsnse2e:${rt.name}`;
      linux.resources = { devices: [{ allow: false, access: 'rwm' }], memory: { limit: 64 << 20 }, pids: { limit: 50 },
        cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0' }, ...(BLKIO_WEIGHT !== null ? { blockIO: { weight: BLKIO_WEIGHT } } : {}) };
      const b = bundle(join(dir, `b-${rt.name}`), config);
      const r = oci(rt, ['run', '--bundle', b, '-d', `c-${rt.name}`]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const p = show(unit, PROPS);
      expect(p).toMatchObject({ Slice: 'system.slice', Delegate: 'yes', DefaultDependencies: 'no', MemoryLimit: String(64 << 20), TasksMax: '50', ActiveState: 'active' });
      sameAsRunc('properties', rt, p);
      const cg = cgroupOf(unit);
      expect(cg.memory).toBe(1);
      expect((cg.files as Record<string, string>)['memory.limit_in_bytes']).toBe(String(64 << 20));
      sameAsRunc('cgroups', rt, cg);
      expect(show(unit, ['ControlGroup']).ControlGroup).toBe(`/${sd!.name}/system.slice/${unit}`);
    });

    it('update: the unit\'s properties and the files', () => {
      if (!ready()) return;
      const r = oci(rt, ['update', '--memory', String(32 << 20), '--pids-limit', '40', '--cpu-share', '256', `c-${rt.name}`]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const p = show(unit, PROPS);
      expect(p).toMatchObject({ MemoryLimit: String(32 << 20), TasksMax: '40', CPUShares: '256' });
      sameAsRunc('properties after update', rt, p);
      sameAsRunc('cgroups after update', rt, cgroupOf(unit));
    });

    it('delete: the unit stopped and gone, no cgroup left in any hierarchy', () => {
      if (!ready()) return;
      expect(oci(rt, ['kill', `c-${rt.name}`, 'KILL']).status).toBe(0);
      for (let i = 0; i < 100 && JSON.parse(oci(rt, ['state', `c-${rt.name}`]).stdout || '{}').status !== 'stopped'; i++) spawnSync('sleep', ['0.05']);
      const r = oci(rt, ['delete', `c-${rt.name}`]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(show(unit, ['LoadState', 'ActiveState'])).toEqual({ LoadState: 'not-found', ActiveState: 'inactive' });
      const cg = cgroupOf(unit);
      expect(Object.fromEntries(HIERARCHIES.map((h) => [h, cg[h]]))).toEqual(Object.fromEntries(HIERARCHIES.map((h) => [h, 'missing'])));
    });

    it('no cgroupsPath: PREFIX-ID.scope in system.slice, removed by delete --force', () => {
      if (!ready()) return;
      const b = bundle(join(dir, `d-${rt.name}`), runcSpec(['sleep', '1000']));
      expect(oci(rt, ['run', '--bundle', b, '-d', `d-${rt.name}`]).status).toBe(0);
      const prefix = rt.name === 'runc' ? 'runc' : 'tsns';
      expect(show(`${prefix}-d-${rt.name}.scope`, ['Slice', 'ActiveState'])).toEqual({ Slice: 'system.slice', ActiveState: 'active' });
      expect(oci(rt, ['delete', '--force', `d-${rt.name}`]).status).toBe(0);
      expect(show(`${prefix}-d-${rt.name}.scope`, ['LoadState']).LoadState).toBe('not-found');
    });

    it('bad paths: runc\'s errors, nothing made', () => {
      if (!ready()) return;
      const cases: [string, string][] = [['foo', 'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "foo" instead'], ['bad:x:y', 'invalid slice name: bad']];
      for (const [path, text] of cases) {
        const config = runcSpec(['true']);
        (config.linux as Record<string, unknown>).cgroupsPath = path;
        const b = bundle(join(dir, `e-${rt.name}-${path.replace(/:/g, '_')}`), config);
        const r = oci(rt, ['run', '--bundle', b, `e-${rt.name}`]);
        expect(r.status, r.stderr).not.toBe(0);
        // (runc's log escapes the quotes)
        expect(r.stderr.replace(/\\"/g, '"')).toContain(text);
        expect(oci(rt, ['list', '-q']).stdout.trim()).toBe('');
      }
    });
  });
});

describe.runIf(!missing)('--systemd-cgroup where systemd does not run', () => {
  // (As 65534 runc refuses runc spec's bundle for its rootlessness before it looks for systemd.)
  it.each(RUNTIMES)('%s: runc\'s error, as root and (tsns-oci) as 65534', (_name, rt) => {
    const d = workDir('nosd', USER);
    try {
      writeFileSync(join(d, 'x'), '');
      const b = bundle(join(d, 'b'), runcSpec(['true']));
      spawnSync('chown', ['-R', `${USER.uid}:${USER.gid}`, d]);
      const argv = rt.name === 'runc' ? [rt.userPath()] : [process.execPath, rt.userPath()];
      const as = IS_ROOT ? ['setpriv', `--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', 'env', `XDG_RUNTIME_DIR=${d}`, `HOME=${d}`] : [];
      for (const prefix of IS_ROOT && rt.name !== 'runc' ? [[], as] : [[]]) {
        const cmd = [...prefix, ...argv, '--systemd-cgroup', '--root', join(d, `root-${prefix.length}`), 'run', 'x'];
        const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: b, encoding: 'utf8', timeout: 30_000 });
        expect(r.status).not.toBe(0);
        // (runc as 65534 refuses runc spec's bundle for its rootlessness before it looks for systemd)
        if (!IS_ROOT && rt.name === 'runc') continue;
        expect(r.stderr).toContain('systemd not running on this host, cannot use systemd cgroups manager');
      }
    } finally {
      rmTree(d);
    }
  });
});
