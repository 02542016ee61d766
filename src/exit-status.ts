import { constants } from 'node:os';

export interface RunResult {
  /** pid of the command, in tsns's own pid namespace */
  pid: number;
  /** exit code, or null when a signal ended the command */
  exitCode: number | null;
  /** name of the signal that ended the command, e.g. 'SIGTERM' */
  signal: string | null;
  /** what the command wrote, when its stdout/stderr was 'pipe' */
  stdout?: string;
  stderr?: string;
  /** killed because the timeout passed */
  timedOut?: boolean;
  /** killed because the AbortSignal fired */
  aborted?: boolean;
}

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(constants.signals).map(([name, num]) => [num, name]),
);

export function signalName(num: number): string {
  return SIGNAL_NAMES.get(num) ?? `SIG${num}`;
}

export function signalNumber(name: string): number | undefined {
  const upper = name.toUpperCase();
  const key = (upper.startsWith('SIG') ? upper : `SIG${upper}`) as keyof typeof constants.signals;
  if (/^\d+$/.test(name)) return Number(name);
  return constants.signals[key];
}

/** Decode the native wait word: 1<<16|code after exit, 2<<16|signal after a signal. */
export function decodeWaitStatus(pid: number, word: number): RunResult {
  const kind = word >>> 16;
  const value = word & 0xffff;
  if (kind === 2) return { pid, exitCode: null, signal: signalName(value) };
  return { pid, exitCode: value, signal: null };
}

/**
 * How the CLI ends for a result: the same exit code, or the same signal
 * (re-raised on itself), or 128+N where re-raising did not kill it.
 */
export function exitFor(result: Pick<RunResult, 'exitCode' | 'signal'>): { code: number; signal: number | null } {
  if (result.signal !== null) {
    const num = signalNumber(result.signal) ?? 0;
    return { code: 128 + num, signal: num };
  }
  return { code: result.exitCode ?? 0, signal: null };
}
