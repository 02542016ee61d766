/**
 * runc's logging, which engines read back: --log FILE gets one line per
 * message, as JSON ({"level","msg","time"}) with --log-format json (what
 * containerd-shim and conmon ask for) or logrus's text form; errors go to
 * stderr too, in tsns's one-line style with a hint.
 */
import { appendFileSync, writeSync } from 'node:fs';
import { formatError, type TsnsError } from '../errors';

export interface LogOptions {
  file: string | null;
  format: 'text' | 'json';
  debug: boolean;
}

let opts: LogOptions = { file: null, format: 'text', debug: false };

export function setLog(o: LogOptions): void {
  opts = o;
}

function line(level: string, msg: string): string {
  const time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  if (opts.format === 'json') return `${JSON.stringify({ level, msg, time })}\n`;
  return `time="${time}" level=${level} msg=${JSON.stringify(msg)}\n`;
}

function toLog(level: string, msg: string): void {
  if (!opts.file) return;
  try {
    appendFileSync(opts.file, line(level, msg));
  } catch {
    // the log is best effort: the error still reaches stderr
  }
}

export function debug(msg: string): void {
  if (!opts.debug) return;
  if (opts.file) toLog('debug', msg);
  else process.stderr.write(line('debug', msg));
}

export function warn(msg: string): void {
  if (opts.file) toLog('warning', msg);
  else process.stderr.write(`tsns: warning: ${msg}\n`);
}

export function logError(err: TsnsError): void {
  toLog('error', err.hint ? `${err.message} (hint: ${err.hint})` : err.message);
  process.stderr.write(formatError(err));
}

/**
 * A command's output on stdout. Written to fd 1 directly: process.stdout on
 * a pipe (how engines read state and list) is a net.Socket, and loading net
 * and the streams costs each call milliseconds. Where the direct write cannot
 * go on (a non-blocking pipe that is full, a closed stdout) the rest goes
 * through process.stdout, as all of it did before.
 */
export function writeOut(text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  try {
    while (off < buf.length) off += writeSync(1, buf, off, buf.length - off);
  } catch {
    process.stdout.write(buf.subarray(off));
  }
}
