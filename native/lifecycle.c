/*
 * bwrap's process rules, in the child (raw system calls only, as child.c):
 * the supervisor's lock files and its empty capability sets, a user
 * namespace joined by fd, user namespaces disabled for the command, and
 * --block-fd.  lifecycle.h says when child.c calls each.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <linux/capability.h>

#include "lifecycle.h"
#include "sys.h"

long lc_take_locks(const struct spec *s, int *failed)
{
	for (int i = 0; i < s->nlocks; i++) {
		*failed = i;
		long fd = SYS(SYS_openat, AT_FDCWD, s->locks[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fd;
		/* Kept open, never closed: the lock lasts as long as this process. */
		struct flock l = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
		long r;
		do
			r = SYS(SYS_fcntl, fd, F_SETLK, &l);
		while (r == -EINTR);
		if (r < 0)
			return r;
	}
	return 0;
}

void lc_drop_all_caps(const struct spec *s)
{
	/* The command's ids first (it may be given -S/-G), so that the
	 * supervisor can still signal it without CAP_KILL. */
	if (s->gid >= 0)
		SYS(SYS_setresgid, s->gid, s->gid, s->gid);
	if (s->uid >= 0)
		SYS(SYS_setresuid, s->uid, s->uid, s->uid);
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
	SYS(SYS_capset, &hdr, d);
	SYS(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

long lc_join_userns(const struct spec *s)
{
	long r = SYS(SYS_setns, s->userns_fd, CLONE_NEWUSER);
	if (r < 0)
		return r;
	/* The pid namespace is made just before the fork that enters it. */
	unsigned long now = s->late_flags & ~(unsigned long)CLONE_NEWPID;
	return now ? SYS(SYS_unshare, now) : 0;
}

static long write_at(int dir, const char *path, const char *text, size_t n)
{
	long fd = SYS(SYS_openat, dir, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fd;
	long w = SYS(SYS_write, fd, text, n);
	SYS(SYS_close, fd);
	return w < 0 ? w : w != (long)n ? -EIO : 0;
}

/* "INNER OUTER 1\n" */
static size_t one_map(char *buf, unsigned long inner, unsigned long outer)
{
	size_t len = 0;
	unsigned long ids[2] = { inner, outer };
	for (int k = 0; k < 2; k++) {
		char digits[24];
		int n = 0;
		do
			digits[n++] = (char)('0' + ids[k] % 10);
		while ((ids[k] /= 10) && n < 20);
		while (n)
			buf[len++] = digits[--n];
		buf[len++] = ' ';
	}
	buf[len++] = '1';
	buf[len++] = '\n';
	return len;
}

long lc_disable_userns(int procfd, long uid, long gid)
{
	long r;
	/* As bwrap: this namespace may hold one more user namespace, which the
	 * command then sits in and cannot raise the limit from. */
	if ((r = write_at(procfd, "sys/user/max_user_namespaces", "1", 1)) < 0)
		return r;
	long euid = SYS(SYS_geteuid), egid = SYS(SYS_getegid);
	if ((r = SYS(SYS_unshare, CLONE_NEWUSER)) < 0)
		return r;
	char map[64];
	size_t n;
	if ((r = write_at(procfd, "self/setgroups", "deny", 4)) < 0)
		return r;
	/* The ids the command is to have (-S/-G) are the ones ours map to, as
	 * bwrap maps its --uid/--gid in its second namespace: the switch to
	 * them then finds them mapped. */
	n = one_map(map, (unsigned long)(uid >= 0 ? uid : euid), (unsigned long)euid);
	if ((r = write_at(procfd, "self/uid_map", map, n)) < 0)
		return r;
	n = one_map(map, (unsigned long)(gid >= 0 ? gid : egid), (unsigned long)egid);
	return write_at(procfd, "self/gid_map", map, n);
}

long lc_userns_disabled(void)
{
	/* Succeeding is the failure: we are then in a new user namespace, and
	 * the command is not started. */
	return SYS(SYS_unshare, CLONE_NEWUSER) == 0 ? -EEXIST : 0;
}

void lc_block(int fd)
{
	char b;
	long r;
	do
		r = SYS(SYS_read, fd, &b, 1);
	while (r == -EINTR);
	SYS(SYS_close, fd);
}
