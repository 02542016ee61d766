/*
 * The command's cgroups, on the parent side of a spawn: the command is in
 * them before its first instruction.  On cgroup v2 the child is cloned
 * straight into its directory (clone3 with CLONE_INTO_CGROUP); into every
 * other cgroup (v1, or v2 where clone3 cannot) the parent writes the
 * child's pid while the child waits on the sync socket.  src/ made the
 * cgroups and opened the fds (wire.h's CGROUP_PROCS and CGROUP_DIR).
 *
 * Also: the device rules of a v2 cgroup, an eBPF program attached to it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

#include "spec.h"
#include "sys.h"
#include "tsns.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* The kernel's struct clone_args as of Linux 5.7 (CLONE_ARGS_SIZE_VER2). */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

#if defined(__x86_64__)
/*
 * clone3 returns in the child on the new stack (or, without CLONE_VM, on a
 * copy of ours) with every register as it was but rax: the child calls
 * fn(arg) from there and never comes back into C.  The stack is aligned
 * and a red zone's worth lower, for the copy case, before the call.
 */
static long clone3_call(struct clone3_args *args, int (*fn)(void *), void *arg)
{
	long ret;
	register void *r12 __asm__("r12") = (void *)fn;
	register void *r13 __asm__("r13") = arg;
	__asm__ volatile("syscall\n\t"
			 "testq %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xorl %%ebp, %%ebp\n\t"
			 "andq $-16, %%rsp\n\t"
			 "subq $128, %%rsp\n\t"
			 "movq %%r13, %%rdi\n\t"
			 "callq *%%r12\n\t"
			 "movq %%rax, %%rdi\n\t"
			 "movl $231, %%eax\n\t" /* exit_group */
			 "syscall\n\t"
			 "hlt\n"
			 "1:"
			 : "=a"(ret)
			 : "a"((long)SYS_clone3), "D"(args), "S"(sizeof *args), "r"(r12), "r"(r13)
			 : "rcx", "r11", "memory");
	return ret;
}
#define HAVE_CLONE3_CALL 1
#endif

pid_t cgroup_clone(struct child *c, char *stack, size_t stack_size, unsigned long flags)
{
#ifdef HAVE_CLONE3_CALL
	struct clone3_args args;
	memset(&args, 0, sizeof args);
	args.flags = (uint64_t)(flags & ~(unsigned long)CSIGNAL) | CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	if (flags & CLONE_VM) {
		args.stack = (uint64_t)(uintptr_t)stack;
		args.stack_size = stack_size;
	}
	args.cgroup = (uint64_t)c->s->cgroup_dir;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	long r = clone3_call(&args, child_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		/* Too old a kernel (no clone3, or no cgroup field: E2BIG), or a
		 * seccomp filter that refuses clone3 (container runtimes give
		 * ENOSYS, some EPERM): the caller falls back to cgroup.procs. */
		errno = r == -E2BIG || r == -EPERM ? ENOSYS : (int)-r;
		return -1;
	}
	return (pid_t)r;
#else
	(void)c, (void)stack, (void)stack_size, (void)flags;
	errno = ENOSYS;
	return -1;
#endif
}

int cgroup_fall_back(struct spec *s)
{
	if (s->ncgroup_procs == MAX_CGROUPS)
		return -EINVAL;
	int fd = openat(s->cgroup_dir, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	s->cgroup_procs[s->ncgroup_procs++] = fd;
	/* Ours, unlike src/'s: tsns_spawn closes it. */
	s->cgroup_own_fd = fd;
	return 0;
}

int64_t cgroup_place(pid_t pid, const struct spec *s)
{
	char text[16];
	int n = snprintf(text, sizeof text, "%d", (int)pid);
	for (int i = 0; i < s->ncgroup_procs; i++) {
		ssize_t w;
		do
			w = write(s->cgroup_procs[i], text, (size_t)n);
		while (w < 0 && errno == EINTR);
		if (w != n) {
			int err = w < 0 ? errno : EIO;
			return -(int64_t)(ST_CGROUP_PROCS << TSNS_STAGE_SHIFT | i << TSNS_INDEX_SHIFT | err);
		}
	}
	return 0;
}

/* A BPF_PROG_TYPE_CGROUP_DEVICE program (src/cgroup/devices.ts built it)
 * attached to the v2 cgroup open on dirfd, alongside any others. */
int32_t tsns_cgroup_devices(int32_t dirfd, const uint8_t *insns, int32_t len)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = (uint32_t)len / 8;
	attr.license = (uint64_t)(uintptr_t)"GPL";
	int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
	if (prog < 0)
		return -errno;
	memset(&attr, 0, sizeof attr);
	attr.target_fd = (uint32_t)dirfd;
	attr.attach_bpf_fd = (uint32_t)prog;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	int r = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof attr) < 0 ? -errno : 0;
	/* Attached, the program lives as long as the cgroup. */
	close(prog);
	return r;
}
