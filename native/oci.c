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

static long mkdir_p(char *path)
{
	for (char *p = path + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char ch = *p;
			*p = 0;
			long r = SYS(SYS_mkdirat, AT_FDCWD, path, 0755);
			*p = ch;
			if (r < 0 && r != -EEXIST)
				return r;
			if (!ch)
				return 0;
		}
	}
}

/* An empty file to mount on, its directories made first. */
static long touch(char *path)
{
	char *slash = 0;
	for (char *p = path; *p; p++)
		if (*p == '/')
			slash = p;
	if (slash && slash != path) {
		*slash = 0;
		long r = mkdir_p(path);
		*slash = '/';
		if (r < 0)
			return r;
	}
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

/* A bind of src onto dest, with a mount point of src's kind; the flags a
 * bind mount cannot take at once go on with mount_setattr, which in a user
 * namespace leaves the locked ones (nosuid, nodev ...) as they are. */
static long bind_to(const char *src, char *dest, int rec, uint64_t attr)
{
	long r = is_dir(src) ? mkdir_p(dest) : touch(dest);
	if (r < 0 || (r = SYS(SYS_mount, src, dest, 0, MS_BIND | (rec ? MS_REC : 0), 0)) < 0)
		return r;
	return attr ? set_attr(dest, attr, rec) : 0;
}

static uint64_t attr_of(unsigned long flags)
{
	return (flags & MS_RDONLY ? MOUNT_ATTR_RDONLY : 0) | (flags & MS_NOSUID ? MOUNT_ATTR_NOSUID : 0) |
	       (flags & MS_NODEV ? MOUNT_ATTR_NODEV : 0) | (flags & MS_NOEXEC ? MOUNT_ATTR_NOEXEC : 0);
}

static long one_mount(const char *root, const struct oci_mount *m)
{
	char dest[PATHLEN];
	long r = cat3(dest, root, m->dest, 0);
	if (r < 0)
		return r;
	if (m->flags & MS_BIND)
		r = bind_to(m->src, dest, (m->flags & MS_REC) != 0, m->attr);
	else if ((r = mkdir_p(dest)) < 0)
		return r;
	else if (m->type && str_eq(m->type, "cgroup") && !m->data) {
		/* The cgroup namespace's own view where the kernel lets us mount
		 * one; the host's hierarchies otherwise, as runc does rootless.
		 * With data, a v1 hierarchy (src/oci/cgroup-mount.ts): mounted
		 * as any other filesystem, below. */
		r = SYS(SYS_mount, "cgroup2", dest, "cgroup2", m->flags, 0);
		if (r < 0)
			r = bind_to("/sys/fs/cgroup", dest, 1, attr_of(m->flags));
	} else {
		r = SYS(SYS_mount, m->src ? m->src : m->type, dest, m->type, m->flags, m->data);
		/* sysfs and mqueue of a namespace we do not own: the host's, read-only. */
		if (r == -EPERM && m->type && (str_eq(m->type, "sysfs") || str_eq(m->type, "mqueue")))
			r = bind_to(str_eq(m->type, "sysfs") ? "/sys" : "/dev/mqueue", dest, 1, attr_of(m->flags) | MOUNT_ATTR_RDONLY);
	}
	if (r >= 0 && m->prop)
		r = SYS(SYS_mount, 0, dest, 0, m->prop, 0);
	return r;
}

static long make_device(const char *root, const struct oci_step *st)
{
	char dest[PATHLEN];
	long r = cat3(dest, root, st->a, 0);
	if (r < 0)
		return r;
	unsigned long major = (unsigned long)st->n[0], minor = (unsigned long)st->n[1];
	unsigned long dev = ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xffUL) << 12) | ((major & ~0xfffUL) << 32);
	long type = st->b[0] == 'b' ? S_IFBLK : st->b[0] == 'p' ? S_IFIFO : S_IFCHR;
	char *slash = dest;
	for (char *p = dest; *p; p++)
		if (*p == '/')
			slash = p;
	*slash = 0;
	r = mkdir_p(dest);
	*slash = '/';
	if (r < 0)
		return r;
	r = SYS(SYS_mknodat, AT_FDCWD, dest, type | (st->n[2] & 07777), dev);
	if (r == -EEXIST)
		return 0;
	/* No mknod in a user namespace: the host's device, bound. */
	if (r == -EPERM)
		return bind_to(st->a, dest, 0, 0);
	if (r < 0)
		return r;
	if (st->n[3] >= 0 || st->n[4] >= 0)
		r = SYS(SYS_fchownat, AT_FDCWD, dest, st->n[3], st->n[4], AT_SYMLINK_NOFOLLOW);
	/* mknod obeys the umask; the config's mode is meant. */
	return r < 0 ? r : SYS(SYS_fchmodat, AT_FDCWD, dest, st->n[2] & 07777);
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
 * pivot (root: its path), 2 after the pivot. */
static long step(const char *root, const struct oci_step *st, int phase)
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
	case 1 * 256 + OCI_STEP_DEVICE: return make_device(root, st);
	case 1 * 256 + OCI_STEP_SYMLINK:
		if ((r = cat3(path, root, st->b, 0)) < 0)
			return r;
		r = SYS(SYS_symlinkat, st->a, AT_FDCWD, path);
		return r == -EEXIST ? 0 : r;
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

static long steps(const struct oci *o, int phase, int *index)
{
	for (int i = 0; i < o->nsteps; i++) {
		long r = step(o->root, &o->steps[i], phase);
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

/* Into the rootfs: pivot_root(".", ".") stacks the old root on the new one
 * and the detach takes it away (made a slave first, so that the detach
 * does not reach the host); with --no-pivot, a move and a chroot. */
static long pivot(const struct oci *o)
{
	long r;
	if ((r = SYS(SYS_chdir, o->root)) < 0)
		return r;
	if (o->no_pivot) {
		if ((r = SYS(SYS_mount, o->root, "/", 0, MS_MOVE, 0)) < 0 || (r = SYS(SYS_chroot, ".")) < 0)
			return r;
	} else if ((r = SYS(SYS_pivot_root, ".", ".")) < 0 || (r = SYS(SYS_mount, 0, ".", 0, MS_SLAVE | MS_REC, 0)) < 0 ||
		   (r = SYS(SYS_umount2, ".", MNT_DETACH)) < 0) {
		return r;
	}
	return SYS(SYS_chdir, "/");
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
	*stage = ST_OCI_STEP;
	if ((r = steps(o, 0, index)) < 0 || !o->root)
		return r;
	*stage = ST_OCI_ROOTFS;
	if ((r = SYS(SYS_mount, o->root, o->root, 0, MS_BIND | MS_REC, 0)) < 0)
		return r;
	*stage = ST_OCI_MOUNT;
	for (int i = 0; i < o->nmounts; i++)
		if ((r = one_mount(o->root, &o->mounts[i])) < 0) {
			*index = i;
			return r;
		}
	*stage = ST_OCI_STEP;
	if ((r = steps(o, 1, index)) < 0)
		return r;
	*stage = ST_OCI_HOOKS;
	if (o->hooks_go >= 0 && (r = hooks_pause(o)) < 0)
		return r;
	*stage = ST_OCI_PIVOT;
	if ((r = pivot(o)) < 0)
		return r;
	*stage = ST_OCI_STEP;
	if ((r = steps(o, 2, index)) < 0)
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
