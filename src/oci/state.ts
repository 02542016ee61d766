/**
 * A container's state under --root: ROOT/ID/state.json (written to a
 * temporary file and renamed, so a reader sees the old or the new one),
 * ROOT/ID/exec.fifo while it is created, and ROOT/ID/lock while a call
 * changes it, so that two calls on one container never interleave.
 * A stopped container is told by the start time of its pid
 * (/proc/PID/stat), never by the pid alone, which may have been reused.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemError, TsnsError } from '../errors';
import type { Cgroup } from '../cgroup/apply';
import type { OciHook, HookName } from './config';

export const OCI_VERSION = '1.2.0';

export interface ContainerState {
  ociVersion: string;
  id: string;
  /** the container's process, seen from the host */
  pid: number;
  /** its start time in clock ticks after boot (/proc/PID/stat field 22) */
  startTime: number;
  bundle: string;
  rootfs: string;
  created: string;
  annotations: Record<string, string>;
  hooks: Partial<Record<HookName, OciHook[]>>;
  cgroup: Cgroup | null;
  /** the cgroup was there before create: delete removes it all the same, as runc does */
  cgroupFound: boolean;
  rootless: boolean;
  /** the config's process user, for exec's default */
  user: { uid: number; gid: number };
  /** the container's environment and cwd, for exec */
  env: string[];
  cwd: string;
  /** created with --no-new-keyring: exec joins no session keyring either (absent in an older state: false) */
  noNewKeyring?: boolean;
}

export type Status = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number) => Atomics.wait(sleeper, 0, 0, ms);

export function defaultRoot(): string {
  if (process.geteuid?.() === 0) return '/run/tsns-oci';
  const xdg = process.env.XDG_RUNTIME_DIR;
  return xdg ? join(xdg, 'tsns-oci') : `/tmp/tsns-oci-${process.geteuid?.()}`;
}

export const dirOf = (root: string, id: string) => join(root, id);
export const fifoOf = (root: string, id: string) => join(root, id, 'exec.fifo');

function fsError(what: string, e: unknown, hint?: string): TsnsError {
  const err = e as NodeJS.ErrnoException;
  return systemError(what, err.errno ? -err.errno : 5, 'plan', hint);
}

/**
 * runc exits 1 for a container that does not exist (scripts and engines
 * test `state ID` for it), where tsns's own failures exit 125: this one
 * carries runc's status.
 */
export function notExist(id: string): TsnsError {
  return Object.assign(new TsnsError(`container ${id} does not exist`, { stage: 'plan', hint: "see 'tsns-oci list'" }), { ociStatus: 1 });
}

/** The status tsns-oci exits with for this failure: runc's where it has one (notExist), else tsns's. */
export function ociExitStatus(e: TsnsError): number {
  return (e as TsnsError & { ociStatus?: number }).ociStatus ?? e.exitCode;
}

