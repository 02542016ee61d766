/**
 * The only importer of ffi-rs: binds the shim (native/, built to
 * build/libtsns.so) and calls it. What the calls carry is src/wire.ts's.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TsnsError } from './errors';
import { decodePipe, NS_QUERY } from './wire';

interface Binding {
  spawn(buf: Buffer): number;
  waitAll(slots: Buffer, n: number): number;
  watcherStart(notice: number): number;
  watch(ctl: number, pid: number): number;
  pipe(): number;
  close(fd: number): number;
  die(sig: number): void;
  dieWithParent(ppid: number): void;
  reclaimTty(): void;
  nsQuery(fd: number, what: number): number;
  nsQueryVia(fd: number, path: number, depth: number, ino: number, what: number): number;
  socketNetns(pid: number, sockfd: number): number;
  nsOwnerFd(fd: number): number;
  pidfdIno(pid: number): number;
  execMonitor(pid: number, path: string, forward: boolean, trace: boolean, words: string): number;
  cgroupDevices(dirfd: number, program: Buffer): number;
  blockMonitorSignals(forward: boolean): void;
}

let binding: Binding | undefined;

const BUILD = join(__dirname, '..', 'build');
export const LIBRARY_PATH = join(BUILD, 'libtsns.so');
export const MONITOR_PATH = join(BUILD, 'tsns-monitor');
export const SECCOMP_LIBRARY_PATH = join(BUILD, 'libtsns-seccomp.so');
/** tsns-oci's helper, which holds a container from create to start (native/oci-init.c). */
export const OCI_INIT_PATH = join(BUILD, 'tsns-oci-init');

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
    dieWithParent: (ppid) => call('tsns_die_with_parent', T.Void, [T.I32], [ppid]),
    reclaimTty: () => call('tsns_reclaim_tty', T.Void, [], []),
    nsQuery: (fd, what) => call('tsns_ns_query', T.I64, [T.I32, T.I32], [fd, what]),
    nsQueryVia: (fd, path, depth, ino, what) =>
      call('tsns_ns_query_via', T.I64, [T.I32, T.I32, T.I32, T.I64, T.I32], [fd, path, depth, ino, what]),
    socketNetns: (pid, sockfd) => call('tsns_socket_netns', T.I64, [T.I32, T.I32], [pid, sockfd]),
    nsOwnerFd: (fd) => call('tsns_ns_owner_fd', T.I64, [T.I32], [fd]),
    pidfdIno: (pid) => call('tsns_pidfd_ino', T.I64, [T.I32], [pid]),
    blockMonitorSignals: (forward) => call('tsns_block_monitor_signals', T.Void, [T.I32], [forward ? 1 : 0]),
    execMonitor: (pid, path, forward, trace, words) =>
      call('tsns_exec_monitor', T.I32, [T.I32, T.String, T.I32, T.I32, T.String], [pid, path, forward ? 1 : 0, trace ? 1 : 0, words]),
    cgroupDevices: (dirfd, program) => call('tsns_cgroup_devices', T.I32, [T.I32, bytes(program), T.I32], [dirfd, program, program.length]),
  };
  return binding;
}

/** native/seccomp/compile.c: libseccomp behind four calls (src/seccomp/compile.ts says what they carry). */
export interface SeccompCompiler {
  query(what: number, arg: number): number;
  arch(name: string): number;
  resolve(desc: Buffer, out: Buffer): number;
  compile(desc: Buffer, out: Buffer): number;
}

let seccompBinding: SeccompCompiler | undefined;

/**
 * The seccomp profile compiler, opened on first use only: a run without a
 * profile loads neither it nor libseccomp.
 */
