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
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum stage {
	ST_SPEC = 1, ST_PIPE, ST_STACK, ST_CLONE, ST_SETGROUPS, ST_UID_MAP,
	ST_GID_MAP, ST_SYNC, ST_HOSTNAME, ST_DOMAINNAME, ST_PROPAGATION,
	ST_MOUNT_PROC, ST_STDIO, ST_EXEC,
};

#if defined(__x86_64__)
static inline long sc6(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#define SHARED_VM CLONE_VM
#elif defined(__aarch64__)
static inline long sc6(long n, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}
#define SHARED_VM CLONE_VM
#else
/* No raw syscall stub for this architecture: fall back to a fork-style
 * clone, where the child's errno is its own. */
static long sc6(long n, long a, long b, long c, long d, long e, long f)
{
	long r = syscall(n, a, b, c, d, e, f);
	return r == -1 ? -errno : r;
}
#define SHARED_VM 0
#endif
#define SYS_(n, a, b, c, d, e, f, ...) \
	sc6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define SYS(...) SYS_(__VA_ARGS__, 0, 0, 0, 0, 0, 0, 0)

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define STACK_SIZE (256 * 1024)

struct spec {
	unsigned long flags;
	const char *uid_map, *gid_map, *setgroups;
	const char *hostname, *domainname, *proc_dir;
	long propagation; /* MS_* for "/", or 0 to leave it unchanged */
	const char *file, *path;
	char **argv, **envp, **shargv;
};

struct child {
	const struct spec *s;
	int errfd, syncfd, syncw;
};

/* Kernel layout of struct sigaction (handler, flags, restorer, mask). */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	unsigned long mask;
};

static void child_fail(const struct child *c, int stage, long err)
{
	int32_t msg[2] = { stage, (int32_t)-err };
	SYS(SYS_write, c->errfd, msg, sizeof msg);
	SYS(SYS_exit_group, 127);
	__builtin_unreachable();
}

static size_t slen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

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

