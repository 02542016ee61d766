/**
 * A rootfs is the container's, not the runtime's: a symlink in it is read
 * as the container will read it (an absolute one from the rootfs's /, ".."
 * never above it), as runc reads it (filepath-securejoin), never from the
 * host's root. Each case plants hostile symlinks (/evil -> /, a climb of
 * "..", /etc -> an absolute path, a symlink as the last component, one
 * brought in by an earlier bind, a loop) and mounts or devices whose
 * destinations go through them; runc runs it first, then tsns-oci. Both
 * must put the mount where a confined resolution gives (the container's
 * own view says where), or refuse with runc's status; and nothing may
 * appear on the host: not in the directory the symlinks aim at, not in
 * the host's mount table, and not among the container's mounts before its
 * pivot (a createRuntime hook reads them), where a mount made outside the
 * rootfs would show.
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { specTemplate } from '../../src/oci/spec';
import { IS_ROOT, requireFeature, unprivilegedUserns, USER } from './helpers';
import { busyboxRootfs, enginesPresent, RUNC, rmTree, runcSpec, runtimesUnderTest, workDir, type Runtime } from './oci-lib';

const RUNTIMES = runtimesUnderTest();
const missing = enginesPresent('runc');
if (!IS_ROOT) console.warn('skipping the root cases: runc runs a root bundle as root only; the rootless cases run');
const dirs: string[] = [];
afterAll(() => {
  if (!process.env.TSNS_OCI_KEEP) for (const d of dirs) rmTree(d);
});

type Config = Record<string, any>;
/** Far more ".." than any temp dir is deep: from the rootfs, on the host, this reaches /. */
const CLIMB = Array(24).fill('..').join('/');

interface Case {
  title: string;
  /** Plants what is hostile in the rootfs; `host` is a directory of the host's (the test's) that the symlinks aim at. */
  plant(rootfs: string, host: string, dir: string): void;
  edit(c: Config, host: string, dir: string): void;
  /** Where the container finds the mount (a mount point of its own mountinfo), or null: the runtime refuses (runc's exit 1). */
  lands: ((host: string) => string) | null;
  /** A file the container tests for (a device), with its mount. */
  node?: (host: string) => string;
  /** runc 1.1.5 itself writes on the host here, through a step it does not confine: its own host check is left out (the reason). */
  runcLeaks?: string;
  rootless?: boolean;
  /** Lines of the view left out of the comparison with runc's, and why. */
  viewIgnore?: { lines: RegExp; why: string };
}

