/*
 * An OCI container's rootfs before and at the pivot (tsns-oci), in runc
 * 1.1's order: / given linux.rootfsPropagation (rslave without one), the
 * mount the rootfs is on made private where it is shared, the rootfs bound
 * onto itself; then pivot_root, or with --no-pivot a move and a chroot.
 *
 * pivot_root(2) refuses (EINVAL) a new root that is shared or whose parent
 * is, and a move out of a shared parent fails alike: with "shared" or
 * "rshared", the rootfs's mount is shared by then, and the private step is
 * what lets both go on.  It also keeps the rootfs's bind from reaching
 * that mount's peers (the host's, where / is shared with it).
 *
 * Runs after clone, so raw system calls and stack buffers only, as in
 * child.c (test/unit/native-rules.test.ts checks the object file).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "oci.h"
#include "sys.h"

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x1000U
#endif
#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x2000
#endif

/* Whether the mount of that id is shared: a "shared:N" among its optional
 * fields (the 7th field on, up to a lone "-") in /proc/self/mountinfo.
 * 1, 0 (also: no such mount), or -errno.  Read a block at a time and
 * scanned a character at a time, so that no line is too long. */
static long mount_shared(uint64_t id)
{
	static const char tag[] = "shared:";
	char buf[1024];
	long fd = SYS(SYS_openat, AT_FDCWD, "/proc/self/mountinfo", O_RDONLY | O_CLOEXEC), n;
	if (fd < 0)
		return fd;
	uint64_t num = 0;
	/* field: its index in the line; at: the character's in the field */
	int field = 0, at = 0, mine = 0, over = 0, tagged = 0, dash = 0, shared = 0, end = 0;
	while (!end && (n = SYS(SYS_read, fd, buf, sizeof buf)) > 0) {
		for (long i = 0; i < n && !end; i++) {
			char ch = buf[i];
			if (ch == '\n' || ch == ' ') {
				if (field == 0)
					mine = num == id;
				if (dash)
					over = 1;
				if (ch == '\n') {
					end = mine;
					field = 0, num = 0, over = 0;
				} else
					field++;
				at = 0, dash = 0;
				continue;
			}
			if (field == 0)
				num = num * 10 + (uint64_t)(ch - '0');
			else if (mine && field >= 6 && !over) {
				if (at == 0)
					tagged = 1, dash = ch == '-';
				else
					dash = 0;
				if (at < 7 && (tagged = tagged && ch == tag[at]) && at == 6)
					shared = 1;
			}
			at++;
		}
	}
	SYS(SYS_close, fd);
	return n < 0 ? n : mine && shared;
}

/* The mount ROOT is on, found from ROOT's directory up to the first mount
 * root (".." out of a mount's root leads into the mount above it), made
 * private if it is shared.  Through its fd: no name is looked up twice.  A
 * kernel without statx's mount fields (before 5.8) leaves it as it is. */
static long parent_private(const char *root)
{
	long fd = SYS(SYS_openat, AT_FDCWD, root, O_PATH | O_DIRECTORY | O_CLOEXEC), r = 0;
	if (fd < 0)
		return fd;
	struct statx stx, last = { 0 };
	for (int depth = 0;; depth++) {
		if ((r = SYS(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx)) < 0)
			break;
		if (!(stx.stx_mask & STATX_MNT_ID) || !(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) || depth > 1024 ||
		    (depth && stx.stx_ino == last.stx_ino && stx.stx_dev_major == last.stx_dev_major && stx.stx_dev_minor == last.stx_dev_minor))
			break; /* no answer, or the process's own root, which is not a mount's */
		if (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) {
			if ((r = mount_shared(stx.stx_mnt_id)) > 0) {
				char at[32];
				oci_fd_path(at, fd);
				r = SYS(SYS_mount, 0, at, 0, MS_PRIVATE, 0);
			}
			break;
		}
		last = stx;
		long up = SYS(SYS_openat, fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		SYS(SYS_close, fd);
		if ((fd = up) < 0)
			return up;
	}
	SYS(SYS_close, fd);
	return r < 0 ? r : 0;
}

long oci_root_prepare(const struct oci *o)
{
	long r;
	if (o->root_prop && (r = SYS(SYS_mount, 0, "/", 0, o->root_prop, 0)) < 0)
		return r;
	if ((r = parent_private(o->root)) < 0)
		return r;
	return SYS(SYS_mount, o->root, o->root, 0, MS_BIND | MS_REC, 0);
}

/* Into the rootfs: pivot_root(".", ".") stacks the old root on the new one
 * and the detach takes it away, made a slave first so that the detach does
 * not reach the host.  That is done from the old root (an fd of it from
 * before): "." from the new root's directory would name the new root, under
 * the old one, and make every mount of the container a slave.  With
 * --no-pivot, a move and a chroot. */
long oci_pivot(const struct oci *o)
{
	long r;
	if ((r = SYS(SYS_chdir, o->root)) < 0)
		return r;
	if (o->no_pivot) {
		if ((r = SYS(SYS_mount, o->root, "/", 0, MS_MOVE, 0)) < 0 || (r = SYS(SYS_chroot, ".")) < 0)
			return r;
		return SYS(SYS_chdir, "/");
	}
	long old = SYS(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (old < 0)
		return old;
	if ((r = SYS(SYS_pivot_root, ".", ".")) >= 0 && (r = SYS(SYS_fchdir, old)) >= 0 &&
	    (r = SYS(SYS_mount, 0, ".", 0, MS_SLAVE | MS_REC, 0)) >= 0)
		r = SYS(SYS_umount2, ".", MNT_DETACH);
	SYS(SYS_close, old);
	return r < 0 ? r : SYS(SYS_chdir, "/");
}
