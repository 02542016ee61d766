/**
 * Compiling profiles with the real libseccomp (build/libtsns-seccomp.so),
 * then asking the program what it answers, with a BPF interpreter: no
 * filter is loaded, no privilege needed. The numbers are x86_64's.
 */
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { capabilityMask } from '../../src/capabilities';
import { TsnsError } from '../../src/errors';
import { SECCOMP_LIBRARY_PATH, seccompCompiler, type SeccompCompiler } from '../../src/native';
import { compileProfile, type CompiledProfile } from '../../src/seccomp/compile';
import { defaultSeccompProfile } from '../../src/seccomp/default';
import { enosysStub } from '../../src/seccomp/enosys';
import { seccompFeatures } from '../../src/seccomp/features';
import { parseProfile } from '../../src/seccomp/profile';
import { resolveProfile } from '../../src/seccomp/resolve';
import { requireFeature } from '../e2e/helpers';
import { AUDIT, RET, runFilter } from './bpf';

const DOCKER_CAPS = 'CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE'
  .split(' ').reduce((m, c) => m | capabilityMask(c)!, 0n);
const X86_64 = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
const NR = { mkdir: 83, mkdirat: 258, getpid: 39, getppid: 110, acct: 163, personality: 135, clone: 56, clone3: 435, socket: 41, unshare: 272, keyctl: 250, statmount: 457 };
const X86_32 = { mkdir: 39, getpid: 20, acct: 51 };
const X32 = 0x40000000;

const usable = process.arch === 'x64' && existsSync(SECCOMP_LIBRARY_PATH);
let lib: SeccompCompiler;
beforeAll(() => {
  if (usable) lib = seccompCompiler();
});

function compile(profile: unknown, opts: { caps?: bigint; debug?: (l: string) => void } = {}): CompiledProfile {
  const resolved = resolveProfile(parseProfile(profile, 'p.json'), { arch: 'x64', kernel: '6.1.0', caps: opts.caps ?? 0n });
  return compileProfile(resolved, lib, { source: 'p.json', ...(opts.debug ? { debug: opts.debug } : {}) });
}

function failure(fn: () => unknown): TsnsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TsnsError);
    return e as TsnsError;
  }
  throw new Error('expected a TsnsError');
}

const call = (c: CompiledProfile, nr: number, args: bigint[] = [], arch: number = AUDIT.X86_64) => runFilter(c.bytes, { nr, arch, args });

