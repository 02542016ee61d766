import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/args';
import { parseColumns, parseLs } from '../../src/cli/ls';
import { TsnsError } from '../../src/errors';
import {
  cgroupCell, namespaceTypes, parseNsfsMounts, parseNsLink, parseStatPpid, type NamespaceEntry, type NamespaceType, type ProcessInfo,
  type Snapshot,
} from '../../src/inspect';
import {
  buildLines, column, COLUMNS, defaultColumns, relateNamespaces, renderLs, scanTypes, toRecord, type ColumnName,
  type LinkSource,
} from '../../src/ls';
import { namespaceOwnerUid } from '../../src/nslinks';
import * as table from '../../src/table';
import { localeIsUtf8, newLine, rawEncode, safeEncode, type Line, type RenderOptions } from '../../src/table';
import { parsePasswd } from '../../src/users';

// lsns's columns by name, for the generic renderers.
const renderTable = (names: readonly ColumnName[], lines: readonly Line[], opts: RenderOptions) => table.renderTable(names.map(column), lines, opts);
const renderRaw = (names: readonly ColumnName[], lines: readonly Line[], opts: RenderOptions) => table.renderRaw(names.map(column), lines, opts);
const renderJson = (names: readonly ColumnName[], lines: readonly Line[], tree: boolean) => table.renderJson(names.map(column), lines, tree);

function usageError(f: () => unknown): UsageError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).exitCode).toBe(125);
    return e as UsageError;
  }
  throw new Error('expected a UsageError');
}

const TABLE: RenderOptions = {
  json: false, raw: false, noHeadings: false, noTruncate: false, noWrap: false, tree: true, treeColumn: 'COMMAND', termWidth: null, utf8: true,
};

const DEFAULT: ColumnName[] = ['NS', 'TYPE', 'NPROCS', 'PID', 'USER', 'COMMAND'];

/** Rows as lsns printed them on the test VM (kdevtmpfs is a child of kthreadd). */
function sample(): Line[] {
  const lines: Line[] = [];
  const add = (cells: string[], parent: Line | null = null) => {
    const l = newLine(cells, parent);
    lines.push(l);
    return l;
  };
  add(['4026531832', 'mnt', '88', '2', 'root', 'kthreadd']);
  const ipc = add(['4026531839', 'ipc', '89', '2', 'root', 'kthreadd']);
  add(['4026531860', 'mnt', '1', '25', 'root', 'kdevtmpfs'], ipc);
  add(['4026532177', 'uts', '1', '2038', 'nobody', 'node s.js']);
  return lines;
}

describe('parseColumns', () => {
  it('replaces the defaults, or adds to them after a +, in any case', () => {
    expect(parseColumns('NS,type', DEFAULT)).toEqual(['NS', 'TYPE']);
    expect(parseColumns('+path,PPID', DEFAULT)).toEqual([...DEFAULT, 'PATH', 'PPID']);
    expect(parseColumns('nsfs')).toEqual(['NSFS']);
  });

  it('rejects unknown and empty names with the list of columns', () => {
    expect(usageError(() => parseColumns('NS,BOGUS')).message).toBe("unknown column: 'BOGUS'");
    expect(usageError(() => parseColumns('NS,BOGUS')).hint).toContain('NPROCS');
    usageError(() => parseColumns('NS,,TYPE'));
    usageError(() => parseColumns(''));
    usageError(() => parseColumns('+'));
  });

  it('has tsns\'s CGROUP column for -o, outside --output-all', () => {
    expect(parseColumns('NS,cgroup')).toEqual(['NS', 'CGROUP']);
    expect(parseLs(['--output-all']).columns).not.toContain('CGROUP');
    expect(cgroupCell('0::/a/b\n')).toBe('/a/b');
    expect(cgroupCell('8:pids:/x\n4:memory:/m/x\n1:cpu:/x\n0::/x\n')).toBe('pids,cpu,0:/x memory:/m/x');
  });

  it('knows every lsns column', () => {
    expect(COLUMNS.map((c) => c.name)).toEqual([
      'NS', 'TYPE', 'PATH', 'NPROCS', 'PID', 'PPID', 'COMMAND', 'UID', 'USER', 'NETNSID', 'NSFS', 'PNS', 'ONS',
    ]);
  });
});

