/**
 * Issue 8, part 6: what an unprivileged caller can never get through tsns, and
 * the safety of the files it persists namespaces on.
 */
import { execa } from 'execa';
import { chmodSync, existsSync, lstatSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { IS_ROOT, MODES, requireCommands, USER } from './helpers';
import { asMode, listTree, mounts, mountsDiff, reaped, reaper, removeReaper, scratchDir, STACK_TRACE, tsnsBin, tsnsReaped } from './reliability-lib';

let dir = '';

const TOOLS = requireCommands('setpriv', 'cc');

beforeAll(() => {
  if (!TOOLS) return;
  reaper();
  dir = scratchDir('tsns-sec-');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  removeReaper();
});

/** Run `snippet` (an expression using `tsns`) in a Node process as the test user; prints its result or error as JSON. */
async function apiAsUser(snippet: string): Promise<Record<string, unknown>> {
  const lib = join(inject('stagedRoot'), 'dist', 'index.cjs');
  const code = `const tsns = require(${JSON.stringify(lib)});\n(async () => { console.log(JSON.stringify(await (${snippet}))); })()` +
    '.catch((e) => { console.log(JSON.stringify({ error: e.name, stage: e.stage, errno: e.errno, message: e.message })); });';
  const r = await execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', process.execPath, '-e', code], {
    cwd: '/', reject: false,
  });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe.runIf(IS_ROOT && MODES.includes('user'))('an unprivileged caller', () => {
  it.each([
    ['host root by a range', ['--map-users=0:0:1']],
    ['host root in the old OUTER,INNER,COUNT form', ['--map-users=0,0,1']],
    ['host root as a group', ['--map-groups=0:0:1']],
    ['host root next to its own id', ['--map-users=0:65534:1', '--map-users=1:0:1']],
    ['a range outside /etc/subuid', ['--map-users=0:1000:10']],
    ['a range reaching past its own id', ['--map-users=0:65534:2']],
  ])('may not map %s: refused before anything is cloned', async (_name, args) => {
    const r = await tsnsReaped('user', ['run', ...args, 'sh', '-c', 'cat /proc/self/uid_map']);
    expect(r.exitCode).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^tsns: [ug]id range .* is outside your \/etc\/sub[ug]id ranges/);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.leftovers).toEqual([]);
  });

  it.each([
    ['mapUsers: [\'0:0:1\']'],
    ['mapUsers: [{ inner: 0, outer: 0, count: 1 }]'],
    ['mapGroups: [{ inner: 0, outer: 0, count: 1 }]'],
    ['mapUsers: [\'0:1000:10\']'],
  ])('run({ %s }) rejects at stage plan (before clone)', async (option) => {
    const res = await apiAsUser(`tsns.run(['true'], { ${option} })`);
    expect(res).toMatchObject({ error: 'TsnsError', stage: 'plan' });
  });

  it('maps its own id without newuidmap/newgidmap (none on PATH), with setgroups denied first', async () => {
    const r = await reaped(asMode('user', ['env', 'PATH=/nonexistent', process.execPath, tsnsBin('user'), 'run',
      '--map-users=0:65534:1', '--map-groups=0:65534:1', '--', '/bin/cat', '/proc/self/uid_map', '/proc/self/gid_map', '/proc/self/setgroups']));
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toEqual(['0 65534 1', '0 65534 1', 'deny']);
  });

  it('-r: setgroups is deny, root inside is the caller outside', async () => {
    const file = join(dir, 'made-by-inner-root');
    const r = await tsnsReaped('user', ['run', '-r', '--', 'sh', '-c',
      `cat /proc/self/setgroups /proc/self/uid_map /proc/self/gid_map; id -u; touch ${file}; setpriv --groups=0 true 2>/dev/null && echo setgroups-allowed || echo setgroups-refused`]);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toEqual(['deny', '0 65534 1', '0 65534 1', '0', 'setgroups-refused']);
    const st = statSync(file);
    expect([st.uid, st.gid]).toEqual([USER.uid, USER.gid]);
    rmSync(file);
  });

  it('cannot persist a namespace (a mount in the host namespace), and leaves no file behind', async () => {
    const before = { mounts: mounts(), tree: listTree(dir) };
    const r = await tsnsReaped('user', ['run', '-r', `--uts=${dir}/user-ns`, 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^tsns: cannot bind the uts namespace onto .*user-ns: .*\((EPERM|EACCES)\)/);
    expect(existsSync(join(dir, 'user-ns'))).toBe(false);
    expect(listTree(dir)).toEqual(before.tree);
    expect(mountsDiff(before.mounts, mounts(), dir)).toEqual([]);
    expect(r.leftovers).toEqual([]);
  });
});

