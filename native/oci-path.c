/*
 * Paths in an OCI container's rootfs, before the pivot (tsns-oci): each
 * mount destination, device, and link of the config is resolved as the
 * container will see it, from the rootfs as its root.  A symlink in the
 * rootfs is read as the container reads it (an absolute one from the
 * rootfs, ".." never above it), never as the host would (from the host's
 * /), so that a rootfs whose /etc -> /host/etc or /evil -> ../../.. cannot
 * make the runtime create or mount anything outside it.  What is missing
 * is made relative to an fd of the directory above it, and the caller
 * mounts onto the fd it gets (oci_fd_path), not onto a path looked up
 * again: a component swapped for a symlink meanwhile changes nothing.
 *
 * openat2(RESOLVE_IN_ROOT) does it in the kernel for a path that exists;
 * for the rest (what is to be made, or a kernel before 5.6) a walk of our
 * own: one component at a time, each opened O_NOFOLLOW from the one above,
 * a symlink's text spliced in its place, ".." back to a directory we came
 * through (never the parent of the one the rootfs is).  A magic link
 * (/proc/self/root...) is not followed: openat2 refuses it, the walk reads
 * its text like any link's.
 *
 * Runs in the child after clone: raw system calls and stack buffers only.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <string.h> /* memcpy: a call compilers make of copy loops anyway */
#include <sys/stat.h>

#include "oci.h"
#include "sys.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
struct tsns_open_how {
	uint64_t flags, mode, resolve;
};
#define TSNS_RESOLVE_NO_MAGICLINKS 0x02
#define TSNS_RESOLVE_NO_SYMLINKS 0x04
#define TSNS_RESOLVE_IN_ROOT 0x10

#define PATHLEN 4096
#define NAMELEN 256
#define MAX_DEPTH 128
#define MAX_LINKS 40 /* the kernel's own limit (ELOOP past it) */

long oci_fd_path(char *buf, long fd)
{
	char digits[24];
	int n = 0;
	const char *pre = "/proc/self/fd/";
	char *p = buf;
	while (*pre)
		*p++ = *pre++;
	do
		digits[n++] = (char)('0' + fd % 10);
	while ((fd /= 10));
	while (n)
		*p++ = digits[--n];
	*p = 0;
	return 0;
}

static long kind(long fd, struct stat *st)
{
	return SYS(SYS_newfstatat, fd, "", st, AT_EMPTY_PATH);
}

/* One missing component made in its directory: a directory, or (at the
 * end, with OCI_PATH_FILE) an empty file; one that appeared meanwhile is
 * fine, the caller opens it again (O_NOFOLLOW) to see what it is. */
