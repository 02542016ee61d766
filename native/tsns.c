/*
 * tsns native shim: clone a child into new namespaces, prepare it, exec.
 *
 * The child is cloned with CLONE_VM, so starting a command costs the same
 * whether the Node process is 50 MB or 5 GB (no page tables are copied).  The
 * price is that the child runs on memory it shares with Node's threads: it
 * uses its own stack, touches nothing but that stack and the spec the parent
 * built, and makes only raw system calls (glibc's wrappers write errno, which
 * lives in the parent thread's TLS).  Nothing here allocates after clone.
 *
 * Failures are returned as -(stage << 16 | errno); the stage numbers are
 * mirrored in src/errors.ts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum stage {
	ST_SPEC = 1, ST_PIPE, ST_STACK, ST_CLONE, ST_SETGROUPS, ST_UID_MAP,
	ST_GID_MAP, ST_SYNC, ST_HOSTNAME, ST_DOMAINNAME, ST_PROPAGATION,
	ST_MOUNT_PROC, ST_STDIO, ST_EXEC, ST_PERSIST, ST_TIME, ST_TIME_OFFSETS,
	ST_FORK, ST_ROOT, ST_WD, ST_SETGID, ST_SETUID, ST_CAPS, ST_PDEATHSIG,
	ST_NEWUIDMAP, ST_NEWGIDMAP, ST_TARGET, ST_SETNS, ST_SANDBOX, ST_LO,
	ST_NO_NEW_PRIVS, ST_SETSID, ST_SECCOMP,
};

#include "sys.h"
#include "monitor.h"
#include "sandbox.h"

#define STACK_SIZE (256 * 1024)
#define MAX_PERSIST 16
#define MAX_SECCOMP 16

struct persist {
	const char *proc; /* file under /proc/PID/, e.g. "ns/uts" */
	const char *path;
	int late;         /* bound only once the time/pid namespace exists */
	int bound, created;
};

struct spec {
	unsigned long flags;       /* CLONE_NEW*; CLONE_NEWTIME is unshared by a middle process */
	const char *uid_map, *gid_map, *setgroups;
	int newuidmap, newgidmap;  /* write the maps through the setuid helpers */
	const char *hostname, *domainname, *proc_dir, *root, *wd;
	const char *monotonic, *boottime;
	long propagation;          /* MS_* for "/", or 0 to leave it unchanged */
	long uid, gid;             /* -1: unchanged */
	int keep_caps, kill_signal, init, unshare_pid;
	struct persist persist[MAX_PERSIST];
	int npersist;
	int stdio[3];              /* fd to dup onto 0-2; -1 /dev/null; -2 inherit */
	/* enter: the target (a pidfd joins its namespaces at once), or one
	 * fd per namespace, in the order to join them; its root and cwd */
	long target;
	int pidfd;
	unsigned long join_mask;
	struct { int type, fd, from_target; } joins[8];
	int njoins;
	int root_fd, cwd_fd;
	/* the sandbox: filesystem operations and hardening */
	struct sandbox sb;
	int no_new_privs, new_session, lo_up, caps_set;
	uint64_t caps_keep;
	/* compiled seccomp programs, loaded in order just before the exec */
	struct sock_fprog seccomp[MAX_SECCOMP];
	int nseccomp;
	char *copy;                /* the spec, split in place */
	const char *file, *path;
	char **argv, **envp, **shargv;
};

struct child {
	const struct spec *s;
	int errfd, sync, peer, statusfd;
};

/* Kernel layout of struct sigaction (handler, flags, restorer, mask). */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	unsigned long mask;
};

