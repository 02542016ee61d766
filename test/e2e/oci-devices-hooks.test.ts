/**
 * Two things runc 1.1 does around a container's /dev and its hooks, each
 * run with runc first and then tsns-oci on the same bundle, and compared:
 * the default devices (null, zero, full, random, urandom, tty), the fd and
 * stdio links and /dev/ptmx, made wherever /dev is not a bind mount — with
 * no /dev mount (in the rootfs's own /dev, where they stay), over a tmpfs,
 * with linux.devices naming default paths — and nothing made over a bound
 * host /dev; and the cgroup each hook runs in (createContainer and
 * startContainer in the container's, the others in the runtime's). As root,
 * and rootless as 65534 with a user namespace.
 */
import { execa } from 'execa';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { specTemplate } from '../../src/oci/spec';
import { IS_ROOT, requireFeature, unprivilegedUserns, USER } from './helpers';
import { enginesPresent, itOn, runcSpec, runtimesUnderTest, suiteDir, withOutDir, type Runtime } from './oci-lib';

const RUNTIMES = runtimesUnderTest();
const missing = enginesPresent('runc');
if (missing) console.warn(`skipping /dev and the hooks' cgroups beside runc: it ${missing}`);
const ordered = RUNTIMES[0]?.name === 'runc' && RUNTIMES.length > 1;
const rootlessOk = missing === null && ordered && requireFeature(unprivilegedUserns(), 'unprivileged user namespaces (a rootless container needs one)');
if (!IS_ROOT) console.warn('skipping the root half of /dev and the hooks\' cgroups: runc runs a root bundle as root only; the rootless half runs');

const me = () => (IS_ROOT ? USER : { uid: process.geteuid!(), gid: process.getegid!() });

/** A runtime's command line, as 65534 for a rootless bundle when root runs the tests. */
function call(rt: Runtime, dir: string, args: string[], rootless: boolean) {
  const root = ['--root', join(dir, `state-${rt.name}${rootless ? '-rootless' : ''}`)];
  const options = { reject: false, timeout: 60_000, stdin: 'ignore' as const, env: { XDG_RUNTIME_DIR: '' } };
  if (!rootless || !IS_ROOT) return execa(rt.path, [...root, ...args], options);
  return execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', 'env', `HOME=${dir}`, rt.userPath(), ...root, ...args], options);
}

/** runc's spec as root, `spec --rootless`'s for 65534; this command, terminal off, the rootfs writable. */
function configFor(args: string[], rootless: boolean): Record<string, any> {
  const c = (rootless ? specTemplate(true, me().uid, me().gid) : runcSpec(args)) as Record<string, any>;
  c.process = { ...c.process, terminal: false, args };
  c.root.readonly = false;
  return c;
}


type DevCase = 'none' | 'tmpfs' | 'bind' | 'rbind' | 'devices';
/** A name no host has: a device of linux.devices that a bound /dev must not get. */
const STRAY = `tsns-oci-devtest-${process.pid}`;

/** The config's mounts for each case: the /dev mount (none, runc's tmpfs, the host's /dev bound), and linux.devices. */
function devConfig(kind: DevCase, args: string[], rootless: boolean): Record<string, any> {
  const c = configFor(args, rootless);
  const tmpfs = c.mounts.find((m: any) => m.destination === '/dev');
  const rest = c.mounts.filter((m: any) => m.destination !== '/dev');
  if (kind === 'none') c.mounts = rest;
  else if (kind === 'bind' || kind === 'rbind') {
    // The host's /dev and nothing mounted below it: the host's own mounts there stay untouched.
    c.mounts = [{ destination: '/dev', type: 'bind', source: '/dev', options: [kind, 'nosuid'] }, ...rest.filter((m: any) => !m.destination.startsWith('/dev/'))];
    c.linux.devices = [{ path: `/dev/${STRAY}`, type: 'c', major: 1, minor: 3 }];
  } else {
    c.mounts = [tmpfs, ...rest];
    if (kind === 'devices') {
      // A default path with another node, mode and owner; /dev/ptmx, which stays a link; one of its own.
      c.linux.devices = [
        { path: '/dev/null', type: 'c', major: 1, minor: 5, fileMode: 0o600, uid: 0, gid: 0 }, { path: '/dev/ptmx', type: 'c', major: 5, minor: 2, fileMode: 0o600 },
        { path: '/dev/fuse', type: 'c', major: 10, minor: 229 },
      ];
    }
  }
  return c;
}

