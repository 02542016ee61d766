/**
 * For the engine tests of tsns-oci: the OCI runtimes under test (runc and
 * tsns-oci, side by side), a busybox root filesystem (no registry is
 * reachable), a `runc spec`-style bundle, a wrapper that records every
 * command line an engine gives the runtime, podman on a store of its own,
 * and a private containerd (its own root, state, sockets and config, all in
 * one temp dir). Nothing here touches the machine's own podman or containerd
 * state.
 */
import { execa, type Options, type ResultPromise } from 'execa';
import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, copyFileSync, existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, inject, it } from 'vitest';
import { CI, IS_ROOT, ROOT, USER } from './helpers';
import { reaper } from './reliability-lib';

export const RUNC = '/usr/sbin/runc';
export const BUSYBOX = '/bin/busybox';

export interface Runtime {
  /** The name the engines see (the wrapper is called so): runc, tsns-oci, crun. */
  name: string;
  /** The binary as root runs it. */
  path: string;
  /** The binary as user 65534 runs it (a world-readable copy for tsns-oci). */
  userPath(): string;
}

/**
 * The runtimes every engine test runs against: runc first (the reference),
 * then tsns-oci. TSNS_OCI_RUNTIMES=runc,tsns-oci,crun (names or paths) picks
 * others. A runtime that is not there is left out with a line saying so.
 */
export function runtimesUnderTest(): Runtime[] {
  const wanted = (process.env.TSNS_OCI_RUNTIMES ?? 'runc,tsns-oci').split(',').map((s) => s.trim()).filter(Boolean);
  const out: Runtime[] = [];
  for (const w of wanted) {
    const rt = runtimeNamed(w);
    if (rt === null) {
      console.warn(`not testing the OCI runtime '${w}': it is not there`);
      continue;
    }
    out.push(rt);
  }
  return out;
}

function runtimeNamed(w: string): Runtime | null {
  if (w === 'tsns-oci') {
    const path = join(ROOT, 'bin', 'tsns-oci.js');
    if (!existsSync(path)) return null;
    return { name: 'tsns-oci', path, userPath: () => (IS_ROOT ? join(inject('stagedRoot'), 'bin', 'tsns-oci.js') : path) };
  }
  const path = w.includes('/') ? w : w === 'runc' ? RUNC : which(w);
  if (path === null || !existsSync(path)) return null;
  return { name: basename(path).replace(/\.js$/, ''), path, userPath: () => path };
}

function which(name: string): string | null {
  for (const d of (process.env.PATH ?? '').split(':')) if (d && existsSync(join(d, name))) return join(d, name);
  return null;
}

/** A temp dir of the test's own, its name short (podman refuses a runroot over 50 characters); `chownTo` makes it 65534's (for rootless engines). */
export function workDir(prefix: string, chownTo?: { uid: number; gid: number }): string {
  const dir = mkdtempSync(join(tmpdir(), `tsns-oci-${prefix}-`));
  if (chownTo) chownSync(dir, chownTo.uid, chownTo.gid);
  chmodSync(dir, 0o755);
  return dir;
}

/**
 * A describe's work directory, given to `use` before its tests (65534's,
 * as root, for the rootless cases), removed after them unless TSNS_OCI_KEEP
 * is set; and names unique in it.
 */
export function suiteDir(prefix: string, use: (dir: string) => void): (what: string) => string {
  let dir = '';
  let n = 0;
  beforeAll(() => use((dir = workDir(prefix, IS_ROOT ? USER : undefined))));
  afterAll(() => {
    if (!process.env.TSNS_OCI_KEEP) rmTree(dir);
  });
  return (what) => `${what}-${process.pid}-${n++}`;
}

