/*
 * An OCI container's steps in the child (tsns-oci): the bundle's rootfs
 * bound onto itself, the config's mounts and devices made in it, the pivot
 * into it, masked and read-only paths, sysctls; then, around the change of
 * identity, supplementary groups and the five capability sets; and last a
 * console and the wait on the exec fifo until `tsns-oci start`.
 *
 * Runs after clone, so raw system calls and stack buffers only, as in
 * child.c (test/unit/native-rules.test.ts checks the object file).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>

#include "oci.h"
#include "sandbox.h"
#include "spec.h"
#include "sys.h"
#include "wire.h"

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define PATHLEN 4096

static long cat3(char *dst, const char *a, const char *b, const char *c)
{
	const char *parts[3] = { a, b, c };
	size_t n = 0;
	for (int i = 0; i < 3; i++)
		for (const char *p = parts[i]; p && *p; p++) {
			if (n + 2 > PATHLEN)
				return -ENAMETOOLONG;
			dst[n++] = *p;
		}
	dst[n] = 0;
	return 0;
}

/* An empty file for /dev/console, after the pivot (the container's own root). */
static long touch(const char *path)
{
	long fd = SYS(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd == -EISDIR || fd == -EEXIST)
		return 0;
	if (fd < 0)
		return fd;
	SYS(SYS_close, fd);
	return 0;
}

static long set_attr(const char *path, uint64_t set, int rec)
{
	struct mount_attr attr = { .attr_set = set };
	return SYS(SYS_mount_setattr, AT_FDCWD, path, rec ? AT_RECURSIVE : 0, &attr, sizeof attr);
}

static int is_dir(const char *path)
{
	struct stat st;
	return SYS(SYS_newfstatat, AT_FDCWD, path, &st, 0) == 0 && S_ISDIR(st.st_mode);
}

static long str_eq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static uint64_t attr_of(unsigned long flags)
{
	return (flags & MS_RDONLY ? MOUNT_ATTR_RDONLY : 0) | (flags & MS_NOSUID ? MOUNT_ATTR_NOSUID : 0) |
	       (flags & MS_NODEV ? MOUNT_ATTR_NODEV : 0) | (flags & MS_NOEXEC ? MOUNT_ATTR_NOEXEC : 0);
}

/* What a mount left to do on the mount it made: the flags a bind cannot
 * take at once go on with mount_setattr, which in a user namespace leaves
 * the locked ones (nosuid, nodev ...) as they are: ATTR on that mount
 * alone, as runc's remount of a bind, even an rbind's, sets them; REC
 * (rro, rnosuid ...) on every mount below it too; then the propagation.
 * The new mount is the one the destination resolves to now (still in
 * the rootfs: a swap can only change which of its mounts gets them). */
static long finish(int root, const char *dest, uint64_t attr, uint64_t rec, unsigned long prop)
{
	if (!attr && !rec && !prop)
		return 0;
	char at[32];
	long top = oci_path(root, dest, 0), r = 0;
	if (top < 0)
		return top;
	oci_fd_path(at, top);
	if (attr)
		r = set_attr(at, attr, 0);
	if (r >= 0 && rec)
		r = set_attr(at, rec, 1);
	if (r >= 0 && prop)
		r = SYS(SYS_mount, 0, at, 0, prop, 0);
	SYS(SYS_close, top);
	return r;
}

/* A mount of the config onto its destination in the rootfs (root, an fd
 * of it): the mount point resolved and made there (oci-path.c), of src's
 * kind for a bind, and the mount made onto its fd.  proc and sysfs go on
 * an ordinary directory only, reached through no symlink, as runc wants. */
