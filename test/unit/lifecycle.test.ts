/** bwrap's fd protocols and process rules: parsing, the plan's checks, the wire, --level-prefix. */
import { describe, expect, it } from 'vitest';
import { parseRun } from '../../src/cli/run';
import { levelLines, useLevelPrefix, warningLine } from '../../src/cli/level';
import type { PlanContext } from '../../src/context';
import { TsnsError } from '../../src/errors';
import { makePlan, type RunOptions } from '../../src/plan/run';
import { encodeSpec, runSpec, TAG, EXTRA, HARDENING } from '../../src/wire';

const user: PlanContext = {
  uid: 1000,
  gid: 1000,
  privileged: false,
  env: {},
  lookupUser: () => undefined,
  lookupGroup: () => undefined,
  subordinateIds: () => [],
  signalNumber: (n) => ({ SIGKILL: 9 })[n],
  cwd: '/',
  lstat: () => ({ kind: 'dir' }),
  readFd: () => new Uint8Array(),
  canUnshare: () => true,
};
const root: PlanContext = { ...user, uid: 0, gid: 0, privileged: true };

const plan = (opts: RunOptions, ctx = user) => makePlan(['true'], opts, ctx);

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TsnsError);
    return (e as TsnsError).message;
  }
  throw new Error('expected a TsnsError');
}

