import { describe, expect, it } from 'vitest';
import { DEFAULT_DEVICES, v1DeviceWrites } from '../../src/cgroup/devices';
import type { OciDevice } from '../../src/oci/config';
import { parseConfig } from '../../src/oci/config';
import { deviceRules, deviceSteps, planOci } from '../../src/oci/plan';
import { specTemplate } from '../../src/oci/spec';
import { OP_SEP, TAG } from '../../src/wire';

const dev = (type: OciDevice['type'], path: string, major: number, minor: number): OciDevice => ({ type, path, major, minor, fileMode: null, uid: null, gid: null });

describe('a container\'s device rules (runc\'s)', () => {
  it('the config\'s rules first, then runc\'s allowed devices; linux.devices adds none of its own', () => {
    const rules = deviceRules([{ allow: false, access: 'rwm' }], [
      dev('c', '/dev/fuse', 10, 229), dev('u', '/dev/u', 4, 1), dev('p', '/dev/fifo', 0, 0),
    ]);
    expect(rules).toEqual([{ allow: false, access: 'rwm' }, ...DEFAULT_DEVICES]);
  });

  it('a default device whose path linux.devices names loses its rule, as its node', () => {
    // /dev/full named (even as itself), /dev/null named as another device: both defaults' rules go.
    const rules = deviceRules([{ allow: false, access: 'rwm' }], [dev('c', '/dev/full', 1, 7), dev('c', '/dev/null', 1, 9)])!;
    const lines = v1DeviceWrites(rules).map((w) => w.value);
    expect(lines).not.toContain('c 1:7 rwm');
    expect(lines).not.toContain('c 1:3 rwm');
    // urandom is still there, through its own default (not through /dev/null's new number)
    expect(lines.filter((l) => l === 'c 1:9 rwm')).toHaveLength(1);
    expect(rules).toHaveLength(1 + DEFAULT_DEVICES.length - 2);
    // A path no default has, or another type's: nothing dropped.
    expect(deviceRules([{ allow: false }], [dev('c', '/dev/fulls', 1, 7)])).toHaveLength(1 + DEFAULT_DEVICES.length);
  });

  it('the nodes: a default device named in linux.devices is made once, as the config says', () => {
    const c = JSON.parse(JSON.stringify(specTemplate(false, 0, 0))) as Record<string, any>;
    c.process.terminal = false;
    c.linux.devices = [{ path: '/dev/full', type: 'c', major: 1, minor: 5, fileMode: 0o600 }];
    const spec = planOci({
      config: parseConfig(c as never, '/b'), rootless: false, uid: 0, gid: 0, noPivot: false, fd: (n) => n, stateDirFd: null, consoleSocket: null,
      preserveFds: 0, openNs: () => 0, seccomp: null, cgroup: null, home: '/',
    });
    const nodes = spec.oci!.filter(([t, v]) => t === TAG.OCI_STEP && v.startsWith('n')).map(([, v]) => v.slice(1).split(OP_SEP));
    expect(nodes.filter((n) => n[0] === '/dev/full')).toEqual([['/dev/full', 'c', '1', '5', '600', '-1', '-1']]);
    expect(nodes.map((n) => n[0]).sort()).toEqual(['/dev/full', '/dev/null', '/dev/random', '/dev/tty', '/dev/urandom', '/dev/zero']);
  });

  it('a "deny all" from an engine still lets the container open /dev/null, /dev/ptmx and its pty', () => {
    const lines = v1DeviceWrites(deviceRules([{ allow: false, access: 'rwm' }], [])!).map((w) => `${w.file} ${w.value}`);
    expect(lines[0]).toBe('devices.deny a');
    for (const dev of ['c 1:3 rwm', 'c 5:2 rwm', 'c 136:* rwm', 'c 5:0 rwm']) expect(lines).toContain(`devices.allow ${dev}`);
  });

  it('no rules: none added (nothing is restricted)', () => {
    expect(deviceRules(undefined, [])).toBeUndefined();
    expect(deviceRules([], [dev('c', '/dev/fuse', 10, 229)])).toEqual([]);
  });
});

describe('/dev as runc sets it up (deviceSteps)', () => {
  const F_BIND = 0x1000;
  const config = (mounts: { destination: string; flags: number }[], devices: OciDevice[] = []) => ({ mounts, linux: { devices } }) as never;
  const codes = (steps: [string, string][]) => steps.map(([, v]) => `${v[0]} ${v.slice(1).split(OP_SEP).slice(0, 2).join(' ')}`);

  it('no /dev mount at all: the defaults, the ptmx link in place of what is there, the fd and stdio links', () => {
    expect(codes(deviceSteps(config([]), false, false))).toEqual([
      'n /dev/null c', 'n /dev/zero c', 'n /dev/full c', 'n /dev/random c', 'n /dev/urandom c', 'n /dev/tty c',
      'L pts/ptmx /dev/ptmx', 'l /proc/self/fd /dev/fd', 'l /proc/self/fd/0 /dev/stdin', 'l /proc/self/fd/1 /dev/stdout', 'l /proc/self/fd/2 /dev/stderr',
    ]);
  });

  it('a bind or rbind onto /dev (however the path is spelt): nothing, not even linux.devices', () => {
    for (const dest of ['/dev', '/dev/', '//dev/.']) {
      expect(deviceSteps(config([{ destination: dest, flags: F_BIND }], [dev('c', '/dev/fuse', 10, 229)]), true, false)).toEqual([]);
    }
    expect(deviceSteps(config([{ destination: '/dev', flags: 0 }, { destination: '/dev/x', flags: F_BIND }]), false, false)).not.toEqual([]);
  });

  it('linux.devices after the defaults it does not replace; /dev/ptmx only as the link; bound in a user namespace; /dev/core with /proc/kcore', () => {
    const steps = codes(deviceSteps(config([{ destination: '/dev', flags: 0 }], [dev('c', '/dev/null', 1, 5), dev('c', '/dev/ptmx', 5, 2), dev('c', '/dev/fuse', 10, 229)]), true, true));
    expect(steps.filter((s) => s.startsWith('N '))).toEqual(['N /dev/zero c', 'N /dev/full c', 'N /dev/random c', 'N /dev/urandom c', 'N /dev/tty c', 'N /dev/null c', 'N /dev/fuse c']);
    expect(steps.filter((s) => s.includes('ptmx'))).toEqual(['L pts/ptmx /dev/ptmx']);
    expect(steps).toContain('l /proc/kcore /dev/core');
  });
});