export function seccompCompiler(): SeccompCompiler {
  if (seccompBinding) return seccompBinding;
  const ffi = ffiBinding();
  try {
    ffi.open({ library: 'tsns-seccomp', path: SECCOMP_LIBRARY_PATH });
  } catch (e) {
    const missing = !existsSync(SECCOMP_LIBRARY_PATH);
    throw new TsnsError(missing
      ? 'seccomp profiles need libseccomp, and tsns was built without it'
      : `cannot load ${SECCOMP_LIBRARY_PATH}: ${(e as Error).message}`, {
      stage: 'native',
      hint: missing
        ? 'install libseccomp\'s headers (Debian/Ubuntu: apt-get install libseccomp-dev), then npm run build:native'
        : 'install libseccomp (Debian/Ubuntu: apt-get install libseccomp2), or rebuild with npm run build:native',
    });
  }
  const { DataType: T } = ffi;
  const call = <R>(funcName: string, retType: number, paramsType: unknown[], paramsValue: unknown[]): R =>
    ffi.load({ library: 'tsns-seccomp', funcName, retType, paramsType, paramsValue, freeResultMemory: false } as never) as R;
  const arrayTag = (ffi as unknown as { FFITypeTag: { Array?: number } }).FFITypeTag.Array ?? 997;
  const bytes = (buf: Buffer) => ({ ffiTypeTag: arrayTag, type: T.U8Array, length: buf.length });
  seccompBinding = {
    query: (what, arg) => call('tsns_seccomp_query', T.I64, [T.I32, T.I64], [what, arg]),
    arch: (name) => call('tsns_seccomp_arch', T.I64, [T.String], [name]),
    // Both write their answer into `out` in place, as waitAll does.
    resolve: (desc, out) => call('tsns_seccomp_resolve', T.I32, [bytes(desc), T.I32, bytes(out), T.I32], [desc, desc.length, out, out.length]),
    compile: (desc, out) => call('tsns_seccomp_compile', T.I64, [bytes(desc), T.I32, bytes(out), T.I32], [desc, desc.length, out, out.length]),
  };
  return seccompBinding;
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
export function execMonitor(pid: number, forward: boolean, trace: boolean, words: readonly string[] = []): number {
  return load().execMonitor(pid, MONITOR_PATH, forward, trace, words.join('\n'));
}

/** Attach a cgroup v2 device program (eBPF instructions) to the cgroup directory open on `dirfd`: 0 or -errno. */
export function cgroupDevices(dirfd: number, program: Buffer): number {
  return load().cgroupDevices(dirfd, program);
}

/** Clone and exec a spec (encodeSpec()); the pid on success, else a failure for decodeFailure(). */
export function spawn(spec: Buffer): number {
  return load().spawn(spec);
}

/**
 * Non-blocking, for many pids in one call: for each, 0 while running, else
 * the wait word (decodeWaitStatus()) or -errno.
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
  return decodePipe(r);
}

/** What nsQuery() asks of an open namespace file. */
export type NsQuery = 'type' | 'parent' | 'owner' | 'ownerUid';

const QUERY: Record<NsQuery, number> = { type: NS_QUERY.TYPE, parent: NS_QUERY.PARENT, owner: NS_QUERY.OWNER, ownerUid: NS_QUERY.OWNER_UID };

/** What an open namespace file is; a negative errno when the kernel cannot say (ENOTTY: not a namespace). */
export function nsQuery(fd: number, what: NsQuery): number {
  return load().nsQuery(fd, QUERY[what]);
}

/**
 * The network namespace of socket `sockfd` of process `pid` (nsenter -N), as
 * an fd of ours; else a failure for decodeFailure() (stage target,
 * net-socket or socket-netns).
 */
export function socketNetns(pid: number, sockfd: number): number {
  return load().socketNetns(pid, sockfd);
}

/** The user namespace owning the namespace of `fd` (a user namespace's parent), as an fd of ours; or -errno. */
export function nsOwnerFd(fd: number): number {
  return load().nsOwnerFd(fd);
}

/** The inode of a pidfd of `pid` (what getino(1) prints); -errno when there is none. */
export function pidfdIno(pid: number): number {
  return load().pidfdIno(pid);
}

/** A relation between namespaces that the nsfs ioctls follow. */
export type NsRelation = 'parent' | 'owner';

/**
 * nsQuery() of the namespace `route` leads to from `fd` (its parent, its
 * owner's parent ...), which must have inode `ino`: -ESTALE otherwise.
 */
export function nsQueryVia(fd: number, route: readonly NsRelation[], ino: number, what: NsQuery): number {
  const path = route.reduce((bits, r, i) => bits | (r === 'owner' ? 1 << i : 0), 0);
  return load().nsQueryVia(fd, path, route.length, ino, QUERY[what]);
}

/**
 * The id this process's network namespace knows the network namespace of
 * `fd` by (rtnetlink RTM_GETNSID, as lsns asks): a number, 'unassigned', or
 * null when the kernel cannot say.
 */
export function netnsid(fd: number): number | 'unassigned' | null {
  const r = load().nsQuery(fd, NS_QUERY.NETNSID);
  return r > 0 ? r - 1 : r === 0 ? 'unassigned' : null;
}

/** After a command that took the terminal's foreground (a shell in a pid namespace). */
/** bwrap's --die-with-parent for this process: SIGKILL when the process that started it (ppid) dies, now if it has. */
export function dieWithParent(ppid: number): void {
  load().dieWithParent(ppid);
}

export function reclaimTty(): void {
  load().reclaimTty();
}

/** Die of `signal` as native/end.c has a process die of a command's signal; returns only if it could not. */
export function die(signal: number): void {
  load().die(signal);
}
