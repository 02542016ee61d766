/*
 * The sandbox filesystem, as bwrap builds it: a tmpfs becomes the new root,
 * the operations fill it in order (sources read through the old root), and
 * the old root is detached.  Runs in the child before exec: raw system calls
 * and stack buffers only.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "sandbox.h"
#include "sys.h"
#include "wire.h"

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

#define BASE "/tmp"
#define PATHLEN 4096

/* dst = a + b, bounded; -ENAMETOOLONG when it does not fit. */
static long join(char *dst, const char *a, const char *b)
{
	size_t la = slen(a), lb = slen(b);
	if (la + lb + 1 > PATHLEN)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < la; i++)
		dst[i] = a[i];
	for (size_t i = 0; i <= lb; i++)
		dst[la + i] = b[i];
	return 0;
}

static void append_num(char **p, unsigned long v, int base)
{
	char tmp[24];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % (unsigned long)base);
	while ((v /= (unsigned long)base));
	while (n)
		*(*p)++ = tmp[--n];
}

static void append_str(char **p, const char *s)
{
	while (*s)
		*(*p)++ = *s++;
}

/* mkdir(2) that is content with a directory already there (bwrap's ensure_dir). */
static long ensure_dir(const char *path, long mode)
{
	long r = SYS(SYS_mkdirat, AT_FDCWD, path, mode);
	if (r == -EEXIST) {
		struct stat st;
		if (SYS(SYS_newfstatat, AT_FDCWD, path, &st, 0) == 0 && S_ISDIR(st.st_mode))
			return 0;
	}
	return r;
}

/* The parents of path, each made with mode when missing (not path itself). */
static long mkdir_parents(char *path, long mode)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		long r = ensure_dir(path, mode);
		*p = '/';
		if (r < 0)
			return r;
	}
	return 0;
}

/* bwrap's parents for an operation's destination: 0755, less the group's
 * bits when the operation's own mode gives the group nothing, and the same
 * for others.  An operation without a mode counts as mode 0 there, as in
 * bwrap, so the parents of a bind or a symlink are 0700. */
static long parent_mode(long perms)
{
	long mode = 0755, p = perms < 0 ? 0 : perms;
	if (!(p & 070))
		mode &= ~050L;
	if (!(p & 07))
		mode &= ~05L;
	return mode;
}

/* An empty file to mount on, unless something is there already. */
static long ensure_file(const char *path, long mode)
{
	long fd = SYS(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd == -EEXIST)
		return 0;
	if (fd < 0)
		return fd;
	SYS(SYS_close, fd);
	return 0;
}

/* A mount point of the same kind as the source: a 0755 directory or a 0444 file. */
static long make_mountpoint(const char *dest, int dir)
{
	return dir ? ensure_dir(dest, 0755) : ensure_file(dest, 0444);
}

static long set_attr(const char *path, uint64_t set, unsigned flags)
{
	struct mount_attr attr = { .attr_set = set };
	return SYS(SYS_mount_setattr, AT_FDCWD, path, flags, &attr, sizeof attr);
}

static long bind_path(const char *src, const char *dest, uint64_t attrs)
{
	struct stat st;
	long r = SYS(SYS_newfstatat, AT_FDCWD, src, &st, 0);
	if (r < 0)
		return r;
	if ((r = make_mountpoint(dest, S_ISDIR(st.st_mode))) < 0)
		return r;
	if ((r = SYS(SYS_mount, src, dest, 0, MS_BIND | MS_REC, 0)) < 0)
		return r;
	/* Every submount too: a read-only bind must not hide a writable one. */
	return attrs ? set_attr(dest, attrs, AT_RECURSIVE) : 0;
}

static long mount_tmpfs(const char *dest, long mode, long size, unsigned long flags)
{
	char opts[64], *p = opts;
	long r = ensure_dir(dest, 0755);
	if (r < 0)
		return r;
	append_str(&p, "mode=");
	append_num(&p, (unsigned long)(mode < 0 ? 0755 : mode), 8);
	if (size >= 0) {
		append_str(&p, ",size=");
		append_num(&p, (unsigned long)size, 10);
	}
	*p = 0;
	return SYS(SYS_mount, "tmpfs", dest, "tmpfs", MS_NOSUID | MS_NODEV | flags, opts);
}

