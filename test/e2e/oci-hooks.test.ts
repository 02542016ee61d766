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
import { chmodSync, chownSync, closeSync, existsSync, lchownSync, lstatSync, openSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { specTemplate } from '../../src/oci/spec';
import { IS_ROOT, requireFeature, ROOT, unprivilegedUserns, USER } from './helpers';
import { bundle, busyboxRootfs, enginesPresent, processesMentioning, RUNC, rmTree, runcSpec, runtimesUnderTest, workDir } from './oci-lib';

// The bundle's root filesystem is root's; without root the file says so and runs nothing.
const missing = enginesPresent('runc');
if (missing) console.warn(`skipping tsns-oci's hooks beside runc: it ${missing}`);
if (!IS_ROOT) console.warn("skipping tsns-oci's hooks beside runc: it needs root (the bundle and runc's state are root's)");
const have = missing === null && IS_ROOT;

let dir = '';
const HOOKS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
type Hook = (typeof HOOKS)[number];
const MARK = '.tsns-hooks-rootfs';

interface Rt { name: string; cmd: string; pre: string[]; env?: Record<string, string> }
const runtimes = (): Rt[] => [
  { name: 'runc', cmd: RUNC, pre: ['--root', join(dir, 'runc-root')] },
  { name: 'tsns-oci', cmd: process.execPath, pre: [join(ROOT, 'bin', 'tsns-oci.js'), '--root', join(dir, 'tsns-root')] },
];
/** Rootless, beside rootless runc: as 65534 (setpriv, with the copy of tsns 65534 may read) when the tests run as root. */
const rootlessRuntimes = (): Rt[] => {
  const env = { XDG_RUNTIME_DIR: '' };
  if (!IS_ROOT) return runtimes().map((r) => ({ ...r, env }));
  const wrap = [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', 'env', `HOME=${dir}`];
  const oci = runtimesUnderTest().find((r) => r.name === 'tsns-oci')!.userPath();
  return [
    { name: 'runc', cmd: 'setpriv', pre: [...wrap, RUNC, '--root', join(dir, 'runc-root')], env },
    { name: 'tsns-oci', cmd: 'setpriv', pre: [...wrap, process.execPath, oci, '--root', join(dir, 'tsns-root')], env },
  ];
};

const NS = ['user', 'mnt', 'pid', 'net', 'ipc', 'uts', 'cgroup'];
/**
 * The hook's script: one line of fields separated by '|': its name, the state, its args, its env, its
 * mount namespace, where its root is, its uid and every namespace of its. /bin/sh is the host's dash or
 * the rootfs's busybox, by where it runs.
 */
const probe = `$(readlink /proc/self/ns/mnt)|$(if [ -e /${MARK} ]; then echo container; else echo host; fi)|$(id -u)|$(for n in ${NS.join(' ')}; do printf '%s ' $(readlink /proc/self/ns/$n); done)`;
const script = (log: string, extra = '') => `${extra}st=$(cat); echo "$0|$st|$*|$HOOKVAR|${probe}" >> ${log}`;

function hook(name: string, log: string, opts: { extra?: string; timeout?: number } = {}): Record<string, unknown> {
  return {
    path: '/bin/sh', args: ['sh', '-c', script(log, opts.extra ?? ''), name, 'one', 'two'], env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', `HOOKVAR=${name}-env`],
    ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}),
  };
}

/** A bundle whose hooks log to logDir/log, logDir bound at the same path in the container so that every hook can reach it. */
/** How a bundle's container is made: runc's spec as root; with a user namespace mapping 0 to 100000 (root); `spec --rootless`'s, as 65534. */
type Kind = 'root' | 'userns' | 'rootless';
const USERNS_MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