/** What the container sees of each entry: name, type, major:minor, mode, owner, a link's target. */
const LIST = `for f in /dev/* /dev/pts/*; do stat -c '%n %F %t:%T %a %u:%g' "$f"; [ -L "$f" ] && echo "  -> $(readlink "$f")"; done; echo end`;
/** Entries of the host's /dev a bound /dev shows: the defaults and their links (the rest come and go with the host's ptys). */
const BOUND_LIST = `for f in /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/fd /dev/stdin /dev/stdout /dev/stderr /dev/ptmx /dev/${STRAY}; do
  if [ -e "$f" ] || [ -L "$f" ]; then stat -c '%n %F %t:%T %a %u:%g' "$f"; else echo "$f missing"; fi; done; echo end`;

/** The rootfs's /dev on the host, as `stat` lists it. */
function hostDev(rootfs: string): string[] {
  const d = join(rootfs, 'dev');
  return readdirSync(d).sort().map((n) => {
    const st = lstatSync(join(d, n));
    const type = st.isSymbolicLink() ? `-> ${readlinkSync(join(d, n))}` : st.isCharacterDevice() ? `char ${st.rdev >> 8}:${st.rdev & 0xff}` : st.isDirectory() ? 'dir' : st.isFile() ? `file ${st.size}` : 'other';
    return `${n} ${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
  });
}

const cgroupOf = (file: string, name: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(name).join('CG')) : ['none']);
const HOOKS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart'] as const;

describe.runIf(missing === null && ordered)('/dev and the hooks\' cgroups as runc 1.1 has them, runc first, then tsns-oci', () => {
  let dir = '';
  const unique = suiteDir('devhooks', (d) => (dir = d));

  /** A run of the case: what the container listed, then the rootfs's /dev once the container is gone. */
  async function devices(rt: Runtime, kind: DevCase, rootless: boolean): Promise<{ code: number | undefined; inside: string[]; after: string[] }> {
    const bound = kind === 'bind' || kind === 'rbind';
    const c = devConfig(kind, ['sh', '-c', bound ? BOUND_LIST : LIST], rootless);
    // A rootfs whose /dev has a ptmx of its own (runc puts its link in its place) and a tty already, not empty
    // (left as it is where runc makes nodes; emptied and bound over in a user namespace).
    const { bundle, rootfs } = withOutDir(dir, unique(`dev-${kind}-${rt.name}`), c, rootless, (r) => {
      mkdirSync(join(r, 'dev'));
      writeFileSync(join(r, 'dev', 'ptmx'), '');
      writeFileSync(join(r, 'dev', 'tty'), 'x');
    });
    const id = unique('dev');
    const r = await call(rt, dir, ['run', '--bundle', bundle, id], rootless);
    // In a user namespace the host's /dev, with mounts below it that it may not uncover, can only be bound with them (rbind).
    if (rootless && kind === 'bind') return { code: r.exitCode, inside: [], after: hostDev(rootfs) };
    expect(r.exitCode, `${rt.name} run (${kind}): ${r.stderr}`).toBe(0);
    const inside = String(r.stdout).trim().split('\n');
    expect(inside.at(-1), `${rt.name}: the listing ended`).toBe('end');
    if (bound) expect(existsSync(`/dev/${STRAY}`), `${rt.name} made linux.devices' node in the host's /dev`).toBe(false);
    return { code: r.exitCode, inside, after: hostDev(rootfs) };
  }

  async function hookCgroups(rt: Runtime, rootless: boolean, cgroupns: boolean): Promise<Record<string, string[]>> {
    const c = configFor(['true'], rootless);
    // As root a cgroup of the test's; rootless the runtime's own choice (runc's: none it may not make), named for the id.
    const cg = unique('tsns-oci-hookcg');
    if (!rootless) c.linux.cgroupsPath = `/${cg}`;
    if (cgroupns) c.linux.namespaces.push({ type: 'cgroup' });
    const { bundle, out } = withOutDir(dir, unique(`hooks-${rt.name}`), c, rootless);
    // Every hook but startContainer runs before the pivot or outside the container: the host's path of out; startContainer's /out.
    const hook = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `cat /proc/self/cgroup > ${name === 'startContainer' ? '/out' : out}/${name}`] });
    c.hooks = Object.fromEntries(HOOKS.map((h) => [h, [hook(h)]]));
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(c, null, 2));
    const r = await call(rt, dir, ['run', '--bundle', bundle, cg], rootless);
    expect(r.exitCode, `${rt.name} run: ${r.stderr}`).toBe(0);
    return Object.fromEntries(HOOKS.map((h) => [h, cgroupOf(join(out, h), cg)]));
  }

  const CASES: DevCase[] = ['none', 'tmpfs', 'devices', 'bind', 'rbind'];
  for (const rootless of [false, true]) {
    const half = rootless ? 'rootless (as 65534, with a user namespace)' : 'as root';
    describe.runIf(rootless ? rootlessOk : IS_ROOT)(half, () => {
      for (const kind of CASES) {
        let reference: Awaited<ReturnType<typeof devices>> | null = null;
        it(`runc: /dev with ${kind === 'none' ? 'no /dev mount' : kind === 'devices' ? 'a tmpfs and linux.devices naming default paths' : `/dev ${kind === 'tmpfs' ? 'a tmpfs' : `the host's, ${kind}`}`}`, async () => {
          reference = await devices(RUNTIMES[0]!, kind, rootless);
          if (kind === 'bind' || kind === 'rbind') {
            // The host's nodes, nothing of linux.devices, and the rootfs's /dev as it was.
            if (rootless && kind === 'bind') expect(reference.code, 'runc refuses a bind of the host\'s /dev in a user namespace').not.toBe(0);
            else expect(reference.inside).toContain(`/dev/${STRAY} missing`);
            const owner = rootless && IS_ROOT ? USER : { uid: process.geteuid!(), gid: process.getegid!() };
            expect(reference.after).toEqual(['ptmx file 0', 'tty file 1'].map((f) => `${f} 644 ${owner.uid}:${owner.gid}`));
          } else {
            expect(reference.inside.some((l) => /^\/dev\/null character special file 1:[35] /.test(l)), 'a /dev/null').toBe(true);
            expect(reference.inside.join('\n')).toContain('/dev/ptmx symbolic link 0:0 777 0:0\n  -> pts/ptmx');
            // The rootfs's own /dev: its tty emptied where the host's is bound over it, else left; its ptmx the link.
            if (kind === 'none') expect(reference.after.filter((l) => /^(tty|ptmx) /.test(l)).map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual(['ptmx -> pts/ptmx', `tty file ${rootless ? 0 : 1}`]);
          }
        });
        for (const rt of RUNTIMES.slice(1)) itOn(rt, 'devices', `${rt.name}: the same /dev as runc, and the same left in the rootfs (${kind}${rootless ? ', rootless' : ''})`, async () => {
          expect(reference, 'runc\'s run above').not.toBeNull();
          const got = await devices(rt, kind, rootless);
          expect(got.code === 0, `exit status ${got.code}, runc's ${reference!.code}`).toBe(reference!.code === 0);
          expect(got.inside).toEqual(reference!.inside);
          expect(got.after).toEqual(reference!.after);
        });
      }

      for (const cgroupns of [false, true]) {
        const ns = cgroupns ? 'with a cgroup namespace' : 'without a cgroup namespace';
        let reference: Record<string, string[]> | null = null;
        it(`runc: the cgroup each hook runs in, ${ns}`, async () => {
          reference = await hookCgroups(RUNTIMES[0]!, rootless, cgroupns);
          for (const h of HOOKS) expect(reference[h], `runc's ${h} hook ran`).not.toEqual(['none']);
          // As root the container has its cgroup: createContainer and startContainer are in it (its root, seen from a cgroup namespace).
          if (!rootless) {
            const inside = cgroupns ? /^0::\/$/ : /^0::\/CG$/;
            for (const h of ['createContainer', 'startContainer']) expect(reference[h]!.some((l) => inside.test(l)), `${h}: ${reference[h]}`).toBe(true);
            expect(reference.prestart!.some((l) => l.includes('CG'))).toBe(false);
          }
        });
        for (const rt of RUNTIMES.slice(1)) itOn(rt, 'hooks', `${rt.name}: each hook in the cgroup runc's runs in, ${ns}${rootless ? ', rootless' : ''}`, async () => {
          expect(reference, 'runc\'s run above').not.toBeNull();
          expect(await hookCgroups(rt, rootless, cgroupns)).toEqual(reference);
        });
      }
    });
  }
});
