/**
 * The command's fds as run() takes them, as child_process does: 0-2 each
 * inherited, piped, ignored or an fd of ours, and from 3 on the fds of ours
 * it gets; and our ends of its pipes.
 */
import { TsnsError } from './errors';
import * as native from './native';

/** How the command's fd 0, 1 or 2 is set up. */
export type StdioOption = 'inherit' | 'pipe' | 'ignore' | number;

export interface Stdio {
  /** what the child gets, by fd number (null: 0-2 inherited, others closed) */
  child: (number | null)[];
  /** our ends of the pipes: [stdin writer, stdout reader, stderr reader] */
  ours: (number | null)[];
}

export function setupStdio(choice: StdioOption | readonly StdioOption[], fds: Readonly<Record<number, number>> = {}): Stdio {
  const list = typeof choice === 'string' || typeof choice === 'number' ? [choice, choice, choice] : choice;
  const stdio: Stdio = { child: [null, null, null], ours: [null, null, null] };
  for (const [target, fd] of Object.entries(fds)) {
    if (!/^\d+$/.test(target) || !Number.isInteger(fd) || fd < 0) {
      throw new TsnsError(`fds: ${target} → ${fd} is not a mapping of the command's fd to an open fd of this process`, { stage: 'option' });
    }
    stdio.child[Number(target)] = fd;
  }
  list.forEach((c, fd) => {
    if (c === 'inherit' && fd < 3) return;
    // As child_process: from fd 3 on, 'inherit' and 'ignore' pass nothing.
    if (c === 'ignore' || c === 'inherit') {
      if (fd < 3) stdio.child[fd] = -1;
    } else if (typeof c === 'number') stdio.child[fd] = c;
    else if (fd >= 3) {
      throw new TsnsError(`stdio[${fd}]: 'pipe' is for fds 0-2; give an fd of this process to pass it on`, { stage: 'option' });
    } else {
      const [r, w] = native.pipe();
      stdio.child[fd] = fd === 0 ? r : w;
      stdio.ours[fd] = fd === 0 ? w : r;
    }
  });
  return stdio;
}

/** Our own pipes' fds: closed through the shim, which made them. */
export function closeFd(fd: number | null): void {
  if (fd !== null) native.close(fd);
}

// node:net costs milliseconds to load: only when a stream is piped.
export const Socket = (): typeof import('node:net').Socket =>
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('node:net') as typeof import('node:net')).Socket;

/** Everything the command writes on a piped stream, once it closes. */
export function collect(fd: number | null): Promise<string> | undefined {
  if (fd === null) return undefined;
  const socket = new (Socket())({ fd, readable: true, writable: false });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks).toString())));
}

export function feed(fd: number | null, input: string | Uint8Array | undefined): void {
  if (fd === null) return;
  const socket = new (Socket())({ fd, readable: false, writable: true });
  socket.on('error', () => {}); // the command may not read it all (EPIPE)
  socket.end(input ?? '');
}