describe.runIf(IS_ROOT)('persisted namespace files', () => {
  async function unmount(path: string): Promise<void> {
    await execa('umount', [path]);
  }

  it.each(['022', '000'])('are created with mode 0600 (umask %s)', async (umask) => {
    const file = join(dir, `ns-umask-${umask}`);
    const r = await reaped(['sh', '-c', `umask ${umask}; exec "$0" "$@"`, process.execPath, tsnsBin('root'), 'run', `--uts=${file}`, 'true']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    // Through the bind mount the nsfs inode answers; unmounted, the file itself does.
    await unmount(file);
    const st = lstatSync(file);
    expect(st.isFile()).toBe(true);
    expect(st.uid).toBe(0);
    expect(st.mode & 0o7777, `mode ${(st.mode & 0o7777).toString(8)}`).toBe(0o600);
    rmSync(file);
  });

  it.each(['dangling', 'to a regular file'] as const)('a symlink at FILE (%s) is refused: nothing is created, bound or followed', async (kind) => {
    const target = join(dir, `target-${kind === 'dangling' ? 'missing' : 'file'}`);
    const link = join(dir, `link-${kind === 'dangling' ? 'dangling' : 'file'}`);
    if (kind !== 'dangling') writeFileSync(target, 'keep me\n', { mode: 0o644 });
    symlinkSync(target, link);
    try {
      const before = { mounts: mounts(), tree: listTree(dir) };
      const r = await tsnsReaped('root', ['run', `--uts=${link}`, 'true']);
      expect(r.exitCode).toBe(125);
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines[0]).toMatch(/^tsns: cannot bind the uts namespace onto .*link-/);
      expect(lines.length).toBeLessThanOrEqual(2);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      if (kind === 'dangling') expect(existsSync(target)).toBe(false);
      else expect(readFileSync(target, 'utf8')).toBe('keep me\n');
      expect(listTree(dir)).toEqual(before.tree);
      expect(mountsDiff(before.mounts, mounts(), dir)).toEqual([]);
      expect(r.leftovers).toEqual([]);
    } finally {
      rmSync(link, { force: true });
      rmSync(target, { force: true });
    }
  });

  it('a directory at FILE is refused', async () => {
    const sub = join(dir, 'a-dir');
    await execa('mkdir', [sub]);
    chmodSync(sub, 0o755);
    try {
      const before = mounts();
      const r = await tsnsReaped('root', ['run', `--uts=${sub}`, 'true']);
      expect(r.exitCode).toBe(125);
      expect(r.stderr).toMatch(/^tsns: cannot bind the uts namespace onto .*a-dir: .*\(EINVAL\)/);
      expect(mountsDiff(before, mounts(), dir)).toEqual([]);
    } finally {
      rmSync(sub, { recursive: true, force: true });
    }
  });
});

describe.runIf(IS_ROOT && MODES.includes('user'))('the unprivileged caller and root\'s files', () => {
  it('the test user cannot read a namespace file root persisted (mode 0600)', async () => {
    const file = join(dir, 'root-ns');
    const made = await tsnsReaped('root', ['run', `--uts=${file}`, 'true']);
    expect(made.exitCode).toBe(0);
    try {
      // Through the bind mount the nsfs inode answers; under it, the file is 0600 root.
      await execa('umount', [file]);
      const r = await execa(asMode('user', ['cat', file])[0]!, asMode('user', ['cat', file]).slice(1), { reject: false });
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/Permission denied/);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
