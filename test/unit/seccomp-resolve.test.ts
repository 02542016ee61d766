/** Resolving a profile for one command, as Docker does: archMap, includes/excludes, the command's capabilities; the default profile's groups. */
import { describe, expect, it } from 'vitest';
import { ALL_CAPS, capabilityMask } from '../../src/capabilities';
import { defaultSeccompProfile } from '../../src/seccomp/default';
import { parseProfile } from '../../src/seccomp/profile';
import { commandCapabilities, kernelVersion, resolveProfile, type CommandIdentity, type ResolvedProfile } from '../../src/seccomp/resolve';

const DOCKER_CAPS = 'CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE'
  .split(' ').reduce((m, c) => m | capabilityMask(c)!, 0n);
const AMD64 = { arch: 'x64', kernel: '6.1.0-18-amd64' };

const defaults = (host: { arch: string; kernel: string; caps: bigint }) => resolveProfile(parseProfile(defaultSeccompProfile(), 'default'), host);
/** The rules that apply to a name, as [action, errno, conditions]. */
const rulesFor = (r: ResolvedProfile, name: string) =>
  r.syscalls.filter((s) => s.names.some((n) => n.name === name)).map((s) => [s.action, s.errnoRet, s.args.map((a) => `arg${a.index} ${a.op} ${a.value}`).join(',')]);
const named = (r: ResolvedProfile) => new Set(r.syscalls.flatMap((s) => s.names.map((n) => n.name)));