/* A file source that names an open fd rather than a path; its number, or -1. */
static long fd_source(const char *src)
{
	long fd = 0;
	for (const char *p = TSNS_FD_SOURCE; *p; p++, src++)
		if (*src != *p)
			return -1;
	for (; *src; src++)
		fd = fd * 10 + (*src - '0');
	return fd;
}

static long copy_data(long in, long out)
{
	char buf[8192];
	long r;
	while ((r = SYS(SYS_read, in, buf, sizeof buf)) > 0 || r == -EINTR) {
		for (long done = 0; done < r;) {
			long w = SYS(SYS_write, out, buf + done, r - done);
			if (w == -EINTR)
				continue;
			if (w < 0)
				return w;
			done += w;
		}
	}
	return r;
}

/* A path's contents, or an fd's (which bwrap closes once read), into a new file. */
static long copy_file(const char *src, const char *dest, long mode, int flags)
{
	long fd = fd_source(src);
	long in = fd >= 0 ? fd : SYS(SYS_openat, AT_FDCWD, src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return in;
	long out = SYS(SYS_openat, AT_FDCWD, dest, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | flags, mode);
	long r = out;
	if (out >= 0) {
		r = SYS(SYS_fchmod, out, mode);
		if (r >= 0)
			r = copy_data(in, out);
		SYS(SYS_close, out);
	}
	SYS(SYS_close, in);
	return r < 0 ? r : 0;
}

/* --bind-data: the data in a file of the base tmpfs, outside the new root,
 * bound on dest; the file's name goes once bound, as bwrap does. */
static long bind_data(const char *src, const char *dest, long mode, int index, uint64_t attrs)
{
	char tmp[32], *p = tmp;
	append_str(&p, "/bindfile");
	append_num(&p, (unsigned long)index, 10);
	*p = 0;
	long r = copy_file(src, tmp, mode, O_EXCL);
	if (r >= 0 && (r = ensure_file(dest, 0444)) >= 0 && (r = SYS(SYS_mount, tmp, dest, 0, MS_BIND, 0)) >= 0)
		r = set_attr(dest, attrs, 0);
	SYS(SYS_unlinkat, AT_FDCWD, tmp, 0);
	return r;
}

/* --bind-fd: a mount of the caller's namespace cannot be bound from this
 * one, so, as bwrap does, the fd's path is bound through the old root.
 * Something else may have taken that path since the fd was opened: what got
 * mounted must be the file the fd is open on (-ESTALE when not).  The fd is
 * closed once bound, as bwrap closes it. */
static long bind_fd(long fd, const char *dest, uint64_t attrs)
{
	char link[48], path[PATHLEN], *p = link;
	struct stat want, got;
	append_str(&p, "/oldroot/proc/self/fd/");
	append_num(&p, (unsigned long)fd, 10);
	*p = 0;
	join(path, "/oldroot", "");
	long n = SYS(SYS_readlinkat, AT_FDCWD, link, path + 8, PATHLEN - 9);
	if (n < 0)
		return n;
	/* "pipe:[N]", "socket:[N]": nothing a path leads to. */
	if (n == 0 || path[8] != '/' || n >= PATHLEN - 9)
		return n >= PATHLEN - 9 ? -ENAMETOOLONG : -ENOTDIR;
	path[8 + n] = 0;
	long r = bind_path(path, dest, attrs);
	if (r < 0)
		return r;
	if ((r = SYS(SYS_newfstatat, fd, "", &want, AT_EMPTY_PATH)) < 0 || (r = SYS(SYS_newfstatat, AT_FDCWD, dest, &got, AT_SYMLINK_NOFOLLOW)) < 0)
		return r;
	if (want.st_dev != got.st_dev || want.st_ino != got.st_ino)
		return -ESTALE;
	SYS(SYS_close, fd);
	return 0;
}

/* A symbolic link, or the same one already there (bwrap allows that). */
static long make_symlink(const char *target, const char *dest)
{
	long r = SYS(SYS_symlinkat, target, AT_FDCWD, dest);
	if (r != -EEXIST)
		return r;
	char have[PATHLEN];
	long n = SYS(SYS_readlinkat, AT_FDCWD, dest, have, sizeof have - 1);
	if (n < 0)
		return -EEXIST;
	have[n] = 0;
	for (long i = 0; i <= n; i++)
		if (have[i] != target[i])
			return -EEXIST;
	return 0;
}

/* A minimal /dev: the harmless devices bound from the host, a new devpts,
 * a tmpfs shm and the usual links. */
static long make_dev(char *dest)
{
	static const char *const devices[] = { "null", "zero", "full", "random", "urandom", "tty" };
	static const char *const links[][2] = {
		{ "pts/ptmx", "ptmx" }, { "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" },
		{ "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" }, { "/proc/kcore", "core" },
	};
	char path[PATHLEN], src[64];
	size_t len = slen(dest);
	long r = mount_tmpfs(dest, 0755, -1, MS_NOEXEC);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < sizeof devices / sizeof *devices; i++) {
		if ((r = join(path, dest, "/")) < 0 || (r = join(path + len + 1, devices[i], "")) < 0)
			return r;
		join(src, "/oldroot/dev/", devices[i]);
		if ((r = make_mountpoint(path, 0)) < 0 || (r = SYS(SYS_mount, src, path, 0, MS_BIND, 0)) < 0)
			return r;
	}
	join(path, dest, "/shm");
	if ((r = mount_tmpfs(path, 01777, -1, 0)) < 0)
		return r;
	join(path, dest, "/pts");
	if ((r = ensure_dir(path, 0755)) < 0 ||
	    (r = SYS(SYS_mount, "devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")) < 0)
		return r;
	for (unsigned i = 0; i < sizeof links / sizeof *links; i++) {
		join(path, dest, "/");
		join(path + len + 1, links[i][1], "");
		if ((r = SYS(SYS_symlinkat, links[i][0], AT_FDCWD, path)) < 0)
			return r;
	}
	return 0;
}

