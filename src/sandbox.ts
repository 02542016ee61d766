/**
 * The sandbox filesystem (bwrap's operations) as data: what the options mean,
 * how they read on the command line, and the --sandbox profile (src/wire.ts
 * encodes them for native/sandbox.c).
 */
import { isAbsolute, resolve } from 'node:path';
import { TsnsError } from './errors';
import { OP_SEP } from './wire';

export type SandboxOp =
  | { op: 'bind' | 'ro-bind' | 'dev-bind'; src: string; dest?: string; try?: boolean }
  | { op: 'tmpfs'; dest: string; size?: number; perms?: number }
  | { op: 'dir'; dest: string; perms?: number }
  | { op: 'symlink'; target: string; dest: string }
  | { op: 'file'; src: string | number; dest: string; perms?: number }
  | { op: 'chmod'; perms: number; dest: string }
  | { op: 'remount-ro'; dest: string }
  | { op: 'proc'; dest: string }
  | { op: 'dev'; dest: string }
  | { op: 'overlay'; lowers: readonly string[]; dest: string };

function opError(message: string): TsnsError {
  return new TsnsError(message, { stage: 'plan' });
}

/** The option as a user would write it, for messages and --dry-run. */
export function describeOp(o: SandboxOp): string {
  switch (o.op) {
    case 'bind': case 'ro-bind': case 'dev-bind':
      return `--${o.op}${o.try ? '-try' : ''} ${o.src}${o.dest && o.dest !== o.src ? `:${o.dest}` : ''}`;
    case 'symlink': return `--symlink ${o.target}:${o.dest}`;
    case 'file': return `--file ${o.src}:${o.dest}`;
    case 'chmod': return `--chmod ${o.perms.toString(8)}:${o.dest}`;
    case 'overlay': return `--overlay ${o.lowers.join(',')}:${o.dest}`;
    case 'tmpfs': return `--tmpfs ${o.dest}${o.size !== undefined ? ` (size ${o.size})` : ''}`;
    default: return `--${o.op} ${o.dest}`;
  }
}

/** Checked and made absolute against `cwd`; what the shim is given. */
export function normalizeOp(o: SandboxOp, cwd: string): SandboxOp {
  const abs = (p: string, what: string) => {
    if (p === '' || p.includes(OP_SEP) || p.includes('\0')) throw opError(`${describeOp(o)}: invalid ${what} '${p}'`);
    return resolve(cwd, p);
  };
  const dest = (p: string) => {
    if (!isAbsolute(p)) throw opError(`${describeOp(o)}: the destination must be an absolute path inside the sandbox`);
    return abs(p, 'destination');
  };
  switch (o.op) {
    case 'bind': case 'ro-bind': case 'dev-bind': {
      const src = abs(o.src, 'source');
      return { ...o, src, dest: dest(o.dest ?? src) };
    }
    case 'symlink': return { ...o, dest: dest(o.dest) };
    case 'file': return { ...o, src: typeof o.src === 'number' ? o.src : abs(o.src, 'source'), dest: dest(o.dest) };
    case 'overlay': return { ...o, lowers: o.lowers.map((l) => abs(l, 'lower directory')), dest: dest(o.dest) };
    default: return { ...o, dest: dest(o.dest) } as SandboxOp;
  }
}

/** `SRC[:DEST]` and its kin, as the command line writes them. */
export function splitPair(option: string, value: string, needBoth: boolean): [string, string | undefined] {
  const i = value.lastIndexOf(':');
  if (i < 0) {
    if (needBoth) throw new TsnsError(`--${option} needs two paths, ${option === 'symlink' ? 'TARGET:DEST' : 'SRC:DEST'}`, { stage: 'option' });
    return [value, undefined];
  }
  return [value.slice(0, i), value.slice(i + 1)];
}

export function parseMode(option: string, value: string): number {
  if (!/^[0-7]{1,4}$/.test(value)) throw new TsnsError(`--${option} needs octal permissions such as 0755, not '${value}'`, { stage: 'option' });
  return Number.parseInt(value, 8);
}

/** What a host path is, for building the --sandbox profile. */
export type PathKind = { kind: 'dir' | 'file' } | { kind: 'symlink'; target: string } | null;

/**
 * The ready profile: system directories read-only (symlinked as the host has
 * them, for merged-/usr systems), fresh /tmp and $HOME, a minimal /dev, a new
 * /proc.
 */
export function sandboxProfile(home: string | undefined, lstat: (path: string) => PathKind): SandboxOp[] {
  const ops: SandboxOp[] = [];
  for (const dir of ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc']) {
    const k = lstat(dir);
    if (!k) continue;
    if (k.kind === 'symlink') ops.push({ op: 'symlink', target: k.target, dest: dir });
    else ops.push({ op: 'ro-bind', src: dir });
  }
  ops.push({ op: 'tmpfs', dest: '/tmp' });
  if (home && home !== '/' && !home.startsWith('/tmp/')) ops.push({ op: 'tmpfs', dest: home });
  ops.push({ op: 'dev', dest: '/dev' }, { op: 'proc', dest: '/proc' });
  return ops;
}
