/*
 * The contract between the shim and src/wire.ts, in one place.
 *
 * Each list is an X-macro so that C takes names and values from it and a
 * unit test (test/unit/wire.test.ts) reads this file and checks that
 * src/wire.ts has the same table: the two sides cannot drift.
 *
 * The spec the shim reads is a run of NUL-terminated entries, each a tag
 * byte followed by its value as text.
 */
#ifndef TSNS_WIRE_H
#define TSNS_WIRE_H

/* X(NAME, 'tag') */
#define TSNS_TAGS(X)                                                          \
	X(FLAGS, 'f')          /* CLONE_NEW* (and CLONE_NEWTIME to unshare) */ \
	X(PROPAGATION, 'P')    /* MS_* for / in a new mount namespace, 0: leave */ \
	X(FILE, 'x')           /* what to execute: a path, or a name in PATH */ \
	X(SEARCH_PATH, 'S')    /* the PATH the file is searched in */          \
	X(UID_MAP, 'u')        /* uid_map text */                              \
	X(GID_MAP, 'g')        /* gid_map text */                              \
	X(UID_MAP_HELPER, 'm') /* write uid_map through newuidmap */           \
	X(GID_MAP_HELPER, 'n') /* write gid_map through newgidmap */           \
	X(SETGROUPS, 's')      /* allow | deny */                              \
	X(HOSTNAME, 'h')                                                       \
	X(DOMAINNAME, 'd')                                                     \
	X(PROC_DIR, 'p')       /* mount a new proc here */                     \
	X(ROOT, 'R')           /* chroot */                                    \
	X(WD, 'W')             /* chdir */                                     \
	X(MONOTONIC, 'M')      /* time namespace offsets, seconds */           \
	X(BOOTTIME, 'B')                                                       \
	X(UID, 'U')            /* setresuid before exec */                     \
	X(GID, 'G')            /* setresgid before exec */                     \
	X(KEEP_CAPS, 'k')      /* keep capabilities across exec (ambient) */   \
	X(KILL_SIGNAL, 'K')    /* PR_SET_PDEATHSIG */                          \
	X(INIT, 'I')           /* a reaping, forwarding PID 1 */               \
	X(UNSHARE_PID, 'Q')    /* with the time namespace, unshare pid too */  \
	X(PERSIST, 'N')        /* "ns/X:PATH": bind a namespace onto PATH */   \
	X(PERSIST_LATE, 'L')   /* the same, once the time/pid ns exists */     \
	X(TARGET, 'y')         /* enter: the target pid, pinned by a pidfd */  \
	X(JOIN, 'J')           /* enter: "TYPE:FD", 't' after: the target's */ \
	X(ROOT_FD, 'r')        /* enter: fchdir + chroot to this fd */         \
	X(CWD_FD, 'c')         /* enter: fchdir to this fd */                  \
	X(SANDBOX_OP, 'O')     /* a sandbox operation, see TSNS_SANDBOX_OPS */ \
	X(HARDENING, 'H')      /* letters, see TSNS_HARDENING */               \
	X(CAP_KEEP, 'C')       /* capabilities kept in every set, decimal */   \
	X(SECCOMP, 'F')        /* a compiled seccomp program, hex */           \
	X(STDIO, 'D')          /* "TARGET:FD": the command's fd TARGET is FD; -1: /dev/null */ \
	X(INHERIT_FDS, 'w')    /* keep open every fd tsns's caller handed it */ \
	X(EXTRA, 'v')          /* util-linux's newer steps: CODE then a value, see TSNS_EXTRAS */ \
	X(CGROUP_PROCS, 'A')   /* an fd of a cgroup.procs: the child's pid goes there before it runs */ \
	X(CGROUP_DIR, 'E')     /* an fd of a new cgroup v2 directory: clone3(CLONE_INTO_CGROUP) */ \
	X(ARG, 'a')            /* one argv entry, in order */                  \
	X(ENV, 'e')            /* one environment entry, in order */           \
	X(SECCOMP_FLAGS, 'T')  /* the last program's seccomp(2) flags; 'e' after: load before dropping privileges */ \
	X(SECCOMP_LISTENER, 'V') /* PATH \x01 STATE: send the listener there */ \
	X(OCI_ROOT, 'X')       /* tsns-oci: FLAGS:ROOTFS, see native/oci.h */   \
	X(OCI_MOUNT, 'Y')      /* tsns-oci: DEST \x01 SRC \x01 TYPE \x01 FLAGS \x01 PROP \x01 ATTR \x01 DATA */ \
	X(OCI_STEP, 'Z')       /* tsns-oci: a step of native/oci.h's OCI_STEP_* */ \
	X(WD_TRY, 'i')         /* "PWD=DIR": without WD, the first DIR chdir takes becomes PWD */ \
	X(LOCK_FILE, 'l')      /* bwrap --lock-file: the supervisor holds a read lock on this path in the sandbox */ \
	X(INFO_FD, 'q')        /* bwrap --info-fd: the child's pid and namespaces, as JSON, before it goes on */ \
	X(STATUS_FD, 't')      /* bwrap --json-status-fd: the same first object, on one line */ \
	X(BLOCK_FD, 'z')       /* bwrap --block-fd: the command reads a byte (or EOF) here before exec */ \
	X(USERNS_BLOCK_FD, 'o') /* bwrap --userns-block-fd: the parent reads here before releasing the child */ \
	X(OCI_HOOK, '1')       /* tsns-oci: a startContainer hook, see native/oci.h OCI_HOOK */ \
	X(OCI_HOOK_STATE, '2') /* tsns-oci: the state JSON those hooks read, TSNS_PID_MARK for the host's pid */

