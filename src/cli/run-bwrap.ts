/**
 * `tsns run`'s sandbox options from bwrap(1), in bwrap's own argument forms
 * (`--bind SRC DEST`, `--setenv VAR VALUE`): operations on a new root,
 * applied in order, the command's environment and ids, and hardening.
 */
import { UNSHARE_ALL } from '../namespaces';
import { parseMode, type SandboxOp } from '../sandbox';
import { fdNumber, UsageError } from './args';
import { flag, multi, perms, permsAndSize, valued, type RunOpt, type RunState } from './run-state';

const bindOptions = (['bind', 'ro-bind', 'dev-bind'] as const).flatMap((op): RunOpt[] => {
  const what = op === 'bind' ? 'bind' : op === 'ro-bind' ? 'bind read-only' : 'bind, devices allowed,';
  const set = (tryIt: boolean) => (s: RunState, [src, dest]: readonly string[]) =>
    s.fs.push({ op, src: src!, dest: dest!, ...(tryIt ? { try: true } : {}) });
  return [
    multi(op, ['SRC', 'DEST'], `${what} host SRC at DEST in the new root`, set(false)),
    multi(`${op}-try`, ['SRC', 'DEST'], `--${op}, skipped when SRC is missing`, set(true)),
  ];
});

/** bwrap's --size: strtoull's forms (decimal, 0x hex, 0 octal), not 0, below 2^63. */
function tmpfsSize(v: string): number | bigint {
  const ok = /^(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.test(v);
  const n = ok ? BigInt(/^0[0-7]+$/.test(v) ? `0o${v.slice(1)}` : v) : 0n;
  if (n === 0n) throw new UsageError(`--size takes a non-zero number of bytes, not '${v}'`);
  if (n >= 2n ** 63n) throw new UsageError(`--size (for tmpfs) is limited to ${2n ** 63n - 1n} bytes, not '${v}'`);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

function idNumber(what: 'uid' | 'gid', v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 0xfffffffe) throw new UsageError(`--${what}: invalid ${what}: ${v}`);
  return Number(v);
}

function envName(option: string, name: string): string {
  if (name === '' || name.includes('=')) throw new UsageError(`--${option}: invalid variable name '${name}'`);
  return name;
}

/** --overlay-src words, bottom first as bwrap takes them, used up by the overlay after them. */
function overlay(s: RunState, op: 'overlay' | 'tmp-overlay' | 'ro-overlay', dest: string, upper?: { upper: string; work: string }): void {
  const need = op === 'ro-overlay' ? 2 : 1;
  if (s.overlaySrc.length < need) {
    throw new UsageError(`--${op} requires at least ${need === 2 ? 'two' : 'one'} --overlay-src`,
      `give the lower directories before it, bottom first: --overlay-src DIR${need === 2 ? ' --overlay-src DIR' : ''} --${op} ...`);
  }
  s.fs.push({ op, lowers: [...s.overlaySrc].reverse(), dest, ...upper } as SandboxOp);
  s.overlaySrc = [];
}

export const BWRAP_OPTIONS: RunOpt[] = [
  ...bindOptions,
  multi('bind-fd', ['FD', 'DEST'], 'bind the directory (or O_PATH file) open on FD at DEST', (s, [fd, dest]) =>
    s.fs.push({ op: 'bind-fd', fd: fdNumber('bind-fd', fd!), dest: dest! })),
  multi('ro-bind-fd', ['FD', 'DEST'], '--bind-fd, read-only', (s, [fd, dest]) => s.fs.push({ op: 'ro-bind-fd', fd: fdNumber('ro-bind-fd', fd!), dest: dest! })),
  multi('bind-data', ['FD', 'DEST'], 'what FD holds, in a file of its own bound at DEST (mode 0600; see --perms)', (s, [fd, dest]) =>
    s.fs.push({ op: 'bind-data', fd: fdNumber('bind-data', fd!), dest: dest!, ...perms(s) })),
  multi('ro-bind-data', ['FD', 'DEST'], '--bind-data, read-only', (s, [fd, dest]) =>
    s.fs.push({ op: 'ro-bind-data', fd: fdNumber('ro-bind-data', fd!), dest: dest!, ...perms(s) })),
  valued('tmpfs', 'DEST', 'a new tmpfs at DEST (mode 0755; see --size, --perms)', (s, v) => s.fs.push({ op: 'tmpfs', dest: v, ...permsAndSize(s) })),
  valued('dir', 'DEST', 'create a directory (mode 0755; see --perms)', (s, v) => s.fs.push({ op: 'dir', dest: v, ...perms(s) })),
  multi('symlink', ['SRC', 'DEST'], 'create a symbolic link at DEST to SRC', (s, [target, dest]) => s.fs.push({ op: 'symlink', target: target!, dest: dest! })),
  multi('file', ['FD', 'DEST'], 'copy what FD holds (or a file, a path not all digits) to DEST (mode 0666; see --perms)', (s, [src, dest]) =>
    s.fs.push({ op: 'file', src: /^\d+$/.test(src!) ? fdNumber('file', src!) : src!, dest: dest!, ...perms(s) })),
  multi('chmod', ['OCTAL', 'PATH'], 'change the permissions of PATH, which must exist', (s, [mode, path]) =>
    s.fs.push({ op: 'chmod', perms: parseMode('chmod', mode!), dest: path! })),
  valued('remount-ro', 'DEST', 'make the mount at DEST read-only (not its submounts)', (s, v) => s.fs.push({ op: 'remount-ro', dest: v })),
  valued('proc', 'DEST', 'a new proc at DEST; without a new pid namespace the host\'s /proc bound there', (s, v) => s.fs.push({ op: 'proc', dest: v })),
  valued('dev', 'DEST', 'a minimal /dev at DEST: null zero full random urandom tty, pts, shm', (s, v) => s.fs.push({ op: 'dev', dest: v })),
  valued('mqueue', 'DEST', 'a new mqueue at DEST (for the new ipc namespace)', (s, v) => s.fs.push({ op: 'mqueue', dest: v })),
  valued('overlay-src', 'SRC', 'a lower layer for the overlay option after it (repeatable; the first is the bottom)', (s, v) => s.overlaySrc.push(v)),
  multi('overlay', ['RWSRC', 'WORKDIR', 'DEST'], 'an overlay of the --overlay-src layers at DEST, writes going to RWSRC', (s, [upper, work, dest]) =>
    overlay(s, 'overlay', dest!, { upper: upper!, work: work! })),
  valued('tmp-overlay', 'DEST', 'the same with writes to a tmpfs: they vanish afterwards', (s, v) => overlay(s, 'tmp-overlay', v)),
  valued('ro-overlay', 'DEST', 'the same, read-only (two --overlay-src at least)', (s, v) => overlay(s, 'ro-overlay', v)),
  { ...valued('size', 'BYTES', 'size of the next --tmpfs', (s, v) => {
    if (s.size !== undefined) throw new UsageError('--size given twice for the same action', 'give --size once before each --tmpfs it is for');
    s.size = tmpfsSize(v);
  }), modifier: true },
  { ...valued('perms', 'OCTAL', 'permissions of the next --tmpfs, --dir, --file, --bind-data or --ro-bind-data', (s, v) => {
    if (s.perms !== undefined) throw new UsageError('--perms given twice for the same action', 'give --perms once before each option it is for');
    s.perms = parseMode('perms', v);
  }), modifier: true },
  valued('chdir', 'DIR', 'working directory inside the sandbox (as --wd)', (s, v) => (s.options.wd = v)),
  multi('setenv', ['VAR', 'VALUE'], 'set a variable for the command', (s, [name, value]) => {
    s.options.env = { ...s.options.env, [envName('setenv', name!)]: value! };
  }),
  valued('unsetenv', 'VAR', 'unset a variable for the command', (s, v) => (s.options.env = { ...s.options.env, [envName('unsetenv', v)]: undefined })),
  // Unlike --clear-env, in its place: what --setenv set before it is gone too, as in bwrap.
  { long: 'clearenv', arg: 'none', help: 'unset every variable here (later --setenv add to none; PWD is set)', set: (s) => {
    s.options.clearEnv = true;
    s.options.env = {};
  } },
  valued('uid', 'UID', 'uid inside the new user namespace (mapped to yours)', (s, v) => (s.options.uid = idNumber('uid', v))),
  valued('gid', 'GID', 'gid inside the new user namespace (mapped to yours)', (s, v) => (s.options.gid = idNumber('gid', v))),
  valued('argv0', 'VALUE', 'argv[0] of the command', (s, v) => {
    if (s.options.argv0 !== undefined) throw new UsageError('--argv0 used multiple times');
    s.options.argv0 = v;
  }),
  valued('exec-label', 'LABEL', 'SELinux exec label (refused: tsns does not label)', (s, v) => (s.options.execLabel = v)),
  valued('file-label', 'LABEL', 'SELinux label of files made (refused: tsns does not label)', (s, v) => (s.options.fileLabel = v)),
  flag('new-session', 'setsid(): the command cannot inject input into your terminal', (o) => (o.newSession = true)),
  flag('die-with-parent', 'when the process that started tsns dies, tsns and the command die (SIGKILL)', (o) => (o.dieWithParent = true)),
  valued('lock-file', 'DEST', 'hold a read lock on DEST (in the sandbox) while the sandbox runs (repeatable)',
    (s, v) => (s.options.lockFile = [...(s.options.lockFile ?? []), v])),
  valued('sync-fd', 'FD', 'keep FD open while the sandbox runs (the command does not get it)', (s, v) => (s.options.syncFd = fdNumber('sync-fd', v))),
  valued('block-fd', 'FD', 'wait for a byte (or end of file) on FD before the exec', (s, v) => (s.options.blockFd = fdNumber('block-fd', v))),
  valued('userns-block-fd', 'FD', 'wait on FD once the user namespace exists, before the maps (the caller writes them; needs --info-fd)',
    (s, v) => (s.options.usernsBlockFd = fdNumber('userns-block-fd', v))),
  valued('info-fd', 'FD', 'write {"child-pid": N, "<type>-namespace": ID, ...} to FD', (s, v) => (s.options.infoFd = fdNumber('info-fd', v))),
  valued('json-status-fd', 'FD', 'write the same object as a JSON line to FD, then {"exit-code": N}', (s, v) => (s.options.jsonStatusFd = fdNumber('json-status-fd', v))),
  valued('userns', 'FD', 'use the user namespace open on FD (not with --unshare-user)', (s, v) => (s.options.userns = fdNumber('userns', v))),
  valued('userns2', 'FD', 'after the setup, switch to the user namespace open on FD (with --userns)', (s, v) => (s.options.userns2 = fdNumber('userns2', v))),
  valued('pidns', 'FD', 'use the pid namespace open on FD (the parent of a new one with --unshare-pid)', (s, v) => (s.options.pidns = fdNumber('pidns', v))),
  flag('disable-userns', 'the command cannot create user namespaces (needs --unshare-user)', (o) => (o.disableUserns = true)),
  flag('assert-userns-disabled', 'fail unless the command cannot create user namespaces', (o) => (o.assertUsernsDisabled = true)),
  // Read before parsing (see levelPrefix); accepted here.
  flag('level-prefix', "prefix tsns's diagnostics with syslog levels: <3> errors, <4> warnings, <6> hints", () => {}),
  flag('no-new-privs', 'setuid binaries and file capabilities give nothing (on with any sandbox option)', (o) => (o.noNewPrivs = true)),
  valued('cap-drop', 'CAP|ALL', 'drop a capability from every set, bounding included (repeatable)', (s, v) => (s.options.capDrop = [...(s.options.capDrop ?? []), v])),
  valued('cap-add', 'CAP', 'keep a capability (after --cap-drop ALL; repeatable)', (s, v) => (s.options.capAdd = [...(s.options.capAdd ?? []), v])),
  // Its words were parsed in its place (see expandArgs).
  { ...valued('args', 'FD', 'read more options, NUL-separated, from FD and parse them here (as bwrap; not within such words)', () => {}), modifier: true },
  valued('seccomp', 'FD', 'load the compiled seccomp BPF program open on FD last before exec (implies --no-new-privs)',
    (s, v) => (s.seccompFd = fdNumber('seccomp', v))),
  valued('add-seccomp-fd', 'FD', 'the same, for several programs in order (repeatable; not with --seccomp)', (s, v) => s.addSeccomp.push(fdNumber('add-seccomp-fd', v))),
  flag('unshare-all', 'user, ipc, pid, net, uts and cgroup namespaces', (o) => (o.unshareAll = true)),
  flag('share-net', 'with --unshare-all: keep the network', (o) => (o.shareNet = true)),
  ...UNSHARE_ALL.flatMap((ns) => [
    flag(`unshare-${ns.name}`, `bwrap's name for --${ns.name}`, (o) => (o[ns.name] = true)),
    ...(ns.bwrapTry ? [flag(`unshare-${ns.name}-try`, `--${ns.name} where this kernel allows it, else none`,
      (o) => (ns.name === 'user' ? (o.unshareUserTry = true) : (o.unshareCgroupTry = true)))] : []),
  ]),
  flag('as-pid-1', 'accepted for bwrap compatibility: without --init the command is PID 1', () => {}),
  flag('sandbox', 'the ready profile: --unshare-all, read-only /usr /bin /lib /lib64 /etc, tmpfs /tmp and $HOME, --dev /dev, --proc /proc, --new-session, --no-new-privs, --cap-drop ALL',
    (o) => (o.sandbox = true)),
];
