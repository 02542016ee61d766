/**
 * tsns-oci's six OCI hooks beside runc on the same busybox bundle: each hook
 * appends what it saw (its name, the state on its stdin, its args and env,
 * its mount namespace, and whether the container's rootfs is already /) to
 * a log; tsns-oci's log must read as runc's does: the same order, the same
 * status in each state, the same namespace. Then the failures: a failing
 * hook and one that outlives its timeout fail create as runc's does, with
 * nothing left behind; a failing poststop is only a warning.
 */
import { execa, execaSync } from 'execa';
import { closeSync, existsSync, openSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, ROOT } from './helpers';
import { bundle, enginesPresent, processesMentioning, RUNC, rmTree, runcSpec, workDir } from './oci-lib';

// The bundle's root filesystem is root's; without root the file says so and runs nothing.
const missing = enginesPresent('runc');
if (missing) console.warn(`skipping tsns-oci's hooks beside runc: it ${missing}`);
if (!IS_ROOT) console.warn("skipping tsns-oci's hooks beside runc: it needs root (the bundle and runc's state are root's)");
const have = missing === null && IS_ROOT;

let dir = '';
const HOOKS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
type Hook = (typeof HOOKS)[number];
const MARK = '.tsns-hooks-rootfs';

interface Rt { name: string; cmd: string; pre: string[] }
const runtimes = (): Rt[] => [
  { name: 'runc', cmd: RUNC, pre: ['--root', join(dir, 'runc-root')] },
  { name: 'tsns-oci', cmd: process.execPath, pre: [join(ROOT, 'bin', 'tsns-oci.js'), '--root', join(dir, 'tsns-root')] },
];

/** The hook's script: one line of fields separated by '|'. /bin/sh is the host's dash or the rootfs's busybox, by where it runs. */
const script = (log: string, extra = '') =>
  `${extra}st=$(cat); echo "$0|$st|$*|$HOOKVAR|$(readlink /proc/self/ns/mnt)|$(if [ -e /${MARK} ]; then echo container; else echo host; fi)" >> ${log}`;

function hook(name: string, log: string, opts: { extra?: string; timeout?: number } = {}): Record<string, unknown> {
  return {
    path: '/bin/sh', args: ['sh', '-c', script(log, opts.extra ?? ''), name, 'one', 'two'], env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', `HOOKVAR=${name}-env`],
    ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}),
  };
}

/** A bundle whose hooks log to logDir/log, logDir bound at the same path in the container so that every hook can reach it. */
function hookBundle(rt: Rt, tag: string, edit: (hooks: Record<Hook, unknown[]>, log: string) => void = () => {}): { b: string; log: string } {
  const logDir = join(dir, `log-${rt.name}-${tag}`);
  mkdirSync(logDir, { recursive: true });
  const log = join(logDir, 'log');
  const c = runcSpec(['sh', '-c', `echo "process|{}||$HOOKVAR|$(readlink /proc/self/ns/mnt)|$(if [ -e /${MARK} ]; then echo container; else echo host; fi)" >> ${log}; sleep 30`], { readonly: false }) as Record<string, any>;
  c.process.env.push('HOOKVAR=process');
  c.mounts.push({ destination: logDir, type: 'bind', source: logDir, options: ['rbind', 'rw'] });
  const hooks = Object.fromEntries(HOOKS.map((h) => [h, [hook(h, log)]])) as Record<Hook, unknown[]>;
  edit(hooks, log);
  c.hooks = hooks;
  const b = bundle(join(dir, `b-${rt.name}-${tag}`), c);
  writeFileSync(join(b, 'rootfs', MARK), '');
  return { b, log };
}

interface Seen { hook: string; status?: string; pid?: number; id?: string; bundle?: string; args: string; env: string; mnt: string; root: string }

function readLog(log: string): Seen[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((line) => {
    const [name, st, args, env, mnt, root] = line.split('|');
    const s = JSON.parse(st!) as { status?: string; pid?: number; id?: string; bundle?: string };
    return { hook: name!, status: s.status, pid: s.pid, id: s.id, bundle: s.bundle, args: args!, env: env!, mnt: mnt!, root: root! };
  });
}

/** What is compared across runtimes: the pid and namespace as relations (the container's? the host's?), not numbers. */
function summary(seen: Seen[], hostMnt: string, id: string, b: string, pid: number) {
  const containerMnt = seen.find((s) => s.hook === 'process')?.mnt;
  return seen.map((s) => ({
    hook: s.hook, status: s.status, pid: s.pid === undefined ? 'none' : s.pid === pid ? 'container' : s.pid === 0 ? 0 : 'other',
    id: s.id === undefined || s.id === id, bundle: s.bundle === undefined || s.bundle === b, args: s.args, env: s.env,
    ns: s.mnt === hostMnt ? 'host' : s.mnt === containerMnt ? 'container' : 'other', root: s.root,
  }));
}

