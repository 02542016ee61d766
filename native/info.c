/*
 * bwrap's --info-fd and --json-status-fd first object, in the parent while
 * the child waits, and --userns-block-fd after them: bwrap's order, so that
 * a caller can read the child's pid and write its id maps before it goes on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifecycle.h"

/* bwrap's list and order; mnt is always new in bwrap, and the user
 * namespace is left out as bwrap leaves it out. */
static const struct {
	const char *name;
	unsigned long flag;
} NAMESPACES[] = {
	{ "cgroup", CLONE_NEWCGROUP }, { "ipc", CLONE_NEWIPC }, { "mnt", 0 },
	{ "net", CLONE_NEWNET },       { "pid", CLONE_NEWPID }, { "uts", CLONE_NEWUTS },
};

static int write_all(int fd, const char *text, size_t n)
{
	while (n) {
		ssize_t w = write(fd, text, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		text += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The object as bwrap writes it: pretty for --info-fd, one line for the status. */
static size_t format_info(char *buf, size_t cap, pid_t pid, const struct spec *s, int line)
{
	char dir[32];
	size_t n = (size_t)snprintf(buf, cap, line ? "{ \"child-pid\": %d" : "{\n    \"child-pid\": %d", (int)pid);
	snprintf(dir, sizeof dir, "/proc/%d/ns", (int)pid);
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	for (unsigned i = 0; dfd >= 0 && i < sizeof NAMESPACES / sizeof *NAMESPACES; i++) {
		unsigned long f = NAMESPACES[i].flag;
		/* Only the new ones that exist already: a late one is not made yet. */
		int late = (s->late_flags & (f ? f : CLONE_NEWNS)) || (f == CLONE_NEWCGROUP && s->cgroupns_late);
		struct stat st;
		if ((f && !(s->flags & f)) || late || fstatat(dfd, NAMESPACES[i].name, &st, 0) < 0)
			continue;
		n += (size_t)snprintf(buf + n, cap - n, line ? ", \"%s-namespace\": %ju" : ",\n    \"%s-namespace\": %ju",
				      NAMESPACES[i].name, (uintmax_t)st.st_ino);
	}
	if (dfd >= 0)
		close(dfd);
	n += (size_t)snprintf(buf + n, cap - n, line ? " }\n" : "\n}\n");
	return n;
}

int64_t info_handshake(pid_t pid, const struct spec *s)
{
	char buf[512];
	int r;
	/* As bwrap, the info fd is closed once written: its reader sees the
	 * end of the object before the child goes on. */
	if (s->info_fd >= 0) {
		r = write_all(s->info_fd, buf, format_info(buf, sizeof buf, pid, s, 0));
		close(s->info_fd);
		if (r < 0)
			return TSNS_FAILURE(ST_INFO_FD, -r);
	}
	if (s->status_fd >= 0 && (r = write_all(s->status_fd, buf, format_info(buf, sizeof buf, pid, s, 1))) < 0)
		return TSNS_FAILURE(ST_INFO_FD, -r);
	if (s->userns_block_fd >= 0) {
		char b;
		ssize_t got;
		do
			got = read(s->userns_block_fd, &b, 1);
		while (got < 0 && errno == EINTR);
		int err = errno;
		close(s->userns_block_fd);
		errno = err;
		if (got < 0)
			return TSNS_FAILURE(ST_USERNS_BLOCK, errno);
	}
	return 0;
}