static long make(long dir, const char *name, int file)
{
	long r;
	if (!file)
		r = SYS(SYS_mkdirat, dir, name, 0755);
	else if ((r = SYS(SYS_openat, dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) >= 0)
		r = SYS(SYS_close, r);
	return r == -EEXIST ? 0 : r;
}

/* The walk: path's components from root, what is missing made as `how`
 * says; an O_PATH fd of the end, or -errno.  `rest` keeps what is left of
 * the path at its end, so that a link's text goes in front of it. */
static long walk(int root, const char *path, int how)
{
	char rest[PATHLEN], name[NAMELEN];
	long stack[MAX_DEPTH];
	int depth = 0, links = 0;
	size_t n = slen(path), off;
	long r = 0;
	if (n >= PATHLEN)
		return -ENAMETOOLONG;
	off = PATHLEN - 1 - n;
	memcpy(rest + off, path, n + 1);
	for (;;) {
		while (rest[off] == '/')
			off++;
		long cur = depth ? stack[depth - 1] : root;
		if (!rest[off]) {
			r = SYS(SYS_openat, cur, ".", O_PATH | O_CLOEXEC);
			break;
		}
		size_t len = 0;
		while (rest[off + len] && rest[off + len] != '/')
			len++;
		if (len >= NAMELEN) {
			r = -ENAMETOOLONG;
			break;
		}
		memcpy(name, rest + off, len);
		name[len] = 0;
		off += len;
		size_t after = off;
		while (rest[after] == '/')
			after++;
		int last = !rest[after];
		if (len == 1 && name[0] == '.')
			continue;
		if (len == 2 && name[0] == '.' && name[1] == '.') {
			if (depth)
				SYS(SYS_close, stack[--depth]);
			continue;
		}
		long fd = -ENOENT;
		for (int tries = 0; tries < 4; tries++) {
			fd = SYS(SYS_openat, cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (fd != -ENOENT || !(how & (OCI_PATH_DIR | OCI_PATH_FILE)))
				break;
			if ((fd = make(cur, name, last && (how & OCI_PATH_FILE))) < 0)
				break;
			fd = -ENOENT;
		}
		struct stat st;
		if (fd < 0 || (r = kind(fd, &st)) < 0) {
			r = fd < 0 ? fd : r;
			if (fd >= 0)
				SYS(SYS_close, fd);
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			char text[PATHLEN];
			long t = (how & OCI_PATH_NOLINKS) || ++links > MAX_LINKS ? -ELOOP : SYS(SYS_readlinkat, fd, "", text, sizeof text);
			SYS(SYS_close, fd);
			if (t == 0 || t == sizeof text || (t > 0 && (size_t)t + 1 > off))
				t = -ENAMETOOLONG;
			if ((r = t) < 0)
				break;
			rest[--off] = '/';
			off -= (size_t)t;
			memcpy(rest + off, text, (size_t)t);
			if (text[0] == '/')
				while (depth)
					SYS(SYS_close, stack[--depth]);
			continue;
		}
		if (last) {
			r = fd;
			break;
		}
		if (!S_ISDIR(st.st_mode) || depth == MAX_DEPTH) {
			SYS(SYS_close, fd);
			r = depth == MAX_DEPTH ? -ENAMETOOLONG : -ENOTDIR;
			break;
		}
		stack[depth++] = fd;
	}
	while (depth)
		SYS(SYS_close, stack[--depth]);
	return r;
}

long oci_path(int root, const char *path, int how)
{
	struct tsns_open_how oh = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = TSNS_RESOLVE_IN_ROOT | TSNS_RESOLVE_NO_MAGICLINKS | (how & OCI_PATH_NOLINKS ? TSNS_RESOLVE_NO_SYMLINKS : 0),
	};
	long r;
	/* EAGAIN: a rename or mount in the rootfs raced the lookup; the
	 * kernel would rather we tried again than trust it. */
	for (int i = 0; i < 8; i++)
		if ((r = SYS(SYS_openat2, root, path, &oh, sizeof oh)) != -EAGAIN)
			break;
	if (r >= 0 || (r != -ENOSYS && r != -EAGAIN && (r != -ENOENT || !(how & (OCI_PATH_DIR | OCI_PATH_FILE)))))
		return r;
	return walk(root, path, how);
}

long oci_path_parent(int root, const char *path, const char **name)
{
	char dir[PATHLEN];
	size_t n = slen(path), slash = 0;
	while (n > 1 && path[n - 1] == '/')
		n--;
	for (size_t i = 0; i < n; i++)
		if (path[i] == '/')
			slash = i;
	*name = path + slash + 1;
	size_t len = (size_t)(path + n - *name);
	if (n >= PATHLEN || len == 0 || (len == 1 && **name == '.') || (len == 2 && (*name)[0] == '.' && (*name)[1] == '.'))
		return -EINVAL;
	/* A trailing slash is not part of the name mknodat or symlinkat takes. */
	if (path[n])
		return -EINVAL;
	memcpy(dir, path, slash);
	dir[slash] = 0;
	return oci_path(root, slash ? dir : "/", OCI_PATH_DIR);
}
