/**
 * The layout's rules, checked: data flows one way (no import cycles, type-only
 * imports aside), only bin/tsns.js and the native monitor end a process, one
 * file alone talks to ffi-rs, and files stay small enough to read.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const SRC = join(ROOT, 'src');

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name), ext) : ext.test(e.name) ? [join(dir, e.name)] : []);
}

const sources = files(SRC, /\.ts$/);
const text = new Map(sources.map((f) => [f, readFileSync(f, 'utf8')]));

/** What a module imports at run time: `import type` and `export type` are gone after compilation. */
function runtimeImports(file: string): string[] {
  const out: string[] = [];
  for (const m of text.get(file)!.matchAll(/^(?:import|export)\s+(type\s+)?[^'";]*?from\s+'(\.[^']+)';/gms)) {
    if (m[1]) continue;
    const body = m[0];
    // `import { type A, type B }` is type-only too.
    const names = /\{([^}]*)\}/.exec(body)?.[1];
    if (names && names.split(',').every((n) => n.trim() === '' || n.trim().startsWith('type '))) continue;
    const target = resolve(dirname(file), m[2]!);
    out.push(text.has(`${target}.ts`) ? `${target}.ts` : join(target, 'index.ts'));
  }
  return out;
}

describe('the layout', () => {
  it('has no import cycles in src/', () => {
    const graph = new Map(sources.map((f) => [f, runtimeImports(f)]));
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(ROOT, p)).join(' → '));
        return;
      }
      state.set(f, 'visiting');
      for (const g of graph.get(f) ?? []) visit(g, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of sources) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('ends processes only in bin/ and native/', () => {
    const exits = sources.filter((f) => /process\.exit\s*\(|process\.reallyExit|process\.abort\s*\(/.test(text.get(f)!));
    expect(exits.map((f) => relative(ROOT, f))).toEqual([]);
  });

  it('talks to ffi-rs from src/native.ts alone', () => {
    const users = sources.filter((f) => /['"]ffi-rs['"]|@yuuang\/ffi-rs/.test(text.get(f)!));
    expect(users.map((f) => relative(ROOT, f))).toEqual(['src/native.ts']);
  });

  it('keeps every src/ file to 500 lines', () => {
    const long = sources.map((f) => [relative(ROOT, f), text.get(f)!.split('\n').length - 1] as const).filter(([, n]) => n > 500);
    expect(long).toEqual([]);
  });
});
