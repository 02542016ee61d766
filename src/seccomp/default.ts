/**
 * The built-in profile (`--seccomp-profile=default`): Docker's default, with
 * its semantics — default EPERM; one list of system calls allowed to
 * everyone; socket and personality allowed for some arguments only; clone
 * without namespace flags, unless the command has CAP_SYS_ADMIN; and the
 * calls each capability grants, allowed only to a command that has it.
 * Written down here in tsns's own notation and turned into Docker's format,
 * so that it goes through the same reading and resolution as a file.
 */
import type { Operator } from './tables';

interface Rule {
  /** space-separated */
  names: string;
  /** the errno to fail with; absent: allowed */
  errno?: number;
  /** one condition on an argument: [index, operator, value, valueTwo] */
  arg?: [number, Operator, number, number?];
  /** includes: every capability listed, the host one of these architectures, at least this kernel */
  caps?: string;
  arches?: string;
  kernel?: string;
  /** excludes: any of these capabilities, or one of these architectures */
  notCaps?: string;
  notArches?: string;
}

/** Allowed to every command. */
const EVERYONE = `
  accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32 clock_adjtime
  clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
  clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1
  epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
  exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2
  fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat
  fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait
  futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid
  getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom
  getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
  get_thread_area gettid gettimeofday getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init
  inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64
  ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset
  landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount listxattr listxattrat llistxattr
  _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret
  mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
  mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget
  msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat
  openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64
  prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read
  readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr
  removexattrat rename renameat renameat2 restart_syscall riscv_hwprobe rmdir rseq rt_sigaction rt_sigpending
  rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
  rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
  sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
  sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64
  send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
  setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
  setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address
  setuid setuid32 setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
  sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statmount statx symlink symlinkat
  sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime
  timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
  timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime
  utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
`;

/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET */
const CLONE_NAMESPACES = 0x7e020000;

const RULES: Rule[] = [
  { names: EVERYONE },
  { names: 'process_vm_readv process_vm_writev ptrace', kernel: '4.8' },
  // Every address family but AF_ALG (38) and AF_VSOCK (40).
  { names: 'socket', arg: [0, 'SCMP_CMP_LT', 38] },
  { names: 'socket', arg: [0, 'SCMP_CMP_EQ', 39] },
  { names: 'socket', arg: [0, 'SCMP_CMP_GT', 40] },
  // PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query.
  ...[0, 0x8, 0x20000, 0x20008, 0xffffffff].map((v): Rule => ({ names: 'personality', arg: [0, 'SCMP_CMP_EQ', v] })),
  { names: 'sync_file_range2 swapcontext', arches: 'ppc64le' },
  { names: 'arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls', arches: 'arm arm64' },
  { names: 'arch_prctl', arches: 'amd64 x32' },
  { names: 'modify_ldt', arches: 'amd64 x32 x86' },
  { names: 's390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr', arches: 's390 s390x' },
  { names: 'riscv_flush_icache', arches: 'riscv64' },
  { names: 'open_by_handle_at', caps: 'CAP_DAC_READ_SEARCH' },
  {
    names: 'bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie lsm_get_self_attr lsm_list_modules ' +
      'lsm_set_self_attr mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname ' +
      'setns syslog umount umount2 unshare',
    caps: 'CAP_SYS_ADMIN',
  },
  // Without CAP_SYS_ADMIN: clone only without new namespaces (s390 has flags second);
  // clone3, whose flags a filter cannot see, fails as if it did not exist, so that libc falls back to clone.
  { names: 'clone', arg: [0, 'SCMP_CMP_MASKED_EQ', CLONE_NAMESPACES, 0], notCaps: 'CAP_SYS_ADMIN', notArches: 's390 s390x' },
  { names: 'clone', arg: [1, 'SCMP_CMP_MASKED_EQ', CLONE_NAMESPACES, 0], arches: 's390 s390x', notCaps: 'CAP_SYS_ADMIN' },
  { names: 'clone3', errno: 38, notCaps: 'CAP_SYS_ADMIN' },
  { names: 'reboot', caps: 'CAP_SYS_BOOT' },
  { names: 'chroot', caps: 'CAP_SYS_CHROOT' },
  { names: 'delete_module init_module finit_module', caps: 'CAP_SYS_MODULE' },
  { names: 'acct', caps: 'CAP_SYS_PACCT' },
  { names: 'kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace', caps: 'CAP_SYS_PTRACE' },
  { names: 'iopl ioperm', caps: 'CAP_SYS_RAWIO' },
  { names: 'settimeofday stime clock_settime clock_settime64', caps: 'CAP_SYS_TIME' },
  { names: 'vhangup', caps: 'CAP_SYS_TTY_CONFIG' },
  { names: 'get_mempolicy mbind set_mempolicy set_mempolicy_home_node', caps: 'CAP_SYS_NICE' },
  { names: 'syslog', caps: 'CAP_SYSLOG' },
  { names: 'bpf', caps: 'CAP_BPF' },
  { names: 'perf_event_open', caps: 'CAP_PERFMON' },
];

/** The host architecture's companions: a 32-bit program on a 64-bit host is judged too. */
const ARCH_MAP: [string, string][] = [
  ['X86_64', 'X86 X32'], ['AARCH64', 'ARM'], ['MIPS64', 'MIPS MIPS64N32'], ['MIPS64N32', 'MIPS MIPS64'],
  ['MIPSEL64', 'MIPSEL MIPSEL64N32'], ['MIPSEL64N32', 'MIPSEL MIPSEL64'], ['S390X', 'S390'], ['RISCV64', ''], ['LOONGARCH64', ''],
];

const words = (s: string | undefined) => (s ?? '').trim().split(/\s+/).filter(Boolean);

function filter(caps?: string, arches?: string, kernel?: string): Record<string, unknown> | undefined {
  const f = { ...(caps ? { caps: words(caps) } : {}), ...(arches ? { arches: words(arches) } : {}), ...(kernel ? { minKernel: kernel } : {}) };
  return Object.keys(f).length ? f : undefined;
}

/** The default profile in Docker's JSON format (what `--seccomp-profile=default` reads). */
export function defaultSeccompProfile(): Record<string, unknown> {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    archMap: ARCH_MAP.map(([a, subs]) => ({ architecture: `SCMP_ARCH_${a}`, subArchitectures: words(subs).map((s) => `SCMP_ARCH_${s}`) })),
    syscalls: RULES.map((r) => {
      const includes = filter(r.caps, r.arches, r.kernel);
      const excludes = filter(r.notCaps, r.notArches);
      return {
        names: words(r.names),
        action: r.errno === undefined ? 'SCMP_ACT_ALLOW' : 'SCMP_ACT_ERRNO',
        ...(r.errno === undefined ? {} : { errnoRet: r.errno }),
        ...(r.arg ? { args: [{ index: r.arg[0], value: r.arg[2], valueTwo: r.arg[3] ?? 0, op: r.arg[1] }] } : {}),
        ...(includes ? { includes } : {}),
        ...(excludes ? { excludes } : {}),
      };
    }),
  };
}
