/**
 * The only importer of ffi-rs: binds native/tsns.c (built to build/libtsns.so)
 * and encodes what the shim reads.
 */
import { join } from 'node:path';
import { TsnsError } from './errors';

/** Everything the child needs, flattened for the shim. */
export interface SpawnSpec {
  /** CLONE_NEW* for clone(2), plus CLONE_NEWTIME for the child to unshare */
  flags: number;
  /** with CLONE_NEWTIME and no init: the child unshares the pid namespace too */
  unsharePid: boolean;
  uidMap: string | null;
  gidMap: string | null;
  uidMapHelper: boolean;
  gidMapHelper: boolean;
  setgroups: string | null;
  hostname: string | null;
  domainname: string | null;
  procDir: string | null;
  /** MS_* bits applied recursively to /, 0 to leave it */
  propagation: number;
  root: string | null;
  wd: string | null;
  monotonic: number | null;
  boottime: number | null;
  uid: number | null;
  gid: number | null;
  keepCaps: boolean;
  killSignal: number | null;
  init: boolean;
  persist: readonly { source: string; path: string; late: boolean }[];
  /** sandbox operations in the shim's form (sandbox.ts encodeOp) */
  filesystem: readonly string[];
  /** letters: n no-new-privs, s setsid, l lo up, x overlay with userxattr */
  hardening: string;
  /** seccomp programs to load last, hex */
  seccomp: readonly string[];
  /** capabilities to keep, decimal mask; null leaves them */
  capKeep: string | null;
  /** enter: the target pid, pinned with a pidfd */
  target: number | null;
  /** enter: namespaces to join in order; fromTarget ones may be joined at once through the pidfd */
  joins: readonly { type: number; fd: number; fromTarget: boolean }[];
  /** enter: fds of the target's root and cwd to change to after joining */
  rootFd: number | null;
  cwdFd: number | null;
  /** fds 0-2 of the command: another fd to dup there, -1 for /dev/null, null to inherit */
  stdio: readonly (number | null)[];
  file: string | Uint8Array;
  /** the PATH the command is searched in */
  searchPath: string;
  /** strings, or bytes where they are not UTF-8 (the CLI passes its own argv and environment exactly) */
  argv: readonly (string | Uint8Array)[];
  env: readonly (string | Uint8Array)[];
}

interface Binding {
  spawn(buf: Buffer): number;
  waitAll(slots: Buffer, n: number): number;
  watcherStart(notice: number): number;
  watch(ctl: number, pid: number): number;
  pipe(): number;
  close(fd: number): number;
  die(sig: number): void;
  reclaimTty(): void;
  nsQuery(fd: number, what: number): number;
  nsQueryVia(fd: number, path: number, depth: number, ino: number, what: number): number;
  execMonitor(pid: number, path: string, forward: boolean, trace: boolean): number;
  blockMonitorSignals(forward: boolean): void;
}

let binding: Binding | undefined;

const BUILD = join(__dirname, '..', 'build');
export const LIBRARY_PATH = join(BUILD, 'libtsns.so');
export const MONITOR_PATH = join(BUILD, 'tsns-monitor');

type Ffi = typeof import('ffi-rs');

/**
 * ffi-rs's package entry spends milliseconds working out the platform (it
 * asks for a full process report); on glibc Linux the platform package is
 * known, so load its binding directly and call it without the wrappers.
 */
