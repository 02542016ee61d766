import { execa, type Options } from 'execa';
import { readFileSync, readlinkSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeEach, inject } from 'vitest';

interface ToolTable {
  describeTools(names: readonly string[]): string;
  packagesFor(names: readonly string[]): string[];
}
// The one list of tools and their Debian packages, which `npm test` installs from.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const TOOL_TABLE = require('../../scripts/test-setup.cjs') as ToolTable;

export const ROOT = resolve(__dirname, '..', '..');
export const IS_ROOT = process.geteuid!() === 0;
export const CI = process.env.CI === 'true';
/** The unprivileged user that root's runs become. */
export const USER = { uid: 65534, gid: 65534 };

export type Mode = 'root' | 'user';

export function callerIds(mode: Mode): { uid: number; gid: number } {
  if (mode === 'root') return { uid: 0, gid: 0 };
  return IS_ROOT ? USER : { uid: process.geteuid!(), gid: process.getegid!() };
}

export interface Run {
  stdout: string;
  stderr: string;
  exitCode: number | undefined;
  signal: string | undefined;
}

async function settle(p: ReturnType<typeof execa>): Promise<Run> {
  const r = await p;
  return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode, signal: r.signal };
}

/**
 * Run bin/tsns.js as a real process, as root or unprivileged. With
 * `onlyFds` N, fds above N that the test runner itself was handed are
 * closed first, so that tsns inherits exactly 0..N.
 */
export function tsns(mode: Mode, args: readonly string[], opts: Options = {}, onlyFds?: number): Promise<Run> {
  const quiet = opts.stdio === undefined && opts.input === undefined ? { stdin: 'ignore' as const } : {};
  const options: Options = { reject: false, cwd: '/', timeout: 20_000, ...quiet, ...opts };
  const bin = mode === 'user' && IS_ROOT ? join(inject('stagedRoot'), 'bin', 'tsns.js') : join(ROOT, 'bin', 'tsns.js');
  const close = onlyFds === undefined ? [] : ['bash', '-c',
    `for f in /proc/$$/fd/*; do n=\${f##*/}; [ "$n" -gt ${onlyFds} ] && eval "exec $n>&-"; done 2>/dev/null; exec "$0" "$@"`];
  const command = [...close, process.execPath, bin, ...args];
  if (mode === 'user' && IS_ROOT) {
    return settle(execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...command], options));
  }
  return settle(execa(command[0]!, command.slice(1), options));
}

/** For unprivileged runs, the namespaces only a user namespace lets them create. */
export function asUser(mode: Mode, args: readonly string[]): string[] {
  return mode === 'user' ? ['-r', ...args] : [...args];
}

export const NS_FILES = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts'] as const;

export function hostNamespaces(): Record<string, string> {
  return Object.fromEntries(NS_FILES.map((n) => [n, readlinkSync(`/proc/self/ns/${n}`)]));
}

/** Parse `name link` lines printed by NS_SCRIPT. */
export function parseNamespaces(stdout: string): Record<string, string> {
  return Object.fromEntries(stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
}
export const NS_SCRIPT = `for n in ${NS_FILES.join(' ')}; do echo "$n $(readlink /proc/self/ns/$n)"; done`;

export function hasCommand(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, name)));
}

/**
 * A test may skip only when the machine lacks what it needs, and must say so;
 * under CI=true a missing core feature fails instead.
 */
export function requireFeature(ok: boolean, what: string): boolean {
  if (ok) return true;
  if (CI) throw new Error(`required on CI but missing: ${what}`);
  console.warn(`skipping: ${what}`);
  return false;
}

export function unprivilegedUserns(): boolean {
  const max = Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8'));
  const clone = existsSync('/proc/sys/kernel/unprivileged_userns_clone')
    ? readFileSync('/proc/sys/kernel/unprivileged_userns_clone', 'utf8').trim() === '1'
    : true;
  return max > 0 && clone;
}