const tmpfs = (destination: string) => ({ destination, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev'] });

const CASES: Case[] = [
  {
    title: '/evil -> /: a tmpfs at /evil/HOST/t lands at HOST/t in the rootfs',
    plant: (r) => symlinkSync('/', join(r, 'evil')),
    edit: (c, h) => c.mounts.push(tmpfs(`/evil${h}/t`)),
    lands: (h) => `${h}/t`,
    rootless: true,
  },
  {
    title: '/evil -> ../../..: a bind at /evil/HOST/b lands at HOST/b in the rootfs',
    plant: (r) => symlinkSync(CLIMB, join(r, 'evil')),
    edit: (c, h, d) => c.mounts.push({ destination: `/evil${h}/b`, type: 'bind', source: join(d, 'src'), options: ['rbind', 'ro'] }),
    lands: (h) => `${h}/b`,
  },
  {
    title: '/etc2 -> HOST/etc (absolute, missing in the rootfs): a tmpfs at /etc2/t is made at HOST/etc/t in the rootfs',
    plant: (r) => symlinkSync('HOST/etc', join(r, 'etc2')),
    edit: (c) => c.mounts.push(tmpfs('/etc2/t')),
    lands: (h) => `${h}/etc/t`,
  },
  {
    title: 'a symlink as the last component: a tmpfs at /last (-> HOST/last) lands at HOST/last in the rootfs',
    plant: (r) => symlinkSync('HOST/last', join(r, 'last')),
    edit: (c) => c.mounts.push(tmpfs('/last')),
    lands: (h) => `${h}/last`,
    rootless: true,
  },
  {
    title: 'a file bound onto /lastf (-> HOST/file, a host file): it lands at HOST/file in the rootfs, the host file untouched',
    plant: (r) => symlinkSync('HOST/file', join(r, 'lastf')),
    edit: (c, _h, d) => c.mounts.push({ destination: '/lastf', type: 'bind', source: join(d, 'src', 'data'), options: ['bind'] }),
    lands: (h) => `${h}/file`,
    rootless: true,
  },
  {
    title: 'a symlink brought in by an earlier bind (/a/evil -> /): a tmpfs at /a/evil/HOST/z lands at HOST/z in the rootfs',
    plant: () => {},
    edit: (c, h, d) => c.mounts.push({ destination: '/a', type: 'bind', source: join(d, 'evil-src'), options: ['rbind'] }, tmpfs(`/a/evil${h}/z`)),
    lands: (h) => `${h}/z`,
  },
  {
    title: 'a symlink loop on the way is refused',
    plant: (r) => symlinkSync('loop', join(r, 'loop')),
    edit: (c) => c.mounts.push(tmpfs('/loop/x')),
    lands: null,
    rootless: true,
  },
  {
    title: 'a file on the way is refused',
    plant: (r) => writeFileSync(join(r, 'afile'), ''),
    edit: (c) => c.mounts.push(tmpfs('/afile/x')),
    lands: null,
  },
  {
    title: 'proc on a symlink (/proc -> HOST/proc) is refused',
    plant: (r) => {
      rmSync(join(r, 'proc'), { recursive: true });
      symlinkSync('HOST/proc', join(r, 'proc'));
    },
    edit: () => {},
    lands: null,
    rootless: true,
  },
  {
    title: 'proc below a symlink (/evil -> /, proc at /evil/HOST/p) is refused',
    plant: (r) => symlinkSync('/', join(r, 'evil')),
    edit: (c, h) => c.mounts.push({ destination: `/evil${h}/p`, type: 'proc', source: 'proc' }),
    lands: null,
    runcLeaks: 'runc makes the directory through the host\'s / (os.MkdirAll) before it refuses',
  },
  {
    title: 'sysfs on a symlink to a directory of the rootfs (/sys -> sys2) is refused',
    plant: (r) => {
      rmSync(join(r, 'sys'), { recursive: true });
      mkdirSync(join(r, 'sys2'));
      symlinkSync('sys2', join(r, 'sys'));
    },
    edit: () => {},
    lands: null,
  },
  {
    title: 'a device of linux.devices through /dev -> ../../HOST/dev (no /dev mount) is made at HOST/dev in the rootfs',
    plant: (r) => {
      rmSync(join(r, 'dev'), { recursive: true });
      symlinkSync(`${CLIMB}HOST/dev`, join(r, 'dev'));
    },
    edit: (c) => {
      c.mounts = c.mounts.filter((m: Config) => !m.destination.startsWith('/dev'));
      c.linux.devices = [{ path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 }];
      if (c.linux.resources?.devices) c.linux.resources.devices.push({ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' });
    },
    lands: null,
    node: (h) => `${h}/dev/null`,
    runcLeaks: 'runc makes its /dev/fd, /dev/stdin ... /dev/ptmx links through the host\'s root (filepath.Join)',
    rootless: true,
  },
  {
    title: '/dev -> HOST/dev (absolute): the /dev tmpfs, devpts, shm and mqueue, devices and links all land at HOST/dev in the rootfs',
    plant: (r) => {
      rmSync(join(r, 'dev'), { recursive: true });
      symlinkSync('HOST/dev', join(r, 'dev'));
    },
    edit: () => {},
    lands: (h) => `${h}/dev`,
    node: (h) => `${h}/dev/null`,
    runcLeaks: 'runc makes its /dev/fd, /dev/stdin ... /dev/ptmx links through the host\'s root (filepath.Join)',
  },
];

interface Observed {
  exit: number;
  stderr: string;
  /** the container's mount points (and the node test), its dir written as <dir> */
  view: string[];
  /** the host's directory the symlinks aim at: its tree before and after */
  hostBefore: string[];
  hostAfter: string[];
  /** the host's mount points below the test's dir, before and after */
  mountsBefore: string[];
  mountsAfter: string[];
  /** the container's mount points before its pivot that are neither the host's nor in the rootfs */
  outside: string[];
}

/** A tree as lines: path, kind, and a file's text or a link's target. */
function tree(dir: string, base = dir): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n);
    const st = lstatSync(p);
    const rel = p.slice(base.length);
    if (st.isSymbolicLink()) out.push(`${rel} -> ${readlinkSync(p)}`);
    else if (st.isDirectory()) out.push(`${rel}/`, ...tree(p, base));
    else out.push(`${rel} ${st.isFile() ? JSON.stringify(readFileSync(p, 'utf8')) : `mode ${st.mode.toString(8)}`}`);
  }
  return out;
}

const mountPoints = (text: string) => text.split('\n').map((l) => l.split(' ')[4] ?? '').filter(Boolean);
const hostMountsBelow = (dir: string) => mountPoints(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m === dir || m.startsWith(`${dir}/`)).sort();

interface Caller {
  /** the runtime's command line as the test runs it (setpriv to 65534 for a rootless case run by root) */
  argv(rt: Runtime, args: string[]): [string, string[]];
  owner?: { uid: number; gid: number };
  config(args: string[]): Config;
}

const asRoot: Caller = {
  argv: (rt, args) => [rt.path, args],
  config: (args) => runcSpec(args),
};

const asUser: Caller = {
  argv: (rt, args) => (IS_ROOT
    ? ['setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', 'env', 'XDG_RUNTIME_DIR=', rt.userPath(), ...args]]
    : [rt.path, args]),
  owner: IS_ROOT ? USER : undefined,
  config: (args) => {
    const ids = IS_ROOT ? USER : { uid: process.geteuid!(), gid: process.getegid!() };
    const c = specTemplate(true, ids.uid, ids.gid) as Config;
    c.process = { ...c.process, terminal: false, args };
    return c;
  },
};

