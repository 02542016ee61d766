import { describe, expect, it } from 'vitest';
import { BARE_LAUNCH, encodeSpec, type SpawnSpec } from '../../src/wire';

const base: SpawnSpec = { ...BARE_LAUNCH, stdio: [null, null, null], inheritFds: false, searchPath: '/bin', env: [], file: 'true', argv: ['true'] };

/** The wire format parse_spec() reads: a tag byte, the value, a NUL. */
const wire = (...entries: (string | number[])[]) =>
  Buffer.concat(entries.map((e) => (typeof e === 'string' ? Buffer.from(`${e}\0`, 'latin1') : Buffer.from([...e, 0]))));

describe('encodeSpec', () => {
  it('writes the fixed entries, then the set ones, argv and env in order', () => {
    const spec: SpawnSpec = { ...base, flags: 0x4000000, hostname: 'demo', keepCaps: true, stdio: [null, 5, -1], env: ['A=1', 'B='] };
    expect(encodeSpec(spec)).toEqual(wire('f67108864', 'P0', 'xtrue', 'S/bin', 'hdemo', 'k', 'D1:5', 'D2:-1', 'atrue', 'eA=1', 'eB='));
  });

  it('carries argument and environment bytes that are not UTF-8 exactly', () => {
    const bad = [0x66, 0xff, 0xfe];
    const spec: SpawnSpec = { ...base, file: Uint8Array.from(bad), argv: [Uint8Array.from(bad), 'x'], env: [Uint8Array.from([0x41, 0x3d, 0x80])] };
    expect(encodeSpec(spec)).toEqual(wire('f0', 'P0', [0x78, ...bad], 'S/bin', [0x61, ...bad], 'ax', [0x65, 0x41, 0x3d, 0x80]));
  });

  it('gives each seccomp program its flags, then where its listener goes', () => {
    const spec: SpawnSpec = {
      ...base,
      seccomp: [{ instructions: 1, hex: '0600000000000000', flags: 12, early: true }, { instructions: 1, hex: '06000000ffff0000' }],
      seccompListener: { path: '/run/agent.sock', state: '{"pid":\x02}' },
    };
    expect(encodeSpec(spec)).toEqual(wire('f0', 'P0', 'xtrue', 'S/bin', 'F0600000000000000', 'T12e', 'F06000000ffff0000',
      'V/run/agent.sock\x01{"pid":\x02}', 'atrue'));
  });

  it('refuses a NUL inside an entry, as a string or as bytes', () => {
    expect(() => encodeSpec({ ...base, argv: ['a\0b'] })).toThrow(/NUL byte: "a\\u0000b"/);
    expect(() => encodeSpec({ ...base, env: [Uint8Array.from([0x41, 0, 0x42])] })).toThrow(/NUL byte/);
  });
});
