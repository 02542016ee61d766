/**
 * tsns-oci beside runc on the same busybox bundle: the lifecycle's states,
 * the state JSON field by field, run's exit status and what the process sees.
 */
import { execa } from 'execa';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { specTemplate } from '../../src/oci/spec';
import { IS_ROOT, ROOT } from './helpers';
import { enginesPresent } from './oci-lib';

const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/bin/busybox';
// runc and busybox are probed (on CI their absence fails the run); the
// bundle's root filesystem is root's, so without root the file says so.
const missing = enginesPresent('runc');
if (missing) console.warn(`skipping tsns-oci beside runc: it ${missing}`);
if (!IS_ROOT) console.warn('skipping tsns-oci beside runc: it needs root (its bundle is root\'s)');
const have = missing === null && IS_ROOT;
let dir = '';

function bundle(args: string[]): string {
  const b = mkdtempSync(join(dir, 'b-'));
  const bin = join(b, 'rootfs', 'bin');
  mkdirSync(bin, { recursive: true });
  cpSync(BUSYBOX, join(bin, 'busybox'));
  for (const name of ['sh', 'sleep', 'cat', 'id', 'hostname', 'ls', 'grep']) symlinkSync('busybox', join(bin, name));
  const c = specTemplate(false, 0, 0) as Record<string, any>;
  c.process = { ...c.process, terminal: false, args };
  writeFileSync(join(b, 'config.json'), JSON.stringify(c));
  return b;
}

const runtimes = () => [
  { name: 'runc', cmd: RUNC, pre: ['--root', join(dir, 'runc-root')] },
  { name: 'tsns-oci', cmd: process.execPath, pre: [join(ROOT, 'bin', 'tsns-oci.js'), '--root', join(dir, 'tsns-root')] },
];

describe.skipIf(!have)('tsns-oci beside runc (root)', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsns-oci-e2e-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a command with the same output and exit status', async () => {
    const b = bundle(['sh', '-c', 'echo hi; hostname; id; cat /proc/self/uid_map; ls /proc/1/ns >/dev/null; exit 3']);
    const out = [];
    for (const rt of runtimes()) {
      const r = await execa(rt.cmd, [...rt.pre, 'run', '--bundle', b, `x-${rt.name}`], { reject: false });
      out.push({ code: r.exitCode, stdout: r.stdout });
    }
    expect(out[1]).toEqual(out[0]);
    expect(out[0]!.code).toBe(3);
  });

  it('lets the process use runc\'s default devices under the config\'s "deny all" device rule', async () => {
    // `runc spec` (and podman, and containerd) deny every device and leave the usual ones to the runtime.
    const probe = 'for d in null zero full random urandom ptmx; do if : < /dev/$d; then echo "$d ok"; else echo "$d denied"; fi 2>/dev/null; done; '
      + 'echo x > /dev/null && echo "write ok"; sleep 1 & wait $! < /dev/null && echo "background ok"';
    const b = bundle(['sh', '-c', probe]);
    const out = [];
    for (const rt of runtimes()) {
      const r = await execa(rt.cmd, [...rt.pre, 'run', '--bundle', b, `dev-${rt.name}`], { reject: false });
      out.push({ code: r.exitCode, stdout: r.stdout.split('\n') });
    }
    expect(out[0]).toEqual({ code: 0, stdout: ['null ok', 'zero ok', 'full ok', 'random ok', 'urandom ok', 'ptmx ok', 'write ok', 'background ok'] });
    expect(out[1]).toEqual(out[0]);
  });

  it('goes through create, start, kill, delete with runc\'s states and state JSON', async () => {
    const b = bundle(['sleep', '100']);
    const seen: Record<string, unknown>[][] = [];
    for (const rt of runtimes()) {
      const x = (...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false });
      // The container keeps create's stdio: not execa's pipes, which would stay open.
      const detached = (...a: string[]) => execa(rt.cmd, [...rt.pre, ...a], { reject: false, stdio: 'ignore' });
      const id = 'life';
      const steps: Record<string, unknown>[] = [];
      expect((await detached('create', '--bundle', b, '--pid-file', join(dir, `${rt.name}.pid`), id)).exitCode).toBe(0);
      steps.push(JSON.parse((await x('state', id)).stdout));
      expect((await x('start', id)).exitCode).toBe(0);
      steps.push(JSON.parse((await x('state', id)).stdout));
      expect((await x('kill', id, '9')).exitCode).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      steps.push(JSON.parse((await x('state', id)).stdout));
      expect((await x('delete', id)).exitCode).toBe(0);
      expect((await x('state', id)).exitCode).not.toBe(0);
      seen.push(steps);
    }
    const shape = (s: Record<string, unknown>) => ({ keys: Object.keys(s), status: s.status, bundle: s.bundle, rootfs: s.rootfs, id: s.id, pidZero: s.pid === 0, owner: s.owner });
    expect(seen[1]!.map(shape)).toEqual(seen[0]!.map(shape));
    expect(seen[1]!.map((s) => s.status)).toEqual(['created', 'running', 'stopped']);
    expect(readdirSync(join(dir, 'tsns-root'))).toEqual([]);
  });

  it('fails create for a missing command, leaving nothing behind', async () => {
    const b = bundle(['no-such-command']);
    const [, t] = runtimes();
    const r = await execa(t!.cmd, [...t!.pre, 'create', '--bundle', b, 'missing'], { reject: false, stdin: 'ignore', stdout: 'ignore' });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^tsns: cannot start container process: exec: "no-such-command": executable file not found in \$PATH: No such file or directory \(ENOENT\)/);
    expect(existsSync(join(dir, 'tsns-root', 'missing'))).toBe(false);
  });
});
