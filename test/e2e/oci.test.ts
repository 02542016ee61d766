/**
 * tsns-oci beside runc on the same busybox bundle: the lifecycle's states,
 * the state JSON field by field, run's exit status and what the process sees,
 * and a foreground run (and exec) with a terminal but no --console-socket,
 * which uses the caller's terminal (script(1) gives the test one).
 */
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, cpSync, existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { specTemplate } from '../../src/oci/spec';
import { IS_ROOT, requireFeature, ROOT, unprivilegedUserns, USER } from './helpers';
import { enginesPresent, RUNC, runtimesUnderTest } from './oci-lib';

const BUSYBOX = '/bin/busybox';
// runc and busybox are probed (on CI their absence fails the run); the
// bundle's root filesystem is root's, so without root the file says so.
const missing = enginesPresent('runc', 'script', 'cc');
if (missing) console.warn(`skipping tsns-oci beside runc: it ${missing}`);
if (!IS_ROOT) console.warn('skipping tsns-oci beside runc as root: it needs root (its bundle is root\'s); the rootless comparison runs');
const have = missing === null && IS_ROOT;
let dir = '';

/** An edit for bundle(): the process gets a terminal (of that size). */
const terminal = (consoleSize?: { height: number; width: number }) => (c: Record<string, any>) => {
  c.process.terminal = true;
  if (consoleSize) c.process.consoleSize = consoleSize;
};

function bundle(args: string[], edit: (c: Record<string, any>) => void = () => {}, rootless = false): string {
  const b = mkdtempSync(join(dir, 'b-'));
  // searchable by a container's root that a user namespace maps elsewhere
  chmodSync(dir, 0o755);
  chmodSync(b, 0o755);
  const bin = join(b, 'rootfs', 'bin');
  mkdirSync(bin, { recursive: true });
  // the mount points: a container's root that a user namespace maps elsewhere may not make them in a rootfs of the host's root
  for (const d of ['proc', 'dev', 'sys']) mkdirSync(join(b, 'rootfs', d));
  cpSync(BUSYBOX, join(bin, 'busybox'));
  for (const name of ['sh', 'sleep', 'cat', 'id', 'hostname', 'ls', 'grep', 'ps', 'tr', 'stty', 'tty']) symlinkSync('busybox', join(bin, name));
  // rootless: `tsns-oci spec --rootless`'s, a user namespace mapping the caller to root
  const ids = rootless && IS_ROOT ? USER : { uid: process.geteuid!(), gid: process.getegid!() };
  const c = specTemplate(rootless, ids.uid, ids.gid) as Record<string, any>;
  c.process = { ...c.process, terminal: false, args };
  edit(c);
  writeFileSync(join(b, 'config.json'), JSON.stringify(c));
  if (rootless && IS_ROOT) chownTree(b);
  return b;
}

async function waitUntil(ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !(await ok()); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) throw new Error('timed out waiting');
  }
}

const runtimes = () => [
  { name: 'runc', cmd: RUNC, pre: ['--root', join(dir, 'runc-root')] },
  { name: 'tsns-oci', cmd: process.execPath, pre: [join(ROOT, 'bin', 'tsns-oci.js'), '--root', join(dir, 'tsns-root')] },
];

const q = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;

/**
 * A shell line run in a terminal of its own (script(1)), 20 rows by 70
 * columns, its keys typed a second after the start; what the terminal
 * showed, without its carriage returns and NULs.
 */
async function inTerminal(line: string, keys = ''): Promise<string> {
  const typed = keys ? `(sleep 1; printf %s ${q(keys)}; sleep 1)` : 'sleep 0';
  const script = `script -qec ${q(`stty rows 20 cols 70; ${line}`)} /dev/null`;
  const r = await execa('bash', ['-c', `${typed} | ${script}`], { reject: false, timeout: 60_000 });
  return String(r.stdout).replace(/\r|\0|\^@/g, '');
}

/**
 * --pidfd-socket on create, run -d and exec -d, each received by test/fixtures/pidfd-receiver.c: the
 * message runc 1.2 sends with it ("standard", "setns"), a pidfd, of the pid in --pid-file; it polls
 * readable once that process ends.
 */
