/**
 * Smaller things runc 1.1 does that a container's process can see, each
 * run with runc first and then tsns-oci on the same bundle, and compared:
 * the session keyring (`_ses.ID`, or the caller's with --no-new-keyring) of
 * the process and of an exec; the default devices a config's own device
 * replaces; a runtime that is not root leaving its supplementary groups
 * alone; and a cgroup namespace's cgroup mount on a host with v1
 * hierarchies. As root, and rootless as 65534 with a user namespace.
 */
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectLayout } from '../../src/cgroup/detect';
import { specTemplate } from '../../src/oci/spec';
import { IS_ROOT, requireFeature, unprivilegedUserns, USER } from './helpers';
import { enginesPresent, itOn, runcSpec, runtimesUnderTest, suiteDir, waitFor, withOutDir, type Runtime } from './oci-lib';
import { SUBIDS } from './subids';

const RUNTIMES = runtimesUnderTest();
const missing = enginesPresent('runc');
const ordered = RUNTIMES[0]?.name === 'runc' && RUNTIMES.length > 1;
const rootlessOk = missing === null && ordered && requireFeature(unprivilegedUserns(), 'unprivileged user namespaces (a rootless container needs one)');
if (!IS_ROOT) console.warn('skipping the root half of runc\'s details: runc runs a root bundle as root only; the rootless half runs');
const v1Host = detectLayout().hierarchies.some((h) => h.version === 1);
if (!v1Host) console.warn('skipping the cgroup namespace\'s v1 layout: this host has no cgroup v1 hierarchy (a unified host mounts cgroup2, as runc)');

/** The caller's ids in a rootless bundle: 65534 when root runs the tests. */
const me = () => (IS_ROOT ? USER : { uid: process.geteuid!(), gid: process.getegid!() });

interface Opts {
  rootless?: boolean;
  /** the caller's supplementary groups (root only can give them), else none */
  groups?: number[];
}

/** A runtime's command line, as 65534 for a rootless bundle when root runs the tests. */
function call(rt: Runtime, dir: string, args: string[], o: Opts = {}, stdio: 'pipe' | 'ignore' = 'pipe') {
  const root = ['--root', join(dir, `state-${rt.name}${o.rootless ? '-rootless' : ''}`)];
  const options = { reject: false, timeout: 60_000, stdin: 'ignore' as const, ...(stdio === 'ignore' ? { stdout: 'ignore' as const, stderr: 'ignore' as const } : {}), env: { XDG_RUNTIME_DIR: '' } };
  if (!o.rootless || !IS_ROOT) return execa(rt.path, [...root, ...args], options);
  const groups = o.groups ? `--groups=${o.groups.join(',')}` : '--clear-groups';
  return execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, groups, 'env', `HOME=${dir}`, rt.userPath(), ...root, ...args], options);
}


/** runc's spec as root, tsns-oci's `spec --rootless` (runc's) for 65534; this command, terminal off. */
function configFor(args: string[], rootless: boolean): Record<string, any> {
  const c = (rootless ? specTemplate(true, me().uid, me().gid) : runcSpec(args)) as Record<string, any>;
  c.process = { ...c.process, terminal: false, args };
  return c;
}

/** `run` in the foreground: its exit status and output, the container's id made ID. */
async function runOnce(rt: Runtime, dir: string, bundle: string, id: string, o: Opts = {}, extra: string[] = []) {
  const r = await call(rt, dir, ['run', ...extra, '--bundle', bundle, id], o);
  return { code: r.exitCode, out: String(r.stdout).split(id).join('ID').trim().split('\n'), err: String(r.stderr) };
}

/**
 * The container's keyring in /proc/keys as the process sees it: its
 * permissions, uid, gid, type and description. Only that one: the kernel
 * lists every key a process may view, which includes other containers' of
 * the same owner.
 */
const keys = (id: string) => `awk '$9 == "_ses.${id}:" {print $5, $6, $7, $8, $9}' /proc/keys`;

