/**
 * The OCI lifecycle called directly, as engines call it, on the same
 * `runc spec` bundle with each runtime under test, compared field by field
 * with runc's: the exit status of every call, the state JSON after each
 * step, what the container's process sees (/proc, ids, capabilities, its
 * mounts), and `run`'s exit status being the container's.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT } from './helpers';
import { bundle, enginesPresent, itOn, rmTree, runcSpec, runtimesUnderTest, waitFor, workDir, type Runtime } from './oci-lib';

const RUNTIMES = runtimesUnderTest();
const missing = enginesPresent('runc');
if (!IS_ROOT) console.warn('skipping the comparison with runc: runc runs a root bundle as root only');

/** What the container's process writes to /out/view before it waits to be killed. */
const VIEW = [
  'echo "pid $$"', 'echo "uid $(id -u) gid $(id -g)"', 'echo "hostname $(hostname)"',
  'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status',
  'echo "uid_map $(cat /proc/self/uid_map)"',
  'touch /probe 2>/dev/null && echo "root rw" || echo "root ro"',
  'echo "kcore $(wc -c < /proc/kcore 2>&1)"',
  'echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo "proc/sys rw" || echo "proc/sys ro"',
  'echo "nofile $(ulimit -n)"',
  // Mount points and types, not ids or sources (those name the host's paths).
  'cut -d" " -f5,9 /proc/self/mountinfo | grep -v "^/out " | sort',
].join('; ');

interface Observed {
  calls: Record<string, number>;
  states: Record<string, Record<string, unknown> | null>;
  view: string[];
  runStatus: number;
}

async function observe(rt: Runtime, dir: string): Promise<Observed> {
  const root = join(dir, 'state');
  const out = join(dir, 'out');
  mkdirSync(out, { recursive: true });
  const config = runcSpec(['/bin/sh', '-c', `{ ${VIEW}; } > /out/view; exec sleep 300`]);
  (config.mounts as unknown[]).push({ destination: '/out', type: 'bind', source: out, options: ['rbind', 'rw'] });
  const b = bundle(join(dir, 'bundle'), config);
  const id = `cmp-${process.pid}`;
  // stdout and stderr to files: after create the container's process holds the stdio it was given until start.
  const call = (args: string[]) => {
    // Real fds, not execa's { file } (which it feeds through a pipe).
    const outFd = openSync(join(dir, 'out.txt'), 'w');
    const errFd = openSync(join(dir, 'err.txt'), 'w');
    const r = spawnSync(rt.path, ['--root', root, ...args], { stdio: ['ignore', outFd, errFd], timeout: 30_000 });
    closeSync(outFd);
    closeSync(errFd);
    return { exitCode: r.status ?? -1, stdout: readFileSync(join(dir, 'out.txt'), 'utf8'), stderr: readFileSync(join(dir, 'err.txt'), 'utf8') };
  };
  const state = async () => {
    const r = await call(['state', id]);
    return r.exitCode === 0 ? JSON.parse(String(r.stdout)) as Record<string, unknown> : null;
  };
  const o: Observed = { calls: {}, states: {}, view: [], runStatus: -1 };
  try {
    const created = await call(['create', '--bundle', b, '--pid-file', join(dir, 'pid'), id]);
    o.calls.create = created.exitCode!;
    expect(created.exitCode, `${rt.name} create: ${created.stderr}`).toBe(0);
    o.states.created = await state();
    o.calls.start = (await call(['start', id])).exitCode!;
    await waitFor(`${rt.name}'s container to write its view`, () => {
      try {
        return readFileSync(join(out, 'view'), 'utf8').includes('\n/ ');
      } catch {
        return false;
      }
    });
    o.view = readFileSync(join(out, 'view'), 'utf8').trim().split('\n');
    o.states.running = await state();
    o.calls.kill = (await call(['kill', id, 'KILL'])).exitCode!;
    o.states.stopped = await waitFor(`${rt.name}'s container to stop`, async () => {
      const s = await state();
      return s?.status === 'stopped' ? s : null;
    });
    o.calls.delete = (await call(['delete', id])).exitCode!;
    o.calls.stateAfterDelete = (await call(['state', id])).exitCode!;
    const run = runcSpec(['/bin/sh', '-c', 'exit 7']);
    const rb = bundle(join(dir, 'run-bundle'), run);
    o.runStatus = (await call(['run', '--bundle', rb, `${id}-run`])).exitCode!;
  } finally {
    await call(['delete', '--force', id]);
    await call(['delete', '--force', `${id}-run`]);
  }
  return o;
}

describe.runIf(IS_ROOT && !missing && RUNTIMES[0]?.name === 'runc')('the OCI lifecycle, compared with runc on the same bundle', () => {
  const dirs: string[] = [];
  let reference: Observed;
  let refDir: string;

  beforeAll(async () => {
    refDir = workDir('compare-runc');
    dirs.push(refDir);
    reference = await observe(RUNTIMES[0]!, refDir);
  });

  afterAll(() => {
    if (!process.env.TSNS_OCI_KEEP) for (const d of dirs) rmTree(d);
  });

  it('runc itself: the lifecycle as engines expect it', () => {
    expect(reference.calls).toEqual({ create: 0, start: 0, kill: 0, delete: 0, stateAfterDelete: 1 });
    expect(reference.runStatus).toBe(7);
    expect(reference.states.created).toMatchObject({ status: 'created', id: `cmp-${process.pid}`, bundle: join(refDir, 'bundle'), rootfs: join(refDir, 'bundle', 'rootfs') });
    expect(reference.states.running!.status).toBe('running');
    expect(reference.states.stopped!.status).toBe('stopped');
    expect(reference.view).toContain('pid 1');
    expect(reference.view).toContain('hostname runc');
    expect(reference.view).toContain('root ro');
  });

  for (const rt of RUNTIMES.slice(1)) itOn(rt, 'compare', `${rt.name}: the same exit statuses, state JSON and view as runc`, async () => {
    const dir = workDir(`compare-${rt.name}`);
    dirs.push(dir);
    const o = await observe(rt, dir);
    expect(o.calls, 'exit status of each call').toEqual(reference.calls);
    expect(o.runStatus, 'run exits as the container did').toBe(reference.runStatus);
    for (const step of ['created', 'running', 'stopped'] as const) {
      const mine = o.states[step]!;
      const theirs = reference.states[step]!;
      expect(Object.keys(mine).sort(), `state JSON keys when ${step}`).toEqual(Object.keys(theirs).sort());
      expect(mine.status).toBe(theirs.status);
      expect(mine.id).toBe(theirs.id);
      // Paths in each runtime's own dir: the same shape.
      expect(mine.bundle).toBe(join(dir, 'bundle'));
      expect(mine.rootfs).toBe(join(dir, 'bundle', 'rootfs'));
      expect(typeof mine.pid).toBe(typeof theirs.pid);
      expect(Number.isNaN(Date.parse(String(mine.created)))).toBe(false);
    }
    expect(o.view, 'what the container\'s process sees').toEqual(reference.view);
  });
});
