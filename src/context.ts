/**
 * Who is asking, and how names resolve: what makes a plan depend on the
 * machine. Plans take it as a value, so they stay pure and testable.
 */
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { cgroups } from './cgroup/lazy';
import type { CgroupPlanner } from './cgroup/run-plan';
import { systemError } from './errors';
import { parseIdMap, type IdMapEntry } from './idmap';
import type { PathKind } from './sandbox';
import { systemSeccompContext, type SeccompContext } from './seccomp/host';
import { signalNumber } from './signals';
import { lookupGroup, lookupUser, subordinateIds } from './users';

export interface PlanContext {
  uid: number;
  gid: number;
  /** can write arbitrary id maps (root) */
  privileged: boolean;
  env: Readonly<Record<string, string | undefined>>;
  lookupUser(name: string): number | undefined;
  lookupGroup(name: string): number | undefined;
  /** the caller's ranges in /etc/subuid or /etc/subgid */
  subordinateIds(kind: 'uid' | 'gid'): { start: number; count: number }[];
  /** this process's own /proc/self/uid_map or gid_map (--map-users=all); null when unreadable */
  ownIdMap?(kind: 'uid' | 'gid'): IdMapEntry[] | null;
  signalNumber(name: string): number | undefined;
  /** relative sandbox paths are taken from here */
  cwd: string;
  lstat(path: string): PathKind;
  /** everything an open fd still holds (a seccomp program); throws TsnsError */
  readFd(fd: number): Uint8Array;
  /** what a seccomp profile needs of the machine; the system's when absent */
  seccomp?: SeccompContext;
  /** plans a cgroup, reading the machine's hierarchies only when a plan asks for one */
  cgroups?: CgroupPlanner;
  /** bwrap's -try probes: whether this kernel lets a new namespace of the kind be made; true when absent */
  canUnshare?(kind: 'user' | 'cgroup'): boolean;
}

/** Everything left to read on an fd the caller opened for tsns (`what` and `example` name it in an error). */
export function readFd(fd: number, what: string, example: string): Buffer {
  try {
    return readFileSync(fd);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw systemError(`cannot read ${what} from fd ${fd}`, -(err.errno ?? 0), 'option',
      err.code === 'EBADF' ? `open the file on that fd for tsns, e.g. ${fd}<${example}` : undefined);
  }
}

function lstat(path: string): PathKind {
  try {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(path) };
    return { kind: st.isDirectory() ? 'dir' : 'file' };
  } catch {
    return null;
  }
}

/** The environment a command gets, as far as a plan reads it (copied only to overlay `env`). */
export function commandEnv(opts: { clearEnv?: boolean; env?: Readonly<Record<string, string | undefined>> }): Readonly<Record<string, string | undefined>> {
  return opts.clearEnv ? { ...opts.env } : opts.env ? { ...process.env, ...opts.env } : process.env;
}

function ownIdMap(kind: 'uid' | 'gid'): IdMapEntry[] | null {
  try {
    return parseIdMap(readFileSync(`/proc/self/${kind}_map`, 'utf8'));
  } catch {
    return null;
  }
}

/** The caller as the kernel will judge it. */
export function systemContext(env: Readonly<Record<string, string | undefined>> = process.env): PlanContext {
  const uid = process.geteuid!();
  const gid = process.getegid!();
  return {
    uid,
    gid,
    privileged: uid === 0,
    env,
    lookupUser,
    lookupGroup,
    subordinateIds: (kind) => subordinateIds(kind, uid),
    ownIdMap,
    signalNumber,
    cwd: process.cwd(),
    readFd: (fd) => readFd(fd, 'a seccomp program', 'filter.bpf'),
    lstat,
    seccomp: systemSeccompContext(),
    cgroups: { planRun: (o) => cgroups().systemCgroupPlanner().planRun(o) },
    canUnshare,
  };
}

const readText = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

/** bwrap's probes for --unshare-user-try and --unshare-cgroup-try. */
function canUnshare(kind: 'user' | 'cgroup'): boolean {
  if (kind === 'cgroup') return lstat('/proc/self/ns/cgroup') !== null;
  if (lstat('/proc/self/ns/user') === null) return false;
  // RHEL 7's switch, and a limit of none.
  return !readText('/sys/module/user_namespace/parameters/enable')?.startsWith('N') && readText('/proc/sys/user/max_user_namespaces') !== '0\n';
}