export function mountinfo(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').sort();
}

/** Root runs both; anyone else can only test as themselves. */
export const MODES: Mode[] = IS_ROOT
  ? ['root', ...(requireFeature(unprivilegedUserns(), 'unprivileged user namespaces (sysctl user.max_user_namespaces)') && asNobody() ? ['user' as const] : [])]
  : ['user'];

/** Root's runs as user 65534 go through setpriv. */
function asNobody(): boolean {
  const what = missingTools(['setpriv']);
  if (what !== null) console.warn(`skipping the runs as user 65534: they ${what}`);
  return what === null;
}

/**
 * System tools the tests of this file (or of this describe block) drive:
 * where one is missing they are skipped with a line naming its Debian
 * package, and the others still run; under CI=true a missing tool fails.
 * Call it where tests are declared, not in a hook; false tells a beforeAll
 * that its set-up cannot run.
 */
export function requireCommands(...names: string[]): boolean {
  const what = missingTools(names);
  if (what === null) return true;
  console.warn(`skipping the tests here: they ${what}`);
  beforeEach((ctx) => ctx.skip());
  return false;
}

/** The same inside one test: skips it (the rest of the file still runs) unless every tool is there. */
export function skipWithout(ctx: { skip(note?: string): void }, ...names: string[]): void {
  const what = missingTools(names);
  if (what === null) return;
  console.warn(`skipping a test: it ${what}`);
  ctx.skip();
}

/** null when every tool is on PATH; else what is missing and its packages. Throws under CI=true. */
function missingTools(names: readonly string[]): string | null {
  const missing = names.filter((n) => !hasCommand(n));
  if (missing.length === 0) return null;
  const what = `needs ${TOOL_TABLE.describeTools(missing)}: apt-get install ${TOOL_TABLE.packagesFor(missing).join(' ')}`;
  if (CI) throw new Error(`required on CI but missing: ${what}`);
  return what;
}

/**
 * A compiled seccomp program (classic BPF, as seccomp_export_bpf() writes it)
 * that makes mkdir fail with EPERM and allows everything else; it kills a
 * process of another architecture. Written out here: the tests need no
 * libseccomp.
 */
export function denyMkdirFilter(): Buffer {
  const arch = process.arch === 'arm64' ? { audit: 0xc00000b7, mkdir: [34] } : { audit: 0xc000003e, mkdir: [83, 258] };
  const LD_ABS_W = 0x20;
  const JEQ_K = 0x15;
  const RET_K = 0x06;
  const ALLOW = 0x7fff0000;
  const ERRNO_EPERM = 0x00050000 | 1;
  const KILL_PROCESS = 0x80000000;
  // struct seccomp_data: nr at offset 0, arch at 4.
  const n = arch.mkdir.length;
  const insns: [number, number, number, number][] = [
    [LD_ABS_W, 0, 0, 4],
    [JEQ_K, 1, 0, arch.audit],
    [RET_K, 0, 0, KILL_PROCESS],
    [LD_ABS_W, 0, 0, 0],
    ...arch.mkdir.map((nr, i): [number, number, number, number] => [JEQ_K, n - i, 0, nr]),
    [RET_K, 0, 0, ALLOW],
    [RET_K, 0, 0, ERRNO_EPERM],
  ];
  return bpf(insns);
}

/** A seccomp program that allows everything. */
export function allowAllFilter(): Buffer {
  return bpf([[0x06, 0, 0, 0x7fff0000]]);
}

/** struct sock_filter, in the machine's byte order (little-endian on x86_64 and aarch64). */
function bpf(insns: readonly [number, number, number, number][]): Buffer {
  const out = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, jt, jf, k], i) => {
    out.writeUInt16LE(code, i * 8);
    out.writeUInt8(jt, i * 8 + 2);
    out.writeUInt8(jf, i * 8 + 3);
    out.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return out;
}
