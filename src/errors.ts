import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import type { NativeStage } from './wire';

/** Where tsns failed: in the shim (its stages are native/wire.h's), or before or after it. */
export type Stage = NativeStage | 'option' | 'plan' | 'wait' | 'native' | 'cgroup';

export interface TsnsErrorDetails {
  stage: Stage;
  /** errno name, e.g. 'EPERM'; absent for failures that are not system calls */
  errno?: string;
  /** errno number */
  code?: number;
  hint?: string;
}

/** A failure of tsns itself (not the command's own non-zero exit). */
export class TsnsError extends Error {
  readonly stage: Stage;
  readonly errno: string | undefined;
  readonly code: number | undefined;
  readonly hint: string | undefined;

  constructor(message: string, details: TsnsErrorDetails) {
    super(message);
    this.name = 'TsnsError';
    this.stage = details.stage;
    this.errno = details.errno;
    this.code = details.code;
    this.hint = details.hint;
  }

  /**
   * The CLI loads its cgroup code as a bundle of its own (dist/cgroup.cjs),
   * with its own copy of this class: a TsnsError is one by its shape, so
   * that either copy's errors are reported as tsns's.
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    if (this !== TsnsError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return value instanceof Error && value.name === 'TsnsError' && typeof (value as { stage?: unknown }).stage === 'string';
  }

  /** The exit status DESIGN §2 gives this failure: 127 not found, 126 not executable, else 125. */
  get exitCode(): number {
    if (this.stage !== 'exec') return 125;
    return this.errno === 'ENOENT' ? 127 : 126;
  }
}

// The errnos the shim reports that libuv's table lacks, with strerror's text.
const MORE_MESSAGES: Readonly<Record<string, string>> = { ESTALE: 'stale file handle', EDQUOT: 'disk quota exceeded' };

function describeErrno(code: number): readonly [string, string] | undefined {
  const known = getSystemErrorMap().get(-code);
  if (known) return known;
  const name = Object.keys(MORE_MESSAGES).find((n) => (constants.errno as Record<string, number>)[n] === Math.abs(code));
  return name === undefined ? undefined : [name, MORE_MESSAGES[name]!];
}

export function errnoName(code: number): string {
  return describeErrno(code)?.[0] ?? `errno ${code}`;
}

export function errnoMessage(code: number): string {
  const msg = describeErrno(code)?.[1] ?? `error ${code}`;
  return msg.charAt(0).toUpperCase() + msg.slice(1);
}

/** `what: Reason (ENAME)` with the errno spelled out, as every system-call failure is reported. */
export function systemError(what: string, code: number, stage: Stage, hint?: string): TsnsError {
  const name = errnoName(code);
  return new TsnsError(`${what}: ${errnoMessage(code)} (${name})`, {
    stage,
    errno: name,
    code,
    ...(hint === undefined ? {} : { hint }),
  });
}

/** A value from the user shown in a message: control characters escaped, so an error stays one line. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** Two lines at most: the error and a hint. */
export function formatError(err: TsnsError): string {
  return `tsns: ${oneLine(err.message)}\n${err.hint ? `hint: ${oneLine(err.hint)}\n` : ''}`;
}
