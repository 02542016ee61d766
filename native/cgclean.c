/*
 * The end of a command's cgroups, for tsns-monitor (monitor.c): whether the
 * memory limit killed something, and the removal of the cgroups tsns made,
 * once whatever is left in them is killed.  src/cgroup/ does the same for
 * a command the Node process waits for itself.
 *
 * Never `rm -rf`: a cgroup is removed with rmdir, its own sub-cgroups
 * first; a control file cannot be unlinked anyway.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgclean.h"

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static ssize_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

long cg_oom_kills(const char *file)
{
	char buf[1024];
	if (read_small(file, buf, sizeof buf) < 0)
		return -1;
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (strncmp(line, "oom_kill ", 9) == 0)
			return strtol(line + 9, NULL, 10);
	return -1;
}

/* SIGKILL every process cgroup.procs lists; how many were there. */
static int kill_listed(const char *dir)
{
	char path[4096], buf[8192];
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	if (read_small(path, buf, sizeof buf) <= 0)
		return 0;
	int n = 0;
	for (char *p = buf; *p;) {
		long pid = strtol(p, &p, 10);
		if (pid > 0 && kill((pid_t)pid, SIGKILL) == 0)
			n++;
		while (*p == '\n')
			p++;
		if (pid <= 0)
			break;
	}
	return n;
}

/* Kill what is left: cgroup.kill on v2 (Linux 5.14), else each pid, until none is left. */
static void kill_all(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/cgroup.kill", dir);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t w = write(fd, "1", 1);
		close(fd);
		if (w == 1)
			return;
	}
	for (int round = 0; round < 100 && kill_listed(dir) > 0; round++)
		pause_ms(5);
}

/* rmdir, retried while the last processes finish dying (EBUSY), as runc does. */
static int remove_dir(const char *dir)
{
	long wait = 10;
	for (int i = 0; i < 8; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		pause_ms(wait);
		if (wait < 160)
			wait *= 2;
	}
	return -EBUSY;
}

int cg_remove(const char *dir)
{
	kill_all(dir);
	DIR *d = opendir(dir);
	if (d) {
		/* The command's own sub-cgroups first, each emptied the same way. */
		for (struct dirent *e; (e = readdir(d));) {
			if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char sub[4096];
			if (snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) < (int)sizeof sub)
				cg_remove(sub);
		}
		closedir(d);
	}
	return remove_dir(dir);
}

void cg_remove_parent(const char *dir)
{
	/* Made by tsns for this command, perhaps shared since: only if empty. */
	rmdir(dir);
}
