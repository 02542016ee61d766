/** bwrap's argument forms and rules as `tsns run` parses them. */
import { describe, expect, it } from 'vitest';
import { parseRun } from '../../src/cli/run';
import type { TsnsError } from '../../src/errors';
import { encodeOp, OP_SEP, SANDBOX_OP } from '../../src/wire';

const fs = (args: string[]) => parseRun([...args, '--', 'true']).options.filesystem;

describe('bwrap forms', () => {
  it('takes two- and three-word options, paths with colons included', () => {
    expect(fs(['--ro-bind', '/a:b', '/c:d', '--symlink', 'usr/lib', '/lib', '--chmod', '0755', '/x'])).toEqual([
      { op: 'ro-bind', src: '/a:b', dest: '/c:d' }, { op: 'symlink', target: 'usr/lib', dest: '/lib' }, { op: 'chmod', perms: 0o755, dest: '/x' }]);
    expect(fs(['--overlay-src', '/l1', '--overlay-src', '/l2', '--overlay', '/up', '/wk', '/m'])).toEqual([
      { op: 'overlay', lowers: ['/l2', '/l1'], upper: '/up', work: '/wk', dest: '/m' }]);
  });
  it('--perms and --size apply to the next operation, in either order, once', () => {
    expect(fs(['--size', '0x10', '--perms', '0700', '--tmpfs', '/t'])).toEqual([{ op: 'tmpfs', dest: '/t', perms: 0o700, size: 16 }]);
    expect(() => fs(['--perms', '0700', '--perms', '0700', '--dir', '/x'])).toThrow('given twice');
    expect(() => fs(['--perms', '0700', '--bind', '/a', '/b'])).toThrow('must be followed');
    expect(() => fs(['--size', '1', '--dir', '/x'])).toThrow('--size must be followed by --tmpfs');
    for (const bad of ['0', '-1', 'x', '9223372036854775808']) expect(() => fs(['--size', bad, '--tmpfs', '/t'])).toThrow('--size');
  });
  it('--setenv, --unsetenv and --clearenv in order', () => {
    const o = parseRun(['--setenv', 'A', '1', '--clearenv', '--setenv', 'B', '2', '--unsetenv', 'C', '--uid', '5', '--argv0', 'x', 'true']).options;
    expect(o).toMatchObject({ clearEnv: true, env: { B: '2', C: undefined }, uid: 5, argv0: 'x' });
  });
  it('--bind-fd/--ro-bind-fd: the fd for the shim, which binds the path it has and checks it', () => {
    const ops = fs(['--bind-fd', '3', '/a', '--ro-bind-fd', '4', '/b']) ?? [];
    expect(ops).toEqual([{ op: 'bind-fd', fd: 3, dest: '/a' }, { op: 'ro-bind-fd', fd: 4, dest: '/b' }]);
    expect(ops.map((o) => encodeOp(o).split(OP_SEP).slice(0, 3))).toEqual([[SANDBOX_OP.BIND_FD, 'fd:3', '/a'], [SANDBOX_OP.RO_BIND_FD, 'fd:4', '/b']]);
    expect(() => fs(['--bind-fd', 'x', '/a'])).toThrow("--bind-fd needs an open file descriptor's number, not 'x'");
  });
  it('every refusal of --perms, --size, --chmod and the overlay options carries a hint', () => {
    for (const bad of [['--perms', '999', '--dir', '/x'], ['--perms', '0700', '--perms', '0700', '--dir', '/x'], ['--perms', '0700', '--bind', '/a', '/b'],
      ['--size', '1', '--size', '1', '--tmpfs', '/t'], ['--size', '1', '--dir', '/x'], ['--chmod', '8', '/x'], ['--overlay', '/u', '/w', '/m'],
      ['--tmp-overlay', '/m'], ['--overlay-src', '/l', '--ro-overlay', '/m'], ['--overlay-src', '/l', '--dir', '/x']]) {
      let err: TsnsError | undefined;
      try {
        fs(bad);
      } catch (e) {
        err = e as TsnsError;
      }
      expect(err?.hint, bad.join(' ')).toMatch(/\S/);
      expect(err?.hint, bad.join(' ')).not.toBe("see 'tsns run --help'");
    }
  });
});