static int child_main(void *arg)
{
	const struct child *c = arg;
	const struct spec *s = c->s;
	long r;

	if (c->syncfd >= 0) {
		char b;
		/* The parent closes its end once the id maps are written; ours
		 * must go first or the read would never see the end. */
		SYS(SYS_close, c->syncw);
		do
			r = SYS(SYS_read, c->syncfd, &b, 1);
		while (r == -EINTR);
		if (r != 0)
			child_fail(c, ST_SYNC, r < 0 ? r : -EPROTO);
	}
	if (s->hostname && (r = SYS(SYS_sethostname, s->hostname, slen(s->hostname))) < 0)
		child_fail(c, ST_HOSTNAME, r);
	if (s->domainname && (r = SYS(SYS_setdomainname, s->domainname, slen(s->domainname))) < 0)
		child_fail(c, ST_DOMAINNAME, r);
	if ((s->flags & CLONE_NEWNS) && s->propagation &&
	    (r = SYS(SYS_mount, "none", "/", 0, MS_REC | s->propagation, 0)) < 0)
		child_fail(c, ST_PROPAGATION, r);
	if (s->proc_dir &&
	    (r = SYS(SYS_mount, "proc", s->proc_dir, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0)) < 0)
		child_fail(c, ST_MOUNT_PROC, r);

	/* Node leaves its stdio close-on-exec and sometimes non-blocking. */
	for (int fd = 0; fd < 3; fd++) {
		if (SYS(SYS_fcntl, fd, F_SETFD, 0) < 0)
			continue;
		long fl = SYS(SYS_fcntl, fd, F_GETFL);
		if (fl >= 0 && (fl & O_NONBLOCK) &&
		    (r = SYS(SYS_fcntl, fd, F_SETFL, fl & ~O_NONBLOCK)) < 0)
			child_fail(c, ST_STDIO, r);
	}
	/* Everything else closes at exec, including the error pipe, whose
	 * closing tells the parent that exec succeeded. */
	if (SYS(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 65536; fd++)
			if (fd != c->errfd)
				SYS(SYS_close, fd);
	}

	struct ksigaction dfl = { SIG_DFL, 0, 0, 0 };
	for (int sig = 1; sig < 65; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			SYS(SYS_rt_sigaction, sig, &dfl, 0, 8);
	unsigned long none = 0;
	SYS(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, 8);

	child_fail(c, ST_EXEC, child_exec(s));
	return 0;
}

/* The spec is a run of NUL-terminated entries, each a tag byte then a value:
 * f flags, u uid_map, g gid_map, s setgroups, h hostname, d domainname,
 * p proc dir, P propagation, x file to exec, S search path, a argv, e env. */
static int parse_spec(const uint8_t *buf, int32_t len, struct spec *s)
{
	int argc = 0, envc = 0;
	const char *end = (const char *)buf + len;

	if (len <= 0 || buf[len - 1] != 0)
		return -EINVAL;
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
	for (const char *p = (const char *)buf; p < end; p += slen(p) + 1) {
		const char *v = p + 1;
		switch (*p) {
		case 'f': s->flags = strtoul(v, NULL, 0); break;
		case 'u': s->uid_map = v; break;
		case 'g': s->gid_map = v; break;
		case 's': s->setgroups = v; break;
		case 'h': s->hostname = v; break;
		case 'd': s->domainname = v; break;
		case 'p': s->proc_dir = v; break;
		case 'P': s->propagation = strtol(v, NULL, 0); break;
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
	free(s->argv);
	free(s->shargv);
	free(s->envp);
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

/* Runs in the parent while the child waits on the sync pipe: a process may
 * write only a single self-mapping into its own namespace, so ranges and
 * root's maps have to come from outside. */
static int write_maps(pid_t pid, const struct spec *s)
{
	int r;
	if (s->setgroups && (r = write_proc(pid, "setgroups", s->setgroups)) < 0)
		return -(ST_SETGROUPS << 16 | -r);
	if (s->uid_map && (r = write_proc(pid, "uid_map", s->uid_map)) < 0)
		return -(ST_UID_MAP << 16 | -r);
	if (s->gid_map && (r = write_proc(pid, "gid_map", s->gid_map)) < 0)
		return -(ST_GID_MAP << 16 | -r);
	return 0;
}

static int64_t fail(int stage, int err)
{
	return -(int64_t)(stage << 16 | err);
}

int64_t tsns_spawn(const uint8_t *buf, int32_t len)
{
	struct spec s = { 0 };
	int errp[2] = { -1, -1 }, syncp[2] = { -1, -1 };
	int64_t ret;
	int r = parse_spec(buf, len, &s);

	if (r < 0) {
		free_spec(&s);
		return fail(ST_SPEC, -r);
	}
	int need_sync = s.uid_map || s.gid_map || s.setgroups;
	if (pipe2(errp, O_CLOEXEC) < 0 || (need_sync && pipe2(syncp, O_CLOEXEC) < 0)) {
		ret = fail(ST_PIPE, errno);
		goto out;
	}
	char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	if (stack == MAP_FAILED) {
		ret = fail(ST_STACK, errno);
		goto out;
	}
	struct child c = { &s, errp[1], syncp[0], syncp[1] };
	/* With the maps written from here the child must run alongside us;
	 * otherwise vfork semantics keep the child off our stack cheaply. */
	int flags = (int)s.flags | SIGCHLD | SHARED_VM | (need_sync ? 0 : CLONE_VFORK);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone(child_main, stack + STACK_SIZE, flags, &c);
	int clone_err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(errp[1]);
	errp[1] = -1;
	if (pid < 0) {
		ret = fail(ST_CLONE, clone_err);
		goto unmap;
	}
	if (need_sync) {
		close(syncp[0]);
		syncp[0] = -1;
		if ((r = write_maps(pid, &s)) < 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, __WALL);
			ret = r;
			goto unmap;
		}
		close(syncp[1]);
		syncp[1] = -1;
	}
	int32_t msg[2];
	ssize_t n;
	do
		n = read(errp[0], msg, sizeof msg);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof msg) {
		waitpid(pid, NULL, __WALL);
		ret = fail(msg[0], msg[1]);
	} else {
		ret = pid;
	}
unmap:
	munmap(stack, STACK_SIZE);
out:
	for (int i = 0; i < 2; i++) {
		if (errp[i] >= 0)
			close(errp[i]);
		if (syncp[i] >= 0)
			close(syncp[i]);
	}
	free_spec(&s);
	return ret;
}

/* 0 while running; 1<<16 | code after exit; 2<<16 | signal after a signal
 * death; -errno on error.  Never blocks: Node calls this on SIGCHLD. */
int32_t tsns_wait(int32_t pid)
{
	int st;
	pid_t r = waitpid(pid, &st, WNOHANG | __WALL);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	if (WIFSIGNALED(st))
		return 2 << 16 | WTERMSIG(st);
	return 1 << 16 | WEXITSTATUS(st);
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
