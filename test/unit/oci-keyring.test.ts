import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/oci/config';
import { planOci, type OciPlanInput } from '../../src/oci/plan';
import { specTemplate } from '../../src/oci/spec';
import { EXTRA, OP_SEP } from '../../src/wire';

const base = () => JSON.parse(JSON.stringify({ ...specTemplate(false, 0, 0), process: { ...(specTemplate(false, 0, 0).process as object), terminal: false } })) as Record<string, any>;
const input = (over: Partial<OciPlanInput> = {}): OciPlanInput => ({
  config: parseConfig(base() as never, '/b'), rootless: false, uid: 0, gid: 0, noPivot: false, fd: (n) => n, stateDirFd: null, consoleSocket: null,
  preserveFds: 0, openNs: () => 0, seccomp: null, cgroup: null, home: '/', ...over,
});

describe('the session keyring, by runc\'s rule', () => {
  const keyring = (spec: ReturnType<typeof planOci>) => spec.extras.filter((e) => e.startsWith(EXTRA.SESSION_KEYRING));

  it('_ses.ID, searchable by its owner; with a user namespace by everyone', () => {
    expect(keyring(planOci(input({ id: 'box' })))).toEqual([`${EXTRA.SESSION_KEYRING}80000${OP_SEP}_ses.box`]);
    const c = base();
    c.linux.namespaces.push({ type: 'user' });
    c.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
    c.linux.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
    expect(keyring(planOci(input({ id: 'box', config: parseConfig(c as never, '/b'), uid: 1000, gid: 1000, rootless: true })))).toEqual([`${EXTRA.SESSION_KEYRING}8${OP_SEP}_ses.box`]);
  });

  it('none with --no-new-keyring', () => {
    expect(keyring(planOci(input({ id: 'box', noNewKeyring: true })))).toEqual([]);
  });
});