describe('parseLs', () => {
  it('defaults as lsns: six columns, every type, a process tree', () => {
    const cmd = parseLs([]);
    expect(cmd).toMatchObject({ columns: DEFAULT, tree: 'process', task: null, namespace: null, json: false, raw: false });
    expect(cmd.types).toEqual(['mnt', 'uts', 'ipc', 'net', 'pid', 'user', 'cgroup', 'time']);
  });

  it('-l lists without a tree; --output-all too', () => {
    expect(parseLs(['-l']).tree).toBeNull();
    const all = parseLs(['--output-all']);
    expect(all.columns).toEqual(COLUMNS.map((c) => c.name));
    expect(all.tree).toBeNull();
  });

  it('-t net adds NETNSID and NSFS to the defaults; -t repeats', () => {
    expect(parseLs(['-t', 'net']).columns).toEqual(['NS', 'TYPE', 'NPROCS', 'PID', 'USER', 'NETNSID', 'NSFS', 'COMMAND']);
    expect(defaultColumns(['uts'], true)).toEqual(DEFAULT);
    expect(parseLs(['-t', 'uts', '--type=ipc', '-tuts']).types).toEqual(['uts', 'ipc']);
  });

  it('-o replaces, -o + adds, the last -o wins', () => {
    expect(parseLs(['-o', 'NS,PID']).columns).toEqual(['NS', 'PID']);
    expect(parseLs(['-o+PATH']).columns).toEqual([...DEFAULT, 'PATH']);
    expect(parseLs(['--output=NS', '--output', 'TYPE']).columns).toEqual(['TYPE']);
    expect(parseLs(['--output-all', '-o', '+NS']).columns).toHaveLength(COLUMNS.length + 1);
  });

  it('clustered flags, aliases and -r implying no wrap', () => {
    expect(parseLs(['-Jnu'])).toMatchObject({ json: true, noHeadings: true, noTruncate: true });
    expect(parseLs(['--no-headings']).noHeadings).toBe(true);
    expect(parseLs(['-r'])).toMatchObject({ raw: true, noWrap: true });
    expect(parseLs(['-W']).noWrap).toBe(true);
    expect(parseLs(['-p', '42']).task).toBe(42);
    expect(parseLs(['--pid=42']).task).toBe(42);
    expect(parseLs(['--task', '42']).task).toBe(42);
  });

  it('a namespace operand lists its processes, and options may follow it', () => {
    const cmd = parseLs(['4026531836', '-J']);
    expect(cmd).toMatchObject({ namespace: 4026531836, json: true, tree: 'process', columns: ['PID', 'PPID', 'USER', 'COMMAND'] });
    expect(parseLs(['-l', '4026531836']).tree).toBeNull();
    expect(parseLs(['--', '4026531836']).namespace).toBe(4026531836);
  });

  it('--tree=process|owner|parent; a bare -T or --tree is owner, as in lsns', () => {
    expect(parseLs(['-l', '-o', 'NS']).tree).toBeNull();
    expect(parseLs(['--tree=process', '--output-all']).tree).toBe('process');
    expect(parseLs(['-Tprocess']).tree).toBe('process');
    expect(parseLs(['-T=process']).tree).toBe('process');
    expect(parseLs(['-T'])).toMatchObject({ tree: 'owner', columns: DEFAULT });
    expect(parseLs(['--tree']).tree).toBe('owner');
    expect(parseLs(['-Towner']).tree).toBe('owner');
    expect(parseLs(['--tree=parent', '-o', '+PNS'])).toMatchObject({ tree: 'parent', columns: [...DEFAULT, 'PNS'] });
    expect(parseLs(['-Tparent', '4026531836']).tree).toBe('parent');
    expect(usageError(() => parseLs(['--tree=sideways'])).message).toBe('unknown tree type: sideways');
    // getopt's optional argument is glued or nothing: `-T owner` is -T and a namespace, which lsns rejects the same way.
    expect(usageError(() => parseLs(['-T', 'owner'])).message).toBe("invalid namespace argument: 'owner'");
  });

  it('an owner or parent tree also scans user namespaces, to hang the others under', () => {
    expect(scanTypes(parseLs(['-t', 'uts', '-Towner']))).toEqual(['uts', 'user']);
    expect(scanTypes(parseLs(['-t', 'pid', '-Tparent']))).toEqual(['pid', 'user']);
    expect(scanTypes(parseLs(['-t', 'uts']))).toEqual(['uts']);
    expect(scanTypes(parseLs(['-t', 'user', '-T']))).toEqual(['user']);
  });

  it('rejects what lsns rejects, with exit 125 and a hint', () => {
    expect(usageError(() => parseLs(['--bogus']))).toMatchObject({ message: "unrecognized option '--bogus'", hint: "see 'tsns ls --help'" });
    expect(usageError(() => parseLs(['-Z'])).message).toBe("invalid option -- 'Z'");
    expect(usageError(() => parseLs(['-o'])).message).toBe("option requires an argument -- 'o'");
    expect(usageError(() => parseLs(['--type'])).message).toBe("option '--type' requires an argument");
    expect(usageError(() => parseLs(['-t', 'bogus']))).toMatchObject({ message: 'unknown namespace type: bogus' });
    expect(usageError(() => parseLs(['-t', 'bogus'])).hint).toMatch(/mnt, uts, ipc, net, pid, user, cgroup, time/);
    expect(usageError(() => parseLs(['-p', 'x'])).message).toBe("invalid PID argument: 'x'");
    expect(usageError(() => parseLs(['-J', '-r'])).message).toBe('mutually exclusive arguments: --json --raw');
    expect(usageError(() => parseLs(['-l', '-Tprocess'])).message).toBe('mutually exclusive arguments: --list --tree');
    expect(usageError(() => parseLs(['-Towner', '--list'])).message).toBe('mutually exclusive arguments: --list --tree');
    expect(usageError(() => parseLs(['-p', '1', '4026531836'])).message).toBe('--task is mutually exclusive with <namespace>');
    expect(usageError(() => parseLs(['abc'])).message).toBe("invalid namespace argument: 'abc'");
    expect(usageError(() => parseLs(['1', '2'])).message).toMatch(/unexpected argument '2'/);
    expect(usageError(() => parseLs(['--t=x'])).message).toMatch(/ambiguous/);
  });
});