async function pidfdThroughSocket(x: (...a: string[]) => Promise<unknown>, b: string): Promise<void> {
  const receiver = join(dir, 'pidfd-receiver');
  if (!existsSync(receiver)) await execa('cc', ['-O2', '-o', receiver, join(ROOT, 'test', 'fixtures', 'pidfd-receiver.c')]);
  /** One receiver, the call made while it listens; what it wrote, and the pid file's pid. */
  const through = async (tag: string, call: (sock: string, pidFile: string) => Promise<unknown>) => {
    const sock = join(dir, `${tag}.sock`);
    const out = join(dir, `${tag}.out`);
    const pidFile = join(dir, `${tag}.pid`);
    const r = execa(receiver, [sock, out], { reject: false });
    await new Promise<void>((res) => r.stdout!.once('data', () => res()));
    await call(sock, pidFile);
    await waitUntil(() => existsSync(out) && readFileSync(out, 'utf8').includes('\n'));
    return { r, out, line: readFileSync(out, 'utf8').trim(), pid: Number(readFileSync(pidFile, 'utf8')) };
  };
  try {
    const created = await through('create', (sock, pidFile) => x('create', '--bundle', b, '--pidfd-socket', sock, '--pid-file', pidFile, 'pfd-create'));
    expect(created.line).toBe(`standard anon_inode:[pidfd] ${created.pid}`);
    const ran = await through('run', (sock, pidFile) => x('run', '--detach', '--bundle', b, '--pidfd-socket', sock, '--pid-file', pidFile, 'pfd-run'));
    expect(ran.line).toBe(`standard anon_inode:[pidfd] ${ran.pid}`);
    const exec = await through('exec', (sock, pidFile) => x('exec', '--detach', '--pidfd-socket', sock, '--pid-file', pidFile, 'pfd-run', 'sleep', '100'));
    expect(exec.line).toBe(`setns anon_inode:[pidfd] ${exec.pid}`);
    expect(exec.pid).not.toBe(ran.pid);
    expect((await x('kill', 'pfd-create', 'KILL')) as { exitCode: number }).toMatchObject({ exitCode: 0 });
    await created.r;
    expect(readFileSync(created.out, 'utf8').split('\n')[1]).toBe('ended');
    expect((await x('kill', 'pfd-run', 'KILL')) as { exitCode: number }).toMatchObject({ exitCode: 0 });
    await ran.r;
    expect(readFileSync(ran.out, 'utf8').split('\n')[1]).toBe('ended');
    exec.r.kill();
  } finally {
    await x('delete', '--force', 'pfd-create');
    await x('delete', '--force', 'pfd-run');
  }
}