static long one_mount(int root, const struct oci_mount *m, int *stage)
{
	int bind = (m->flags & MS_BIND) != 0, rec = (m->flags & MS_REC) != 0;
	int special = !bind && m->type && (str_eq(m->type, "proc") || str_eq(m->type, "sysfs"));
	int how = bind && !is_dir(m->src) ? OCI_PATH_FILE : OCI_PATH_DIR;
	struct stat st;
	*stage = special ? ST_OCI_MOUNT_ON : ST_OCI_MOUNT_PATH;
	long fd = oci_path(root, m->dest, how | (special ? OCI_PATH_NOLINKS : 0)), r;
	if (fd < 0)
		return fd;
	if (special && ((r = SYS(SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH)) < 0 || !S_ISDIR(st.st_mode))) {
		SYS(SYS_close, fd);
		return r < 0 ? r : -ENOTDIR;
	}
	*stage = ST_OCI_MOUNT;
	char at[32];
	oci_fd_path(at, fd);
	uint64_t attr = bind ? m->attr : 0, rec_attr = bind ? m->rec_attr : 0;
	if (bind)
		r = SYS(SYS_mount, m->src, at, 0, MS_BIND | (rec ? MS_REC : 0), 0);
	else if (m->type && str_eq(m->type, "cgroup") && !m->data) {
		/* The cgroup namespace's own view where the kernel lets us mount
		 * one; the host's hierarchies otherwise, as runc does rootless.
		 * With data, a v1 hierarchy (src/oci/cgroup-mount.ts): mounted
		 * as any other filesystem, below. */
		r = SYS(SYS_mount, "cgroup2", at, "cgroup2", m->flags, 0);
		if (r < 0 && (r = SYS(SYS_mount, "/sys/fs/cgroup", at, 0, MS_BIND | MS_REC, 0)) >= 0)
			rec_attr = attr_of(m->flags);
	} else {
		r = SYS(SYS_mount, m->src ? m->src : m->type, at, m->type, m->flags, m->data);
		/* sysfs and mqueue of a namespace we do not own: the host's,
		 * read-only throughout.  runc 1.1 fails such a mount (EPERM);
		 * its `spec --rootless` binds /sys instead, which a config
		 * gets as it says (the flags on the top mount alone, above). */
		if (r == -EPERM && m->type && (str_eq(m->type, "sysfs") || str_eq(m->type, "mqueue")) &&
		    (r = SYS(SYS_mount, str_eq(m->type, "sysfs") ? "/sys" : "/dev/mqueue", at, 0, MS_BIND | MS_REC, 0)) >= 0)
			rec_attr = attr_of(m->flags) | MOUNT_ATTR_RDONLY;
	}
	SYS(SYS_close, fd);
	return r < 0 ? r : finish(root, m->dest, attr, rec_attr, m->prop);
}

/* A device node of the config (or runc's defaults) in the rootfs; its
 * directories made, the node made in the fd of the one above it, and its
 * owner and mode set on the node itself, never through a name a symlink
 * could have taken meanwhile. */
static long make_device(int root, const struct oci_step *st, int *stage)
{
	const char *name;
	unsigned long major = (unsigned long)st->n[0], minor = (unsigned long)st->n[1];
	unsigned long dev = ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xffUL) << 12) | ((major & ~0xfffUL) << 32);
	long type = st->b[0] == 'b' ? S_IFBLK : st->b[0] == 'p' ? S_IFIFO : S_IFCHR;
	char at[32];
	struct stat sb;
	long dir = oci_path_parent(root, st->a, &name), r;
	if (dir < 0) {
		*stage = ST_OCI_STEP_PATH;
		return dir;
	}
	r = st->code == OCI_STEP_DEVICE_BIND ? -EPERM : SYS(SYS_mknodat, dir, name, type | (st->n[2] & 07777), dev);
	if (r == -EPERM) {
		/* No mknod in a user namespace: the host's device, bound (over what
		 * is there too) onto a file made as runc makes it, rw for all; a
		 * regular file there already is emptied, as runc's O_TRUNC does. */
		long fd = SYS(SYS_openat, dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd >= 0)
			SYS(SYS_fchmod, fd, 0666);
		else if (fd == -EEXIST && SYS(SYS_newfstatat, dir, name, &sb, AT_SYMLINK_NOFOLLOW) >= 0 && S_ISREG(sb.st_mode) && sb.st_size > 0)
			fd = SYS(SYS_openat, dir, name, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd >= 0)
			SYS(SYS_close, fd);
		SYS(SYS_close, dir);
		fd = oci_path(root, st->a, OCI_PATH_FILE);
		if (fd < 0) {
			*stage = ST_OCI_STEP_PATH;
			return fd;
		}
		oci_fd_path(at, fd);
		r = SYS(SYS_mount, st->a, at, 0, MS_BIND, 0);
		SYS(SYS_close, fd);
		return r;
	}
	long fd = r < 0 ? r : SYS(SYS_openat, dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	SYS(SYS_close, dir);
	if (r == -EEXIST)
		return 0;
	if (fd < 0)
		return fd;
	if ((r = SYS(SYS_newfstatat, fd, "", &sb, AT_EMPTY_PATH)) >= 0 && (sb.st_mode & S_IFMT) != (unsigned long)type)
		r = -EEXIST; /* not the node we made: another's, left alone */
	if (r >= 0 && (st->n[3] >= 0 || st->n[4] >= 0))
		r = SYS(SYS_fchownat, fd, "", st->n[3], st->n[4], AT_EMPTY_PATH);
	/* mknod obeys the umask; the config's mode is meant. */
	oci_fd_path(at, fd);
	if (r >= 0)
		r = SYS(SYS_fchmodat, AT_FDCWD, at, st->n[2] & 07777);
	SYS(SYS_close, fd);
	return r;
}