/* A path of the old root into mount options: ',' ':' and '\' escaped, as
 * overlayfs reads them.  0, or -ENAMETOOLONG. */
static long append_escaped(char **p, const char *end, const char *path, char stop)
{
	append_str(p, "/oldroot");
	for (; *path && *path != stop; path++) {
		if (*p + 2 >= end)
			return -ENAMETOOLONG;
		if (*path == ',' || *path == ':' || *path == '\\')
			*(*p)++ = '\\';
		*(*p)++ = *path;
	}
	return 0;
}

/* An overlay of the lowers (TSNS_OP_LIST_SEP between them) read through the
 * old root: with the upper and work directories given (--overlay), with a
 * tmpfs upper layer so that writes vanish with the sandbox (--tmp-overlay),
 * or read-only (--ro-overlay). */
static long overlay(const struct sb_op *op, const char *dest, int index)
{
	char opts[3 * PATHLEN], dir[64], *p = opts, *d = dir, *end = opts + sizeof opts - 64;
	long r;
	if (op->code == OP_OVERLAY) {
		append_str(&d, "/overlay");
		append_num(&d, (unsigned long)index, 10);
		*d = 0;
		if ((r = mount_tmpfs(dir, 0755, -1, 0)) < 0)
			return r;
		append_str(&d, "/upper");
		*d = 0;
		if ((r = ensure_dir(dir, 0755)) < 0)
			return r;
		d -= 6;
		append_str(&d, "/work");
		*d = 0;
		if ((r = ensure_dir(dir, 0755)) < 0)
			return r;
		d -= 5;
		*d = 0;
		append_str(&p, "upperdir=");
		append_str(&p, dir);
		append_str(&p, "/upper,workdir=");
		append_str(&p, dir);
		append_str(&p, "/work,");
	} else if (op->code == OP_RW_OVERLAY) {
		append_str(&p, "upperdir=");
		if ((r = append_escaped(&p, end, op->c, 0)) < 0)
			return r;
		append_str(&p, ",workdir=");
		if ((r = append_escaped(&p, end, op->d, 0)) < 0)
			return r;
		*p++ = ',';
	}
	append_str(&p, "lowerdir=");
	for (const char *l = op->a; *l;) {
		if ((r = append_escaped(&p, end, l, TSNS_OP_LIST_SEP)) < 0)
			return r;
		while (*l && *l != TSNS_OP_LIST_SEP)
			l++;
		if (*l) {
			*p++ = ':';
			l++;
		}
	}
	/* As bwrap: overlayfs keeps its attributes in user.* xattrs, which a user namespace may write. */
	append_str(&p, ",userxattr");
	*p = 0;
	if ((r = ensure_dir(dest, 0755)) < 0)
		return r;
	return SYS(SYS_mount, "overlay", dest, "overlay", 0, opts);
}

