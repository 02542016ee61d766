import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/oci/config';
import { planOci } from '../../src/oci/plan';
import { specTemplate } from '../../src/oci/spec';
import { parseJson } from '../../src/seccomp/json';

const base = () => JSON.parse(JSON.stringify({ ...specTemplate(false, 0, 0), process: { ...(specTemplate(false, 0, 0).process as object), terminal: false } })) as Record<string, any>;

describe('config.json', () => {
  it('reads runc spec\'s template', () => {
    const c = parseConfig(base() as never, '/b');
    expect(c.root).toEqual({ path: '/b/rootfs', readonly: true });
    expect(c.mounts.map((m) => m.destination)).toContain('/dev/pts');
  });

  it('names an unknown field by its JSON path', () => {
    const c = base();
    c.process.user.bogus = 1;
    expect(() => parseConfig(c as never, '/b')).toThrow('config.json: process.user.bogus: unknown field');
  });

  it('names an unsupported field by its JSON path', () => {
    const c = base();
    c.process.apparmorProfile = 'x';
    expect(() => parseConfig(c as never, '/b')).toThrow(/process\.apparmorProfile: AppArmor is not supported/);
    const d = base();
    d.linux.intelRdt = { closID: 'x' };
    expect(() => parseConfig(d as never, '/b')).toThrow(/linux\.intelRdt: not supported/);
  });

  it('names a wrong type with its path', () => {
    const c = base();
    c.mounts[1].options = 'nosuid';
    expect(() => parseConfig(c as never, '/b')).toThrow('config.json: mounts[1].options: expected an array, found a string');
  });

  it('says where malformed JSON breaks', () => {
    expect(() => parseJson('{\n  "a": 1,\n  }')).toThrow(/line 3 column/);
  });

  it('plans namespaces, mounts and the fifo', () => {
    const c = parseConfig(base() as never, '/b');
    const spec = planOci({
      config: c, rootless: false, uid: 0, gid: 0, noPivot: false, fd: (n) => n, stateDirFd: 9, consoleSocket: null, preserveFds: 0,
      openNs: () => 0, seccomp: null, cgroup: null, home: '/',
    });
    expect(spec.flags).toBe(0x20000000 | 0x40000000 | 0x08000000 | 0x04000000 | 0x00020000);
    expect(spec.extras).toContain('G9');
    // Read-only, and / rslave (MS_SLAVE | MS_REC) before the rootfs's bind, as runc without a rootfsPropagation.
    expect(spec.oci![0]).toEqual(['X', `r${0x80000 | 0x4000}:/b/rootfs`]);
    expect(spec.propagation).toBe(0);
    expect(spec.env).toContain('HOME=/');
  });

  it('sets a bind\'s ro, nosuid, nodev, noexec on its own mount, rro and the like on every mount below it', () => {
    const c = base() as Record<string, any>;
    c.mounts = [{ destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro', 'rnosuid'] }];
    const [m] = parseConfig(c as never, '/b').mounts;
    // MOUNT_ATTR_RDONLY | NOSUID | NODEV | NOEXEC on /sys alone (runc's remount); NOSUID below it too.
    expect([m!.flags, m!.attr, m!.recAttr]).toEqual([0x1000 | 0x4000, 0xf, 0x2]);
  });

  it('gives / rootfsPropagation as runc: the r forms recursive; [r]private refused with --no-pivot', () => {
    const plan = (prop: string, noPivot: boolean) => {
      const c = base() as Record<string, any>;
      c.linux.rootfsPropagation = prop;
      return planOci({
        config: parseConfig(c as never, '/b'), rootless: false, uid: 0, gid: 0, noPivot, fd: (n) => n, stateDirFd: 9, consoleSocket: null, preserveFds: 0,
        openNs: () => 0, seccomp: null, cgroup: null, home: '/',
      }).oci![0]![1];
    };
    expect(plan('shared', false)).toBe(`r${0x100000}:/b/rootfs`);
    expect(plan('rshared', true)).toBe(`rn${0x100000 | 0x4000}:/b/rootfs`);
    expect(plan('unbindable', false)).toBe(`r${0x20000}:/b/rootfs`);
    expect(plan('rprivate', false)).toBe(`r${0x40000 | 0x4000}:/b/rootfs`);
    for (const p of ['private', 'rprivate']) expect(() => plan(p, true)).toThrow(/rootfsPropagation of \[r\]private is not safe without pivot_root/);
  });

  it('sends a terminal\'s master to the console socket, or to the helper\'s socket pair in the foreground', () => {
    const c = base() as Record<string, any>;
    c.process.terminal = true;
    c.process.consoleSize = { height: 20, width: 70 };
    const cfg = parseConfig(c as never, '/b');
    const plan = (consoleSocket: string | null, consoleFd: number | null) => planOci({
      config: cfg, rootless: false, uid: 0, gid: 0, noPivot: false, fd: (n) => n, stateDirFd: 9, consoleSocket, consoleFd, preserveFds: 0,
      openNs: () => 0, seccomp: null, cgroup: null, home: '/',
    });
    expect(plan('/run/c.sock', null).extras).toContain('M/run/c.sock\x0120\x0170');
    expect(plan(null, 12).extras).toContain('N12\x0120\x0170');
    // The user's error is checkConsoleSocket's (oci-terminal.test.ts), before any plan.
    expect(() => plan(null, null)).toThrow(/needs consoleSocket or consoleFd/);
  });

  it('refuses a hostname without a UTS namespace', () => {
    const c = base();
    c.linux.namespaces = [{ type: 'mount' }];
    const cfg = parseConfig(c as never, '/b');
    expect(() => planOci({ config: cfg, rootless: false, uid: 0, gid: 0, noPivot: false, fd: (n) => n, stateDirFd: null, consoleSocket: null, preserveFds: 0, openNs: () => 0, seccomp: null, cgroup: null, home: '/' }))
      .toThrow(/hostname: needs a UTS namespace/);
  });
});
