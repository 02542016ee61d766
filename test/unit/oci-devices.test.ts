import { describe, expect, it } from 'vitest';
import { DEFAULT_DEVICES, v1DeviceWrites } from '../../src/cgroup/devices';
import type { OciDevice } from '../../src/oci/config';
import { deviceRules } from '../../src/oci/plan';

const dev = (type: OciDevice['type'], path: string, major: number, minor: number): OciDevice => ({ type, path, major, minor, fileMode: null, uid: null, gid: null });

describe('a container\'s device rules (runc\'s)', () => {
  it('the config\'s rules first, then runc\'s allowed devices, then linux.devices', () => {
    const rules = deviceRules([{ allow: false, access: 'rwm' }], [
      dev('c', '/dev/fuse', 10, 229), dev('u', '/dev/u', 4, 1), dev('p', '/dev/fifo', 0, 0),
    ]);
    expect(rules![0]).toEqual({ allow: false, access: 'rwm' });
    expect(rules!.slice(1, 1 + DEFAULT_DEVICES.length)).toEqual(DEFAULT_DEVICES);
    // A fifo is no device the controller knows of; 'u' is a character device.
    expect(rules!.slice(1 + DEFAULT_DEVICES.length)).toEqual([
      { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' }, { allow: true, type: 'c', major: 4, minor: 1, access: 'rwm' },
    ]);
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
