/*
 * The spec reader: the bytes src/ encoded (wire.h) become a struct spec
 * before clone, in the parent, where allocating is still allowed.  Every
 * string the child later uses points into our own copy of the spec, so the
 * child touches nothing the JavaScript side may free or move.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "sys.h"

/* CODE[TRY] SEP A SEP B SEP MODE SEP SIZE [SEP C SEP D], split in place. */
static int parse_op(char *v, struct sb_op *op)
{
	char *f[7] = { v, 0, 0, 0, 0, 0, 0 };
	int n = 1;
	for (char *p = v; *p && n < 7; p++)
		if (*p == TSNS_OP_SEP) {
			*p = 0;
			f[n++] = p + 1;
		}
	if (n != 5 && n != 7)
		return -EINVAL;
	op->c = n == 7 ? f[5] : NULL;
	op->d = n == 7 ? f[6] : NULL;
	op->code = f[0][0];
	op->try_ = f[0][1] == TSNS_OP_TRY;
	op->a = *f[1] ? f[1] : NULL;
	op->b = f[2];
	op->mode = *f[3] ? strtol(f[3], NULL, 8) : -1;
	op->size = *f[4] ? strtol(f[4], NULL, 10) : -1;
	return 0;
}

/* A compiled seccomp program, hex in the spec, decoded in place (each byte
 * lands no later than the digits it came from). */
static int parse_filter(char *v, struct sock_fprog *prog)
{
	size_t n = slen(v);
	if (n == 0 || n % (2 * sizeof(struct sock_filter)) || n / 2 / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		int b = 0;
		for (int k = 0; k < 2; k++) {
			char h = v[2 * i + k];
			int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : -1;
			if (d < 0)
				return -EINVAL;
			b = b << 4 | d;
		}
		v[i] = (char)b;
	}
	prog->len = (unsigned short)(n / 2 / sizeof(struct sock_filter));
	prog->filter = (struct sock_filter *)v;
	return 0;
}

/* The flags of the program before, decimal; TSNS_SECCOMP_EARLY after them
 * loads the programs before privileges are dropped. */
static int parse_seccomp_flags(struct spec *s, const char *v)
{
	char *rest;
	if (s->nseccomp == 0)
		return -EINVAL;
	s->seccomp_flags[s->nseccomp - 1] = (unsigned int)strtoul(v, &rest, 10);
	if (*rest == TSNS_SECCOMP_EARLY)
		s->seccomp_early = 1;
	return 0;
}

/* PATH SEP STATE, split in place. */
static int parse_listener(struct spec *s, char *v)
{
	char *sep = strchr(v, TSNS_LISTENER_SEP);
	if (!sep)
		return -EINVAL;
	*sep = 0;
	s->listener_path = v;
	s->listener_state = sep + 1;
	return 0;
}

/* "ns/X:PATH" */
static int parse_persist(struct spec *s, const char *v, int late)
{
	const char *colon = strchr(v, ':');
	if (!colon || s->npersist == MAX_PERSIST)
		return -EINVAL;
	struct persist *ps = &s->persist[s->npersist++];
	ps->proc = strndup(v, (size_t)(colon - v));
	ps->path = colon + 1;
	ps->late = late;
	return ps->proc ? 0 : -ENOMEM;
}

/* "TYPE:FD", and a 't' after it for one of the target's own namespaces,
 * which setns(pidfd) may already have joined. */
static int parse_join(struct spec *s, const char *v)
{
	char *rest;
	if (s->njoins == MAX_JOINS)
		return -EINVAL;
	struct join *j = &s->joins[s->njoins++];
	j->type = (int)strtol(v, &rest, 0);
	j->fd = (int)strtol(rest + 1, &rest, 10);
	j->from_target = *rest == 't';
	if (j->from_target)
		s->join_mask |= (unsigned long)j->type;
	return 0;
}

static void parse_hardening(struct spec *s, const char *v)
{
	s->no_new_privs = strchr(v, HARDEN_NO_NEW_PRIVS) != NULL;
	s->new_session = strchr(v, HARDEN_NEW_SESSION) != NULL;
	s->lo_up = strchr(v, HARDEN_LO_UP) != NULL;
	s->sb.userxattr = strchr(v, HARDEN_OVERLAY_USERXATTR) != NULL;
	s->disable_userns = strchr(v, HARDEN_DISABLE_USERNS) != NULL;
	s->assert_userns_disabled = strchr(v, HARDEN_ASSERT_USERNS_DISABLED) != NULL;
	s->keep_groups = strchr(v, HARDEN_KEEP_GROUPS) != NULL;
}