describe.runIf(requireFeature(usable, 'libseccomp (libseccomp-dev) on x86_64 for the compile tests'))('compileProfile', () => {
  it('mkdir → EPERM on every architecture of the profile; everything else allowed, a foreign architecture killed', () => {
    const c = compile({ defaultAction: 'SCMP_ACT_ALLOW', architectures: X86_64, syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] });
    expect(call(c, NR.mkdir)).toBe(RET.EPERM);
    expect(call(c, NR.mkdirat)).toBe(RET.EPERM);
    expect(call(c, NR.getpid)).toBe(RET.ALLOW);
    expect(call(c, X86_32.mkdir, [], AUDIT.X86)).toBe(RET.EPERM);
    expect(call(c, X86_32.getpid, [], AUDIT.X86)).toBe(RET.ALLOW);
    expect(call(c, NR.mkdir | X32)).toBe(RET.EPERM);
    expect(call(c, 34, [], AUDIT.AARCH64)).toBe(RET.KILL_THREAD);
    expect(c.summary).toMatchObject({ rules: 2, syscalls: 2, skipped: [], defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_SPEC_ALLOW'] });
    // A default that allows needs no ENOSYS stub: the program is libseccomp's alone.
    expect(c.bytes.readUInt32LE(4)).toBe(4);
    const errno = compile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] });
    expect(call(errno, NR.mkdir)).toBe(0x50000 | 13);
  });

  it("the default profile with Docker's capabilities answers as Docker's does", () => {
    const c = compile(defaultSeccompProfile(), { caps: DOCKER_CAPS });
    const cases: [string, number, bigint[], number][] = [
      ['mkdir', NR.mkdir, [], RET.ALLOW],
      ['acct', NR.acct, [], RET.EPERM],
      ['unshare', NR.unshare, [0x10000000n], RET.EPERM],
      ['keyctl', NR.keyctl, [0n], RET.EPERM],
      ['personality(PER_LINUX32)', NR.personality, [8n], RET.ALLOW],
      ['personality(query)', NR.personality, [0xffffffffn], RET.ALLOW],
      ['personality(READ_IMPLIES_EXEC)', NR.personality, [0x0400000n], RET.EPERM],
      ['clone(SIGCHLD)', NR.clone, [17n], RET.ALLOW],
      ['clone(CLONE_NEWUSER)', NR.clone, [0x10000000n | 17n], RET.EPERM],
      ['clone3', NR.clone3, [], RET.ENOSYS],
      ['socket(AF_INET)', NR.socket, [2n], RET.ALLOW],
      ['socket(AF_VSOCK)', NR.socket, [40n], RET.EPERM],
      ['statmount (newer than the profile)', NR.statmount, [], RET.ENOSYS],
      ['999 (newer than the profile)', 999, [], RET.ENOSYS],
    ];
    for (const [what, nr, args, ret] of cases) expect(call(c, nr, args), what).toBe(ret);
    expect(call(c, X86_32.acct, [], AUDIT.X86)).toBe(RET.EPERM);
    expect(call(c, X86_32.mkdir, [], AUDIT.X86)).toBe(RET.ALLOW);
    expect(c.summary.architectures).toEqual(X86_64);
    expect(c.bytes.readUInt32LE(4)).toBe(4); // the stub: ld [4] (the architecture)
    expect(enosysStub([{ token: AUDIT.X86, audit: AUDIT.X86, max: 456 }])).toHaveLength(8);
  });

  it('64-bit argument values compare whole; two conditions on one argument are two rules (an OR)', () => {
    const c = compile({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['getppid'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 0, value: 0x123456789abcdef0n, op: 'SCMP_CMP_EQ' }] },
        { names: ['getpid'], action: 'SCMP_ACT_ERRNO', errnoRet: 22, args: [{ index: 1, value: 1, op: 'SCMP_CMP_EQ' }, { index: 1, value: 2, op: 'SCMP_CMP_EQ' }] },
        { names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 0xff, valueTwo: 0x08, op: 'SCMP_CMP_MASKED_EQ' }] },
      ],
    });
    expect(call(c, NR.getppid, [0x123456789abcdef0n])).toBe(0x50000 | 13);
    expect(call(c, NR.getppid, [0x9abcdef0n])).toBe(RET.ALLOW);
    expect([1n, 2n, 3n].map((v) => call(c, NR.getpid, [0n, v]))).toEqual([0x50000 | 22, 0x50000 | 22, RET.ALLOW]);
    expect([0x108n, 0x09n].map((v) => call(c, NR.personality, [v]))).toEqual([RET.EPERM, RET.ALLOW]);
    expect(c.summary.rules).toBe(4);
  });

  it('leaves out rules whose action is the default, and skips recent names libseccomp does not know, saying so', () => {
    const lines: string[] = [];
    const c = compile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [{ names: ['read', 'exit_group', 'listns'], action: 'SCMP_ACT_ALLOW' }, { names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }],
    }, { debug: (l) => lines.push(l) });
    expect(c.summary.rules).toBe(2);
    expect(c.summary.skipped).toEqual(['listns']);
    expect(lines).toEqual([`seccomp: listns (syscalls[0].names[2]) is unknown to libseccomp ${c.summary.libseccomp}: skipped`]);
  });

  it('refuses what cannot work, naming where it is', () => {
    const notify = (names: string[], extra = {}) => ({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/a.sock', ...extra, syscalls: [{ names, action: 'SCMP_ACT_NOTIFY' }] });
    const cases: [unknown, string][] = [
      [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdri'], action: 'SCMP_ACT_ERRNO' }] }, 'syscalls[0].names[1]: unknown system call "mkdri"'],
      [notify(['getppid', 'write']), 'syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for write'],
      [notify(['sendmsg']), 'syscalls[0].names[0]: SCMP_ACT_NOTIFY cannot be used for sendmsg'],
      [notify(['getppid'], { listenerPath: undefined }), 'syscalls[0].names[0]: SCMP_ACT_NOTIFY needs listenerPath: the unix socket of the agent tsns sends the listener to'],
      [{ defaultAction: 'SCMP_ACT_NOTIFY' }, 'defaultAction: SCMP_ACT_NOTIFY cannot be the default action'],
    ];
    for (const [profile, text] of cases) expect(failure(() => compile(profile)).message).toBe(`invalid seccomp profile p.json: ${text}`);
    expect(failure(() => compile(cases[0]![0])).hint).toMatch(/^neither libseccomp [\d.]+ nor tsns knows it: check the spelling$/);
    if (lib.arch('loongarch64') === 0) {
      expect(failure(() => compile({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_LOONGARCH64'] })).message)
        .toMatch(/^invalid seccomp profile p.json: architectures\[1\]: libseccomp [\d.]+ does not support SCMP_ARCH_LOONGARCH64$/);
    }
  });

  it('seccomp(2) flags: SPEC_ALLOW without flags, exactly those listed otherwise, a listener for NOTIFY', () => {
    const flags = (extra: object, notify = false) => compile({
      defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/a.sock', ...extra,
      syscalls: notify ? [{ names: ['getppid'], action: 'SCMP_ACT_NOTIFY' }] : [],
    }).summary.flags;
    expect(flags({})).toEqual(['SECCOMP_FILTER_FLAG_SPEC_ALLOW']);
    expect(flags({ flags: [] })).toEqual([]);
    expect(flags({ flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_TSYNC'] })).toEqual(['SECCOMP_FILTER_FLAG_LOG']);
    expect(flags({ flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] })).toEqual([]);
    expect(flags({ flags: [] }, true)).toEqual(['SECCOMP_FILTER_FLAG_NEW_LISTENER']);
    if (seccompFeatures(lib).supportedFlags.includes('SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV')) {
      expect(flags({ flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] }, true)).toEqual(['SECCOMP_FILTER_FLAG_NEW_LISTENER', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV']);
    }
    const c = compile({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/a.sock', syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_NOTIFY' }] });
    expect([c.notify, call(c, NR.getppid), c.summary.listenerPath]).toEqual([true, RET.NOTIFY, '/run/a.sock']);
  });
});

describe.runIf(usable)('seccompFeatures', () => {
  it('reports what works here, in the OCI features.json shape', () => {
    const f = seccompFeatures(lib);
    expect(f.enabled).toBe(true);
    expect(f.operators).toEqual(['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ']);
    expect(f.actions).toEqual(expect.arrayContaining(['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD']));
    expect(f.archs).toEqual(expect.arrayContaining(['SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64']));
    expect(f.knownFlags).toEqual(['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV']);
    expect(f.supportedFlags).toEqual(expect.arrayContaining(['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG']));
    expect(seccompFeatures(null)).toEqual({ enabled: false, actions: [], operators: [], archs: [], knownFlags: f.knownFlags, supportedFlags: [] });
  });
});