/** ROOT/ID, made for a new container: an existing one is an error. */
export function makeContainerDir(root: string, id: string): string {
  try {
    mkdirSync(root, { recursive: true, mode: 0o711 });
  } catch (e) {
    throw fsError(`cannot make the state directory ${root}`, e, 'pass --root DIR where you may write');
  }
  const dir = dirOf(root, id);
  try {
    mkdirSync(dir, { mode: 0o711 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new TsnsError(`container with id ${id} already exists`, { stage: 'plan', hint: `'tsns-oci delete ${id}' first` });
    throw fsError(`cannot make ${dir}`, e);
  }
  return dir;
}

export function writeState(root: string, s: ContainerState): void {
  const file = join(dirOf(root, s.id), 'state.json');
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(s), { mode: 0o600 });
  renameSync(tmp, file);
}

export function readState(root: string, id: string): ContainerState {
  let text: string;
  try {
    text = readFileSync(join(dirOf(root, id), 'state.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') throw notExist(id);
    throw fsError(`cannot read the state of ${id}`, e);
  }
  return JSON.parse(text) as ContainerState;
}

/** The ids under root that have a state (a container being created has none yet). */
export function listIds(root: string): string[] {
  try {
    return readdirSync(root).filter((id) => existsSync(join(root, id, 'state.json'))).sort();
  } catch {
    return [];
  }
}

export function ownerUid(root: string, id: string): number {
  return statSync(dirOf(root, id)).uid;
}

/** field 3 (state) and field 22 (start time) of /proc/PID/stat; null: no such process. */
export function procStat(pid: number): { state: string; startTime: number } | null {
  if (!(pid > 0)) return null;
  let text: string;
  try {
    // utf8, though comm may be any bytes: only the fields after its ')' are read, and utf8 is
    // readFileSync's native path (latin1's first use costs over a millisecond)
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0]!, startTime: Number(rest[19]) };
}

export function alive(s: Pick<ContainerState, 'pid' | 'startTime'>): boolean {
  const st = procStat(s.pid);
  return st !== null && st.startTime === s.startTime && st.state !== 'Z' && st.state !== 'X';
}

export function statusOf(root: string, s: ContainerState, frozen: () => boolean): Status {
  if (!alive(s)) return 'stopped';
  // As runc: a frozen cgroup is paused, whether or not it was started.
  if (frozen()) return 'paused';
  return existsSync(fifoOf(root, s.id)) ? 'created' : 'running';
}

/**
 * ROOT/ID/lock, made exclusively; a lock whose holder is gone is taken
 * over. Waits up to 10 s for a live holder. Returns its release.
 */
export function acquireLock(root: string, id: string): () => void {
  const lock = join(dirOf(root, id), 'lock');
  for (let i = 0; ; i++) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      writeFileSync(fd, `${process.pid} ${procStat(process.pid)?.startTime ?? 0}`);
      closeSync(fd);
      return () => rmSync(lock, { force: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw notExist(id);
      if (code !== 'EEXIST') throw fsError(`cannot lock ${id}`, e);
      let holder: string[] = [];
      try {
        holder = readFileSync(lock, 'utf8').split(' ');
      } catch {
        continue;
      }
      const st = procStat(Number(holder[0]));
      if (holder.length === 2 && (st === null || st.startTime !== Number(holder[1]))) {
        rmSync(lock, { force: true });
        continue;
      }
      if (i >= 2000) throw new TsnsError(`container ${id} is locked by process ${holder[0]}`, { stage: 'plan', hint: 'another tsns-oci call on it has not ended' });
      sleep(5);
    }
  }
}

export function withLock<T>(root: string, id: string, fn: () => T): T {
  const release = acquireLock(root, id);
  try {
    return fn();
  } finally {
    release();
  }
}

export async function withLockAsync<T>(root: string, id: string, fn: () => Promise<T>): Promise<T> {
  const release = acquireLock(root, id);
  try {
    return await fn();
  } finally {
    release();
  }
}

export function removeContainerDir(root: string, id: string): void {
  rmSync(dirOf(root, id), { recursive: true, force: true });
}

/** runc's created time: RFC 3339 with nanoseconds, trailing zeros dropped. */
export function rfc3339Nano(ms: number, nanos: number): string {
  const iso = isoSeconds(Math.floor(ms / 1000));
  const frac = `${String(ms % 1000).padStart(3, '0')}${String(nanos % 1e6).padStart(6, '0')}`.replace(/0+$/, '');
  return `${iso}${frac ? `.${frac}` : ''}Z`;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/**
 * YYYY-MM-DDTHH:MM:SS in UTC, by arithmetic: a process's first Date
 * initialises the time zone, 1-3 ms of a create.
 */
function isoSeconds(secs: number): string {
  const days = Math.floor(secs / 86400);
  const t = secs - days * 86400;
  // days since 1970-01-01 to a civil date, counted in 400-year eras from 0000-03-01
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return `${String(y).padStart(4, '0')}-${pad2(m)}-${pad2(d)}T${pad2(Math.floor(t / 3600))}:${pad2(Math.floor(t / 60) % 60)}:${pad2(t % 60)}`;
}

export function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** runc's test (userns.RunningInUserNS): root of a user namespace (rootless podman's runtime) is not the host's root. */
export function inUserNamespace(): boolean {
  try {
    return !/^\s*0\s+0\s+4294967295\s*$/.test(readFileSync('/proc/self/uid_map', 'utf8'));
  } catch {
    return false;
  }
}
