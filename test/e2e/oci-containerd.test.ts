/**
 * containerd driving an OCI runtime through its runc shim
 * (io.containerd.runc.v2), against runc and against tsns-oci: `ctr run
 * --runc-binary` on a busybox root filesystem (exit status, output, a
 * detached task with exec and kill, a terminal), an image made offline
 * (podman import → save → ctr image import), and a pod run through the CRI,
 * as a kubelet runs one, with the RuntimeClass handler of the containerd
 * config that README.md documents (options.BinaryName = the runtime). Each
 * runtime gets a containerd of its own (root, state, sockets in a temp
 * dir), and the runtime command lines the shim used are recorded.
 */
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CriClient } from './cri-client';
import { removeReaper } from './reliability-lib';
import { IS_ROOT, ROOT } from './helpers';
import {
  busyboxImage, busyboxRootfs, containerdProbe, enginesPresent, overlayProbe, failedCalls, itOn, processesMentioning, recordCalls, recordedCalls, recordingWrapper, rmTree, RUNC,
  runtimesUnderTest, startContainerd, subcommand, waitFor, workDir, type Containerd, type Runtime,
} from './oci-lib';

const RUNTIMES = runtimesUnderTest().map((rt) => [rt.name, rt] as [string, Runtime]);
const missing = enginesPresent('containerd', 'ctr', 'containerd-shim-runc-v2', 'podman', 'script');
if (missing) console.warn(`skipping the containerd tests: they ${missing}`);
if (!IS_ROOT) console.warn('skipping the containerd tests: containerd runs as root only');

const IMAGE = 'localhost/tsns-test/busybox:1';
const PAUSE = 'localhost/tsns-test/pause:1';

/**
 * README.md's containerd config for the RuntimeClass handler `tsns`, with
 * BinaryName pointed at `binary` and the shim's runtime root kept in the
 * test's dir; the rest of the test's config (sockets, dirs, the pause image)
 * goes around it.
 */
function readmeRuntimeClass(binary: string, runtimeRoot: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('containerd.runtimes.tsns]'));
  if (!block) throw new Error('README.md has no containerd config with runtimes.tsns');
  const lines = block.split('\n').filter((l) => l.trim() !== 'version = 2');
  const at = lines.findIndex((l) => /^\s*BinaryName = /.test(l));
  expect(at, 'the README config sets options.BinaryName').toBeGreaterThan(0);
  const indent = /^\s*/.exec(lines[at]!)![0];
  lines.splice(at, 1, `${indent}BinaryName = ${JSON.stringify(binary)}`, `${indent}Root = ${JSON.stringify(runtimeRoot)}`);
  return lines.join('\n');
}

function criConfig(dir: string): string {
  return [
    '[plugins."io.containerd.grpc.v1.cri"]',
    `  sandbox_image = ${JSON.stringify(PAUSE)}`,
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    // The CRI gives a pod's sandbox oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE, which root lacks on some machines.
    '  restrict_oom_score_adj = true',
    '  [plugins."io.containerd.grpc.v1.cri".cni]',
    `    bin_dir = ${JSON.stringify(join(dir, 'cni-bin'))}`,
    `    conf_dir = ${JSON.stringify(join(dir, 'cni-conf'))}`,
    '  [plugins."io.containerd.grpc.v1.cri".containerd]',
    '    default_runtime_name = "runc"',
    // The default class: runc itself, with its root in the test's dir too.
    '  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
    '    runtime_type = "io.containerd.runc.v2"',
    '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
    `      BinaryName = ${JSON.stringify(RUNC)}`,
    `      Root = ${JSON.stringify(join(dir, 'runc-default'))}`,
  ].join('\n');
}

// containerd 1.6 puts its shims' sockets in /run/containerd/s whatever its config says: the dirs
// that were not there before are removed again once empty.
const HOST_DIRS = ['/run/containerd/s', '/run/containerd'].filter((d) => !existsSync(d));
afterAll(() => {
  removeReaper();
  for (const d of HOST_DIRS) {
    try {
      rmdirSync(d);
    } catch {
      /* not empty: in use by another containerd */
    }
  }
});

// Nested in a container, containerd may not run even runc's containers: then it says why, and these skip.
const cannot = IS_ROOT && !missing ? await containerdProbe() : null;
// An image is unpacked by the overlayfs snapshotter, which an overlay root refuses (runc's containers fail alike).
const noImages = IS_ROOT && !missing && !cannot ? overlayProbe() : null;

