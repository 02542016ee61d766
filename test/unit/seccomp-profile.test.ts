/** Reading seccomp profiles: JSON with 64-bit values, Docker's and the OCI format, errors that say where. */
import { describe, expect, it } from 'vitest';
import { TsnsError } from '../../src/errors';
import { parseJson } from '../../src/seccomp/json';
import { parseProfile, parseProfileText } from '../../src/seccomp/profile';

function failure(fn: () => unknown): TsnsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TsnsError);
    return e as TsnsError;
  }
  throw new Error('expected a TsnsError');
}

const parse = (o: unknown) => parseProfile(o, 'p.json');
const message = (o: unknown) => failure(() => parse(o)).message;
const allow = { defaultAction: 'SCMP_ACT_ALLOW' };

describe('parseJson', () => {
  it('reads JSON as JSON.parse does, but keeps integers beyond 2^53 exact as bigints', () => {
    const text = '{"a": [1, -2.5e3, true, null, "x\\u00e9\\n"], "big": 18446744073709551615, "safe": 9007199254740991, "neg": -0}';
    const v = parseJson(text) as Record<string, unknown>;
    expect(v.a).toEqual(JSON.parse(text).a);
    expect(v.big).toBe(18446744073709551615n);
    expect(v.safe).toBe(9007199254740991);
    // What JSON.parse makes of it: the nearest double, another number.
    expect(BigInt(JSON.parse(text).big)).toBe(1n << 64n);
  });

  it('keeps a "__proto__" key as data and says where bad JSON goes wrong', () => {
    const v = parseJson('{"__proto__": {"x": 1}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__']);
    expect(() => parseJson('{\n  "a": 1,\n  "b": tru\n}')).toThrow('unexpected \'t\' at line 3 column 8');
    expect(() => parseJson('[1, 2')).toThrow("expected ',', found the end");
    expect(() => parseJson('"a\u0001"')).toThrow('control character in a string');
    expect(() => parseJson('{} x')).toThrow('unexpected text after the end');
    expect(() => parseJson('01')).toThrow('unexpected text after the end');
  });
});

