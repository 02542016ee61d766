import { describe, expect, it } from 'vitest';
import { TsnsError } from '../../src/errors';
import { exitFor } from '../../src/cli/status';
import { signalName, signalNumber } from '../../src/signals';
import { decodeWaitStatus } from '../../src/wire';

describe('exit status', () => {
  it('decodes the native wait word', () => {
    expect(decodeWaitStatus(9, (1 << 16) | 7)).toEqual({ pid: 9, exitCode: 7, signal: null });
    expect(decodeWaitStatus(9, 1 << 16)).toEqual({ pid: 9, exitCode: 0, signal: null });
    expect(decodeWaitStatus(9, (2 << 16) | 15)).toEqual({ pid: 9, exitCode: null, signal: 'SIGTERM' });
  });

  it('passes codes through and re-raises signals, 128+N as the fallback', () => {
    expect(exitFor({ exitCode: 255, signal: null })).toEqual({ code: 255, signal: null });
    expect(exitFor({ exitCode: null, signal: 'SIGKILL' })).toEqual({ code: 137, signal: 9 });
    expect(exitFor({ exitCode: null, signal: 'SIGSEGV' })).toEqual({ code: 139, signal: 11 });
  });

  it('names and numbers signals', () => {
    expect(signalName(2)).toBe('SIGINT');
    expect(signalNumber('TERM')).toBe(15);
    expect(signalNumber('sigkill')).toBe(9);
    expect(signalNumber('10')).toBe(10);
    expect(signalNumber('NOPE')).toBeUndefined();
  });

  it('tsns\'s own failures are 125, an unfound command 127, an unexecutable one 126', () => {
    expect(new TsnsError('x', { stage: 'clone', errno: 'EPERM' }).exitCode).toBe(125);
    expect(new TsnsError('x', { stage: 'exec', errno: 'ENOENT' }).exitCode).toBe(127);
    expect(new TsnsError('x', { stage: 'exec', errno: 'EACCES' }).exitCode).toBe(126);
  });
});