function chownTree(path: string, owner: { uid: number; gid: number }): void {
  // lchown: the symlinks themselves, never what they aim at (/ for some)
  lchownSync(path, owner.uid, owner.gid);
  if (lstatSync(path).isDirectory()) for (const n of readdirSync(path)) chownTree(join(path, n), owner);
}

async function observe(rt: Runtime, k: Case, who: Caller, tag: string): Promise<Observed> {
  const dir = workDir(`sj-${tag}`, who.owner);
  dirs.push(dir);
  const host = join(dir, 'host');
  // What the symlinks aim at exists on the host: a runtime that followed them would find it there.
  for (const d of ['etc', 'proc', 'dev', 'last']) mkdirSync(join(host, d), { recursive: true });
  rmSync(join(host, 'last'), { recursive: true });
  writeFileSync(join(host, 'file'), 'host\n');
  writeFileSync(join(host, 'dev', 'marker'), 'host /dev\n');
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'data'), 'bound\n');
  mkdirSync(join(dir, 'evil-src'));
  symlinkSync('/', join(dir, 'evil-src', 'evil'));
  const b = join(dir, 'bundle');
  const rootfs = busyboxRootfs(join(b, 'rootfs'));
  k.plant(rootfs, host, dir);
  // The symlinks' texts name the host dir as HOST (it is known only now).
  for (const n of readdirSync(rootfs)) {
    const p = join(rootfs, n);
    if (lstatSync(p).isSymbolicLink() && readlinkSync(p).includes('HOST')) {
      const text = readlinkSync(p).replace('HOST', host);
      rmSync(p);
      symlinkSync(text, p);
    }
  }
  const node = k.node?.(host);
  const view = ['cut -d" " -f5 /proc/self/mountinfo | sort', ...(node ? [`test -c ${node} && echo "char device ${node}" || echo "no device ${node}"`] : [])].join('; ');
  const c = who.config(['/bin/sh', '-c', view]);
  k.edit(c, host, dir);
  // Before the pivot, as runc runs createRuntime: the container's mounts as they are then.
  const pre = join(dir, 'pre-pivot');
  c.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `pid=$(grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$'); cat /proc/$pid/mountinfo > ${pre}`] }] };
  writeFileSync(join(b, 'config.json'), JSON.stringify(c, null, 2));
  if (who.owner) chownTree(dir, who.owner);
  const hostBefore = tree(host);
  const mountsBefore = hostMountsBelow(dir);
  const all = new Set(mountPoints(readFileSync('/proc/self/mountinfo', 'utf8')));
  const [cmd, args] = who.argv(rt, ['--root', join(dir, 'state'), 'run', '--bundle', b, `sj-${process.pid}`]);
  const r = await execa(cmd, args, { reject: false, timeout: 60_000, stdin: 'ignore' });
  await execa(...who.argv(rt, ['--root', join(dir, 'state'), 'delete', '--force', `sj-${process.pid}`]), { reject: false });
  const outside = existsSync(pre)
    ? mountPoints(readFileSync(pre, 'utf8')).filter((m) => !all.has(m) && m !== rootfs && !m.startsWith(`${rootfs}/`))
    : [];
  return {
    exit: r.exitCode ?? -1,
    stderr: String(r.stderr),
    view: String(r.stdout).split('\n').filter(Boolean).map((l) => l.split(dir).join('<dir>')),
    hostBefore, hostAfter: tree(host), mountsBefore, mountsAfter: hostMountsBelow(dir), outside,
  };
}

function confined(o: Observed, rt: Runtime, k: Case): void {
  if (rt.name === 'runc' && k.runcLeaks) return;
  expect(o.hostAfter, `${rt.name}: nothing new in the host's directory the symlinks aim at`).toEqual(o.hostBefore);
  expect(o.mountsAfter, `${rt.name}: no new mount on the host`).toEqual(o.mountsBefore);
  expect(o.outside, `${rt.name}: no mount outside the rootfs before the pivot`).toEqual([]);
}

