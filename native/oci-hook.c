/*
 * The startContainer hooks, run by the container's process itself once
 * `tsns-oci start` has opened its exec fifo and before the command's exec,
 * as runc's init runs them: in the container's root and namespaces, with
 * the process's own identity, capabilities and seccomp filter.  Each is
 * forked and exec'd (its path resolved in the container) with the state on
 * its stdin and its stdout and stderr kept for the error, and killed at its
 * timeout.  A failure ends the process before the command runs: one line
 * on its stderr and exit status 1, runc's; `start` has already returned.
 *
 * Child side, after clone: raw system calls and stack buffers only
 * (test/unit/native-rules.test.ts checks the object file).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "oci.h"
#include "spec.h"
#include "sys.h"
#include "wire.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif

#define TAIL 512

long oci_self_pid(char *buf, int len)
{
	long n = SYS(SYS_readlinkat, AT_FDCWD, "/proc/self", buf, len - 1);
	if (n <= 0)
		return n < 0 ? n : -EIO;
	buf[n] = 0;
	return 0;
}

/* A pipe holding the state, its write end closed: read at the hook's pace,
 * never blocking us.  A state larger than a pipe's default 64 KiB gets a
 * pipe that large (up to the system's pipe-max-size). */
static long state_pipe(const char *state, const char *pid)
{
	int p[2];
	long r = SYS(SYS_pipe2, p, O_CLOEXEC);
	if (r < 0)
		return r;
	size_t len = 0, plen = slen(pid);
	for (const char *c = state; *c; c++)
		len += *c == TSNS_PID_MARK ? plen : 1;
	if (len > 65536 && (r = SYS(SYS_fcntl, p[1], F_SETPIPE_SZ, len)) < 0)
		goto out;
	for (const char *c = state; *c;) {
		const char *end = c;
		while (*end && *end != TSNS_PID_MARK)
			end++;
		if (end > c && (r = SYS(SYS_write, p[1], c, end - c)) < 0)
			goto out;
		if (!*end)
			break;
		if ((r = SYS(SYS_write, p[1], pid, plen)) < 0)
			goto out;
		c = end + 1;
	}
	SYS(SYS_close, p[1]);
	return p[0];
out:
	SYS(SYS_close, p[0]);
	SYS(SYS_close, p[1]);
	return r;
}

static long now_ms(void)
{
	struct timespec ts;
	SYS(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct outcome {
	int status;   /* the raw wait status */
	long err;     /* -errno: could not run; -ETIME: outlived its timeout */
	char tail[TAIL];
	int ntail;
};

/* Keep the last TAIL bytes of what the hook wrote. */
static void keep(struct outcome *o, const char *b, long n)
{
	for (long i = 0; i < n; i++) {
		if (o->ntail == TAIL) {
			for (int j = 1; j < TAIL; j++)
				o->tail[j - 1] = o->tail[j];
			o->ntail--;
		}
		o->tail[o->ntail++] = b[i];
	}
}

static void run_hook(const struct spec *s, const struct oci_hook *h, int in, struct outcome *o)
{
	int out[2], ex[2];
	if ((o->err = SYS(SYS_pipe2, out, O_CLOEXEC)) < 0)
		return;
	if ((o->err = SYS(SYS_pipe2, ex, O_CLOEXEC)) < 0)
		goto close_out;
	long pid = SYS(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		/* Only stdio goes to the hook, as Go's exec gives runc's. */
		SYS(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
		long r;
		if ((r = SYS(SYS_dup3, in, 0, 0)) >= 0 && (r = SYS(SYS_dup3, out[1], 1, 0)) >= 0 && (r = SYS(SYS_dup3, out[1], 2, 0)) >= 0)
			r = SYS(SYS_execve, h->path, h->argv, h->envp ? h->envp : s->envp);
		int err = (int)-r;
		SYS(SYS_write, ex[1], &err, sizeof err);
		SYS(SYS_exit_group, 127);
	}
	SYS(SYS_close, out[1]);
	SYS(SYS_close, ex[1]);
	out[1] = -1;
	if (pid < 0) {
		o->err = pid;
		SYS(SYS_close, ex[0]);
		goto close_out;
	}
	int err = 0;
	long n;
	do
		n = SYS(SYS_read, ex[0], &err, sizeof err);
	while (n == -EINTR);
	SYS(SYS_close, ex[0]);
	if (n == sizeof err) {
		SYS(SYS_wait4, pid, &o->status, __WALL, 0);
		o->err = -err;
		goto close_out;
	}
	long pidfd = SYS(SYS_pidfd_open, pid, 0);
	long deadline = h->timeout ? now_ms() + h->timeout * 1000 : 0;
	struct pollfd fds[2] = { { out[0], POLLIN, 0 }, { (int)pidfd, POLLIN, 0 } };
	for (;;) {
		struct timespec ts, *tsp = 0;
		if (deadline) {
			long left = deadline - now_ms();
			if (left <= 0) {
				SYS(SYS_kill, pid, SIGKILL);
				SYS(SYS_wait4, pid, &o->status, __WALL, 0);
				o->err = -ETIME;
				goto close_out;
			}
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			tsp = &ts;
		}
		/* Without a pidfd (it failed: no fd left), the end of its output is its end. */
		long r = SYS(SYS_ppoll, fds, pidfd >= 0 ? 2 : 1, tsp, 0, 8);
		if (r < 0 && r != -EINTR)
			break;
		if (fds[0].fd >= 0 && fds[0].revents) {
			char buf[256];
			n = SYS(SYS_read, out[0], buf, sizeof buf);
			if (n > 0)
				keep(o, buf, n);
			else if (n != -EINTR && n != -EAGAIN) {
				fds[0].fd = -1;
				if (pidfd < 0)
					break;
			}
		}
		if (pidfd >= 0 && fds[1].revents)
			break;
	}
	/* What it wrote before it ended, without waiting for any child of its that holds the pipe. */
	long fl = SYS(SYS_fcntl, out[0], F_GETFL);
	if (fl >= 0 && SYS(SYS_fcntl, out[0], F_SETFL, fl | O_NONBLOCK) >= 0) {
		char buf[256];
		while ((n = SYS(SYS_read, out[0], buf, sizeof buf)) > 0)
			keep(o, buf, n);
	}
	if (pidfd >= 0)
		SYS(SYS_close, pidfd);
	do
		n = SYS(SYS_wait4, pid, &o->status, __WALL, 0);
	while (n == -EINTR);
	o->err = 0;
close_out:
	SYS(SYS_close, out[0]);
	if (out[1] >= 0)
		SYS(SYS_close, out[1]);
}

static void put(char **p, char *end, const char *s)
{
	while (*s && *p < end)
		*(*p)++ = *s++;
}

static void put_num(char **p, char *end, long v)
{
	char tmp[24];
	int n = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10));
	if (v < 0 && *p < end)
		*(*p)++ = '-';
	while (n && *p < end)
		*(*p)++ = tmp[--n];
}

/* The errnos an exec gives most, in tsns's words; the rest by number. */
static void put_errno(char **p, char *end, long err)
{
	static const struct { int err; const char *text; } names[] = {
		{ ENOENT, "No such file or directory (ENOENT)" }, { EACCES, "Permission denied (EACCES)" },
		{ ENOEXEC, "Exec format error (ENOEXEC)" }, { ENOTDIR, "Not a directory (ENOTDIR)" },
		{ ELOOP, "Too many levels of symbolic links (ELOOP)" }, { EPERM, "Operation not permitted (EPERM)" },
		{ E2BIG, "Argument list too long (E2BIG)" }, { ENOMEM, "Cannot allocate memory (ENOMEM)" },
		{ ETXTBSY, "Text file busy (ETXTBSY)" }, { EAGAIN, "Resource temporarily unavailable (EAGAIN)" },
	};
	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].err == err) {
			put(p, end, names[i].text);
			return;
		}
	put(p, end, "errno ");
	put_num(p, end, err);
}

