/*
 * The physical limit for "start a command in a new UTS namespace and wait for
 * it" on this machine: a loop of clone(CLONE_NEWUTS|SIGCHLD) + execve("/bin/true")
 * + waitpid, for a given number of seconds, from a tiny C process.
 *
 * Compiled by bench/index.mjs with `cc -O2` into a temporary directory.
 *
 *   clone-loop SECONDS [user] [vm]
 *   clone-loop scale COUNT SLEEP [user]
 *
 * With "user" it adds CLONE_NEWUSER (for running without root).  With "vm" it
 * adds CLONE_VM|CLONE_VFORK, as a shim that clones without copying the
 * parent's page tables does: no copy-on-write faults in parent or child.
 * Prints one line of JSON: {"runs":N,"seconds":S,"runsPerSec":R,"failures":F}.
 *
 * "scale" is the floor of the bench's scale section: COUNT x `sleep 30` (the
 * binary at SLEEP) started one after another with CLONE_VM|CLONE_VFORK and
 * new UTS, IPC and pid namespaces, in this process's environment (what a
 * command run by tsns gets), then all killed and reaped.  Prints
 * {"count":N,"startMs":M,"failures":F}.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char stack[64 * 1024] __attribute__((aligned(16)));
static char *const child_argv[] = { "true", NULL };
static char *const child_envp[] = { NULL };

static int child(void *arg)
{
	(void)arg;
	execve("/bin/true", child_argv, child_envp);
	_exit(127);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

extern char **environ;
static char *sleep_argv[] = { "sleep", "30", NULL };

static int sleeper(void *path)
{
	execve(path, sleep_argv, environ);
	_exit(127);
}

static int scale(int count, char *path, int user)
{
	int flags = CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_VM | CLONE_VFORK | SIGCHLD;
	pid_t *pids = calloc((size_t)count, sizeof *pids);
	long started = 0, failures = 0;
	if (!pids)
		return 1;
	if (user)
		flags |= CLONE_NEWUSER;
	double start = now();
	for (int i = 0; i < count; i++) {
		pids[i] = clone(sleeper, stack + sizeof stack, flags, path);
		if (pids[i] < 0)
			failures++;
		else
			started++;
	}
	double ms = (now() - start) * 1e3;
	for (int i = 0; i < count; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
	for (int i = 0; i < count; i++)
		if (pids[i] > 0)
			while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
				;
	printf("{\"count\":%ld,\"startMs\":%.1f,\"failures\":%ld}\n", started, ms, failures);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 3 && strcmp(argv[1], "scale") == 0)
		return scale(atoi(argv[2]), argv[3], argc > 4 && strcmp(argv[4], "user") == 0);

	double seconds = argc > 1 ? atof(argv[1]) : 1.0;
	int flags = CLONE_NEWUTS | SIGCHLD;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "user") == 0)
			flags |= CLONE_NEWUSER;
		else if (strcmp(argv[i], "vm") == 0)
			flags |= CLONE_VM | CLONE_VFORK;
	}
	if (seconds <= 0)
		seconds = 1.0;

	long runs = 0, failures = 0;
	double start = now(), elapsed = 0;
	do {
		pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
		if (pid < 0) {
			fprintf(stderr, "clone-loop: clone: %s\n", strerror(errno));
			return 1;
		}
		int status;
		while (waitpid(pid, &status, 0) < 0) {
			if (errno != EINTR) {
				fprintf(stderr, "clone-loop: waitpid: %s\n", strerror(errno));
				return 1;
			}
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failures++;
		runs++;
		elapsed = now() - start;
	} while (elapsed < seconds);

	printf("{\"runs\":%ld,\"seconds\":%.6f,\"runsPerSec\":%.1f,\"failures\":%ld}\n",
	       runs, elapsed, (double)runs / elapsed, failures);
	return 0;
}
