/** TSNS_TRACE=1: where the CLI's time goes, one `tsns-trace: PHASE MS` line each. */
export const TRACE = Boolean(process.env.TSNS_TRACE);

export function trace(phase: string, ms: number): void {
  if (TRACE) process.stderr.write(`tsns-trace: ${phase} ${ms.toFixed(3)}\n`);
}
