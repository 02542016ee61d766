/**
 * bwrap's --level-prefix: each line of tsns's own diagnostics starts with
 * its syslog(3) level, as `logger --prio-prefix` and `systemd-cat
 * --level-prefix=1` read it.
 */
const LOG_ERR = 3;
const LOG_WARNING = 4;
const LOG_INFO = 6;

let prefixed = false;

/**
 * Whether `tsns run`'s arguments ask for it: looked for before parsing (up
 * to `--`), so that a parse error is prefixed too.
 */
export function useLevelPrefix(sub: string | undefined, args: readonly string[]): void {
  const end = args.indexOf('--');
  prefixed = sub === 'run' && (end < 0 ? args : args.slice(0, end)).includes('--level-prefix');
}

/** An error and its hint: <3> for the error, <6> for the hint that goes with it. */
export function levelLines(text: string): string {
  if (!prefixed) return text;
  return text.replace(/^(.+)$/gm, (line) => `<${line.startsWith('hint:') ? LOG_INFO : LOG_ERR}>${line}`);
}

export function warningLine(message: string): string {
  return `${prefixed ? `<${LOG_WARNING}>` : ''}tsns: warning: ${message}\n`;
}
