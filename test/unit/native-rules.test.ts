/**
 * The rules of native/ that a compiler does not check by itself.
 *
 * The child after clone shares Node's memory and TLS, so the files it runs
 * (child.c, sandbox.c) may make raw system calls only: no libc function, no
 * allocation. Compiled alone, such a file may leave undefined only what the
 * child-side files define for each other and what compilers emit on their
 * own; anything else is a libc call, however it got there (GCC 12 turns a
 * counting loop into strlen at -O2).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const NATIVE = resolve(__dirname, '..', '..', 'native');
const CHILD_SIDE = ['child.c', 'sandbox.c', 'oci.c', 'oci-hook.c', 'oci-path.c', 'oci-root.c', 'lifecycle.c', 'oci-keyring.c'];
/** What a compiler emits without being asked: block copies and stack protection. */
const COMPILER_EMITTED = new Set(['memcpy', 'memset', 'memmove', '__stack_chk_fail', '_GLOBAL_OFFSET_TABLE_']);
const MAX_LINES = 600;

const symbols = (object: string, flag: string): string[] =>
  execFileSync('nm', [flag, object], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/).pop() ?? '')
    .filter(Boolean);

describe('native/', () => {
  let dir: string;
  const undefinedIn = new Map<string, string[]>();
  const defined = new Set<string>();

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsns-native-rules-'));
    for (const file of CHILD_SIDE) {
      const object = join(dir, file.replace(/\.c$/, '.o'));
      execFileSync('cc', ['-c', '-O2', '-o', object, join(NATIVE, file)], { stdio: 'pipe' });
      undefinedIn.set(file, symbols(object, '-u'));
      for (const name of symbols(object, '--defined-only')) defined.add(name);
    }
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(CHILD_SIDE)('%s calls nothing but the child-side files and raw system calls', (file) => {
    const foreign = (undefinedIn.get(file) ?? []).filter((name) => !defined.has(name) && !COMPILER_EMITTED.has(name));
    expect(foreign.map((name) => `native/${file} calls ${name}`)).toEqual([]);
  });

  it('keeps every C file at most 600 lines', () => {
    const long = (readdirSync(NATIVE, { recursive: true }) as string[])
      .filter((name) => /\.[ch]$/.test(name))
      .map((name) => ({ name, lines: readFileSync(join(NATIVE, name), 'utf8').split('\n').length - 1 }))
      .filter(({ lines }) => lines > MAX_LINES);
    expect(long.map(({ name, lines }) => `native/${name}: ${lines} lines`)).toEqual([]);
  });
});
