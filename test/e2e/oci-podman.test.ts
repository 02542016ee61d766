/**
 * podman driving an OCI runtime through conmon, as it drives runc: every
 * test runs against runc and against tsns-oci (runtimesUnderTest), on the
 * same busybox root filesystem, and records the exact runtime command lines
 * podman and conmon used. `run --rm` (exit status and output), a detached
 * container with `exec`, `stop` and `rm`, `--tty`, and a rootless podman as
 * user 65534 (a single-id mapping: 65534 has no subordinate ids).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IS_ROOT, USER } from './helpers';
import { busyboxRootfs, enginesPresent, itOn, failedCalls, podmanFor, podmanProbe, processesMentioning, recordCalls, rmTree, runtimesUnderTest, subcommand, workDir, type Podman, type Runtime } from './oci-lib';

const RUNTIMES = runtimesUnderTest().map((rt) => [rt.name, rt] as [string, Runtime]);
const missing = enginesPresent('podman', 'conmon');
if (missing) console.warn(`skipping the podman tests: they ${missing}`);

/** The same checks for root's podman and a rootless one. */
function lifecycle(label: string, rootless: boolean) {
  const where = rootless ? 'rootless podman' : 'podman as root';
  describe.each(RUNTIMES)(`${label} --runtime %s`, (_name, rt) => {
    let dir: string;
    let rootfs: string;
    let pm: Podman;
    const run = (args: readonly string[], opts = {}) => pm(['run', '--network', 'none', ...args], opts);

    beforeAll(() => {
      const owner = rootless && IS_ROOT ? USER : undefined;
      dir = workDir(`podman-${rt.name}`, owner);
      rootfs = busyboxRootfs(join(dir, 'rootfs'), owner);
      pm = podmanFor(dir, rt, { rootless });
    });

    // A failing test names the runtime calls that failed (podman's stderr, in the assertion, has the runtime's error).
    let seen = 0;
    beforeEach(() => {
      seen = pm?.calls().length ?? 0;
    });
    afterEach((ctx) => {
      if (pm && ctx.task.result?.state === 'fail') console.warn(`${ctx.task.name} with ${rt.name}: ${failedCalls(pm.calls().slice(seen), [[dir, '$T']])}`);
    });

    afterAll(async () => {
      if (!pm) return;
      await pm(['rm', '--all', '--force', '--time', '0']);
      recordCalls(`podman${rootless ? ' (rootless)' : ''}`, rt, pm.calls(), [[dir, '$T']]);
      // Nothing of the containers is left: no conmon, no container process, no runtime state.
      expect(processesMentioning(dir)).toEqual([]);
      const state = join(dir, 'runtime-state');
      expect(existsSync(state) ? readdirSync(state) : []).toEqual([]);
      rmTree(dir);
    });

    itOn(rt, where, 'run --rm: the container\'s exit status and output, and what it sees', async () => {
      const r = await run(['--rm', '--hostname', 'box', '--rootfs', rootfs, '/bin/sh', '-c',
        'echo out; echo err >&2; echo pid=$$; hostname; cat /proc/self/uid_map; exit 3']);
      expect(r.exitCode, String(r.stderr)).toBe(3);
      expect(r.stderr, `podman's stderr`).toMatch(/^err$/m);
      const lines = String(r.stdout).split('\n');
      expect(lines.slice(0, 3)).toEqual(['out', 'pid=1', 'box']);
      // Root's podman keeps the host's ids; a rootless one maps 0 to the caller.
      expect(lines[3]!.trim().split(/\s+/)).toEqual(rootless ? ['0', String(IS_ROOT ? USER.uid : process.geteuid!()), '1'] : ['0', '0', '4294967295']);
      expect(pm.calls().map(subcommand)).toEqual(['create', 'start', 'delete']);
      const ok = await run(['--rm', '--rootfs', rootfs, '/bin/true']);
      expect(ok.exitCode, String(ok.stderr)).toBe(0);
    });

    itOn(rt, where, 'run -d, exec, stop, rm', async () => {
      const before = pm.calls().length;
      // PID 1 ignores SIGTERM unless it handles it: the trap lets `stop` end it without SIGKILL.
      const started = await run(['-d', '--rootfs', rootfs, '/bin/sh', '-c', 'trap "exit 0" TERM; echo ready; sleep 300 & wait']);
      expect(started.exitCode, String(started.stderr)).toBe(0);
      const id = String(started.stdout).trim();
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      const status = await pm(['inspect', '--format', '{{.State.Status}} {{.State.Pid}}', id]);
      expect(String(status.stdout).trim(), String(status.stderr)).toMatch(/^running [1-9]\d*$/);
      const exec = await pm(['exec', id, '/bin/sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; echo $$']);
      expect(exec.exitCode, String(exec.stderr)).toBe(0);
      const [cmdline, execPid] = String(exec.stdout).split('\n');
      expect(cmdline!.trim()).toBe('/bin/sh -c trap "exit 0" TERM; echo ready; sleep 300 & wait');
      expect(Number(execPid)).toBeGreaterThan(1);
      const failing = await pm(['exec', id, '/bin/sh', '-c', 'exit 7']);
      expect(failing.exitCode, String(failing.stderr)).toBe(7);
      const t0 = Date.now();
      const stop = await pm(['stop', '--time', '20', id]);
      expect(stop.exitCode, String(stop.stderr)).toBe(0);
      expect(Date.now() - t0, 'stop ended it with SIGTERM, not after the timeout').toBeLessThan(15_000);
      const exited = await pm(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', id]);
      expect(String(exited.stdout).trim()).toBe('exited 0');
      const logs = await pm(['logs', id]);
      expect(String(logs.stdout).trim()).toBe('ready');
      const rm = await pm(['rm', id]);
      expect(rm.exitCode, String(rm.stderr)).toBe(0);
      expect(String((await pm(['ps', '--all', '--quiet'])).stdout).trim()).toBe('');
      const subs = pm.calls().slice(before).map(subcommand);
      expect(subs.slice(0, 2)).toEqual(['create', 'start']);
      expect(subs.filter((s) => s === 'exec')).toHaveLength(2);
      expect(subs).toContain('kill');
      expect(subs.at(-1)).toBe('delete');
    });

    itOn(rt, where, '--tty: the container\'s stdio is a terminal (the console socket)', async () => {
      const before = pm.calls().length;
      const r = await run(['--rm', '--tty', '--rootfs', rootfs, '/bin/sh', '-c', 'test -t 0 && test -t 1 && tty; exit 5']);
      expect(r.exitCode, String(r.stderr)).toBe(5);
      expect(String(r.stdout).replace(/\r/g, '').trim()).toBe('/dev/pts/0');
      const create = pm.calls().slice(before).find((c) => subcommand(c) === 'create');
      expect(create).toContain('--console-socket');
    });
  });
}

if (!IS_ROOT) console.warn('skipping the tests of root\'s podman: they need root (rootless podman still runs)');
// Nested in a container, podman may not run even runc's containers: then it says why, and these skip.
const cannot = IS_ROOT && !missing ? await podmanProbe(false) : null;
const cannotRootless = !missing ? await podmanProbe(true) : null;

describe.runIf(IS_ROOT && !missing && !cannot)('podman as root', () => {
  lifecycle('podman', false);
});

// Rootless podman needs user namespaces, newuidmap (uidmap) and a home; 65534 has no subordinate
// ids, so podman maps only the caller (it says so in a warning).
describe.runIf(!missing && !cannotRootless)('rootless podman', () => {
  lifecycle('rootless podman', true);
});