/* Node's handlers mean nothing in the child; every signal to its default. */
static void reset_signals(void)
{
	struct ksigaction dfl = { SIG_DFL, 0, 0, 0 };
	for (int sig = 1; sig < 65; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			SYS(SYS_rt_sigaction, sig, &dfl, 0, 8);
}

static void child_fail(const struct child *c, int stage, long err)
{
	int32_t msg[2] = { stage, (int32_t)-err };
	SYS(SYS_write, c->errfd, msg, sizeof msg);
	SYS(SYS_exit_group, 127);
	__builtin_unreachable();
}

#define CHECK(c, stage, expr)                      \
	do {                                       \
		long r_ = (expr);                  \
		if (r_ < 0)                        \
			child_fail(c, stage, r_);  \
	} while (0)

/* A file without a #! line is a shell script, as execvp(3) has it. */
static long exec_sh(const struct spec *s, const char *path)
{
	s->shargv[1] = (char *)path;
	SYS(SYS_execve, "/bin/sh", s->shargv, s->envp);
	return -ENOEXEC;
}

/* execvp(3) semantics, with the search path the command's environment gave. */
static long child_exec(const struct spec *s)
{
	const char *file = s->file;
	size_t flen = slen(file);
	long r, seen = -ENOENT;
	char buf[PATH_MAX];

	if (flen == 0)
		return -ENOENT;
	for (const char *p = file; *p; p++)
		if (*p == '/')
			goto direct;
	for (const char *dir = s->path;; dir++) {
		const char *end = dir;
		while (*end && *end != ':')
			end++;
		size_t dlen = (size_t)(end - dir);
		if (dlen + flen + 2 <= sizeof buf) {
			memcpy(buf, dlen ? dir : ".", dlen ? dlen : 1);
			size_t at = dlen ? dlen : 1;
			buf[at] = '/';
			memcpy(buf + at + 1, file, flen + 1);
			r = SYS(SYS_execve, buf, s->argv, s->envp);
			if (r == -ENOEXEC)
				return exec_sh(s, buf);
			if (r == -EACCES)
				seen = r;
			else if (r != -ENOENT && r != -ENOTDIR && r != -ELOOP &&
				 r != -ENAMETOOLONG && r != -ESTALE && r != -ENODEV &&
				 r != -ETIMEDOUT)
				return r;
		}
		if (!*end)
			return seen;
		dir = end;
	}
direct:
	r = SYS(SYS_execve, file, s->argv, s->envp);
	return r == -ENOEXEC ? exec_sh(s, file) : r;
}

/* One byte from the parent means "go on"; end of file means it is gone. */
static void await_parent(const struct child *c)
{
	char b;
	long r;
	do
		r = SYS(SYS_read, c->sync, &b, 1);
	while (r == -EINTR);
	if (r != 1)
		SYS(SYS_exit_group, 127);
}

static long write_file(const char *path, const char *text)
{
	long fd = SYS(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fd;
	long w = SYS(SYS_write, fd, text, slen(text));
	SYS(SYS_close, fd);
	return w < 0 ? w : 0;
}

static void append(char **p, const char *s)
{
	while (*s)
		*(*p)++ = *s++;
}

/* Supervise the command from a middle process or a pid namespace's init:
 * forward every signal to it, reap whatever dies, and when the command ends
 * hand its raw wait status to tsns, which dies or exits the same way. */
static void supervise(const struct child *c, long cmd)
{
	unsigned long all = ~0UL;
	for (;;) {
		int st;
		long p;
		while ((p = SYS(SYS_wait4, -1, &st, WNOHANG | __WALL, 0)) > 0) {
			if (p == cmd) {
				SYS(SYS_write, c->statusfd, &st, sizeof st);
				SYS(SYS_exit_group, 0);
			}
		}
		long sig = SYS(SYS_rt_sigtimedwait, &all, 0, 0, 8);
		if (sig > 0 && sig != SIGCHLD)
			SYS(SYS_kill, cmd, sig);
	}
}

/* Credentials, capabilities and the parent-death signal, which a change of
 * credentials would clear; all with raw calls, as glibc's set*id signal
 * every thread of the process. */
static void child_identity(const struct child *c, int deathsig)
{
	const struct spec *s = c->s;
	if (s->keep_caps)
		SYS(SYS_prctl, PR_SET_KEEPCAPS, 1);
	if (s->gid >= 0) {
		long r = SYS(SYS_setgroups, 0, 0);
		if (r < 0 && s->setgroups && s->setgroups[0] == 'a')
			child_fail(c, ST_SETGID, r);
		CHECK(c, ST_SETGID, SYS(SYS_setresgid, s->gid, s->gid, s->gid));
	}
	if (s->uid >= 0)
		CHECK(c, ST_SETUID, SYS(SYS_setresuid, s->uid, s->uid, s->uid));
	if (s->keep_caps) {
		struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 };
		struct { uint32_t eff, perm, inh; } d[2];
		CHECK(c, ST_CAPS, SYS(SYS_capget, &hdr, d));
		for (int i = 0; i < 2; i++)
			d[i].eff = d[i].inh = d[i].perm;
		CHECK(c, ST_CAPS, SYS(SYS_capset, &hdr, d));
		for (int cap = 0; cap < 64; cap++)
			if (d[cap / 32].perm & (1U << (cap % 32)))
				CHECK(c, ST_CAPS, SYS(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0));
	}
	if (deathsig)
		CHECK(c, ST_PDEATHSIG, SYS(SYS_prctl, PR_SET_PDEATHSIG, deathsig));
}

/* setns(pidfd, mask) joins the target's namespaces at once (Linux 5.8+);
 * where it is missing or refuses, join them one by one, user first, which
 * also tells which namespace refused. */
static void child_join(const struct child *c)
{
	const struct spec *s = c->s;
	int mask_done = s->pidfd >= 0 && s->join_mask &&
			SYS(SYS_setns, s->pidfd, s->join_mask) == 0;
	for (int i = 0; i < s->njoins; i++) {
		if (mask_done && s->joins[i].from_target)
			continue;
		long r = SYS(SYS_setns, s->joins[i].fd, s->joins[i].type);
		if (r < 0)
			child_fail(c, ST_SETNS, r - (long)(i << 8));
	}
	if (s->root_fd >= 0) {
		CHECK(c, ST_ROOT, SYS(SYS_fchdir, s->root_fd));
		CHECK(c, ST_ROOT, SYS(SYS_chroot, "."));
	}
	if (s->cwd_fd >= 0)
		CHECK(c, ST_WD, SYS(SYS_fchdir, s->cwd_fd));
}

static int child_main(void *arg)
{
	const struct child *c = arg;
	const struct spec *s = c->s;
	int deathsig = s->kill_signal;

	if (s->kill_signal)
		CHECK(c, ST_PDEATHSIG, SYS(SYS_prctl, PR_SET_PDEATHSIG, s->kill_signal));
	if (c->sync >= 0) {
		/* Our copy of the parent's end would hide the parent's death. */
		SYS(SYS_close, c->peer);
		await_parent(c);
	}
	if (s->njoins)
		child_join(c);
	if (s->lo_up)
		CHECK(c, ST_LO, sandbox_lo_up());
	if (s->hostname)
		CHECK(c, ST_HOSTNAME, SYS(SYS_sethostname, s->hostname, slen(s->hostname)));
	if (s->domainname)
		CHECK(c, ST_DOMAINNAME, SYS(SYS_setdomainname, s->domainname, slen(s->domainname)));
	if ((s->flags & CLONE_NEWNS) && s->propagation)
		CHECK(c, ST_PROPAGATION, SYS(SYS_mount, "none", "/", 0, MS_REC | s->propagation, 0));

	/* clone(2) cannot make a time namespace: unshare it here (with the pid
	 * namespace, when the command must be PID 1 of that too), set the
	 * offsets before anyone enters, and fork the command into it. */
	if (s->flags & CLONE_NEWTIME) {
		CHECK(c, ST_TIME, SYS(SYS_unshare, CLONE_NEWTIME | (s->unshare_pid ? CLONE_NEWPID : 0)));
		char text[96], *p = text;
		if (s->monotonic) {
			append(&p, "monotonic ");
			append(&p, s->monotonic);
			append(&p, " 0\n");
		}
		if (s->boottime) {
			append(&p, "boottime ");
			append(&p, s->boottime);
			append(&p, " 0\n");
		}
		*p = 0;
		if (p != text)
			CHECK(c, ST_TIME_OFFSETS, write_file("/proc/self/timens_offsets", text));
	}
	/* pid_for_children can be bound only once its first process exists, so
	 * the middle says so after the fork, and the command waits for the
	 * parent's bind before going on. */
	int late = c->sync >= 0 && s->npersist && s->persist[s->npersist - 1].late;
	if (c->statusfd >= 0) {
		/* Before the fork: setting SIGCHLD to its default (ignore) would
		 * discard one already pending from a command that ended at once. */
		reset_signals();
		long cmd = SYS(SYS_clone, SIGCHLD, 0, 0, 0, 0);
		if (cmd < 0)
			child_fail(c, ST_FORK, cmd);
		if (cmd > 0) {
			SYS(SYS_prctl, PR_SET_NAME, s->init ? "tsns-init" : "tsns");
			if (late) {
				char b = 'r';
				SYS(SYS_write, c->sync, &b, 1);
			}
			/* Only the command's exec may close the error pipe. */
			SYS(SYS_close, c->errfd);
			SYS(SYS_close, c->sync);
			supervise(c, cmd);
		}
		SYS(SYS_close, c->statusfd);
		/* The command does not outlive its supervisor. */
		if (!deathsig)
			deathsig = SIGKILL;
		if (late)
			await_parent(c);
	}

	if (s->sb.nops) {
		int failed;
		long r = sandbox_build(&s->sb, &failed);
		if (r < 0)
			child_fail(c, ST_SANDBOX, r - (long)((failed + 1) << 8));
	}
	if (s->root) {
		CHECK(c, ST_ROOT, SYS(SYS_chroot, s->root));
		if (!s->wd)
			CHECK(c, ST_ROOT, SYS(SYS_chdir, "/"));
	}
	if (s->wd)
		CHECK(c, ST_WD, SYS(SYS_chdir, s->wd));
	if (s->proc_dir)
		CHECK(c, ST_MOUNT_PROC, SYS(SYS_mount, "proc", s->proc_dir, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0));
	/* Dropping from the bounding set needs CAP_SETPCAP: before -S gives it up;
	 * the rest after, as -G/-S need CAP_SETGID/CAP_SETUID. */
	if (s->caps_set)
		CHECK(c, ST_CAPS, sandbox_bound(s->caps_keep));
	child_identity(c, deathsig);
	if (s->caps_set)
		CHECK(c, ST_CAPS, sandbox_caps(s->caps_keep));
	if (s->no_new_privs)
		CHECK(c, ST_NO_NEW_PRIVS, SYS(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	if (s->new_session)
		CHECK(c, ST_SETSID, SYS(SYS_setsid));

	for (int fd = 0; fd < 3; fd++) {
		long src = s->stdio[fd];
		if (src == -1)
			CHECK(c, ST_STDIO, src = SYS(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC));
		if (src >= 0 && src != fd)
			CHECK(c, ST_STDIO, SYS(SYS_dup3, src, fd, 0));
	}
	/* Node leaves its stdio close-on-exec and sometimes non-blocking. */
	for (int fd = 0; fd < 3; fd++) {
		if (SYS(SYS_fcntl, fd, F_SETFD, 0) < 0)
			continue;
		long fl = SYS(SYS_fcntl, fd, F_GETFL);
		if (fl >= 0 && (fl & O_NONBLOCK))
			CHECK(c, ST_STDIO, SYS(SYS_fcntl, fd, F_SETFL, fl & ~O_NONBLOCK));
	}
	/* Everything else closes at exec, including the error pipe, whose
	 * closing tells the parent that exec succeeded. */
	if (SYS(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 65536; fd++)
			if (fd != c->errfd)
				SYS(SYS_close, fd);
	}

	reset_signals();
	unsigned long none = 0;
	SYS(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, 8);

	/* Last, so that the filters judge the command and not our setup. */
	for (int i = 0; i < s->nseccomp; i++) {
		long r = SYS(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &s->seccomp[i]);
		if (r < 0)
			child_fail(c, ST_SECCOMP, r - (long)(i << 8));
	}
	child_fail(c, ST_EXEC, child_exec(s));
	return 0;
}

/* The spec is a run of NUL-terminated entries, each a tag byte then a value:
 * f flags, u/g uid/gid map, m/n write them with newuidmap/newgidmap,
 * s setgroups, h hostname, d domainname, p proc dir, P propagation,
 * R root, W wd, M/B monotonic/boottime offsets, U/G uid/gid, k keep caps,
 * K kill signal, I init, Q unshare pid with time, N/L persist "proc:path"
 * (L: once the time or pid namespace exists), x file to exec, S search
 * path, a argv, e env, F a seccomp program in hex. */
static int parse_op(char *v, struct sb_op *op)
{
	char *f[5] = { v, 0, 0, 0, 0 };
	int n = 1;
	for (char *p = v; *p && n < 5; p++)
		if (*p == '\x01') {
			*p = 0;
			f[n++] = p + 1;
		}
	if (n != 5)
		return -EINVAL;
	op->code = f[0][0];
	op->try_ = f[0][1] == 't';
	op->a = *f[1] ? f[1] : NULL;
	op->b = f[2];
	op->mode = *f[3] ? strtol(f[3], NULL, 8) : -1;
	op->size = *f[4] ? strtol(f[4], NULL, 10) : -1;
	return 0;
}

/* A compiled seccomp program, hex in the spec, decoded in place (each byte
 * lands no later than the digits it came from). */
static int parse_filter(char *v, struct sock_fprog *prog)
{
	size_t n = slen(v);
	if (n == 0 || n % (2 * sizeof(struct sock_filter)) || n / 2 / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		int b = 0;
		for (int k = 0; k < 2; k++) {
			char h = v[2 * i + k];
			int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : -1;
			if (d < 0)
				return -EINVAL;
			b = b << 4 | d;
		}
		v[i] = (char)b;
	}
	prog->len = (unsigned short)(n / 2 / sizeof(struct sock_filter));
	prog->filter = (struct sock_filter *)v;
	return 0;
}

static int parse_spec(const uint8_t *in, int32_t len, struct spec *s)
{
	int argc = 0, envc = 0;

	if (len <= 0 || in[len - 1] != 0)
		return -EINVAL;
	/* Our own copy: sandbox operations are split in place. */
	char *buf = s->copy = malloc((size_t)len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, in, (size_t)len);
	const char *end = buf + len;
	for (const char *p = (const char *)buf; p < end; p += slen(p) + 1) {
		argc += *p == 'a';
		envc += *p == 'e';
	}
	if (argc == 0)
		return -EINVAL;
	s->argv = calloc((size_t)argc + 1, sizeof(char *));
	s->shargv = calloc((size_t)argc + 2, sizeof(char *));
	s->envp = calloc((size_t)envc + 1, sizeof(char *));
	if (!s->argv || !s->shargv || !s->envp)
		return -ENOMEM;
	argc = envc = 0;
	s->path = "/bin:/usr/bin";
	s->uid = s->gid = -1;
	s->stdio[0] = s->stdio[1] = s->stdio[2] = -2;
	s->pidfd = s->root_fd = s->cwd_fd = -1;
	for (const char *p = buf, *next; p < end; p = next) {
		next = p + slen(p) + 1; /* before an operation is split in place */
		const char *v = p + 1;
		switch (*p) {
		case 'f': s->flags = strtoul(v, NULL, 0); break;
		case 'u': s->uid_map = v; break;
		case 'g': s->gid_map = v; break;
		case 'm': s->newuidmap = 1; break;
		case 'n': s->newgidmap = 1; break;
		case 's': s->setgroups = v; break;
		case 'h': s->hostname = v; break;
		case 'd': s->domainname = v; break;
		case 'p': s->proc_dir = v; break;
		case 'P': s->propagation = strtol(v, NULL, 0); break;
		case 'R': s->root = v; break;
		case 'W': s->wd = v; break;
		case 'M': s->monotonic = v; break;
		case 'B': s->boottime = v; break;
		case 'U': s->uid = strtol(v, NULL, 10); break;
		case 'G': s->gid = strtol(v, NULL, 10); break;
		case 'k': s->keep_caps = 1; break;
		case 'K': s->kill_signal = (int)strtol(v, NULL, 10); break;
		case 'I': s->init = 1; break;
		case 'Q': s->unshare_pid = 1; break;
		case 'N':
		case 'L': {
			const char *colon = strchr(v, ':');
			if (!colon || s->npersist == MAX_PERSIST)
				return -EINVAL;
			struct persist *ps = &s->persist[s->npersist++];
			ps->proc = strndup(v, (size_t)(colon - v));
			ps->path = colon + 1;
			ps->late = *p == 'L';
			if (!ps->proc)
				return -ENOMEM;
			break;
		}
		case 'y': s->target = strtol(v, NULL, 10); break;
		case 'J': {
			char *rest;
			if (s->njoins == 8)
				return -EINVAL;
			s->joins[s->njoins].type = (int)strtol(v, &rest, 0);
			s->joins[s->njoins].fd = (int)strtol(rest + 1, &rest, 10);
			s->joins[s->njoins].from_target = *rest == 't';
			if (s->joins[s->njoins].from_target)
				s->join_mask |= (unsigned long)s->joins[s->njoins].type;
			s->njoins++;
			break;
		}
		case 'r': s->root_fd = (int)strtol(v, NULL, 10); break;
		case 'O':
			if (s->sb.nops == SB_MAX_OPS || parse_op((char *)v, &s->sb.ops[s->sb.nops]) < 0)
				return -EINVAL;
			s->sb.nops++;
			break;
		case 'H':
			s->no_new_privs = strchr(v, 'n') != NULL;
			s->new_session = strchr(v, 's') != NULL;
			s->lo_up = strchr(v, 'l') != NULL;
			s->sb.userxattr = strchr(v, 'x') != NULL;
			break;
		case 'C':
			s->caps_set = 1;
			s->caps_keep = strtoull(v, NULL, 10);
			break;
		case 'c': s->cwd_fd = (int)strtol(v, NULL, 10); break;
		case 'F':
			if (s->nseccomp == MAX_SECCOMP || parse_filter((char *)v, &s->seccomp[s->nseccomp]) < 0)
				return -EINVAL;
			s->nseccomp++;
			break;
		case 'D': {
			char *rest;
			long target = strtol(v, &rest, 10);
			if (target < 0 || target > 2 || *rest != ':')
				return -EINVAL;
			s->stdio[target] = (int)strtol(rest + 1, NULL, 10);
			break;
		}
		case 'x': s->file = v; break;
		case 'S': s->path = v; break;
		case 'a': s->argv[argc++] = (char *)v; break;
		case 'e': s->envp[envc++] = (char *)v; break;
		default: return -EINVAL;
		}
	}
	if (!s->file)
		s->file = s->argv[0];
	s->shargv[0] = "sh";
	for (int i = 1; i < argc; i++)
		s->shargv[i + 1] = s->argv[i];
	return 0;
}

static void free_spec(struct spec *s)
{
	free(s->copy);
	free(s->argv);
	free(s->shargv);
	free(s->envp);
	for (int i = 0; i < s->npersist; i++)
		free((char *)s->persist[i].proc);
}

static int write_proc(pid_t pid, const char *name, const char *text)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	int err = w < 0 ? -errno : (size_t)w != n ? -EIO : 0;
	close(fd);
	return err;
}

/* newuidmap PID inner outer count ...: the map text, one word per field. */
static int run_idmap_helper(const char *helper, pid_t pid, const char *map)
{
	char pidbuf[16], *copy = strdup(map);
	char *argv[3 + 3 * 340 + 1];
	int argc = 0, st;
	pid_t h;

	if (!copy)
		return -ENOMEM;
	snprintf(pidbuf, sizeof pidbuf, "%d", (int)pid);
	argv[argc++] = (char *)helper;
	argv[argc++] = pidbuf;
	for (char *save, *w = strtok_r(copy, " \n", &save); w && argc < (int)(sizeof argv / sizeof *argv) - 1;
	     w = strtok_r(NULL, " \n", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	int err = posix_spawnp(&h, helper, NULL, NULL, argv, environ);
	free(copy);
	if (err)
		return -err;
	while (waitpid(h, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	/* The helper has said why on stderr; EPERM stands for its refusal. */
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EPERM;
}

/* Runs in the parent while the child waits: a process may write only a
 * single self-mapping into its own namespace, so ranges and root's maps
 * have to come from outside. */
static int write_maps(pid_t pid, const struct spec *s)
{
	int r;
	if (s->setgroups && (r = write_proc(pid, "setgroups", s->setgroups)) < 0)
		return -(ST_SETGROUPS << 16 | -r);
	if (s->uid_map) {
		r = s->newuidmap ? run_idmap_helper("newuidmap", pid, s->uid_map) : write_proc(pid, "uid_map", s->uid_map);
		if (r < 0)
			return -((s->newuidmap ? ST_NEWUIDMAP : ST_UID_MAP) << 16 | -r);
	}
	if (s->gid_map) {
		r = s->newgidmap ? run_idmap_helper("newgidmap", pid, s->gid_map) : write_proc(pid, "gid_map", s->gid_map);
		if (r < 0)
			return -((s->newgidmap ? ST_NEWGIDMAP : ST_GID_MAP) << 16 | -r);
	}
	return 0;
}

/* Bind /proc/PID/<ns> onto a file so the namespace outlives its processes.
 * The file is created exclusively, or opened without following a link, and
 * the mount goes through the opened fd so nobody can swap the path. */
static int persist_ns(pid_t pid, struct persist *p)
{
	char src[64], dst[32];
	int fd = open(p->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		p->created = 1;
	} else if (errno == EEXIST) {
		struct stat st;
		fd = open(p->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
			close(fd);
			return -EINVAL;
		}
	}
	if (fd < 0)
		return -errno;
	snprintf(src, sizeof src, "/proc/%d/%s", (int)pid, p->proc);
	snprintf(dst, sizeof dst, "/proc/self/fd/%d", fd);
	int r = mount(src, dst, NULL, MS_BIND, NULL) < 0 ? -errno : 0;
	close(fd);
	if (r == 0)
		p->bound = 1;
	else if (p->created)
		unlink(p->path);
	return r;
}

static int persist_all(pid_t pid, struct spec *s, int late)
{
	for (int i = 0; i < s->npersist; i++) {
		if (s->persist[i].late != late)
			continue;
		int r = persist_ns(pid, &s->persist[i]);
		if (r < 0)
			return -(ST_PERSIST << 16 | i << 8 | -r);
	}
	return 0;
}

/* Nothing outlives a failed start. */
static void unpersist(struct spec *s)
{
	for (int i = 0; i < s->npersist; i++) {
		if (s->persist[i].bound)
			umount2(s->persist[i].path, MNT_DETACH);
		if (s->persist[i].created)
			unlink(s->persist[i].path);
	}
}

static int64_t fail(int stage, int err)
{
	return -(int64_t)(stage << 16 | err);
}

/* Status pipes of middle processes, by pid, for wait_one(). */
static struct { pid_t pid; int fd; } *status_fds;
static size_t nstatus;

static void keep_status_fd(pid_t pid, int fd)
{
	for (size_t i = 0; i < nstatus; i++)
		if (status_fds[i].pid == 0) {
			status_fds[i].pid = pid;
			status_fds[i].fd = fd;
			return;
		}
	void *grown = realloc(status_fds, (nstatus + 16) * sizeof *status_fds);
	if (!grown) {
		close(fd);
		return;
	}
	status_fds = grown;
	memset(status_fds + nstatus, 0, 16 * sizeof *status_fds);
	status_fds[nstatus].pid = pid;
	status_fds[nstatus].fd = fd;
	nstatus += 16;
}

static int take_status_fd(pid_t pid)
{
	for (size_t i = 0; i < nstatus; i++)
		if (status_fds[i].pid == pid) {
			status_fds[i].pid = 0;
			return status_fds[i].fd;
		}
	return -1;
}

static int64_t handshake(pid_t pid, struct spec *s, int sync, int errfd)
{
	char b = 'g';
	int r = 0;
	if (sync >= 0) {
		if ((r = write_maps(pid, s)) < 0 || (r = persist_all(pid, s, 0)) < 0)
			return r;
		if (write(sync, &b, 1) != 1)
			return fail(ST_SYNC, errno);
		if (s->npersist && s->persist[s->npersist - 1].late) {
			/* The child says when its time/pid namespace exists, or fails. */
			ssize_t n;
			do
				n = read(sync, &b, 1);
			while (n < 0 && errno == EINTR);
			if (n == 1) {
				if ((r = persist_all(pid, s, 1)) < 0)
					return r;
				if (write(sync, &b, 1) != 1)
					return fail(ST_SYNC, errno);
			}
		}
	}
	int32_t msg[2];
	ssize_t n;
	do
		n = read(errfd, msg, sizeof msg);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof msg ? fail(msg[0], msg[1]) : 0;
}

/* Child stacks are kept for the next spawn: a fresh mapping costs page
 * faults in the child, and unmapping one the child touched on another CPU
 * costs a TLB shootdown there.  handshake() returns only once the child has
 * exec'd (its close-on-exec error pipe closes after the switch to the new
 * memory) or is dead, so the stack is free again by then. */
#define STACK_POOL 4
static pthread_mutex_t stack_lock = PTHREAD_MUTEX_INITIALIZER;
static char *stack_pool[STACK_POOL];
static int stack_count;

static char *stack_get(void)
{
	pthread_mutex_lock(&stack_lock);
	char *stack = stack_count ? stack_pool[--stack_count] : NULL;
	pthread_mutex_unlock(&stack_lock);
	if (stack)
		return stack;
	stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	return stack == MAP_FAILED ? NULL : stack;
}

static void stack_put(char *stack)
{
	pthread_mutex_lock(&stack_lock);
	if (stack_count < STACK_POOL) {
		stack_pool[stack_count++] = stack;
		stack = NULL;
	}
	pthread_mutex_unlock(&stack_lock);
	if (stack)
		munmap(stack, STACK_SIZE);
}

int64_t tsns_spawn(const uint8_t *buf, int32_t len)
{
	struct spec s;
	int errp[2] = { -1, -1 }, syncp[2] = { -1, -1 }, statp[2] = { -1, -1 };
	int64_t ret;
	memset(&s, 0, sizeof s);
	int r = parse_spec(buf, len, &s);

	if (r < 0) {
		free_spec(&s);
		return fail(ST_SPEC, -r);
	}
	int need_sync = s.uid_map || s.gid_map || s.setgroups || s.npersist;
	/* A process that outlives the exec (an init, or the parent of a
	 * command in a new time namespace) cannot share Node's memory. */
	int joins_children = 0;
	for (int i = 0; i < s.njoins; i++)
		joins_children |= s.joins[i].type & (CLONE_NEWPID | CLONE_NEWTIME);
	int middle = s.init || (s.flags & CLONE_NEWTIME) || joins_children;
	if (s.target > 0) {
		/* Pins the target: its pid cannot be reused while we join. */
		s.pidfd = (int)syscall(SYS_pidfd_open, (pid_t)s.target, 0);
		if (s.pidfd < 0 && errno != ENOSYS) {
			ret = fail(ST_TARGET, errno);
			goto out;
		}
	}
	if (pipe2(errp, O_CLOEXEC) < 0 ||
	    (need_sync && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, syncp) < 0) ||
	    (middle && pipe2(statp, O_CLOEXEC) < 0)) {
		ret = fail(ST_PIPE, errno);
		goto out;
	}
	char *stack = stack_get();
	if (!stack) {
		ret = fail(ST_STACK, errno);
		goto out;
	}
	struct child c = { &s, errp[1], syncp[1], syncp[0], statp[1] };
	int flags = (int)(s.flags & ~(unsigned long)CLONE_NEWTIME) | SIGCHLD;
	if (!middle)
		/* With the maps written from here the child must run alongside
		 * us; otherwise vfork semantics keep it off our stack cheaply. */
		flags |= SHARED_VM | (need_sync ? 0 : CLONE_VFORK);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone(child_main, stack + STACK_SIZE, flags, &c);
	int clone_err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; i < 2; i++) {
		int *end = i ? &syncp[1] : &errp[1];
		if (*end >= 0)
			close(*end);
		*end = -1;
	}
	if (statp[1] >= 0) {
		close(statp[1]);
		statp[1] = -1;
	}
	if (pid < 0) {
		ret = fail(ST_CLONE, clone_err);
		goto unmap;
	}
	ret = handshake(pid, &s, syncp[0], errp[0]);
	if (ret < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, __WALL);
		unpersist(&s);
	} else {
		ret = pid;
		if (statp[0] >= 0) {
			keep_status_fd(pid, statp[0]);
			statp[0] = -1;
		}
	}
unmap:
	stack_put(stack);
out:
	for (int i = 0; i < 2; i++) {
		if (errp[i] >= 0)
			close(errp[i]);
		if (syncp[i] >= 0)
			close(syncp[i]);
		if (statp[i] >= 0)
			close(statp[i]);
	}
	if (s.pidfd >= 0)
		close(s.pidfd);
	free_spec(&s);
	return ret;
}

/* For fds this library made: Node's fs.closeSync warns in a worker thread
 * about closing an fd it did not open. */
int32_t tsns_close(int32_t fd)
{
	return close(fd) < 0 ? -errno : 0;
}

/* A close-on-exec pipe for the command's stdio: read end << 16 | write end. */
int64_t tsns_pipe(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	return (int64_t)p[0] << 16 | p[1];
}

static int32_t encode_status(int st)
{
	if (WIFSIGNALED(st))
		return 2 << 16 | WTERMSIG(st);
	return 1 << 16 | WEXITSTATUS(st);
}

/* 0 while running; 1<<16 | code after exit; 2<<16 | signal after a signal
 * death; -errno on error.  Never blocks: Node asks on SIGCHLD.  For a
 * supervised command the status is the command's, not its supervisor's. */
static int32_t wait_one(int32_t pid)
{
	int st, cmd;
	pid_t r = waitpid(pid, &st, WNOHANG | __WALL);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	int fd = take_status_fd(pid);
	if (fd >= 0) {
		ssize_t n = read(fd, &cmd, sizeof cmd);
		close(fd);
		if (n == (ssize_t)sizeof cmd)
			st = cmd;
	}
	return encode_status(st);
}

/* wait_one() for every running command in one call: `slots` holds n
 * {pid, status} pairs of int32 and each status is overwritten with what
 * wait_one(pid) returns.  Node calls this once per SIGCHLD, so the cost of
 * a call from JavaScript is paid once, not once per command in flight. */
int32_t tsns_wait_all(uint8_t *slots, int32_t n)
{
	int32_t ended = 0;
	for (int32_t i = 0; i < n; i++) {
		int32_t slot[2];
		memcpy(slot, slots + 8 * i, sizeof slot);
		slot[1] = wait_one(slot[0]);
		memcpy(slots + 8 * i, slot, sizeof slot);
		ended += slot[1] != 0;
	}
	return ended;
}

/* Block them now, in the thread that will exec (before the command starts). */
void tsns_block_monitor_signals(int32_t forward)
{
	sigset_t set;
	monitor_signals(&set, forward);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Replace this process (the tsns CLI) with native/monitor.c, which waits
 * for `pid` in a megabyte instead of a Node process.  Returns -errno only
 * when the exec fails; the caller then waits as before. */
int32_t tsns_exec_monitor(int32_t pid, const char *path, int32_t forward, int32_t trace)
{
	char pidbuf[16], fdbuf[16];
	int fd = take_status_fd(pid);
	if (fd >= 0)
		fcntl(fd, F_SETFD, 0);
	snprintf(pidbuf, sizeof pidbuf, "%d", (int)pid);
	snprintf(fdbuf, sizeof fdbuf, "%d", fd);
	char *argv[] = { (char *)"tsns", pidbuf, fdbuf, forward ? (char *)"forward" : (char *)"ignore",
			 trace ? (char *)"trace" : NULL, NULL };
	/* The monitor's signals stay blocked across the exec (and pending ones
	 * pending), so that none sent during the hand-over is lost or meets a
	 * default action; the monitor takes them with sigwaitinfo. */
	sigset_t set;
	monitor_signals(&set, forward);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* Node keeps its stdio close-on-exec; the monitor needs it (messages, the tty). */
	for (int i = 0; i < 3; i++)
		fcntl(i, F_SETFD, 0);
	execve(path, argv, environ);
	int err = errno;
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (fd >= 0)
		keep_status_fd(pid, fd);
	return -err;
}

/* Give the terminal's foreground back to our process group when the command
 * (an interactive shell in a new pid namespace, say) left it elsewhere. */
void tsns_reclaim_tty(void)
{
	if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) == getpgrp())
		return;
	sigset_t ttou, old;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &ttou, &old);
	tcsetpgrp(STDIN_FILENO, getpgrp());
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Die of `sig` the way the command did, so the caller's shell sees the same
 * death; without a core file, which would only be of Node. */
void tsns_die(int32_t sig)
{
	struct rlimit nocore = { 0, 0 };
	struct sigaction dfl;
	sigset_t set;

	setrlimit(RLIMIT_CORE, &nocore);
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	syscall(SYS_tgkill, getpid(), gettid(), sig);
	_exit(128 + sig);
}
