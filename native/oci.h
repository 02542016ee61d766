/*
 * What an OCI container adds to a spawn (tsns-oci): the bundle's root
 * filesystem with its mounts and a pivot into it, the paths masked or made
 * read-only after it, devices, rlimits, supplementary groups, the five
 * capability sets, a console, and the exec fifo the process waits on until
 * `tsns-oci start`.  oci-spec.c reads it from the wire in the parent; oci.c
 * acts on it in the child, with raw system calls only.
 */
#ifndef TSNS_OCI_H
#define TSNS_OCI_H
#include <stdint.h>

#define OCI_MAX_MOUNTS 128
#define OCI_MAX_STEPS 256
#define OCI_MAX_RLIMITS 16
#define OCI_MAX_GROUPS 64
#define OCI_MAX_HOOKS 16

/* A startContainer hook (wire.h TAG_OCI_HOOK): TIMEOUT \1 PATH \1 NARGS \1
 * NENV, then each arg and each env entry after a \1; TIMEOUT 0 is none,
 * NENV -1 the process's own environment (a hook without "env", as runc). */
struct oci_hook {
	const char *path;
	char **argv, **envp; /* envp NULL: the command's */
	long timeout;        /* seconds, 0 none */
};

/* An OCI_STEP's first byte (wire.h TAG_OCI_STEP). */
#define OCI_STEP_DEVICE 'n'   /* PATH \1 TYPE \1 MAJOR \1 MINOR \1 MODE \1 UID \1 GID, made in the rootfs */
#define OCI_STEP_DEVICE_BIND 'N' /* the same fields: the host's PATH bound onto a file at PATH (a user namespace) */
#define OCI_STEP_SYMLINK 'l'  /* TARGET \1 LINK, made in the rootfs */
#define OCI_STEP_SYMLINK_REPLACE 'L' /* the same, in place of what LINK is (runc's /dev/ptmx) */
#define OCI_STEP_MASK 'm'     /* after the pivot: hidden under /dev/null or an empty tmpfs */
#define OCI_STEP_READONLY 'r' /* after the pivot: bound read-only onto itself */
#define OCI_STEP_SYSCTL 's'   /* after the pivot: KEY \1 VALUE, KEY with '/' */
#define OCI_STEP_UMASK 'u'    /* octal */
#define OCI_STEP_OOM 'o'      /* oom_score_adj */
#define OCI_STEP_PERSONALITY 'p' /* personality(2) domain, decimal */

/* An OCI_ROOT's flags before ':', with the propagation of "/" (decimal MS_*) among them */
#define OCI_ROOT_READONLY 'r'
#define OCI_ROOT_NO_PIVOT 'n'

struct oci_mount {
	const char *dest, *src, *type, *data;
	unsigned long flags; /* MS_* for mount(2); MS_BIND with MS_REC for rbind */
	unsigned long prop;  /* MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE, with MS_REC */
	uint64_t attr;       /* MOUNT_ATTR_* a bind mount's own mount gets through mount_setattr (runc's remount) */
	uint64_t rec_attr;   /* ... and every mount below it too (rro, rnosuid ...) */
};

struct oci_step {
	char code;
	const char *a, *b;
	long n[5];
};

