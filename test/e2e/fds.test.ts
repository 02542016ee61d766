/**
 * Inherited file descriptors: the CLI passes the command exactly the fds
 * its caller handed it, as unshare, nsenter and bwrap do, and none of its
 * own; the library passes stdio plus the fds it is told to, as
 * child_process does.
 */
import { execa } from 'execa';
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { hasCommand, IS_ROOT, MODES, ROOT, skipWithout, USER, type Mode } from './helpers';

const tsns = createRequire(import.meta.url)(join(ROOT, 'dist', 'index.cjs')) as typeof import('../../src/index');

const dir = mkdtempSync(join(tmpdir(), 'tsns-fds-'));
// The unprivileged runs open these files themselves.
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'seven'), 'on fd seven\n');
writeFileSync(join(dir, 'twelve'), 'on fd twelve\n');

/**
 * A shell opens fds 7 and 12 and then execs the tool, as a script would; the
 * tool's command lists its own fds (ls's directory fd aside) and reads them.
 */
async function fdsSeen(mode: Mode, tool: readonly string[]): Promise<{ fds: string; stdout: string; exitCode: number | undefined }> {
  const script = `exec 7<"$DIR/seven" 12<"$DIR/twelve"; exec "$@"`;
  const inner = ['sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "; echo; cat <&7; cat /proc/self/fd/12'];
  // bash, not sh: dash takes single-digit fds only.
  const argv = ['bash', '-c', script, 'bash', ...tool, ...inner];
  const asUser = mode === 'user' && IS_ROOT;
  const r = await execa(asUser ? 'setpriv' : argv[0]!, asUser ? [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...argv] : argv.slice(1), {
    reject: false, env: { DIR: dir }, stdin: 'ignore', cwd: '/',
  });
  const [fds, ...rest] = String(r.stdout).split('\n');
  return { fds: fds!.trim(), stdout: rest.join('\n'), exitCode: r.exitCode };
}

function bin(mode: Mode): string[] {
  return [process.execPath, mode === 'user' && IS_ROOT ? join(inject('stagedRoot'), 'bin', 'tsns.js') : join(ROOT, 'bin', 'tsns.js')];
}

describe.each(MODES)('the CLI as %s', (mode: Mode) => {
  const userns = mode === 'user' ? ['-r'] : [];

  it('tsns run passes the fds its caller handed it, and only those: the same as unshare', async (ctx) => {
    skipWithout(ctx, 'unshare');
    const ours = await fdsSeen(mode, [...bin(mode), 'run', '--uts', ...userns, '--']);
    const theirs = await fdsSeen(mode, ['unshare', '--uts', ...userns, '--']);
    expect(ours.exitCode).toBe(0);
    // 0-2, ls's own directory (3), the two the shell opened and whatever the
    // test runner itself was handed, exactly as unshare passes them: none of Node's.
    expect(ours.fds).toMatch(/^0 1 2 3 7 12\b/);
    expect(ours.fds).toBe(theirs.fds);
    expect(ours.stdout).toBe('on fd seven\non fd twelve');
  });

  it('with --pid, --init and a sandbox too', async (ctx) => {
    skipWithout(ctx, 'unshare');
    const theirs = await fdsSeen(mode, ['unshare', '--uts', ...userns, '--']);
    for (const extra of [['--pid'], ['--init'], ['--sandbox', '--bind', dir, dir]]) {
      const r = await fdsSeen(mode, [...bin(mode), 'run', ...userns, ...extra, '--']);
      expect(r.fds, extra.join(' ')).toBe(theirs.fds);
      expect(r.stdout, extra.join(' ')).toBe('on fd seven\non fd twelve');
    }
  });

  it.runIf(hasCommand('bwrap'))('the same as bwrap', async () => {
    const bw = await fdsSeen(mode, ['bwrap', '--dev-bind', '/', '/', '--unshare-uts', '--']);
    const ours = await fdsSeen(mode, [...bin(mode), 'run', '--dev-bind', '/', '/', '--unshare-uts', '--']);
    expect(ours.fds).toBe(bw.fds);
    expect(ours.stdout).toBe(bw.stdout);
  });

  it('a fifo handed over on fd 4 reaches the command', async (ctx) => {
    skipWithout(ctx, 'mkfifo');
    const fifo = join(dir, `fifo-${mode}`);
    await execa('mkfifo', ['-m', '666', fifo]);
    const writer = execa('sh', ['-c', `echo through the fifo > ${fifo}`]);
    const asUser = mode === 'user' && IS_ROOT;
    const argv = ['sh', '-c', `exec "$@" 4<${fifo}`, 'sh', ...bin(mode), 'run', '--uts', ...userns, '--', 'sh', '-c', 'cat <&4'];
    const r = await execa(asUser ? 'setpriv' : argv[0]!, asUser ? [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...argv] : argv.slice(1), { reject: false, stdin: 'ignore' });
    await writer;
    expect(r.stdout).toBe('through the fifo');
  });
});

