/**
 * An unprivileged user may not be able to enter the checkout (CI clones under
 * /root, which is 0700), so the tests run a world-readable copy of the built
 * package from /tmp instead of loosening the caller's directories.
 */
import { chmodSync, cpSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';

const ROOT = resolve(__dirname, '..', '..');
const RUNTIME = ['bin', 'dist', 'build', 'package.json'];
const RUNTIME_DEPS = ['ffi-rs', '@yuuang', 'commander', 'chalk'];

function chmodTree(path: string): void {
  const st = statSync(path);
  chmodSync(path, st.isDirectory() || st.mode & 0o100 ? 0o755 : 0o644);
  if (st.isDirectory()) {
    for (const name of require('node:fs').readdirSync(path) as string[]) chmodTree(join(path, name));
  }
}

export default function setup(project: TestProject): () => void {
  if (!existsSync(join(ROOT, 'dist', 'cli.cjs')) || !existsSync(join(ROOT, 'build', 'libtsns.so'))) {
    throw new Error('tsns is not built: run `npm run build:native && npm run build` first (npm test does it)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'tsns-e2e-'));
  for (const item of RUNTIME) cpSync(join(ROOT, item), join(dir, item), { recursive: true });
  for (const dep of RUNTIME_DEPS) {
    const from = join(ROOT, 'node_modules', dep);
    if (existsSync(from)) cpSync(from, join(dir, 'node_modules', dep), { recursive: true, dereference: true });
  }
  chmodTree(dir);
  project.provide('stagedRoot', dir);
  return () => rmSync(dir, { recursive: true, force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    stagedRoot: string;
  }
}
