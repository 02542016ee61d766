/** `tsns run`'s sandbox options from bwrap(1): operations on a new root, applied in order, and hardening. */
import { UNSHARE_ALL } from '../namespaces';
import { parseMode, splitPair } from '../sandbox';
import { fdNumber, UsageError } from './args';
import { flag, perms, permsAndSize, valued, type RunOpt, type RunState } from './run-state';

const bindOptions = (['bind', 'ro-bind', 'dev-bind'] as const).flatMap((op): RunOpt[] => {
  const what = op === 'bind' ? 'bind' : op === 'ro-bind' ? 'bind read-only' : 'bind, devices allowed,';
  const set = (tryIt: boolean) => (s: RunState, v: string) => {
    const [src, dest] = splitPair(op, v, false);
    s.fs.push({ op, src, ...(dest === undefined ? {} : { dest }), ...(tryIt ? { try: true } : {}) });
  };
  return [
    valued(op, 'SRC[:DEST]', `${what} host SRC at DEST in a new root`, set(false)),
    valued(`${op}-try`, 'SRC[:DEST]', `--${op}, skipped when SRC is missing`, set(true)),
  ];
});

export const BWRAP_OPTIONS: RunOpt[] = [
  ...bindOptions,
  valued('tmpfs', 'DEST', 'a new tmpfs at DEST (see --size, --perms)', (s, v) => s.fs.push({ op: 'tmpfs', dest: v, ...permsAndSize(s) })),
  valued('dir', 'DEST', 'create a directory (see --perms)', (s, v) => s.fs.push({ op: 'dir', dest: v, ...perms(s) })),
  valued('symlink', 'TARGET:DEST', 'create a symbolic link', (s, v) => {
    const [target, dest] = splitPair('symlink', v, true);
    s.fs.push({ op: 'symlink', target, dest: dest! });
  }),
  valued('file', 'SRC:DEST', 'copy a file, or an open fd (a number), to DEST (see --perms)', (s, v) => {
    const [src, dest] = splitPair('file', v, true);
    s.fs.push({ op: 'file', src: /^\d+$/.test(src) ? Number(src) : src, dest: dest!, ...perms(s) });
  }),
  valued('chmod', 'OCTAL:PATH', 'change permissions inside the sandbox', (s, v) => {
    const i = v.indexOf(':');
    if (i < 0) throw new UsageError('--chmod needs OCTAL:PATH');
    s.fs.push({ op: 'chmod', perms: parseMode('chmod', v.slice(0, i)), dest: v.slice(i + 1) });
  }),
  valued('remount-ro', 'DEST', 'make DEST and its submounts read-only', (s, v) => s.fs.push({ op: 'remount-ro', dest: v })),
  valued('proc', 'DEST', 'a new proc at DEST (for the new pid namespace)', (s, v) => s.fs.push({ op: 'proc', dest: v })),
  valued('dev', 'DEST', 'a minimal /dev at DEST: null zero full random urandom tty, pts, shm', (s, v) => s.fs.push({ op: 'dev', dest: v })),
  valued('overlay', 'LOWER[,LOWER...]:DEST', 'an overlay with a tmpfs upper layer: writes vanish afterwards', (s, v) => {
    const [lowers, dest] = splitPair('overlay', v, true);
    s.fs.push({ op: 'overlay', lowers: lowers.split(','), dest: dest! });
  }),
  valued('size', 'BYTES', 'size of the next --tmpfs', (s, v) => {
    if (!/^\d+$/.test(v)) throw new UsageError(`--size needs a number of bytes, not '${v}'`);
    s.size = Number(v);
  }),
  valued('perms', 'OCTAL', 'permissions of the next --tmpfs, --dir or --file', (s, v) => (s.perms = parseMode('perms', v))),
  valued('chdir', 'DIR', 'working directory inside the sandbox (as --wd)', (s, v) => (s.options.wd = v)),
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
  valued('args', 'FD', 'read more options, NUL-separated, from FD and parse them here (as bwrap; not within such words)', () => {}),
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