function cases(who: Caller, list: Case[], runtimes: Runtime[], tag: string): void {
  for (const k of list) {
    it(k.title, async () => {
      const seen: Observed[] = [];
      for (const rt of runtimes) seen.push(await observe(rt, k, who, `${tag}-${rt.name}`));
      const [ref] = seen;
      const refused = k.lands === null && !k.node;
      runtimes.forEach((rt, i) => {
        const o = seen[i]!;
        confined(o, rt, k);
        if (rt.name !== 'runc' && (rt.name !== 'tsns-oci' || !k.runcLeaks)) expect(o.exit, `${rt.name}: exit status as runc's (${ref!.stderr.trim()})`).toBe(ref!.exit);
        if (refused) {
          expect(o.exit, `${rt.name} refuses: ${o.stderr}`).toBe(1);
          if (rt.name === 'tsns-oci') expect(o.stderr).toMatch(/^tsns: cannot start container process: .*mounts\[\d+\]\.destination .*\((ELOOP|ENOTDIR)\)\nhint: /);
          return;
        }
        expect(o.exit, `${rt.name}: ${o.stderr}`).toBe(0);
        const host = '<dir>/host';
        if (k.lands) expect(o.view, `${rt.name}: the mount in the rootfs, where a confined resolution puts it`).toContain(k.lands(host));
        if (k.node) expect(o.view, rt.name).toContain(`char device ${k.node(host)}`);
        const shown = (v: string[]) => v.filter((l) => !k.viewIgnore?.lines.test(l));
        if (i > 0 && !(ref!.exit !== 0 && k.runcLeaks)) expect(shown(o.view), `${rt.name}: the container's view as runc's${k.viewIgnore ? ` (but ${k.viewIgnore.why})` : ''}`).toEqual(shown(ref!.view));
      });
    }, 120_000);
  }
}

describe.runIf(IS_ROOT && !missing && RUNTIMES[0]?.name === 'runc')('paths in the rootfs are resolved in it (root), beside runc', () => {
  cases(asRoot, CASES, RUNTIMES, 'r');

  for (const rt of RUNTIMES.filter((r) => r.name !== 'runc')) it(`${rt.name}: a component swapped for a symlink to the host while containers start never lets anything out`, async () => {
    const dir = workDir('sj-race');
    dirs.push(dir);
    const host = join(dir, 'host');
    mkdirSync(host);
    writeFileSync(join(host, 'marker'), 'host\n');
    const b = join(dir, 'bundle');
    const rootfs = busyboxRootfs(join(b, 'rootfs'));
    const c = runcSpec(['/bin/true']) as Config;
    writeFileSync(join(dir, 'data'), 'bound\n');
    c.mounts.push(tmpfs('/race/t'), { destination: '/race/f', type: 'bind', source: join(dir, 'data'), options: ['bind'] });
    writeFileSync(join(b, 'config.json'), JSON.stringify(c));
    // /race, again and again: a directory, then (renamed over it) a symlink to the host's dir.
    const swap = `cd ${rootfs}; while :; do mkdir race.d; rm -rf race; mv -T race.d race; ln -sfn ${host} race.l; rm -rf race; mv -T race.l race; done 2>/dev/null`;
    const swapper = spawn('bash', ['-c', swap], { stdio: 'ignore' });
    const before = tree(host);
    const mountsBefore = hostMountsBelow(dir);
    const exits = new Set<number>();
    try {
      for (let i = 0; i < 12; i++) {
        const r = await execa(rt.path, ['--root', join(dir, 'state'), 'run', '--bundle', b, `race-${process.pid}-${i}`], { reject: false, timeout: 60_000, stdin: 'ignore' });
        exits.add(r.exitCode ?? -1);
        await execa(rt.path, ['--root', join(dir, 'state'), 'delete', '--force', `race-${process.pid}-${i}`], { reject: false });
        expect(tree(host), `run ${i}: ${r.stderr}`).toEqual(before);
      }
    } finally {
      swapper.kill('SIGKILL');
      await new Promise((r) => swapper.once('exit', r));
    }
    expect(hostMountsBelow(dir)).toEqual(mountsBefore);
    // A run either mounted in the rootfs, or found a path it cannot use (a symlink where the file is meant: runc's refusals).
    expect([...exits].filter((e) => e !== 0 && e !== 1 && e !== 125), 'exit statuses').toEqual([]);
  }, 300_000);
});

// Rootless: a user namespace mapping the caller (`spec --rootless`), run by 65534 (setpriv when root runs the tests).
const rootlessOk = missing === null && requireFeature(unprivilegedUserns(), 'unprivileged user namespaces (rootless containers need one)');
describe.runIf(rootlessOk && RUNTIMES[0]?.name === 'runc')('paths in the rootfs are resolved in it (rootless), beside runc', () => {
  cases(asUser, CASES.filter((k) => k.rootless), RUNTIMES, 'u');
});
