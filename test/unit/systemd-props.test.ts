import { describe, expect, it } from 'vitest';
import { addressPaths, decode, encode, splitSignature, variant } from '../../src/oci/dbus';
import {
  annotationProperties, deviceProperties, expandSlice, parseVariantText, rangeToBits, resourceProperties, systemdUnit, unitDir,
} from '../../src/oci/systemd-props';

const look = { procDevices: 'Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n', exists: (p: string) => p === '/dev/char/1:3' };
const props = (p: [string, { sig: string; value: unknown }][]) => Object.fromEntries(p.map(([n, v]) => [n, v.value]));

describe('systemd cgroup paths, as runc reads them', () => {
  it('slice:prefix:name, and the default unit', () => {
    expect(systemdUnit('system.slice:docker:abc', 'id')).toEqual({ parent: 'system.slice', unit: 'docker-abc.scope', name: 'abc' });
    expect(systemdUnit('a.slice:x:b.slice', 'id').unit).toBe('b.slice');
    expect(systemdUnit(null, 'id')).toEqual({ parent: '', unit: 'tsns-id.scope', name: 'id' });
    expect(() => systemdUnit('/foo', 'id')).toThrow('expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "/foo" instead');
  });
  it('expandSlice', () => {
    expect(expandSlice('test-a-b.slice')).toBe('/test.slice/test-a.slice/test-a-b.slice');
    expect(expandSlice('-.slice')).toBe('/');
    expect(expandSlice('system.slice')).toBe('/system.slice');
    for (const bad of ['bad', 'a--b.slice', '-a.slice', '.slice', 'a/b.slice']) expect(() => expandSlice(bad)).toThrow(`invalid slice name: ${bad}`);
  });
  it('the unit\'s directory: PID 1\'s cgroup less init.scope, the slice, the unit', () => {
    expect(unitDir('/sys/fs/cgroup/memory', '/init.scope', '/system.slice', 'x.scope')).toBe('/sys/fs/cgroup/memory/system.slice/x.scope');
    expect(unitDir('/sys/fs/cgroup/cpu', '/sd/init.scope', '/system.slice', 'x.scope')).toBe('/sys/fs/cgroup/cpu/sd/system.slice/x.scope');
    expect(unitDir('/sys/fs/cgroup', null, '/', 'x.scope')).toBe('/sys/fs/cgroup/x.scope');
  });
});

describe('unit properties', () => {
  it('AllowedCPUs: a little-endian bitmask', () => {
    expect([...rangeToBits('0-2,4', 'Cpus')]).toEqual([0b10111]);
    expect([...rangeToBits('9', 'Cpus')]).toEqual([0, 2]);
    expect(() => rangeToBits('', 'Cpus')).toThrow('empty value');
    expect(() => rangeToBits('3-1', 'Cpus')).toThrow('invalid range');
  });
  it('v1: MemoryLimit, CPUShares, the quota rounded up to whole percents, TasksMax (-1 infinity)', () => {
    const p = props(resourceProperties({ memory: { limit: 1 << 20 }, cpu: { shares: 512, quota: 33333, period: 100000, cpus: '1' }, pids: { limit: -1 }, blockIO: { weight: 300 } }, false, 252, look, () => undefined));
    expect(p).toEqual({ MemoryLimit: 1048576n, CPUShares: 512n, CPUQuotaPeriodUSec: 100000n, CPUQuotaPerSecUSec: 340000n, BlockIOWeight: 300n, TasksMax: (1n << 64n) - 1n, AllowedCPUs: Buffer.from([2]) });
    expect(props(resourceProperties({ cpu: { quota: -1, period: 100000 } }, false, 240, look, () => undefined))).toEqual({ CPUQuotaPerSecUSec: (1n << 64n) - 1n });
  });
  it('v2: MemoryMax, MemoryLow, MemorySwapMax, CPUWeight, unified files', () => {
    const p = props(resourceProperties({ memory: { limit: 100, reservation: 50, swap: 300 }, cpu: { shares: 1024 }, unified: { 'memory.high': '90', 'pids.max': 'max', 'io.weight': '5' } }, true, 252, look, () => undefined));
    expect(p).toEqual({ MemoryMax: 100n, MemoryLow: 50n, MemorySwapMax: 200n, CPUWeight: 100n, MemoryHigh: 90n, TasksMax: (1n << 64n) - 1n });
  });
  it('device rules as DevicePolicy and DeviceAllow', () => {
    const warnings: string[] = [];
    const p = deviceProperties([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, { allow: true, type: 'c', major: 136, minor: -1, access: 'rw' },
      { allow: true, type: 'c', major: -1, minor: -1, access: 'm' }, { allow: true, type: 'c', major: 1, minor: 9, access: 'r' }, { allow: true, type: 'c', major: -1, minor: 5 }], look, (w) => warnings.push(w));
    expect(p.map(([n, v]) => [n, v.value])).toEqual([['DevicePolicy', 'strict'], ['DeviceAllow', []], ['DeviceAllow', [['/dev/char/1:3', 'rwm'], ['char-pts', 'rw'], ['char-*', 'm']]]]);
    expect(warnings).toHaveLength(2);
    expect(props(deviceProperties([{ allow: true, access: 'rwm' }], look, () => undefined))).toEqual({ DevicePolicy: 'auto', DeviceAllow: [] });
  });
  it('org.systemd.property.* annotations (GVariant text), xSec as xUSec', () => {
    expect(parseVariantText("uint64 5")).toEqual(variant('t', 5n));
    expect(parseVariantText("['a', 'b']")).toEqual(variant('as', ['a', 'b']));
    expect(parseVariantText('true')).toEqual(variant('b', true));
    const p = annotationProperties({ 'org.systemd.property.TimeoutStopSec': '5', 'org.systemd.property.CollectMode': "'inactive-or-failed'", other: 'x' });
    expect(props(p)).toEqual({ TimeoutStopUSec: 5000000n, CollectMode: 'inactive-or-failed' });
    expect(() => annotationProperties({ 'org.systemd.property.bad': '1' })).toThrow('annotation org.systemd.property.bad name incorrect');
  });
});

describe('the D-Bus wire format', () => {
  it('a method call read back as it was written', () => {
    const body = ['u.scope', 'replace', [['PIDs', variant('au', [7])], ['Delegate', variant('b', true)], ['AllowedCPUs', variant('ay', Buffer.from([3]))]], []];
    const m = decode(encode({ serial: 9, path: '/org/freedesktop/systemd1', iface: 'org.freedesktop.systemd1.Manager', member: 'StartTransientUnit', destination: 'org.freedesktop.systemd1', sig: 'ssa(sv)a(sa(sv))', body }))!;
    expect(m.message).toMatchObject({ type: 1, serial: 9, member: 'StartTransientUnit', sig: 'ssa(sv)a(sa(sv))' });
    expect(m.message.body).toEqual(body);
    expect(splitSignature('sa(sv)a{sv}t')).toEqual(['s', 'a(sv)', 'a{sv}', 't']);
  });
  it('addresses', () => {
    expect(addressPaths('unix:path=/run/dbus/system_bus_socket;unix:abstract=x%2fy,guid=1')).toEqual(['/run/dbus/system_bus_socket', '\0x/y']);
  });
});
