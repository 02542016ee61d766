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
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "end.h"
#include "monitor.h"
#include "spec.h"
#include "tsns.h"

/* cgroup= and parent= words: a hierarchy each, and the levels made above */
#define MONITOR_WORDS 64

/* The command's pid once tsns_exec_monitor knows it, and the signals that
 * came before: Node's other threads do not block what this one blocks, so a
 * signal to tsns may land there at any time between the clone and the
 * monitor's exec. */
static pid_t forward_pid;
static sig_atomic_t noted[NSIG];

/* The flag is set before the pid is read, and taken by exchange on both
 * sides, so a signal is forwarded exactly once: here or by the drain. */
static void forward_or_note(int sig)
{
	int saved = errno;
	__atomic_store_n(&noted[sig], 1, __ATOMIC_SEQ_CST);
	pid_t pid = __atomic_load_n(&forward_pid, __ATOMIC_SEQ_CST);
	if (pid > 0 && __atomic_exchange_n(&noted[sig], 0, __ATOMIC_SEQ_CST))
		kill(pid, sig);
	errno = saved;
}

static void forward_noted(pid_t pid)
{
	__atomic_store_n(&forward_pid, pid, __ATOMIC_SEQ_CST);
	for (int sig = 1; sig < NSIG; sig++)
		if (__atomic_exchange_n(&noted[sig], 0, __ATOMIC_SEQ_CST))
			kill(pid, sig);
}

/* Block them now, in the thread that will exec (before the command starts);
 * where they are forwarded, a signal another thread takes is forwarded too,
 * instead of ending tsns by its default action and leaving the command
 * running without it. */
void tsns_block_monitor_signals(int32_t forward)
{
	sigset_t set;
	monitor_signals(&set, forward);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (!forward)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward_or_note;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGCHLD && sigismember(&set, sig))
			sigaction(sig, &sa, NULL);
}

/* Replace this process (the tsns CLI) with native/monitor.c, which waits
 * for `pid` in a megabyte instead of a Node process.  Returns -errno only
 * when the exec fails; the caller then waits as before. */
int32_t tsns_exec_monitor(int32_t pid, const char *path, int32_t forward, int32_t trace, const char *words)
{
	char pidbuf[16], fdbuf[16];
	if (forward)
		forward_noted(pid);
	/* The monitor's words beyond trace (monitor.c), one a line: what to do
	 * with the command's cgroups once it ends. */
	char *copy = strdup(words ? words : "");
	char *argv[6 + MONITOR_WORDS] = { (char *)"tsns", pidbuf, fdbuf, forward ? (char *)"forward" : (char *)"ignore" };
	int argc = 4;
	if (!copy)
		return -ENOMEM;
	if (trace)
		argv[argc++] = (char *)"trace";
	for (char *save, *w = strtok_r(copy, "\n", &save); w && argc < 5 + MONITOR_WORDS; w = strtok_r(NULL, "\n", &save)) {
		argv[argc++] = w;
		/* The monitor writes bwrap's last status object there. */
		if (strncmp(w, "json-status=", 12) == 0)
			fcntl(atoi(w + 12), F_SETFD, 0);
	}
	argv[argc] = NULL;
	int fd = take_status_fd(pid);
	if (fd >= 0)
		fcntl(fd, F_SETFD, 0);
	snprintf(pidbuf, sizeof pidbuf, "%d", (int)pid);
	snprintf(fdbuf, sizeof fdbuf, "%d", fd);
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
	free(copy);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (fd >= 0)
		keep_status_fd(pid, fd);
	return -err;
}

/* bwrap's --die-with-parent for tsns itself: killed when the process that
 * started it dies (the signal survives the exec of the monitor).  Where that
 * parent is gone already, now. */
void tsns_die_with_parent(int32_t ppid)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != ppid)
		raise(SIGKILL);
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
