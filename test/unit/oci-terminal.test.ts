import { describe, expect, it } from 'vitest';
import { TsnsError } from '../../src/errors';
import { checkConsoleSocket } from '../../src/oci/terminal';

const check = (socket: string | null, terminal: boolean, detach: boolean, command = 'create') => {
  try {
    checkConsoleSocket(socket, terminal, detach, command);
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(TsnsError);
    return (e as TsnsError).message;
  }
};

describe('runc\'s console socket rule, one for create, run and exec', () => {
  it('a detached terminal needs a console socket; a foreground one uses tsns-oci\'s own', () => {
    expect(check('/s', true, true)).toBe('ok');
    expect(check(null, true, false)).toBe('ok');
    expect(check(null, false, true)).toBe('ok');
    expect(check(null, true, true, 'create')).toBe('cannot allocate a terminal if tsns-oci create will detach without --console-socket');
    expect(check(null, true, true, 'exec')).toBe('cannot allocate a terminal if tsns-oci exec will detach without --console-socket');
  });

  it('a console socket without a terminal, or in the foreground, is refused', () => {
    expect(check('/s', false, true, 'exec')).toBe('cannot use --console-socket if tsns-oci exec will not detach or allocate a terminal');
    expect(check('/s', true, false, 'run')).toBe('cannot use --console-socket if tsns-oci run will not detach or allocate a terminal');
  });

  it('the hint says what to change, by command', () => {
    const hint = (command: string) => {
      try {
        checkConsoleSocket(null, true, true, command);
      } catch (e) {
        return (e as TsnsError).hint;
      }
      return '';
    };
    expect(hint('create')).toMatch(/--console-socket SOCKET, or set "terminal": false in config.json/);
    expect(hint('exec')).toMatch(/--console-socket SOCKET, or leave out --tty/);
  });
});
