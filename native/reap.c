/*
 * Reaping the commands tsns started.  A supervised command (under an init,
 * or in a new time namespace) is not our child: its supervisor is, and it
 * writes the command's raw wait status to a pipe before it exits.  Those
 * pipes are kept here, by the supervisor's pid, until that pid is reaped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spec.h"
#include "tsns.h"

static struct { pid_t pid; int fd; } *status_fds;
static size_t nstatus;

void keep_status_fd(pid_t pid, int fd)
{
	for (size_t i = 0; i < nstatus; i++)
		if (status_fds[i].pid == 0) {
			status_fds[i].pid = pid;
			status_fds[i].fd = fd;
			return;
		}
	void *grown = realloc(status_fds, (nstatus + 16) * sizeof *status_fds);
	if (!grown) {
		close(fd);
		return;
	}
	status_fds = grown;
	memset(status_fds + nstatus, 0, 16 * sizeof *status_fds);
	status_fds[nstatus].pid = pid;
	status_fds[nstatus].fd = fd;
	nstatus += 16;
}

int take_status_fd(pid_t pid)
{
	for (size_t i = 0; i < nstatus; i++)
		if (status_fds[i].pid == pid) {
			status_fds[i].pid = 0;
			return status_fds[i].fd;
		}
	return -1;
}

static int32_t encode_status(int st)
{
	if (WIFSIGNALED(st))
		return TSNS_WAIT_SIGNALED << TSNS_WAIT_SHIFT | WTERMSIG(st);
	return TSNS_WAIT_EXITED << TSNS_WAIT_SHIFT | WEXITSTATUS(st);
}

/* 0 while running; the end as wire.h encodes it; -errno on error.  Never
 * blocks: Node asks on SIGCHLD.  For a supervised command the status is the
 * command's, not its supervisor's. */
static int32_t wait_one(int32_t pid)
{
	int st, cmd;
	pid_t r = waitpid(pid, &st, WNOHANG | __WALL);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	int fd = take_status_fd(pid);
	if (fd >= 0) {
		ssize_t n = read(fd, &cmd, sizeof cmd);
		close(fd);
		if (n == (ssize_t)sizeof cmd)
			st = cmd;
	}
	return encode_status(st);
}

/* wait_one() for every running command in one call: `slots` holds n
 * {pid, status} pairs of int32 and each status is overwritten with what
 * wait_one(pid) returns.  Node calls this once per SIGCHLD, so the cost of
 * a call from JavaScript is paid once, not once per command in flight. */
int32_t tsns_wait_all(uint8_t *slots, int32_t n)
{
	int32_t ended = 0;
	for (int32_t i = 0; i < n; i++) {
		int32_t slot[2];
		memcpy(slot, slots + 8 * i, sizeof slot);
		slot[1] = wait_one(slot[0]);
		memcpy(slots + 8 * i, slot, sizeof slot);
		ended += slot[1] != 0;
	}
	return ended;
}
