/*
 * The terminal of a container that `tsns-oci run` (or `exec`) keeps in the
 * foreground with process.terminal and no --console-socket, as runc does
 * it: the container's process makes its pty as for a console socket and
 * sends the master over a socket pair to tsns-oci-init, which copies its
 * own stdin to the master and the master to its stdout until the process
 * ends.  The caller's terminal (the first of stderr, stdout, stdin that is
 * one, else the controlling terminal) is put in raw input mode meanwhile
 * and gives the pty its size, then and on every SIGWINCH.  The pty's
 * ONLCR is cleared: the caller's terminal, which keeps its output
 * processing, already turns "\n" into "\r\n".
 *
 * Only in tsns-oci-init (not the shim): libc is fine here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "oci.h"

int oci_tty_pair(int at)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Ours must not sit where the container's end goes. */
	if (sv[1] == at) {
		int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, at + 1);
		if (moved < 0)
			return -errno;
		close(sv[1]);
		sv[1] = moved;
	}
	if (sv[0] != at) {
		if (dup3(sv[0], at, O_CLOEXEC) < 0) {
			int err = errno;
			close(sv[0]);
			close(sv[1]);
			return -err;
		}
		close(sv[0]);
	}
	return sv[1];
}

static int recv_fd(int sock)
{
	char byte[64];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { byte, sizeof byte };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	ssize_t n;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (n == 0 || !c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		return -EPIPE;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

/* The caller's size onto the pty; a terminal that knows none (0x0) leaves
 * the config's consoleSize. */
static void resize(int master, int host)
{
	struct winsize ws;
	if (ioctl(host, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
		ioctl(master, TIOCSWINSZ, &ws);
}

int oci_tty_take(int sock, int host, struct termios *saved)
{
	int master = recv_fd(sock);
	if (master < 0)
		return master;
	struct termios t;
	if (tcgetattr(master, &t) == 0) {
		t.c_oflag &= ~(tcflag_t)ONLCR;
		tcsetattr(master, TCSANOW, &t);
	}
	resize(master, host);
	if (tcgetattr(host, saved) < 0) {
		int err = errno;
		close(master);
		return -err;
	}
	/* Raw input (keys, ^C among them, go to the container's pty, whose
	 * line discipline makes the signals); output processing stays. */
	t = *saved;
	cfmakeraw(&t);
	t.c_oflag |= OPOST;
	if (tcsetattr(host, TCSANOW, &t) < 0) {
		int err = errno;
		close(master);
		return -err;
	}
	return master;
}

void oci_tty_restore(int host, const struct termios *saved)
{
	tcsetattr(host, TCSANOW, saved);
}

/* All of it, also to an fd that Node left non-blocking. */
static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = { fd, POLLOUT, 0 };
			poll(&pf, 1, -1);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One read from `from` to `to`: 1 copied, 0 nothing there now, -1 ended. */
static int copy(int from, int to)
{
	char buf[8192];
	ssize_t n = read(from, buf, sizeof buf);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	return write_all(to, buf, (size_t)n) < 0 ? -1 : 1;
}

int oci_tty_relay(int pid, int master, int host)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	int sfd = signalfd(-1, &all, SFD_CLOEXEC);
	if (sfd < 0)
		return -1;
	int in = 0, status = -1, ended = 0;
	for (;;) {
		/* Also each time round: a SIGCHLD from before the signalfd is lost. */
		int st;
		if (!ended && waitpid(pid, &st, WNOHANG | __WALL) == pid)
			status = st, ended = 1;
		struct pollfd pf[3] = { { sfd, POLLIN, 0 }, { master, POLLIN, 0 }, { in, POLLIN, 0 } };
		/* After the end: what the pty still holds, until it hangs up or is quiet. */
		int r = poll(pf, ended ? 2 : 3, ended ? 100 : -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
				if (si.ssi_signo == SIGWINCH)
					resize(master, host);
				else if (si.ssi_signo != SIGCHLD)
					kill(pid, (int)si.ssi_signo);
			}
		}
		if (master >= 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			int c = (pf[1].revents & POLLIN) ? copy(master, 1) : -1;
			/* Hung up (every holder of the pty closed it): nothing more to read. */
			if (c < 0) {
				if (ended)
					break;
				master = in = -1;
			}
		}
		/* stdin's end is not passed on (no ^D), as runc does not. */
		if (!ended && in >= 0 && (pf[2].revents & (POLLIN | POLLHUP | POLLERR)) && copy(in, master) < 0)
			in = -1;
	}
	close(sfd);
	if (!ended && waitpid(pid, &status, __WALL) != pid)
		status = -1;
	return status;
}