static long apply(const struct sandbox *sb, int i)
{
	const struct sb_op *op = &sb->ops[i];
	char src[PATHLEN], dest[PATHLEN];
	long r;
	if ((r = join(dest, "/newroot", op->b)) < 0)
		return r;
	int path_source = op->a && op->code != OP_SYMLINK && op->code != OP_OVERLAY && op->code != OP_RO_OVERLAY &&
			  op->code != OP_RW_OVERLAY && fd_source(op->a) < 0;
	if (path_source && (r = join(src, "/oldroot", op->a)) < 0)
		return r;
	if (path_source && op->try_) {
		struct stat st;
		if (SYS(SYS_newfstatat, AT_FDCWD, src, &st, 0) == -ENOENT)
			return 0;
	}
	/* Everything but --chmod makes the parents it needs (umask 0 here). */
	if (op->code != OP_CHMOD && (r = mkdir_parents(dest, parent_mode(op->mode))) < 0)
		return r;
	switch ((enum tsns_op)op->code) {
	case OP_BIND:
	case OP_RO_BIND:
	case OP_DEV_BIND:
		return bind_path(src, dest, op->code == OP_DEV_BIND ? MOUNT_ATTR_NOSUID :
			 op->code == OP_BIND ? MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV :
			 MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY);
	case OP_BIND_FD:
	case OP_RO_BIND_FD:
		return bind_fd(fd_source(op->a), dest, op->code == OP_BIND_FD ? MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV :
			       MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY);
	case OP_BIND_DATA:
	case OP_RO_BIND_DATA:
		return bind_data(op->a, dest, op->mode, i, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
				 (op->code == OP_RO_BIND_DATA ? MOUNT_ATTR_RDONLY : 0));
	case OP_TMPFS:
		return mount_tmpfs(dest, op->mode, op->size, 0);
	case OP_DIR:
		return ensure_dir(dest, op->mode < 0 ? 0755 : op->mode);
	case OP_SYMLINK:
		return make_symlink(op->a, dest);
	case OP_FILE:
		return copy_file(fd_source(op->a) >= 0 ? op->a : src, dest, op->mode < 0 ? 0666 : op->mode, O_TRUNC);
	case OP_CHMOD:
		return SYS(SYS_fchmodat, AT_FDCWD, dest, op->mode);
	case OP_REMOUNT_RO:
		/* bwrap's --remount-ro: DEST itself, not its submounts. */
		return set_attr(dest, MOUNT_ATTR_RDONLY, 0);
	case OP_PROC:
		if ((r = ensure_dir(dest, 0755)) < 0)
			return r;
		return SYS(SYS_mount, "proc", dest, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0);
	case OP_DEV:
		return make_dev(dest);
	case OP_MQUEUE:
		if ((r = ensure_dir(dest, 0755)) < 0)
			return r;
		return SYS(SYS_mount, "mqueue", dest, "mqueue", 0, 0);
	case OP_OVERLAY:
	case OP_RO_OVERLAY:
	case OP_RW_OVERLAY:
		return overlay(op, dest, i);
	}
	return -EINVAL;
}

static long build(const struct sandbox *sb, int *failed);