describe.skipIf(!have)('tsns-oci beside runc (root)', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsns-oci-e2e-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a command with the same output and exit status', async () => {
    const b = bundle(['sh', '-c', 'echo hi; hostname; id; cat /proc/self/uid_map; ls /proc/1/ns >/dev/null; exit 3']);
    const out = [];
    for (const rt of runtimes()) {
      const r = await execa(rt.cmd, [...rt.pre, 'run', '--bundle', b, `x-${rt.name}`], { reject: false });
      out.push({ code: r.exitCode, stdout: r.stdout });
    }
    expect(out[1]).toEqual(out[0]);
    expect(out[0]!.code).toBe(3);
  });

  it('lets the process use runc\'s default devices under the config\'s "deny all" device rule', async () => {
    // `runc spec` (and podman, and containerd) deny every device and leave the usual ones to the runtime.
    const probe = 'for d in null zero full random urandom ptmx; do if : < /dev/$d; then echo "$d ok"; else echo "$d denied"; fi 2>/dev/null; done; '
      + 'echo x > /dev/null && echo "write ok"; sleep 1 & wait $! < /dev/null && echo "background ok"';
    const b = bundle(['sh', '-c', probe]);
    const out = [];
    for (const rt of runtimes()) {
      const r = await execa(rt.cmd, [...rt.pre, 'run', '--bundle', b, `dev-${rt.name}`], { reject: false });
      out.push({ code: r.exitCode, stdout: r.stdout.split('\n') });
    }
    expect(out[0]).toEqual({ code: 0, stdout: ['null ok', 'zero ok', 'full ok', 'random ok', 'urandom ok', 'ptmx ok', 'write ok', 'background ok'] });
    expect(out[1]).toEqual(out[0]);
  });

  it('run in the foreground with a terminal and no --console-socket uses the caller\'s terminal', async () => {
    // The sleep: runc gives the pty the caller's size only once the process runs (tsns-oci before).
    const b = bundle(['sh', '-c', 'test -t 0 && test -t 1 && test -t 2 && tty; sleep 0.5; stty size; read x; echo "got=$x"; exit 4'], terminal());
    for (const rt of runtimes()) {
      const cmd = [rt.cmd, ...rt.pre, 'run', '--bundle', b, `tty-${rt.name}`].map(q).join(' ');
      // The caller's terminal is raw while the container runs (the key's \r reaches it as typed) and as before after.
      const out = await inTerminal(`before=$(stty -g); ${cmd}; echo "rc=$?"; test "$(stty -g)" = "$before" && echo restored`, 'hello\r');
      const lines = out.split('\n').map((l) => l.trim()).filter((l) => l !== 'hello');
      expect(lines.slice(0, 5), `${rt.name}: ${out}`).toEqual(['/dev/pts/0', '20 70', 'got=hello', 'rc=4', 'restored']);
    }
    expect(readdirSync(join(dir, 'tsns-root'))).toEqual([]);
  });

  it('resizes the container\'s terminal on SIGWINCH', async () => {
    // Born at the terminal's size: runc sets the caller's size only after the start, and a change then would be a SIGWINCH too.
    const b = bundle(['sh', '-c', 'trap "w=1" WINCH; stty size; until [ "$w" ]; do sleep 0.1; done; sleep 0.3; stty size'], terminal({ height: 20, width: 70 }));
    for (const rt of runtimes()) {
      const cmd = [rt.cmd, ...rt.pre, 'run', '--bundle', b, `winch-${rt.name}`].map(q).join(' ');
      // In the background (its stdin /dev/null, its stdout and stderr the terminal), told of the new size as a shell would.
      // stty may set rows and columns one at a time: the container answers once its size settled.
      const out = await inTerminal(`${cmd} & sleep 1.5; stty rows 30 cols 90; kill -WINCH $!; wait $!; echo "rc=$?"`);
      expect(out.split('\n').map((l) => l.trim()).filter(Boolean), `${rt.name}: ${out}`).toEqual(['20 70', '30 90', 'rc=0']);
    }
  });

  it('exec -t in the foreground uses the caller\'s terminal; a console socket only goes with a detached terminal', async () => {
    const b = bundle(['sleep', '100']);
    for (const rt of runtimes()) {
      const id = `exec-${rt.name}`;
      const x = (...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false, stdin: 'ignore' });
      expect((await execa(rt.cmd, [...rt.pre, 'run', '--detach', '--bundle', b, id], { reject: false, stdio: 'ignore' })).exitCode).toBe(0);
      try {
        // The sleep: runc gives the pty the caller's size only once the process runs.
        const cmd = [rt.cmd, ...rt.pre, 'exec', '-t', id, 'sh', '-c', 'tty; sleep 0.5; stty size; exit 6'].map(q).join(' ');
        expect((await inTerminal(`${cmd}; echo "rc=$?"`)).split('\n').map((l) => l.trim()).filter(Boolean), rt.name).toEqual(['/dev/pts/0', '20 70', 'rc=6']);
        // runc: "cannot use console socket if runc will not detach or allocate tty", and "cannot allocate tty if runc will detach without setting console socket"
        expect((await x('exec', '--console-socket', join(dir, 'no.sock'), id, 'true')).exitCode, rt.name).not.toBe(0);
        expect((await x('exec', '--detach', '--tty', id, 'true')).exitCode, rt.name).not.toBe(0);
      } finally {
        await x('delete', '--force', id);
      }
    }
  });

  it('a foreground terminal without any terminal to use fails, as runc\'s does, leaving nothing behind', async () => {
    const b = bundle(['true'], terminal());
    const seen: number[] = [];
    for (const rt of runtimes()) {
      // setsid: no controlling terminal either.
      const r = await execa('setsid', ['-w', rt.cmd, ...rt.pre, 'run', '--bundle', b, `none-${rt.name}`], { reject: false, stdin: 'ignore' });
      seen.push(r.exitCode ?? -1);
      if (rt.name === 'tsns-oci') {
        expect(r.exitCode).toBe(125);
        expect(r.stderr).toMatch(/^tsns: cannot give the container a terminal: .*\(ENXIO\)\nhint: /);
      }
    }
    expect(seen[0]).not.toBe(0);
    expect(readdirSync(join(dir, 'tsns-root'))).toEqual([]);
  });

  it('goes through create, start, kill, delete with runc\'s states and state JSON', async () => {
    const b = bundle(['sleep', '100']);
    const seen: Record<string, unknown>[][] = [];
    for (const rt of runtimes()) {
      const x = (...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false });
      // The container keeps create's stdio: not execa's pipes, which would stay open.
      const detached = (...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false, stdio: 'ignore' });
      const id = 'life';
      const steps: Record<string, unknown>[] = [];
      expect((await detached('create', '--bundle', b, '--pid-file', join(dir, `${rt.name}.pid`), id)).exitCode).toBe(0);
      steps.push(JSON.parse((await x('state', id)).stdout));
      expect((await x('start', id)).exitCode).toBe(0);
      steps.push(JSON.parse((await x('state', id)).stdout));
      expect((await x('kill', id, '9')).exitCode).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      steps.push(JSON.parse((await x('state', id)).stdout));
      expect((await x('delete', id)).exitCode).toBe(0);
      expect((await x('state', id)).exitCode).not.toBe(0);
      seen.push(steps);
    }
    const shape = (s: Record<string, unknown>) => ({ keys: Object.keys(s), status: s.status, bundle: s.bundle, rootfs: s.rootfs, id: s.id, pidZero: s.pid === 0, owner: s.owner });
    expect(seen[1]!.map(shape)).toEqual(seen[0]!.map(shape));
    expect(seen[1]!.map((s) => s.status)).toEqual(['created', 'running', 'stopped']);
    expect(readdirSync(join(dir, 'tsns-root'))).toEqual([]);
  });

  // create runs tsns-oci-init to its end with spawnSync (its binding, or node:child_process's where
  // --pending-deprecation would make process.binding warn): its spec and report are files unlinked at once.
  for (const pending of [false, true]) it(`create leaves runc's files in its state directory and nothing on stderr${pending ? ' (NODE_PENDING_DEPRECATION=1)' : ''}`, async () => {
    const b = bundle(['sleep', '100']);
    const rt = runtimes()[1]!;
    const env = { ...process.env, NODE_PENDING_DEPRECATION: pending ? '1' : '0' };
    const x = (...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false, env });
    const errFile = join(dir, 'create.err');
    const id = `files${pending ? '-pd' : ''}`;
    try {
      // stderr a file of its own, not execa's pipe, which the container's process would hold open
      const errFd = openSync(errFile, 'w');
      const created = spawnSync(rt.cmd, [...rt.pre, 'create', '--bundle', b, '--pid-file', join(dir, 'files.pid'), id], { env, stdio: ['ignore', 'ignore', errFd] });
      closeSync(errFd);
      expect(created.status).toBe(0);
      expect(readFileSync(errFile, 'utf8')).toBe('');
      expect(readdirSync(join(dir, 'tsns-root', id)).sort()).toEqual(['exec.fifo', 'state.json']);
      const pid = Number(readFileSync(join(dir, 'files.pid'), 'utf8'));
      expect(JSON.parse((await x('state', id)).stdout)).toMatchObject({ pid, status: 'created' });
      expect((await x('start', id)).exitCode).toBe(0);
      await waitUntil(() => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep');
      // after its exec the command holds only its stdio
      expect(readdirSync(`/proc/${pid}/fd`).sort()).toEqual(['0', '1', '2']);
    } finally {
      await x('delete', '--force', id);
    }
  });

  // A pod's namespaces, held by its pause container: the pid namespace alone, or with a user namespace of the pod's (a CRI pod with one).
  const USERNS_MAP = [{ containerID: 0, hostID: 200000, size: 65536 }];
  const podUserns = (c: Record<string, any>) => {
    c.linux.namespaces.push({ type: 'user' });
    c.linux.uidMappings = USERNS_MAP;
    c.linux.gidMappings = USERNS_MAP;
  };
  for (const withUser of [false, true]) it(`joins a pid namespace by path (a pod's)${withUser ? ' with its user namespace' : ''} with the command itself in --pid-file and run exiting with its status`, async () => {
    const pause = bundle(['sleep', '100'], withUser ? podUserns : () => {});
    const out = [];
    for (const rt of runtimes()) {
      const x = (...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false, stdio: 'ignore' });
      const state = async (id: string) => JSON.parse((await execa(rt.cmd, [...rt.pre, 'state', id], { reject: false })).stdout) as { pid: number };
      try {
        expect((await x('run', '--detach', '--bundle', pause, 'pause')).exitCode).toBe(0);
        const held = (await state('pause')).pid;
        const joining = (args: string[]) => bundle(args, (c) => {
          c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${held}/ns/pid` } : n));
          if (withUser) c.linux.namespaces.push({ type: 'user', path: `/proc/${held}/ns/user` });
          // runc wants the pod's mappings in a config that joins its user namespace, as the CRI writes them
          if (withUser) Object.assign(c.linux, { uidMappings: USERNS_MAP, gidMappings: USERNS_MAP });
        });
        const once = await execa(rt.cmd, [...rt.pre, 'run', '--bundle', joining(['sh', '-c', 'echo "pid $$"; exit 6']), 'once'], { reject: false });
        // The engine's shim waits for the pid in --pid-file: it must be the container's process, not a parent of it.
        const pidFile = join(dir, `${rt.name}-joined.pid`);
        expect((await x('create', '--bundle', joining(['sleep', '100']), '--pid-file', pidFile, 'joined')).exitCode).toBe(0);
        const pid = Number(readFileSync(pidFile, 'utf8'));
        expect((await x('start', 'joined')).exitCode).toBe(0);
        await waitUntil(() => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep', 3000).catch(() => {});
        const inPod = ['pid', 'user'].every((n) => readlinkSync(`/proc/${pid}/ns/${n}`) === readlinkSync(`/proc/${held}/ns/${n}`));
        out.push({ code: once.exitCode, stdout: once.stdout, comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), statePid: (await state('joined')).pid === pid, inPod });
      } finally {
        await x('delete', '--force', 'joined');
        await x('delete', '--force', 'once');
        await x('delete', '--force', 'pause');
      }
    }
    // (its pid there is not 1, the pause's; which number is each runtime's own: runc's stages take some)
    expect(out.map((o) => ({ ...o, stdout: /^pid ([2-9]|\d\d+)$/.test(o.stdout) }))).toEqual([0, 1].map(() => ({ code: 6, stdout: true, comm: 'sleep', statePid: true, inPod: true })));
  });

  // runc 1.1.5 takes such mappings unread; tsns-oci checks them as runc 1.2 does.
  it('refuses mappings beside a joined user namespace that are not that namespace\'s, leaving nothing behind', async () => {
    const rt = runtimes()[1]!;
    const x = (...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      expect((await execa(rt.cmd, [...rt.pre, 'run', '--detach', '--bundle', bundle(['sleep', '100'], podUserns), 'maps-pause'], { reject: false, stdio: 'ignore' })).exitCode).toBe(0);
      const held = (JSON.parse((await execa(rt.cmd, [...rt.pre, 'state', 'maps-pause'])).stdout) as { pid: number }).pid;
      const joining = (uidMappings: unknown[]) => bundle(['sh', '-c', 'hostname; cat /proc/self/uid_map'], (c) => {
        c.linux.namespaces.push({ type: 'user', path: `/proc/${held}/ns/user` });
        Object.assign(c.linux, { uidMappings, gidMappings: USERNS_MAP });
      });
      const wrong = await x('create', '--bundle', joining([{ containerID: 0, hostID: 100000, size: 65536 }]), 'maps-wrong');
      expect({ code: wrong.exitCode, stderr: wrong.stderr }).toEqual({
        code: 125,
        stderr: expect.stringMatching(new RegExp(`^tsns: .*config\\.json: linux\\.uidMappings: 0 100000 65536 is not the mapping of the user namespace joined at /proc/${held}/ns/user, which is 0 200000 65536\n`)),
      });
      expect(existsSync(join(dir, 'tsns-root', 'maps-wrong'))).toBe(false);
      // the new namespaces are the joined one's, as runc's: the UTS namespace's hostname can be set
      const right = await execa(rt.cmd, [...rt.pre, 'run', '--bundle', joining(USERNS_MAP), 'maps-right'], { reject: false, stdin: 'ignore' });
      expect({ code: right.exitCode, stdout: right.stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' ')), stderr: right.stderr }).toEqual({ code: 0, stdout: ['tsns', '0 200000 65536'], stderr: '' });
    } finally {
      await x('delete', '--force', 'maps-right');
      await x('delete', '--force', 'maps-pause');
    }
  });

  // runc 1.2's --pidfd-socket (runc 1.1 here has none, so tsns-oci alone): the pidfd of the process in --pid-file, as its fdinfo says.
  it('--pidfd-socket on create, run and exec sends a pidfd of the process in --pid-file', async () => {
    const rt = runtimes().find((r) => r.name === 'tsns-oci')!;
    await pidfdThroughSocket((...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false, stdio: 'ignore' }), bundle(['sleep', '100']));
  });

  it('kill --all signals every process of the container, as runc\'s', async () => {
    // Once both children are gone the shell (PID 1 there, which TERM without a handler does not end) goes on.
    const b = bundle(['sh', '-c', 'sleep 100 & sleep 101 & wait; exec sleep 102']);
    const left = [];
    for (const rt of runtimes()) {
      const x = (...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false, stdio: 'ignore' });
      try {
        expect((await x('run', '--detach', '--bundle', b, 'all')).exitCode).toBe(0);
        const pid = JSON.parse((await execa(rt.cmd, [...rt.pre, 'state', 'all'])).stdout).pid as number;
        await waitUntil(() => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').length === 2);
        const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').map(Number);
        expect((await x('kill', '--all', 'all', 'TERM')).exitCode).toBe(0);
        await waitUntil(() => children.every((c) => !existsSync(`/proc/${c}/stat`) || readFileSync(`/proc/${c}/stat`, 'utf8').split(') ')[1]!.startsWith('Z')));
        left.push((await execa(rt.cmd, [...rt.pre, 'state', 'all'])).stdout.includes('"running"'));
        expect((await x('kill', '--all', 'all', 'KILL')).exitCode).toBe(0);
        await waitUntil(async () => (await execa(rt.cmd, [...rt.pre, 'state', 'all'])).stdout.includes('"stopped"'));
        expect((await x('delete', 'all')).exitCode).toBe(0);
      } finally {
        await x('delete', '--force', 'all');
      }
    }
    expect(left).toEqual([true, true]);
  });

  it('features: valid JSON with runc\'s fields; namespaces and capabilities this kernel has, and mount options config.json takes', async () => {
    const [runc, t] = runtimes();
    const mine = JSON.parse((await execa(t!.cmd, [...t!.pre, 'features'])).stdout) as Record<string, any>;
    const theirs = JSON.parse((await execa(runc!.cmd, [...runc!.pre, 'features'], { reject: false })).stdout || '{}') as Record<string, any>;
    for (const k of Object.keys(theirs)) if (k !== 'annotations' && k !== 'potentiallyUnsafeConfigAnnotations') expect(mine, `features.${k}`).toHaveProperty(k);
    expect(mine.ociVersionMin).toMatch(/^1\.0\./);
    expect(mine.ociVersionMax).toMatch(/^1\.\d+\.\d+/);
    // Each namespace it claims is one this kernel has.
    for (const ns of mine.linux.namespaces as string[]) {
      const proc = { network: 'net', mount: 'mnt' }[ns] ?? ns;
      expect(existsSync(`/proc/self/ns/${proc}`), `namespace ${ns}`).toBe(true);
    }
    // Each capability it claims, this kernel has.
    expect(mine.linux.capabilities.length).toBeLessThanOrEqual(Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')) + 1);
    // Each mount option it claims, it takes: a config with each (a tmpfs apiece) is not refused for one.
    const opts = mine.mountOptions as string[];
    const b = bundle(['true'], (c) => c.mounts.push(...opts.map((opt, i) => ({ destination: `/mnt/o${i}`, type: 'tmpfs', source: 'tmpfs', options: [opt] }))));
    const r = await execa(t!.cmd, [...t!.pre, 'create', '--bundle', b, 'opt'], { reject: false, stdin: 'ignore', stdout: 'ignore' });
    await execa(t!.cmd, [...t!.pre, 'delete', '--force', 'opt'], { reject: false });
    const refused = /not supported|unknown mount option/i.test(r.stderr) ? [r.stderr] : [];
    expect(refused).toEqual([]);
  });

  it('fails create for a missing command, leaving nothing behind', async () => {
    const b = bundle(['no-such-command']);
    const [, t] = runtimes();
    const r = await execa(t!.cmd, [...t!.pre, 'create', '--bundle', b, 'missing'], { reject: false, stdin: 'ignore', stdout: 'ignore' });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^tsns: cannot start container process: exec: "no-such-command": executable file not found in \$PATH: No such file or directory \(ENOENT\)/);
    expect(existsSync(join(dir, 'tsns-root', 'missing'))).toBe(false);
  });
});

// Without root: the bundle is the caller's, with a user namespace mapping it (as `spec --rootless`
// writes), each runtime's state in a private --root; runc is rootless too, beside it. Root runs
// these as 65534 (setpriv), with the copy of tsns that 65534 may read.
const rootlessOk = missing === null && requireFeature(unprivilegedUserns(), 'unprivileged user namespaces (tsns-oci rootless needs one)');
const unprivileged = () => {
  if (!IS_ROOT) return { cmd: (path: string) => path, pre: [] as string[], oci: join(ROOT, 'bin', 'tsns-oci.js') };
  const wrap = [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', 'env', `HOME=${dir}`];
  return { cmd: () => 'setpriv', pre: wrap, oci: runtimesUnderTest().find((r) => r.name === 'tsns-oci')!.userPath() };
};
const rootlessRuntimes = () => {
  const u = unprivileged();
  return [
    { name: 'runc', cmd: u.cmd(RUNC), pre: [...u.pre, ...(IS_ROOT ? [RUNC] : []), '--root', join(dir, 'runc-root')] },
    { name: 'tsns-oci', cmd: u.cmd(process.execPath), pre: [...u.pre, ...(IS_ROOT ? [process.execPath] : []), u.oci, '--root', join(dir, 'tsns-root')] },
  ];
};

function chownTree(path: string): void {
  lchownSync(path, USER.uid, USER.gid);
  if (lstatSync(path).isDirectory()) for (const n of readdirSync(path)) chownTree(join(path, n));
}

describe.runIf(rootlessOk)('tsns-oci beside runc (rootless)', () => {
  const runtimes = rootlessRuntimes;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsns-oci-e2e-'));
    // 65534's: the runtimes' --root dirs are made in it
    if (IS_ROOT) chownSync(dir, USER.uid, USER.gid);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // No XDG_RUNTIME_DIR of the caller's: every state dir is the test's own.
  const env = { XDG_RUNTIME_DIR: '' };

  it('runs a command with the same output and exit status', async () => {
    const b = bundle(['sh', '-c', 'echo hi; id; cat /proc/self/uid_map; hostname; exit 3'], () => {}, true);
    const out = [];
    for (const rt of runtimes()) {
      const r = await execa(rt.cmd, [...rt.pre, 'run', '--bundle', b, `x-${rt.name}`], { reject: false, env });
      out.push({ code: r.exitCode, stdout: r.stdout });
    }
    expect(out[1]).toEqual(out[0]);
    expect(out[0]!.code).toBe(3);
    expect(out[0]!.stdout.split('\n').slice(0, 2)).toEqual(['hi', 'uid=0 gid=0']);
  });

  it('goes through create, start, kill, delete with runc\'s states, leaving nothing in --root', async () => {
    const b = bundle(['sleep', '100'], () => {}, true);
    const seen: Record<string, unknown>[][] = [];
    for (const rt of runtimes()) {
      const x = (...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false, env });
      const detached = (...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false, stdio: 'ignore', env });
      const steps: Record<string, unknown>[] = [];
      try {
        // The container keeps create's stdio: no pipe of execa's, which would stay open.
        expect((await detached('create', '--bundle', b, 'life')).exitCode, `${rt.name} create`).toBe(0);
        steps.push(JSON.parse((await x('state', 'life')).stdout));
        expect((await x('start', 'life')).exitCode).toBe(0);
        steps.push(JSON.parse((await x('state', 'life')).stdout));
        expect((await x('kill', 'life', 'KILL')).exitCode).toBe(0);
        await waitUntil(async () => JSON.parse((await x('state', 'life')).stdout).status === 'stopped');
        steps.push(JSON.parse((await x('state', 'life')).stdout));
        expect((await x('delete', 'life')).exitCode).toBe(0);
        expect((await x('state', 'life')).exitCode).toBe(1);
      } finally {
        await detached('delete', '--force', 'life');
      }
      seen.push(steps);
    }
    const shape = (s: Record<string, unknown>) => ({ keys: Object.keys(s).sort(), status: s.status, bundle: s.bundle, id: s.id, owner: s.owner });
    expect(seen[1]!.map(shape)).toEqual(seen[0]!.map(shape));
    expect(seen[1]!.map((s) => s.status)).toEqual(['created', 'running', 'stopped']);
    expect(readdirSync(join(dir, 'tsns-root'))).toEqual([]);
  });

  it('--pidfd-socket on create, run and exec sends a pidfd of the process in --pid-file, rootless', async () => {
    const rt = runtimes().find((r) => r.name === 'tsns-oci')!;
    // the receiver is the test's (root's, as the engine's would be): its socket is open to all
    await pidfdThroughSocket((...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false, stdio: 'ignore', env }), bundle(['sleep', '100'], () => {}, true));
  });

  it('refuses additionalGids as runc does rootless, leaving nothing behind', async () => {
    const b = bundle(['true'], (c) => (c.process.user.additionalGids = [0]), true);
    const codes = [];
    for (const rt of runtimes()) {
      const r = await execa(rt.cmd, [...rt.pre, 'create', '--bundle', b, 'groups'], { reject: false, stdin: 'ignore', stdout: 'ignore', env });
      codes.push(r.exitCode !== 0);
      if (rt.name === 'tsns-oci') expect(r.stderr).toMatch(/^tsns: \S*config\.json: process\.user\.additionalGids: cannot set any additional groups in a rootless container/);
      await execa(rt.cmd, [...rt.pre, 'delete', '--force', 'groups'], { reject: false, env });
    }
    expect(codes).toEqual([true, true]);
    expect(readdirSync(join(dir, 'tsns-root'))).toEqual([]);
  });

  it('run in the foreground with a terminal and no --console-socket uses the caller\'s terminal', async () => {
    const b = bundle(['sh', '-c', 'tty; stty size; id -u; exit 3'], terminal(), true);
    for (const rt of runtimes()) {
      const line = [rt.cmd, ...rt.pre, 'run', '--bundle', b, `rl-${rt.name}`].map(q).join(' ');
      const out = await inTerminal(`${line}; echo "rc=$?"`);
      expect(out.split('\n').map((l) => l.trim()).filter(Boolean), `${rt.name}: ${out}`).toEqual(['/dev/pts/0', '20 70', '0', 'rc=3']);
    }
    expect(readdirSync(join(dir, 'tsns-root'))).toEqual([]);
  });
});