describe('parseProfile', () => {
  it("reads Docker's format: archMap, name, includes/excludes, comments; podman's errno names", () => {
    const p = parse({
      defaultAction: 'SCMP_ACT_ERRNO', defaultErrno: 'ENOSYS', defaultErrnoRet: 1,
      archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86'] }],
      syscalls: [
        { name: 'clone', action: 'SCMP_ACT_ALLOW', comment: 'ignored', args: [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }],
          excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390x'] } },
        { names: ['ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' } },
        { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errno: 'EACCES' },
      ],
    });
    expect(p.defaultErrnoRet).toBe(38);
    expect(p.archMap).toEqual([{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86'] }]);
    expect(p.syscalls[0]).toMatchObject({
      names: ['clone'], path: 'syscalls[0]', includes: null,
      args: [{ index: 0, value: 2114060288n, valueTwo: 0n, op: 'SCMP_CMP_MASKED_EQ' }],
      excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390x'], minKernel: null },
    });
    expect(p.syscalls[1]!.includes).toEqual({ caps: [], arches: [], minKernel: [4, 8] });
    expect(p.syscalls[2]!.errnoRet).toBe(13);
    expect(p.flags).toBeNull();
  });

  it('reads the OCI object: architectures, flags, listener, 64-bit values from parseJson', () => {
    const p = parseProfileText(`{"defaultAction":"SCMP_ACT_KILL_PROCESS","architectures":["SCMP_ARCH_X86_64"],
      "flags":["SECCOMP_FILTER_FLAG_LOG"],"listenerPath":"/run/agent.sock","listenerMetadata":"m",
      "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY","args":[{"index":5,"value":18446744073709551615,"valueTwo":1,"op":"SCMP_CMP_NE"}]}]}`, 'oci.json');
    expect(p).toMatchObject({
      defaultAction: 'SCMP_ACT_KILL_PROCESS', architectures: ['SCMP_ARCH_X86_64'], flags: ['SECCOMP_FILTER_FLAG_LOG'],
      listenerPath: '/run/agent.sock', listenerMetadata: 'm',
    });
    expect(p.syscalls[0]!.args[0]).toEqual({ index: 5, value: (1n << 64n) - 1n, valueTwo: 1n, op: 'SCMP_CMP_NE' });
    expect(parse({ ...allow, flags: [] }).flags).toEqual([]);
  });

  it('names the bad value and its JSON path', () => {
    const cases: [unknown, string][] = [
      [{}, 'invalid seccomp profile p.json: defaultAction: is missing'],
      [{ defaultAction: 'SCMP_ACT_FOO' }, 'invalid seccomp profile p.json: defaultAction: unknown action "SCMP_ACT_FOO"'],
      [{ ...allow, syscalls: [{ names: ['a'], action: 'SCMP_ACT_ALLOW' }, {}, {}, { names: ['x'], action: 'SCMP_ACT_NOPE' }] }, 'syscalls[1]: has no action'],
      [{ ...allow, syscalls: [{ names: ['x'], action: 'SCMP_ACT_NOPE' }] }, 'syscalls[0].action: unknown action "SCMP_ACT_NOPE"'],
      [{ ...allow, syscalls: [{ names: ['x'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_EQ' }, { index: 1, op: 'SCMP_CMP_FOO' }] }] },
        'syscalls[0].args[1].op: unknown operator "SCMP_CMP_FOO"'],
      [{ ...allow, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_FOO'] }, 'architectures[1]: unknown architecture "SCMP_ARCH_FOO"'],
      [{ ...allow, archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['amd64'] }] }, 'archMap[0].subArchitectures[0]: unknown architecture "amd64"'],
      [{ ...allow, flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] }, 'flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"'],
      [{ ...allow, syscalls: [{ names: ['x'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, op: 'SCMP_CMP_EQ' }] }] }, 'syscalls[0].args[0].index: 6 is not an argument index'],
      [{ ...allow, syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', errnoRet: 5000 }] }, 'syscalls[0].errnoRet: 5000 is not an errno'],
      [{ ...allow, syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', errno: 'ENOPE' }] }, 'syscalls[0].errno: unknown errno "ENOPE"'],
      [{ ...allow, syscalls: [{ names: ['x'], name: 'y', action: 'SCMP_ACT_ALLOW' }] }, "syscalls[0]: both 'name' and 'names' are given"],
      [{ ...allow, architectures: ['SCMP_ARCH_X86'], archMap: [] }, "p.json: both 'architectures' and 'archMap' are given"],
      [{ ...allow, syscalls: [{ names: ['x'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4' } }] }, 'syscalls[0].includes.minKernel: invalid kernel version "4"'],
      [{ ...allow, syscalls: [{ names: ['x'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['SYS_ADMIN'] } }] }, 'syscalls[0].excludes.caps[0]: unknown capability "SYS_ADMIN"'],
      [{ ...allow, syscalls: [{ names: ['x'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['x86_64'] } }] }, 'syscalls[0].includes.arches[0]: unknown architecture "x86_64"'],
      [{ ...allow, syscalls: [{ names: 'mkdir', action: 'SCMP_ACT_ALLOW' }] }, 'syscalls[0].names: must be a list of strings, not "mkdir"'],
      [{ ...allow, syscalls: [{ names: ['x'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: -1 }] }] }, 'syscalls[0].args[0].value: must be a whole number'],
      [{ ...allow, syscalls: [{ names: ['x'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 2 ** 60 }] }] }, 'has lost its exact value to JSON.parse'],
      [[], 'invalid seccomp profile p.json: must be an object, not []'],
    ];
    for (const [profile, text] of cases) expect(message(profile)).toContain(text);
    expect(failure(() => parse({ defaultAction: 'SCMP_ACT_FOO' })).hint).toMatch(/^actions: SCMP_ACT_KILL, .*SCMP_ACT_NOTIFY$/);
    expect(failure(() => parseProfileText('{"defaultAction": }', 'f.json')).message).toBe("invalid seccomp profile f.json: not JSON: unexpected '}' at line 1 column 19");
  });
});
