/* Raw system calls for code that runs in a child sharing Node's memory:
 * glibc's wrappers write errno, which lives in the parent thread's TLS. */
#ifndef TSNS_SYS_H
#define TSNS_SYS_H
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__x86_64__)
static inline long sc6(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#define SHARED_VM CLONE_VM
#elif defined(__aarch64__)
static inline long sc6(long n, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}
#define SHARED_VM CLONE_VM
#else
/* No raw syscall stub for this architecture: fall back to a fork-style
 * clone, where the child's errno is its own. */
static long sc6(long n, long a, long b, long c, long d, long e, long f)
{
	long r = syscall(n, a, b, c, d, e, f);
	return r == -1 ? -errno : r;
}
#define SHARED_VM 0
#endif
#define SYS_(n, a, b, c, d, e, f, ...) \
	sc6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define SYS(...) SYS_(__VA_ARGS__, 0, 0, 0, 0, 0, 0, 0)

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* strlen for the child.  The empty asm keeps the compiler from seeing a
 * strlen loop and calling libc's instead (GCC 12 does at -O2): the child
 * calls no libc, whose first call through the PLT would run the dynamic
 * linker on the parent thread's TLS. */
static inline size_t slen(const char *s)
{
	size_t n = 0;
	while (s[n]) {
		n++;
		__asm__("" : "+r"(n));
	}
	return n;
}
/* Write TEXT to the existing file PATH (a /proc or /sys control file). */
static inline long sys_write_file(const char *path, const char *text)
{
	long fd = SYS(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fd;
	long w = SYS(SYS_write, fd, text, slen(text));
	SYS(SYS_close, fd);
	return w < 0 ? w : 0;
}

/* Send DATA (LEN bytes) with FD attached (SCM_RIGHTS) on the socket SOCK:
 * the listener to tsns, the console master to an engine. */
static inline long sys_send_fd(int sock, int fd, void *data, size_t len)
{
	struct iovec iov = { data, len };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = { 0 };
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = u.buf;
	m.msg_controllen = sizeof u.buf;
	u.h.cmsg_level = SOL_SOCKET;
	u.h.cmsg_type = SCM_RIGHTS;
	u.h.cmsg_len = CMSG_LEN(sizeof(int));
	*(int *)CMSG_DATA(&u.h) = fd;
	return SYS(SYS_sendmsg, sock, &m, MSG_NOSIGNAL);
}

#endif