/* A sandbox operation's value: CODE[TRY] \x01 A \x01 B \x01 MODE \x01 SIZE,
 * MODE octal and SIZE decimal, each empty for the default; an overlay with
 * its own upper layer adds \x01 UPPER \x01 WORK. */
#define TSNS_OP_SEP '\x01'
#define TSNS_OP_TRY 't' /* after the code: skip a missing source */
#define TSNS_OP_LIST_SEP '\x02' /* between an overlay's lower directories */

/* X(NAME, 'code') */
#define TSNS_SANDBOX_OPS(X)  \
	X(BIND, 'b')         \
	X(RO_BIND, 'r')      \
	X(DEV_BIND, 'v')     \
	X(TMPFS, 't')        \
	X(DIR, 'd')          \
	X(SYMLINK, 's')      \
	X(FILE, 'f')         \
	X(CHMOD, 'c')        \
	X(REMOUNT_RO, 'R')   \
	X(PROC, 'p')         \
	X(DEV, 'D')          \
	X(OVERLAY, 'o')      /* lowers, a tmpfs upper layer */ \
	X(BIND_DATA, 'a')    /* A: TSNS_FD_SOURCE N, bound from a file of its own */ \
	X(RO_BIND_DATA, 'A') \
	X(MQUEUE, 'm')       \
	X(RO_OVERLAY, 'O')   /* lowers only */ \
	X(RW_OVERLAY, 'w')   /* lowers, with C the upper and D the work directory */ \
	X(BIND_FD, 'F')      /* A: TSNS_FD_SOURCE N, bound by the path it has, then checked against it */ \
	X(RO_BIND_FD, 'B')

/* An EXTRA entry's first byte; the rest is its value.  X(NAME, 'code') */
#define TSNS_EXTRAS(X)                                                              \
	X(NO_FORK, 'F')      /* enter -F: exec in the joining child, no fork for pid */   \
	X(BINFMT, 'b')       /* mount binfmt_misc on this directory, after proc */        \
	X(INTERP, 'l')       /* write this to <binfmt>/register */                        \
	X(INTERP_EARLY, 'e') /* register before --root, in /proc/sys/fs/binfmt_misc */   \
	X(EXEC_FIFO, 'G')    /* tsns-oci: an fd of the state dir; wait on its exec.fifo */ \
	X(RLIMIT, 'H')       /* tsns-oci: RESOURCE SOFT HARD */                          \
	X(GROUPS, 'J')       /* tsns-oci: supplementary gids, comma-separated */         \
	X(CAPS, 'K')         /* tsns-oci: bounding,effective,permitted,inheritable,ambient masks */ \
	X(CONSOLE, 'M')      /* tsns-oci: SOCKET \x01 ROWS \x01 COLS: a pty, its master sent there */ \
	X(SYNC_FD, '5')      /* bwrap --sync-fd: the supervisor keeps it open, the command does not */ \
	X(USERNS, '6')       /* bwrap --userns: join this user namespace, then unshare the rest */ \
	X(USERNS2, '7')      /* bwrap --userns2: switch to this user namespace after the setup */ \
	X(PIDNS, '8')        /* bwrap --pidns: the command's pid namespace (the parent of a new one) */ \
	X(CONSOLE_FD, 'N')   /* tsns-oci: FD \x01 ROWS \x01 COLS: as CONSOLE, on this connected socket */ \
	X(OCI_HOOKS, 'P')    /* tsns-oci: REPORT,GO fds: before the pivot, "hooks PID" to REPORT, then wait for a byte on GO */ \
	X(SESSION_KEYRING, 'R') /* tsns-oci: [PERMBITS] \x01 NAME: join (or make) this session keyring, then add PERMBITS (hex) to its permissions */ \
	X(PIDFD_SOCKET, 'T') /* tsns-oci --pidfd-socket: SOCKET \x01 NAME: a pidfd of the process sent there, NAME the data */