long sandbox_build(const struct sandbox *sb, int *failed)
{
	long r;
	*failed = -1;
	/* As bwrap: the modes asked for are the modes made; the command gets the caller's umask back. */
	long umask = SYS(SYS_umask, 0);
	r = build(sb, failed);
	SYS(SYS_umask, umask);
	return r;
}

static long build(const struct sandbox *sb, int *failed)
{
	long r;
	/* A tmpfs to stand on, holding the new root and the old one. */
	if ((r = SYS(SYS_mount, "tmpfs", BASE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")) < 0 ||
	    (r = SYS(SYS_chdir, BASE)) < 0 ||
	    (r = SYS(SYS_mkdirat, AT_FDCWD, "newroot", 0755)) < 0 ||
	    (r = SYS(SYS_mkdirat, AT_FDCWD, "oldroot", 0755)) < 0 ||
	    (r = SYS(SYS_mount, "tmpfs", "newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")) < 0 ||
	    (r = SYS(SYS_pivot_root, ".", "oldroot")) < 0 ||
	    (r = SYS(SYS_chdir, "/")) < 0)
		return r;
	for (int i = 0; i < sb->nops; i++) {
		if ((r = apply(sb, i)) < 0) {
			*failed = i;
			return r;
		}
	}
	*failed = -1;
	/* Detach the old root, then make the new one the root: pivot_root(".", ".")
	 * stacks the old root on the new, and the detach takes it away. */
	if ((r = SYS(SYS_umount2, "/oldroot", MNT_DETACH)) < 0 ||
	    (r = SYS(SYS_chdir, "/newroot")) < 0 ||
	    (r = SYS(SYS_pivot_root, ".", ".")) < 0 ||
	    (r = SYS(SYS_umount2, ".", MNT_DETACH)) < 0)
		return r;
	return SYS(SYS_chdir, "/");
}

long sandbox_bound(uint64_t keep)
{
	for (int cap = 0; cap < 64; cap++) {
		if (keep & (1ULL << cap))
			continue;
		long r = SYS(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
		if (r == -EINVAL)
			break; /* past the kernel's last capability */
		if (r < 0)
			return r;
	}
	return 0;
}

long sandbox_caps(uint64_t keep)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	long r;
	if ((r = SYS(SYS_capget, &hdr, d)) < 0)
		return r;
	for (int i = 0; i < 2; i++) {
		uint32_t k = (uint32_t)(keep >> (32 * i));
		d[i].permitted &= k;
		d[i].effective = d[i].inheritable = d[i].permitted;
	}
	if ((r = SYS(SYS_capset, &hdr, d)) < 0)
		return r;
	SYS(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	/* Kept capabilities survive exec for a non-root uid too. */
	for (int cap = 0; cap < 64; cap++)
		if (d[cap / 32].permitted & (1U << (cap % 32)))
			SYS(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
	return 0;
}

long sandbox_lo_up(void)
{
	struct ifreq ifr = { 0 };
	long fd = SYS(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	ifr.ifr_name[0] = 'l';
	ifr.ifr_name[1] = 'o';
	long r = SYS(SYS_ioctl, fd, SIOCGIFFLAGS, &ifr);
	if (r >= 0) {
		ifr.ifr_flags |= IFF_UP;
		r = SYS(SYS_ioctl, fd, SIOCSIFFLAGS, &ifr);
	}
	SYS(SYS_close, fd);
	return r;
}

/* bwrap's directory when none is asked for: the caller's, else $HOME, else
 * "/"; PWD says which.  envp has one "PWD=" entry for us to point at the
 * chosen "PWD=DIR" (each of dirs is one). */
void sandbox_wd_try(const char *const *dirs, int n, char **envp)
{
	for (int i = 0; i < n; i++) {
		if (SYS(SYS_chdir, dirs[i] + 4) < 0)
			continue;
		for (char **e = envp; *e; e++)
			if ((*e)[0] == 'P' && (*e)[1] == 'W' && (*e)[2] == 'D' && (*e)[3] == '=')
				*e = (char *)dirs[i];
		return;
	}
}