function baseConfig(kind: Kind, args: string[]): Record<string, any> {
  if (kind !== 'rootless') {
    const c = runcSpec(args, { readonly: false }) as Record<string, any>;
    if (kind === 'userns') {
      c.linux.namespaces.push({ type: 'user' });
      Object.assign(c.linux, { uidMappings: USERNS_MAP, gidMappings: USERNS_MAP });
    }
    return c;
  }
  const ids = IS_ROOT ? USER : { uid: process.geteuid!(), gid: process.getegid!() };
  const c = specTemplate(true, ids.uid, ids.gid) as Record<string, any>;
  c.process = { ...c.process, terminal: false, args };
  c.root.readonly = false;
  return c;
}

/** A bundle whose hooks log to logDir/log, logDir bound at the same path in the container so that every hook can reach it (and write it, whoever it is there). */
function hookBundle(rt: Rt, tag: string, edit: (hooks: Record<Hook, unknown[]>, log: string) => void = () => {}, kind: Kind = 'root'): { b: string; log: string } {
  const logDir = join(dir, `log-${rt.name}-${tag}`);
  mkdirSync(logDir, { recursive: true });
  chmodSync(logDir, 0o777);
  const log = join(logDir, 'log');
  writeFileSync(log, '');
  chmodSync(log, 0o666);
  const c = baseConfig(kind, ['sh', '-c', `echo "process|{}||$HOOKVAR|${probe}" >> ${log}; sleep 30`]);
  c.process.env.push('HOOKVAR=process');
  c.mounts.push({ destination: logDir, type: 'bind', source: logDir, options: ['rbind', 'rw'] });
  const hooks = Object.fromEntries(HOOKS.map((h) => [h, [hook(h, log)]])) as Record<Hook, unknown[]>;
  edit(hooks, log);
  c.hooks = hooks;
  const b = join(dir, `b-${rt.name}-${tag}`);
  if (kind === 'rootless') {
    mkdirSync(b, { recursive: true });
    busyboxRootfs(join(b, 'rootfs'));
    writeFileSync(join(b, 'config.json'), JSON.stringify(c, null, 2));
  } else bundle(b, c);
  writeFileSync(join(b, 'rootfs', MARK), '');
  if (kind === 'rootless' && IS_ROOT) {
    chownTree(b);
    chownTree(logDir);
  }
  return { b, log };
}

function chownTree(path: string): void {
  lchownSync(path, USER.uid, USER.gid);
  if (lstatSync(path).isDirectory()) for (const n of readdirSync(path)) chownTree(join(path, n));
}

interface Seen { hook: string; status?: string; pid?: number; id?: string; bundle?: string; args: string; env: string; mnt: string; root: string; uid: string; ns: string[] }

function readLog(log: string): Seen[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((line) => {
    const [name, st, args, env, mnt, root, uid, ns] = line.split('|');
    const s = JSON.parse(st!) as { status?: string; pid?: number; id?: string; bundle?: string };
    return { hook: name!, status: s.status, pid: s.pid, id: s.id, bundle: s.bundle, args: args!, env: env!, mnt: mnt!, root: root!, uid: uid!, ns: (ns ?? '').trim().split(' ') };
  });
}

/** What is compared across runtimes: the pid and namespaces as relations (the container's? the host's?), not numbers. */
function summary(seen: Seen[], hostMnt: string, id: string, b: string, pid: number) {
  const container = seen.find((s) => s.hook === 'process');
  const hostNs = NS.map((n) => readlinkSync(`/proc/self/ns/${n}`));
  const rel = (v: string | undefined, host: string, ours: string | undefined) => (v === host ? 'host' : v === ours ? 'container' : 'other');
  return seen.map((s) => ({
    hook: s.hook, status: s.status, pid: s.pid === undefined ? 'none' : s.pid === pid ? 'container' : s.pid === 0 ? 0 : 'other',
    id: s.id === undefined || s.id === id, bundle: s.bundle === undefined || s.bundle === b, args: s.args, env: s.env,
    ns: rel(s.mnt, hostMnt, container?.mnt), root: s.root, uid: s.uid,
    namespaces: Object.fromEntries(NS.map((n, i) => [n, rel(s.ns[i], hostNs[i]!, container?.ns[i])])),
  }));
}