/* A --file source that is an open fd: "fd:N". */
#define TSNS_FD_SOURCE "fd:"

/* A seccomp listener's value: the agent's socket, then the state to send
 * with the listener, where TSNS_PID_MARK stands for the command's pid. */
#define TSNS_LISTENER_SEP '\x01'
#define TSNS_PID_MARK '\x02'
#define TSNS_SECCOMP_EARLY 'e'

/* X(NAME, 'letter') */
#define TSNS_HARDENING(X)          \
	X(NO_NEW_PRIVS, 'n')       \
	X(NEW_SESSION, 's')        \
	X(LO_UP, 'l')              \
	X(OVERLAY_USERXATTR, 'x')  \
	X(DISABLE_USERNS, 'f')     \
	X(ASSERT_USERNS_DISABLED, 'g') \
	X(KEEP_GROUPS, 'u')        /* tsns-oci not root: never setgroups(2), the inherited groups stay */

/* Where a start failed: X(NAME, number, "name in src/"). */
#define TSNS_STAGES(X)                              \
	X(SPEC, 1, "spec")                          \
	X(PIPE, 2, "pipe")                          \
	X(STACK, 3, "stack")                        \
	X(CLONE, 4, "clone")                        \
	X(SETGROUPS, 5, "setgroups")                \
	X(UID_MAP, 6, "uid_map")                    \
	X(GID_MAP, 7, "gid_map")                    \
	X(SYNC, 8, "sync")                          \
	X(HOSTNAME, 9, "sethostname")               \
	X(DOMAINNAME, 10, "setdomainname")          \
	X(PROPAGATION, 11, "propagation")           \
	X(MOUNT_PROC, 12, "mount-proc")             \
	X(STDIO, 13, "stdio")                       \
	X(EXEC, 14, "exec")                         \
	X(PERSIST, 15, "persist")                   \
	X(TIME, 16, "time")                         \
	X(TIME_OFFSETS, 17, "time-offsets")         \
	X(FORK, 18, "fork")                         \
	X(ROOT, 19, "root")                         \
	X(WD, 20, "wd")                             \
	X(SETGID, 21, "setgid")                     \
	X(SETUID, 22, "setuid")                     \
	X(CAPS, 23, "caps")                         \
	X(PDEATHSIG, 24, "pdeathsig")               \
	X(NEWUIDMAP, 25, "newuidmap")               \
	X(NEWGIDMAP, 26, "newgidmap")               \
	X(TARGET, 27, "target")                     \
	X(SETNS, 28, "setns")                       \
	X(SANDBOX, 29, "sandbox")                   \
	X(LO, 30, "lo")                             \
	X(NO_NEW_PRIVS, 31, "no-new-privs")         \
	X(SETSID, 32, "setsid")                     \
	X(SECCOMP, 33, "seccomp")                   \
	X(NET_SOCKET, 40, "net-socket")             \
	X(SOCKET_NETNS, 41, "socket-netns")         \
	X(USER_PARENT, 42, "user-parent")           \
	X(BINFMT, 43, "binfmt")                     \
	X(LOAD_INTERP, 44, "load-interp")           \
	X(CGROUP_PROCS, 45, "cgroup-procs")         \
	X(CGROUP_CLONE, 46, "cgroup-clone")         \
	X(CGROUPNS, 47, "cgroupns")                 \
	X(SECCOMP_LISTENER, 50, "seccomp-listener") \
	X(SECCOMP_HANDOFF, 51, "seccomp-handoff")   \
	X(SECCOMP_SEND, 52, "seccomp-send")         \
	X(OCI_ROOTFS, 70, "oci-rootfs")             \
	X(OCI_MOUNT, 71, "oci-mount")               \
	X(OCI_PIVOT, 72, "oci-pivot")               \
	X(OCI_STEP, 73, "oci-step")                 \
	X(RLIMIT, 74, "rlimit")                     \
	X(EXEC_FIFO, 75, "exec-fifo")               \
	X(GROUPS, 76, "groups")                     \
	X(CONSOLE, 77, "console")                   \
	X(OCI_CAPS, 78, "oci-caps")                 \
	X(LOOKUP, 79, "lookup") \
	X(LOCK_FILE, 60, "lock-file")               \
	X(BLOCK_FD, 61, "block-fd")                 \
	X(INFO_FD, 62, "info-fd")                   \
	X(USERNS_BLOCK, 63, "userns-block-fd")      \
	X(DISABLE_USERNS, 64, "disable-userns")     \
	X(USERNS_ENABLED, 65, "assert-userns-disabled") \
	X(USERNS_JOIN, 66, "userns")                \
	X(USERNS2, 67, "userns2")                   \
	X(PIDNS, 68, "pidns")                       \
	X(OCI_HOOKS, 80, "oci-hooks")               \
	X(SESSION_KEYRING, 84, "session-keyring")   \
	X(KEYRING_PERM, 85, "keyring-perm")         \
	X(PIDFD_SOCKET, 87, "pidfd-socket")         \
	X(OCI_START_HOOK, 88, "oci-start-hook")     \
	X(OCI_MOUNT_PATH, 81, "oci-mount-path")     \
	X(OCI_STEP_PATH, 82, "oci-step-path")       \
	X(OCI_MOUNT_ON, 83, "oci-mount-on")

