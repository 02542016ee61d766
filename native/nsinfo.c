/*
 * What tsns ls and tsns enter ask of a namespace file: the nsfs ioctls, and
 * the id the network subsystem knows a network namespace by, which only
 * rtnetlink tells (Node cannot speak netlink).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsns.h"
#include "wire.h"

/* RTM_GETNSID for the network namespace of `fd`, asked in our own: its id
 * there, -1 (NETNSA_NSID_NOT_ASSIGNED) when it has none, or -errno - 2. */
static int64_t netnsid(int fd)
{
	union {
		struct nlmsghdr h;
		unsigned char b[NLMSG_SPACE(sizeof(struct rtgenmsg)) + RTA_SPACE(sizeof(int32_t))];
	} req;
	union {
		struct nlmsghdr h;
		unsigned char b[512];
	} res;
	const size_t head = NLMSG_SPACE(sizeof(struct rtgenmsg));
	int32_t target = fd;

	memset(&req, 0, sizeof req);
	req.h.nlmsg_len = sizeof req.b;
	req.h.nlmsg_type = RTM_GETNSID;
	req.h.nlmsg_flags = NLM_F_REQUEST;
	((struct rtgenmsg *)NLMSG_DATA(&req.h))->rtgen_family = AF_UNSPEC;
	struct rtattr *a = (struct rtattr *)(req.b + head);
	a->rta_type = NETNSA_FD;
	a->rta_len = RTA_LENGTH(sizeof target);
	memcpy(RTA_DATA(a), &target, sizeof target);

	int sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (sk < 0)
		return -errno - 2;
	ssize_t n = send(sk, req.b, sizeof req.b, 0);
	if (n >= 0)
		n = recv(sk, res.b, sizeof res.b, 0);
	int64_t ret = n < 0 ? -errno - 2 : -EBADMSG - 2;
	close(sk);

	int len = (int)n;
	for (struct nlmsghdr *h = &res.h; n > 0 && NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);
			return e->error < 0 ? e->error - 2 : ret;
		}
		if (h->nlmsg_type != RTM_NEWNSID || h->nlmsg_len < head)
			continue;
		int alen = (int)(h->nlmsg_len - head);
		for (a = (struct rtattr *)((unsigned char *)h + head); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
			if (a->rta_type == NETNSA_NSID && RTA_PAYLOAD(a) >= sizeof(int32_t)) {
				int32_t id;
				memcpy(&id, RTA_DATA(a), sizeof id);
				return id;
			}
		}
	}
	return ret;
}

/* What an nsfs fd says of itself: its CLONE_NEW* type, the inode of its
 * parent (pid and user namespaces), the inode of its owning user namespace,
 * the owner's uid (user namespaces), its network namespace id plus one (0:
 * none assigned).  -errno when it cannot say: ENOTTY for a file that is not
 * a namespace. */
int64_t tsns_ns_query(int32_t fd, int32_t what)
{
	struct stat st;
	uid_t uid;
	int r;

	switch ((enum tsns_ns_query)what) {
	case NSQ_TYPE:
		r = ioctl(fd, NS_GET_NSTYPE);
		return r < 0 ? -errno : r;
	case NSQ_PARENT:
	case NSQ_OWNER:
		r = ioctl(fd, what == NSQ_PARENT ? NS_GET_PARENT : NS_GET_USERNS);
		if (r < 0)
			return -errno;
		int64_t ino = fstat(r, &st) < 0 ? -errno : (int64_t)st.st_ino;
		close(r);
		return ino;
	case NSQ_OWNER_UID:
		return ioctl(fd, NS_GET_OWNER_UID, &uid) < 0 ? -errno : (int64_t)uid;
	case NSQ_NETNSID: {
		int64_t id = netnsid(fd);
		return id >= -1 ? id + 1 : id + 2;
	}
	}
	return -EINVAL;
}

/* nsenter -N: the network namespace of socket `sockfd` of process `pid`,
 * as a new fd; or -(stage << TSNS_STAGE_SHIFT | errno), the stage saying
 * which step refused: pidfd_open, pidfd_getfd (ptrace access to the
 * target), SIOCGSKNS (not a socket). */
int64_t tsns_socket_netns(int32_t pid, int32_t sockfd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pidfd < 0)
		return -(int64_t)(ST_TARGET << TSNS_STAGE_SHIFT | errno);
	int sk = (int)syscall(SYS_pidfd_getfd, pidfd, sockfd, 0);
	int err = errno;
	close(pidfd);
	if (sk < 0)
		return -(int64_t)(ST_NET_SOCKET << TSNS_STAGE_SHIFT | err);
	int ns = ioctl(sk, SIOCGSKNS);
	err = errno;
	close(sk);
	return ns < 0 ? -(int64_t)(ST_SOCKET_NETNS << TSNS_STAGE_SHIFT | err) : ns;
}

/* nsenter -t PID:INODE: the inode of a pidfd of `pid` (unique since
 * Linux 6.9's pidfs), which tells a process from a later one with its pid;
 * or -errno. */
int64_t tsns_pidfd_ino(int32_t pid)
{
	struct stat st;
	int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (fd < 0)
		return -errno;
	int64_t r = fstat(fd, &st) < 0 ? -errno : (int64_t)st.st_ino;
	close(fd);
	return r;
}

/* nsenter --user-parent: the user namespace that owns the namespace of
 * `fd` (for a user namespace, its parent), as a new fd; or -errno. */
int64_t tsns_ns_owner_fd(int32_t fd)
{
	int r = ioctl(fd, NS_GET_USERNS);
	return r < 0 ? -errno : r;
}

/* tsns_ns_query of the namespace reached from `fd` by `depth` relations in
 * turn (bit i of `path`: 0 the parent, 1 the owning user namespace), once
 * its inode is checked to be `ino` (-ESTALE if not): how ls asks about a
 * namespace that no process is in and no mount keeps, as lsns does. */
int64_t tsns_ns_query_via(int32_t fd, int32_t path, int32_t depth, int64_t ino, int32_t what)
{
	int cur = fd;
	for (int i = 0; i < depth; i++) {
		int next = ioctl(cur, (path >> i) & 1 ? NS_GET_USERNS : NS_GET_PARENT);
		int err = errno;
		if (cur != fd)
			close(cur);
		if (next < 0)
			return -err;
		cur = next;
	}
	struct stat st;
	int64_t r = fstat(cur, &st) < 0 ? -errno : (int64_t)st.st_ino != ino ? -ESTALE : tsns_ns_query(cur, what);
	if (cur != fd)
		close(cur);
	return r;
}
