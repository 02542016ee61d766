/**
 * The propagation of a container's mounts, and the flags of an rbind's
 * submounts, as the container's /proc/self/mountinfo shows them: runc
 * 1.1 first, then tsns-oci on the same bundle, compared.
 *
 * linux.rootfsPropagation: runc gives it to / (the r forms recursively),
 * then makes the mount the rootfs is on private if it is shared, then
 * binds the rootfs onto itself and pivots (or, with --no-pivot, moves it
 * onto / and chroots). Each value, with and without --no-pivot, on the
 * host as it is, on a host whose / is shared (as systemd makes it; here a
 * mount namespace of the test's own made so) and there with a rootfs that
 * is a mount of its own (as an engine's overlay); as root, and rootless as
 * 65534.
 *
 * /sys in a container without a network namespace of its own, or
 * rootless: runc's `spec --rootless` binds the host's /sys (rbind, ro,
 * nosuid, nodev, noexec), and runc's remount sets those flags on that
 * mount alone, not on /sys/fs/cgroup and the other mounts below it.
 */
import { execa } from 'execa';
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectLayout } from '../../src/cgroup/detect';
import { specTemplate } from '../../src/oci/spec';
import { IS_ROOT, requireFeature, unprivilegedUserns, USER } from './helpers';
import { busyboxRootfs, enginesPresent, itOn, runcSpec, runtimesUnderTest, suiteDir, type Runtime } from './oci-lib';

const RUNTIMES = runtimesUnderTest();
const missing = enginesPresent('runc');
const ordered = RUNTIMES[0]?.name === 'runc' && RUNTIMES.length > 1;
const rootlessOk = missing === null && ordered && requireFeature(unprivilegedUserns(), 'unprivileged user namespaces (a rootless container needs one)');
if (!IS_ROOT) console.warn('skipping the root half of the propagation tests: runc runs a root bundle as root only; the rootless half runs');

const v1Host = detectLayout().hierarchies.some((h) => h.version === 1);
const me = () => (IS_ROOT ? USER : { uid: process.geteuid!(), gid: process.getegid!() });
const PROPAGATIONS = [null, 'shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate', 'unbindable', 'runbindable'] as const;
type Host = 'as it is' | 'shared' | 'shared, rootfs a mount';

interface Run {
  code: number | undefined;
  out: string;
  err: string;
}

/**
 * The container's mountinfo as lines of mount point and optional fields,
 * ordered by mount point (stacked mounts in their own order). Peer groups
 * are numbered anew in each run: a group is named by the first mount point
 * in it, one that no mount of the container is in ("master:" of the host's)
 * as outside-N.
 */
function propagationView(mountinfo: string): string[] {
  const rows = mountinfo.trim().split('\n').filter(Boolean).map((l) => {
    const f = l.split(' ');
    return { at: f[4]!, opt: f.slice(6, f.indexOf('-', 6)) };
  }).sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const name = new Map<string, string>();
  for (const r of rows) for (const o of r.opt) if (o.startsWith('shared:') && !name.has(o.slice(7))) name.set(o.slice(7), r.at);
  let outside = 0;
  const label = (o: string) => {
    const m = /^(shared|master|propagate_from):(\d+)$/.exec(o);
    if (!m) return o;
    if (!name.has(m[2]!)) name.set(m[2]!, `outside-${outside++}`);
    return `${m[1]}:${name.get(m[2]!)}`;
  };
  return rows.map((r) => [r.at, ...r.opt.map(label)].join(' '));
}

/** The mounts at and below /sys: mount point and mount options. */
const sysView = (mountinfo: string) => mountinfo.trim().split('\n').map((l) => l.split(' ')).filter((f) => f[4] === '/sys' || f[4]!.startsWith('/sys/')).map((f) => `${f[4]} ${f[5]}`);