describe('bwrap fd options', () => {
  it('parse as bwrap spells them', () => {
    const { options } = parseRun(['--lock-file', '/a', '--lock-file', '/b', '--sync-fd', '3', '--block-fd', '4', '--info-fd', '5',
      '--json-status-fd', '6', '--userns', '7', '--userns2', '8', '--pidns', '9', '--disable-userns', '--assert-userns-disabled',
      '--userns-block-fd', '10', '--level-prefix', '--die-with-parent', 'true']);
    expect(options).toMatchObject({
      lockFile: ['/a', '/b'], syncFd: 3, blockFd: 4, infoFd: 5, jsonStatusFd: 6, userns: 7, userns2: 8, pidns: 9,
      disableUserns: true, assertUsernsDisabled: true, usernsBlockFd: 10, dieWithParent: true,
    });
    expect(() => parseRun(['--info-fd', 'x', 'true'])).toThrow(/open file descriptor/);
  });

  it('--unshare-user-try and --unshare-cgroup-try follow the probe', () => {
    expect(plan({ unshareUserTry: true, unshareCgroupTry: true }).namespaces).toEqual(['user', 'cgroup']);
    const none = { ...user, canUnshare: () => false };
    expect(plan({ unshareUserTry: true, unshareCgroupTry: true }, none).namespaces).toEqual([]);
    // As bwrap's --unshare-all: user and cgroup only where they can be made.
    expect(plan({ unshareAll: true }, none).namespaces).toEqual(['uts', 'ipc', 'net', 'pid']);
    expect(plan({ unshareAll: true }).namespaces).toEqual(['uts', 'ipc', 'net', 'pid', 'user', 'cgroup']);
  });

  it("refuses what bwrap refuses, in bwrap's words", () => {
    expect(message(() => plan({ usernsBlockFd: 3, infoFd: 4 }, root))).toBe('--userns-block-fd requires --unshare-user');
    expect(message(() => plan({ usernsBlockFd: 3, user: true }))).toBe('--userns-block-fd requires --info-fd');
    expect(message(() => plan({ userns: 3, user: true }))).toBe('--userns not compatible --unshare-user');
    expect(message(() => plan({ userns: 3, unshareUserTry: true }))).toBe('--userns not compatible --unshare-user-try');
    expect(message(() => plan({ userns: 3, unshareAll: true }))).toBe('--userns not compatible --unshare-user-try');
    expect(message(() => plan({ disableUserns: true }, root))).toBe('--disable-userns requires --unshare-user');
    expect(message(() => plan({ disableUserns: true, user: true, usernsBlockFd: 3, infoFd: 4 }))).toBe('--disable-userns is not compatible with --userns-block-fd');
    expect(message(() => plan({ usernsBlockFd: 3, infoFd: 4, mapRootUser: true }))).toMatch(/caller writes the id maps/);
  });

  it('says what to do after each refusal (a hint)', () => {
    const refused: [RunOptions, PlanContext][] = [[{ usernsBlockFd: 3, infoFd: 4 }, root], [{ usernsBlockFd: 3, user: true }, user],
      [{ userns: 3, user: true }, user], [{ userns: 3, unshareUserTry: true }, user], [{ disableUserns: true }, root],
      [{ disableUserns: true, user: true, usernsBlockFd: 3, infoFd: 4 }, user], [{ usernsBlockFd: 3, infoFd: 4, mapRootUser: true }, user],
      [{ userns: 3, mapRootUser: true }, user], [{ lockFile: [''] }, user]];
    for (const [opts, ctx] of refused) {
      try {
        plan(opts, ctx);
        expect.unreachable(JSON.stringify(opts));
      } catch (e) {
        expect((e as TsnsError).hint, (e as Error).message).toMatch(/\S/);
      }
    }
  });

  it('--userns-block-fd and --userns leave the id maps to others', () => {
    const blocked = plan({ user: true, usernsBlockFd: 3, infoFd: 4, filesystem: [{ op: 'bind', src: '/' }] });
    expect([blocked.uidMap, blocked.gidMap, blocked.setgroups]).toEqual([null, null, null]);
    expect(blocked.namespaces).toContain('user');
    // Unprivileged, a sandbox implies a user namespace of its own, but not beside one joined.
    const joined = plan({ userns: 5, net: true, filesystem: [{ op: 'bind', src: '/' }] });
    expect(joined.namespaces).toEqual(['mount', 'net']);
    expect(joined.uidMap).toBeNull();
  });

  it('go on the wire as the shim reads them', () => {
    const p = plan({ user: true, lockFile: ['/l'], syncFd: 3, blockFd: 4, infoFd: 5, jsonStatusFd: 6, pidns: 9, disableUserns: true, assertUsernsDisabled: true });
    const text = encodeSpec({ ...runSpec(p), stdio: [], inheritFds: false, searchPath: '/bin', env: [] }).toString();
    const entries = text.split('\0');
    for (const e of [`${TAG.LOCK_FILE}/l`, `${TAG.INFO_FD}5`, `${TAG.STATUS_FD}6`, `${TAG.BLOCK_FD}4`, `${TAG.EXTRA}${EXTRA.SYNC_FD}3`, `${TAG.EXTRA}${EXTRA.PIDNS}9`]) {
      expect(entries).toContain(e);
    }
    const hardening = entries.find((e) => e.startsWith(TAG.HARDENING))!;
    expect(hardening).toContain(HARDENING.DISABLE_USERNS);
    expect(hardening).toContain(HARDENING.ASSERT_USERNS_DISABLED);
  });

  it('--die-with-parent kills the command with SIGKILL when tsns dies', () => {
    expect(plan({ dieWithParent: true }).killSignal).toBe(9);
  });
});

describe('--level-prefix', () => {
  it("prefixes each line of tsns's diagnostics with its syslog level", () => {
    useLevelPrefix('run', ['--level-prefix', '--bind', '/', '--', 'x']);
    expect(levelLines('tsns: it failed: No such file (ENOENT)\nhint: do this\n')).toBe('<3>tsns: it failed: No such file (ENOENT)\n<6>hint: do this\n');
    expect(warningLine('careful')).toBe('<4>tsns: warning: careful\n');
    // After --, it is the command's argument.
    useLevelPrefix('run', ['--', 'sh', '--level-prefix']);
    expect(levelLines('tsns: x\n')).toBe('tsns: x\n');
    expect(warningLine('careful')).toBe('tsns: warning: careful\n');
  });
});