/* A symlink of the config's (TARGET, LINK in the rootfs), made in the
 * directory above LINK; one there already is left as it is, but for
 * OCI_STEP_SYMLINK_REPLACE, where what is there (a file, a node, an empty
 * directory) is removed first, as runc does for /dev/ptmx. */
static long make_link(int root, const struct oci_step *st, int *stage)
{
	const char *name;
	long dir = oci_path_parent(root, st->b, &name), r = 0;
	if (dir < 0) {
		*stage = ST_OCI_STEP_PATH;
		return dir;
	}
	if (st->code == OCI_STEP_SYMLINK_REPLACE && (r = SYS(SYS_unlinkat, dir, name, 0)) == -EISDIR)
		r = SYS(SYS_unlinkat, dir, name, AT_REMOVEDIR);
	if (r < 0 && r != -ENOENT) {
		SYS(SYS_close, dir);
		return r;
	}
	r = SYS(SYS_symlinkat, st->a, dir, name);
	SYS(SYS_close, dir);
	return r == -EEXIST ? 0 : r;
}

static long num_text(char *buf, long v)
{
	char tmp[24];
	int n = 0, neg = v < 0;
	unsigned long u = neg ? (unsigned long)-v : (unsigned long)v;
	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10));
	char *p = buf;
	if (neg)
		*p++ = '-';
	while (n)
		*p++ = tmp[--n];
	*p = 0;
	return 0;
}

/* A step in its phase: 0 the process's own, 1 in the rootfs before the
 * pivot (root: an fd of it), 2 after the pivot; *stage is changed where a
 * path in the rootfs is what failed. */
static long step(int root, const struct oci_step *st, int phase, int *stage)
{
	char path[PATHLEN];
	struct stat sb;
	long r;
	switch (phase * 256 + st->code) {
	case 0 * 256 + OCI_STEP_UMASK:
		SYS(SYS_umask, st->n[0]);
		return 0;
	case 0 * 256 + OCI_STEP_OOM:
		num_text(path, st->n[0]);
		return sys_write_file("/proc/self/oom_score_adj", path);
	case 0 * 256 + OCI_STEP_PERSONALITY: return SYS(SYS_personality, st->n[0]);
	case 1 * 256 + OCI_STEP_DEVICE:
	case 1 * 256 + OCI_STEP_DEVICE_BIND: return make_device(root, st, stage);
	case 1 * 256 + OCI_STEP_SYMLINK:
	case 1 * 256 + OCI_STEP_SYMLINK_REPLACE: return make_link(root, st, stage);
	case 2 * 256 + OCI_STEP_MASK:
		r = SYS(SYS_newfstatat, AT_FDCWD, st->a, &sb, 0);
		if (r == -ENOENT)
			return 0;
		if (r < 0)
			return r;
		if (S_ISDIR(sb.st_mode))
			return SYS(SYS_mount, "tmpfs", st->a, "tmpfs", MS_RDONLY, 0);
		return SYS(SYS_mount, "/dev/null", st->a, 0, MS_BIND, 0);
	case 2 * 256 + OCI_STEP_READONLY:
		r = SYS(SYS_newfstatat, AT_FDCWD, st->a, &sb, 0);
		if (r == -ENOENT)
			return 0;
		if (r < 0 || (r = SYS(SYS_mount, st->a, st->a, 0, MS_BIND | MS_REC, 0)) < 0)
			return r;
		return set_attr(st->a, MOUNT_ATTR_RDONLY, 1);
	case 2 * 256 + OCI_STEP_SYSCTL:
		if ((r = cat3(path, "/proc/sys/", st->a, 0)) < 0)
			return r;
		return sys_write_file(path, st->b);
	}
	return 0;
}

static long steps(const struct oci *o, int root, int phase, int *stage, int *index)
{
	*stage = ST_OCI_STEP;
	for (int i = 0; i < o->nsteps; i++) {
		long r = step(root, &o->steps[i], phase, stage);
		if (r < 0) {
			*index = i;
			return r;
		}
	}
	return 0;
}

/* runc's point for the prestart, createRuntime and createContainer hooks:
 * the namespaces and mounts exist, the pivot is still to come.  tsns-oci
 * hears "hooks PID" on the report pipe it reads for the start's outcome
 * (PID as the host's /proc, still ours here, names us), runs them and
 * writes a byte on GO; EOF there means one failed, and we end. */
