/**
 * The container's terminal, by runc's rules: detached (create, run -d,
 * exec -d) a terminal needs --console-socket, where the engine takes the
 * pty's master; in the foreground tsns-oci-init keeps the master itself and
 * relays it to the caller's stdio (native/oci-tty.c), with the caller's
 * terminal — the first of stderr, stdout, stdin that is one, else the
 * controlling terminal — made raw meanwhile. The rule is runc's, both of
 * its halves, here for create, run and exec alike: a console socket without
 * a terminal to send, or in the foreground, is refused, and so is a
 * detached terminal without a console socket (no one would hold the pty).
 */
import { constants, openSync } from 'node:fs';
import { systemError, TsnsError } from '../errors';

export function checkConsoleSocket(socket: string | null, terminal: boolean, detach: boolean, command: string): void {
  if (socket !== null && (!detach || !terminal)) {
    throw new TsnsError(`cannot use --console-socket if tsns-oci ${command} will not detach or allocate a terminal`, {
      stage: 'option', hint: terminal ? 'a foreground container uses tsns-oci\'s own terminal: leave out --console-socket, or pass --detach' : 'set "terminal": true in config.json (exec: --tty), or leave out --console-socket',
    });
  }
  if (socket === null && detach && terminal) {
    throw new TsnsError(`cannot allocate a terminal if tsns-oci ${command} will detach without --console-socket`, {
      stage: 'option', hint: `pass --console-socket SOCKET, or ${command === 'exec' ? 'leave out --tty (or "terminal" in the --process file)' : 'set "terminal": false in config.json'}`,
    });
  }
}

/** The caller's terminal: [fd, opened] (opened: ours to close, /dev/tty); an error naming why when there is none. */
export function hostTerminal(): [number, boolean] {
  // node:tty is loaded here, by the one call that needs it: it costs milliseconds (net and the streams with it).
  const { isatty } = require('node:tty') as typeof import('node:tty');
  for (const fd of [2, 1, 0]) if (isatty(fd)) return [fd, false];
  try {
    return [openSync('/dev/tty', constants.O_RDWR | constants.O_NOCTTY), true];
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw systemError('cannot give the container a terminal: stdin, stdout and stderr are no terminals and there is no controlling one (/dev/tty)', -(err.errno ?? -6), 'console',
      'run it from a terminal, pass --detach with --console-socket SOCKET, or set "terminal": false in config.json');
  }
}

/** A slot in the helper's fd table for the socket pair it makes: /dev/null there until then. */
export function consoleSlot(): number {
  return openSync('/dev/null', constants.O_RDONLY);
}
