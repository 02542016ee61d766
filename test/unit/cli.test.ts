import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/args';
import { argsWords, parseRun } from '../../src/cli/run';

describe('parseRun', () => {
  it('options end at the first operand; the rest is the command, untouched', () => {
    expect(parseRun(['--uts', 'ls', '-la', '--pid'])).toMatchObject({ options: { uts: true }, command: ['ls', '-la', '--pid'] });
    expect(parseRun(['--uts', '--', '--pid'])).toMatchObject({ options: { uts: true }, command: ['--pid'] });
    expect(parseRun(['-'])).toMatchObject({ command: ['-'] });
    expect(parseRun([])).toMatchObject({ command: [] });
  });

  it('clusters short flags', () => {
    expect(parseRun(['-muinpUC', '-r', 'sh']).options).toEqual({
      mount: true, uts: true, ipc: true, net: true, pid: true, user: true, cgroup: true, mapRootUser: true,
    });
    expect(parseRun(['-fc', 'sh']).options).toEqual({ mapCurrentUser: true });
  });

  it('optional values only with =, so a command is never swallowed', () => {
    expect(parseRun(['--mount-proc', 'ps'])).toMatchObject({ options: { mountProc: true }, command: ['ps'] });
    expect(parseRun(['--mount-proc=/p', 'ps'])).toMatchObject({ options: { mountProc: '/p' }, command: ['ps'] });
  });

  it('required values either way', () => {
    expect(parseRun(['--hostname', 'a', 'x']).options).toEqual({ hostname: 'a' });
    expect(parseRun(['--hostname=a', 'x']).options).toEqual({ hostname: 'a' });
    expect(parseRun(['--hostname=', 'x']).options).toEqual({ hostname: '' });
    expect(parseRun(['--map-user', 'nobody', '--map-group=7']).options).toEqual({ mapUser: 'nobody', mapGroup: '7' });
  });

  it('--args FD: NUL-separated words parsed in its place, as bwrap reads them', () => {
    const fd = (text: string) => (n: number) => (n === 3 ? Buffer.from(text) : Buffer.alloc(0));
    expect(parseRun(['--args', '3', '--pid', 'x'], fd('--uts\0--hostname\0h\0'))).toMatchObject({
      options: { uts: true, hostname: 'h', pid: true }, command: ['x'], argsFromFd: true,
    });
    // An operand among the words ends the options there, as on the command line.
    expect(parseRun(['--args=3', '--pid', 'y'], fd('--uts\0echo\0hi'))).toMatchObject({ options: { uts: true }, command: ['echo', 'hi', '--pid', 'y'] });
    expect(parseRun(['--uts', 'x'], fd('')).argsFromFd).toBe(false);
    expect(() => parseRun(['--args', '3', 'x'], fd('--args\x003\0'))).toThrow('--args cannot be used in words --args read');
    expect(() => parseRun(['--args', '3', 'x'])).toThrow('--args: no file descriptors are read here');
    expect(() => parseRun(['--args', 'x'], fd(''))).toThrow("--args needs an open file descriptor's number, not 'x'");
    expect([argsWords(Buffer.from('')), argsWords(Buffer.from('a\0b')), argsWords(Buffer.from('a\0b\0')), argsWords(Buffer.from('a\0\0b'))])
      .toEqual([[], ['a', 'b'], ['a', 'b'], ['a', '', 'b']]);
  });

  it('--seccomp FD (the last wins) or --add-seccomp-fd FD (in order), not both', () => {
    expect(parseRun(['--seccomp', '3', '--seccomp=5', 'x']).options).toEqual({ seccomp: [5] });
    expect(parseRun(['--add-seccomp-fd', '4', '--add-seccomp-fd', '3', 'x']).options).toEqual({ seccomp: [4, 3] });
    expect(() => parseRun(['--seccomp', '3', '--add-seccomp-fd', '4', 'x'])).toThrow('--seccomp cannot be combined with --add-seccomp-fd');
    expect(() => parseRun(['--seccomp', 'three', 'x'])).toThrow("--seccomp needs an open file descriptor's number, not 'three'");
  });

  it('accepts unambiguous prefixes of long options, as getopt_long does', () => {
    expect(parseRun(['--host=a', '--map-r', '--dry']).options).toEqual({ hostname: 'a', mapRootUser: true });
    expect(() => parseRun(['--m'])).toThrow(/ambiguous/);
  });

  it('rejects what it does not know, with exit 125', () => {
    for (const bad of [['--nope'], ['-Z'], ['--hostname'], ['--all=1'], ['--setgroups=x'], ['--propagation=up'], ['--json']]) {
      let err: unknown;
      try {
        parseRun(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad.join(' ')).toBeInstanceOf(UsageError);
      expect((err as UsageError).exitCode).toBe(125);
    }
  });

  it('--dry-run --json', () => {
    expect(parseRun(['--dry-run', '--json', 'x'])).toMatchObject({ dryRun: true, json: true });
  });
});