describe.runIf(missing === null && ordered)('runc 1.1\'s smaller details, runc first, then tsns-oci', () => {
  let dir = '';
  const unique = suiteDir('details', (d) => (dir = d));

  /**
   * The keyrings the container's process sees, then those an exec sees,
   * each running as uid 1000: not the keyring's owner, so it sees one only
   * as its possessor (its session keyring, or one linked there).
   */
  async function keyrings(rt: Runtime, rootless: boolean, noNewKeyring: boolean): Promise<string[]> {
    const id = unique('k');
    const c = configFor(['sh', '-c', `{ ${keys(id)}; echo end; } > /out/keys; exec sleep 100`], rootless);
    c.linux.maskedPaths = c.linux.maskedPaths.filter((p: string) => p !== '/proc/keys');
    if (!rootless) c.process.user = { uid: 1000, gid: 1000 };
    const { bundle, out } = withOutDir(dir, unique(`keys-${rt.name}`), c, rootless);
    const o = { rootless };
    try {
      const created = await call(rt, dir, ['run', '--detach', ...(noNewKeyring ? ['--no-new-keyring'] : []), '--bundle', bundle, id], o, 'ignore');
      expect(created.exitCode, `${rt.name} run --detach`).toBe(0);
      const file = join(out, 'keys');
      const own = await waitFor(`${rt.name}'s container to list its keys`, () => existsSync(file) && readFileSync(file, 'utf8').endsWith('end\n') && readFileSync(file, 'utf8'));
      const ex = await call(rt, dir, ['exec', ...(rootless ? [] : ['--user', '1000:1000']), id, 'sh', '-c', keys(id)], o);
      expect(ex.exitCode, `${rt.name} exec: ${ex.stderr}`).toBe(0);
      // In the order of their serial numbers, which are random: sorted.
      const lines = (text: string, who: string) => text.split('\n').filter((l) => l && l !== 'end').map((l) => `${who} ${l.split(id).join('ID')}`).sort();
      return [...lines(String(own), 'init'), ...lines(String(ex.stdout), 'exec')];
    } finally {
      await call(rt, dir, ['delete', '--force', id], o);
    }
  }

  describe.runIf(IS_ROOT)('as root', () => {
    for (const noNewKeyring of [false, true]) {
      const flag = noNewKeyring ? 'with --no-new-keyring' : 'by default';
      let reference: string[] = [];
      it(`runc: the session keyring of the process and of an exec, ${flag}`, async () => {
        reference = await keyrings(RUNTIMES[0]!, false, noNewKeyring);
        // Its own keyring, which its owner (root) may search; or, with --no-new-keyring, the caller's.
        if (noNewKeyring) expect(reference).toEqual([]);
        else expect(reference).toEqual(['init 3f1b0000 0 0 keyring _ses.ID:', 'exec 3f1b0000 0 0 keyring _ses.ID:']);
      });
      for (const rt of RUNTIMES.slice(1)) itOn(rt, 'details', `${rt.name}: the same session keyrings as runc, ${flag}`, async () => {
        expect(await keyrings(rt, false, noNewKeyring)).toEqual(reference);
      });
    }

    it('a default device that linux.devices names gives up its cgroup rule, and linux.devices adds none, as with runc', async () => {
      // Under the config's "deny all": /dev/full named as itself, /dev/fuse, which no default allows.
      const probe = ['full', 'fuse', 'zero', 'null'].map((d) => `head -c1 /dev/${d} > /dev/null 2>&1; echo "${d} $? $(stat -c '%t:%T %a' /dev/${d})"`).join('; ');
      const outs = [];
      for (const rt of RUNTIMES) {
        const c = configFor(['sh', '-c', probe], false);
        c.linux.devices = [{ path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o640 }, { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666 }];
        const r = await runOnce(rt, dir, withOutDir(dir, unique(`dev-${rt.name}`), c).bundle, unique('dev'));
        expect(r.code, `${rt.name}: ${r.err}`).toBe(0);
        outs.push(r.out);
      }
      expect(outs[0]).toEqual(['full 1 1:7 640', 'fuse 1 a:e5 666', 'zero 0 1:5 666', 'null 0 1:3 666']);
      for (const o of outs.slice(1)) expect(o).toEqual(outs[0]);
    });

    it.runIf(v1Host)('a cgroup namespace\'s cgroup mount on a v1 host: a tmpfs with each v1 hierarchy mounted in it, as runc\'s', async () => {
      const views = [];
      for (const rt of RUNTIMES) {
        const c = configFor(['sh', '-c', 'cut -d" " -f4- /proc/self/mountinfo | grep " /sys/fs/cgroup"; ls /sys/fs/cgroup'], false);
        c.linux.namespaces.push({ type: 'cgroup' });
        const r = await runOnce(rt, dir, withOutDir(dir, unique(`cgns-${rt.name}`), c).bundle, unique('cgns'));
        expect(r.code, `${rt.name}: ${r.err}`).toBe(0);
        views.push(r.out);
      }
      // runc: the namespace's root of every v1 hierarchy, read-only; no cgroup2.
      expect(views[0]![0]).toMatch(/^\/ \/sys\/fs\/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755/);
      expect(views[0]!.filter((l) => / - cgroup /.test(l)).every((l) => /^\/ \/sys\/fs\/cgroup\/\S+ ro,/.test(l))).toBe(true);
      expect(views[0]!.some((l) => l.includes('cgroup2'))).toBe(false);
      for (const v of views.slice(1)) expect(v).toEqual(views[0]);
    });
  });

  describe.runIf(rootlessOk)('rootless (as 65534, with a user namespace)', () => {
    for (const noNewKeyring of [false, true]) {
      const flag = noNewKeyring ? 'with --no-new-keyring' : 'by default';
      let reference: string[] = [];
      it(`runc: the session keyring of the process and of an exec, ${flag}`, async () => {
        reference = await keyrings(RUNTIMES[0]!, true, noNewKeyring);
        // With a user namespace everyone but its owner may search it (runc's bits), so an exec, as the
        // owner, does not find it by name and makes a keyring of its own of that name.
        if (noNewKeyring) expect(reference).toEqual([]);
        else expect(reference).toEqual(['init 3f130008 0 0 keyring _ses.ID:', 'exec 3f130000 0 0 keyring _ses.ID:', 'exec 3f130008 0 0 keyring _ses.ID:']);
      });
      for (const rt of RUNTIMES.slice(1)) itOn(rt, 'details', `${rt.name}: the same session keyrings as runc, rootless, ${flag}`, async () => {
        expect(await keyrings(rt, true, noNewKeyring)).toEqual(reference);
      });
    }

    /** 65534's subordinate ids (test/e2e/subids.ts adds them for a root run): mapped through newuidmap/newgidmap, where setgroups stays allowed. */
    const subids = () => ['/etc/subuid', '/etc/subgid'].every((f) => existsSync(f) && readFileSync(f, 'utf8').split('\n').some((l) => l.startsWith(`${SUBIDS.user}:${SUBIDS.start}:`) || l.startsWith(`65534:${SUBIDS.start}:`)));

    it('a runtime that is not root leaves the caller\'s supplementary groups alone, as runc, where setgroups is allowed as where it is denied', async () => {
      const groups = IS_ROOT ? [USER.gid, 100] : undefined;
      const wide = subids();
      if (!wide) console.warn('only the self-mapped case: 65534 has no subordinate ids here (a root run of the tests adds them)');
      for (const ranges of wide ? [false, true] : [false]) {
        const outs = [];
        for (const rt of RUNTIMES) {
          const c = configFor(['sh', '-c', 'grep Groups: /proc/self/status; cat /proc/self/setgroups'], true);
          if (ranges) {
            c.linux.uidMappings = [{ containerID: 0, hostID: me().uid, size: 1 }, { containerID: 1, hostID: SUBIDS.start, size: 1000 }];
            c.linux.gidMappings = [{ containerID: 0, hostID: me().gid, size: 1 }, { containerID: 1, hostID: SUBIDS.start, size: 1000 }];
          }
          const r = await runOnce(rt, dir, withOutDir(dir, unique(`groups-${rt.name}`), c, true).bundle, unique('groups'), { rootless: true, ...(groups ? { groups } : {}) });
          expect(r.code, `${rt.name}: ${r.err}`).toBe(0);
          outs.push(r.out.map((l) => l.replace(/\s+/g, ' ').trim()));
        }
        // runc: the unmapped 100 is the overflow gid 65534, 65534 itself the container's 0; setgroups allowed only with the ranges.
        if (groups) expect(outs[0]).toEqual(['Groups: 65534 0', ranges ? 'allow' : 'deny']);
        for (const o of outs.slice(1)) expect(o, ranges ? 'mapped through newgidmap' : 'mapped to the caller alone').toEqual(outs[0]);
      }
    });

    it.runIf(v1Host)('a cgroup namespace\'s cgroup mount on a v1 host: a tmpfs with each v1 hierarchy mounted in it, as runc\'s', async () => {
      const views = [];
      for (const rt of RUNTIMES) {
        const c = configFor(['sh', '-c', 'cut -d" " -f4- /proc/self/mountinfo | grep " /cg"; ls /cg'], true);
        c.linux.namespaces.push({ type: 'cgroup' });
        // Not under the host's /sys, which a rootless bundle binds.
        c.mounts = c.mounts.map((m: Record<string, unknown>) => (m.type === 'cgroup' ? { ...m, destination: '/cg' } : m));
        const r = await runOnce(rt, dir, withOutDir(dir, unique(`cgns-${rt.name}`), c, true).bundle, unique('cgns'), { rootless: true });
        expect(r.code, `${rt.name}: ${r.err}`).toBe(0);
        views.push(r.out);
      }
      expect(views[0]![0]).toMatch(/^\/ \/cg rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755/);
      expect(views[0]!.filter((l) => / - cgroup /.test(l)).length).toBeGreaterThan(0);
      for (const v of views.slice(1)) expect(v).toEqual(views[0]);
    });
  });
});