/** create's and start's stdio would be the container's: its stderr goes to a file, so that nothing waits for the container to close a pipe. */
async function run(rt: Rt, args: string[], timeout = 30_000): Promise<{ exitCode?: number; stdout: string; stderr: string }> {
  const env = rt.env;
  if (args[0] !== 'create' && args[0] !== 'start' && args[0] !== 'run') return execa(rt.cmd, [...rt.pre, ...args], { reject: false, timeout, stdin: 'ignore', env });
  const errFile = join(dir, `stderr-${process.hrtime.bigint()}`);
  const fd = openSync(errFile, 'w');
  try {
    // a plain fd: execa hands it on as it is, with no pipe of its own that the container would hold open
    const r = await execa(rt.cmd, [...rt.pre, ...args], { reject: false, timeout, stdin: 'ignore', stdout: 'ignore', stderr: fd as never, env });
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

/**
 * create, start, kill, delete of a container whose six hooks (and its process) log what they see, with
 * each runtime; tsns-oci's log must read as runc's; runc's summary, by hook.
 */
async function lifecycle(rts: Rt[], kind: Kind, tag: string): Promise<Record<string, ReturnType<typeof summary>[number]>> {
  const hostMnt = readlinkSync('/proc/self/ns/mnt');
  const got: Record<string, unknown> = {};
  for (const rt of rts) {
    const id = `h-${tag}-${process.pid}`;
    const { b, log } = hookBundle(rt, tag, () => {}, kind);
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
  return got.runc as Record<string, ReturnType<typeof summary>[number]>;
}

/** A startContainer hook that fails or outlives its timeout, with each runtime: create, start, the container's end, then run. */
async function failingStart(rts: Rt[], kind: Kind, how: 'fails' | 'outlives its timeout'): Promise<void> {
  const seen: Record<string, unknown> = {};
  for (const rt of rts) {
    const id = `h-start-${process.pid}`;
    const failing = (h: Record<Hook, unknown[]>, l: string) => {
      h.startContainer = [hook('startContainer', l, how === 'fails' ? { extra: 'echo hook says no >&2; exit 3; ' } : { extra: 'exec sleep 20; ', timeout: 1 })];
    };
    const { b, log } = hookBundle(rt, `start-${how === 'fails' ? 'fail' : 'timeout'}`, failing, kind);
    expect((await run(rt, ['create', '--bundle', b, id])).exitCode, rt.name).toBe(0);
    const t0 = Date.now();
    const st = await run(rt, ['start', id]);
    for (const end = Date.now() + 10_000; JSON.parse((await run(rt, ['state', id])).stdout).status !== 'stopped';) {
      if (Date.now() > end) throw new Error(`${rt.name}: ${id} did not stop`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const took = Date.now() - t0;
    expect(took, rt.name).toBeLessThan(8_000);
    execaSyncQuiet(rt, ['delete', '--force', id]);
    // run: the container's stderr is run's; its exit status is the container's
    const r = await run(rt, ['run', '--bundle', b, id]);
    if (rt.name === 'tsns-oci') {
      expect(r.stderr).toMatch(how === 'fails' ? /^tsns: startContainer hook #0 \(\/bin\/sh\) exited with status 3: hook says no$/m : /^tsns: startContainer hook #0 \(\/bin\/sh\) timed out after 1 s$/m);
      expect(existsSync(join(dir, 'tsns-root', id))).toBe(false);
    } else expect(r.stderr).toMatch(/error running hook #0/);
    execaSyncQuiet(rt, ['delete', '--force', id]);
    seen[rt.name] = { start: st.exitCode, run: r.exitCode, process: readLog(log).some((x) => x.hook === 'process'), poststop: readLog(log).filter((x) => x.hook === 'poststop').length };
  }
  expect(seen['tsns-oci']).toEqual(seen.runc);
  expect(seen.runc).toMatchObject({ start: 0, run: 1, process: false });
}

describe.skipIf(!have)('tsns-oci hooks beside runc', () => {
  beforeAll(() => {
    dir = workDir('hooks');
  });
  afterAll(() => {
    for (const rt of runtimes()) for (const id of ['h-life', 'h-userns', 'h-start', 'h-fail', 'h-timeout', 'h-poststop'].map((n) => `${n}-${process.pid}`)) execaSyncQuiet(rt, ['delete', '--force', id]);
    rmTree(dir);
  });

  it('runs the six hooks in runc\'s order, states and namespaces', async () => {
    const runc = await lifecycle(runtimes(), 'root', 'life');
    // what runc's are, for the reader
    expect(runc.prestart).toMatchObject({ status: 'creating', ns: 'host', root: 'host' });
    expect(runc.createRuntime).toMatchObject({ status: 'creating', ns: 'host', root: 'host' });
    expect(runc.createContainer).toMatchObject({ status: 'creating', ns: 'container', root: 'host' });
    expect(runc.startContainer).toMatchObject({ status: 'created', ns: 'container', root: 'container' });
    expect(runc.poststart).toMatchObject({ status: 'running', ns: 'host' });
    expect(runc.poststop).toMatchObject({ status: 'stopped', ns: 'host' });
  }, 120_000);

  it('runs them with a user namespace in config.json in the namespaces and as the user runc\'s have', async () => {
    const runc = await lifecycle(runtimes(), 'userns', 'userns');
    // createContainer and startContainer in every namespace of the container's, root there; the others as the caller, in its
    for (const h of ['createContainer', 'startContainer'] as const) {
      expect(runc[h]).toMatchObject({ uid: '0', namespaces: Object.fromEntries(NS.map((n) => [n, n === 'cgroup' ? 'host' : 'container'])) });
    }
    expect(runc.prestart).toMatchObject({ uid: '0', namespaces: Object.fromEntries(NS.map((n) => [n, 'host'])) });
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

  for (const how of ['fails', 'outlives its timeout'] as const) {
    it(`a startContainer hook that ${how} ends the container before its command, start succeeding, as runc's`, () => failingStart(runtimes(), 'root', how), 90_000);
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

const rootlessOk = missing === null && requireFeature(unprivilegedUserns(), 'unprivileged user namespaces (rootless runtimes need one)');

describe.runIf(rootlessOk)('tsns-oci hooks beside runc (rootless)', () => {
  beforeAll(() => {
    // 65534's: the runtimes' --root dirs are made in it
    dir = workDir('hooks-rl', IS_ROOT ? USER : undefined);
  });
  afterAll(() => {
    for (const rt of rootlessRuntimes()) for (const id of ['h-rootless', 'h-start']) execaSyncQuiet(rt, ['delete', '--force', `${id}-${process.pid}`]);
    rmTree(dir);
  });

  it('runs the six hooks with a user namespace mapping the caller, in the namespaces and as the user runc\'s have', async () => {
    const runc = await lifecycle(rootlessRuntimes(), 'rootless', 'rootless');
    const caller = String(IS_ROOT ? USER.uid : process.geteuid!());
    expect(runc.prestart).toMatchObject({ uid: caller, namespaces: Object.fromEntries(NS.map((n) => [n, 'host'])) });
    expect(runc.poststop).toMatchObject({ uid: caller });
    for (const h of ['createContainer', 'startContainer'] as const) expect(runc[h]).toMatchObject({ uid: '0', namespaces: { user: 'container', mnt: 'container', pid: 'container' } });
  }, 120_000);

  it('a failing startContainer hook ends the container before its command, start succeeding, as runc\'s rootless', () => failingStart(rootlessRuntimes(), 'rootless', 'fails'), 90_000);
});

function execaSyncQuiet(rt: Rt, args: string[]): void {
  try {
    execaSync(rt.cmd, [...rt.pre, ...args], { reject: false, stdin: 'ignore', env: rt.env });
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
