/*
 * Exit notices for JavaScript threads that get no SIGCHLD: Node delivers
 * signals to the main thread only, so run() in a worker thread would never
 * hear that its command ended.
 *
 * For such a thread, tsns_watcher_start() starts one native thread that
 * polls the pidfds of that thread's commands and writes a byte to the
 * thread's notice pipe whenever one ends; the JavaScript side then reaps as
 * it does on SIGCHLD.  The watcher owns every fd it is handed (the notice
 * pipe's write end and each pidfd) and closes them all itself once the
 * control pipe is closed, so nothing is ever written to an fd its owner has
 * let go of, and a worker that ends leaves no thread or fd behind.  A worker
 * that is terminated closes only its end of the notice pipe: the watcher
 * then reaps that worker's commands itself as they end, and goes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsns.h"

struct watcher {
	int ctl, notice;
};

/* fds[0]: the control pipe; fds[1]: the notice pipe, watched only for its
 * reader going away; then one pidfd per command. */
#define FIRST_PIDFD 2

static void *watcher_main(void *arg)
{
	struct watcher w = *(struct watcher *)arg;
	struct pollfd *fds = malloc(16 * sizeof *fds);
	size_t n = FIRST_PIDFD, cap = 16;
	/* The JavaScript thread is gone without closing the control pipe (a
	 * worker that was terminated): reap its commands as they end. */
	int orphaned = 0;

	free(arg);
	if (!fds)
		goto out;
	fds[0] = (struct pollfd){ .fd = w.ctl, .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = w.notice, .events = 0 };
	for (;;) {
		if (orphaned && n == FIRST_PIDFD)
			break;
		if (poll(fds, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[1].revents & (POLLERR | POLLHUP)) {
			orphaned = 1;
			fds[1].fd = -1; /* poll skips it from now on */
		}
		int ended = 0;
		for (size_t i = n; i-- > FIRST_PIDFD;) {
			if (!fds[i].revents)
				continue;
			if (orphaned) {
				/* By pidfd: a pid could already be someone else's. */
				siginfo_t si;
				waitid((idtype_t)P_PIDFD, (id_t)fds[i].fd, &si, WEXITED | WNOHANG);
			}
			close(fds[i].fd);
			fds[i] = fds[--n];
			ended = 1;
		}
		/* Non-blocking: a full pipe already says "reap". */
		if (ended && !orphaned && write(w.notice, "x", 1) < 0 && errno == EPIPE) {
			orphaned = 1;
			fds[1].fd = -1;
		}
		if (!fds[0].revents)
			continue;
		int got[64];
		ssize_t r = read(w.ctl, got, sizeof got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* the owner closed the control pipe */
		/* Each pidfd came in one 4-byte write: reads hold whole ones. */
		for (size_t i = 0; i < (size_t)r / sizeof got[0]; i++) {
			if (n == cap) {
				struct pollfd *more = realloc(fds, 2 * cap * sizeof *fds);
				if (!more) {
					close(got[i]);
					continue;
				}
				fds = more;
				cap *= 2;
			}
			fds[n++] = (struct pollfd){ .fd = got[i], .events = POLLIN };
		}
	}
	for (size_t i = FIRST_PIDFD; i < n; i++)
		close(fds[i].fd);
	free(fds);
out:
	close(w.ctl);
	close(w.notice);
	return NULL;
}

/* Start a watcher that writes to `notice` (which it then owns); returns the
 * write end of its control pipe, or -errno (then `notice` is still ours). */
int64_t tsns_watcher_start(int32_t notice)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	struct watcher *w = malloc(sizeof *w);
	if (!w || fcntl(notice, F_SETFL, O_NONBLOCK) < 0) {
		int e = w ? errno : ENOMEM;
		free(w);
		close(p[0]);
		close(p[1]);
		return -e;
	}
	*w = (struct watcher){ p[0], notice };
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Room for the thread-local storage glibc puts on a thread's stack too. */
	pthread_attr_setstacksize(&attr, 256 * 1024);
	/* Signals stay with Node's threads: the watcher blocks them all. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	int e = pthread_create(&t, &attr, watcher_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (e) {
		free(w);
		close(p[0]);
		close(p[1]);
		return -e;
	}
	return p[1];
}

/* Hand the watcher behind `ctl` a pidfd for `pid`: 0, or -errno. */
int32_t tsns_watch(int32_t ctl, int32_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (fd < 0)
		return -errno;
	if (write(ctl, &fd, sizeof fd) != (ssize_t)sizeof fd) {
		int e = errno;
		close(fd);
		return -e;
	}
	return 0;
}
