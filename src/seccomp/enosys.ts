/**
 * Pure: the instructions runc puts in front of libseccomp's program (its
 * patchbpf), so that a system call newer than the profile fails with ENOSYS
 * rather than the default errno. C libraries fall back to an older call on
 * ENOSYS only (clone3 → clone, statx → stat, faccessat2 → faccessat); EPERM
 * would make them fail instead.
 *
 * Per architecture the stub sends any number above the highest one the
 * profile names to ENOSYS and everything else on into the filter. An
 * architecture the stub does not know goes straight to the filter, whose
 * bad-architecture action deals with it. runc orders the sections and the
 * jumps to them as a Go map iterates, at random; the meaning is the same in
 * every order, and this one (sections by ascending audit value, jumps by
 * descending) is one runc 1.1.5 was seen to load.
 */
import { ACTIONS, ENOSYS } from './tables';

/** One architecture the profile covers: libseccomp's token, the kernel's audit value, the highest number named. */
export interface StubArch {
  token: number;
  audit: number;
  max: number;
}

type Insn = [code: number, jt: number, jf: number, k: number];

const LD_W_ABS = 0x20;
const JA = 0x05;
const JEQ = 0x15;
const JGT = 0x25;
const JSET = 0x45;
const RET = 0x06;
const RET_ENOSYS = ACTIONS.SCMP_ACT_ERRNO | ENOSYS;
/** seccomp_data: the syscall number at offset 0, the architecture at 4. */
const NR = 0;
const ARCH = 4;
const X32_BIT = 0x40000000;
const AUDIT_X86_64 = 0xc000003e;
const TOKEN_X86_64 = 0xc000003e;
const S390 = new Set([0x00000016, 0x80000016]);
/** A conditional jump's offsets are one byte. */
const SHORT = 255;

/** x86_64 and x32 share the audit architecture; bit 30 of the number tells them apart. */
function section(subs: readonly StubArch[], toEnosys: number, toFilter: number): Insn[] {
  const sec: Insn[] = [[LD_W_ABS, 0, 0, NR]];
  if (subs.length === 2) {
    const x86 = subs.find((s) => s.token === TOKEN_X86_64)!;
    const x32 = subs.find((s) => s.token !== TOKEN_X86_64)!;
    if (toEnosys + 2 <= SHORT) {
      return [...sec, [JSET, 1, 0, X32_BIT], [JGT, toEnosys + 2, 1, x86.max], [JGT, toEnosys + 1, 0, x32.max], [JA, 0, 0, toFilter]];
    }
    return [...sec, [JSET, 1, 0, X32_BIT], [JGT, 1, 2, x86.max], [JGT, 0, 1, x32.max], [JA, 0, 0, toEnosys + 1], [JA, 0, 0, toFilter]];
  }
  const { token, audit, max } = subs[0]!;
  // s390's setup(2), number 0, is a multiplexer: never let it through.
  if (S390.has(token)) sec.push([JEQ, 0, 1, 0], [RET, 0, 0, RET_ENOSYS]);
  const check: Insn[] = toEnosys + 1 <= SHORT
    ? [[JGT, toEnosys + 1, 0, max], [JA, 0, 0, toFilter]]
    : [[JGT, 0, 1, max], [JA, 0, 0, toEnosys + 1], [JA, 0, 0, toFilter]];
  if (audit === AUDIT_X86_64) {
    // Alone, x86_64 lets x32 numbers by (and x32 the others).
    const skip = check.length - 1;
    check.unshift(token === TOKEN_X86_64 ? [JSET, skip, 0, X32_BIT] : [JSET, 0, skip, X32_BIT]);
  }
  return [...sec, ...check];
}

/** The stub's instructions, to prepend to libseccomp's program; none when no architecture names a syscall. */
export function enosysStub(arches: readonly StubArch[]): Insn[] {
  const byAudit = new Map<number, StubArch[]>();
  for (const a of arches) {
    if (a.max <= 0) continue;
    const subs = byAudit.get(a.audit) ?? [];
    if (!subs.some((s) => s.token === a.token)) subs.push(a);
    byAudit.set(a.audit, subs);
  }
  if (byAudit.size === 0) return [];
  // Built from the end: a jump counts the instructions after it.
  let tail: Insn[] = [[JA, 0, 0, 1], [RET, 0, 0, RET_ENOSYS]];
  const start = new Map<number, number>();
  // Each goes in front of the last: sections end up in ascending order, the jumps to them in descending.
  const audits = [...byAudit.keys()].sort((a, b) => a - b);
  for (const audit of [...audits].reverse()) {
    const toEnosys = tail.length - 1;
    tail = [...section(byAudit.get(audit)!, toEnosys, toEnosys + 1), ...tail];
    start.set(audit, tail.length);
  }
  tail = [[JA, 0, 0, tail.length], ...tail];
  for (const audit of audits) {
    const jump = tail.length - start.get(audit)!;
    tail = [...(jump <= SHORT ? [[JEQ, jump, 0, audit] as Insn] : [[JEQ, 0, 1, audit] as Insn, [JA, 0, 0, jump] as Insn]), ...tail];
  }
  return [[LD_W_ABS, 0, 0, ARCH], ...tail];
}

/** struct sock_filter in the host's byte order. */
export function encodeInsns(insns: readonly Insn[]): Buffer {
  const out = Buffer.alloc(insns.length * 8);
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  insns.forEach(([code, jt, jf, k], i) => {
    if (le) out.writeUInt16LE(code, i * 8); else out.writeUInt16BE(code, i * 8);
    out.writeUInt8(jt, i * 8 + 2);
    out.writeUInt8(jf, i * 8 + 3);
    if (le) out.writeUInt32LE(k >>> 0, i * 8 + 4); else out.writeUInt32BE(k >>> 0, i * 8 + 4);
  });
  return out;
}
