/*
 * tsns-monitor: what the tsns CLI becomes once the command has started, so
 * that a long-running command is watched by a process of about a megabyte
 * instead of a Node process.  The CLI execs it in place (same pid, so the
 * command is still its child and --kill-child still holds), and it exits
 * or dies exactly as the command did (end.c).
 *
 * usage: tsns-monitor PID STATUS_FD forward|ignore [WORD...]
 * STATUS_FD (or -1) carries the command's raw wait status when a supervisor
 * (init, time namespace) stands between us and the command.  WORDs:
 *   trace          print how long the wait took
 *   oom=N:FILE     FILE counts OOM kills (memory.oom_control, memory.events),
 *                  N of them before the command started
 *   cgroup=DIR     a cgroup tsns made for the command: emptied and removed
 *   parent=DIR     a directory tsns made above one: removed if empty
 *   json-status=FD bwrap's --json-status-fd: the exit-code object goes there
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

#include "cgclean.h"
#include "end.h"
#include "monitor.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* After the command: say whether the memory limit killed, then remove
 * the cgroups tsns made for it, as src/cgroup/ does without a monitor. */
static void end_cgroups(int n, char **words, int st)
{
	for (int i = 0; i < n; i++) {
		char *file;
		long before = strtol(words[i] + 4, &file, 10);
		if (strncmp(words[i], "oom=", 4) != 0 || *file != ':')
			continue;
		long after = cg_oom_kills(file + 1);
		if (after > before && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
			fprintf(stderr, "tsns: killed by the memory limit (oom_kill %ld)\n", after - before);
		else if (after > before)
			fprintf(stderr, "tsns: the memory limit killed a process of the command (oom_kill %ld)\n", after - before);
	}
	for (int i = 0; i < n; i++) {
		int r = strncmp(words[i], "cgroup=", 7) == 0 ? cg_remove(words[i] + 7) : 0;
		if (r < 0) {
			const char *msg = strerror(-r);
			fprintf(stderr, "tsns: cannot remove the cgroup %s: %c%s (%s)\n", words[i] + 7,
				msg[0] >= 'a' && msg[0] <= 'z' ? msg[0] - 32 : msg[0], msg + 1, strerrorname_np(-r));
		}
		if (strncmp(words[i], "parent=", 7) == 0)
			cg_remove_parent(words[i] + 7);
	}
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "tsns-monitor: usage: tsns-monitor PID STATUS_FD forward|ignore [trace] [oom=N:FILE] [cgroup=DIR] [parent=DIR]...\n");
		return 125;
	}
	pid_t pid = (pid_t)atoi(argv[1]);
	int statusfd = atoi(argv[2]);
	int forward = strcmp(argv[3], "forward") == 0;
	int trace = 0;
	for (int i = 4; i < argc; i++)
		trace |= strcmp(argv[i], "trace") == 0;
	double start = trace ? now_ms() : 0;
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
	if (trace)
		fprintf(stderr, "tsns-trace: wait %.3f\n", now_ms() - start);
	double cg = trace ? now_ms() : 0;
	end_cgroups(argc - 4, argv + 4, st);
	if (trace && argc > 5)
		fprintf(stderr, "tsns-trace: cgroup-end %.3f\n", now_ms() - cg);

	/* bwrap's --json-status-fd: the exit code in the shell's encoding. */
	for (int i = 4; i < argc; i++)
		if (strncmp(argv[i], "json-status=", 12) == 0)
			dprintf(atoi(argv[i] + 12), "{ \"exit-code\": %d }\n", WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st));
	/* As the command ended; the terminal first comes back to us (end.c). */
	if (WIFSIGNALED(st))
		end_as(0, WTERMSIG(st));
	end_as(WEXITSTATUS(st), 0);
}
