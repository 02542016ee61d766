import { describe, expect, it } from 'vitest';
import { explainStart } from '../../src/oci/explain';
import { decodeFailure, STAGE_SHIFT } from '../../src/wire';

describe('a session keyring the kernel refuses', () => {
  it('is one line naming the keyring, with its errno, and a hint to --no-new-keyring', () => {
    // As the shim reports it: stage 84 (session-keyring), EDQUOT (122).
    const f = decodeFailure(-((84 << STAGE_SHIFT) | 122));
    const e = explainStart(f, null, ['sh']);
    expect(e.message).toMatch(/^cannot start container process: cannot join the session keyring: .*/);
    expect(e.errno).toBe('EDQUOT');
    expect(e.hint).toMatch(/--no-new-keyring/);
  });
});
