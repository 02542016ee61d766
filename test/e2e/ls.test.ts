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
import { listNamespaces } from '../../src/ls';
import { TsnsError } from '../../src/errors';
import { IS_ROOT, MODES, requireCommands, ROOT, skipWithout, tsns, USER } from './helpers';

interface Row {
  ns: number;
  type: string;
  nprocs?: number;
  pid?: number | null;
  user?: string | null;
  command?: string | null;
  nsfs?: string | null;
  pns?: number | null;
  ons?: number | null;
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
  const once = () => user
    ? execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', 'lsns', ...args], { reject: false })
    : execa('lsns', args, { reject: false });
  let r = await once();
  // lsns 2.38 exits 1 and prints nothing when a process vanishes while it
  // scans /proc, which the other tests running alongside make likely.
  for (let i = 0; i < 5 && r.exitCode === 1 && r.stdout === '' && r.stderr === ''; i++) r = await once();
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

/** How long the targets sleep: longer than this file can take on a loaded machine; afterAll kills them. */
const SLEEP = '600';

const HOST_UTS = nsOf(process.pid, 'uts');
const HOST_USER = nsOf(process.pid, 'user');
const HOST_PID = nsOf(process.pid, 'pid');

/** Wait until pid runs `sleep` in a `type` namespace of its own (unshare has exec'd it). */
async function settled(pid: () => number | undefined, type = 'uts'): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = pid();
    if (p !== undefined && comm(p) === 'sleep') {
      try {
        if (nsOf(p, type) !== nsOf(process.pid, type)) return p;
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

async function target(proc: ResultPromise, pid: () => number | undefined, type = 'uts'): Promise<Target> {
  started.push(proc);
  const p = await settled(pid, type);
  sleepers.push(p);
  return { proc, pid: p, uts: nsOf(p, 'uts'), ipc: nsOf(p, 'ipc') };
}

const TOOLS = requireCommands('lsns', 'unshare', 'setpriv', 'umount');

beforeAll(async () => {
  if (!TOOLS) return;
  // The comparisons need targets of root's and of user 65534's (made through setpriv).
  if (!IS_ROOT) return console.warn('skipping test/e2e/ls.test.ts: it compares with lsns on targets it makes as root and as user 65534');
  dir = mkdtempSync(join(tmpdir(), 'tsns-ls-'));
  const u = execa('unshare', ['--uts', '--ipc', 'sleep', SLEEP], { reject: false, stdin: 'ignore' });
  viaUnshare = await target(u, () => u.pid);
  const t = execa(process.execPath, [join(ROOT, 'bin', 'tsns.js'), 'run', '--uts', '--ipc', 'sleep', SLEEP], { reject: false, stdin: 'ignore' });
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

describe.runIf(TOOLS && IS_ROOT)('tsns ls as root, against lsns', () => {
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
    // One process's namespaces: other tests make and drop uts namespaces between two runs.
    const args = ['-l', '-p', String(viaUnshare.pid), '-t', 'uts', '-o', 'NS,TYPE'];
    const withHeader = await ls(args);
    const without = await ls([...args, '-n']);
    expect(withHeader.stdout).toBe(`        NS TYPE\n${viaUnshare.uts} uts`); // execa strips the final newline
    expect(without.stdout).toBe(`${viaUnshare.uts} uts`);
    expect((await ls([...args, '--no-headings'])).stdout).toBe(without.stdout);
  });

  it('-o picks columns; -o +COL adds to the defaults', async () => {
    needTsnsTarget();
    const all = rows((await ls(['-J', '-o', 'NS,TYPE,PATH,NPROCS,PID,PPID,COMMAND,UID,USER,NSFS', String(viaUnshare.uts)])).stdout);
    // With a namespace operand each row is a process of that namespace.
    expect(all).toEqual([{
      ns: viaUnshare.uts, type: 'uts', path: `/proc/${viaUnshare.pid}/ns/uts`, nprocs: 1, pid: viaUnshare.pid,
      ppid: process.pid, command: `sleep ${SLEEP}`, uid: 0, user: 'root', nsfs: null,
    }]);
    const plus = rows((await ls(['-J', '-p', String(viaTsns.pid), '-o', '+PATH,PPID'])).stdout);
    const row = plus.find((r) => r.ns === viaTsns.uts)!;
    expect(Object.keys(row)).toEqual(['ns', 'type', 'nprocs', 'pid', 'user', 'command', 'path', 'ppid']);
    expect(row).toMatchObject({ path: `/proc/${viaTsns.pid}/ns/uts`, ppid: viaTsns.proc.pid, command: `sleep ${SLEEP}` });
    const table = await ls(['-p', String(viaTsns.pid), '-t', 'uts', '-o', 'NS,PID,COMMAND']);
    expect(table.stdout).toBe(`        NS   PID COMMAND\n${viaTsns.uts} ${String(viaTsns.pid).padStart(5)} sleep ${SLEEP}`); // execa strips the final newline
  });

  it('NETNSID: the id rtnetlink gives, or unassigned, as lsns prints it (the default columns of -t net)', async (ctx) => {
    skipWithout(ctx, 'ip');
    const name = `tsns-ls-${process.pid}`;
    const add = await execa('ip', ['netns', 'add', name], { reject: false });
    expect(add.exitCode, add.stderr).toBe(0);
    try {
      // An id no other namespace has: `ip netns set` refuses one in use.
      let id = 1000 + (process.pid % 50000);
      while ((await execa('ip', ['netns', 'set', name, String(id)], { reject: false })).exitCode !== 0 && id < 1100000) id += 50000;
      const proc = execa('ip', ['netns', 'exec', name, 'sleep', SLEEP], { reject: false, stdin: 'ignore' });
      const t = await target(proc, () => proc.pid, 'net');
      for (const extra of [[], ['-J'], ['-r']]) {
        for (const pid of [t.pid, process.pid]) await sameAsLsns(['-t', 'net', '-p', String(pid), ...extra]);
      }
      const ours = rows((await ls(['-J', '-t', 'net', '-p', String(t.pid), '-o', 'NS,NETNSID'])).stdout);
      expect(ours).toEqual([{ ns: nsOf(t.pid, 'net'), netnsid: String(id) }]);
      const host = rows((await ls(['-J', '-t', 'net', '-p', String(process.pid), '-o', 'NETNSID'])).stdout);
      expect(host).toEqual([{ netnsid: 'unassigned' }]);
    } finally {
      await execa('ip', ['netns', 'del', name], { reject: false });
    }
  });

  it('a namespace kept alive only by a bind mount is listed with NPROCS 0 and its NSFS path', async () => {
    const r = await ls(['-J', '-t', 'uts', '-o', 'NS,TYPE,NPROCS,PID,USER,NSFS']);
    // USER: the owner of the user namespace that owns it (root made it, in the host's).
    expect(rows(r.stdout).find((x) => x.ns === persistedIno)).toEqual({
      ns: persistedIno, type: 'uts', nprocs: 0, pid: null, user: 'root', nsfs: persisted,
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
      [['--tree=sideways'], /^tsns: unknown tree type: sideways\nhint: /],
      // As in lsns, the tree's value is glued to it: `-T owner` is -T and a namespace argument.
      [['-T', 'owner'], /^tsns: invalid namespace argument: 'owner'\nhint: /],
      [['-Towner', '-l'], /^tsns: mutually exclusive arguments: --list --tree\n/],
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

/**
 * tsns and lsns read the system one after the other, and the tests of other files start and end
 * processes meanwhile, so the host namespaces' NPROCS may differ between the two. A comparison that
 * shows NPROCS is retried until both tools saw the same system; the other comparisons are exact.
 */
async function sameAsLsns(args: readonly string[], mode: 'root' | 'user' = 'root', attempts = 4): Promise<void> {
  let mine = { stdout: '', stderr: '', exitCode: undefined as number | undefined };
  let theirs = { stdout: '', stderr: '', exitCode: undefined as number | undefined };
  for (let i = 0; i < attempts; i++) {
    mine = await tsns(mode, ['ls', ...args]);
    theirs = await lsns(args, mode === 'user');
    if (mine.stdout === theirs.stdout) break;
  }
  expect(mine.stderr, args.join(' ')).toBe('');
  expect(mine.exitCode, args.join(' ')).toBe(0);
  // Under a steady load of other tests the counts may never settle: then everything but them must
  // agree, save the padding (a count of 100 where the other saw 99 widens its column).
  const counts = (out: string) =>
    out.replace(/("nprocs":\s*)\d+/g, '$1N').replace(/(\b(?:mnt|net|time|cgroup|ipc|uts|pid|user)\s+)\d+/g, '$1N').replace(/ {2,}/g, ' ');
  expect(counts(mine.stdout), args.join(' ')).toBe(counts(theirs.stdout));
}

describe.runIf(TOOLS && IS_ROOT)('PNS, ONS and the owner and parent trees as root, against lsns', () => {
  // unshare --user --map-root-user --pid --fork: a nested user namespace owning a nested pid namespace.
  let nested: Target & { user: number; pidns: number };
  // tsns run -r --pid --uts: the same made by tsns, plus a uts namespace.
  let viaRun: Target & { user: number; pidns: number };
  // A user namespace no process is in: the outer unshare execs the inner one.
  let orphan: Target & { user: number; outer: number };

  beforeAll(async () => {
    const n = execa('unshare', ['--user', '--map-root-user', '--pid', '--fork', 'sleep', SLEEP], { reject: false, stdin: 'ignore' });
    const nt = await target(n, () => childOf(n.pid!), 'pid');
    nested = { ...nt, user: nsOf(nt.pid, 'user'), pidns: nsOf(nt.pid, 'pid') };
    const r = execa(process.execPath, [join(ROOT, 'bin', 'tsns.js'), 'run', '-r', '--pid', '--uts', 'sleep', SLEEP], { reject: false, stdin: 'ignore' });
    const rt = await target(r, () => childOf(r.pid!));
    viaRun = { ...rt, user: nsOf(rt.pid, 'user'), pidns: nsOf(rt.pid, 'pid') };
    const o = execa('unshare', ['--user', '--map-root-user', 'unshare', '--user', '--map-root-user', '--uts', 'sleep', SLEEP], { reject: false, stdin: 'ignore' });
    const ot = await target(o, () => o.pid);
    const user = nsOf(ot.pid, 'user');
    const outer = rows((await ls(['-J', '-p', String(ot.pid), '-t', 'user', '-o', 'NS,PNS'])).stdout).find((x) => x.ns === user)!.pns!;
    orphan = { ...ot, user, outer };
  });

  it('PNS and ONS: the parent (pid and user namespaces, else 0) and the owning user namespace', async () => {
    const r = rows((await ls(['-J', '-p', String(nested.pid), '-o', 'NS,TYPE,PNS,ONS'])).stdout);
    const by = (ns: number) => r.find((x) => x.ns === ns);
    expect(by(nested.user)).toEqual({ ns: nested.user, type: 'user', pns: HOST_USER, ons: HOST_USER });
    expect(by(nested.pidns)).toEqual({ ns: nested.pidns, type: 'pid', pns: HOST_PID, ons: nested.user });
    // The host's own: no parent (the kernel says EPERM), owned by the host user namespace, which has no owner.
    expect(by(HOST_UTS)).toEqual({ ns: HOST_UTS, type: 'uts', pns: 0, ons: HOST_USER });
    const host = rows((await ls(['-J', '-p', String(process.pid), '-t', 'user', '-t', 'pid', '-o', 'NS,TYPE,PNS,ONS'])).stdout);
    expect(host).toEqual([
      { ns: HOST_PID, type: 'pid', pns: 0, ons: HOST_USER },
      { ns: HOST_USER, type: 'user', pns: 0, ons: 0 },
    ].sort((a, b) => a.ns - b.ns));
    const t = rows((await ls(['-J', '-p', String(viaRun.pid), '-o', 'NS,TYPE,PNS,ONS'])).stdout);
    expect(t.find((x) => x.ns === viaRun.uts)).toEqual({ ns: viaRun.uts, type: 'uts', pns: 0, ons: viaRun.user });
    expect(t.find((x) => x.ns === viaRun.pidns)).toEqual({ ns: viaRun.pidns, type: 'pid', pns: HOST_PID, ons: viaRun.user });
  });

  it('prints PNS and ONS byte for byte as lsns does, in every format', async () => {
    for (const t of [nested, viaRun]) {
      for (const extra of [[], ['-r'], ['-J'], ['-l'], ['-n']]) {
        const args = ['-p', String(t.pid), '-o', 'NS,TYPE,PID,PPID,UID,USER,PNS,ONS,COMMAND', ...extra];
        const [mine, theirs] = await Promise.all([ls(args), lsns(args)]);
        expect(mine.stdout, args.join(' ')).toBe(theirs.stdout);
      }
      await sameAsLsns(['-p', String(t.pid), '-o', '+PNS,ONS']);
    }
  });

  it('-T owner, -T parent and a bare -T print what lsns prints', async () => {
    for (const t of [nested, viaRun]) {
      const p = String(t.pid);
      // Without NPROCS, both tools see the same at any moment.
      for (const args of [
        ['-Towner'], ['-Tparent'], ['-T'], ['--tree'], ['--tree=parent', '-r'], ['-Towner', '-J'], ['-Tparent', '-J'],
        ['-Towner', '-t', 'uts'], ['-Tparent', '-t', 'pid'], ['-Towner', '-t', 'pid', '-t', 'uts'], ['-Towner', '-n', '-W'],
      ]) {
        const all = ['-p', p, '-o', 'NS,TYPE,PID,USER,UID,PNS,ONS,COMMAND', ...args];
        const [mine, theirs] = await Promise.all([ls(all), lsns(all)]);
        expect(mine.stdout, all.join(' ')).toBe(theirs.stdout);
      }
      // The default columns, as the man page shows them.
      for (const args of [['-Towner'], ['-Tparent'], ['-Tparent', '-o', '+PNS'], ['-J', '-Towner'], ['-J', '-Tparent', '-o', '+PNS,ONS']]) {
        await sameAsLsns(['-p', p, ...args]);
      }
    }
  });

  it('the owner tree hangs the nested namespaces under their user namespace', async () => {
    const json = JSON.parse((await ls(['-J', '-Towner', '-p', String(nested.pid), '-o', 'NS,TYPE'])).stdout) as { namespaces: Row[] };
    expect(json.namespaces.map((r) => r.ns)).toEqual([HOST_USER]);
    const user = json.namespaces[0]!.children!.find((r) => r.ns === nested.user)!;
    expect(user.children).toEqual([{ ns: nested.pidns, type: 'pid' }]);
    const parent = JSON.parse((await ls(['-J', '-Tparent', '-p', String(nested.pid), '-o', 'NS,TYPE'])).stdout) as { namespaces: Row[] };
    expect(parent.namespaces.find((r) => r.ns === HOST_PID)!.children).toEqual([{ ns: nested.pidns, type: 'pid' }]);
    expect(parent.namespaces.find((r) => r.ns === HOST_USER)!.children).toEqual([{ ns: nested.user, type: 'user' }]);
  });

  it('with -t, the user namespaces above are added without processes, as lsns adds them', async () => {
    const args = ['-p', String(viaRun.pid), '-t', 'uts', '-Towner'];
    // Every NPROCS here is stable: the added namespaces show 0, the target's uts 1.
    const [mine, theirs] = await Promise.all([ls(args), lsns(args)]);
    expect(mine.stdout).toBe(theirs.stdout);
    expect(rows((await ls([...args, '-J'])).stdout).map(({ ns, nprocs }) => ({ ns, nprocs }))).toEqual([
      { ns: HOST_USER, nprocs: 0 }, { ns: viaRun.user, nprocs: 0 }, { ns: viaRun.uts, nprocs: 1 },
    ]);
  });

  it('a user namespace no process is in: asked about through the one below it, as lsns asks', async () => {
    const args = ['-Towner', '-p', String(orphan.pid), '-o', 'NS,TYPE,NPROCS,PID,USER,PNS,ONS'];
    for (const extra of [['-J'], [], ['-r']]) await sameAsLsns([...args, ...extra]);
    // Under the host's user namespace, with its owner's uid, its parent and owner.
    const top = (JSON.parse((await ls(['-J', ...args])).stdout) as { namespaces: Row[] }).namespaces;
    const host = top.find((x) => x.ns === HOST_USER)!;
    const outer = host.children!.find((x) => x.ns === orphan.outer)!;
    expect({ ...outer, children: undefined }).toEqual({
      ns: orphan.outer, type: 'user', nprocs: 0, pid: null, user: 'root', pns: HOST_USER, ons: HOST_USER, children: undefined,
    });
    expect(outer.children!.map((x) => x.ns)).toEqual([orphan.user]);
    expect(outer.children![0]!.children!.map((x) => x.ns)).toEqual([orphan.uts]);
  });
});

describe.runIf(TOOLS && IS_ROOT && MODES.includes('user'))('namespaces kept alive only by bind mounts, made by an unprivileged user', () => {
  let userFile = '';
  let utsFile = '';
  let user = 0;
  let uts = 0;
  const mounts: string[] = [];

  beforeAll(async () => {
    // nobody makes a user and a uts namespace; root bind-mounts both; the process goes.
    const proc = execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', 'unshare', '--user', '--uts', 'sleep', SLEEP], {
      reject: false, stdin: 'ignore',
    });
    started.push(proc);
    const pid = await settled(() => proc.pid);
    userFile = join(dir, 'nobody-user');
    utsFile = join(dir, 'nobody-uts');
    for (const [type, file] of [['user', userFile], ['uts', utsFile]] as const) {
      writeFileSync(file, '');
      const m = await execa('mount', ['--bind', `/proc/${pid}/ns/${type}`, file], { reject: false });
      expect(m.exitCode, m.stderr).toBe(0);
      mounts.push(file);
    }
    user = statSync(userFile).ino;
    uts = statSync(utsFile).ino;
    process.kill(pid, 'SIGKILL');
    await proc;
  });

  afterAll(async () => {
    for (const file of mounts.reverse()) await execa('umount', [file], { reject: false });
  });

  it('UID and USER: the owner of the user namespace that is or owns it', async () => {
    const r = rows((await ls(['-J', '-o', 'NS,TYPE,NPROCS,PID,UID,USER,PNS,ONS,NSFS'])).stdout);
    expect(r.find((x) => x.ns === user)).toEqual({
      ns: user, type: 'user', nprocs: 0, pid: null, uid: USER.uid, user: 'nobody', pns: HOST_USER, ons: HOST_USER, nsfs: userFile,
    });
    expect(r.find((x) => x.ns === uts)).toEqual({
      ns: uts, type: 'uts', nprocs: 0, pid: null, uid: USER.uid, user: 'nobody', pns: 0, ons: user, nsfs: utsFile,
    });
    // With only uts listed, the owner is still found (the user namespaces are read for it).
    const only = rows((await ls(['-J', '-t', 'uts', '-o', 'NS,USER'])).stdout);
    expect(only.find((x) => x.ns === uts)).toEqual({ ns: uts, user: 'nobody' });
    const records = await listNamespaces({ type: ['uts'] });
    expect(records.find((x) => x.ns === uts)).toMatchObject({ nprocs: 0, uid: USER.uid, user: 'nobody', nsfs: [utsFile] });
  });

  it('-T owner hangs them under their owners', async () => {
    const json = JSON.parse((await ls(['-J', '-Towner', '-o', 'NS,TYPE,NPROCS'])).stdout) as { namespaces: Row[] };
    const host = json.namespaces.find((x) => x.ns === HOST_USER)!;
    const mine = host.children!.find((x) => x.ns === user)!;
    expect(mine).toEqual({ ns: user, type: 'user', nprocs: 0, children: [{ ns: uts, type: 'uts', nprocs: 0 }] });
  });
});

describe.runIf(TOOLS && IS_ROOT)('listNamespaces()', () => {
  it('the same records the CLI prints', async () => {
    const all = await listNamespaces();
    const uts = all.find((r) => r.ns === viaUnshare.uts);
    expect(uts).toEqual({
      ns: viaUnshare.uts, type: 'uts', path: `/proc/${viaUnshare.pid}/ns/uts`, nprocs: 1, pid: viaUnshare.pid,
      ppid: process.pid, command: `sleep ${SLEEP}`, uid: 0, user: 'root', nsfs: [],
    });
    expect(all.find((r) => r.ns === persistedIno)).toMatchObject({ type: 'uts', nprocs: 0, pid: null, uid: 0, user: 'root', nsfs: [persisted] });
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

describe.runIf(TOOLS && IS_ROOT && MODES.includes('user'))('tsns ls as an unprivileged user', () => {
  let mine: Target;

  beforeAll(async () => {
    const u = execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', 'unshare', '--user', '--uts', 'sleep', SLEEP], {
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

  it('-T owner and -T parent, PNS and ONS, as lsns prints them for that user', async () => {
    const p = String(mine.pid);
    // Only uts is listed: the user namespaces above it are added without processes, so every value is stable.
    for (const args of [['-t', 'uts', '-Towner'], ['-t', 'uts', '-T', '-J'], ['-t', 'uts', '-Towner', '-o', '+PNS,ONS,UID']]) {
      await sameAsLsns(['-p', p, ...args], 'user', 1);
    }
    await sameAsLsns(['-p', p, '-Tparent', '-o', 'NS,TYPE,USER,PNS,ONS'], 'user', 1);
    // (No PID: as nobody, the lowest pid in the host's namespaces is each tool's own process.)
    await sameAsLsns(['-p', p, '-Towner', '-o', 'NS,TYPE,USER,PNS,ONS', '-J'], 'user', 1);
    const r = rows((await tsns('user', ['ls', '-J', '-p', p, '-o', 'NS,PNS,ONS'])).stdout);
    const userns = nsOf(mine.pid, 'user');
    expect(r.find((x) => x.ns === userns)).toEqual({ ns: userns, pns: HOST_USER, ons: HOST_USER });
    expect(r.find((x) => x.ns === mine.uts)).toEqual({ ns: mine.uts, pns: 0, ons: userns });
  });

  it('-p of a root process it cannot inspect lists nothing', async () => {
    const r = await tsns('user', ['ls', '-p', String(viaUnshare.pid)]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('');
  });
});
