/*
 * The child after clone, up to the command's exec.
 *
 * Unless it must outlive the exec, the child is cloned with CLONE_VM, so
 * starting a command costs the same whether the Node process is 50 MB or
 * 5 GB (no page tables are copied).  The price is that the child runs on
 * memory it shares with Node's threads: it uses its own stack, touches
 * nothing but that stack and the spec the parent built, and makes only raw
 * system calls (glibc's wrappers write errno, which lives in the parent
 * thread's TLS, and some of them signal every thread).  Nothing here calls
 * libc or allocates; test/unit/native-rules.test.ts checks the object file.
 *
 * A failure is sent to the parent as {stage, errno} over the error pipe,
 * which closes without data when the exec succeeds.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h> /* memcpy: a call compilers make of copy loops anyway */
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "lifecycle.h"
#include "sandbox.h"
#include "spec.h"
#include "sys.h"

/* Kernel layout of struct sigaction (handler, flags, restorer, mask). */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	unsigned long mask;
};

/* Node's handlers mean nothing in the child; every signal to its default. */
static void reset_signals(void)
{
	struct ksigaction dfl = { SIG_DFL, 0, 0, 0 };
	for (int sig = 1; sig < 65; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			SYS(SYS_rt_sigaction, sig, &dfl, 0, 8);
}

__attribute__((noreturn)) static void child_fail(const struct child *c, int stage, long err)
{
	int32_t msg[2] = { stage, (int32_t)-err };
	SYS(SYS_write, c->errfd, msg, sizeof msg);
	SYS(SYS_exit_group, 127);
	__builtin_unreachable();
}

/* The stages that name one of several things carry its index with the errno. */
__attribute__((noreturn)) static void child_fail_at(const struct child *c, int stage, int index, long err)
{
	child_fail(c, stage, err - ((long)index << TSNS_INDEX_SHIFT));
}

#define CHECK(c, stage, expr)                      \
	do {                                       \
		long r_ = (expr);                  \
		if (r_ < 0)                        \
			child_fail(c, stage, r_);  \
	} while (0)

/* A file without a #! line is a shell script, as execvp(3) has it. */
static long exec_sh(const struct spec *s, const char *path)
{
	s->shargv[1] = (char *)path;
	SYS(SYS_execve, "/bin/sh", s->shargv, s->envp);
	return -ENOEXEC;
}

/* execvp(3) semantics, with the search path the command's environment gave. */
static long child_exec(const struct spec *s)
{
	const char *file = s->file;
	size_t flen = slen(file);
	long r, seen = -ENOENT;
	char buf[PATH_MAX];

	if (flen == 0)
		return -ENOENT;
	for (const char *p = file; *p; p++)
		if (*p == '/')
			goto direct;
	for (const char *dir = s->path;; dir++) {
		const char *end = dir;
		while (*end && *end != ':')
			end++;
		size_t dlen = (size_t)(end - dir);
		if (dlen + flen + 2 <= sizeof buf) {
			memcpy(buf, dlen ? dir : ".", dlen ? dlen : 1);
			size_t at = dlen ? dlen : 1;
			buf[at] = '/';
			memcpy(buf + at + 1, file, flen + 1);
			r = SYS(SYS_execve, buf, s->argv, s->envp);
			if (r == -ENOEXEC)
				return exec_sh(s, buf);
			if (r == -EACCES)
				seen = r;
			else if (r != -ENOENT && r != -ENOTDIR && r != -ELOOP &&
				 r != -ENAMETOOLONG && r != -ESTALE && r != -ENODEV &&
				 r != -ETIMEDOUT)
				return r;
		}
		if (!*end)
			return seen;
		dir = end;
	}
direct:
	r = SYS(SYS_execve, file, s->argv, s->envp);
	return r == -ENOEXEC ? exec_sh(s, file) : r;
}

/* One byte from the parent means "go on"; end of file means it is gone. */
static void await_parent(const struct child *c)
{
	char b;
	long r;
	do
		r = SYS(SYS_read, c->sync, &b, 1);
	while (r == -EINTR);
	if (r != 1)
		SYS(SYS_exit_group, 127);
}

static void append(char **p, const char *s)
{
	while (*s)
		*(*p)++ = *s++;
}

/* Supervise the command from a middle process or a pid namespace's init:
 * forward every signal to it, reap whatever dies, and when the command ends
 * hand its raw wait status to tsns, which dies or exits the same way. */
__attribute__((noreturn)) static void supervise(const struct child *c, long cmd)
{
	unsigned long all = ~0UL;
	for (;;) {
		int st;
		long p;
		while ((p = SYS(SYS_wait4, -1, &st, WNOHANG | __WALL, 0)) > 0) {
			if (p == cmd) {
				SYS(SYS_write, c->statusfd, &st, sizeof st);
				SYS(SYS_exit_group, 0);
			}
		}
		long sig = SYS(SYS_rt_sigtimedwait, &all, 0, 0, 8);
		if (sig > 0 && sig != SIGCHLD)
			SYS(SYS_kill, cmd, sig);
	}
}

/* setns(pidfd, mask) joins the target's namespaces at once (Linux 5.8+);
 * where it is missing or refuses, join them one by one, user first, which
 * also tells which namespace refused. */
static void child_join(const struct child *c)
{
	const struct spec *s = c->s;
	int mask_done = s->pidfd >= 0 && s->join_mask &&
			SYS(SYS_setns, s->pidfd, s->join_mask) == 0;
	for (int i = 0; i < s->njoins; i++) {
		if (mask_done && s->joins[i].from_target)
			continue;
		long r = SYS(SYS_setns, s->joins[i].fd, s->joins[i].type);
		if (r < 0)
			child_fail_at(c, ST_SETNS, i, r);
	}
	if (s->root_fd >= 0) {
		CHECK(c, ST_ROOT, SYS(SYS_fchdir, s->root_fd));
		CHECK(c, ST_ROOT, SYS(SYS_chroot, "."));
	}
	if (s->cwd_fd >= 0)
		CHECK(c, ST_WD, SYS(SYS_fchdir, s->cwd_fd));
}

/* The namespaces the child is in already (cloned or joined), set up. */
static void prepare_namespaces(const struct child *c)
{
	const struct spec *s = c->s;
	if (s->njoins || s->root_fd >= 0 || s->cwd_fd >= 0)
		child_join(c);
	if (s->lo_up)
		CHECK(c, ST_LO, sandbox_lo_up());
	if (s->hostname)
		CHECK(c, ST_HOSTNAME, SYS(SYS_sethostname, s->hostname, slen(s->hostname)));
	if (s->domainname)
		CHECK(c, ST_DOMAINNAME, SYS(SYS_setdomainname, s->domainname, slen(s->domainname)));
	if ((s->flags & CLONE_NEWNS) && s->propagation)
		CHECK(c, ST_PROPAGATION, SYS(SYS_mount, "none", "/", 0, MS_REC | s->propagation, 0));
}

/* clone(2) cannot make a time namespace: unshare it here (with the pid
 * namespace, when the command must be PID 1 of that too) and set the
 * offsets before anyone enters; fork_command() then forks into it. */
static void unshare_time(const struct child *c)
{
	const struct spec *s = c->s;
	CHECK(c, ST_TIME, SYS(SYS_unshare, CLONE_NEWTIME | (s->unshare_pid ? CLONE_NEWPID : 0)));
	char text[96], *p = text;
	if (s->monotonic) {
		append(&p, "monotonic ");
		append(&p, s->monotonic);
		append(&p, " 0\n");
	}
	if (s->boottime) {
		append(&p, "boottime ");
		append(&p, s->boottime);
		append(&p, " 0\n");
	}
	*p = 0;
	if (p != text)
		CHECK(c, ST_TIME_OFFSETS, sys_write_file("/proc/self/timens_offsets", text));
}

/* A process that outlives the exec (an init, or the parent of a command in
 * a new time or pid namespace) forks the command and stays to supervise
 * it.  Returns in the command only, with the parent-death signal it is to
 * have. */
static int fork_command(const struct child *c, int deathsig, int *ready)
{
	const struct spec *s = c->s;
	/* pid_for_children can be bound only once its first process exists, so
	 * the middle says so after the fork, and the command waits for the
	 * parent's bind before going on. */
	int late = c->sync >= 0 && s->npersist && s->persist[s->npersist - 1].late;
	/* Lock files are taken once the command has built the sandbox they are in. */
	int sv[2] = { -1, -1 };
	if (s->nlocks)
		CHECK(c, ST_FORK, SYS(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	/* Before the fork: setting SIGCHLD to its default (ignore) would
	 * discard one already pending from a command that ended at once. */
	reset_signals();
	long cmd = SYS(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (cmd < 0)
		child_fail(c, ST_FORK, cmd);
	if (cmd > 0) {
		SYS(SYS_prctl, PR_SET_NAME, s->init ? "tsns-init" : "tsns");
		if (late) {
			char b = 'r';
			SYS(SYS_write, c->sync, &b, 1);
		}
		/* As bwrap's PID 1: it needs no capability to wait and forward. */
		lc_drop_all_caps(s);
		if (s->nlocks) {
			char b;
			int failed;
			SYS(SYS_close, sv[1]);
			if (SYS(SYS_read, sv[0], &b, 1) == 1) {
				long r = lc_take_locks(s, &failed);
				if (r < 0)
					child_fail_at(c, ST_LOCK_FILE, failed, r);
				SYS(SYS_write, sv[0], &b, 1);
			}
			SYS(SYS_close, sv[0]);
		}
		/* Only the command's exec may close the error pipe. */
		SYS(SYS_close, c->errfd);
		SYS(SYS_close, c->sync);
		supervise(c, cmd);
	}
	SYS(SYS_close, c->statusfd);
	if (s->nlocks)
		SYS(SYS_close, sv[0]);
	*ready = sv[1];
	if (late)
		await_parent(c);
	/* The command does not outlive its supervisor. */
	return deathsig ? deathsig : SIGKILL;
}

/* unshare --mount-binfmt and --load-interp: a binfmt_misc of the new
 * user namespace's own on dir, and an interpreter registered in it. */
static void binfmt(const struct child *c, const char *dir, int mount, int load)
{
	const struct spec *s = c->s;
	char path[PATH_MAX], *p = path;
	if (mount)
		CHECK(c, ST_BINFMT, SYS(SYS_mount, "binfmt_misc", dir, "binfmt_misc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0));
	if (!load)
		return;
	if (slen(dir) + sizeof "/register" > sizeof path)
		child_fail(c, ST_LOAD_INTERP, -ENAMETOOLONG);
	append(&p, dir);
	append(&p, "/register");
	*p = 0;
	CHECK(c, ST_LOAD_INTERP, sys_write_file(path, s->interp));
}

#define PROC_BINFMT "/proc/sys/fs/binfmt_misc"

/* -w/--chdir, or bwrap's choice of directory when none is given. */
static void change_dir(const struct child *c)
{
	const struct spec *s = c->s;
	if (s->wd)
		CHECK(c, ST_WD, SYS(SYS_chdir, s->wd));
	else
		sandbox_wd_try(s->wd_try, s->nwd_try, s->envp);
}

/* The sandbox's new root, the root and working directory, /proc. */
static void prepare_filesystem(const struct child *c)
{
	const struct spec *s = c->s;
	if (s->oci.root || s->oci.nsteps || s->oci.nrlimits) {
		int stage, index;
		long r = oci_filesystem(&s->oci, &stage, &index);
		if (r < 0)
			child_fail_at(c, stage, index, r);
	}
	if (s->sb.nops) {
		int failed;
		long r = sandbox_build(&s->sb, &failed);
		if (r < 0)
			child_fail_at(c, ST_SANDBOX, failed + 1, r);
	}
	/* An interpreter with the F flag is opened as it is registered: from
	 * outside the new root, as unshare does it. */
	if (s->interp && s->interp_early)
		binfmt(c, PROC_BINFMT, 1, 1);
	if (s->root) {
		CHECK(c, ST_ROOT, SYS(SYS_chroot, s->root));
		if (!s->wd)
			CHECK(c, ST_ROOT, SYS(SYS_chdir, "/"));
	}
	if (!s->sb.nops)
		change_dir(c);
	if (s->proc_dir)
		CHECK(c, ST_MOUNT_PROC, SYS(SYS_mount, "proc", s->proc_dir, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0));
	if (s->binfmt_dir)
		binfmt(c, s->binfmt_dir, 1, s->interp && !s->interp_early);
}

/* Credentials, capabilities and the parent-death signal, which a change of
 * credentials would clear; all with raw calls, as glibc's set*id signal
 * every thread of the process. */
static void child_identity(const struct child *c, int deathsig)
{
	const struct spec *s = c->s;
	if (s->keep_caps)
		SYS(SYS_prctl, PR_SET_KEEPCAPS, 1);
	if (s->oci.groups_set)
		CHECK(c, ST_GROUPS, oci_groups(&s->oci));
	else if (s->gid >= 0 && !s->keep_groups) {
		/* Denied (-r, -c, --map-group): the kernel refuses setgroups(2) in
		 * this namespace for good, and there are no groups to drop. */
		if (!s->setgroups || s->setgroups[0] != 'd') {
			long r = SYS(SYS_setgroups, 0, 0);
			/* "allow" was asked for, so the groups were meant to be settable. */
			if (r < 0 && s->setgroups && s->setgroups[0] == 'a')
				child_fail(c, ST_SETGID, r);
		}
	}
	if (s->gid >= 0)
		CHECK(c, ST_SETGID, SYS(SYS_setresgid, s->gid, s->gid, s->gid));
	if (s->uid >= 0)
		CHECK(c, ST_SETUID, SYS(SYS_setresuid, s->uid, s->uid, s->uid));
	if (s->keep_caps) {
		struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 };
		struct { uint32_t eff, perm, inh; } d[2];
		CHECK(c, ST_CAPS, SYS(SYS_capget, &hdr, d));
		for (int i = 0; i < 2; i++)
			d[i].eff = d[i].inh = d[i].perm;
		CHECK(c, ST_CAPS, SYS(SYS_capset, &hdr, d));
		for (int cap = 0; cap < 64; cap++)
			if (d[cap / 32].perm & (1U << (cap % 32)))
				CHECK(c, ST_CAPS, SYS(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0));
	}
	if (deathsig)
		CHECK(c, ST_PDEATHSIG, SYS(SYS_prctl, PR_SET_PDEATHSIG, deathsig));
}

/* Identity, capabilities and the hardening that must follow them. */
static void drop_privileges(const struct child *c, int deathsig)
{
	const struct spec *s = c->s;
	/* Dropping from the bounding set needs CAP_SETPCAP: before -S gives it up;
	 * the rest after, as -G/-S need CAP_SETGID/CAP_SETUID. */
	if (s->caps_set)
		CHECK(c, ST_CAPS, sandbox_bound(s->caps_keep));
	if (s->oci.caps_set) {
		CHECK(c, ST_OCI_CAPS, sandbox_bound(s->oci.caps[0]));
		SYS(SYS_prctl, PR_SET_KEEPCAPS, 1);
	}
	child_identity(c, deathsig);
	if (s->caps_set)
		CHECK(c, ST_CAPS, sandbox_caps(s->caps_keep));
	if (s->oci.caps_set)
		CHECK(c, ST_OCI_CAPS, oci_caps(&s->oci));
	if (s->no_new_privs)
		CHECK(c, ST_NO_NEW_PRIVS, SYS(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	if (s->new_session)
		CHECK(c, ST_SETSID, SYS(SYS_setsid));
}

/* Every fd from 3 up close-on-exec; without close_range (Linux < 5.11),
 * one by one up to the fd limit. */
static void cloexec_from_3(void)
{
	if (SYS(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) >= 0)
		return;
	struct { unsigned long cur, max; } lim = { 65536, 65536 };
	SYS(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, &lim);
	for (unsigned long fd = 3; fd < lim.cur && fd < (1UL << 20); fd++)
		SYS(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
}

/* The command's fds: each target gets its source, the fds the caller handed
 * tsns stay open, 0-2 are made blocking and inheritable, and everything
 * else closes at the exec, the error pipe among them (its closing tells the
 * parent that exec succeeded). */
static void prepare_fds(struct child *c)
{
	const struct spec *s = c->s;
	long moved[MAX_FDS];
	int base = 3;
	for (int i = 0; i < s->nfds; i++)
		if (s->fds[i].target >= base)
			base = s->fds[i].target + 1;
	/* Sources and the error pipe above every target first, so that no
	 * target takes the place of a source still to come. */
	if (c->errfd < base) {
		long e = SYS(SYS_fcntl, c->errfd, F_DUPFD_CLOEXEC, base);
		CHECK(c, ST_STDIO, e);
		c->errfd = (int)e;
	}
	/* The sync socket still carries a seccomp listener after this. */
	if (c->sync >= 0 && c->sync < base) {
		long e = SYS(SYS_fcntl, c->sync, F_DUPFD_CLOEXEC, base);
		CHECK(c, ST_STDIO, e);
		c->sync = (int)e;
	}
	for (int i = 0; i < s->nfds; i++) {
		long src = s->fds[i].src;
		if (src == -1)
			CHECK(c, ST_STDIO, src = SYS(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC));
		CHECK(c, ST_STDIO, moved[i] = SYS(SYS_fcntl, src, F_DUPFD_CLOEXEC, base));
	}
	cloexec_from_3();
	for (int i = 0; i < s->ninherited; i++)
		SYS(SYS_fcntl, s->inherited[i], F_SETFD, 0);
	for (int i = 0; i < s->nfds; i++)
		CHECK(c, ST_STDIO, SYS(SYS_dup3, moved[i], s->fds[i].target, 0));
	/* Node leaves its stdio close-on-exec and sometimes non-blocking. */
	for (int fd = 0; fd < 3; fd++) {
		if (SYS(SYS_fcntl, fd, F_SETFD, 0) < 0)
			continue;
		long fl = SYS(SYS_fcntl, fd, F_GETFL);
		if (fl >= 0 && (fl & O_NONBLOCK))
			CHECK(c, ST_STDIO, SYS(SYS_fcntl, fd, F_SETFL, fl & ~O_NONBLOCK));
	}
}

/* A filter's listener (SECCOMP_FILTER_FLAG_NEW_LISTENER) goes to the parent
 * over the sync socket, which sends it on to the agent (notify.c); once it
 * says so, ours is closed.  The filter judges us already: between the load
 * and the exec only sendmsg, read, close (and write, should exec fail)
 * run, and a profile may not notify on sendmsg or write
 * (src/seccomp/compile.ts). */
static void hand_over_listener(const struct child *c, long fd)
{
	char byte = 'l';
	long r = sys_send_fd(c->sync, (int)fd, &byte, 1);
	if (r < 0)
		child_fail(c, ST_SECCOMP_HANDOFF, r);
	do
		r = SYS(SYS_read, c->sync, &byte, 1);
	while (r == -EINTR);
	if (r != 1)
		child_fail(c, ST_SECCOMP_HANDOFF, r < 0 ? r : -EPIPE);
	SYS(SYS_close, fd);
}

/* The seccomp programs, in order.  Last of all, so that they judge the
 * command and not our setup; or, early, before privileges are dropped,
 * which is where runc loads them without no_new_privs (the load needs
 * CAP_SYS_ADMIN then). */
static void load_filters(const struct child *c, int early)
{
	const struct spec *s = c->s;
	long listener = -1;
	if (s->seccomp_early != early)
		return;
	for (int i = 0; i < s->nseccomp; i++) {
		long r = SYS(SYS_seccomp, SECCOMP_SET_MODE_FILTER, s->seccomp_flags[i], &s->seccomp[i]);
		if (r < 0)
			child_fail_at(c, ST_SECCOMP, i, r);
		if (s->seccomp_flags[i] & SECCOMP_FILTER_FLAG_NEW_LISTENER)
			listener = r;
	}
	if (listener >= 0)
		hand_over_listener(c, listener);
}

int child_main(void *arg)
{
	/* Our own copy: the error pipe may move (prepare_fds), and the
	 * parent's copy is on its stack, which we must not write. */
	struct child self = *(const struct child *)arg;
	struct child *c = &self;
	const struct spec *s = c->s;
	int deathsig = s->kill_signal;

	if (s->kill_signal)
		CHECK(c, ST_PDEATHSIG, SYS(SYS_prctl, PR_SET_PDEATHSIG, s->kill_signal));
	/* As bwrap's child: our copies would keep their readers from the end. */
	if (s->info_fd >= 0)
		SYS(SYS_close, s->info_fd);
	if (s->status_fd >= 0)
		SYS(SYS_close, s->status_fd);
	if (c->sync >= 0) {
		/* Our copy of the parent's end would hide the parent's death. */
		SYS(SYS_close, c->peer);
		await_parent(c);
	}
	/* Now in the command's cgroups (cloned or moved there): the new cgroup
	 * namespace's root is theirs. */
	if (s->userns_fd >= 0)
		CHECK(c, ST_USERNS_JOIN, lc_join_userns(s));
	if (s->cgroupns_late)
		CHECK(c, ST_CGROUPNS, SYS(SYS_unshare, CLONE_NEWCGROUP));
	prepare_namespaces(c);
	if (s->pidns_fd >= 0)
		CHECK(c, ST_PIDNS, SYS(SYS_setns, s->pidns_fd, CLONE_NEWPID));
	if (s->late_flags & CLONE_NEWPID)
		CHECK(c, s->pidns_fd >= 0 ? ST_PIDNS : ST_USERNS_JOIN, SYS(SYS_unshare, CLONE_NEWPID));
	if (s->flags & CLONE_NEWTIME)
		unshare_time(c);
	/* In the container's namespaces, still as its root: runc's init order. */
	if (s->oci.keyring) {
		int stage;
		long r = oci_keyring(&s->oci, &stage);
		if (r < 0)
			child_fail(c, stage, r);
	}
	/* The host's /proc, for the nested user namespace after the new root. */
	long procfd = -1;
	if (s->disable_userns)
		CHECK(c, ST_DISABLE_USERNS, procfd = SYS(SYS_openat, AT_FDCWD, "/proc", O_PATH | O_DIRECTORY | O_CLOEXEC));
	int ready = -1;
	if (c->statusfd >= 0)
		deathsig = fork_command(c, deathsig, &ready);
	/* The startContainer hooks' state names the process by the host's pid, which /proc shows only before the pivot. */
	char hostpid[24] = "0";
	if (s->oci.nhooks)
		CHECK(c, ST_OCI_START_HOOK, oci_self_pid(hostpid, sizeof hostpid));
	prepare_filesystem(c);
	if (ready >= 0) {
		/* The supervisor takes its locks in the sandbox, then lets us go on. */
		char b = 'r';
		if (SYS(SYS_write, ready, &b, 1) != 1 || SYS(SYS_read, ready, &b, 1) != 1)
			SYS(SYS_exit_group, 127);
		SYS(SYS_close, ready);
	}
	load_filters(c, 1);
	if (s->userns2_fd >= 0)
		CHECK(c, ST_USERNS2, SYS(SYS_setns, s->userns2_fd, CLONE_NEWUSER));
	if (s->disable_userns)
		CHECK(c, ST_DISABLE_USERNS, lc_disable_userns((int)procfd, s->uid, s->gid));
	if (s->disable_userns || s->assert_userns_disabled)
		CHECK(c, ST_USERNS_ENABLED, lc_userns_disabled());
	drop_privileges(c, deathsig);
	if (s->block_fd >= 0)
		lc_block(s->block_fd);
	/* In a sandbox, as bwrap: as the command's user, with its capabilities
	 * gone, so that a directory that user may not enter is refused (as
	 * unshare, plain -w goes first, before -S). */
	if (s->sb.nops)
		change_dir(c);
	prepare_fds(c);

	reset_signals();
	unsigned long none = 0;
	SYS(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, 8);

	if (s->oci.fifo_dir >= 0 || s->oci.console >= 0 || s->oci.pidfd_sock >= 0) {
		int stage;
		long r = oci_ready(s, c->errfd, &stage);
		if (r < 0)
			child_fail(c, stage, r);
	}
	load_filters(c, 0);
	if (s->oci.nhooks)
		oci_start_hooks(s, hostpid);
	child_fail(c, ST_EXEC, child_exec(s));
}