static int parse_extra(struct spec *s, const char *v)
{
	switch ((enum tsns_extra)v[0]) {
	case EXTRA_NO_FORK: s->no_fork = 1; break;
	case EXTRA_BINFMT: s->binfmt_dir = v + 1; break;
	case EXTRA_INTERP: s->interp = v + 1; break;
	case EXTRA_INTERP_EARLY: s->interp_early = 1; break;
	case EXTRA_EXEC_FIFO:
	case EXTRA_RLIMIT:
	case EXTRA_GROUPS:
	case EXTRA_CAPS:
	case EXTRA_CONSOLE:
	case EXTRA_CONSOLE_FD:
	case EXTRA_OCI_HOOKS:
	case EXTRA_SESSION_KEYRING:
	case EXTRA_PIDFD_SOCKET: return oci_parse_extra(&s->oci, (char *)v);
	case EXTRA_SYNC_FD: s->sync_fd = (int)strtol(v + 1, NULL, 10); break;
	case EXTRA_USERNS: s->userns_fd = (int)strtol(v + 1, NULL, 10); break;
	case EXTRA_USERNS2: s->userns2_fd = (int)strtol(v + 1, NULL, 10); break;
	case EXTRA_PIDNS: s->pidns_fd = (int)strtol(v + 1, NULL, 10); break;
	default: return -EINVAL;
	}
	return 0;
}

/* "TARGET:FD", each target once. */
static int parse_stdio(struct spec *s, const char *v)
{
	char *rest;
	long target = strtol(v, &rest, 10);
	if (target < 0 || target > 0x7fffffff || *rest != ':' || s->nfds == MAX_FDS)
		return -EINVAL;
	for (int i = 0; i < s->nfds; i++)
		if (s->fds[i].target == target)
			return -EINVAL;
	s->fds[s->nfds].target = (int)target;
	s->fds[s->nfds++].src = (int)strtol(rest + 1, NULL, 10);
	return 0;
}

/* One entry: its tag and its value; argv and envp have room already. */
static int parse_entry(struct spec *s, char tag, char *v, int *argc, int *envc)
{
	switch ((enum tsns_tag)tag) {
	case TAG_FLAGS: s->flags = strtoul(v, NULL, 0); break;
	case TAG_PROPAGATION: s->propagation = strtol(v, NULL, 0); break;
	case TAG_FILE: s->file = v; break;
	case TAG_SEARCH_PATH: s->path = v; break;
	case TAG_UID_MAP: s->uid_map = v; break;
	case TAG_GID_MAP: s->gid_map = v; break;
	case TAG_UID_MAP_HELPER: s->newuidmap = 1; break;
	case TAG_GID_MAP_HELPER: s->newgidmap = 1; break;
	case TAG_SETGROUPS: s->setgroups = v; break;
	case TAG_HOSTNAME: s->hostname = v; break;
	case TAG_DOMAINNAME: s->domainname = v; break;
	case TAG_PROC_DIR: s->proc_dir = v; break;
	case TAG_ROOT: s->root = v; break;
	case TAG_WD: s->wd = v; break;
	case TAG_WD_TRY:
		if (s->nwd_try == MAX_WD_TRY || v[0] != 'P' || v[1] != 'W' || v[2] != 'D' || v[3] != '=')
			return -EINVAL;
		s->wd_try[s->nwd_try++] = v;
		break;
	case TAG_MONOTONIC: s->monotonic = v; break;
	case TAG_BOOTTIME: s->boottime = v; break;
	case TAG_UID: s->uid = strtol(v, NULL, 10); break;
	case TAG_GID: s->gid = strtol(v, NULL, 10); break;
	case TAG_KEEP_CAPS: s->keep_caps = 1; break;
	case TAG_KILL_SIGNAL: s->kill_signal = (int)strtol(v, NULL, 10); break;
	case TAG_INIT: s->init = 1; break;
	case TAG_UNSHARE_PID: s->unshare_pid = 1; break;
	case TAG_PERSIST: return parse_persist(s, v, 0);
	case TAG_PERSIST_LATE: return parse_persist(s, v, 1);
	case TAG_TARGET: s->target = strtol(v, NULL, 10); break;
	case TAG_JOIN: return parse_join(s, v);
	case TAG_ROOT_FD: s->root_fd = (int)strtol(v, NULL, 10); break;
	case TAG_CWD_FD: s->cwd_fd = (int)strtol(v, NULL, 10); break;
	case TAG_SANDBOX_OP:
		if (s->sb.nops == SB_MAX_OPS || parse_op(v, &s->sb.ops[s->sb.nops]) < 0)
			return -EINVAL;
		s->sb.nops++;
		break;
	case TAG_HARDENING: parse_hardening(s, v); break;
	case TAG_CAP_KEEP:
		s->caps_set = 1;
		s->caps_keep = strtoull(v, NULL, 10);
		break;
	case TAG_SECCOMP:
		if (s->nseccomp == MAX_SECCOMP || parse_filter(v, &s->seccomp[s->nseccomp]) < 0)
			return -EINVAL;
		s->nseccomp++;
		break;
	case TAG_SECCOMP_FLAGS: return parse_seccomp_flags(s, v);
	case TAG_SECCOMP_LISTENER: return parse_listener(s, v);
	case TAG_STDIO: return parse_stdio(s, v);
	case TAG_INHERIT_FDS: s->inherit_fds = 1; break;
	case TAG_EXTRA: return parse_extra(s, v);
	case TAG_CGROUP_PROCS:
		if (s->ncgroup_procs == MAX_CGROUPS)
			return -EINVAL;
		s->cgroup_procs[s->ncgroup_procs++] = (int)strtol(v, NULL, 10);
		break;
	case TAG_CGROUP_DIR: s->cgroup_dir = (int)strtol(v, NULL, 10); break;
	case TAG_OCI_ROOT:
	case TAG_OCI_MOUNT:
	case TAG_OCI_STEP:
	case TAG_OCI_HOOK:
	case TAG_OCI_HOOK_STATE: return oci_parse(&s->oci, tag, v);
	case TAG_LOCK_FILE:
		if (s->nlocks == MAX_LOCKS || !*v)
			return -EINVAL;
		s->locks[s->nlocks++] = v;
		break;
	case TAG_INFO_FD: s->info_fd = (int)strtol(v, NULL, 10); break;
	case TAG_STATUS_FD: s->status_fd = (int)strtol(v, NULL, 10); break;
	case TAG_BLOCK_FD: s->block_fd = (int)strtol(v, NULL, 10); break;
	case TAG_USERNS_BLOCK_FD: s->userns_block_fd = (int)strtol(v, NULL, 10); break;
	case TAG_ARG: s->argv[(*argc)++] = v; break;
	case TAG_ENV: s->envp[(*envc)++] = v; break;
	default: return -EINVAL;
	}
	return 0;
}

