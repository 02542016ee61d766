/*
 * How the Node process leaves once its command has started: the CLI hands
 * the wait to tsns-monitor (monitor.c) by an exec in place, or tsns ends as
 * the command did, by end.c's rules, which the monitor follows too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "end.h"
#include "monitor.h"
#include "spec.h"
#include "tsns.h"

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

void tsns_reclaim_tty(void)
{
	end_reclaim_tty();
}

void tsns_die(int32_t sig)
{
	end_die(sig);
}

/* For the Node process the same end as the monitor's, in one call. */
void tsns_end(int32_t code, int32_t sig)
{
	end_as(code, sig);
}