describe('resolveProfile', () => {
  it("picks the host's architectures from archMap, and keeps architectures as given", () => {
    const profile = parseProfile({
      defaultAction: 'SCMP_ACT_ERRNO',
      archMap: [{ architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] }, { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] }],
    }, 'p');
    expect(resolveProfile(profile, { ...AMD64, caps: 0n }).architectures).toEqual([
      { name: 'SCMP_ARCH_X86_64', path: 'archMap[1].architecture' },
      { name: 'SCMP_ARCH_X86', path: 'archMap[1].subArchitectures[0]' },
      { name: 'SCMP_ARCH_X32', path: 'archMap[1].subArchitectures[1]' },
    ]);
    expect(resolveProfile(profile, { arch: 'riscv64', kernel: '6.1', caps: 0n }).architectures).toEqual([]);
    const own = parseProfile({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86'] }, 'p');
    expect(resolveProfile(own, { ...AMD64, caps: 0n }).architectures).toEqual([{ name: 'SCMP_ARCH_X86', path: 'architectures[0]' }]);
  });

  it('drops a group when any exclude holds, and unless every include does', () => {
    const profile = parseProfile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['a'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'] } },
        { names: ['b'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'] } },
        { names: ['c'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
        { names: ['d'], action: 'SCMP_ACT_ALLOW', excludes: { arches: ['amd64'] } },
        { names: ['e'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.10' } },
        { names: ['f'], action: 'SCMP_ACT_ALLOW', excludes: { minKernel: '5.10' } },
      ],
    }, 'p');
    const left = (caps: bigint, host = AMD64) => resolveProfile(profile, { ...host, caps }).syscalls.map((s) => s.names[0]!.name).join('');
    expect(left(0n)).toBe('be');
    expect(left(capabilityMask('SYS_ADMIN')!)).toBe('e');
    expect(left(capabilityMask('SYS_ADMIN')! | capabilityMask('NET_ADMIN')!)).toBe('ae');
    expect(left(0n, { arch: 'arm64', kernel: '5.4.0' })).toBe('bcdf');
    expect(resolveProfile(profile, { ...AMD64, caps: 0n }).dropped).toEqual(['syscalls[0]', 'syscalls[2]', 'syscalls[3]', 'syscalls[5]']);
    expect(resolveProfile(profile, { ...AMD64, caps: 0n }).syscalls[0]!.names).toEqual([{ name: 'b', path: 'syscalls[1].names[0]' }]);
  });

  it('reads the kernel version as Docker does', () => {
    expect(kernelVersion('6.18.44-fc-v1045')).toEqual([6, 18]);
    expect(kernelVersion('4.8')).toEqual([4, 8]);
    expect(kernelVersion('weird')).toEqual([0, 0]);
  });
});

describe('commandCapabilities', () => {
  const base: CommandIdentity = { uid: 0, userNamespace: false, uidMap: null, setuid: null, keepCaps: false, capKeep: null, bounding: ALL_CAPS >> 24n };
  const caps = (o: Partial<CommandIdentity>) => commandCapabilities({ ...base, ...o });

  it("root keeps the bounding set, less what is dropped; anyone else's exec leaves none", () => {
    expect(caps({})).toBe(base.bounding);
    expect(caps({ capKeep: '0' })).toBe(0n);
    expect(caps({ capKeep: String(DOCKER_CAPS) })).toBe(DOCKER_CAPS);
    expect(caps({ uid: 1000 })).toBe(0n);
    expect(caps({ setuid: 1000 })).toBe(0n);
    expect(caps({ setuid: 1000, keepCaps: true })).toBe(base.bounding);
  });

  it('in a new user namespace: root inside has them all, any other uid none', () => {
    const map = (inner: number) => [{ inner, outer: 1000, count: 1 }];
    expect(caps({ uid: 1000, userNamespace: true, uidMap: map(0) })).toBe(base.bounding);
    expect(caps({ uid: 1000, userNamespace: true, uidMap: map(1000) })).toBe(0n);
    expect(caps({ uid: 1000, userNamespace: true })).toBe(0n); // unmapped: the overflow uid
    expect(caps({ uid: 1000, userNamespace: true, uidMap: map(0), setuid: 5 })).toBe(0n);
    expect(caps({ uid: 1000, userNamespace: true, uidMap: [{ inner: 0, outer: 100000, count: 65536 }, ...map(0)], capKeep: '1' })).toBe(1n);
  });
});

describe("the default profile (Docker's)", () => {
  it('allows the base list to everyone, and denies by default with EPERM on every architecture of the host', () => {
    const r = defaults({ ...AMD64, caps: 0n });
    expect([r.defaultAction, r.defaultErrnoRet]).toEqual(['SCMP_ACT_ERRNO', 1]);
    expect(r.architectures.map((a) => a.name)).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    expect(r.syscalls[0]!.names).toHaveLength(361);
    for (const n of ['read', 'write', 'execve', 'mkdir', 'openat', 'arch_prctl', 'modify_ldt', 'seccomp', 'prctl', 'ptrace']) expect(named(r)).toContain(n);
    for (const n of ['mount', 'unshare', 'setns', 'keyctl', 'add_key', 'request_key', 'reboot', 'chroot', 'kexec_load', 'bpf', 'acct']) {
      expect(named(r)).not.toContain(n);
    }
  });

  it('socket and personality only with the arguments Docker allows', () => {
    const r = defaults({ ...AMD64, caps: 0n });
    expect(rulesFor(r, 'socket')).toEqual([['SCMP_ACT_ALLOW', null, 'arg0 SCMP_CMP_LT 38'], ['SCMP_ACT_ALLOW', null, 'arg0 SCMP_CMP_EQ 39'], ['SCMP_ACT_ALLOW', null, 'arg0 SCMP_CMP_GT 40']]);
    expect(rulesFor(r, 'personality').map((x) => x[2])).toEqual([0, 8, 0x20000, 0x20008, 0xffffffff].map((v) => `arg0 SCMP_CMP_EQ ${v}`));
  });

  it("with Docker's capabilities: clone without namespace flags, clone3 as ENOSYS, chroot; no mount or unshare", () => {
    const r = defaults({ ...AMD64, caps: DOCKER_CAPS });
    expect(rulesFor(r, 'clone')).toEqual([['SCMP_ACT_ALLOW', null, `arg0 SCMP_CMP_MASKED_EQ ${0x7e020000}`]]);
    expect(rulesFor(r, 'clone3')).toEqual([['SCMP_ACT_ERRNO', 38, '']]);
    expect(named(r)).toContain('chroot');
    expect(named(r)).toContain('ptrace'); // kernel ≥ 4.8
    for (const n of ['mount', 'unshare', 'setns', 'sethostname', 'reboot', 'open_by_handle_at', 'settimeofday']) expect(named(r)).not.toContain(n);
    expect(r.dropped).toHaveLength(18);
  });

  it('each capability allows its calls: CAP_SYS_ADMIN mount, unshare and clone with any flags', () => {
    const admin = defaults({ ...AMD64, caps: DOCKER_CAPS | capabilityMask('SYS_ADMIN')! });
    expect(rulesFor(admin, 'clone')).toEqual([['SCMP_ACT_ALLOW', null, '']]);
    expect(rulesFor(admin, 'clone3')).toEqual([['SCMP_ACT_ALLOW', null, '']]);
    for (const n of ['mount', 'umount2', 'unshare', 'setns', 'sethostname', 'bpf', 'perf_event_open']) expect(named(admin)).toContain(n);
    const grants: [string, string[]][] = [
      ['SYS_BOOT', ['reboot']], ['SYS_MODULE', ['init_module', 'finit_module', 'delete_module']], ['SYS_PACCT', ['acct']],
      ['SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise']], ['SYS_RAWIO', ['iopl', 'ioperm']], ['SYS_TIME', ['settimeofday', 'clock_settime']],
      ['SYS_TTY_CONFIG', ['vhangup']], ['SYS_NICE', ['mbind', 'set_mempolicy']], ['SYSLOG', ['syslog']], ['BPF', ['bpf']], ['PERFMON', ['perf_event_open']],
      ['DAC_READ_SEARCH', ['open_by_handle_at']],
    ];
    for (const [cap, calls] of grants) {
      const r = defaults({ ...AMD64, caps: capabilityMask(cap)! });
      for (const c of calls) expect(named(r), `${cap} → ${c}`).toContain(c);
      expect(named(defaults({ ...AMD64, caps: 0n }))).not.toContain(calls[0]);
    }
  });

  it("other hosts: arm64's own calls and architectures; ptrace for no one before Linux 4.8", () => {
    const arm = defaults({ arch: 'arm64', kernel: '6.1', caps: 0n });
    expect(arm.architectures.map((a) => a.name)).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    expect(named(arm)).toContain('cacheflush');
    expect(named(arm)).not.toContain('arch_prctl');
    expect(named(defaults({ ...AMD64, kernel: '4.4.0', caps: 0n }))).not.toContain('ptrace');
  });
});
