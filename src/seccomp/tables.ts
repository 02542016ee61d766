/**
 * The names a seccomp profile may use and what they stand for: actions,
 * comparison operators, architectures, filter flags (the OCI runtime spec's
 * lists, as runc and crun take them), and where this machine stands.
 */
import { getSystemErrorMap } from 'node:util';

/** SCMP_ACT_* → libseccomp's action value; ERRNO and TRACE take their data in the low 16 bits. */
export const ACTIONS = {
  SCMP_ACT_KILL: 0x00000000,
  SCMP_ACT_KILL_THREAD: 0x00000000,
  SCMP_ACT_KILL_PROCESS: 0x80000000,
  SCMP_ACT_TRAP: 0x00030000,
  SCMP_ACT_ERRNO: 0x00050000,
  SCMP_ACT_TRACE: 0x7ff00000,
  SCMP_ACT_LOG: 0x7ffc0000,
  SCMP_ACT_ALLOW: 0x7fff0000,
  SCMP_ACT_NOTIFY: 0x7fc00000,
} as const;
export type Action = keyof typeof ACTIONS;

/** SCMP_CMP_* → enum scmp_compare. */
export const OPERATORS = {
  SCMP_CMP_NE: 1, SCMP_CMP_LT: 2, SCMP_CMP_LE: 3, SCMP_CMP_EQ: 4, SCMP_CMP_GE: 5, SCMP_CMP_GT: 6, SCMP_CMP_MASKED_EQ: 7,
} as const;
export type Operator = keyof typeof OPERATORS;

/** The runtime spec's architectures; libseccomp's own name is the rest, lower-cased (SCMP_ARCH_X86_64 → x86_64). */
export const ARCHES = [
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64', 'SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB',
] as const;

export const libseccompArchName = (arch: string): string => arch.replace(/^SCMP_ARCH_/, '').toLowerCase();

/**
 * The names Docker's includes/excludes `arches` use (Go's, as libseccomp-golang
 * spells them), each with its SCMP_ARCH_* name.
 */
export const GO_ARCHES: Record<string, string> = {
  x86: 'SCMP_ARCH_X86', amd64: 'SCMP_ARCH_X86_64', x32: 'SCMP_ARCH_X32', arm: 'SCMP_ARCH_ARM', arm64: 'SCMP_ARCH_AARCH64',
  mips: 'SCMP_ARCH_MIPS', mips64: 'SCMP_ARCH_MIPS64', mips64n32: 'SCMP_ARCH_MIPS64N32', mipsel: 'SCMP_ARCH_MIPSEL',
  mipsel64: 'SCMP_ARCH_MIPSEL64', mipsel64n32: 'SCMP_ARCH_MIPSEL64N32', ppc: 'SCMP_ARCH_PPC', ppc64: 'SCMP_ARCH_PPC64',
  ppc64le: 'SCMP_ARCH_PPC64LE', s390: 'SCMP_ARCH_S390', s390x: 'SCMP_ARCH_S390X', parisc: 'SCMP_ARCH_PARISC',
  parisc64: 'SCMP_ARCH_PARISC64', riscv64: 'SCMP_ARCH_RISCV64', loong64: 'SCMP_ARCH_LOONGARCH64',
};

/** Node's process.arch → Docker's name of the host's architecture. */
const NODE_TO_GO: Record<string, string> = {
  x64: 'amd64', ia32: 'x86', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64',
  loong64: 'loong64', mips: 'mips', mipsel: 'mipsel', mips64el: 'mipsel64',
};

export function hostArch(nodeArch: string): string {
  return NODE_TO_GO[nodeArch] ?? nodeArch;
}

/** seccomp(2) filter flags. */
export const SECCOMP_FLAG = { TSYNC: 1, LOG: 2, SPEC_ALLOW: 4, NEW_LISTENER: 8, TSYNC_ESRCH: 16, WAIT_KILLABLE_RECV: 32 } as const;

/**
 * The flags a profile may name, and the seccomp(2) flag each sets: TSYNC is
 * accepted and needs nothing (tsns's child has one thread, as runc's).
 */
export const PROFILE_FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: 0,
  SECCOMP_FILTER_FLAG_LOG: SECCOMP_FLAG.LOG,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: SECCOMP_FLAG.SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: SECCOMP_FLAG.WAIT_KILLABLE_RECV,
};

export const EPERM = 1;
export const ENOSYS = 38;
/** The kernel's MAX_ERRNO: libseccomp takes an errno below it. */
export const MAX_ERRNO = 4095;

let errnos: Map<string, number> | undefined;

/** 'EPERM' → 1 (podman's profiles name errnos). */
export function errnoNumber(name: string): number | undefined {
  errnos ??= new Map([...getSystemErrorMap()].map(([code, [n]]) => [n, -code]));
  return errnos.get(name);
}

/**
 * System calls added to Linux since 3.17 (the 64-bit time variants of 32-bit
 * architectures among them). A name libseccomp does not know is
 * skipped if it is one of these (a libseccomp older than the syscall, as
 * Docker and runc skip it), and an error otherwise (a typo).
 */
export const RECENT_SYSCALLS = new Set(`
  seccomp getrandom memfd_create bpf execveat userfaultfd membarrier mlock2 copy_file_range preadv2 pwritev2
  pkey_mprotect pkey_alloc pkey_free statx io_pgetevents rseq kexec_file_load
  pidfd_send_signal io_uring_setup io_uring_enter io_uring_register open_tree move_mount fsopen fsconfig fsmount fspick
  pidfd_open clone3 close_range openat2 pidfd_getfd faccessat2 process_madvise epoll_pwait2 mount_setattr quotactl_fd
  landlock_create_ruleset landlock_add_rule landlock_restrict_self memfd_secret process_mrelease futex_waitv
  set_mempolicy_home_node cachestat fchmodat2 map_shadow_stack futex_wake futex_wait futex_requeue statmount listmount
  lsm_get_self_attr lsm_set_self_attr lsm_list_modules mseal uretprobe getxattrat setxattrat listxattrat removexattrat
  open_tree_attr file_getattr file_setattr listns rseq_slice_yield riscv_hwprobe riscv_flush_icache
  clock_gettime64 clock_settime64 clock_adjtime64 clock_getres_time64 clock_nanosleep_time64 timer_gettime64
  timer_settime64 timerfd_gettime64 timerfd_settime64 utimensat_time64 pselect6_time64 ppoll_time64 io_pgetevents_time64
  recvmmsg_time64 mq_timedsend_time64 mq_timedreceive_time64 semtimedop_time64 rt_sigtimedwait_time64 futex_time64
  sched_rr_get_interval_time64
`.trim().split(/\s+/));
