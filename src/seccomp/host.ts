/**
 * What a seccomp profile needs of the machine, for a plan to read through
 * its context: the compiler (opened only when a profile is used), profile
 * files, the architecture, the kernel, the bounding set, TSNS_DEBUG.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { systemError } from '../errors';
import { seccompCompiler, type SeccompCompiler } from '../native';

export interface SeccompContext {
  compiler(): SeccompCompiler;
  /** a profile file's text; throws TsnsError */
  readFile(path: string): string;
  /** Node's process.arch */
  arch: string;
  /** uname's release */
  kernel: string;
  /** this process's capability bounding set */
  bounding(): bigint;
  /** a TSNS_DEBUG line */
  debug(line: string): void;
}

/** CapBnd from /proc/self/status; every capability where it cannot be read. */
function boundingSet(): bigint {
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return BigInt(`0x${m[1]}`);
  } catch {
    // no /proc
  }
  return (1n << 64n) - 1n;
}

export function systemSeccompContext(): SeccompContext {
  return {
    compiler: seccompCompiler,
    readFile: (path) => {
      try {
        return readFileSync(path, 'utf8');
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        throw systemError(`cannot read the seccomp profile ${path}`, -(err.errno ?? 0), 'option',
          err.code === 'ENOENT' ? "give a profile file (JSON), or 'default' for the built-in one" : undefined);
      }
    },
    arch: process.arch,
    kernel: release(),
    bounding: boundingSet,
    debug: (line) => {
      if (process.env.TSNS_DEBUG) process.stderr.write(`tsns: ${line}\n`);
    },
  };
}