/* Our own copy of the spec (sandbox operations and seccomp programs are
 * decoded in place), and room for argv and envp, which the child cannot
 * allocate. */
static int copy_spec(const uint8_t *in, int32_t len, struct spec *s, int *argc)
{
	int envc = 0;
	*argc = 0;
	if (len <= 0 || in[len - 1] != 0)
		return -EINVAL;
	char *buf = s->copy = malloc((size_t)len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, in, (size_t)len);
	for (const char *p = buf; p < buf + len; p += slen(p) + 1) {
		*argc += *p == TAG_ARG;
		envc += *p == TAG_ENV;
	}
	if (*argc == 0)
		return -EINVAL;
	s->argv = calloc((size_t)*argc + 1, sizeof(char *));
	s->shargv = calloc((size_t)*argc + 2, sizeof(char *));
	s->envp = calloc((size_t)envc + 1, sizeof(char *));
	return s->argv && s->shargv && s->envp ? 0 : -ENOMEM;
}

int parse_spec(const uint8_t *in, int32_t len, struct spec *s)
{
	int argc, envc = 0, r;

	memset(s, 0, sizeof *s);
	oci_init(&s->oci);
	if ((r = copy_spec(in, len, s, &argc)) < 0)
		return r;
	const char *end = s->copy + len;
	s->path = "/bin:/usr/bin";
	s->uid = s->gid = -1;
	s->pidfd = s->root_fd = s->cwd_fd = s->cgroup_dir = s->cgroup_own_fd = -1;
	s->info_fd = s->status_fd = s->block_fd = s->userns_block_fd = s->sync_fd = -1;
	s->userns_fd = s->userns2_fd = s->pidns_fd = -1;
	argc = 0;
	for (char *p = s->copy, *next; p < end; p = next) {
		next = p + slen(p) + 1; /* before an operation is split in place */
		if ((r = parse_entry(s, *p, p + 1, &argc, &envc)) < 0)
			return r;
	}
	if (!s->file)
		s->file = s->argv[0];
	/* clone(2) would root a new cgroup namespace at tsns's own cgroups: the
	 * child unshares it once it is in the command's. */
	if ((s->ncgroup_procs || s->cgroup_dir >= 0) && (s->flags & CLONE_NEWCGROUP)) {
		s->flags &= ~(unsigned long)CLONE_NEWCGROUP;
		s->cgroupns_late = 1;
	}
	/* Namespaces made after joining a user namespace belong to it: the
	 * child is cloned into none and unshares them once it has joined. */
	if (s->userns_fd >= 0) {
		s->late_flags = s->flags & ~(unsigned long)(CLONE_NEWTIME | CLONE_NEWUSER);
		s->flags &= (unsigned long)CLONE_NEWTIME;
	}
	/* With --pidns the command's new pid namespace is a child of that one. */
	if (s->pidns_fd >= 0 && (s->flags & CLONE_NEWPID)) {
		s->late_flags |= CLONE_NEWPID;
		s->flags &= ~(unsigned long)CLONE_NEWPID;
	}
	/* A time namespace's middle unshares the new pid namespace already. */
	if (s->unshare_pid)
		s->late_flags &= ~(unsigned long)CLONE_NEWPID;
	/* For a script without a #! line: sh, the script (filled in by the
	 * child's exec), then the arguments. */
	s->shargv[0] = "sh";
	for (int i = 1; i < argc; i++)
		s->shargv[i + 1] = s->argv[i];
	return 0;
}

void free_spec(struct spec *s)
{
	free(s->copy);
	free(s->argv);
	free(s->shargv);
	free(s->envp);
	free(s->inherited);
	oci_free(&s->oci);
	for (int i = 0; i < s->npersist; i++)
		free((char *)s->persist[i].proc);
}
