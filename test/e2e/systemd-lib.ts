/**
 * A real systemd for the tests, on a machine whose init is not systemd:
 * /lib/systemd/systemd as PID 1 of a new pid, mount, UTS and network
 * namespace, told it is in a container (container=tsns), starting nothing
 * but a target of its own (no getty, no host service). What it would change
 * for the whole machine is kept from it:
 * - its cgroups are a subtree of each hierarchy, NAME (cpuset's CPUs and
 *   nodes copied in), so that the host's own cgroups are never its;
 * - /sys/fs/cgroup is a tmpfs of its own holding the host's hierarchies
 *   (systemd remounts that tmpfs read-only and makes directories in it),
 *   with a read-only placeholder where a controller has no v1 hierarchy,
 *   so that systemd does not mount new hierarchies of them;
 * - /proc/sys is read-only (systemd raises fs.file-max and fs.nr_open);
 * - /run and /tmp are tmpfs of its own; `share`, a directory of the
 *   test's, and this checkout (which may itself be below /tmp) are seen
 *   at the same path inside and out.
 * Runtimes run with enter(): nsenter into its mount and pid namespaces,
 * where /run/systemd/system exists and its private socket is.
 * stop() powers it off (SIGRTMIN+4), reaps it and removes NAME everywhere.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const SYSTEMD_BIN = '/lib/systemd/systemd';

export interface Systemd {
  /** systemd's pid, seen from here */
  pid: number;
  /** the subtree of every hierarchy it runs in: /NAME */
  name: string;
  /** argv that runs `argv` in its mount and pid namespaces */
  enter(argv: readonly string[]): string[];
  /** a command in them: its stdout, or throws with its stderr */
  run(argv: readonly string[]): { status: number; stdout: string; stderr: string };
  stop(): Promise<void>;
}

const BOOT = String.raw`
set -e
N=$1; shift
for c in $(awk '$9=="cgroup"||$9=="cgroup2"{print $5}' /proc/self/mountinfo); do
  mkdir -p "$c/$N"
  if [ -e "$c/$N/cpuset.cpus" ]; then cat "$c/cpuset.cpus" > "$c/$N/cpuset.cpus"; cat "$c/cpuset.mems" > "$c/$N/cpuset.mems"; fi
  echo $$ > "$c/$N/cgroup.procs"
done
mount -t proc proc /proc
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mkdir -p /run/.tsns-cg
mount --rbind /sys/fs/cgroup /run/.tsns-cg
mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
for c in $(ls /run/.tsns-cg); do
  if [ -L "/run/.tsns-cg/$c" ]; then cp -P "/run/.tsns-cg/$c" /sys/fs/cgroup/; continue; fi
  mkdir "/sys/fs/cgroup/$c"; mount --bind "/run/.tsns-cg/$c" "/sys/fs/cgroup/$c"
done
for c in $(awk 'NR>1 && $2==0 {print $1}' /proc/cgroups) net_cls,net_prio cpu,cpuacct; do
  [ -e "/sys/fs/cgroup/$c" ] && continue
  mkdir "/sys/fs/cgroup/$c"; mount -t tmpfs -o ro,size=4k tmpfs "/sys/fs/cgroup/$c"
done
umount -l /run/.tsns-cg
mount -t tmpfs -o mode=755 tmpfs /run
i=0; for s in "$@"; do mkdir -p /run/.share$i; mount --bind "$s" /run/.share$i; i=$((i+1)); done
mount -t tmpfs tmpfs /tmp
i=0; for s in "$@"; do mkdir -p "$s"; mount --move /run/.share$i "$s"; rmdir /run/.share$i; i=$((i+1)); done
mkdir -p /run/systemd/system
printf '[Unit]\nDescription=tsns test target\nDefaultDependencies=no\n' > /run/systemd/system/tsns-test.target
exec env -i container=tsns PATH=/usr/sbin:/usr/bin:/sbin:/bin ${SYSTEMD_BIN} --unit=tsns-test.target --log-target=null
`;

function childOf(pid: number): number | null {
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const kids = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (kids) return Number(kids.split(/\s+/)[0]);
    }
  } catch {
    // gone
  }
  return null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every directory of the subtree, deepest first, in every hierarchy. */
function removeSubtree(name: string): string[] {
  const left: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    try {
      rmdirSync(dir);
    } catch {
      left.push(dir);
    }
  };
  for (const m of cgroupMounts()) if (existsSync(join(m, name))) walk(join(m, name));
  return left;
}

function cgroupMounts(): string[] {
  const out: string[] = [];
  for (const m of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = m.split(' ');
    const fstype = f[f.indexOf('-') + 1];
    if (fstype === 'cgroup' || fstype === 'cgroup2') out.push(f[4]!);
  }
  return out;
}

/** What is seen at the same path inside: the outer first, where one holds the other. */
function shared(share: string): string[] {
  const repo = resolve(__dirname, '..', '..');
  return [...new Set([repo, resolve(share)])].sort((a, b) => a.length - b.length);
}

/** Boot it; rejects with what went wrong (the probe: a machine where it cannot boot). */
export async function bootSystemd(share: string): Promise<Systemd> {
  if (!existsSync(SYSTEMD_BIN)) throw new Error(`${SYSTEMD_BIN} is not installed (Debian's systemd package)`);
  const name = `tsns-e2e-sd-${process.pid}`;
  // Slices systemd may make at a hierarchy's root (see oci-systemd.test.ts, blkio): removed again if new.
  const stray = cgroupMounts().map((m) => join(m, 'system.slice')).filter((d) => !existsSync(d));
  const child: ChildProcess = spawn('unshare', ['--pid', '--mount', '--uts', '--net', '--fork', '--propagation', 'private', 'sh', '-c', BOOT, 'boot', name, ...shared(share)],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let pid: number | null = null;
  const enter = (argv: readonly string[]) => ['nsenter', '-m', '-p', '-t', String(pid), ...argv];
  const run = (argv: readonly string[]) => {
    const r = spawnSync(enter(argv)[0]!, enter(argv).slice(1), { encoding: 'utf8', timeout: 60_000 });
    return { status: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const stop = async () => {
    if (pid !== null && child.exitCode === null) {
      try {
        process.kill(pid, 'SIGRTMIN+4');
      } catch {
        // gone
      }
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      // SIGKILL of unshare leaves its child: kill systemd itself too (the namespace dies with it).
      const t2 = setTimeout(() => pid !== null && process.kill(pid, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
      clearTimeout(t2);
    } else if (child.exitCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    for (let i = 0; i < 50 && removeSubtree(name).length; i++) await sleep(100);
    for (const d of stray) {
      try {
        rmdirSync(d);
      } catch {
        // never made, or not empty
      }
    }
    const left = removeSubtree(name);
    if (left.length) throw new Error(`systemd's cgroups are left: ${left.join(', ')}`);
  };
  try {
    const until = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`it exited with status ${child.exitCode}: ${stderr.trim()}`);
      pid ??= childOf(child.pid!);
      if (pid !== null) {
        // its children exist once it forked; then it answers
        const state = run(['systemctl', 'is-system-running']).stdout.trim();
        if (state === 'running' || state === 'degraded') break;
      }
      if (Date.now() > until) throw new Error(`it did not come up in 30 s (systemctl is-system-running: ${pid === null ? 'no pid' : run(['systemctl', 'is-system-running']).stdout.trim()}) ${stderr.trim()}`);
      await sleep(100);
    }
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
  return { pid: pid!, name, enter, run, stop };
}