/* "tsns: startContainer hook #I (PATH) WHY[: LAST LINE OF ITS OUTPUT]" and
 * the hint, as src/oci/hooks.ts words the other hooks' failures. */
__attribute__((noreturn)) static void fail(int i, const struct oci_hook *h, const struct outcome *o)
{
	char msg[1024], *p = msg, *end = msg + sizeof msg - 1;
	put(&p, end, "tsns: startContainer hook #");
	put_num(&p, end, i);
	put(&p, end, " (");
	put(&p, end, h->path);
	put(&p, end, ") ");
	if (o->err == -ETIME) {
		put(&p, end, "timed out after ");
		put_num(&p, end, h->timeout);
		put(&p, end, " s");
	} else if (o->err < 0) {
		put(&p, end, "could not run: ");
		put_errno(&p, end, -o->err);
	} else if (WIFSIGNALED(o->status)) {
		put(&p, end, "was killed by signal ");
		put_num(&p, end, WTERMSIG(o->status));
	} else {
		put(&p, end, "exited with status ");
		put_num(&p, end, WEXITSTATUS(o->status));
	}
	int last = o->ntail;
	while (last > 0 && (o->tail[last - 1] == '\n' || o->tail[last - 1] == ' '))
		last--;
	int first = last;
	while (first > 0 && o->tail[first - 1] != '\n')
		first--;
	if (last > first && o->err != -ETIME) {
		put(&p, end, ": ");
		for (int k = first; k < last && p < end; k++)
			*p++ = o->tail[k];
	}
	put(&p, end, "\nhint: hooks.startContainer[");
	put_num(&p, end, i);
	put(&p, end, "] in config.json\n");
	SYS(SYS_write, 2, msg, p - msg);
	SYS(SYS_exit_group, 1);
	__builtin_unreachable();
}

void oci_start_hooks(const struct spec *s, const char *pid)
{
	const struct oci *oc = &s->oci;
	for (int i = 0; i < oc->nhooks; i++) {
		struct outcome o;
		o.ntail = 0;
		o.status = 0;
		long in = state_pipe(oc->hook_state ? oc->hook_state : "{}", pid);
		if (in < 0) {
			o.err = in;
			fail(i, &oc->hooks[i], &o);
		}
		run_hook(s, &oc->hooks[i], (int)in, &o);
		SYS(SYS_close, in);
		if (o.err < 0 || o.status != 0)
			fail(i, &oc->hooks[i], &o);
	}
}
