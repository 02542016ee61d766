/**
 * Reading and writing cgroup files. A control file is opened without
 * O_CREAT: on cgroupfs that would turn "no such file" into "permission
 * denied". Errors become tsns's one-line form with the errno's name.
 */
import { closeSync, openSync, readdirSync, readFileSync, rmdirSync, constants, writeSync } from 'node:fs';
import { systemError, TsnsError } from '../errors';

export function errnoOf(e: unknown): { code: string; errno: number } {
  const err = e as NodeJS.ErrnoException;
  return { code: err.code ?? 'EIO', errno: Math.abs(err.errno ?? 5) };
}

/** A failure of a cgroup operation, as tsns reports a system call's. */
export function cgroupError(what: string, e: unknown, hint?: string): TsnsError {
  if (e instanceof TsnsError) return e;
  return systemError(what, errnoOf(e).errno, 'cgroup', hint);
}

export function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** A control file's value, written in one write(2) as the kernel wants it. */
export function writeValue(path: string, value: string): void {
  const fd = openSync(path, constants.O_WRONLY);
  try {
    writeSync(fd, value);
  } finally {
    closeSync(fd);
  }
}

/** `key value` lines (memory.stat, memory.events, cpu.stat) as numbers. */
export function readKeyed(path: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (readText(path) ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** A file with one number; `max` (v2's unlimited) and a missing file are null. */
export function readNumber(path: string): number | null {
  const t = readText(path)?.trim();
  return t === undefined || t === '' || !/^-?\d+$/.test(t) ? null : Number(t);
}

export function pidsIn(dir: string): number[] {
  return (readText(`${dir}/cgroup.procs`) ?? '').split('\n').filter(Boolean).map(Number);
}

/** The sub-cgroups of a cgroup directory. */
export function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `${dir}/${e.name}`);
  } catch {
    return [];
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));
/** Wait in this thread, as the kernel finishes a freeze or a process's exit. */
export function sleepMs(ms: number): void {
  Atomics.wait(pause, 0, 0, ms);
}

/** rmdir, retried while the last processes finish dying (EBUSY), as runc does; false if it stays busy. */
export function removeDir(dir: string, tries = 8): boolean {
  let wait = 10;
  for (let i = 0; i < tries; i++) {
    try {
      rmdirSync(dir);
      return true;
    } catch (e) {
      const { code } = errnoOf(e);
      if (code === 'ENOENT') return true;
      if (code !== 'EBUSY') throw e;
    }
    sleepMs(wait);
    wait = Math.min(wait * 2, 160);
  }
  return false;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoOf(e).code === 'EPERM';
  }
}

/** The oom_kill count of a v1 memory.oom_control or a v2 memory.events; null if unreadable. */
export function oomKillCount(file: string): number | null {
  return readKeyed(file).oom_kill ?? null;
}
