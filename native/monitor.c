/*
 * tsns-monitor: what the tsns CLI becomes once the command has started, so
 * that a long-running command is watched by a process of about a megabyte
 * instead of a Node process.  The CLI execs it in place (same pid, so the
 * command is still its child and --kill-child still holds), and it exits
 * or dies exactly as the command did (end.c).
 *
 * usage: tsns-monitor PID STATUS_FD forward|ignore [trace]
 * STATUS_FD (or -1) carries the command's raw wait status when a supervisor
 * (init, time namespace) stands between us and the command.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "end.h"
#include "monitor.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "tsns-monitor: usage: tsns-monitor PID STATUS_FD forward|ignore [trace]\n");
		return 125;
	}
	pid_t pid = (pid_t)atoi(argv[1]);
	int statusfd = atoi(argv[2]);
	int forward = strcmp(argv[3], "forward") == 0;
	double start = argc > 4 ? now_ms() : 0;
	sigset_t set;

	/* Already blocked by the CLI before its exec; blocked again for a monitor run by hand. */
	monitor_signals(&set, forward);
	sigprocmask(SIG_BLOCK, &set, NULL);

	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "tsns: cannot wait for pid %d: %s\n", (int)pid, strerror(errno));
			return 125;
		}
		int sig = sigwaitinfo(&set, NULL);
		if (sig > 0 && sig != SIGCHLD && forward)
			kill(pid, sig);
	}
	int cmd;
	if (statusfd >= 0 && read(statusfd, &cmd, sizeof cmd) == (ssize_t)sizeof cmd)
		st = cmd;
	if (argc > 4)
		fprintf(stderr, "tsns-trace: wait %.3f\n", now_ms() - start);

	/* As the command ended; the terminal first comes back to us (end.c). */
	if (WIFSIGNALED(st))
		end_as(0, WTERMSIG(st));
	end_as(WEXITSTATUS(st), 0);
}