describe.runIf(IS_ROOT)('tsns enter', () => {
  it('passes the caller\'s fds as nsenter does', async (ctx) => {
    skipWithout(ctx, 'nsenter');
    const ours = await fdsSeen('root', [...bin('root'), 'enter', '-t', String(process.pid), '--net', '--']);
    const theirs = await fdsSeen('root', ['nsenter', '-t', String(process.pid), '--net', '--']);
    expect(ours.fds).toBe(theirs.fds);
    expect(ours.stdout).toBe('on fd seven\non fd twelve');
  });
});

describe('the library, as child_process', () => {
  const opts = IS_ROOT ? { uts: true } : { uts: true, mapRootUser: true };
  const listFds = ['sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "'];

  it('passes stdio only, unless told more', async () => {
    const fd = openSync(join(dir, 'seven'), 'r');
    try {
      const r = await tsns.run(listFds, { ...opts, stdio: ['ignore', 'pipe', 'inherit'] });
      expect(r.stdout!.trim()).toBe('0 1 2 3');
    } finally {
      closeSync(fd);
    }
  });

  it('stdio entries from 3 on, and fds, pass the fds of ours at those numbers', async () => {
    const seven = openSync(join(dir, 'seven'), 'r');
    const twelve = openSync(join(dir, 'twelve'), 'r');
    try {
      const r = await tsns.run(['sh', '-c', 'cat <&3; cat /proc/self/fd/9; ls /proc/self/fd | sort -n | tr "\\n" " "'],
        { ...opts, stdio: ['ignore', 'pipe', 'inherit', seven, 'ignore'], fds: { 9: twelve } });
      expect(r.stdout).toBe('on fd seven\non fd twelve\n0 1 2 3 4 9 ');
    } finally {
      closeSync(seven);
      closeSync(twelve);
    }
  });

  it('swapped stdout and stderr land where they were sent', async () => {
    const out = join(dir, 'out');
    const err = join(dir, 'err');
    const o = openSync(out, 'w');
    const e = openSync(err, 'w');
    try {
      // The command's 1 is our e and its 2 is our o: one mapping must not clobber the other's source.
      await tsns.run(['sh', '-c', 'echo to-stdout; echo to-stderr >&2'], { ...opts, stdio: ['ignore', e, o] });
    } finally {
      closeSync(o);
      closeSync(e);
    }
    expect(readFileSync(err, 'utf8')).toBe('to-stdout\n');
    expect(readFileSync(out, 'utf8')).toBe('to-stderr\n');
  });

  it('refuses what it cannot pass', async () => {
    await expect(tsns.run(['true'], { ...opts, stdio: ['ignore', 'ignore', 'ignore', 'pipe'] })).rejects.toMatchObject({ stage: 'option' });
    await expect(tsns.run(['true'], { ...opts, fds: { 3: -1 } })).rejects.toMatchObject({ stage: 'option' });
  });
});
