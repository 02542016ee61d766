/** The startContainer hooks and their state as the wire carries them to the container's process (native/oci-hook.c). */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/oci/config';
import { startHookEntries, startState } from '../../src/oci/plan';
import { OP_SEP, PID_MARK, TAG } from '../../src/wire';

const config = (hooks: object) => parseConfig(JSON.parse(JSON.stringify({
  ociVersion: '1.2.0', root: { path: 'rootfs' }, process: { args: ['true'], cwd: '/' }, linux: { namespaces: [{ type: 'mount' }] }, hooks,
})), '/b', 'config.json');

describe('startContainer hooks on the wire', () => {
  it('puts the pid mark where the host\'s pid goes, whatever the id and annotations hold', () => {
    const text = startState({ ociVersion: '1.2.0', id: 'x"pid":1,y', bundle: '/b', annotations: { a: '"pid":1,' } });
    expect(text.split(PID_MARK)).toHaveLength(2);
    expect(JSON.parse(text.replace(PID_MARK, '4242'))).toEqual({ ociVersion: '1.2.0', id: 'x"pid":1,y', status: 'created', pid: 4242, bundle: '/b', annotations: { a: '"pid":1,' } });
    // no annotations: no key, as runc writes it
    expect(Object.keys(JSON.parse(startState({ ociVersion: '1.2.0', id: 'c', bundle: '/b', annotations: {} }).replace(PID_MARK, '1')))).toEqual(['ociVersion', 'id', 'status', 'pid', 'bundle']);
  });

  it('encodes timeout, path, args and env; a hook without env inherits (-1), without args runs as its path', () => {
    const c = config({ startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'x'], env: ['A=1'], timeout: 3 }, { path: '/hook' }] });
    expect(c.hooks.startContainer[1]!.env).toBeNull();
    expect(startHookEntries(c.hooks.startContainer, 'config.json')).toEqual([
      [TAG.OCI_HOOK, ['3', '/bin/sh', '3', '1', 'sh', '-c', 'x', 'A=1'].join(OP_SEP)],
      [TAG.OCI_HOOK, ['0', '/hook', '1', '-1', '/hook'].join(OP_SEP)],
    ]);
  });

  it('refuses an argument the wire cannot carry, naming it', () => {
    const c = config({ startContainer: [{ path: '/bin/sh', args: ['sh', `a${OP_SEP}b`] }] });
    expect(() => startHookEntries(c.hooks.startContainer, 'config.json')).toThrow(/hooks\.startContainer\[0\]\.args\[1\]/);
  });
});