describe('table output (libsmartcols layout)', () => {
  it('sizes columns as lsns does: right-aligned numbers, header minimums, width hints, a tree', () => {
    expect(renderTable(DEFAULT, sample(), TABLE)).toBe(
      [
        '        NS TYPE NPROCS   PID USER   COMMAND',
        '4026531832 mnt      88     2 root   kthreadd',
        '4026531839 ipc      89     2 root   kthreadd',
        '4026531860 mnt       1    25 root   └─kdevtmpfs',
        '4026532177 uts       1  2038 nobody node s.js',
        '',
      ].join('\n'),
    );
  });

  it('a column narrower than its header takes the header width; -n drops the header but not the widths', () => {
    const lines = [newLine(['4026531836', 'pid', '86', '2', 'root', 'kthreadd'])];
    expect(renderTable(DEFAULT, lines, { ...TABLE, noHeadings: true })).toBe('4026531836 pid      86   2 root kthreadd\n');
  });

  it('draws nested trees with verticals for siblings still to come', () => {
    const lines: Line[] = [];
    const add = (cmd: string, parent: Line | null = null) => {
      const l = newLine(['1', cmd], parent);
      lines.push(l);
      return l;
    };
    const sh = add('sh');
    add('sleep 100', sh);
    const sub = add('sh', sh);
    add('sleep 101', sub);
    add('sleep 102', sub);
    expect(renderTable(['PID', 'COMMAND'], lines, TABLE)).toBe(
      ['PID COMMAND', '  1 sh', '  1 ├─sleep 100', '  1 └─sh', '  1   ├─sleep 101', '  1   └─sleep 102', ''].join('\n'),
    );
    expect(renderTable(['PID', 'COMMAND'], lines, { ...TABLE, utf8: false }).split('\n')[3]).toBe('  1 `-sh');
    // Without a tree the rows keep the order they were added in, flat.
    expect(renderTable(['PID', 'COMMAND'], lines, { ...TABLE, tree: false }).split('\n')[2]).toBe('  1 sleep 100');
  });

  it('a right-aligned last column is padded; a left-aligned one is not', () => {
    const lines = [newLine(['uts', '2']), newLine(['cgroup', '2038'])];
    expect(renderTable(['TYPE', 'PID'], lines, TABLE)).toBe('TYPE     PID\nuts        2\ncgroup  2038\n');
    expect(renderTable(['PID', 'TYPE'], [newLine(['2', 'uts']), newLine(['2038', 'cgroup'])], TABLE))
      .toBe('  PID TYPE\n    2 uts\n 2038 cgroup\n');
  });

  it('NSFS holds one path per line, or a comma list with --nowrap', () => {
    const lines = [newLine(['4026531833', null, 'kthreadd']), newLine(['4026532180', '/tmp/n1\n/tmp/n2', 'sleep 100'])];
    expect(renderTable(['NS', 'NSFS', 'COMMAND'], lines, TABLE)).toBe(
      '        NS NSFS    COMMAND\n4026531833         kthreadd\n4026532180 /tmp/n1 sleep 100\n           /tmp/n2 \n',
    );
    const flat = [newLine(['4026532180', '/tmp/n1,/tmp/n2'])];
    expect(renderTable(['NS', 'NSFS'], flat, { ...TABLE, noWrap: true })).toBe('        NS NSFS\n4026532180 /tmp/n1,/tmp/n2\n');
  });

  it('on a terminal COMMAND is cut to fit, unless --notruncate', () => {
    const lines = [newLine(['4026531832', 'mnt', 'a command line that is much too long for the terminal'])];
    const narrow = renderTable(['NS', 'TYPE', 'COMMAND'], lines, { ...TABLE, termWidth: 30 });
    expect(narrow.split('\n')[1]).toBe('4026531832 mnt  a command line');
    expect(narrow.split('\n')[1]).toHaveLength(30);
    expect(renderTable(['NS', 'TYPE', 'COMMAND'], lines, { ...TABLE, termWidth: 30, noTruncate: true }).split('\n')[1])
      .toBe('4026531832 mnt  a command line that is much too long for the terminal');
  });

  it('prints nothing at all for no rows', () => {
    expect(renderTable(DEFAULT, [], TABLE)).toBe('');
    expect(renderRaw(DEFAULT, [], TABLE)).toBe('');
  });

  it('escapes control characters, and a literal \\x', () => {
    expect(safeEncode('a\nb\tc', true).pieces.join('')).toBe('a\\x0ab\\x09c');
    expect(safeEncode('\\x41', true).pieces.join('')).toBe('\\x5cx41');
    expect(safeEncode('ü', true)).toMatchObject({ pieces: ['ü'], width: 1 });
    expect(safeEncode('ü', false).pieces.join('')).toBe('\\xc3\\xbc');
    expect(safeEncode('日本', true).width).toBe(4);
  });
});

