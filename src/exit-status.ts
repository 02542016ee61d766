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

type Signals = typeof import('node:os').constants.signals;

// node:os costs the CLI about a millisecond to load: only when a signal is named.
let signals: Signals | undefined;
let signalNames: Map<number, string> | undefined;
function signalTable(): Signals {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  signals ??= (require('node:os') as typeof import('node:os')).constants.signals;
  return signals;
}

export function signalName(num: number): string {
  signalNames ??= new Map(Object.entries(signalTable()).map(([name, n]) => [n, name]));
  return signalNames.get(num) ?? `SIG${num}`;
}

export function signalNumber(name: string): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  const upper = name.toUpperCase();
  return signalTable()[(upper.startsWith('SIG') ? upper : `SIG${upper}`) as keyof Signals];
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
