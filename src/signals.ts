/** Signal names and numbers, and the signals tsns passes on to a command. */
type Signals = typeof import('node:os').constants.signals;

export const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

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