/** A bundle in dir/name (busybox, 65534's when rootless) with an /out dir anyone may write, bound at /out; `prepare` adds to the rootfs first. */
export function withOutDir(dir: string, name: string, config: Record<string, any>, rootless = false, prepare?: (rootfs: string) => void): { bundle: string; out: string; rootfs: string } {
  const b = join(dir, name);
  mkdirSync(b, { recursive: true });
  const owner = rootless && IS_ROOT ? USER : undefined;
  const rootfs = join(b, 'rootfs');
  mkdirSync(rootfs);
  prepare?.(rootfs);
  busyboxRootfs(rootfs, owner);
  const out = join(b, 'out');
  mkdirSync(out);
  chmodSync(out, 0o777);
  config.mounts.push({ destination: '/out', type: 'bind', source: out, options: ['rbind', 'rw'] });
  writeFileSync(join(b, 'config.json'), JSON.stringify(config, null, 2));
  if (owner) for (const p of [b, join(b, 'config.json')]) chownSync(p, owner.uid, owner.gid);
  return { bundle: b, out, rootfs };
}

/** A busybox root filesystem: every applet a relative link to /bin/busybox, and the dirs engines mount on. */
export function busyboxRootfs(dir: string, owner?: { uid: number; gid: number }): string {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'etc', 'run', 'root']) mkdirSync(join(dir, d), { recursive: true });
  chmodSync(join(dir, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(dir, 'bin', 'busybox'));
  chmodSync(join(dir, 'bin', 'busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) if (!existsSync(join(dir, 'bin', a))) symlinkSync('busybox', join(dir, 'bin', a));
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  if (owner) chownTree(dir, owner);
  return dir;
}

function chownTree(path: string, owner: { uid: number; gid: number }): void {
  // lchown: the applet links themselves, not busybox through them.
  lchownSync(path, owner.uid, owner.gid);
  if (lstatSync(path).isDirectory()) {
    for (const n of readdirSync(path)) chownTree(join(path, n), owner);
  }
}

/** `runc spec`'s config.json (as runc 1.1 writes it), with these args; root.path 'rootfs'. */
export function runcSpec(args: readonly string[], opts: { terminal?: boolean; readonly?: boolean } = {}): Record<string, unknown> {
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: opts.terminal ?? false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: Object.fromEntries(['bounding', 'effective', 'permitted', 'ambient'].map((k) => [k, ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']])),
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: opts.readonly ?? true },
    hostname: 'runc',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
        '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** A bundle dir: rootfs/ (busybox) and config.json. */
export function bundle(dir: string, config: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  busyboxRootfs(join(dir, 'rootfs'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}

// ---------------------------------------------------------------- the recording wrapper
/** One call an engine made: the runtime's arguments as it got them, and the runtime's exit status. */
export type Call = string[] & { status: number };

/**
 * A script named like the runtime, which runs the runtime and appends its
 * argv and exit status to a log. Engines that pass no --root (podman) get
 * `--root STATE`, so that the runtime's state stays in the test's temp dir.
 * The script stays the runtime's parent (no exec) to learn the status: a
 * runtime's calls are short (create returns once the container waits), and
 * what they leave running is reparented to the engine's subreaper as before.
 */
export function recordingWrapper(dir: string, rt: Runtime, opts: { state?: string; forUser?: boolean } = {}): { path: string; log: string } {
  const binDir = join(dir, `bin-${rt.name}`);
  mkdirSync(binDir, { recursive: true });
  const log = join(dir, `calls-${rt.name}.log`);
  writeFileSync(log, '');
  if (opts.forUser && IS_ROOT) chownSync(log, USER.uid, USER.gid);
  const target = q(opts.forUser ? rt.userPath() : rt.path);
  const call = opts.state
    ? `root=(--root ${q(opts.state)})\nfor a in "$@"; do case $a in --root|--root=*) root=();; esac; done\n${target} "\${root[@]}" "$@"`
    : `${target} "$@"`;
  const path = join(binDir, rt.name);
  // One write per call (fields \x1f, the status after \x1d, records \x1e): calls that overlap do not interleave.
  writeFileSync(path, `#!/bin/bash\nline=$(printf '%s\\x1f' "$@")\n${call}\nrc=$?\nprintf '%s\\x1d%s\\x1e' "$line" "$rc" >> ${q(log)}\nexit $rc\n`);
  chmodSync(path, 0o755);
  chmodSync(binDir, 0o755);
  return { path, log };
}

export function recordedCalls(log: string): Call[] {
  const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
  return text.split('\x1e').filter((r) => r !== '').map((r) => {
    const [fields, status] = r.split('\x1d');
    return Object.assign(fields!.split('\x1f').slice(0, -1), { status: Number(status) });
  });
}

/** The calls that failed, one shell line each with the status: for a failing test's message. */
export function failedCalls(calls: readonly Call[], replace: [string, string][] = []): string {
  const bad = calls.filter((c) => c.status !== 0);
  return bad.length ? `runtime calls that failed:\n${bad.map((c) => `  [exit ${c.status}] ${showCall(c, replace)}`).join('\n')}` : 'no runtime call failed';
}

/** A call as a shell line, with the test's temp dirs and container ids made readable. */
export function showCall(call: readonly string[], replace: [string, string][] = []): string {
  return call.map((a) => {
    let s = a;
    for (const [from, to] of replace) s = s.split(from).join(to);
    s = s.replace(/\b[0-9a-f]{64}\b/g, '<id>');
    return /^[\w@%+=:,./<>-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
  }).join(' ');
}

/** The subcommand of a call (the first word that is not a global option or its value). */
export function subcommand(call: Call): string {
  const withValue = new Set(['--root', '--log', '--log-format', '--criu', '--rootless']);
  for (let i = 0; i < call.length; i++) {
    const a = call[i]!;
    if (withValue.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return '';
}

const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

// ---------------------------------------------------------------- podman
export interface Podman {
  (args: readonly string[], opts?: Options): ResultPromise;
  dir: string;
  calls(): Call[];
  wrapper: string;
}

/**
 * podman with the runtime behind a recording wrapper, on a store of its own
 * (--root/--runroot/tmp_dir in `dir`), no network, cgroupfs, no event log;
 * CONTAINERS_CONF sets `default_ulimits = []`: podman's defaults raise the
 * nofile/nproc hard limits, which needs CAP_SYS_RESOURCE (root lacks it
 * here, so every runtime fails them). `rootless`: as user 65534, with
 * HOME and XDG_RUNTIME_DIR in `dir` (which must be 65534's).
 */
export function podmanFor(dir: string, rt: Runtime, opts: { rootless?: boolean } = {}): Podman {
  const rootless = opts.rootless === true;
  const w = recordingWrapper(dir, rt, { state: join(dir, 'runtime-state'), forUser: rootless });
  const conf = join(dir, 'containers.conf');
  writeFileSync(conf, `[containers]\ndefault_ulimits = []\n\n[engine]\ntmp_dir = ${JSON.stringify(join(dir, 'tmp'))}\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n`);
  chmodSync(conf, 0o644);
  const env: Record<string, string> = { CONTAINERS_CONF: conf };
  if (rootless) {
    const xdg = join(dir, 'xdg');
    mkdirSync(xdg, { recursive: true, mode: 0o700 });
    if (IS_ROOT) chownSync(xdg, USER.uid, USER.gid);
    Object.assign(env, { HOME: dir, XDG_RUNTIME_DIR: xdg });
  }
  const base = ['--root', join(dir, 'storage'), '--runroot', join(dir, 'runroot'), '--storage-driver', 'vfs', '--runtime', w.path];
  const fn = ((args: readonly string[], o: Options = {}) => {
    // rootless podman chdirs to its caller's directory, which a checkout in a 0700 home or mktemp -d denies 65534
    const options: Options = { reject: false, timeout: 60_000, stdin: 'ignore', ...(rootless ? { cwd: dir } : {}), ...o, env: { ...env, ...(o.env ?? {}) } };
    if (rootless && IS_ROOT) {
      return execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', 'podman', ...base, ...args], options);
    }
    return execa('podman', [...base, ...args], options);
  }) as Podman;
  fn.dir = dir;
  fn.calls = () => recordedCalls(w.log);
  fn.wrapper = w.path;
  return fn;
}

/** An image made from a root filesystem offline (podman import → save), as an OCI archive. */
export async function busyboxImage(dir: string, rootfs: string, ref: string, cmd: readonly string[]): Promise<string> {
  const tar = join(dir, 'rootfs.tar');
  await execa('tar', ['-C', rootfs, '-cf', tar, '.']);
  const store = ['--root', join(dir, 'image-storage'), '--runroot', join(dir, 'irun'), '--storage-driver', 'vfs'];
  const env = { CONTAINERS_CONF: join(dir, 'containers.conf') };
  if (!existsSync(env.CONTAINERS_CONF)) writeFileSync(env.CONTAINERS_CONF, `[engine]\ntmp_dir = ${JSON.stringify(join(dir, 'image-tmp'))}\nevents_logger = "none"\n`);
  await execa('podman', [...store, 'import', '--change', `CMD ${JSON.stringify(cmd)}`, tar, ref], { env });
  const archive = join(dir, `${ref.replace(/[^\w.-]+/g, '_')}.oci.tar`);
  await execa('podman', [...store, 'save', '--format', 'oci-archive', '-o', archive, ref], { env });
  rmSync(tar);
  return archive;
}

// ---------------------------------------------------------------- containerd
export interface Containerd {
  dir: string;
  address: string;
  /** ctr against this containerd (namespace `default` unless given). */
  ctr(args: readonly string[], opts?: Options & { namespace?: string }): ResultPromise;
  log(): string;
  stop(): Promise<void>;
}

/**
 * A containerd of the test's own: root, state, sockets, the opt dir and CNI
 * dirs in `dir`; the CRI plugin on when `extraConfig` configures it (with a
 * stream server on 127.0.0.1 and no CNI network: pods use the host's).
 */
export async function startContainerd(dir: string, extraConfig = '', withCri = false): Promise<Containerd> {
  const address = join(dir, 'containerd.sock');
  const disabled = ['io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.devmapper',
    'io.containerd.snapshotter.v1.aufs', 'io.containerd.tracing.processor.v1.otlp', 'io.containerd.internal.v1.tracing',
    ...(withCri ? [] : ['io.containerd.grpc.v1.cri'])];
  for (const d of ['cni-bin', 'cni-conf']) mkdirSync(join(dir, d), { recursive: true });
  const config = [
    'version = 2',
    `root = ${JSON.stringify(join(dir, 'root'))}`,
    `state = ${JSON.stringify(join(dir, 'state'))}`,
    `disabled_plugins = ${JSON.stringify(disabled)}`,
    '[grpc]', `  address = ${JSON.stringify(address)}`,
    '[ttrpc]', `  address = ${JSON.stringify(`${address}.ttrpc`)}`,
    '[debug]', '  address = ""', '  level = "info"',
    '[metrics]', '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]', `  path = ${JSON.stringify(join(dir, 'opt'))}`,
    extraConfig,
  ].join('\n');
  const configPath = join(dir, 'config.toml');
  writeFileSync(configPath, `${config}\n`);
  const logPath = join(dir, 'containerd.log');
  // containerd's shims outlive the process that started them and are reparented: under a child
  // subreaper (PID 1 here reaps no orphans) they are reaped, and any left at the end are killed.
  const child = execa(reaper(), [join(dir, 'reaper.report'), 'containerd', '--config', configPath],
    { reject: false, stdin: 'ignore', stdout: { file: logPath }, stderr: { file: logPath } });
  const ctr = (args: readonly string[], opts: Options & { namespace?: string } = {}) => {
    const { namespace, ...o } = opts;
    return execa('ctr', ['--address', address, '--namespace', namespace ?? 'default', ...args], { reject: false, timeout: 60_000, stdin: 'ignore', ...o });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`containerd exited at start: ${readFileSync(logPath, 'utf8').slice(-2000)}`);
    if (existsSync(address) && (await ctr(['version'], { timeout: 5000 })).exitCode === 0) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await child;
      throw new Error(`containerd did not answer within 20 s: ${readFileSync(logPath, 'utf8').slice(-2000)}`);
    }
    await sleep(100);
  }
  return {
    dir,
    address,
    ctr,
    log: () => readFileSync(logPath, 'utf8'),
    async stop() {
      // containerd itself gets SIGTERM (the reaper's SIGTERM would SIGKILL it); the reaper then ends.
      for (const pid of childrenOf(child.pid!)) process.kill(pid, 'SIGTERM');
      const t = setTimeout(() => child.kill('SIGTERM'), 10_000);
      await child;
      clearTimeout(t);
    },
  };
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `f` until it returns something truthy, or throws what `what` says after `ms`. */
export async function waitFor<T>(what: string, f: () => Promise<T> | T, ms = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Processes on the machine whose command line mentions `needle` (leftover shims, conmons, containers). */
export function processesMentioning(needle: string): string[] {
  const found: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(needle)) found.push(`${p} ${cmd.trim()}`);
    } catch {
      /* gone */
    }
  }
  return found;
}

interface ToolTable {
  describeTools(names: readonly string[]): string;
  packagesFor(names: readonly string[]): string[];
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const TOOL_TABLE = require('../../scripts/test-setup.cjs') as ToolTable;

/** null when the engines are there; else what is missing and its packages. Under CI=true the engines must be there. */
export function enginesPresent(...names: string[]): string | null {
  const missing = [...names, 'busybox'].filter((n) => (n === 'busybox' ? !existsSync(BUSYBOX) : which(n) === null));
  if (missing.length === 0) return null;
  const what = `needs ${TOOL_TABLE.describeTools(missing)}: apt-get install ${TOOL_TABLE.packagesFor(missing).join(' ')}`;
  if (CI) throw new Error(`required on CI but missing: ${what}`);
  return what;
}

export function rmTree(dir: string): void {
  // An engine that gave up half-way (a pod whose runtime failed) can leave
  // mounts below its state dir, such as a sandbox's shm: the deepest first.
  const below = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of below) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      // gone already, or not ours to unmount: rmSync says so
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * TSNS_OCI_RECORD=FILE appends the runtime command lines each engine used
 * (one shell line each, temp dirs and ids made readable) to FILE: what a
 * runtime must accept to be driven by these engines.
 */
export function recordCalls(engine: string, rt: Runtime, calls: readonly Call[], replace: [string, string][] = []): void {
  const file = process.env.TSNS_OCI_RECORD;
  if (!file) return;
  const lines = calls.map((c) => `  ${showCall([rt.name, ...c], replace)}${c.status === 0 ? '' : `    # exit ${c.status}`}`);
  appendFileSync(file, `# ${engine} with ${rt.name}\n${lines.join('\n')}\n`);
}

/**
 * What tsns-oci is known not to do yet, by runtime and test title: such a
 * test runs as `it.fails`, so it still runs, says why in its title, and
 * turns red the day the gap closes (then delete its row here).
 */
const KNOWN_GAPS: Record<string, Record<string, string>> = {
  'tsns-oci': {
  },
};

/** `it`, or `it.fails` with the reason in its title where KNOWN_GAPS has the runtime and test. */
export function itOn(rt: Runtime, where: string, title: string, fn: () => Promise<void>, timeout?: number): void {
  const gaps = KNOWN_GAPS[rt.name] ?? {};
  const key = Object.keys(gaps).find((k) => `${where}/${title}`.startsWith(k));
  if (key === undefined) it(title, fn, timeout);
  else it.fails(`${title} — known gap: ${gaps[key]}`, fn, timeout);
}

// ---------------------------------------------------------------- can the engine run here at all?
/** runc, as the engines' reference runtime. */
export const RUNC_RUNTIME: Runtime = { name: 'runc', path: RUNC, userPath: () => RUNC };

/**
 * Tries an engine once with runc and a trivial container: null when it ran,
 * else why not, in the engine's own words. An engine nested in a container
 * may be unable to (the outer container's cgroups, mounts or storage): its
 * tests are then skipped with that reason, on CI too, since runc itself
 * fails there and tsns-oci is not what is tested. Where runc runs, nothing
 * is skipped.
 */
export async function engineProbe(what: string, attempt: () => Promise<{ exitCode?: number; stderr?: unknown }>): Promise<string | null> {
  let why: string;
  try {
    const r = await attempt();
    if (r.exitCode === 0) return null;
    const lines = String(r.stderr ?? '').trim().split('\n').filter(Boolean);
    why = `exit ${r.exitCode}: ${lines.find((l) => /error|failed|denied|cannot/i.test(l)) ?? lines.pop() ?? 'no message'}`;
  } catch (e) {
    why = e instanceof Error ? e.message.split('\n')[0]! : String(e);
  }
  const reason = `${what} cannot run even a trivial container with runc here (${why})`;
  console.warn(`skipping: ${reason}`);
  return reason;
}

/** podman (as root, or rootless as 65534) running `true` with runc on a busybox root, set up as podmanFor() sets it up. */
export function podmanProbe(rootless: boolean): Promise<string | null> {
  return engineProbe(`${rootless ? 'rootless ' : ''}podman`, async () => {
    const owner = rootless && IS_ROOT ? USER : undefined;
    const dir = workDir('probe-podman', owner);
    try {
      const pm = podmanFor(dir, RUNC_RUNTIME, { rootless });
      const r = await pm(['run', '--rm', '--network', 'none', '--rootfs', busyboxRootfs(join(dir, 'rootfs'), owner), '/bin/true']);
      await pm(['rm', '--all', '--force', '--time', '0']);
      return r;
    } finally {
      rmTree(dir);
    }
  });
}

/** A containerd of its own running `true` with runc's shim and runc on a busybox root. */
export function containerdProbe(): Promise<string | null> {
  return engineProbe('containerd', async () => {
    const dir = workDir('probe-ctd');
    let ctd: Containerd | null = null;
    try {
      ctd = await startContainerd(join(dir, 'ctd'));
      return await ctd.ctr(['run', '--rm', '--runtime', 'io.containerd.runc.v2', '--runc-binary', RUNC, '--runc-root', join(dir, 'runc'),
        '--fifo-dir', join(dir, 'fifo'), '--rootfs', busyboxRootfs(join(dir, 'rootfs')), 'probe', '/bin/true']);
    } finally {
      await ctd?.stop();
      rmTree(dir);
    }
  });
}

/**
 * Whether containerd's overlayfs snapshotter can mount where the tests keep
 * containerd's root (an overlay over an overlay root, nested in a container,
 * cannot): null, or the kernel's refusal as mount(8) words it.
 */
export function overlayProbe(): string | null {
  const dir = workDir('probe-overlay');
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(dir, d));
  for (const d of [lower, upper, work, merged]) mkdirSync(d!);
  try {
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged!], { stdio: 'pipe' });
    execFileSync('umount', [merged!], { stdio: 'pipe' });
    return null;
  } catch (e) {
    const reason = `containerd's overlayfs snapshotter cannot mount in ${tmpdir()} here (${String((e as { stderr?: Buffer }).stderr ?? e).trim().split('\n')[0]})`;
    console.warn(`skipping the tests that unpack an image: ${reason}`);
    return reason;
  } finally {
    rmTree(dir);
  }
}
