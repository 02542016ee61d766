/*
 * The OCI entries of a spec (wire.h TAG_OCI_*, EXTRA_EXEC_FIFO ...), read
 * in the parent before clone, where allocating and libc are still fine.
 * Strings point into the spec's own copy, split in place.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "oci.h"
#include "wire.h"

void oci_init(struct oci *o)
{
	o->fifo_dir = o->console = o->hooks_report = o->hooks_go = o->pidfd_sock = -1;
}

/* Splits v at each TSNS_OP_SEP into at most n fields; how many there were. */
static int fields(char *v, char **f, int n)
{
	int k = 1;
	f[0] = v;
	for (char *p = v; *p && k < n; p++)
		if (*p == TSNS_OP_SEP) {
			*p = 0;
			f[k++] = p + 1;
		}
	return k;
}

static int parse_root(struct oci *o, char *v)
{
	char *colon = strchr(v, ':');
	if (!colon || colon[1] != '/')
		return -EINVAL;
	*colon = 0;
	o->readonly = strchr(v, OCI_ROOT_READONLY) != NULL;
	o->no_pivot = strchr(v, OCI_ROOT_NO_PIVOT) != NULL;
	o->root_prop = strtoul(v + strcspn(v, "0123456789"), NULL, 10);
	o->root = colon + 1;
	return 0;
}

static int parse_mount(struct oci *o, char *v)
{
	char *f[8];
	if (o->nmounts == OCI_MAX_MOUNTS || fields(v, f, 8) != 8 || f[0][0] != '/')
		return -EINVAL;
	struct oci_mount *m = &o->mounts[o->nmounts++];
	m->dest = f[0];
	m->src = *f[1] ? f[1] : NULL;
	m->type = *f[2] ? f[2] : NULL;
	m->flags = strtoul(f[3], NULL, 10);
	m->prop = strtoul(f[4], NULL, 10);
	m->attr = strtoull(f[5], NULL, 10);
	m->rec_attr = strtoull(f[6], NULL, 10);
	m->data = *f[7] ? f[7] : NULL;
	return 0;
}

static int parse_step(struct oci *o, char *v)
{
	char *f[7];
	if (o->nsteps == OCI_MAX_STEPS || !v[0])
		return -EINVAL;
	struct oci_step *st = &o->steps[o->nsteps++];
	st->code = v[0];
	int n = fields(v + 1, f, 7);
	st->a = f[0];
	st->b = n > 1 ? f[1] : NULL;
	switch (st->code) {
	case OCI_STEP_DEVICE:
	case OCI_STEP_DEVICE_BIND:
		if (n != 7 || (f[1][0] != 'c' && f[1][0] != 'b' && f[1][0] != 'p'))
			return -EINVAL;
		for (int i = 0; i < 5; i++)
			st->n[i] = strtol(f[i + 2], NULL, i == 2 ? 8 : 10);
		break;
	case OCI_STEP_SYMLINK:
	case OCI_STEP_SYMLINK_REPLACE:
	case OCI_STEP_SYSCTL:
		if (n != 2)
			return -EINVAL;
		break;
	case OCI_STEP_MASK:
	case OCI_STEP_READONLY:
		break;
	case OCI_STEP_UMASK: st->n[0] = strtol(f[0], NULL, 8); break;
	case OCI_STEP_OOM:
	case OCI_STEP_PERSONALITY: st->n[0] = strtol(f[0], NULL, 10); break;
	default: return -EINVAL;
	}
	return 0;
}

/* TIMEOUT \1 PATH \1 NARGS \1 NENV \1 ARG... \1 ENV...: argv and envp made here, freed by oci_free. */
static int parse_hook(struct oci *o, char *v)
{
	char *head[4];
	if (o->nhooks == OCI_MAX_HOOKS || fields(v, head, 4) != 4)
		return -EINVAL;
	long nargs = strtol(head[2], NULL, 10), nenv = strtol(head[3], NULL, 10);
	if (nargs < 1 || nargs > 4096 || nenv < -1 || nenv > 4096 || head[1][0] != '/')
		return -EINVAL;
	/* head[3] holds NENV, then the items (split in place below) */
	char *rest = strchr(head[3], TSNS_OP_SEP);
	long nitems = nargs + (nenv > 0 ? nenv : 0);
	char **items = calloc((size_t)nargs + 1 + (size_t)(nenv > 0 ? nenv : 0) + 1, sizeof *items);
	if (!items)
		return -ENOMEM;
	for (long i = 0; i < nitems; i++) {
		if (!rest) {
			free(items);
			return -EINVAL;
		}
		*rest++ = 0;
		/* env entries follow the args' NULL */
		items[i < nargs ? i : i + 1] = rest;
		rest = strchr(rest, TSNS_OP_SEP);
	}
	if (rest)
		*rest = 0;
	struct oci_hook *h = &o->hooks[o->nhooks++];
	h->timeout = strtol(head[0], NULL, 10);
	h->path = head[1];
	h->argv = items;
	h->envp = nenv < 0 ? NULL : items + nargs + 1;
	return 0;
}

