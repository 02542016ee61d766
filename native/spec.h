/*
 * What one spawn needs, as spec.c reads it from the wire (wire.h), and what
 * the shim's files share to act on it: parent.c starts the child, child.c
 * is the child, reap.c keeps the status pipes of supervised commands.
 *
 * Nothing declared here is exported: the shim is built with
 * -fvisibility=hidden and only tsns.h's functions leave libtsns.so.
 */
#ifndef TSNS_SPEC_H
#define TSNS_SPEC_H
#include <stdint.h>
#include <sys/types.h>
#include <linux/filter.h>

#include "oci.h"
#include "sandbox.h"
#include "wire.h"

#define MAX_PERSIST 16
#define MAX_SECCOMP 16
#define MAX_JOINS 8
#define MAX_FDS 256
#define MAX_CGROUPS 16
#define MAX_LOCKS 16

/* enter: a namespace to join, by an fd src/ opened. */
struct join {
	int type, fd;
	int from_target;  /* one of the target's own, which setns(pidfd) may have joined */
};

struct persist {
	const char *proc; /* file under /proc/PID/, e.g. "ns/uts" */
	const char *path;
	int late;         /* bound only once the time/pid namespace exists */
	int bound, created;
};

#define MAX_WD_TRY 4

struct spec {
	unsigned long flags;       /* CLONE_NEW*; CLONE_NEWTIME is unshared by a middle process */
	const char *uid_map, *gid_map, *setgroups;
	int newuidmap, newgidmap;  /* write the maps through the setuid helpers */
	const char *hostname, *domainname, *proc_dir, *root, *wd;
	const char *monotonic, *boottime;
	/* without wd, bwrap's choice of directory: the first of these "PWD=DIR"
	 * that chdir takes, which then replaces the command's PWD entry */
	const char *wd_try[MAX_WD_TRY];
	int nwd_try;
	long propagation;          /* MS_* for "/", or 0 to leave it unchanged */
	long uid, gid;             /* -1: unchanged */
	int keep_caps, kill_signal, init, unshare_pid;
	struct persist persist[MAX_PERSIST];
	int npersist;
	/* the command's fds: each target gets its source (-1: /dev/null);
	 * 0-2 when not named stay as they are */
	struct { int target, src; } fds[MAX_FDS];
	int nfds;
	/* the fds tsns's caller handed it, kept open (the CLI's, as unshare,
	 * nsenter and bwrap keep them): found by the parent (parent.c) */
	int inherit_fds;
	int *inherited;
	int ninherited;
	/* enter: the target (a pidfd joins its namespaces at once), or one
	 * fd per namespace, in the order to join them; its root and cwd */
	long target;
	int pidfd;
	unsigned long join_mask;
	struct join joins[MAX_JOINS];
	int njoins;
	int root_fd, cwd_fd;
	/* the sandbox: filesystem operations and hardening */
	struct sandbox sb;
	int no_new_privs, new_session, lo_up, caps_set;
	uint64_t caps_keep;
	/* util-linux's newer steps: enter -F; unshare --mount-binfmt and
	 * --load-interp (the F flag with --root registers before the chroot) */
	int no_fork, interp_early;
	const char *binfmt_dir, *interp;
	/* cgroups: the parent writes the child's pid into each cgroup.procs
	 * (cgroup.c) before releasing it; a v2 directory (-1: none) it is
	 * cloned straight into; a new cgroup namespace waits for both, so that
	 * its root is the command's cgroup */
	int cgroup_procs[MAX_CGROUPS];
	int ncgroup_procs;
	int cgroup_dir;
	int cgroup_own_fd;         /* one cgroup_fall_back() opened, or -1 */
	int cgroupns_late;
	/* compiled seccomp programs, loaded in order just before the exec
	 * (or, early, before dropping privileges), each with its flags; the
	 * listener of one with SECCOMP_FILTER_FLAG_NEW_LISTENER goes to the
	 * agent at listener_path, with listener_state (notify.c) */
	struct sock_fprog seccomp[MAX_SECCOMP];
	unsigned int seccomp_flags[MAX_SECCOMP];
	int nseccomp, seccomp_early;
	const char *listener_path, *listener_state;
	/* an OCI container (tsns-oci): its rootfs, mounts, console, fifo */
	struct oci oci;
	/* bwrap's fd protocols and process rules (lifecycle.c): -1 where not
	 * given.  A lock file or a sync fd needs a process that lives as long
	 * as the sandbox, the supervisor; late_flags are the namespaces
	 * unshared only after joining userns_fd (so that it owns them). */
	const char *locks[MAX_LOCKS];
	int nlocks;
	int info_fd, status_fd, block_fd, userns_block_fd, sync_fd;
	int userns_fd, userns2_fd, pidns_fd;
	unsigned long late_flags;
	int disable_userns, assert_userns_disabled;
	int keep_groups; /* tsns-oci not root: the groups it was given stay (runc's rule) */
	char *copy;                /* the spec, split in place */
	const char *file, *path;
	char **argv, **envp, **shargv;
};

/* spec.c: 0, or -errno (the spec is then still to be freed). */
int parse_spec(const uint8_t *in, int32_t len, struct spec *s);
void free_spec(struct spec *s);

/* What the child is handed through clone(): the spec and its ends of the
 * pipes (-1 where the spawn needs none). */
struct child {
	const struct spec *s;
	int errfd, sync, peer, statusfd;
};

/* child.c: never returns. */
int child_main(void *arg);

/* notify.c, in the parent: ready the sync socket to receive the listener;
 * take it from the child, send it to the agent, release the child. */
int listener_prepare(int sync);
int64_t listener_handoff(const struct spec *s, int sync);
/* cgroup.c: clone the child straight into s->cgroup_dir (clone3
 * CLONE_INTO_CGROUP), with the flags start_child() would give clone(); the
 * pid, or -1 with errno (ENOSYS where clone3 cannot do it here). */
pid_t cgroup_clone(struct child *c, char *stack, size_t stack_size, unsigned long flags);
/* Where clone3 cannot: the directory's cgroup.procs joins the others. */
int cgroup_fall_back(struct spec *s);
/* The child's pid into every cgroup.procs: 0, or a failure as wire.h encodes it. */
int64_t cgroup_place(pid_t pid, const struct spec *s);

/* reap.c: the status pipe of a supervised command, by the pid tsns waits for. */
void keep_status_fd(pid_t pid, int fd);
int take_status_fd(pid_t pid);
#endif
