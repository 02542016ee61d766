import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli';
import { TsnsError } from '../../src/errors';
import {
  namespaceTypes, parseNsfsMounts, parseNsLink, parsePasswd, parseStatPpid, toRecord, type ProcessInfo,
} from '../../src/inspect';
import {
  COLUMNS, defaultColumns, localeIsUtf8, newLine, parseColumns, parseLs, rawEncode, renderJson, renderLs,
  renderRaw, renderTable, safeEncode, type ColumnName, type Line, type RenderOptions,
} from '../../src/ls';

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
  json: false, raw: false, noHeadings: false, noTruncate: false, noWrap: false, tree: true, termWidth: null, utf8: true,
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

  it('--tree=process is accepted; owner and parent need ioctls and are refused clearly', () => {
    expect(parseLs(['-l', '-o', 'NS']).tree).toBeNull();
    expect(parseLs(['--tree=process', '--output-all']).tree).toBe('process');
    expect(parseLs(['-Tprocess']).tree).toBe('process');
    expect(parseLs(['-T=process']).tree).toBe('process');
    expect(usageError(() => parseLs(['-T'])).message).toMatch(/--tree=owner is not supported: it needs the NS_GET_USERNS ioctl/);
    expect(usageError(() => parseLs(['--tree=parent'])).message).toMatch(/NS_GET_PARENT/);
    expect(usageError(() => parseLs(['--tree=sideways'])).message).toBe('unknown tree type: sideways');
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
  });

  it('tree symbols follow the locale', () => {
    expect(localeIsUtf8({ LANG: 'C.UTF-8' })).toBe(true);
    expect(localeIsUtf8({ LC_ALL: 'C', LANG: 'en_US.UTF-8' })).toBe(false);
    expect(localeIsUtf8({ LC_CTYPE: 'de_DE.utf8' })).toBe(true);
    expect(localeIsUtf8({})).toBe(false);
  });
});
