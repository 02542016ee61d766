/*
 * The parent side of a spawn, in the calling Node thread: read the spec,
 * clone the child (child.c) on a stack of its own, write its id maps and
 * bind its persisted namespaces while it waits, and return once it has
 * exec'd or failed.
 *
 * Failures are returned as -(stage << TSNS_STAGE_SHIFT | errno), as wire.h
 * says.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lifecycle.h"
#include "spec.h"
#include "sys.h"
#include "tsns.h"

#define STACK_SIZE (256 * 1024)

static int64_t fail(int stage, int err)
{
	return TSNS_FAILURE(stage, err);
}

static int write_proc(pid_t pid, const char *name, const char *text)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	int err = w < 0 ? -errno : (size_t)w != n ? -EIO : 0;
	close(fd);
	return err;
}

/* newuidmap PID inner outer count ...: the map text, one word per field. */
static int run_idmap_helper(const char *helper, pid_t pid, const char *map)
{
	char pidbuf[16], *copy = strdup(map);
	char *argv[3 + 3 * 340 + 1];
	int argc = 0, st;
	pid_t h;

	if (!copy)
		return -ENOMEM;
	snprintf(pidbuf, sizeof pidbuf, "%d", (int)pid);
	argv[argc++] = (char *)helper;
	argv[argc++] = pidbuf;
	for (char *save, *w = strtok_r(copy, " \n", &save); w && argc < (int)(sizeof argv / sizeof *argv) - 1;
	     w = strtok_r(NULL, " \n", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	int err = posix_spawnp(&h, helper, NULL, NULL, argv, environ);
	free(copy);
	if (err)
		return -err;
	while (waitpid(h, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	/* The helper has said why on stderr; EPERM stands for its refusal. */
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EPERM;
}

/* Runs in the parent while the child waits: a process may write only a
 * single self-mapping into its own namespace, so ranges and root's maps
 * have to come from outside. */
static int64_t write_maps(pid_t pid, const struct spec *s)
{
	int r;
	if (s->setgroups && (r = write_proc(pid, "setgroups", s->setgroups)) < 0)
		return fail(ST_SETGROUPS, -r);
	if (s->uid_map) {
		r = s->newuidmap ? run_idmap_helper("newuidmap", pid, s->uid_map) : write_proc(pid, "uid_map", s->uid_map);
		if (r < 0)
			return fail(s->newuidmap ? ST_NEWUIDMAP : ST_UID_MAP, -r);
	}
	if (s->gid_map) {
		r = s->newgidmap ? run_idmap_helper("newgidmap", pid, s->gid_map) : write_proc(pid, "gid_map", s->gid_map);
		if (r < 0)
			return fail(s->newgidmap ? ST_NEWGIDMAP : ST_GID_MAP, -r);
	}
	return 0;
}

/* Bind /proc/PID/<ns> onto a file so the namespace outlives its processes.
 * The file is created exclusively, or opened without following a link, and
 * the mount goes through the opened fd so nobody can swap the path. */
static int persist_ns(pid_t pid, struct persist *p)
{
	char src[64], dst[32];
	int fd = open(p->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		p->created = 1;
	} else if (errno == EEXIST) {
		struct stat st;
		fd = open(p->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
			close(fd);
			return -EINVAL;
		}
	}
	if (fd < 0)
		return -errno;
	snprintf(src, sizeof src, "/proc/%d/%s", (int)pid, p->proc);
	snprintf(dst, sizeof dst, "/proc/self/fd/%d", fd);
	int r = mount(src, dst, NULL, MS_BIND, NULL) < 0 ? -errno : 0;
	close(fd);
	if (r == 0)
		p->bound = 1;
	else if (p->created)
		unlink(p->path);
	return r;
}

static int64_t persist_all(pid_t pid, struct spec *s, int late)
{
	for (int i = 0; i < s->npersist; i++) {
		if (s->persist[i].late != late)
			continue;
		int r = persist_ns(pid, &s->persist[i]);
		if (r < 0)
			return fail(ST_PERSIST, i << TSNS_INDEX_SHIFT | -r);
	}
	return 0;
}

/* Nothing outlives a failed start. */
static void unpersist(struct spec *s)
{
	for (int i = 0; i < s->npersist; i++) {
		if (s->persist[i].bound)
			umount2(s->persist[i].path, MNT_DETACH);
		if (s->persist[i].created)
			unlink(s->persist[i].path);
	}
}

static int64_t handshake(pid_t pid, struct spec *s, int sync, int errfd)
{
	char b = 'g';
	int64_t r = 0;
	if (sync >= 0) {
		if ((r = cgroup_place(pid, s)) < 0 || (r = write_maps(pid, s)) < 0 || (r = persist_all(pid, s, 0)) < 0 ||
		    (r = info_handshake(pid, s)) < 0)
			return r;
		if (write(sync, &b, 1) != 1)
			return fail(ST_SYNC, errno);
		if (s->npersist && s->persist[s->npersist - 1].late) {
			/* The child says when its time/pid namespace exists, or fails. */
			ssize_t n;
			do
				n = read(sync, &b, 1);
			while (n < 0 && errno == EINTR);
			if (n == 1) {
				if ((r = persist_all(pid, s, 1)) < 0)
					return r;
				if (write(sync, &b, 1) != 1)
					return fail(ST_SYNC, errno);
			}
		}
		if (s->listener_path && (r = listener_handoff(s, sync)) < 0)
			return r;
	}
	int32_t msg[2];
	ssize_t n;
	do
		n = read(errfd, msg, sizeof msg);
	while (n < 0 && errno == EINTR);
	/* Stage 0 is an OCI container saying it is prepared and waits for start. */
	return n == (ssize_t)sizeof msg && msg[0] ? fail(msg[0], msg[1]) : 0;
}

/* Child stacks are kept for the next spawn: a fresh mapping costs page
 * faults in the child, and unmapping one the child touched on another CPU
 * costs a TLB shootdown there.  handshake() returns only once the child has
 * exec'd (its close-on-exec error pipe closes after the switch to the new
 * memory) or is dead, so the stack is free again by then. */
#define STACK_POOL 4
static pthread_mutex_t stack_lock = PTHREAD_MUTEX_INITIALIZER;
static char *stack_pool[STACK_POOL];
static int stack_count;

static char *stack_get(void)
{
	pthread_mutex_lock(&stack_lock);
	char *stack = stack_count ? stack_pool[--stack_count] : NULL;
	pthread_mutex_unlock(&stack_lock);
	if (stack)
		return stack;
	stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	return stack == MAP_FAILED ? NULL : stack;
}

static void stack_put(char *stack)
{
	pthread_mutex_lock(&stack_lock);
	if (stack_count < STACK_POOL) {
		stack_pool[stack_count++] = stack;
		stack = NULL;
	}
	pthread_mutex_unlock(&stack_lock);
	if (stack)
		munmap(stack, STACK_SIZE);
}

/* The pipes of one spawn; [0] is the parent's end, [1] the child's. */
struct pipes {
	int err[2];  /* close-on-exec: closed without data once the exec succeeded */
	int sync[2]; /* the parent releases the child after writing its maps */
	int stat[2]; /* the command's wait status, from its supervisor */
};

static int64_t open_pipes(struct pipes *p, int need_sync, int middle)
{
	if (pipe2(p->err, O_CLOEXEC) < 0 ||
	    (need_sync && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->sync) < 0) ||
	    (middle && pipe2(p->stat, O_CLOEXEC) < 0))
		return fail(ST_PIPE, errno);
	return 0;
}

static void close_end(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* which: 0 the parent's ends, 1 the child's. */
static void close_pipes(struct pipes *p, int which)
{
	close_end(&p->err[which]);
	close_end(&p->sync[which]);
	close_end(&p->stat[which]);
}

/* A process that outlives the exec (an init, or the parent of a command in
 * a new time namespace) cannot share Node's memory. */
static int needs_middle(const struct spec *s)
{
	int joins_children = 0;
	for (int i = 0; i < s->njoins; i++)
		joins_children |= s->joins[i].type & (CLONE_NEWPID | CLONE_NEWTIME);
	/* nsenter -F: the command itself stays outside a joined pid namespace. */
	/* bwrap's lock files and sync fd are held by such a process too. */
	return s->init || (s->flags & CLONE_NEWTIME) || (joins_children && !s->no_fork) || s->nlocks || s->sync_fd >= 0 ||
	       s->pidns_fd >= 0 || (s->late_flags & CLONE_NEWPID);
}

/* setns into a time namespace wants a process that shares no memory. */
static int needs_own_memory(const struct spec *s)
{
	/* An OCI container outlives its parent (tsns-oci-init) waiting on its fifo. */
	if (s->oci.root || s->oci.fifo_dir >= 0)
		return 1;
	for (int i = 0; i < s->njoins; i++)
		if (s->joins[i].type & CLONE_NEWTIME)
			return 1;
	return 0;
}

static int clone_flags(const struct spec *s, int middle, int need_sync)
{
	int flags = (int)(s->flags & ~(unsigned long)CLONE_NEWTIME) | SIGCHLD;
	if (!middle && !needs_own_memory(s))
		/* With the maps written from here the child must run alongside
		 * us; otherwise vfork semantics keep it off our stack cheaply. */
		flags |= SHARED_VM | (need_sync ? 0 : CLONE_VFORK);
	return flags;
}

/* The clone itself, with every signal blocked so that none of Node's
 * handlers runs in the child; the pid, or -1 with errno. */
static pid_t start_child(struct child *c, char *stack, int middle, int need_sync)
{
	int flags = clone_flags(c->s, middle, need_sync);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone(child_main, stack + STACK_SIZE, flags, c);
	int err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return pid;
}

/* The clone: into the command's v2 cgroup where one is given (clone3), else
 * as clone(2) does it, the pid then going into every cgroup.procs from the
 * handshake; 0 and the pid, or a failure. */
static int64_t clone_command(struct spec *s, struct pipes *p, struct child *c, char *stack, int middle, int need_sync, pid_t *pid)
{
	if (s->cgroup_dir >= 0) {
		*pid = cgroup_clone(c, stack, STACK_SIZE, (unsigned long)clone_flags(s, middle, need_sync));
		if (*pid >= 0)
			return 0;
		if (errno != ENOSYS)
			return fail(ST_CGROUP_CLONE, errno);
		/* clone3 cannot put it there: the parent writes its pid, as on v1,
		 * while the child waits on the sync socket. */
		int r = cgroup_fall_back(s);
		if (r < 0)
			return fail(ST_CGROUP_CLONE, -r);
		if (p->sync[0] < 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->sync) < 0)
			return fail(ST_PIPE, errno);
		c->sync = p->sync[1];
		c->peer = p->sync[0];
		s->cgroup_dir = -1;
		need_sync = 1;
	}
	*pid = start_child(c, stack, middle, need_sync);
	return *pid < 0 ? fail(ST_CLONE, errno) : 0;
}

/* Whether fd is one the spec itself names (a source, a namespace to join,
 * a root or cwd): tsns's own, not its caller's. */
static int named_by_spec(const struct spec *s, int fd)
{
	for (int i = 0; i < s->nfds; i++)
		if (s->fds[i].src == fd)
			return 1;
	for (int i = 0; i < s->njoins; i++)
		if (s->joins[i].fd == fd)
			return 1;
	for (int i = 0; i < s->ncgroup_procs; i++)
		if (s->cgroup_procs[i] == fd)
			return 1;
	/* bwrap's command gets none of these: the sync fd stays with the
	 * supervisor, the others are read or written for it. */
	if (fd == s->info_fd || fd == s->status_fd || fd == s->block_fd || fd == s->sync_fd)
		return 1;
	/* Nor these, which the sandbox reads or binds, then closes (--file,
	 * --bind-data, --bind-fd): no fd it opens after may take their place. */
	for (int i = 0; i < s->sb.nops; i++) {
		const char *a = s->sb.ops[i].a;
		size_t n = sizeof TSNS_FD_SOURCE - 1;
		if (a && strncmp(a, TSNS_FD_SOURCE, n) == 0 && atoi(a + n) == fd)
			return 1;
	}
	return fd == s->root_fd || fd == s->cwd_fd || fd == s->cgroup_dir;
}

/* Node's own fds as it starts: its event loop's epoll and eventfds (and
 * io_uring, inotify, signalfd, timerfd where it uses them), and pipes it
 * holds both ends of (libuv's wake-up and signal pipes). */
static int nodes_own(const char *link)
{
	static const char *const anon[] = { "anon_inode:[eventpoll]", "anon_inode:[eventfd]", "anon_inode:[io_uring]",
					    "anon_inode:inotify", "anon_inode:[signalfd]", "anon_inode:[timerfd]" };
	for (unsigned i = 0; i < sizeof anon / sizeof *anon; i++)
		if (strcmp(link, anon[i]) == 0)
			return 1;
	return 0;
}

/*
 * The fds ≥ 3 that tsns's caller handed it, which unshare, nsenter and bwrap
 * pass on.  Node cannot say: at start it marks fds 0-15 close-on-exec
 * (uv_disable_stdio_inheritance) and every fd of its own is too.  What
 * tells them apart is what they are: Node's are its event loop's and pipes
 * whose both ends it holds; the CLI's own fds are named in the spec.
 */
static int find_inherited_fds(struct spec *s)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	int n = 0, cap = 16;
	struct { int fd; char link[64]; } *seen = malloc((size_t)cap * sizeof *seen);
	const char *channel = getenv("NODE_CHANNEL_FD");
	int ipc = channel ? atoi(channel) : -1;
	for (struct dirent *e; seen && (e = readdir(d));) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd < 3 || fd == dirfd(d) || fd == ipc || named_by_spec(s, fd))
			continue;
		char link[64];
		ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
		if (len < 0)
			continue;
		link[len] = 0;
		if (nodes_own(link))
			continue;
		if (n == cap) {
			void *grown = realloc(seen, (size_t)(cap *= 2) * sizeof *seen);
			if (!grown) {
				free(seen);
				seen = NULL;
				break;
			}
			seen = grown;
		}
		seen[n].fd = fd;
		memcpy(seen[n++].link, link, (size_t)len + 1);
	}
	closedir(d);
	if (!seen)
		return -ENOMEM;
	s->inherited = malloc((size_t)(n ? n : 1) * sizeof *s->inherited);
	if (!s->inherited) {
		free(seen);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		int pair = 0;
		if (strncmp(seen[i].link, "pipe:", 5) == 0)
			for (int j = 0; j < n && !pair; j++)
				pair = j != i && strcmp(seen[i].link, seen[j].link) == 0;
		if (!pair)
			s->inherited[s->ninherited++] = seen[i].fd;
	}
	free(seen);
	return 0;
}

