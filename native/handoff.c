/*
 * How the Node process leaves once its command has started: the CLI hands
 * the wait to tsns-monitor (monitor.c) by an exec in place, or tsns ends as
 * the command did.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

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
