/*
 * tsns-oci-init: the small process tsns-oci's create starts, so that what
 * holds a container before `start` is neither Node nor a thread sharing
 * Node's memory.  It reads a spec (wire.h) from SPEC_FD, starts the
 * container's process with the shim (parent.c) - which prepares it and
 * leaves it waiting on the exec fifo - and writes its pid, or the failure
 * as wire.h encodes it, to REPORT_FD.
 *
 * usage: tsns-oci-init SPEC_FD REPORT_FD detach|wait|tty:SOCK,HOST [STATE_DIR_FD|- [JOIN_FD,...]]
 * STATE_DIR_FD: make its exec.fifo (runc's mode, 0622) before the spawn.
 * JOIN_FDs (exec): namespaces this process joins itself before the spawn -
 *         the container's user and pid namespaces, so that the process it
 *         clones is in that pid namespace at once, with no middle process
 *         whose pid an engine would wait for instead.
 * detach: exit at once; the container is reparented to the nearest
 *         subreaper (the engine's shim, conmon), as runc's init is.
 * wait:   `tsns-oci run` in the foreground: stay its parent, forward
 *         signals, and report "status N" (the raw wait status) at its end.
 * tty:    as wait, with the process's terminal ours to relay (oci-tty.c):
 *         the spec's CONSOLE_FD is SOCK, the socket pair's end we make
 *         there; HOST is the caller's terminal, made raw until the end.
 *         A console that cannot be taken is create's failure (ST_CONSOLE).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "oci.h"

#include "tsns.h"
#include "wire.h"

static int report(int fd, const char *text)
{
	size_t n = strlen(text);
	return write(fd, text, n) == (ssize_t)n ? 0 : -1;
}

static uint8_t *read_all(int fd, int32_t *len)
{
	size_t cap = 65536, n = 0;
	uint8_t *buf = malloc(cap);
	for (ssize_t r; buf; n += (size_t)r) {
		if (n == cap) {
			uint8_t *grown = realloc(buf, cap *= 2);
			if (!grown)
				break;
			buf = grown;
		}
		do
			r = read(fd, buf + n, cap - n);
		while (r < 0 && errno == EINTR);
		if (r <= 0) {
			*len = (int32_t)n;
			return r == 0 ? buf : (free(buf), NULL);
		}
	}
	free(buf);
	return NULL;
}

/* Forward every signal to the container until it ends; its wait status. */
static int wait_for(pid_t pid)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		int st;
		pid_t p = waitpid(pid, &st, WNOHANG | __WALL);
		if (p == pid)
			return st;
		if (p < 0 && errno != EINTR)
			return -1;
		int sig = sigwaitinfo(&all, NULL);
		if (sig > 0 && sig != SIGCHLD)
			kill(pid, sig);
	}
}

int main(int argc, char **argv)
{
	char line[64];
	if (argc < 4 || argc > 6) {
		fprintf(stderr, "usage: tsns-oci-init SPEC_FD REPORT_FD detach|wait|tty:SOCK,HOST [STATE_DIR_FD|- [JOIN_FD,...]]\n");
		return 2;
	}
	int spec_fd = atoi(argv[1]), report_fd = atoi(argv[2]), stay = strcmp(argv[3], "wait") == 0;
	int tty_sock = -1, host = -1;
	if (strncmp(argv[3], "tty:", 4) == 0) {
		char *p = argv[3] + 4;
		int at = (int)strtol(p, &p, 10);
		host = *p == ',' ? atoi(p + 1) : -1;
		stay = 1;
		if ((tty_sock = oci_tty_pair(at)) < 0) {
			snprintf(line, sizeof line, "%lld\n", (long long)TSNS_FAILURE(ST_CONSOLE, -tty_sock));
			report(report_fd, line);
			return 1;
		}
	}
	if (argc >= 5 && strcmp(argv[4], "-") != 0) {
		int dir = atoi(argv[4]);
		if (mkfifoat(dir, "exec.fifo", 0622) < 0 || fchmodat(dir, "exec.fifo", 0622, 0) < 0) {
			snprintf(line, sizeof line, "%lld\n", (long long)TSNS_FAILURE(ST_EXEC_FIFO, errno));
			report(report_fd, line);
			return 1;
		}
	}
	/* Joined after the fifo is made: a user namespace of the container's would make it as its user. */
	for (char *p = argc == 6 ? argv[5] : NULL; p && *p;) {
		if (setns((int)strtol(p, &p, 10), 0) < 0) {
			snprintf(line, sizeof line, "%lld\n", (long long)TSNS_FAILURE(ST_SETNS, errno));
			report(report_fd, line);
			return 1;
		}
		if (*p == ',')
			p++;
	}
	int32_t len = 0;
	uint8_t *spec = read_all(spec_fd, &len);
	close(spec_fd);
	if (!spec)
		return 2;
	int64_t r = tsns_spawn(spec, len);
	free(spec);
	struct termios saved;
	int master = -1;
	if (r > 0 && tty_sock >= 0 && (master = oci_tty_take(tty_sock, host, &saved)) < 0) {
		kill((pid_t)r, SIGKILL);
		waitpid((pid_t)r, NULL, __WALL);
		r = TSNS_FAILURE(ST_CONSOLE, -master);
	}
	snprintf(line, sizeof line, "%lld\n", (long long)r);
	if (report(report_fd, line) < 0 || r < 0) {
		if (master >= 0)
			oci_tty_restore(host, &saved);
		return 1;
	}
	if (!stay)
		return 0;
	int st = master >= 0 ? oci_tty_relay((pid_t)r, master, host) : wait_for((pid_t)r);
	if (master >= 0)
		oci_tty_restore(host, &saved);
	snprintf(line, sizeof line, "status %d\n", st);
	report(report_fd, line);
	return 0;
}