/* A failed start returns -(stage << TSNS_STAGE_SHIFT | errno).  The stages
 * that name one of several things (a persisted file, a namespace to join,
 * a sandbox operation counted from 1 with 0 the new root, a seccomp
 * program) put its index in the errno's high byte. */
#define TSNS_STAGE_SHIFT 16
#define TSNS_FAILURE(stage, err) (-(int64_t)((stage) << TSNS_STAGE_SHIFT | (err)))
#define TSNS_INDEX_SHIFT 8
#define TSNS_INDEXED_STAGES(X) X(PERSIST) X(SETNS) X(SANDBOX) X(SECCOMP) X(CGROUP_PROCS) X(OCI_MOUNT) X(OCI_STEP) X(RLIMIT) X(LOCK_FILE) X(OCI_MOUNT_PATH) X(OCI_STEP_PATH) X(OCI_MOUNT_ON)

/* A command's end as the shim reports it: kind << 16 | value. */
#define TSNS_WAIT_SHIFT 16
#define TSNS_WAIT_EXITED 1   /* value: the exit code */
#define TSNS_WAIT_SIGNALED 2 /* value: the signal */

/* tsns_pipe(): read end << 16 | write end. */
#define TSNS_PIPE_SHIFT 16

/* tsns_ns_query(): X(NAME, number) */
#define TSNS_NS_QUERIES(X) \
	X(TYPE, 0)         \
	X(PARENT, 1)       \
	X(OWNER, 2)        \
	X(OWNER_UID, 3)    \
	X(NETNSID, 4)

#define TSNS_ENUM_TAG(name, tag) TAG_##name = tag,
#define TSNS_ENUM_OP(name, code) OP_##name = code,
#define TSNS_ENUM_HARDENING(name, letter) HARDEN_##name = letter,
#define TSNS_ENUM_EXTRA(name, code) EXTRA_##name = code,
#define TSNS_ENUM_STAGE(name, number, text) ST_##name = number,
#define TSNS_ENUM_QUERY(name, number) NSQ_##name = number,

enum tsns_tag { TSNS_TAGS(TSNS_ENUM_TAG) };
enum tsns_op { TSNS_SANDBOX_OPS(TSNS_ENUM_OP) };
enum tsns_hardening { TSNS_HARDENING(TSNS_ENUM_HARDENING) };
enum tsns_extra { TSNS_EXTRAS(TSNS_ENUM_EXTRA) };
enum tsns_stage { TSNS_STAGES(TSNS_ENUM_STAGE) };
enum tsns_ns_query { TSNS_NS_QUERIES(TSNS_ENUM_QUERY) };
#endif
