/**
 * bwrap's overlays (--overlay-src with --overlay, --tmp-overlay, --ro-overlay)
 * and its fd binds (--bind-fd, --ro-bind-fd), end to end as root and as
 * 65534: what the command sees, where its writes go, and the errors. bwrap
 * 0.8 here has --bind-fd, which runs beside tsns; its overlays came with
 * 0.10, so their errors are checked against bwrap 0.11's words.
 */
import { execa } from 'execa';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callerIds, hasCommand, IS_ROOT, MODES, requireCommands, ROOT, USER, type Mode, type Run } from './helpers';

const HAS_TOOLS = requireCommands('setpriv');
const BWRAP = hasCommand('bwrap');
let dir = '';

beforeAll(() => {
  // The kernel takes no overlayfs as an overlay's upper layer: where /tmp is one (tsns in a
  // container), the layers go to /dev/shm, a tmpfs there too.
  const overlayfs = 0x794c7630;
  const base = statfsSync(tmpdir()).type === overlayfs && existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  dir = mkdtempSync(join(base, 'tsns-bwrap-mounts-'));
  chmodSync(dir, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh directory of layers for one test, owned by the mode's user: lo1 (a, shared), lo2 (b, shared), up, wk empty. */
function layers(mode: Mode): Record<'base' | 'lo1' | 'lo2' | 'up' | 'wk', string> {
  const base = mkdtempSync(join(dir, 'l-'));
  const d = { base, lo1: join(base, 'lo1'), lo2: join(base, 'lo2'), up: join(base, 'up'), wk: join(base, 'wk') };
  for (const p of [d.lo1, d.lo2, d.up, d.wk]) mkdirSync(p);
  writeFileSync(join(d.lo1, 'a'), 'a of lo1\n');
  writeFileSync(join(d.lo1, 'shared'), 'lo1\n');
  writeFileSync(join(d.lo2, 'b'), 'b of lo2\n');
  writeFileSync(join(d.lo2, 'shared'), 'lo2\n');
  const { uid, gid } = callerIds(mode);
  if (IS_ROOT) for (const p of [base, d.lo1, d.lo2, d.up, d.wk, ...['a', 'shared'].map((f) => join(d.lo1, f)), ...['b', 'shared'].map((f) => join(d.lo2, f))]) chownSync(p, uid, gid);
  return d;
}

type Tool = 'tsns' | 'bwrap';

/** bash -c SCRIPT as the mode's user, with $TOOL the tool's command line up to its options. */
async function sh(tool: Tool, mode: Mode, script: string): Promise<Run> {
  const bin = mode === 'user' && IS_ROOT ? join(inject('stagedRoot'), 'bin', 'tsns.js') : join(ROOT, 'bin', 'tsns.js');
  const env = { ...process.env, TOOL: tool === 'bwrap' ? 'bwrap' : `${process.execPath} ${bin} run` };
  const command = ['bash', '-c', script];
  const as = mode === 'user' && IS_ROOT ? ['setpriv', `--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...command] : command;
  const r = await execa(as[0]!, as.slice(1), { reject: false, env, cwd: '/', timeout: 30_000, stdin: 'ignore' });
  return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode, signal: r.signal };
}

const tsns = (mode: Mode, args: string) => sh('tsns', mode, `$TOOL ${args}`);

/** One error line as tsns prints it and a hint after it, nothing more. */
function expectError(r: Run, line: string | RegExp): void {
  const lines = r.stderr.split('\n');
  expect(r.exitCode).toBe(125);
  expect(lines).toHaveLength(2);
  if (typeof line === 'string') expect(lines[0]).toBe(line);
  else expect(lines[0]).toMatch(line);
  expect(lines[1]).toMatch(/^hint: \S/);
}

describe.runIf(HAS_TOOLS).each(MODES)('as %s', (mode: Mode) => {
  it('--overlay-src SRC... --overlay RWSRC WORKDIR DEST: the union, the last source on top; writes go to RWSRC only', async () => {
    const d = layers(mode);
    const r = await tsns(mode, `--ro-bind / / --overlay-src ${d.lo1} --overlay-src ${d.lo2} --overlay ${d.up} ${d.wk} /mnt -- ` +
      `sh -c 'cat /mnt/shared; ls /mnt | tr "\\n" " "; echo; echo new > /mnt/c; echo changed > /mnt/a; rm /mnt/b; ls /mnt | tr "\\n" " "'`);
    expect({ out: r.stdout, err: r.stderr, code: r.exitCode }).toEqual({ out: 'lo2\na b shared \na c shared ', err: '', code: 0 });
    // The sources are as they were; the new file and the changed one are in RWSRC.
    expect([readFileSync(join(d.lo1, 'a'), 'utf8'), readdirSync(d.lo1).sort(), readdirSync(d.lo2).sort()])
      .toEqual(['a of lo1\n', ['a', 'shared'], ['b', 'shared']]);
    expect([readFileSync(join(d.up, 'c'), 'utf8'), readFileSync(join(d.up, 'a'), 'utf8')]).toEqual(['new\n', 'changed\n']);
    // What rm took away is hidden by a whiteout in RWSRC, not deleted from lo2.
    expect(readdirSync(d.up).sort()).toEqual(['a', 'b', 'c']);
    // A second run over the same RWSRC sees the writes of the first.
    const again = await tsns(mode, `--ro-bind / / --overlay-src ${d.lo1} --overlay-src ${d.lo2} --overlay ${d.up} ${d.wk} /mnt -- sh -c 'cat /mnt/a /mnt/c'`);
    expect(again.stdout).toBe('changed\nnew');
  });

  it('--tmp-overlay DEST: writes go to a tmpfs of the sandbox and vanish with it; the source is untouched', async () => {
    const d = layers(mode);
    const args = `--ro-bind / / --overlay-src ${d.lo1} --tmp-overlay /mnt --`;
    const first = await tsns(mode, `${args} sh -c 'echo x > /mnt/new; echo y > /mnt/a; cat /mnt/a; ls /mnt | tr "\\n" " "'`);
    expect({ out: first.stdout, err: first.stderr, code: first.exitCode }).toEqual({ out: 'y\na new shared ', err: '', code: 0 });
    const second = await tsns(mode, `${args} sh -c 'cat /mnt/a; ls /mnt | tr "\\n" " "'`);
    expect(second.stdout).toBe('a of lo1\na shared ');
    expect([readdirSync(d.lo1).sort(), readdirSync(d.up)]).toEqual([['a', 'shared'], []]);
  });

  it('--ro-overlay DEST: the union of two sources or more, read-only', async () => {
    const d = layers(mode);
    const r = await tsns(mode, `--ro-bind / / --overlay-src ${d.lo1} --overlay-src ${d.lo2} --ro-overlay /mnt -- ` +
      `sh -c 'cat /mnt/shared; ls /mnt | tr "\\n" " "; echo; touch /mnt/x 2>&1 || echo refused'`);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^lo2\na b shared \ntouch: .*Read-only file system\nrefused$/);
    expect(existsSync(join(d.lo2, 'x'))).toBe(false);
  });

  it("refuses the overlay forms bwrap 0.11 refuses, in its words, each with a hint", async () => {
    const d = layers(mode);
    for (const [args, line] of [
      [`--overlay ${d.up} ${d.wk} /mnt`, '--overlay requires at least one --overlay-src'],
      ['--tmp-overlay /mnt', '--tmp-overlay requires at least one --overlay-src'],
      [`--overlay-src ${d.lo1} --ro-overlay /mnt`, '--ro-overlay requires at least two --overlay-src'],
      [`--overlay-src ${d.lo1} --dir /x`, '--overlay-src must be followed by another --overlay-src or one of --overlay, --tmp-overlay, or --ro-overlay'],
      // bwrap: "--overlay takes three arguments"
      [`--overlay-src ${d.lo1} --overlay ${d.up} ${d.wk}`, "option '--overlay' requires 3 arguments"],
    ] as const) {
      const r = await tsns(mode, `--ro-bind / / ${args}`);
      expectError(r, `tsns: ${line}`);
    }
  });

  it('an overlay the kernel refuses: one line naming the options, a hint, 125, nothing left mounted', async () => {
    const d = layers(mode);
    const missing = await tsns(mode, `--ro-bind / / --overlay-src ${d.base}/none --tmp-overlay /mnt -- true`);
    expectError(missing, `tsns: --overlay-src ${d.base}/none --tmp-overlay /mnt failed: No such file or directory (ENOENT)`);
    // WORKDIR on another filesystem than RWSRC (/dev/shm is a tmpfs of its own).
    const apart = await tsns(mode, `--ro-bind / / --overlay-src ${d.lo1} --overlay ${d.up} /dev/shm /mnt -- true`);
    expectError(apart, `tsns: --overlay-src ${d.lo1} --overlay ${d.up} /dev/shm /mnt failed: Invalid argument (EINVAL)`);
    expect(apart.stderr).toContain('must be an empty directory on the same filesystem as RWSRC');
    expect(readdirSync(d.up)).toEqual([]);
  });

  it('--bind-fd FD DEST and --ro-bind-fd: the directory open on FD, writable or really read-only; the command does not get FD; as bwrap', async () => {
    const d = layers(mode);
    const script = (tool: Tool) => `exec 3<${d.lo1} 4<${d.lo2}; $TOOL --ro-bind / / --dev /dev --tmpfs /tmp --bind-fd 3 /tmp/rw --ro-bind-fd 4 /tmp/ro ${tool === 'tsns' ? '--' : ''} ` +
      `sh -c 'cat /tmp/rw/a /tmp/ro/b; echo w > /tmp/rw/w && echo wrote; (echo w > /tmp/ro/w) 2>/dev/null || echo refused; ` +
      `grep -c " /tmp/ro .*ro," /proc/self/mountinfo; for f in 3 4; do [ -e /proc/self/fd/$f ] && echo has $f; done; echo end'`;
    const ours = await sh('tsns', mode, script('tsns'));
    expect({ out: ours.stdout, err: ours.stderr, code: ours.exitCode })
      .toEqual({ out: 'a of lo1\nb of lo2\nwrote\nrefused\n1\nend', err: '', code: 0 });
    expect(readFileSync(join(d.lo1, 'w'), 'utf8')).toBe('w\n');
    if (BWRAP) {
      rmSync(join(d.lo1, 'w'));
      const theirs = await sh('bwrap', mode, script('bwrap'));
      expect({ out: theirs.stdout, code: theirs.exitCode }).toEqual({ out: ours.stdout, code: 0 });
    }
  });

  it("--bind-fd whose path now leads to something else is refused after the bind, as bwrap's race check refuses it", async () => {
    // The fd's directory is gone, and another now has the name its path shows ("DIR (deleted)").
    const d = layers(mode);
    const script = `cd ${d.base}; mkdir gone; exec 4<gone; rmdir gone; mkdir "gone (deleted)"; ` +
      '$TOOL --ro-bind / / --bind-fd 4 /mnt $SEP true';
    const ours = await sh('tsns', mode, script.replace('$SEP', '--'));
    expectError(ours, `tsns: --bind-fd 4 /mnt: what got mounted on /mnt is not the file fd 4 is open on: Stale file handle (ESTALE)`);
    if (BWRAP) {
      const theirs = await sh('bwrap', mode, script.replace('$SEP', ''));
      expect([theirs.exitCode, theirs.stderr]).toEqual([1, expect.stringContaining('Race condition binding dirfd')]);
    }
  });

  it('--bind-fd on an fd that is no directory or file, or not open: one line, a hint, 125, as bwrap refuses both', async () => {
    const pipe = await sh('tsns', mode, 'echo | $TOOL --ro-bind / / --bind-fd 0 /mnt -- true');
    expectError(pipe, 'tsns: --bind-fd 0 /mnt failed: Not a directory (ENOTDIR)');
    const closed = await sh('tsns', mode, 'exec 7<&-; $TOOL --ro-bind / / --ro-bind-fd 7 /mnt -- true');
    expectError(closed, /^tsns: --ro-bind-fd 7 \/mnt failed: .* \((ENOENT|ENOTDIR)\)$/);
    if (BWRAP) {
      for (const s of ['echo | bwrap --ro-bind / / --bind-fd 0 /mnt true', 'exec 7<&-; bwrap --ro-bind / / --ro-bind-fd 7 /mnt true']) {
        expect((await sh('bwrap', mode, s)).exitCode).toBe(1);
      }
    }
  });
});