describe('raw and JSON output', () => {
  it('raw: space-separated, blanks, backslashes and non-ASCII bytes escaped', () => {
    expect(rawEncode('node s.js "a\\b"')).toBe('node\\x20s.js\\x20"a\\x5cb"');
    expect(renderRaw(DEFAULT, sample(), TABLE).split('\n')).toEqual([
      'NS TYPE NPROCS PID USER COMMAND',
      '4026531832 mnt 88 2 root kthreadd',
      '4026531839 ipc 89 2 root kthreadd',
      '4026531860 mnt 1 25 root \\xe2\\x94\\x94\\xe2\\x94\\x80kdevtmpfs',
      '4026532177 uts 1 2038 nobody node\\x20s.js',
      '',
    ]);
    expect(renderRaw(['NS', 'NSFS', 'PID'], [newLine(['1', null, '2'])], { ...TABLE, noHeadings: true })).toBe('1  2\n');
  });

  it('JSON: libsmartcols layout, lower-case keys, numbers bare, empty cells null', () => {
    const lines = [newLine(['4026531833', 'net', '82', null, '/a\n/b'])];
    expect(renderJson(['NS', 'TYPE', 'NPROCS', 'PID', 'NSFS'], lines, false)).toBe(
      [
        '{',
        '   "namespaces": [',
        '      {',
        '         "ns": 4026531833,',
        '         "type": "net",',
        '         "nprocs": 82,',
        '         "pid": null,',
        '         "nsfs": "/a\\n/b"',
        '      }',
        '   ]',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('JSON: a tree nests children, rows are separated by },{ as lsns prints them', () => {
    const json = renderLs(DEFAULT, sample(), { ...TABLE, json: true });
    expect(json).toContain('      },{\n');
    expect(json).toContain('         "command": "kthreadd",\n         "children": [\n            {\n               "ns": 4026531860,');
    const parsed = JSON.parse(json) as { namespaces: { ns: number; nprocs: number; children?: { ns: number }[] }[] };
    expect(parsed.namespaces.map((n) => n.ns)).toEqual([4026531832, 4026531839, 4026532177]);
    expect(parsed.namespaces[0]!.nprocs).toBe(88);
    expect(parsed.namespaces[1]!.children!.map((n) => n.ns)).toEqual([4026531860]);
    // Without a COMMAND column there is no tree to draw: a flat list, as with lsns -o NS,PID.
    const flat = JSON.parse(renderLs(['NS', 'TYPE', 'NPROCS', 'PID', 'USER'], sample(), { ...TABLE, json: true }));
    expect(flat.namespaces).toHaveLength(4);
    expect(JSON.parse(renderLs(DEFAULT, sample(), { ...TABLE, json: true, tree: false })).namespaces).toHaveLength(4);
  });

  it('JSON: an empty list keeps lsns\'s shape', () => {
    expect(renderJson(DEFAULT, [], true)).toBe('{\n   "namespaces": [\n\n   ]\n}\n');
  });
});

describe('reading /proc text', () => {
  it('the ppid comes after the last parenthesis of stat', () => {
    expect(parseStatPpid('42 (a) b (c)) S 7 42 42 0 -1')).toBe(7);
    expect(parseStatPpid('2 (kthreadd) S 0 0 0')).toBe(0);
    expect(parseStatPpid('garbage')).toBeUndefined();
  });

  it('ns links', () => {
    expect(parseNsLink('uts:[4026531838]')).toEqual(['uts', 4026531838]);
    expect(parseNsLink('pid_for_children:[4026531836]')).toEqual(['pid_for_children', 4026531836]);
    expect(parseNsLink('/tmp/x')).toBeUndefined();
  });

  it('nsfs bind mounts from mountinfo, unescaped, each path once', () => {
    const text = [
      '22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
      '41 26 0:4 uts:[4026532178] /tmp/lsx rw - nsfs nsfs rw',
      '42 26 0:4 net:[4026532180] /tmp/a\\040b rw shared:5 - nsfs nsfs rw',
      '43 26 0:4 net:[4026532180] /run/netns/x rw - nsfs nsfs rw',
      '44 26 0:4 net:[4026532180] /run/netns/x rw - nsfs nsfs rw',
      '',
    ].join('\n');
    expect(parseNsfsMounts(text)).toEqual([
      { type: 'uts', ns: 4026532178, paths: ['/tmp/lsx'] },
      { type: 'net', ns: 4026532180, paths: ['/tmp/a b', '/run/netns/x'] },
    ]);
  });

  it('user names from passwd: the first entry for a uid wins', () => {
    const users = parsePasswd('root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/usr/sbin/nologin\n#junk\n');
    expect(users.get(0)).toBe('root');
    expect(users.get(65534)).toBe('nobody');
    expect(users.size).toBe(2);
  });

  it('type names: lsns names, tsns\'s mount, anything else an error', () => {
    expect(namespaceTypes(['uts', 'mount', 'mnt'])).toEqual(['uts', 'mnt']);
    expect(namespaceTypes(undefined)).toHaveLength(8);
    expect(() => namespaceTypes(['bogus'])).toThrow(TsnsError);
  });

  it('a record: the lowest pid stands for the namespace; a bind mount alone gives nulls', () => {
    const proc: ProcessInfo = { pid: 7, ppid: 1, uid: 0, ns: { uts: 5 } };
    expect(toRecord({ ns: 5, type: 'uts', processes: [proc], nsfs: [] }, () => 'sleep 1')).toEqual({
      ns: 5, type: 'uts', path: '/proc/7/ns/uts', nprocs: 1, pid: 7, ppid: 1, command: 'sleep 1', uid: 0, user: 'root', nsfs: [],
    });
    expect(toRecord({ ns: 6, type: 'net', processes: [], nsfs: ['/run/netns/x'] })).toEqual({
      ns: 6, type: 'net', path: null, nprocs: 0, pid: null, ppid: null, command: null, uid: null, user: null, nsfs: ['/run/netns/x'],
    });
    // Once its owner's uid is known (namespaceOwnerUid), a namespace without processes shows it.
    expect(toRecord({ ns: 6, type: 'net', processes: [], nsfs: ['/run/netns/x'], ownerUid: 65534 })).toMatchObject({
      nprocs: 0, pid: null, uid: 65534, user: 'nobody',
    });
  });

  it('the uid of a namespace without processes: its own owner (user), or its user namespace\'s owner', () => {
    const user: NamespaceEntry = { ns: 10, type: 'user', processes: [], nsfs: ['/x/u'], parent: 1, owner: 1, ownerUid: 1000 };
    const uts: NamespaceEntry = { ns: 11, type: 'uts', processes: [], nsfs: ['/x/uts'], parent: 0, owner: 10 };
    const lookup = (ino: number) => (ino === 10 ? user : undefined);
    expect(namespaceOwnerUid(user, lookup)).toBe(1000);
    expect(namespaceOwnerUid(uts, lookup)).toBe(1000);
    expect(uts.ownerUid).toBe(1000);
    // The owner is out of sight (no process in it, no mount of it): unknown, not root.
    const lost: NamespaceEntry = { ns: 12, type: 'net', processes: [], nsfs: ['/x/net'], parent: 0, owner: 99 };
    expect(namespaceOwnerUid(lost, lookup)).toBeNull();
    const none: NamespaceEntry = { ns: 13, type: 'net', processes: [], nsfs: ['/x/net'], parent: 0, owner: 0 };
    expect(namespaceOwnerUid(none, lookup)).toBeNull();
  });

  it('tree symbols follow the locale', () => {
    expect(localeIsUtf8({ LANG: 'C.UTF-8' })).toBe(true);
    expect(localeIsUtf8({ LC_ALL: 'C', LANG: 'en_US.UTF-8' })).toBe(false);
    expect(localeIsUtf8({ LC_CTYPE: 'de_DE.utf8' })).toBe(true);
    expect(localeIsUtf8({})).toBe(false);
  });
});

describe('owner and parent trees (lsns -T owner|parent)', () => {
  // A host user namespace 100 owning mnt 101, pid 102, uts 103; a nested user namespace 200 (unshare
  // --user --pid --fork: pid 50, its child 51 in pid namespace 201); a uts namespace 300 only a bind
  // mount keeps, owned by 200; and user namespace 360 whose parent 350 no process is in (it owns uts 400).
  const procs: ProcessInfo[] = [
    { pid: 2, ppid: 0, uid: 0, ns: { user: 100, mnt: 101, pid: 102, uts: 103 } },
    { pid: 50, ppid: 2, uid: 0, ns: { user: 200, mnt: 101, pid: 102, uts: 103 } },
    { pid: 51, ppid: 50, uid: 0, ns: { user: 200, mnt: 101, pid: 201, uts: 103 } },
    { pid: 60, ppid: 2, uid: 65534, ns: { user: 360, mnt: 101, pid: 102, uts: 400 } },
  ];
  // What NS_GET_PARENT, NS_GET_USERNS and NS_GET_OWNER_UID answer (0: none, or out of sight).
  const KERNEL: Record<number, { parent: number; owner: number; ownerUid?: number }> = {
    100: { parent: 0, owner: 0, ownerUid: 0 },
    101: { parent: 0, owner: 100 },
    102: { parent: 0, owner: 100 },
    103: { parent: 0, owner: 100 },
    200: { parent: 100, owner: 100, ownerUid: 0 },
    201: { parent: 102, owner: 200 },
    300: { parent: 0, owner: 200 },
    350: { parent: 100, owner: 100, ownerUid: 0 },
    360: { parent: 350, owner: 350, ownerUid: 65534 },
    400: { parent: 0, owner: 360 },
  };

  function snapshot(): Snapshot {
    const byKey = new Map<string, NamespaceEntry>();
    const entry = (type: NamespaceType, ns: number): NamespaceEntry => {
      const key = `${type}:${ns}`;
      if (!byKey.has(key)) byKey.set(key, { ns, type, processes: [], nsfs: [] });
      return byKey.get(key)!;
    };
    for (const p of procs) for (const [type, ns] of Object.entries(p.ns)) entry(type as NamespaceType, ns).processes.push(p);
    entry('uts', 300).nsfs = ['/tmp/b'];
    return { processes: new Map(procs.map((p) => [p.pid, p])), namespaces: [...byKey.values()].sort((a, b) => a.ns - b.ns) };
  }

  /** The kernel's answers from the table; `asked` records every namespace opened. */
  function fake(snap: Snapshot): LinkSource & { asked: number[] } {
    const asked: number[] = [];
    const links = (e: NamespaceEntry): void => {
      if (e.owner !== undefined) return;
      asked.push(e.ns);
      const k = KERNEL[e.ns]!;
      e.parent = e.type === 'pid' || e.type === 'user' ? k.parent : 0;
      e.owner = k.owner;
      if (e.type === 'user') e.ownerUid = k.ownerUid ?? null;
    };
    return {
      asked,
      links,
      netnsid: (e) => {
        e.netnsid = null;
      },
      ownerUid: (e) => {
        links(e);
        if (e.type === 'user') return;
        const owner = snap.namespaces.find((u) => u.type === 'user' && u.ns === e.owner);
        if (owner) links(owner);
        e.ownerUid = owner?.ownerUid ?? null;
      },
    };
  }

  function render(args: string[]): { text: string; asked: number[]; json: string } {
    const cmd = parseLs(args);
    const snap = snapshot();
    const source = fake(snap);
    const lines = buildLines(cmd, snap, source);
    const opts = { ...TABLE, tree: cmd.tree !== null, treeColumn: cmd.tree === 'process' ? 'COMMAND' as const : 'NS' as const };
    return { text: renderLs(cmd.columns, lines, opts), asked: source.asked, json: renderLs(cmd.columns, lines, { ...opts, json: true }) };
  }

  const COLS = ['-o', 'NS,TYPE,NPROCS,PID,USER,PNS,ONS'];

  it('-T owner: each namespace under the user namespace that owns it; NS holds the tree, left-aligned', () => {
    expect(render(['-Towner', ...COLS]).text).toBe(
      [
        'NS         TYPE  NPROCS PID USER          PNS        ONS',
        '100        user       1   2 root            0          0',
        '├─101      mnt        4   2 root            0        100',
        '├─102      pid        3   2 root            0        100',
        '├─103      uts        3   2 root            0        100',
        '├─200      user       2  50 root          100        100',
        '│ ├─201    pid        1  51 root          102        200',
        '│ └─300    uts        0     root            0        200',
        // No process, no mount: asked about through 360, which it is the parent of.
        '└─350      user       0     root          100        100',
        '  └─360    user       1  60 nobody        350        350',
        '    └─400  uts        1  60 nobody          0        360',
        '',
      ].join('\n'),
    );
  });

  it('-T parent: pid and user namespaces under their parent; the others at the top, after their owner', () => {
    expect(render(['-Tparent', ...COLS]).text.split('\n').map((l) => l.slice(0, 16).trimEnd())).toEqual([
      'NS         TYPE', '100        user', '├─200      user', '└─350      user', '  └─360    user', '101        mnt',
      '102        pid', '└─201      pid', '103        uts', '300        uts', '400        uts', '',
    ]);
  });

  it('-p keeps the namespaces of that process, and the ones they hang under', () => {
    expect(render(['-Towner', '-p', '51', '-o', 'NS,TYPE']).text).toBe(
      ['NS         TYPE', '100        user', '├─101      mnt', '├─103      uts', '└─200      user', '  └─201    pid', ''].join('\n'),
    );
  });

  it('with -t, the owners of the listed namespaces are added without processes, as lsns does', () => {
    expect(render(['-t', 'uts', '-Towner', ...COLS]).text).toBe(
      [
        'NS         TYPE  NPROCS PID USER          PNS        ONS',
        '100        user       0     root            0          0',
        '├─103      uts        3   2 root            0        100',
        '├─200      user       0     root          100        100',
        '│ └─300    uts        0     root            0        200',
        '└─350      user       0     root          100        100',
        '  └─360    user       0     nobody        350        350',
        '    └─400  uts        1  60 nobody          0        360',
        '',
      ].join('\n'),
    );
  });

  it('JSON nests children; raw draws the tree into NS', () => {
    const json = JSON.parse(render(['-Towner', '-p', '51', '-o', 'NS,PNS,ONS']).json) as { namespaces: { ns: number; pns: number; children?: { ns: number }[] }[] };
    expect(json.namespaces.map((n) => n.ns)).toEqual([100]);
    expect(json.namespaces[0]!.pns).toBe(0);
    expect(json.namespaces[0]!.children!.map((n) => n.ns)).toEqual([101, 103, 200]);
    const cmd = parseLs(['-Towner', '-p', '51', '-o', 'NS,TYPE', '-r']);
    const snap = snapshot();
    const raw = renderLs(cmd.columns, buildLines(cmd, snap, fake(snap)), { ...TABLE, raw: true, tree: true, treeColumn: 'NS' });
    expect(raw.split('\n')[2]).toBe('\\xe2\\x94\\x9c\\xe2\\x94\\x80101 mnt');
  });

  it('a namespace operand lists its processes flat, NS left-aligned', () => {
    expect(render(['-Towner', '101', '-o', 'NS,PID']).text.split('\n').slice(0, 3)).toEqual(['NS         PID', '101          2', '101         50']);
  });

  it('asks the kernel only for what is shown: nothing for a plain listing, the owner for a bind mount\'s USER', () => {
    expect(render(['-o', 'NS,TYPE,NPROCS']).asked).toEqual([]);
    expect(render(['-o', 'NS,TYPE,NPROCS,UID']).asked).toEqual([300, 200]);
    const plain = render(['-o', 'NS,TYPE,NPROCS,USER']);
    expect(plain.asked).toEqual([300, 200]);
    expect(plain.text).toContain('\n       300 uts        0 root\n');
    expect(render(['-o', 'NS,PNS']).asked).toHaveLength(9);
    expect(render(['-p', '60', '-o', 'NS,ONS']).asked).toEqual([101, 102, 360, 400]);
  });

  it('relateNamespaces links what it can and adds what is missing once', () => {
    const snap = snapshot();
    const listed = snap.namespaces.filter((e) => e.type === 'pid');
    const hidden = new Map(snap.namespaces.filter((e) => e.type !== 'pid').map((e) => [e.ns, e]));
    const nodes = relateNamespaces(listed, hidden, fake(snap));
    expect(nodes.map((n) => `${n.entry.type}:${n.entry.ns}:${n.entry.processes.length}`)).toEqual([
      'user:100:0', 'pid:102:3', 'user:200:0', 'pid:201:1',
    ]);
    expect(nodes[3]!.parentNs).toBe(nodes[1]);
    expect(nodes[3]!.ownerNs).toBe(nodes[2]);
    expect(nodes[2]!.parentNs).toBe(nodes[0]);
  });
});