int64_t tsns_spawn(const uint8_t *buf, int32_t len)
{
	struct spec s;
	struct pipes p = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
	int64_t ret;
	int r = parse_spec(buf, len, &s);

	if (r < 0) {
		free_spec(&s);
		return fail(ST_SPEC, -r);
	}
	/* Before the spawn's own pipes exist. */
	if (s.inherit_fds && (r = find_inherited_fds(&s)) < 0) {
		free_spec(&s);
		return fail(ST_STDIO, -r);
	}
	int need_sync = s.uid_map || s.gid_map || s.setgroups || s.npersist || s.listener_path || s.ncgroup_procs ||
			s.info_fd >= 0 || s.status_fd >= 0 || s.userns_block_fd >= 0;
	int middle = needs_middle(&s);
	if (s.target > 0) {
		/* Pins the target: its pid cannot be reused while we join. */
		s.pidfd = (int)syscall(SYS_pidfd_open, (pid_t)s.target, 0);
		if (s.pidfd < 0 && errno != ENOSYS) {
			ret = fail(ST_TARGET, errno);
			goto out;
		}
	}
	if ((ret = open_pipes(&p, need_sync, middle)) < 0)
		goto out;
	if (s.listener_path && (r = listener_prepare(p.sync[0])) < 0) {
		ret = fail(ST_SECCOMP_HANDOFF, -r);
		goto out;
	}
	char *stack = stack_get();
	if (!stack) {
		ret = fail(ST_STACK, errno);
		goto out;
	}
	struct child c = { &s, p.err[1], p.sync[1], p.sync[0], p.stat[1] };
	pid_t pid;
	ret = clone_command(&s, &p, &c, stack, middle, need_sync, &pid);
	close_pipes(&p, 1);
	if (ret < 0)
		goto unmap;
	ret = handshake(pid, &s, p.sync[0], p.err[0]);
	if (ret < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, __WALL);
		unpersist(&s);
	} else {
		ret = pid;
		if (p.stat[0] >= 0) {
			keep_status_fd(pid, p.stat[0]);
			p.stat[0] = -1;
		}
	}
unmap:
	stack_put(stack);
out:
	close_pipes(&p, 0);
	close_pipes(&p, 1);
	if (s.pidfd >= 0)
		close(s.pidfd);
	if (s.cgroup_own_fd >= 0)
		close(s.cgroup_own_fd);
	free_spec(&s);
	return ret;
}

/* A close-on-exec pipe for the command's stdio. */
int64_t tsns_pipe(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	return (int64_t)p[0] << TSNS_PIPE_SHIFT | p[1];
}

/* For fds this library made: Node's fs.closeSync warns in a worker thread
 * about closing an fd it did not open. */
int32_t tsns_close(int32_t fd)
{
	return close(fd) < 0 ? -errno : 0;
}
