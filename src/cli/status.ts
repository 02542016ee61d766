/** How a CLI command ends: returned up to bin/tsns.js, which alone ends the process. */
import type { RunResult } from '../launch';
import { signalNumber } from '../signals';

export interface CliStatus {
  code: number;
  /** a signal to die of (the command's), instead of exiting with code */
  signal: number | null;
}

export const SUCCESS: CliStatus = { code: 0, signal: null };

/**
 * DESIGN §2: the command's exit code, or its signal (re-raised by
 * native/end.c, which falls back to 128+N).
 */
export function exitFor(result: Pick<RunResult, 'exitCode' | 'signal'>): CliStatus {
  if (result.signal !== null) {
    const num = signalNumber(result.signal) ?? 0;
    return { code: 128 + num, signal: num };
  }
  return { code: result.exitCode ?? 0, signal: null };
}
