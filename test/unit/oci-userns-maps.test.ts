import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/oci/config';
import { checkJoinedUserMaps } from '../../src/oci/plan';
import { specTemplate } from '../../src/oci/spec';

const POD = '/proc/4242/ns/user';
const config = (uid: unknown[], gid: unknown[], path = POD) => {
  const c = JSON.parse(JSON.stringify(specTemplate(false, 0, 0))) as Record<string, any>;
  c.process.terminal = false;
  c.linux.namespaces.push({ type: 'user', path });
  c.linux.uidMappings = uid;
  c.linux.gidMappings = gid;
  return parseConfig(c as never, '/b');
};
const maps = { uid_map: '         0     200000      65536\n', gid_map: '         0     300000      1000\n      1000     400000         1\n' };
const read = (path: string, file: 'uid_map' | 'gid_map') => (path.startsWith('/proc/') ? maps[file] : null);

// A CRI pod's containers join its pause's user namespace with the pod's mappings beside it (runc 1.2 checks them).
describe('mappings beside a joined user namespace', () => {
  it('are accepted where they are the namespace\'s, in any order, or left out', () => {
    expect(() => checkJoinedUserMaps(config([{ containerID: 0, hostID: 200000, size: 65536 }], [
      { containerID: 1000, hostID: 400000, size: 1 }, { containerID: 0, hostID: 300000, size: 1000 },
    ]), read)).not.toThrow();
    expect(() => checkJoinedUserMaps(config([], []), read)).not.toThrow();
  });

  it('are refused where they differ, naming the field, both mappings and what to do', () => {
    expect(() => checkJoinedUserMaps(config([{ containerID: 0, hostID: 100000, size: 65536 }], []), read)).toThrow(
      'config.json: linux.uidMappings: 0 100000 65536 is not the mapping of the user namespace joined at /proc/4242/ns/user, which is 0 200000 65536');
    expect(() => checkJoinedUserMaps(config([], [{ containerID: 0, hostID: 300000, size: 1000 }]), read)).toThrow(
      'linux.gidMappings: 0 300000 1000 is not the mapping of the user namespace joined at /proc/4242/ns/user, which is 0 300000 1000, 1000 400000 1');
  });

  it('are left unchecked, and said so, where the path names no process', () => {
    const said: string[] = [];
    checkJoinedUserMaps(config([{ containerID: 0, hostID: 1, size: 1 }], [], '/run/userns/pod'), read, 'config.json', (w) => said.push(w));
    expect(said).toEqual(['linux.uidMappings not checked against the user namespace at /run/userns/pod: not a /proc/PID/ns/user path']);
  });
});
