/**
 * `tsns ls` against the real kernel and against lsns(8) on the same machine:
 * real targets in new namespaces, then the same questions to both tools.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listNamespaces } from '../../src/inspect';
import { TsnsError } from '../../src/errors';
import { IS_ROOT, MODES, requireCommands, ROOT, tsns, USER } from './helpers';

interface Row {
  ns: number;
  type: string;
  nprocs?: number;
  pid?: number | null;
  user?: string | null;
  command?: string | null;
  nsfs?: string | null;
  children?: Row[];
  [key: string]: unknown;
}

/** lsns -J nests rows under their parent process's row; flatten both tools' output alike. */
function rows(json: string): Row[] {
  const out: Row[] = [];
  const walk = (r: Row): void => {
    const { children, ...rest } = r;
    out.push(rest as Row);
    children?.forEach(walk);
  };
  (JSON.parse(json) as { namespaces: Row[] }).namespaces.forEach(walk);
  return out;
}

const ls = (args: readonly string[]) => tsns('root', ['ls', ...args]);
const lsns = async (args: readonly string[], user = false) => {
  const r = user
    ? await execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', 'lsns', ...args], { reject: false })
    : await execa('lsns', args, { reject: false });
  return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode };
};

function nsOf(pid: number, type: string): number {
  return Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/${type}`))![1]);
}

function ppidOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

const HOST_UTS = nsOf(process.pid, 'uts');

/** Wait until pid runs `sleep` in a uts namespace of its own (unshare has exec'd it). */
async function settled(pid: () => number | undefined): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = pid();
    if (p !== undefined && comm(p) === 'sleep') {
      try {
        if (nsOf(p, 'uts') !== HOST_UTS) return p;
      } catch {
        // not yet
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the target did not start');
}

function childOf(parent: number): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (/^\d+$/.test(name) && ppidOf(Number(name)) === parent) return Number(name);
  }
  return undefined;
}

interface Target {
  proc: ResultPromise;
  /** the sleep in the new namespaces */
  pid: number;
  uts: number;
  ipc: number;
}

let dir = '';
let persisted = '';
let persistedIno = 0;
let mounted = false;
const started: ResultPromise[] = [];
const sleepers: number[] = [];
let viaUnshare: Target;
// Started by `tsns run`; if that fails, only the checks that need it fail.
let viaTsns: Target;
let viaTsnsError: unknown;

function needTsnsTarget(): void {
  if (viaTsnsError) throw new Error(`tsns run could not start the target: ${String(viaTsnsError)}`);
}

async function target(proc: ResultPromise, pid: () => number | undefined): Promise<Target> {
  started.push(proc);
  const p = await settled(pid);
  sleepers.push(p);
  return { proc, pid: p, uts: nsOf(p, 'uts'), ipc: nsOf(p, 'ipc') };
}

beforeAll(async () => {
  requireCommands('lsns', 'unshare', 'setpriv', 'umount');
  if (!IS_ROOT) throw new Error('test/e2e/ls.test.ts creates namespaces as root; run it as root');
  dir = mkdtempSync(join(tmpdir(), 'tsns-ls-'));
  const u = execa('unshare', ['--uts', '--ipc', 'sleep', '30'], { reject: false, stdin: 'ignore' });
  viaUnshare = await target(u, () => u.pid);
  const t = execa(process.execPath, [join(ROOT, 'bin', 'tsns.js'), 'run', '--uts', '--ipc', 'sleep', '30'], { reject: false, stdin: 'ignore' });
  try {
    viaTsns = await target(t, () => childOf(t.pid!));
  } catch (e) {
    viaTsnsError = e;
  }
  // A namespace no process is in, kept alive by a bind mount of its nsfs file.
  persisted = join(dir, 'uts');
  writeFileSync(persisted, '');
  const p = await execa('unshare', [`--uts=${persisted}`, 'true'], { reject: false });
  expect(p.exitCode, p.stderr).toBe(0);
  mounted = true;
  persistedIno = statSync(persisted).ino;
});

afterAll(async () => {
  for (const pid of sleepers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // tsns run dies of its command's SIGKILL; everything started here is waited for.
  for (const proc of started) {
    if (proc.pid !== undefined && !sleepers.includes(proc.pid)) {
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await proc;
      clearTimeout(t);
    } else {
      await proc;
    }
  }
  if (mounted) await execa('umount', [persisted], { reject: false });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('tsns ls as root, against lsns', () => {
  it('--json lists the targets\' namespaces as lsns -J does: same inode, type, nprocs, pid', async () => {
    needTsnsTarget();
    const [mine, theirs] = await Promise.all([ls(['--json']), lsns(['-J'])]);
    expect(mine.stderr).toBe('');
    expect(mine.exitCode).toBe(0);
    const a = rows(mine.stdout);
    const b = rows(theirs.stdout);
    for (const t of [viaUnshare, viaTsns]) {
      for (const ns of [t.uts, t.ipc]) {
        const pick = (r: Row[]) => r.filter((x) => x.ns === ns).map(({ ns, type, nprocs, pid }) => ({ ns, type, nprocs, pid }));
        expect(pick(a)).toEqual(pick(b));
        expect(pick(a)).toEqual([{ ns, type: ns === t.uts ? 'uts' : 'ipc', nprocs: 1, pid: t.pid }]);
      }
    }
    // One row per namespace, sorted by inode (within each level of lsns's process tree).
    expect(new Set(a.map((r) => `${r.type}:${r.ns}`)).size).toBe(a.length);
    const top = (JSON.parse(mine.stdout) as { namespaces: Row[] }).namespaces.map((r) => r.ns);
    expect(top).toEqual([...top].sort((x, y) => x - y));
    expect(Object.keys(a[0]!)).toEqual(['ns', 'type', 'nprocs', 'pid', 'user', 'command']);
  });

  it('prints byte for byte what lsns prints, as a table, raw, JSON, list and without headings', async () => {
    needTsnsTarget();
    const columns = ['-o', 'NS,TYPE,PATH,PID,PPID,UID,USER,COMMAND'];
    for (const extra of [[], ['-r'], ['-J'], ['-l'], ['-n'], ['-n', '-r'], ['-u', '-W']]) {
      for (const t of [viaUnshare, viaTsns]) {
        const args = ['-p', String(t.pid), ...columns, ...extra];
        const [mine, theirs] = await Promise.all([ls(args), lsns(args)]);
        expect(mine.stdout, args.join(' ')).toBe(theirs.stdout);
        expect(mine.exitCode).toBe(0);
      }
    }
  });

  it('-p lists exactly the namespaces of that process', async () => {
    const r = await ls(['-p', String(viaUnshare.pid), '-J', '-o', 'NS,TYPE']);
    const got = rows(r.stdout).map((x) => `${x.type}:${x.ns}`).sort();
    const want = readdirSync(`/proc/${viaUnshare.pid}/ns`)
      .filter((n) => !n.endsWith('_for_children'))
      .map((n) => `${n}:${nsOf(viaUnshare.pid, n)}`)
      .sort();
    expect(got).toEqual(want);
    expect((await ls(['--pid', String(viaUnshare.pid), '-J', '-o', 'NS,TYPE'])).stdout).toBe(r.stdout);
  });

  it('--type keeps only that type; it repeats', async () => {
    needTsnsTarget();
    const uts = rows((await ls(['--type', 'uts', '-J'])).stdout);
    expect(new Set(uts.map((r) => r.type))).toEqual(new Set(['uts']));
    expect(uts.map((r) => r.ns)).toEqual(expect.arrayContaining([viaUnshare.uts, viaTsns.uts, HOST_UTS]));
    const both = rows((await ls(['-t', 'uts', '-t', 'ipc', '-J'])).stdout);
    expect(new Set(both.map((r) => r.type))).toEqual(new Set(['uts', 'ipc']));
    expect(both.map((r) => r.ns)).toEqual(expect.arrayContaining([viaUnshare.ipc, viaTsns.ipc, viaUnshare.uts]));
  });

  it('-n drops the header line', async () => {
    const withHeader = await ls(['-l', '-t', 'uts', '-o', 'NS,TYPE']);
    const without = await ls(['-l', '-t', 'uts', '-o', 'NS,TYPE', '-n']);
    expect(withHeader.stdout.split('\n')[0]).toBe('        NS TYPE');
    expect(without.stdout.split('\n')[0]).toMatch(/^\d+ uts$/);
    expect(without.stdout.split('\n')).toHaveLength(withHeader.stdout.split('\n').length - 1);
    expect((await ls(['-l', '-t', 'uts', '-o', 'NS,TYPE', '--no-headings'])).stdout).toBe(without.stdout);
  });

  it('-o picks columns; -o +COL adds to the defaults', async () => {
    needTsnsTarget();
    const all = rows((await ls(['-J', '-o', 'NS,TYPE,PATH,NPROCS,PID,PPID,COMMAND,UID,USER,NSFS', String(viaUnshare.uts)])).stdout);
    // With a namespace operand each row is a process of that namespace.
    expect(all).toEqual([{
      ns: viaUnshare.uts, type: 'uts', path: `/proc/${viaUnshare.pid}/ns/uts`, nprocs: 1, pid: viaUnshare.pid,
      ppid: process.pid, command: 'sleep 30', uid: 0, user: 'root', nsfs: null,
    }]);
    const plus = rows((await ls(['-J', '-p', String(viaTsns.pid), '-o', '+PATH,PPID'])).stdout);
    const row = plus.find((r) => r.ns === viaTsns.uts)!;
    expect(Object.keys(row)).toEqual(['ns', 'type', 'nprocs', 'pid', 'user', 'command', 'path', 'ppid']);
    expect(row).toMatchObject({ path: `/proc/${viaTsns.pid}/ns/uts`, ppid: viaTsns.proc.pid, command: 'sleep 30' });
    const table = await ls(['-p', String(viaTsns.pid), '-t', 'uts', '-o', 'NS,PID,COMMAND']);
    expect(table.stdout).toBe(`        NS   PID COMMAND\n${viaTsns.uts} ${String(viaTsns.pid).padStart(5)} sleep 30`); // execa strips the final newline
  });

  it('a namespace kept alive only by a bind mount is listed with NPROCS 0 and its NSFS path', async () => {
    const r = await ls(['-J', '-t', 'uts', '-o', 'NS,TYPE,NPROCS,PID,USER,NSFS']);
    expect(rows(r.stdout).find((x) => x.ns === persistedIno)).toEqual({
      ns: persistedIno, type: 'uts', nprocs: 0, pid: null, user: null, nsfs: persisted,
    });
    const table = await ls(['-l', '-t', 'uts', '-o', 'NS,NPROCS,NSFS']);
    expect(table.stdout.split('\n')).toContainEqual(expect.stringMatching(new RegExp(`^${persistedIno} +0 ${persisted}$`)));
    // It is not in the process list of any other -p.
    expect(rows((await ls(['-J', '-p', String(viaUnshare.pid)])).stdout).map((x) => x.ns)).not.toContain(persistedIno);
  });

  it('usage errors: one tsns: line and a hint, exit 125, nothing on stdout', async () => {
    const cases: [string[], RegExp][] = [
      [['--bogus'], /^tsns: unrecognized option '--bogus'\nhint: see 'tsns ls --help'$/],
      [['--type', 'bogus'], /^tsns: unknown namespace type: bogus\nhint: use one of: mnt, uts, ipc, net, pid, user, cgroup, time$/],
      [['-o', 'NS,BOGUS'], /^tsns: unknown column: 'BOGUS'\nhint: available columns: NS, TYPE, PATH, /],
      [['-o'], /^tsns: option requires an argument -- 'o'\nhint: /],
      [['--task'], /^tsns: option '--task' requires an argument\nhint: /],
      [['-J', '-r'], /^tsns: mutually exclusive arguments: --json --raw\n/],
      [['--tree=owner'], /^tsns: --tree=owner is not supported: it needs the NS_GET_USERNS ioctl, which tsns does not use\nhint: /],
      [['1'], /^tsns: not found namespace: 1\nhint: /],
    ];
    for (const [args, stderr] of cases) {
      const r = await ls(args);
      expect(r.exitCode, args.join(' ')).toBe(125);
      expect(r.stderr, args.join(' ')).toMatch(stderr);
      expect(r.stdout).toBe('');
    }
  });

  it('--help', async () => {
    const r = await ls(['--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^Usage:\n tsns ls \[options\] \[<namespace>\]/);
  });
});

describe('listNamespaces()', () => {
  it('the same records the CLI prints', async () => {
    const all = await listNamespaces();
    const uts = all.find((r) => r.ns === viaUnshare.uts);
    expect(uts).toEqual({
      ns: viaUnshare.uts, type: 'uts', path: `/proc/${viaUnshare.pid}/ns/uts`, nprocs: 1, pid: viaUnshare.pid,
      ppid: process.pid, command: 'sleep 30', uid: 0, user: 'root', nsfs: [],
    });
    expect(all.find((r) => r.ns === persistedIno)).toMatchObject({ type: 'uts', nprocs: 0, pid: null, nsfs: [persisted] });
    expect(all.map((r) => r.ns)).toEqual([...all.map((r) => r.ns)].sort((a, b) => a - b));
  });

  it('filters by type and pid', async () => {
    needTsnsTarget();
    const ipc = await listNamespaces({ type: ['ipc'] });
    expect(new Set(ipc.map((r) => r.type))).toEqual(new Set(['ipc']));
    const mine = await listNamespaces({ pid: viaTsns.pid });
    expect(mine.map((r) => r.ns)).toEqual(expect.arrayContaining([viaTsns.uts, viaTsns.ipc]));
    expect(mine.every((r) => r.nprocs > 0)).toBe(true);
    await expect(listNamespaces({ type: ['bogus'] })).rejects.toBeInstanceOf(TsnsError);
  });

  it('is exported by the built package, ESM and CommonJS', async () => {
    const esm = (await import(join(ROOT, 'dist', 'index.mjs'))) as typeof import('../../src/index');
    const records = await esm.listNamespaces({ pid: viaUnshare.pid, type: ['uts'] });
    expect(records.map((r) => r.ns)).toEqual([viaUnshare.uts]);
    const cjs = createRequire(__filename)(join(ROOT, 'dist', 'index.cjs')) as typeof import('../../src/index');
    expect(typeof cjs.listNamespaces).toBe('function');
  });
});

describe.runIf(MODES.includes('user'))('tsns ls as an unprivileged user', () => {
  let mine: Target;

  beforeAll(async () => {
    const u = execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', 'unshare', '--user', '--uts', 'sleep', '30'], {
      reject: false, stdin: 'ignore',
    });
    mine = await target(u, () => u.pid);
  });

  it('sees its own namespaces, as lsns does for that user, and nobody else\'s processes', async () => {
    const [r, theirs] = await Promise.all([tsns('user', ['ls', '-J']), lsns(['-J'], true)]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const a = rows(r.stdout);
    const b = rows(theirs.stdout);
    const userns = nsOf(mine.pid, 'user');
    for (const ns of [mine.uts, userns]) {
      const pick = (x: Row[]) => x.filter((y) => y.ns === ns).map(({ ns, type, nprocs, pid, user }) => ({ ns, type, nprocs, pid, user }));
      expect(pick(a)).toEqual(pick(b));
      expect(pick(a)).toEqual([{ ns, type: ns === userns ? 'user' : 'uts', nprocs: 1, pid: mine.pid, user: 'nobody' }]);
    }
    // Root's targets are out of sight, and every process counted is the user's own.
    const seen = a.map((x) => x.ns);
    for (const ns of [viaUnshare.uts, viaUnshare.ipc]) expect(seen).not.toContain(ns);
    for (const x of a.filter((y) => (y.nprocs ?? 0) > 0)) expect(x.user, JSON.stringify(x)).toBe('nobody');
  });

  it('-p of a root process it cannot inspect lists nothing', async () => {
    const r = await tsns('user', ['ls', '-p', String(viaUnshare.pid)]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('');
  });
});
