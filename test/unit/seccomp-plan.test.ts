/** A seccomp profile in a run plan, on the command line, in --dry-run, and for an OCI runtime. */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ALL_CAPS } from '../../src/capabilities';
import { parseRun } from '../../src/cli/run';
import type { PlanContext } from '../../src/context';
import { TsnsError } from '../../src/errors';
import { SECCOMP_LIBRARY_PATH, seccompCompiler } from '../../src/native';
import { describePlan, planToJson } from '../../src/plan/describe';
import { makePlan, type RunOptions } from '../../src/plan/run';
import type { SeccompContext } from '../../src/seccomp/host';
import { seccompForOci } from '../../src/seccomp/plan';
import { SECCOMP_FLAG } from '../../src/seccomp/tables';
import { requireFeature } from '../e2e/helpers';

const BOUNDING = ALL_CAPS >> 23n; // 41 capabilities
const files: Record<string, string> = {
  '/p/mkdir.json': '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}',
  '/p/notify.json': '{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","listenerMetadata":"m\\u0002","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}',
  '/p/bad.json': '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"op":"SCMP_CMP_BETWEEN"}]}]}',
};
const seccomp: SeccompContext = {
  compiler: seccompCompiler,
  readFile: (path) => {
    const text = files[path];
    if (text === undefined) throw new TsnsError(`cannot read the seccomp profile ${path}: No such file or directory (ENOENT)`, { stage: 'option' });
    return text;
  },
  arch: 'x64',
  kernel: '6.1.0',
  bounding: () => BOUNDING,
  debug: () => {},
};
const user: PlanContext = {
  uid: 1000, gid: 1000, privileged: false, env: {}, lookupUser: () => undefined, lookupGroup: () => undefined,
  subordinateIds: () => [], signalNumber: () => undefined, cwd: '/home/u', lstat: () => ({ kind: 'dir' }),
  readFd: () => new Uint8Array([6, 0, 0, 0, 0, 0, 0xff, 0x7f]), seccomp,
};
const root: PlanContext = { ...user, uid: 0, gid: 0, privileged: true };
const plan = (opts: RunOptions, ctx = user) => makePlan(['true'], opts, ctx);

const usable = process.arch === 'x64' && existsSync(SECCOMP_LIBRARY_PATH);

