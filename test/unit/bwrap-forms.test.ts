/** bwrap's argument forms and rules as `tsns run` parses them. */
import { describe, expect, it } from 'vitest';
import { parseRun } from '../../src/cli/run';

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
});
