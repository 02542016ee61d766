/**
 * scripts/test-setup.cjs, which `npm test` runs first: the one list of the
 * tools the tests drive, and what it says when one is missing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const SCRIPT = join(ROOT, 'scripts', 'test-setup.cjs');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { TOOLS, hasCommand } = require(SCRIPT) as { TOOLS: { command: string; packages: string[] }[]; hasCommand(n: string): boolean };

/** A PATH with every tool of the list that this machine has, except `without`. */
function pathWithout(without: string): string {
  const bin = mkdtempSync(join(tmpdir(), 'tsns-path-'));
  dirs.push(bin);
  const from = (name: string) => (process.env.PATH ?? '').split(':').map((p) => join(p, name)).find((f) => existsSync(f));
  for (const name of [...TOOLS.map((t) => t.command), 'node']) {
    const f = name === 'node' ? process.execPath : from(name);
    if (name !== without && f && !existsSync(join(bin, name))) symlinkSync(f, join(bin, name));
  }
  return bin;
}
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function setup(env: Record<string, string>) {
  const r = spawnSync(process.execPath, [SCRIPT], { env: { ...env, TSNS_TEST_INSTALL: 'no' }, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

describe('the test set-up (scripts/test-setup.cjs)', () => {
  it('lists every tool a test asks for, with its Debian package', () => {
    const e2e = join(ROOT, 'test', 'e2e');
    const asked = new Set<string>();
    for (const f of readdirSync(e2e).filter((n) => n.endsWith('.ts'))) {
      for (const m of readFileSync(join(e2e, f), 'utf8').matchAll(/(?:requireCommands|skipWithout)\(([^)]*)\)/g)) {
        for (const q of m[1]!.matchAll(/'([^']+)'/g)) asked.add(q[1]!);
      }
    }
    asked.delete('ctx');
    const listed = new Set(TOOLS.map((t) => t.command));
    expect([...asked].filter((n) => !listed.has(n))).toEqual([]);
    expect(TOOLS.every((t) => t.packages.length > 0)).toBe(true);
    expect(TOOLS.find((t) => t.command === 'ping')!.packages).toEqual(['iputils-ping']);
  });

  it('names the package of a missing tool, and lets the tests run (they skip what needs it)', () => {
    const PATH = pathWithout('ping');
    expect(existsSync(join(PATH, 'ping'))).toBe(false);
    const r = setup({ PATH });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^tsns test set-up: missing (.*, )?ping \(iputils-ping\).* apt-get install (.* )?iputils-ping\b/);
  });

  it('under CI=true a missing tool is a failure', () => {
    const r = setup({ PATH: pathWithout('ping'), CI: 'true' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/apt-get install (.* )?iputils-ping( .*)? \(required on CI\)/);
  });

  it('says nothing when everything is there', () => {
    const have = TOOLS.every((t) => hasCommand(t.command));
    if (!have) return;
    expect(setup({ PATH: dirname(process.execPath) + ':' + (process.env.PATH ?? '') })).toEqual({ status: 0, stderr: '' });
  });
});
