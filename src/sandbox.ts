/**
 * The sandbox filesystem (bwrap's operations) as data: what the options mean,
 * how they read on the command line, and the --sandbox profile (src/wire.ts
 * encodes them for native/sandbox.c).
 */
import { isAbsolute, resolve } from 'node:path';
import { TsnsError } from './errors';
import { OP_SEP, OP_LIST_SEP } from './wire';

export type SandboxOp =
  | { op: 'bind' | 'ro-bind' | 'dev-bind'; src: string; dest?: string; try?: boolean }
  /** bwrap's --bind-fd/--ro-bind-fd: the directory (or O_PATH file) open on fd */
  | { op: 'bind-fd' | 'ro-bind-fd'; fd: number; dest: string }
  /** bwrap's --bind-data/--ro-bind-data: what fd holds, in a file of its own bound on dest (mode 0600 unless perms) */
  | { op: 'bind-data' | 'ro-bind-data'; fd: number; dest: string; perms?: number }
  | { op: 'tmpfs'; dest: string; size?: number | bigint; perms?: number }
  | { op: 'dir'; dest: string; perms?: number }
  | { op: 'symlink'; target: string; dest: string }
  /** a copy of a file, or of what an open fd holds (mode 0666 unless perms, as bwrap) */
  | { op: 'file'; src: string | number; dest: string; perms?: number }
  | { op: 'chmod'; perms: number; dest: string }
  | { op: 'remount-ro'; dest: string }
  /** a new proc; without a new pid namespace the host's /proc bound there instead, as bwrap does */
  | { op: 'proc'; dest: string }
  | { op: 'dev'; dest: string }
  | { op: 'mqueue'; dest: string }
  /**
   * An overlay of `lowers`, the first the top one (overlayfs's order; bwrap's
   * --overlay-src options come bottom first, and the CLI turns them round). 'overlay' writes to `upper` with `work` as its work directory
   * (without them, as 'tmp-overlay'); 'tmp-overlay' writes to a tmpfs that
   * vanishes with the sandbox; 'ro-overlay' is read-only and needs two lowers.
   */
  | { op: 'overlay' | 'tmp-overlay' | 'ro-overlay'; lowers: readonly string[]; dest: string; upper?: string; work?: string };

function opError(message: string): TsnsError {
  return new TsnsError(message, { stage: 'plan' });
}

/** The option as a user would write it (bwrap's forms), for messages and --dry-run. */
export function describeOp(o: SandboxOp): string {
  switch (o.op) {
    case 'bind': case 'ro-bind': case 'dev-bind':
      return `--${o.op}${o.try ? '-try' : ''} ${o.src} ${o.dest ?? o.src}`;
    case 'bind-fd': case 'ro-bind-fd': case 'bind-data': case 'ro-bind-data':
      return `--${o.op} ${o.fd} ${o.dest}`;
    case 'symlink': return `--symlink ${o.target} ${o.dest}`;
    case 'file': return `--file ${o.src} ${o.dest}`;
    case 'chmod': return `--chmod ${o.perms.toString(8).padStart(4, '0')} ${o.dest}`;
    case 'overlay': case 'tmp-overlay': case 'ro-overlay': {
      const srcs = [...o.lowers].reverse().map((l) => `--overlay-src ${l} `).join('');
      if (o.op === 'overlay' && o.upper !== undefined) return `${srcs}--overlay ${o.upper} ${o.work ?? ''} ${o.dest}`;
      return `${srcs}--${o.op === 'ro-overlay' ? 'ro-overlay' : 'tmp-overlay'} ${o.dest}`;
    }
    case 'tmpfs': return `--tmpfs ${o.dest}${o.size !== undefined ? ` (size ${o.size})` : ''}`;
    default: return `--${o.op} ${o.dest}`;
  }
}

/** Checked and made absolute against `cwd`; what the shim is given. */
export function normalizeOp(o: SandboxOp, cwd: string): SandboxOp {
  const abs = (p: string, what: string) => {
    if (p === '' || p.includes(OP_SEP) || p.includes(OP_LIST_SEP) || p.includes('\0')) throw opError(`${describeOp(o)}: invalid ${what} '${p}'`);
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
    case 'symlink':
      if (o.target === '' || o.target.includes(OP_SEP) || o.target.includes('\0')) throw opError(`${describeOp(o)}: invalid target '${o.target}'`);
      return { ...o, dest: dest(o.dest) };
    case 'file': return { ...o, src: typeof o.src === 'number' ? o.src : abs(o.src, 'source'), dest: dest(o.dest) };
    case 'overlay': case 'tmp-overlay': case 'ro-overlay': {
      const op = o.op === 'overlay' && o.upper === undefined ? 'tmp-overlay' : o.op;
      const need = op === 'ro-overlay' ? 2 : 1;
      if (o.lowers.length < need) throw opError(`${describeOp(o)}: needs at least ${need === 2 ? 'two' : 'one'} --overlay-src`);
      const upper = op === 'overlay' ? { upper: abs(o.upper!, 'upper directory'), work: abs(o.work ?? '', 'work directory') } : {};
      return { op, lowers: o.lowers.map((l) => abs(l, 'lower directory')), dest: dest(o.dest), ...upper };
    }
    default: return { ...o, dest: dest(o.dest) } as SandboxOp;
  }
}

/** The permissions bwrap's --perms and --chmod take: octal, at most 07777. */
export function parseMode(option: string, value: string): number {
  if (!/^[0-7]+$/.test(value) || Number.parseInt(value, 8) > 0o7777) {
    throw new TsnsError(`--${option} needs octal permissions up to 07777, such as 0755, not '${value}'`,
      { stage: 'option', hint: `give the mode in octal digits, as chmod(1) takes it: --${option} 0755${option === 'chmod' ? ' PATH' : ''}` });
  }
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
