/*
 * SCMP_ACT_NOTIFY, the parent's side: the child loads its filter with a
 * listener and sends it over the sync socket (child.c); here it is taken,
 * with the sender's pid as the kernel tells it (SO_PASSCRED: right for a
 * command behind an init or in a pid namespace too), and sent to the agent
 * at the profile's listenerPath the way runc sends it: one connection, one
 * message, the ContainerProcessState JSON with the listener attached
 * (SCM_RIGHTS).  Then the child is told to go on to its exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "spec.h"

static int64_t fail(int stage, int err)
{
	return TSNS_FAILURE(stage, err);
}

int listener_prepare(int sync)
{
	int one = 1;
	return setsockopt(sync, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 ? -errno : 0;
}

/* 1 with the listener and the sender's pid; 0 when the child ended first
 * (its error pipe says why); -errno. */
static int receive(int sync, int *fd, pid_t *pid)
{
	char byte;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
	} u;
	struct iovec iov = { &byte, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	ssize_t n;
	do
		n = recvmsg(sync, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_RIGHTS && *fd < 0) {
			memcpy(fd, CMSG_DATA(c), sizeof *fd);
		} else if (c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred cred;
			memcpy(&cred, CMSG_DATA(c), sizeof cred);
			*pid = cred.pid;
		}
	}
	return *fd >= 0 && !(m.msg_flags & MSG_CTRUNC) ? 1 : -EPROTO;
}

/* The state with the command's pid wherever TSNS_PID_MARK stands. */
static char *state_for(const char *state, pid_t pid, size_t *len)
{
	char num[16];
	int w = snprintf(num, sizeof num, "%d", (int)pid);
	size_t marks = 0, n = strlen(state);
	for (const char *p = state; *p; p++)
		marks += *p == TSNS_PID_MARK;
	char *out = malloc(n + marks * (size_t)w + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *p = state; *p; p++) {
		if (*p == TSNS_PID_MARK) {
			memcpy(o, num, (size_t)w);
			o += w;
		} else {
			*o++ = *p;
		}
	}
	*o = 0;
	*len = (size_t)(o - out);
	return out;
}

/* The whole state in one sendmsg with the listener, as runc; the rest of
 * it, should the socket take less at once. */
static int64_t send_state(int sock, const char *text, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof u);
	struct iovec iov = { (void *)text, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	u.h.cmsg_level = SOL_SOCKET;
	u.h.cmsg_type = SCM_RIGHTS;
	u.h.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&u.h), &fd, sizeof fd);
	ssize_t n = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (n >= 0 && (size_t)n < len) {
		ssize_t more = send(sock, text + n, len - (size_t)n, MSG_NOSIGNAL);
		n = more < 0 ? more : n + more;
	}
	return n < 0 ? fail(ST_SECCOMP_SEND, errno) : 0;
}

static int64_t send_to_agent(const struct spec *s, int fd, pid_t pid)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(s->listener_path) >= sizeof a.sun_path)
		return fail(ST_SECCOMP_LISTENER, ENAMETOOLONG);
	strcpy(a.sun_path, s->listener_path);
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return fail(ST_SECCOMP_LISTENER, errno);
	int64_t ret;
	size_t len;
	char *text = NULL;
	if (connect(sock, (struct sockaddr *)&a, sizeof a) < 0)
		ret = fail(ST_SECCOMP_LISTENER, errno);
	else if (!(text = state_for(s->listener_state, pid, &len)))
		ret = fail(ST_SECCOMP_SEND, ENOMEM);
	else
		ret = send_state(sock, text, len, fd);
	free(text);
	close(sock);
	return ret;
}

int64_t listener_handoff(const struct spec *s, int sync)
{
	int fd = -1;
	pid_t pid = 0;
	int r = receive(sync, &fd, &pid);
	if (r <= 0) {
		if (fd >= 0)
			close(fd);
		return r < 0 ? fail(ST_SECCOMP_HANDOFF, -r) : 0;
	}
	int64_t ret = send_to_agent(s, fd, pid);
	/* The agent has its own copy now: the filter lives on in the command. */
	close(fd);
	if (ret == 0 && write(sync, "d", 1) != 1)
		ret = fail(ST_SECCOMP_HANDOFF, errno);
	return ret;
}