describe.runIf(missing === null && ordered)('mount propagation and an rbind\'s flags, runc first, then tsns-oci', () => {
  let dir = '';
  const unique = suiteDir('prop', (d) => (dir = d));

  /** A bundle in a dir of its own: busybox (65534's when rootless) and this config. */
  function bundleFor(name: string, config: Record<string, any>, rootless: boolean): string {
    const b = join(dir, unique(name));
    mkdirSync(b, { recursive: true });
    const owner = rootless && IS_ROOT ? USER : undefined;
    busyboxRootfs(join(b, 'rootfs'), owner);
    writeFileSync(join(b, 'config.json'), JSON.stringify(config, null, 2));
    if (owner) for (const p of [b, join(b, 'config.json')]) chownSync(p, owner.uid, owner.gid);
    return b;
  }

  /** runc's spec as root, `spec --rootless` for 65534: `cat /proc/self/mountinfo`, terminal off. */
  function configFor(rootless: boolean, prop: string | null): Record<string, any> {
    const c = (rootless ? specTemplate(true, me().uid, me().gid) : runcSpec([])) as Record<string, any>;
    c.process = { ...c.process, terminal: false, args: ['cat', '/proc/self/mountinfo'] };
    if (prop !== null) c.linux.rootfsPropagation = prop;
    return c;
  }

  /**
   * `run` of the bundle in the foreground. Root: on the host as it is, or
   * in a mount namespace of the test's own whose / is shared (unshare
   * --propagation shared), where the rootfs may be bound onto itself
   * first. Rootless: as 65534.
   */
  async function run(rt: Runtime, bundle: string, o: { rootless?: boolean; host?: Host; noPivot?: boolean }): Promise<Run> {
    const id = unique('c');
    const root = join(dir, `state-${rt.name}${o.rootless ? '-rootless' : ''}`);
    const args = ['--root', root, 'run', ...(o.noPivot ? ['--no-pivot'] : []), '--bundle', bundle, id];
    const options = { reject: false, timeout: 60_000, stdin: 'ignore' as const, env: { XDG_RUNTIME_DIR: '' } };
    let r;
    if (o.rootless && IS_ROOT) {
      r = await execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', 'env', `HOME=${dir}`, rt.userPath(), ...args], options);
    } else if (o.host === 'shared' || o.host === 'shared, rootfs a mount') {
      const bind = o.host === 'shared' ? '' : 'mount --bind "$1" "$1" && ';
      r = await execa('unshare', ['--mount', '--propagation', 'shared', '--', 'sh', '-c', `${bind}shift && exec "$@"`, 'sh', join(bundle, 'rootfs'), rt.path, ...args], options);
    } else {
      r = await execa(rt.path, args, options);
    }
    // A run that failed half-way may leave its state behind.
    if (r.exitCode !== 0) {
      const del = [rt.userPath(), '--root', root, 'delete', '--force', id];
      await (o.rootless && IS_ROOT ? execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', ...del], options) : execa(rt.path, del.slice(1), options));
    }
    return { code: r.exitCode, out: String(r.stdout), err: String(r.stderr) };
  }

  /** Each runtime on a bundle of its own with that propagation: whether it ran, and the container's propagation, runc's first. */
  async function views(prop: string | null, o: { rootless?: boolean; host?: Host; noPivot?: boolean }) {
    const out = [];
    for (const rt of RUNTIMES) {
      const r = await run(rt, bundleFor(`p-${rt.name}`, configFor(o.rootless ?? false, prop), o.rootless ?? false), o);
      out.push({ rt: rt.name, ran: r.code === 0, view: r.code === 0 ? propagationView(r.out) : [], err: r.err });
    }
    return out;
  }

  function expectSame(got: Awaited<ReturnType<typeof views>>) {
    const [ref, ...others] = got;
    for (const g of others) {
      expect(g.ran, `${g.rt} ${g.ran ? 'ran' : `failed (${g.err.trim()})`}, runc ${ref!.ran ? 'ran' : `failed (${ref!.err.trim()})`}`).toBe(ref!.ran);
      expect(g.view, `${g.rt}'s mounts and their propagation, against runc's`).toEqual(ref!.view);
    }
  }

  /** What runc does, written down: the cases where it fails, and the mounts that it leaves shared. */
  function expectRunc(got: Awaited<ReturnType<typeof views>>, prop: string | null, o: { host?: Host; noPivot?: boolean; rootless?: boolean }) {
    const ref = got[0]!;
    const unbindable = prop === 'runbindable' || (prop === 'unbindable' && o.host !== 'shared, rootfs a mount');
    // An unbindable rootfs cannot be bound onto itself; runc says it is not safe to keep a private / without pivot_root.
    // Rootless, / rshared makes the rbind of /sys shared with the namespace's own /sys, so that the cgroup mount's tmpfs
    // there covers the v1 hierarchies it is then to bind from: runc fails (ENOENT), and tsns-oci as well.
    const fails = unbindable || (o.noPivot === true && (prop === 'private' || prop === 'rprivate')) || (o.rootless === true && prop === 'rshared' && v1Host);
    expect(ref.ran, `runc: ${ref.err}`).toBe(!fails);
    if (!ref.ran) return;
    // The rootfs's bind is made after its mount was made private where shared: never shared itself once pivoted.
    // (With --no-pivot it is moved onto /, which stays shared where the rootfs is a mount of its own: so is the rootfs then.)
    const root = ref.view.find((l) => l.startsWith('/ ') || l === '/')!;
    if (!o.noPivot) expect(root).not.toMatch(/shared:/);
    // rshared leaves the binds from outside the rootfs (the cgroup hierarchies, the host's /sys) shared.
    if (prop === 'rshared') expect(ref.view.some((l) => /^\/sys\S* shared:/.test(l))).toBe(true);
  }

  const cases = (rootless: boolean, hosts: readonly Host[]) => {
    for (const host of hosts) {
      for (const prop of PROPAGATIONS) {
        for (const noPivot of [false, true]) {
          const title = `rootfsPropagation ${prop ?? '(none)'}${noPivot ? ' with --no-pivot' : ''}, host ${host}`;
          for (const rt of RUNTIMES.slice(1)) {
            itOn(rt, 'propagation', `${title}: ${rt.name} runs it or fails it as runc, with the same propagation`, async () => {
              const o = { rootless, host, noPivot };
              const got = await views(prop, o);
              expectRunc(got, prop, o);
              expectSame(got);
            }, 120_000);
          }
        }
      }
    }
  };

  describe.runIf(IS_ROOT)('as root', () => {
    cases(false, ['as it is', 'shared', 'shared, rootfs a mount']);
  });

  describe.runIf(rootlessOk)('rootless (as 65534, with a user namespace)', () => {
    cases(true, ['as it is']);
  });

  /** The /sys mounts of the container with runc's rootless /sys: the host's bound, ro, nosuid, nodev, noexec. */
  async function sysViews(rootless: boolean, userns: boolean, sysfs: 'rbind' | 'sysfs') {
    const out = [];
    for (const rt of RUNTIMES) {
      const c = configFor(rootless, null);
      if (!rootless) {
        // No network namespace of its own; with a user namespace of its own where asked.
        c.linux.namespaces = c.linux.namespaces.filter((ns: { type: string }) => ns.type !== 'network');
        if (userns) {
          c.linux.namespaces.push({ type: 'user' });
          c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
          c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        }
      }
      c.mounts = c.mounts.map((m: { destination: string }) => (m.destination !== '/sys' ? m : sysfs === 'rbind'
        ? { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
        : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] }));
      const r = await run(rt, bundleFor(`sys-${rt.name}`, c, rootless), { rootless });
      out.push({ rt: rt.name, ran: r.code === 0, view: r.code === 0 ? sysView(r.out) : [], err: r.err });
    }
    return out;
  }

  /** runc: /sys read-only, nosuid, nodev, noexec; the host's mounts below it (/sys/fs/cgroup ...) as the host has them. */
  function expectTopOnly(got: Awaited<ReturnType<typeof sysViews>>) {
    const ref = got[0]!;
    expect(ref.ran, `runc: ${ref.err}`).toBe(true);
    expect(ref.view[0]).toMatch(/^\/sys ro,nosuid,nodev,noexec/);
    const host = sysView(readFileSync('/proc/self/mountinfo', 'utf8')).slice(1);
    if (host.length === 0) console.warn('this host has no mounts below /sys: the rbind\'s submounts are not seen');
    // The host's own submounts come first, as they are, then the config's cgroup mount over them.
    expect(ref.view.slice(1, 1 + host.length)).toEqual(host);
    for (const g of got.slice(1)) {
      expect(g.ran, `${g.rt}: ${g.err}`).toBe(true);
      expect(g.view, `${g.rt}'s /sys mounts, against runc's`).toEqual(ref.view);
    }
  }

  describe.runIf(IS_ROOT)('/sys bound from the host, as root', () => {
    for (const rt of RUNTIMES.slice(1)) {
      itOn(rt, 'propagation', `${rt.name}: an rbind of /sys without a network namespace: the flags on /sys alone, as runc`, async () => {
        expectTopOnly(await sysViews(false, false, 'rbind'));
      }, 60_000);
      itOn(rt, 'propagation', `${rt.name}: an rbind of /sys with a user namespace and no network namespace: the flags on /sys alone, as runc`, async () => {
        expectTopOnly(await sysViews(false, true, 'rbind'));
      }, 60_000);
      itOn(rt, 'propagation', `${rt.name}: a sysfs mount with a user namespace and no network namespace, which runc fails: the host's /sys, read-only throughout`, async () => {
        const [ref, ...others] = await sysViews(false, true, 'sysfs');
        // runc 1.1 mounts sysfs and the kernel refuses it (the network namespace is not the user namespace's): EPERM.
        expect(ref!.ran).toBe(false);
        expect(ref!.err).toMatch(/sysfs.*operation not permitted/);
        // tsns-oci binds the host's /sys instead, and keeps every mount of it read-only (there is no runc to follow).
        for (const g of others) {
          expect(g.ran, `${g.rt}: ${g.err}`).toBe(true);
          expect(g.view[0]).toMatch(/^\/sys ro,nosuid,nodev,noexec/);
          // All but the config's own cgroup tmpfs over /sys/fs/cgroup, which is rw.
          expect(g.view.filter((l) => !/ ro,/.test(l)).map((l) => l.split(' ')[0])).toEqual(['/sys/fs/cgroup']);
        }
      }, 60_000);
    }
  });

  describe.runIf(rootlessOk)('/sys bound from the host, rootless (as 65534)', () => {
    for (const rt of RUNTIMES.slice(1)) {
      itOn(rt, 'propagation', `${rt.name}: spec --rootless's rbind of /sys: the flags on /sys alone, as runc`, async () => {
        expectTopOnly(await sysViews(true, true, 'rbind'));
      }, 60_000);
    }
  });
});
