/**
 * Issue 8, part 4, as CI runs it: a short version of test/soak/soak.mjs
 * (500 sequential run()s, then 10 lanes x 20 concurrent) as root, and a
 * shorter one unprivileged. The full soak is `node --expose-gc test/soak/soak.mjs`.
 *
 * Other test files run beside this one and may mount things of their own, so
 * only mounts that run() could have made count here (--foreign-mounts-ok).
 */
import { execa } from 'execa';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { IS_ROOT, MODES, ROOT, USER } from './helpers';

interface SoakReport {
  ok: boolean;
  problems: string[];
  failureCount: number;
  failures: unknown[];
  fds: { baseline: number; afterSequential: number; after: number };
  rssMB: { baseline: number; after: number };
  newMounts: string[];
  zombies: number[];
  children: number[];
  runsPerSecond: { sequential: number; concurrent: number };
}

let dir = '';

beforeAll(() => {
  // A world-readable copy: the test user may not be able to enter the checkout.
  dir = mkdtempSync(join(tmpdir(), 'tsns-soak-'));
  chmodSync(dir, 0o755);
  copyFileSync(join(ROOT, 'test', 'soak', 'soak.mjs'), join(dir, 'soak.mjs'));
  chmodSync(join(dir, 'soak.mjs'), 0o644);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function soak(asUser: boolean, args: string[]): Promise<SoakReport> {
  const lib = asUser ? join(inject('stagedRoot'), 'dist', 'index.cjs') : join(ROOT, 'dist', 'index.cjs');
  const argv = [process.execPath, '--expose-gc', join(dir, 'soak.mjs'), '--lib', lib, '--foreign-mounts-ok', ...args];
  const r = asUser && IS_ROOT
    ? await execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...argv], { reject: false, cwd: '/', stdin: 'ignore' })
    : await execa(argv[0]!, argv.slice(1), { reject: false, cwd: '/', stdin: 'ignore' });
  const last = String(r.stdout).trim().split('\n').pop() ?? '';
  let report: SoakReport;
  try {
    report = JSON.parse(last) as SoakReport;
  } catch {
    throw new Error(`soak printed no report (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  }
  // The summary lines, for the test log.
  console.log(String(r.stderr).split('\n').filter((l) => l.startsWith('soak:')).join('\n'));
  return report;
}

function expectClean(report: SoakReport): void {
  expect(report.failures, JSON.stringify(report.failures)).toEqual([]);
  expect(report.failureCount).toBe(0);
  expect(report.fds.afterSequential).toBe(report.fds.baseline);
  expect(report.fds.after).toBe(report.fds.baseline);
  expect(report.newMounts).toEqual([]);
  expect(report.zombies).toEqual([]);
  expect(report.children).toEqual([]);
  expect(report.problems).toEqual([]);
  expect(report.ok).toBe(true);
}

describe('soak: run() leaks nothing out', () => {
  it.runIf(IS_ROOT)('as root: 500 sequential, then 10 x 20 concurrent', async () => {
    expectClean(await soak(false, ['--runs', '500', '--lanes', '10', '--per-lane', '20']));
  }, 90_000);

  it.runIf(MODES.includes('user'))('unprivileged (every run in a user namespace): 200 sequential, then 5 x 20 concurrent', async () => {
    expectClean(await soak(true, ['--runs', '200', '--lanes', '5', '--per-lane', '20']));
  }, 90_000);
});