int oci_parse(struct oci *o, char tag, char *v)
{
	switch ((enum tsns_tag)tag) {
	case TAG_OCI_ROOT: return parse_root(o, v);
	case TAG_OCI_MOUNT: return parse_mount(o, v);
	case TAG_OCI_STEP: return parse_step(o, v);
	case TAG_OCI_HOOK: return parse_hook(o, v);
	case TAG_OCI_HOOK_STATE: o->hook_state = v; return 0;
	default: return -EINVAL;
	}
}

/* The console and pidfd sockets are connected here, before clone: the child only sends. */
static int connect_to(const char *path, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	*out = fd;
	return 0;
}

static int connect_console(struct oci *o, char *v)
{
	char *f[3];
	if (fields(v, f, 3) != 3)
		return -EINVAL;
	o->rows = (unsigned short)strtoul(f[1], NULL, 10);
	o->cols = (unsigned short)strtoul(f[2], NULL, 10);
	return connect_to(f[0], &o->console);
}

static int connect_pidfd(struct oci *o, char *v)
{
	char *f[2];
	if (fields(v, f, 2) != 2)
		return -EINVAL;
	o->pidfd_name = f[1];
	return connect_to(f[0], &o->pidfd_sock);
}

int oci_parse_extra(struct oci *o, char *v)
{
	char *rest;
	switch ((enum tsns_extra)v[0]) {
	case EXTRA_EXEC_FIFO: o->fifo_dir = (int)strtol(v + 1, NULL, 10); return 0;
	case EXTRA_OCI_HOOKS: {
		char *end;
		o->hooks_report = (int)strtol(v + 1, &end, 10);
		o->hooks_go = *end == ',' ? (int)strtol(end + 1, NULL, 10) : -1;
		return o->hooks_go < 0 ? -EINVAL : 0;
	}
	case EXTRA_RLIMIT:
		if (o->nrlimits == OCI_MAX_RLIMITS)
			return -EINVAL;
		o->rlimits[o->nrlimits].res = (int)strtol(v + 1, &rest, 10);
		o->rlimits[o->nrlimits].soft = strtoull(rest, &rest, 10);
		o->rlimits[o->nrlimits++].hard = strtoull(rest, NULL, 10);
		return 0;
	case EXTRA_GROUPS:
		o->groups_set = 1;
		for (rest = v + 1; *rest;) {
			if (o->ngroups == OCI_MAX_GROUPS)
				return -EINVAL;
			o->groups[o->ngroups++] = (uint32_t)strtoul(rest, &rest, 10);
			if (*rest == ',')
				rest++;
		}
		return 0;
	case EXTRA_CAPS:
		o->caps_set = 1;
		rest = v + 1;
		for (int i = 0; i < 5; i++) {
			o->caps[i] = strtoull(rest, &rest, 10);
			if (*rest == ',')
				rest++;
		}
		return 0;
	case EXTRA_CONSOLE: return connect_console(o, v + 1);
	case EXTRA_PIDFD_SOCKET: return connect_pidfd(o, v + 1);
	case EXTRA_CONSOLE_FD: {
		char *f[3];
		if (fields(v + 1, f, 3) != 3)
			return -EINVAL;
		o->console = (int)strtol(f[0], NULL, 10);
		o->rows = (unsigned short)strtoul(f[1], NULL, 10);
		o->cols = (unsigned short)strtoul(f[2], NULL, 10);
		return 0;
	}
	case EXTRA_SESSION_KEYRING: {
		char *f[2];
		if (fields(v + 1, f, 2) != 2 || !*f[1])
			return -EINVAL;
		o->keyring_perm = (uint32_t)strtoul(f[0], NULL, 16);
		o->keyring = f[1];
		return 0;
	}
	default: return -EINVAL;
	}
}

void oci_free(struct oci *o)
{
	if (o->console >= 0)
		close(o->console);
	if (o->pidfd_sock >= 0)
		close(o->pidfd_sock);
	o->console = o->pidfd_sock = -1;
	for (int i = 0; i < o->nhooks; i++)
		free(o->hooks[i].argv);
	o->nhooks = 0;
}