function ffiBinding(): Ffi {
  const { platform, arch } = process;
  if (platform === 'linux' && (arch === 'x64' || arch === 'arm64')) {
    try {
      const pkg = `@yuuang/ffi-rs-linux-${arch}-gnu`;
      const file = require.resolve(`${pkg}/ffi-rs.linux-${arch}-gnu.node`);
      // RTLD_LAZY | RTLD_NODELETE (glibc's 1 and 0x1000): a worker thread
      // that loaded the binding unloads it when it ends, while the binding's
      // thread-local destructors have yet to run, and the process crashes.
      const mod = { exports: {} as Ffi };
      process.dlopen(mod, file, 0x1 | 0x1000);
      return mod.exports;
    } catch {
      // musl, or not installed: the package entry knows
    }
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('ffi-rs') as Ffi;
}

function load(): Binding {
  if (binding) return binding;
  const ffi = ffiBinding();
  try {
    ffi.open({ library: 'tsns', path: LIBRARY_PATH });
  } catch (e) {
    throw new TsnsError(`cannot load the native shim ${LIBRARY_PATH}: ${(e as Error).message}`, {
      stage: 'native',
      hint: 'build it with `npm run build:native` (needs a C compiler, cc)',
    });
  }
  const { DataType: T } = ffi;
  const call = <R>(funcName: string, retType: number, paramsType: unknown[], paramsValue: unknown[]): R =>
    ffi.load({ library: 'tsns', funcName, retType, paramsType, paramsValue, freeResultMemory: false } as never) as R;
  const arrayTag = (ffi as unknown as { FFITypeTag: { Array?: number } }).FFITypeTag.Array ?? 997;
  const bytes = (buf: Buffer) => ({ ffiTypeTag: arrayTag, type: T.U8Array, length: buf.length });
  binding = {
    spawn: (buf) => call('tsns_spawn', T.I64, [bytes(buf), T.I32], [buf, buf.length]),
    // The shim writes the statuses into the buffer itself (ffi-rs passes it in place).
    waitAll: (slots, n) => call('tsns_wait_all', T.I32, [bytes(slots), T.I32], [slots, n]),
    watcherStart: (notice) => call('tsns_watcher_start', T.I64, [T.I32], [notice]),
    watch: (ctl, pid) => call('tsns_watch', T.I32, [T.I32, T.I32], [ctl, pid]),
    pipe: () => call('tsns_pipe', T.I64, [], []),
    close: (fd) => call('tsns_close', T.I32, [T.I32], [fd]),
    die: (sig) => call('tsns_die', T.Void, [T.I32], [sig]),
    reclaimTty: () => call('tsns_reclaim_tty', T.Void, [], []),
    nsQuery: (fd, what) => call('tsns_ns_query', T.I64, [T.I32, T.I32], [fd, what]),
    nsQueryVia: (fd, path, depth, ino, what) =>
      call('tsns_ns_query_via', T.I64, [T.I32, T.I32, T.I32, T.I64, T.I32], [fd, path, depth, ino, what]),
    blockMonitorSignals: (forward) => call('tsns_block_monitor_signals', T.Void, [T.I32], [forward ? 1 : 0]),
    execMonitor: (pid, path, forward, trace) =>
      call('tsns_exec_monitor', T.I32, [T.I32, T.String, T.I32, T.I32], [pid, path, forward ? 1 : 0, trace ? 1 : 0]),
  };
  return binding;
}

/** Whether the binding is loaded yet (for TSNS_TRACE). */
export function loaded(): boolean {
  return binding !== undefined;
}

/** Load the shim now rather than on first use. */
export function preload(): void {
  load();
}

/**
 * Block, in this (the main) thread, the signals the monitor will take over,
 * from before the command starts until the exec: none is lost in between.
 */
export function blockMonitorSignals(forward: boolean): void {
  load().blockMonitorSignals(forward);
}

/**
 * Become the monitor (native/monitor.c) for a started command: returns only
 * if the exec failed, with -errno.
 */
export function execMonitor(pid: number, forward: boolean, trace: boolean): number {
  return load().execMonitor(pid, MONITOR_PATH, forward, trace);
}

function nulError(text: string): TsnsError {
  return new TsnsError(`an argument or environment entry contains a NUL byte: ${JSON.stringify(text)}`, { stage: 'spec' });
}

/** Tag-per-entry wire format; parse_spec() in native/tsns.c is its reader. */
export function encodeSpec(s: SpawnSpec): Buffer {
  // Entries gather in one string, encoded once; byte entries (rare) split it.
  const chunks: Buffer[] = [];
  let text = '';
  const add = (tag: string, value: string | number | Uint8Array) => {
    if (typeof value !== 'object') {
      const v = String(value);
      if (v.includes('\0')) throw nulError(v);
      text += `${tag}${v}\0`;
      return;
    }
    if (value.includes(0)) throw nulError(Buffer.from(value).toString());
    chunks.push(Buffer.from(`${text}${tag}`), Buffer.from(value));
    text = '\0';
  };
  add('f', s.flags);
  add('P', s.propagation);
  add('x', s.file);
  add('S', s.searchPath);
  const optional: [string, string | number | null][] = [
    ['u', s.uidMap], ['g', s.gidMap], ['s', s.setgroups], ['h', s.hostname], ['d', s.domainname],
    ['p', s.procDir], ['R', s.root], ['W', s.wd], ['M', s.monotonic], ['B', s.boottime],
    ['U', s.uid], ['G', s.gid], ['K', s.killSignal], ['y', s.target], ['r', s.rootFd], ['c', s.cwdFd],
    ['C', s.capKeep], ['H', s.hardening || null],
  ];
  for (const [tag, value] of optional) if (value !== null) add(tag, value);
  const flags: [string, boolean][] = [
    ['m', s.uidMapHelper], ['n', s.gidMapHelper], ['k', s.keepCaps], ['I', s.init], ['Q', s.unsharePid],
  ];
  for (const [tag, on] of flags) if (on) add(tag, '');
  for (const p of s.persist) add(p.late ? 'L' : 'N', `${p.source}:${p.path}`);
  for (const o of s.filesystem) add('O', o);
  for (const p of s.seccomp) add('F', p);
  for (const j of s.joins) add('J', `${j.type}:${j.fd}${j.fromTarget ? 't' : ''}`);
  s.stdio.forEach((fd, target) => {
    if (fd !== null) add('D', `${target}:${fd}`);
  });
  for (const a of s.argv) add('a', a);
  for (const e of s.env) add('e', e);
  if (chunks.length === 0) return Buffer.from(text);
  chunks.push(Buffer.from(text));
  return Buffer.concat(chunks);
}

/** Clone and exec; the pid on success, else -(stage << 16 | errno). */
export function spawn(spec: SpawnSpec): number {
  return load().spawn(encodeSpec(spec));
}

/**
 * Non-blocking, for many pids in one call: for each, 0 while running, else
 * the encoded status (see exit-status.ts) or -errno.
 */
export function waitAll(pids: readonly number[]): Int32Array {
  const slots = new Int32Array(pids.length * 2);
  pids.forEach((pid, i) => (slots[2 * i] = pid));
  if (pids.length > 0) load().waitAll(Buffer.from(slots.buffer), pids.length);
  return slots.filter((_, i) => i % 2 === 1);
}

/**
 * Start the shim's watcher thread for a thread that gets no SIGCHLD; it
 * owns `notice` (a pipe's write end) from now on and writes a byte there
 * whenever a watched command ends. The control fd to pass to watch().
 */
export function watcherStart(notice: number): number {
  const ctl = load().watcherStart(notice);
  if (ctl < 0) throw new TsnsError(`cannot start a thread to watch for commands ending: errno ${-ctl}`, { stage: 'wait', code: -ctl });
  return ctl;
}

/** Have the watcher behind `ctl` report when `pid` ends: 0, or -errno (no pidfd_open before Linux 5.3). */
export function watch(ctl: number, pid: number): number {
  return load().watch(ctl, pid);
}

/** Close an fd this module made (pipe(), watcherStart()). */
export function close(fd: number): void {
  load().close(fd);
}

/** A close-on-exec pipe: [read end, write end]. */
export function pipe(): [number, number] {
  const r = load().pipe();
  if (r < 0) throw new TsnsError(`cannot create a pipe: errno ${-r}`, { stage: 'pipe', code: -r });
  return [Math.floor(r / 0x10000), r % 0x10000];
}

/** What an open namespace file is; each a negative errno when the kernel cannot say (ENOTTY: not a namespace). */
export const NS_QUERY = { type: 0, parent: 1, owner: 2, ownerUid: 3, netnsid: 4 } as const;

export function nsQuery(fd: number, what: Exclude<keyof typeof NS_QUERY, 'netnsid'>): number {
  return load().nsQuery(fd, NS_QUERY[what]);
}

/** A relation between namespaces that the nsfs ioctls follow. */
export type NsRelation = 'parent' | 'owner';

/**
 * nsQuery() of the namespace `route` leads to from `fd` (its parent, its
 * owner's parent ...), which must have inode `ino`: -ESTALE otherwise.
 */
export function nsQueryVia(
  fd: number, route: readonly NsRelation[], ino: number, what: Exclude<keyof typeof NS_QUERY, 'netnsid'>,
): number {
  const path = route.reduce((bits, r, i) => bits | (r === 'owner' ? 1 << i : 0), 0);
  return load().nsQueryVia(fd, path, route.length, ino, NS_QUERY[what]);
}

/**
 * The id this process's network namespace knows the network namespace of
 * `fd` by (rtnetlink RTM_GETNSID, as lsns asks): a number, 'unassigned', or
 * null when the kernel cannot say.
 */
export function netnsid(fd: number): number | 'unassigned' | null {
  const r = load().nsQuery(fd, NS_QUERY.netnsid);
  return r > 0 ? r - 1 : r === 0 ? 'unassigned' : null;
}

/** After a command that took the terminal's foreground (a shell in a pid namespace). */
export function reclaimTty(): void {
  load().reclaimTty();
}

/** Die of `signal` with its default action; exits 128+signal if that did not kill us. */
export function die(signal: number): never {
  load().die(signal);
  process.exit(128 + signal);
}
