/**
 * The only importer of ffi-rs: binds native/tsns.c (built to build/libtsns.so)
 * and encodes what the shim reads.
 */
import { join } from 'node:path';
import { TsnsError } from './errors';

/** Everything the child needs, flattened for the shim. */
export interface SpawnSpec {
  flags: number;
  uidMap: string | null;
  gidMap: string | null;
  setgroups: string | null;
  hostname: string | null;
  domainname: string | null;
  procDir: string | null;
  /** MS_* bits applied recursively to /, 0 to leave it */
  propagation: number;
  file: string;
  /** the PATH the command is searched in */
  searchPath: string;
  argv: readonly string[];
  env: readonly string[];
}

interface Binding {
  spawn(buf: Buffer): number;
  wait(pid: number): number;
  die(sig: number): void;
}

let binding: Binding | undefined;

export const LIBRARY_PATH = join(__dirname, '..', 'build', 'libtsns.so');

function load(): Binding {
  if (binding) return binding;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ffi = require('ffi-rs') as typeof import('ffi-rs');
  try {
    ffi.open({ library: 'tsns', path: LIBRARY_PATH });
  } catch (e) {
    throw new TsnsError(`cannot load the native shim ${LIBRARY_PATH}: ${(e as Error).message}`, {
      stage: 'native',
      hint: 'build it with `npm run build:native` (needs a C compiler, cc)',
    });
  }
  const { DataType } = ffi;
  const fns = ffi.define({
    tsns_spawn: { library: 'tsns', retType: DataType.I64, paramsType: [DataType.U8Array, DataType.I32] },
    tsns_wait: { library: 'tsns', retType: DataType.I32, paramsType: [DataType.I32] },
    tsns_die: { library: 'tsns', retType: DataType.Void, paramsType: [DataType.I32] },
  });
  binding = {
    spawn: (buf) => fns.tsns_spawn([buf, buf.length]),
    wait: (pid) => fns.tsns_wait([pid]),
    die: (sig) => fns.tsns_die([sig]),
  };
  return binding;
}

function entry(tag: string, value: string): string {
  if (value.includes('\0')) {
    throw new TsnsError(`an argument or environment entry contains a NUL byte: ${JSON.stringify(value)}`, { stage: 'spec' });
  }
  return `${tag}${value}\0`;
}

/** Tag-per-entry wire format; parse_spec() in native/tsns.c is its reader. */
export function encodeSpec(s: SpawnSpec): Buffer {
  let out = entry('f', String(s.flags)) + entry('P', String(s.propagation)) + entry('x', s.file) + entry('S', s.searchPath);
  const optional: [string, string | null][] = [
    ['u', s.uidMap], ['g', s.gidMap], ['s', s.setgroups], ['h', s.hostname], ['d', s.domainname], ['p', s.procDir],
  ];
  for (const [tag, value] of optional) if (value !== null) out += entry(tag, value);
  for (const a of s.argv) out += entry('a', a);
  for (const e of s.env) out += entry('e', e);
  return Buffer.from(out);
}

/** Clone and exec; the pid on success, else -(stage << 16 | errno). */
export function spawn(spec: SpawnSpec): number {
  return load().spawn(encodeSpec(spec));
}

/** Non-blocking: 0 while running, else the encoded status (see exit-status.ts). */
export function wait(pid: number): number {
  return load().wait(pid);
}

/** Die of `signal` with its default action; exits 128+signal if that did not kill us. */
export function die(signal: number): never {
  load().die(signal);
  process.exit(128 + signal);
}