describe.runIf(IS_ROOT && !missing && !cannot).each(RUNTIMES)('containerd with %s', (_name, rt) => {
  let dir: string;
  let rootfs: string;
  let ctd: Containerd;
  let wrapper: { path: string; log: string };
  const runcRoot = () => join(dir, 'runc');
  /** ctr run with the runtime under test, its state and fifos in the test's dir. */
  const ctrRun = (args: readonly string[], opts = {}) =>
    ctd.ctr(['run', '--runtime', 'io.containerd.runc.v2', '--runc-binary', wrapper.path, '--runc-root', runcRoot(), '--fifo-dir', join(dir, 'fifo'), ...args], opts);

  beforeAll(async () => {
    dir = workDir(`containerd-${rt.name}`);
    rootfs = busyboxRootfs(join(dir, 'rootfs'));
    wrapper = recordingWrapper(dir, rt);
    const config = `${readmeRuntimeClass(wrapper.path, join(dir, 'runc-cri'))}\n${criConfig(dir)}`;
    ctd = await startContainerd(join(dir, 'ctd'), config, true);
  });

  // A failing test names the runtime calls that failed and the end of containerd's log (the shim logs the runtime's errors).
  let seen = 0;
  beforeEach(() => {
    seen = wrapper ? recordedCalls(wrapper.log).length : 0;
  });
  afterEach((ctx) => {
    if (!wrapper || ctx.task.result?.state !== 'fail') return;
    const errors = ctd.log().split('\n').filter((l) => /level=(error|warning)/.test(l) && !/cni/.test(l)).slice(-5).join('\n');
    console.warn(`${ctx.task.name} with ${rt.name}: ${failedCalls(recordedCalls(wrapper.log).slice(seen), [[dir, '$T']])}\ncontainerd's last errors:\n${errors}`);
  });

  afterAll(async () => {
    if (!ctd) return;
    for (const ns of ['default', 'k8s.io']) {
      const tasks = String((await ctd.ctr(['task', 'ls', '-q'], { namespace: ns })).stdout).split('\n').filter(Boolean);
      for (const t of tasks) await ctd.ctr(['task', 'rm', '-f', t], { namespace: ns });
      const cs = String((await ctd.ctr(['container', 'ls', '-q'], { namespace: ns })).stdout).split('\n').filter(Boolean);
      for (const c of cs) await ctd.ctr(['container', 'rm', c], { namespace: ns });
    }
    await ctd.stop();
    recordCalls('containerd (runc shim)', rt, recordedCalls(wrapper.log), [[dir, '$T']]);
    // No shim, no container process is left, and the runtime's state is gone.
    await waitFor('the shims to exit', () => processesMentioning(dir).length === 0, 10_000).catch(() => {});
    expect(processesMentioning(dir)).toEqual([]);
    for (const r of [runcRoot(), join(dir, 'runc-cri')]) {
      const left = existsSync(r) ? readdirSync(r).flatMap((ns) => readdirSync(join(r, ns)).map((c) => `${ns}/${c}`)) : [];
      expect(left, `${r} is empty`).toEqual([]);
    }
    if (!process.env.TSNS_OCI_KEEP) rmTree(dir);
  });

  const calls = () => recordedCalls(wrapper.log);

  it('ctr run --rm --runc-binary: exit status, output, and what the container sees', async () => {
    const before = calls().length;
    const r = await ctrRun(['--rm', '--rootfs', rootfs, 'c-run', '/bin/sh', '-c', 'echo hello; echo err >&2; echo pid=$$; exit 4']);
    expect(r.exitCode, String(r.stderr)).toBe(4);
    expect(r.stderr).toMatch(/^err$/m);
    expect(String(r.stdout).split('\n').slice(0, 2)).toEqual(['hello', 'pid=1']);
    const mine = calls().slice(before);
    expect(mine.map(subcommand).slice(0, 2)).toEqual(['create', 'start']);
    expect(mine.map(subcommand)).toContain('delete');
    // The shim names its state dir, a log file and JSON logs: containerd reads the runtime's errors back from them.
    expect(mine[0]!.slice(0, 6)).toEqual(['--root', join(runcRoot(), 'default'), '--log', expect.stringMatching(/log\.json$/), '--log-format', 'json']);
  });

  it('ctr run -d, task exec, task kill, task rm', async () => {
    const started = await ctrRun(['-d', '--rootfs', rootfs, 'c-detached', '/bin/sh', '-c', 'trap "exit 0" TERM; sleep 300 & wait']);
    expect(started.exitCode, String(started.stderr)).toBe(0);
    const ls = await ctd.ctr(['task', 'ls']);
    expect(String(ls.stdout)).toMatch(/^c-detached\s+\d+\s+RUNNING$/m);
    const exec = await ctd.ctr(['task', 'exec', '--fifo-dir', join(dir, 'fifo'), '--exec-id', 'e1', 'c-detached', '/bin/sh', '-c', 'echo exec-out; cat /proc/1/cmdline | tr "\\0" " "; exit 5']);
    expect(exec.exitCode, String(exec.stderr)).toBe(5);
    expect(String(exec.stdout).split('\n')).toEqual(['exec-out', '/bin/sh -c trap "exit 0" TERM; sleep 300 & wait ']);
    const kill = await ctd.ctr(['task', 'kill', 'c-detached']);
    expect(kill.exitCode, String(kill.stderr)).toBe(0);
    await waitFor('the task to stop', async () => /^c-detached\s+\d+\s+STOPPED$/m.test(String((await ctd.ctr(['task', 'ls'])).stdout)));
    expect((await ctd.ctr(['task', 'rm', 'c-detached'])).exitCode).toBe(0);
    expect((await ctd.ctr(['container', 'rm', 'c-detached'])).exitCode).toBe(0);
    const subs = calls().map(subcommand);
    expect(subs).toContain('exec');
    expect(subs).toContain('kill');
  });

  it('ctr run -t: the container\'s stdio is a terminal (the console socket)', async () => {
    const before = calls().length;
    // ctr -t needs a terminal of its own: script(1) gives it one (and echoes the NUL ctr writes to it as ^@).
    const line = ['ctr', '--address', ctd.address, 'run', '--rm', '-t', '--runtime', 'io.containerd.runc.v2', '--runc-binary', wrapper.path,
      '--runc-root', runcRoot(), '--fifo-dir', join(dir, 'fifo'), '--rootfs', rootfs, 'c-tty', '/bin/sh', '-c', 'test -t 0 && test -t 1 && tty'];
    const r = await execa('script', ['-qec', line.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' '), '/dev/null'], { reject: false, stdin: 'ignore', timeout: 60_000 });
    expect(r.exitCode, String(r.stdout)).toBe(0);
    expect(String(r.stdout).replace(/\r|\0|\^@/g, '').trim()).toBe('/dev/pts/0');
    expect(calls().slice(before).find((c) => subcommand(c) === 'create')).toContain('--console-socket');
  });

  it.skipIf(noImages)('an image made offline and imported (podman save → ctr image import) runs', async () => {
    const archive = await busyboxImage(dir, rootfs, IMAGE, ['/bin/sh', '-c', 'echo from-image; cat /etc/hostname 2>/dev/null; exit 0']);
    const imported = await ctd.ctr(['image', 'import', archive]);
    expect(imported.exitCode, String(imported.stderr)).toBe(0);
    const r = await ctrRun(['--rm', IMAGE, 'c-image']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout).split('\n')[0]).toBe('from-image');
  });

  (noImages ? it.skip : (title: string, fn: () => Promise<void>, timeout?: number) => itOn(rt, 'containerd', title, fn, timeout))('a pod through the CRI with RuntimeClass handler `tsns` (README\'s config): a container\'s exit code and log, exec in another', async () => {
    // The pause image and the workload's, into the CRI's namespace.
    const pause = await busyboxImage(dir, rootfs, PAUSE, ['/bin/sleep', '3600']);
    const image = await busyboxImage(dir, rootfs, IMAGE, ['/bin/sh']);
    for (const a of [pause, image]) {
      const r = await ctd.ctr(['image', 'import', a], { namespace: 'k8s.io' });
      expect(r.exitCode, String(r.stderr)).toBe(0);
    }
    const cri = new CriClient(ctd.address);
    const before = calls().length;
    try {
      expect((await cri.version()).runtimeName).toBe('containerd');
      const pod = { name: `pod-${rt.name}`, uid: `uid-${rt.name}`, namespace: 'default', logDirectory: join(dir, 'pod-logs') };
      // The handler as a RuntimeClass names it; images may need a moment to reach the CRI's store.
      const podId = await waitFor('the pause image in the CRI', () => cri.runPodSandbox(pod, 'tsns').catch((e: Error) => {
        if (/not found|no such image/i.test(e.message)) return '';
        throw e;
      }));
      const once = await cri.createContainer(podId, pod, { name: 'once', image: IMAGE, command: ['/bin/sh', '-c', 'echo from-pod; hostname; exit 6'], logPath: 'once.log' });
      await cri.startContainer(once);
      const done = await waitFor('the container to exit', async () => {
        const s = await cri.containerStatus(once);
        return s.state === 2 ? s : null;
      });
      expect(done.exitCode, done.message).toBe(6);
      const log = readFileSync(join(dir, 'pod-logs', 'once.log'), 'utf8');
      expect(log).toMatch(/ stdout F from-pod\n/);
      // A pod on the host's network has the host's name.
      expect(log).toMatch(new RegExp(` stdout F ${hostname()}\n`));

      const long = await cri.createContainer(podId, pod, { name: 'long', image: IMAGE, command: ['/bin/sh', '-c', 'trap "exit 0" TERM; sleep 300 & wait'], logPath: 'long.log' });
      await cri.startContainer(long);
      const ex = await cri.execSync(long, ['/bin/sh', '-c', 'echo exec-out; exit 3']);
      expect(ex).toEqual({ stdout: 'exec-out\n', stderr: '', exitCode: 3 });
      await cri.stopContainer(long, 10);
      expect((await cri.containerStatus(long)).exitCode).toBe(0);
      for (const c of [once, long]) await cri.removeContainer(c);
      await cri.stopPodSandbox(podId);
      await cri.removePodSandbox(podId);
      expect(await cri.listPodSandboxes()).toEqual([]);
    } finally {
      cri.close();
    }
    // The pod's sandbox and both containers went through the runtime of the handler, with its Root.
    const mine = calls().slice(before);
    const creates = mine.filter((c) => subcommand(c) === 'create');
    expect(creates).toHaveLength(3);
    for (const c of creates) expect(c.slice(0, 2)).toEqual(['--root', join(dir, 'runc-cri', 'k8s.io')]);
    expect(mine.map(subcommand)).toContain('exec');
  });
});