static long hooks_pause(const struct oci *o)
{
	char line[40] = "hooks ";
	long n = SYS(SYS_readlinkat, AT_FDCWD, "/proc/self", line + 6, sizeof line - 8);
	if (n <= 0)
		return n < 0 ? n : -EIO;
	line[6 + n] = '\n';
	if ((n = SYS(SYS_write, o->hooks_report, line, 7 + n)) < 0)
		return n;
	char b;
	do
		n = SYS(SYS_read, o->hooks_go, &b, 1);
	while (n == -EINTR);
	SYS(SYS_close, o->hooks_go);
	return n < 0 ? n : n == 1 ? 0 : -ECANCELED;
}

long oci_filesystem(const struct oci *o, int *stage, int *index)
{
	long r;
	*index = 0;
	/* Root of the container's user namespace, as runc's init is there before
	 * its mounts: a runtime that is root on the host is unmapped in a
	 * namespace that maps 0 elsewhere, and a filesystem of that namespace
	 * (its /dev tmpfs) refuses to make inodes for it (EOVERFLOW).  Where 0 is
	 * not mapped (or is us already) this changes nothing. */
	if (o->root) {
		SYS(SYS_setresgid, 0, 0, 0);
		SYS(SYS_setresuid, 0, 0, 0);
	}
	for (int i = 0; i < o->nrlimits; i++) {
		struct { uint64_t cur, max; } lim = { o->rlimits[i].soft, o->rlimits[i].hard };
		if ((r = SYS(SYS_prlimit64, 0, o->rlimits[i].res, &lim, 0)) < 0) {
			*stage = ST_RLIMIT;
			*index = i;
			return r;
		}
	}
	if ((r = steps(o, -1, 0, stage, index)) < 0 || !o->root)
		return r;
	*stage = ST_OCI_ROOTFS;
	/* The fd every path in the rootfs is resolved from: of the bind,
	 * opened once it is there. */
	long root;
	if ((r = oci_root_prepare(o)) < 0 ||
	    (r = root = SYS(SYS_openat, AT_FDCWD, o->root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return r;
	for (int i = 0; i < o->nmounts && r >= 0; i++)
		if ((r = one_mount((int)root, &o->mounts[i], stage)) < 0)
			*index = i;
	if (r >= 0)
		r = steps(o, (int)root, 1, stage, index);
	SYS(SYS_close, root);
	if (r < 0)
		return r;
	*stage = ST_OCI_HOOKS;
	if (o->hooks_go >= 0 && (r = hooks_pause(o)) < 0)
		return r;
	*stage = ST_OCI_PIVOT;
	if ((r = oci_pivot(o)) < 0)
		return r;
	if ((r = steps(o, -1, 2, stage, index)) < 0)
		return r;
	*stage = ST_OCI_ROOTFS;
	return o->readonly ? set_attr("/", MOUNT_ATTR_RDONLY, 0) : 0;
}

/* As runc: where the process's user namespace denies setgroups(2) (a
 * rootless engine's, mapping one gid), the groups are left as they are,
 * silently; a namespace without that file (no /proc in the container) or
 * one that allows it gets them set, and a refusal is an error. */
long oci_groups(const struct oci *o)
{
	char text[8];
	long fd = SYS(SYS_openat, AT_FDCWD, "/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		long n = SYS(SYS_read, fd, text, sizeof text);
		SYS(SYS_close, fd);
		if (n >= 4 && text[0] == 'd' && text[1] == 'e' && text[2] == 'n' && text[3] == 'y')
			return 0;
	} else if (fd != -ENOENT)
		return fd;
	return SYS(SYS_setgroups, o->ngroups, o->groups);
}

/* After the change of uid (PR_SET_KEEPCAPS kept the permitted set): the
 * effective, permitted and inheritable sets, then the ambient one. */
long oci_caps(const struct oci *o)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	for (int i = 0; i < 2; i++) {
		d[i].effective = (uint32_t)(o->caps[1] >> (32 * i));
		d[i].permitted = (uint32_t)(o->caps[2] >> (32 * i));
		d[i].inheritable = (uint32_t)(o->caps[3] >> (32 * i));
	}
	long r = SYS(SYS_capset, &hdr, d);
	if (r < 0)
		return r;
	SYS(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	/* The kernel raises an ambient capability only where it is permitted
	 * and inheritable; runc leaves out the others, and so do we. */
	uint64_t can = o->caps[2] & o->caps[3];
	for (int cap = 0; cap < 64; cap++)
		if ((o->caps[4] & can) >> cap & 1 && (r = SYS(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0)) < 0)
			return r;
	return 0;
}

/* The master to the console socket, as runc sends it: one byte of name
 * ("/dev/pts/N") with the fd attached. */
static long send_fd(int sock, int fd, const char *name)
{
	long r = sys_send_fd(sock, fd, (void *)name, slen(name));
	return r < 0 ? r : 0;
}

/* A pty of the container's own devpts: the master goes out, the slave is
 * the process's stdio and controlling terminal, and /dev/console. */
static long console(const struct oci *o)
{
	long m = SYS(SYS_openat, AT_FDCWD, "/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return m;
	int zero = 0, n = 0;
	long r;
	if ((r = SYS(SYS_ioctl, m, TIOCSPTLCK, &zero)) < 0 || (r = SYS(SYS_ioctl, m, TIOCGPTN, &n)) < 0)
		return r;
	long slave = SYS(SYS_ioctl, m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return slave;
	if (o->rows || o->cols) {
		struct winsize ws = { o->rows, o->cols, 0, 0 };
		SYS(SYS_ioctl, m, TIOCSWINSZ, &ws);
	}
	char name[32];
	cat3(name, "/dev/pts/", 0, 0);
	num_text(name + 9, n);
	if ((r = send_fd(o->console, (int)m, name)) < 0)
		return r;
	SYS(SYS_close, m);
	SYS(SYS_close, o->console);
	char dev[] = "/dev/console";
	if (touch(dev) == 0)
		SYS(SYS_mount, name, dev, 0, MS_BIND, 0);
	for (int fd = 0; fd < 3; fd++)
		if ((r = SYS(SYS_dup3, slave, fd, 0)) < 0)
			return r;
	SYS(SYS_close, slave);
	return SYS(SYS_ioctl, 0, TIOCSCTTY, 0);
}

/* --pidfd-socket: a pidfd of ourselves, with runc's word for the kind of
 * process ("standard" for create, "setns" for exec) as the data. */
static long send_pidfd(const struct oci *o)
{
	long fd = SYS(SYS_pidfd_open, SYS(SYS_getpid), 0);
	if (fd < 0)
		return fd;
	long r = sys_send_fd(o->pidfd_sock, (int)fd, (void *)o->pidfd_name, slen(o->pidfd_name));
	SYS(SYS_close, fd);
	SYS(SYS_close, o->pidfd_sock);
	return r < 0 ? r : 0;
}

/* runc's create fails for a command that is not there; so does ours. */
static long lookup(const struct spec *s)
{
	char buf[PATHLEN];
	for (const char *p = s->file; *p; p++)
		if (*p == '/')
			return SYS(SYS_faccessat, AT_FDCWD, s->file, X_OK);
	for (const char *dir = s->path;; dir++) {
		const char *end = dir;
		while (*end && *end != ':')
			end++;
		size_t n = (size_t)(end - dir);
		if (n + slen(s->file) + 2 < sizeof buf) {
			for (size_t i = 0; i < n; i++)
				buf[i] = dir[i];
			buf[n] = '/';
			cat3(buf + n + 1, s->file, 0, 0);
			if (SYS(SYS_faccessat, AT_FDCWD, buf, X_OK) == 0)
				return 0;
		}
		if (!*end)
			return -ENOENT;
		dir = end;
	}
}

long oci_ready(const struct spec *s, int errfd, int *stage)
{
	const struct oci *o = &s->oci;
	long r;
	*stage = ST_CONSOLE;
	if (o->console >= 0 && (r = console(o)) < 0)
		return r;
	*stage = ST_PIDFD_SOCKET;
	if (o->pidfd_sock >= 0 && (r = send_pidfd(o)) < 0)
		return r;
	if (o->fifo_dir < 0)
		return 0;
	*stage = ST_LOOKUP;
	if ((r = lookup(s)) < 0)
		return r;
	/* Stage 0: prepared; the parent returns and leaves us waiting. */
	int32_t ready[2] = { 0, 0 };
	SYS(SYS_write, errfd, ready, sizeof ready);
	*stage = ST_EXEC_FIFO;
	long fd;
	do
		fd = SYS(SYS_openat, o->fifo_dir, "exec.fifo", O_WRONLY | O_CLOEXEC);
	while (fd == -EINTR);
	if (fd < 0)
		return fd;
	r = SYS(SYS_write, fd, "0", 1);
	SYS(SYS_close, fd);
	SYS(SYS_close, o->fifo_dir);
	return r < 0 ? r : 0;
}
