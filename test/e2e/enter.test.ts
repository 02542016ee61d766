/** tsns enter against live targets made by tsns and by util-linux unshare, as root and unprivileged. */
import { execa, type ResultPromise } from 'execa';
import { chmodSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { IS_ROOT, MODES, NS_FILES, NS_SCRIPT, parseNamespaces, requireCommands, ROOT, tsns, USER, type Mode } from './helpers';

interface Target {
  pid: number;
  proc: ResultPromise;
}

const targets: Target[] = [];
let cwd = '';

/** The direct child of `parent`: the namespaced command that tsns or unshare --fork started. */
async function childOf(parent: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    try {
      const c = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim();
      if (c) return Number(c.split(' ')[0]);
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no child of ${parent}`);
}

/** Start a long-lived target in new namespaces with tsns or unshare, as root or the test user. */
async function start(maker: 'tsns' | 'unshare', mode: Mode): Promise<number> {
  const ns = ['--uts', '--ipc', '--net', '--pid', '--mount', '--mount-proc'];
  const args = maker === 'tsns'
    ? [process.execPath, mode === 'user' && IS_ROOT ? join(inject('stagedRoot'), 'bin', 'tsns.js') : join(ROOT, 'bin', 'tsns.js'), 'run', ...ns]
    : ['unshare', '--fork', ...ns];
  const full = [...args, ...(mode === 'user' ? ['-r'] : []), 'sh', '-c', `hostname box-${maker}; exec sleep 120`];
  const asUser = mode === 'user' && IS_ROOT;
  const proc = execa(asUser ? 'setpriv' : full[0]!, asUser ? [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...full] : full.slice(1), {
    reject: false, stdin: 'ignore', cwd, env: { TARGET_ONLY: `${maker}-${mode}` },
  });
  const pid = await childOf(proc.pid!);
  targets.push({ pid, proc });
  return pid;
}

const TOOLS = requireCommands('unshare', 'lsns');

beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'tsns-enter-'));
  chmodSync(cwd, 0o755);
});

afterAll(async () => {
  // The namespaced command holds the output pipes: it goes first, then whatever started it.
  for (const t of targets) {
    try {
      process.kill(t.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    t.proc.kill('SIGKILL');
  }
  await Promise.all(targets.map((t) => t.proc));
  rmSync(cwd, { recursive: true, force: true });
});

const enter = (mode: Mode, args: readonly string[]) => tsns(mode, ['enter', ...args]);

describe.each(MODES)('as %s', (mode: Mode) => {
  describe.each(['tsns', 'unshare'] as const)('into a target made by %s', (maker) => {
    let target = 0;
    beforeAll(async () => {
      if (!TOOLS) return;
      target = await start(maker, mode);
    });

    it('with no namespace named, joins every one that differs: the kernel agrees', async () => {
      const r = await enter(mode, [String(target), 'sh', '-c', `hostname; ${NS_SCRIPT}`]);
      expect(r.stderr).toBe('');
      const [name, ...rest] = r.stdout.split('\n');
      expect(name).toBe(`box-${maker}`);
      const inside = parseNamespaces(rest.join('\n'));
      for (const n of NS_FILES) expect(inside[n], n).toBe(readlinkSync(`/proc/${target}/ns/${n}`));
    });

    it('joins only the named namespaces', async () => {
      const r = await enter(mode, ['-t', String(target), ...(mode === 'user' ? ['-U'] : []), '--uts', '--', 'sh', '-c', NS_SCRIPT]);
      const inside = parseNamespaces(r.stdout);
      expect(inside.uts).toBe(readlinkSync(`/proc/${target}/ns/uts`));
      expect(inside.net).toBe(readlinkSync('/proc/self/ns/net'));
      expect(inside.mnt).toBe(readlinkSync('/proc/self/ns/mnt'));
    });

    it('a pid namespace gets one more fork: the command is inside it', async () => {
      // ps alone, sorted here: the processes of a pipeline may not have exec'd yet when ps looks.
      const r = await enter(mode, [String(target), 'sh', '-c', 'echo $$; ps -e -o comm=']);
      const [pid, ...procs] = r.stdout.split('\n');
      expect(Number(pid)).toBeGreaterThan(1);
      // The target's sleep and the command (sh, unless it exec'd ps); tsns's supervisor stays outside.
      expect([...new Set(procs.map((p) => p.trim()))].filter((p) => p !== 'sh').sort()).toEqual(['ps', 'sleep']);
    });

    it('a namespace file: /proc/PID/ns/X', async () => {
      const r = await enter(mode, [...(mode === 'user' ? [`--user=/proc/${target}/ns/user`] : []), `--net=/proc/${target}/ns/net`, 'ip', '-o', 'link']);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^1: lo: /);
      expect(r.stdout.split('\n')).toHaveLength(1);
    });

    it('enters the target\'s working directory, or -w/--wd=DIR', async () => {
      const here = await enter(mode, [String(target), 'pwd']);
      expect(here.stdout).toBe(cwd);
      const there = await enter(mode, ['--wd=/usr', String(target), 'pwd']);
      expect(there.stdout).toBe('/usr');
    });

    it('becomes root in the user namespace it joins, as nsenter does', async () => {
      const r = await enter(mode, [String(target), 'id', '-u']);
      expect(r.stdout).toBe('0');
    });

    it('-e gives the command the target\'s environment', async () => {
      const r = await enter(mode, ['-e', String(target), 'sh', '-c', 'echo "$TARGET_ONLY"']);
      expect(r.stdout).toBe(`${maker}-${mode}`);
    });

    it('--dry-run prints the joins the kernel would make, and joins nothing', async () => {
      const r = await enter(mode, ['--dry-run', String(target), 'hostname']);
      expect(r.exitCode).toBe(0);
      const joined = r.stdout.split('\n').filter((l) => l.startsWith('join:')).map((l) => l.split(/\s+/)[1]);
      // Each namespace the target does not share with tsns, user first and mount last: exactly what a real enter joins.
      const differs = (['user', 'cgroup', 'ipc', 'uts', 'net', 'pid', 'time', 'mount'] as const)
        .filter((n) => readlinkSync(`/proc/${target}/ns/${n === 'mount' ? 'mnt' : n}`) !== readlinkSync(`/proc/self/ns/${n === 'mount' ? 'mnt' : n}`));
      expect(joined).toEqual(differs);
      expect(r.stdout).toMatch(/^command: {4}hostname$/m);
      const json = JSON.parse((await enter(mode, ['--dry-run', '--json', String(target), 'hostname'])).stdout);
      expect(json).toMatchObject({ target, file: 'hostname', argv: ['hostname'] });
      expect(json.joins.map((j: { namespace: string }) => j.namespace)).toEqual(differs);
    });

    it('exits with the command\'s status, and dies of its signal', async () => {
      expect((await enter(mode, [String(target), 'sh', '-c', 'exit 4'])).exitCode).toBe(4);
      expect((await enter(mode, [String(target), 'sh', '-c', 'kill -TERM $$'])).signal).toBe('SIGTERM');
      const missing = await tsns(mode, ['enter', String(target), 'no-such-command-tsns'], { env: { PATH: '/usr/bin:/bin' } });
      expect(missing.exitCode).toBe(127);
    });
  });
});

describe('enter errors: one line, exit 125', () => {
  it('no such process', async () => {
    const r = await enter(MODES[0]!, ['999999', 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toBe('tsns: cannot enter pid 999999: No such process (ESRCH)\nhint: it is not running (any more)\n'.trimEnd());
  });

  it('a file that is not a namespace, or of another type', async () => {
    const r = await enter(MODES[0]!, ['--net=/etc/passwd', 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr.split('\n')[0]).toBe('tsns: /etc/passwd is not a namespace file');
    const wrong = await enter(MODES[0]!, ['--net=/proc/self/ns/uts', 'true']);
    expect(wrong.stderr.split('\n')[0]).toBe('tsns: /proc/self/ns/uts is a uts namespace, not net');
  });

  it('no target at all', async () => {
    const r = await enter(MODES[0]!, []);
    expect(r.exitCode).toBe(125);
    expect(r.stderr.split('\n')[0]).toMatch(/^tsns: no target/);
  });

  it.runIf(IS_ROOT && MODES.includes('user'))('unprivileged into root\'s namespaces: permission denied, saying which', async () => {
    const target = await start('tsns', 'root');
    const r = await enter('user', [String(target), 'true']);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/^tsns: cannot (enter pid \d+|open the \w+ namespace .*): Permission denied \(EACCES\)\nhint: you may enter only processes you could trace/);
  });

  it.runIf(IS_ROOT)('a namespace kept by a file outlives its processes and can be entered', async () => {
    const file = join(cwd, 'net');
    expect((await tsns('root', ['run', `--net=${file}`, 'true'])).exitCode).toBe(0);
    const r = await enter('root', [`--net=${file}`, 'ip', '-o', 'link']);
    expect(r.stdout).toMatch(/^1: lo: /);
    await execa('umount', [file]);
    rmSync(file);
  });
});

describe.runIf(IS_ROOT)('enter() API', () => {
  it('resolves like run() does', async () => {
    const lib = createRequire(import.meta.url)(join(ROOT, 'dist', 'index.cjs')) as typeof import('../../src/index');
    const target = await start('tsns', 'root');
    const r = await lib.enter(target, ['sh', '-c', 'test "$(hostname)" = box-tsns'], { uts: true });
    expect(r).toMatchObject({ exitCode: 0, signal: null });
    await expect(lib.enter(999999, ['true'])).rejects.toMatchObject({ name: 'TsnsError', stage: 'target', errno: 'ESRCH' });
  });
});