describe.runIf(requireFeature(usable, 'libseccomp (libseccomp-dev) on x86_64 for the seccomp plan tests'))('a seccomp profile in a plan', () => {
  it('comes first among the programs, with no new privileges, loaded last with its flags', () => {
    const p = plan({ seccompProfile: '/p/mkdir.json', seccomp: [3] });
    expect(p.seccomp.map((s) => [s.instructions > 1, s.flags ?? 0, s.early ?? false])).toEqual([[true, SECCOMP_FLAG.SPEC_ALLOW, false], [false, 0, false]]);
    expect(p.noNewPrivs).toBe(true);
    expect(p.seccompProfile).toMatchObject({ source: '/p/mkdir.json', rules: 2, defaultAction: 'SCMP_ACT_ALLOW', capabilities: [] });
    expect(describePlan(p)).toContain([
      'seccomp:    profile /p/mkdir.json: default SCMP_ACT_ALLOW, 2 rules on 2 system calls, architectures (native only)',
      'seccomp:    judged for no capabilities',
      'seccomp:    flags SECCOMP_FILTER_FLAG_SPEC_ALLOW',
      `seccomp:    2 programs of ${p.seccomp[0]!.instructions}, 1 instructions, loaded in that order just before exec`,
    ].join('\n'));
    expect(planToJson(p)).toMatchObject({ seccomp: [p.seccomp[0]!.instructions, 1], seccompProfile: { rules: 2 } });
  });

  it("'unconfined' is none; without no_new_privs the profile loads before privileges are dropped, as runc does", () => {
    expect(plan({ seccompProfile: 'unconfined' })).toMatchObject({ seccomp: [], seccompProfile: null, noNewPrivs: false });
    const early = plan({ seccompProfile: 'default', noNewPrivs: false }, root);
    expect(early.seccomp[0]!.early).toBe(true);
    expect(describePlan(early)).toContain('loaded before privileges are dropped (no no_new_privs)');
  });

  it("judges Docker's includes/excludes by the capabilities the command will have", () => {
    const caps = (opts: RunOptions, ctx = user) => plan({ seccompProfile: 'default', ...opts }, ctx).seccompProfile!.capabilities.length;
    expect(caps({}, root)).toBe(41);
    expect(caps({ capDrop: ['ALL'], capAdd: ['CAP_SYS_CHROOT'] }, root)).toBe(1);
    expect(caps({ setuid: 1000 }, root)).toBe(0);
    expect(caps({})).toBe(0);
    expect(caps({ mapRootUser: true })).toBe(41);
    expect(caps({ mapCurrentUser: true })).toBe(0);
    expect(caps({ sandbox: true })).toBe(0);
    const admin = plan({ seccompProfile: 'default' }, root).seccompProfile!;
    const none = plan({ seccompProfile: 'default' }).seccompProfile!;
    expect(admin.dropped).toBeLessThan(none.dropped);
  });

  it("sends a NOTIFY profile's listener with the state runc sends, the pid left to the shim", () => {
    const p = plan({ seccompProfile: '/p/notify.json' });
    expect(p.seccomp[0]!.flags! & SECCOMP_FLAG.NEW_LISTENER).toBeTruthy();
    expect(p.seccompListener!.path).toBe('/run/agent.sock');
    const state = JSON.parse(p.seccompListener!.state.replaceAll('\x02', '77'));
    expect(state).toEqual({
      ociVersion: '1.0.2', fds: ['seccompFd'], pid: 77, metadata: 'm\x02',
      state: { ociVersion: '1.0.2', id: 'tsns-77', status: 'creating', pid: 77, bundle: '/home/u', annotations: {} },
    });
    expect(describePlan(p)).toContain('notifications to the agent at /run/agent.sock');
  });

  it('fails before anything runs: a profile that cannot be read or is wrong', () => {
    expect(() => plan({ seccompProfile: '/p/none.json' })).toThrow('cannot read the seccomp profile /p/none.json');
    expect(() => plan({ seccompProfile: '/p/bad.json' })).toThrow('invalid seccomp profile /p/bad.json: syscalls[0].args[0].op: unknown operator "SCMP_CMP_BETWEEN"');
    expect(() => plan({ seccompProfile: { defaultAction: 'SCMP_ACT_KILL', syscalls: [{ names: ['nope'], action: 'SCMP_ACT_ALLOW' }] } }))
      .toThrow('invalid seccomp profile (object): syscalls[0].names[0]: unknown system call "nope"');
  });

  it('for an OCI runtime: linux.seccomp with the container bounding set, or nothing', () => {
    const oci = { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['read', 'write', 'exit_group'], action: 'SCMP_ACT_ALLOW' }] };
    const launch = seccompForOci(oci, { capabilities: ['CAP_CHOWN', 'CAP_KILL'], noNewPrivileges: false, state: { id: 'c1', bundle: '/b' } }, seccomp)!;
    expect(launch.seccomp).toHaveLength(1);
    expect(launch.seccomp[0]!.early).toBe(true);
    expect(launch.summary).toMatchObject({ source: 'linux.seccomp', rules: 3, capabilities: ['CAP_CHOWN', 'CAP_KILL'] });
    expect(launch.seccompListener).toBeNull();
    expect(seccompForOci(undefined, { capabilities: [], noNewPrivileges: true }, seccomp)).toBeNull();
    expect(seccompForOci({ defaultAction: '', syscalls: [] }, { capabilities: [], noNewPrivileges: true }, seccomp)).toBeNull();
    expect(() => seccompForOci({ defaultAction: 'SCMP_ACT_FOO' }, { capabilities: [], noNewPrivileges: true }, seccomp))
      .toThrow('invalid seccomp profile linux.seccomp: defaultAction: unknown action "SCMP_ACT_FOO"');
  });
});

describe('--seccomp-profile', () => {
  it('takes a file, default or unconfined, and stacks with --seccomp', () => {
    expect(parseRun(['--seccomp-profile=default', 'x']).options).toEqual({ seccompProfile: 'default' });
    expect(parseRun(['--seccomp-profile', 'p.json', '--seccomp', '3', 'x']).options).toEqual({ seccompProfile: 'p.json', seccomp: [3] });
    expect(() => parseRun(['--seccomp-profile=', 'x'])).toThrow('--seccomp-profile needs a profile file, or default');
  });
});