/** create's and start's stdio would be the container's: its stderr goes to a file, so that nothing waits for the container to close a pipe. */
async function run(rt: Rt, args: string[], timeout = 30_000): Promise<{ exitCode?: number; stdout: string; stderr: string }> {
  if (args[0] !== 'create' && args[0] !== 'start') return execa(rt.cmd, [...rt.pre, ...args], { reject: false, timeout, stdin: 'ignore' });
  const errFile = join(dir, `stderr-${process.hrtime.bigint()}`);
  const fd = openSync(errFile, 'w');
  try {
    // a plain fd: execa hands it on as it is, with no pipe of its own that the container would hold open
    const r = await execa(rt.cmd, [...rt.pre, ...args], { reject: false, timeout, stdin: 'ignore', stdout: 'ignore', stderr: fd as never });
    return { exitCode: r.exitCode, stdout: '', stderr: readFileSync(errFile, 'utf8').trim() };
  } finally {
    closeSync(fd);
  }
}

async function waitForLine(log: string, hook: string): Promise<void> {
  for (const end = Date.now() + 10_000; !readLog(log).some((s) => s.hook === hook); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) throw new Error(`no ${hook} line in ${log}`);
  }
}

describe.skipIf(!have)('tsns-oci hooks beside runc', () => {
  beforeAll(() => {
    dir = workDir('hooks');
  });
  afterAll(() => {
    for (const rt of runtimes()) for (const id of ['h-life', 'h-fail', 'h-timeout', 'h-poststop'].map((n) => `${n}-${process.pid}`)) execaSyncQuiet(rt, ['delete', '--force', id]);
    rmTree(dir);
  });

  it('runs the six hooks in runc\'s order, states and namespaces', async () => {
    const hostMnt = readlinkSync('/proc/self/ns/mnt');
    const got: Record<string, unknown> = {};
    for (const rt of runtimes()) {
      const id = `h-life-${process.pid}`;
      const { b, log } = hookBundle(rt, 'life');
      const c = await run(rt, ['create', '--bundle', b, id]);
      expect(c.exitCode, `${rt.name} create: ${c.stderr}`).toBe(0);
      const state = JSON.parse((await run(rt, ['state', id])).stdout) as { pid: number; status: string };
      expect(state.status).toBe('created');
      // prestart, createRuntime and createContainer have run by the end of create
      // (runc 1.1 runs poststart here too, at the end of create; the runtime spec and runc 1.2 run it on start, as tsns-oci does)
      const afterCreate = readLog(log).map((s) => s.hook);
      expect(afterCreate.slice(0, 3), `${rt.name} after create`).toEqual(['prestart', 'createRuntime', 'createContainer']);
      if (rt.name === 'tsns-oci') expect(afterCreate).toHaveLength(3);
      const s = await run(rt, ['start', id]);
      expect(s.exitCode, `${rt.name} start: ${s.stderr}`).toBe(0);
      await waitForLine(log, 'process');
      await waitForLine(log, 'poststart');
      expect((await run(rt, ['kill', id, 'KILL'])).exitCode).toBe(0);
      for (const end = Date.now() + 10_000; JSON.parse((await run(rt, ['state', id])).stdout).status !== 'stopped';) {
        if (Date.now() > end) throw new Error(`${rt.name}: ${id} did not stop`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const d = await run(rt, ['delete', id]);
      expect(d.exitCode, `${rt.name} delete: ${d.stderr}`).toBe(0);
      const seen = readLog(log);
      const sum = summary(seen, hostMnt, id, b, state.pid);
      // runc's start lets the process go and runs poststart; its startContainer runs in the process meanwhile: the two race.
      const order = sum.map((x) => x.hook);
      expect(order.slice(0, 3)).toEqual(['prestart', 'createRuntime', 'createContainer']);
      expect(order.indexOf('startContainer')).toBeLessThan(order.indexOf('process'));
      expect(order.at(-1)).toBe('poststop');
      if (rt.name === 'runc') {
        // runc 1.1 departs from the runtime spec twice, and tsns-oci follows the spec (as runc 1.2 does): the state
        // it gives the hooks run in the container has its pid there (1), not the host's; and its poststart runs at
        // the end of create, so its state says "created", not "running".
        for (const x of sum) if ((x.hook === 'createContainer' || x.hook === 'startContainer') && seen.find((y) => y.hook === x.hook)?.pid === 1) x.pid = 'container';
        const post = sum.find((x) => x.hook === 'poststart');
        if (post?.status === 'created') post.status = 'running';
      }
      got[rt.name] = Object.fromEntries(sum.map((x) => [x.hook, x]));
    }
    // every field beside runc's
    expect(got['tsns-oci']).toEqual(got.runc);
    // and what runc's are, for the reader
    const runc = got.runc as Record<string, { status: string; ns: string; root: string }>;
    expect(runc.prestart).toMatchObject({ status: 'creating', ns: 'host', root: 'host' });
    expect(runc.createRuntime).toMatchObject({ status: 'creating', ns: 'host', root: 'host' });
    expect(runc.createContainer).toMatchObject({ status: 'creating', ns: 'container', root: 'host' });
    expect(runc.startContainer).toMatchObject({ status: 'created', ns: 'container', root: 'container' });
    expect(runc.poststart).toMatchObject({ status: 'running', ns: 'host' });
    expect(runc.poststop).toMatchObject({ status: 'stopped', ns: 'host' });
  }, 120_000);

  for (const which of ['prestart', 'createRuntime', 'createContainer'] as const) {
    it(`a failing ${which} hook fails create as runc's does, with nothing left behind`, async () => {
      const codes: Record<string, number | undefined> = {};
      for (const rt of runtimes()) {
        const id = `h-fail-${process.pid}`;
        const { b, log } = hookBundle(rt, `fail-${which}`, (h, l) => {
          // the first logs the pid it was given, the second fails
          h[which] = [hook(`${which}-first`, l), hook(which, l, { extra: 'echo hook says no >&2; exit 3; ' })];
        });
        const c = await run(rt, ['create', '--bundle', b, id]);
        codes[rt.name] = c.exitCode;
        expect(c.exitCode, rt.name).not.toBe(0);
        if (rt.name === 'tsns-oci') {
          expect(c.stderr).toMatch(new RegExp(`^tsns: ${which} hook #1 \\(/bin/sh\\) exited with status 3(: hook says no)?$`, 'm'));
          expect(existsSync(join(dir, 'tsns-root', id))).toBe(false);
          expect(processesMentioning(b)).toEqual([]);
          expect(cgroupLeft(id)).toEqual([]);
          // the container's process, stopped for the hooks, is gone (or a zombie of an init that reaps nothing)
          const pid = readLog(log).find((x) => x.hook === `${which}-first`)?.pid;
          expect(pid).toBeGreaterThan(0);
          expect(procState(pid!)).toMatch(/^(gone|Z)$/);
        }
        // no later hook ran, poststop aside (runc runs it on a failed create)
        const later: string[] = HOOKS.slice(HOOKS.indexOf(which) + 1).filter((h) => h !== 'poststop');
        expect(readLog(log).filter((s) => later.includes(s.hook))).toEqual([]);
        execaSyncQuiet(rt, ['delete', '--force', id]);
      }
      expect(codes['tsns-oci']).toBe(codes.runc);
    }, 60_000);
  }

  it('a hook that outlives its timeout fails create, and is not waited for', async () => {
    const codes: Record<string, number | undefined> = {};
    for (const rt of runtimes()) {
      const id = `h-timeout-${process.pid}`;
      const { b } = hookBundle(rt, 'timeout', (h, l) => {
        h.createRuntime = [hook('createRuntime', l, { extra: 'exec sleep 20; ', timeout: 1 })];
      });
      const t0 = Date.now();
      const c = await run(rt, ['create', '--bundle', b, id]);
      codes[rt.name] = c.exitCode;
      expect(Date.now() - t0, rt.name).toBeLessThan(10_000);
      expect(c.exitCode, rt.name).not.toBe(0);
      if (rt.name === 'tsns-oci') {
        expect(c.stderr).toMatch(/^tsns: createRuntime hook #0 \(\/bin\/sh\) timed out after 1 s/m);
        expect(existsSync(join(dir, 'tsns-root', id))).toBe(false);
        expect(processesMentioning(b)).toEqual([]);
      }
      execaSyncQuiet(rt, ['delete', '--force', id]);
    }
    expect(codes['tsns-oci']).toBe(codes.runc);
  }, 60_000);

  it('a failing poststop hook is only a warning: delete succeeds', async () => {
    for (const rt of runtimes()) {
      const id = `h-poststop-${process.pid}`;
      const { b, log } = hookBundle(rt, 'poststop', (h, l) => {
        h.poststop = [hook('poststop', l, { extra: 'exit 4; ' }), hook('poststop-second', l)];
      });
      expect((await run(rt, ['create', '--bundle', b, id])).exitCode).toBe(0);
      const d = await run(rt, ['delete', '--force', id]);
      expect(d.exitCode, `${rt.name}: ${d.stderr}`).toBe(0);
      expect(d.stderr, rt.name).toMatch(/hook #0/);
      expect(existsSync(join(rt.pre[rt.pre.length - 1]!, id)), rt.name).toBe(false);
      expect(readLog(log).some((s) => s.hook === 'poststop-second'), rt.name).toBe(false);
    }
  }, 60_000);
});

function execaSyncQuiet(rt: Rt, args: string[]): void {
  try {
    execaSync(rt.cmd, [...rt.pre, ...args], { reject: false, stdin: 'ignore' });
  } catch {
    // best effort
  }
}

/** The container's cgroup directories that are still there (v1 hierarchies and the v2 one). */
function cgroupLeft(id: string): string[] {
  const out: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const p = join('/sys/fs/cgroup', h, id);
    if (existsSync(p)) out.push(p);
  }
  return out;
}

function procState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[0]!;
  } catch {
    return 'gone';
  }
}