struct oci {
	const char *root;    /* absolute rootfs; NULL: not an OCI container */
	int readonly, no_pivot;
	unsigned long root_prop; /* MS_* (with MS_REC) for "/" before the rootfs's bind; 0: left as it is */
	struct oci_mount mounts[OCI_MAX_MOUNTS];
	int nmounts;
	struct oci_step steps[OCI_MAX_STEPS];
	int nsteps;
	struct { int res; uint64_t soft, hard; } rlimits[OCI_MAX_RLIMITS];
	int nrlimits;
	uint32_t groups[OCI_MAX_GROUPS];
	int ngroups, groups_set;
	uint64_t caps[5];    /* bounding, effective, permitted, inheritable, ambient */
	int caps_set;
	int fifo_dir;        /* the state directory: its exec.fifo is opened for writing before exec; -1 none */
	int console;         /* connected to --console-socket: the pty master goes there; -1 none */
	int hooks_report, hooks_go; /* the prestart/createRuntime/createContainer pause before the pivot; -1 none */
	unsigned short rows, cols;
	const char *keyring;     /* the session keyring to join (runc's _ses.ID); NULL: keep the inherited one */
	uint32_t keyring_perm;   /* permission bits added to it; 0: none (exec joins it as it is) */
	struct oci_hook hooks[OCI_MAX_HOOKS]; /* startContainer, run after the fifo, before the exec */
	int nhooks;
	const char *hook_state; /* their stdin: JSON, TSNS_PID_MARK where the host's pid goes */
	int pidfd_sock;      /* connected to --pidfd-socket: a pidfd of the process goes there; -1 none */
	const char *pidfd_name; /* the data sent with it: runc's "standard" (create) or "setns" (exec) */
};

struct spec;
struct child;
/* oci-spec.c, in the parent: an OCI entry of the wire; 0 or -errno. */
void oci_init(struct oci *o);
int oci_parse(struct oci *o, char tag, char *v);
int oci_parse_extra(struct oci *o, char *v);
void oci_free(struct oci *o);

/* oci-root.c, in the child: "/" and the rootfs's mount made ready, the
 * rootfs bound onto itself; then the pivot into it.  0 or -errno. */
long oci_root_prepare(const struct oci *o);
long oci_pivot(const struct oci *o);
/* oci.c, in the child: 0 or -errno, with *stage (and *index) set. */
long oci_filesystem(const struct oci *o, int *stage, int *index);
long oci_caps(const struct oci *o);
long oci_groups(const struct oci *o);
/* oci-keyring.c, in the child: the session keyring, as runc's init joins it; 0 or -errno with *stage set. */
long oci_keyring(const struct oci *o, int *stage);
/* After the fds are in place: the console, the check that the command
 * exists, "ready" to the parent on errfd, then the wait on the fifo. */
long oci_ready(const struct spec *s, int errfd, int *stage);

/* oci-hook.c, in the child: the host's pid (before the pivot, while
 * /proc is the host's) as text into buf; then, after the fifo, the
 * startContainer hooks, each in turn - a failure is one line on stderr and
 * the process's end with runc's status 1, so never returns then. */
long oci_self_pid(char *buf, int len);
void oci_start_hooks(const struct spec *s, const char *pid);

/* oci-path.c, in the child: a path of the rootfs (ROOT, an fd of it) as
 * the container sees it, never leaving it; an O_PATH fd or -errno. */
#define OCI_PATH_DIR 1     /* what is missing is made: directories */
#define OCI_PATH_FILE 2    /* ... with an empty file at the end */
#define OCI_PATH_NOLINKS 4 /* a symlink anywhere on the way: -ELOOP (proc, sysfs) */
long oci_path(int root, const char *path, int how);
/* The directory above PATH's last component, made where missing; *name
 * is that component (for mknodat, symlinkat). */
long oci_path_parent(int root, const char *path, const char **name);
/* "/proc/self/fd/FD" into buf (32 bytes): what mount(2) is given for an fd. */
long oci_fd_path(char *buf, long fd);

/* oci-tty.c, in tsns-oci-init only: the terminal of a foreground run
 * without --console-socket.  A socket pair with the container's end at fd
 * AT (close-on-exec), ours returned; the master taken from ours, the
 * caller's terminal HOST made raw (its state kept in *saved); the copying
 * until the process ends, with its wait status returned. */
struct termios;
int oci_tty_pair(int at);
int oci_tty_take(int sock, int host, struct termios *saved);
int oci_tty_relay(int pid, int master, int host);
void oci_tty_restore(int host, const struct termios *saved);
#endif
