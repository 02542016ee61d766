/*
 * libtsns-seccomp.so: seccomp profiles compiled with libseccomp, in the
 * parent, into the classic BPF program the shim's child loads raw just
 * before exec (native/child.c).  Nothing here is loaded unless a profile
 * is used (src/native.ts opens it on demand), and libtsns.so itself never
 * links libseccomp.
 *
 * src/seccomp/compile.ts hands over a description: NUL-terminated entries,
 * a tag byte and its value as text (as the shim's spec, wire.h):
 *   D<action>                 the default action (an SCMP_ACT_* value)
 *   A<token>                  an architecture to add (SCMP_ARCH_* token)
 *   N<name>                   a syscall name, for tsns_seccomp_resolve()
 *   R<action> <nr>            a rule, on a syscall number from resolve
 *   C<arg> <op> <a> <b>       a condition of the rule before it
 * Numbers are decimal; a and b are the 64-bit datums.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define API __attribute__((visibility("default")))
#define MAX_ARCHES 32

/* Where a compile failed, returned as -(where << 16 | errno). */
#define AT_INIT 1
#define AT_EXPORT 2
#define AT_SIZE 3
#define AT_ARCH 0x100      /* + the architecture's index */
#define AT_RULE 0x10000    /* + the rule's index */

API int64_t tsns_seccomp_query(int32_t what, int64_t arg);
API int64_t tsns_seccomp_arch(const char *name);
API int32_t tsns_seccomp_resolve(const uint8_t *desc, int32_t len, uint8_t *out, int32_t cap);
API int64_t tsns_seccomp_compile(const uint8_t *desc, int32_t len, uint8_t *out, int32_t cap);

static int64_t failed(int64_t where, int err)
{
	return -(where << 16 | (err < 0 ? -err : err));
}

/* Whether the kernel takes these seccomp(2) flags: with no program it
 * answers EFAULT for flags it knows and EINVAL for others, and installs
 * nothing (libseccomp probes the same way). */
static int kernel_flag(unsigned long flags)
{
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL) < 0 && errno == EFAULT;
}

static int kernel_action(uint32_t action)
{
	return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

/* 0: libseccomp's version, major << 16 | minor << 8 | micro; 1: its API
 * level; 2: the native architecture's token; 3: whether the kernel takes
 * seccomp(2) flags arg; 4: whether it has the return action arg. */
int64_t tsns_seccomp_query(int32_t what, int64_t arg)
{
	const struct scmp_version *v;
	switch (what) {
	case 0:
		v = seccomp_version();
		return v ? (int64_t)(v->major << 16 | v->minor << 8 | v->micro) : -ENOSYS;
	case 1: return seccomp_api_get();
	case 2: return seccomp_arch_native();
	case 3: return kernel_flag((unsigned long)arg);
	case 4: return kernel_action((uint32_t)arg);
	default: return -EINVAL;
	}
}

/* libseccomp's token for an architecture by its own name ("x86_64"), 0 if
 * it knows none. */
int64_t tsns_seccomp_arch(const char *name)
{
	return seccomp_arch_resolve_name(name);
}

struct desc {
	char *copy;
	const char *end;
	uint32_t def;
	uint32_t arches[MAX_ARCHES];
	int narches;
};

/* Our own copy, and the default action and architectures from it. */
static int read_desc(const uint8_t *in, int32_t len, struct desc *d)
{
	memset(d, 0, sizeof *d);
	if (len <= 0 || in[len - 1] != 0)
		return -EINVAL;
	if (!(d->copy = malloc((size_t)len)))
		return -ENOMEM;
	memcpy(d->copy, in, (size_t)len);
	d->end = d->copy + len;
	for (const char *p = d->copy; p < d->end; p += strlen(p) + 1) {
		if (*p == 'D')
			d->def = (uint32_t)strtoul(p + 1, NULL, 10);
		else if (*p == 'A' && d->narches < MAX_ARCHES)
			d->arches[d->narches++] = (uint32_t)strtoul(p + 1, NULL, 10);
		else if (*p == 'A')
			return -E2BIG;
	}
	return 0;
}

/*
 * For every N entry, its number on the native architecture and then on
 * each A architecture, as int32s: __NR_SCMP_ERROR (-1) for a name
 * libseccomp does not know at all, a pseudo number (<= -10000) for one
 * this architecture lacks.  Returns how many names it resolved.
 */
int32_t tsns_seccomp_resolve(const uint8_t *in, int32_t len, uint8_t *out, int32_t cap)
{
	struct desc d;
	int r = read_desc(in, len, &d), n = 0;
	int per = 1 + d.narches;
	for (const char *p = d.copy; r == 0 && p < d.end; p += strlen(p) + 1) {
		if (*p != 'N')
			continue;
		if ((int64_t)(n + 1) * per * 4 > cap) {
			r = -E2BIG;
			break;
		}
		int32_t nr[MAX_ARCHES + 1];
		nr[0] = seccomp_syscall_resolve_name(p + 1);
		for (int i = 0; i < d.narches; i++)
			nr[i + 1] = seccomp_syscall_resolve_name_arch(d.arches[i], p + 1);
		memcpy(out + (size_t)n * per * 4, nr, (size_t)per * 4);
		n++;
	}
	free(d.copy);
	return r < 0 ? r : n;
}

/* "arg op a b" */
static int read_cond(const char *v, struct scmp_arg_cmp *c)
{
	char *rest;
	c->arg = (unsigned)strtoul(v, &rest, 10);
	c->op = (enum scmp_compare)strtoul(rest, &rest, 10);
	c->datum_a = strtoull(rest, &rest, 10);
	c->datum_b = strtoull(rest, &rest, 10);
	return *rest ? -EINVAL : 0;
}

/* Every R entry with its C entries, in order. */
static int64_t add_rules(scmp_filter_ctx ctx, const struct desc *d)
{
	struct scmp_arg_cmp conds[6];
	int nconds = 0, rule = -1, nr = 0;
	uint32_t action = 0;
	for (const char *p = d->copy;; p += strlen(p) + 1) {
		int last = p >= d->end;
		if ((last || *p == 'R') && rule >= 0) {
			int r = seccomp_rule_add_array(ctx, action, nr, (unsigned)nconds, conds);
			if (r < 0)
				return failed(AT_RULE + rule, r);
		}
		if (last)
			return 0;
		if (*p == 'R') {
			char *rest;
			action = (uint32_t)strtoul(p + 1, &rest, 10);
			nr = (int)strtol(rest, NULL, 10);
			nconds = 0;
			rule++;
		} else if (*p == 'C') {
			if (rule < 0 || nconds == 6 || read_cond(p + 1, &conds[nconds]) < 0)
				return failed(AT_RULE + (rule < 0 ? 0 : rule), EINVAL);
			nconds++;
		}
	}
}

/* The program as seccomp_export_bpf() writes it (libseccomp 2.5 has no
 * export to memory: a memfd stands in). */
static int64_t export_program(scmp_filter_ctx ctx, uint8_t *out, int32_t cap)
{
	int fd = memfd_create("tsns-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return failed(AT_EXPORT, errno);
	int r = seccomp_export_bpf(ctx, fd);
	off_t size = r < 0 ? 0 : lseek(fd, 0, SEEK_END);
	int64_t ret;
	if (r < 0)
		ret = failed(AT_EXPORT, r);
	else if (size < 0)
		ret = failed(AT_EXPORT, errno);
	else if (size > cap)
		ret = failed(AT_SIZE, E2BIG);
	else if (pread(fd, out, (size_t)size, 0) != size)
		ret = failed(AT_EXPORT, EIO);
	else
		ret = size;
	close(fd);
	return ret;
}

/* The description compiled: the program's bytes in out, their number
 * returned; or where it failed and the errno. */
int64_t tsns_seccomp_compile(const uint8_t *in, int32_t len, uint8_t *out, int32_t cap)
{
	struct desc d;
	int64_t ret = read_desc(in, len, &d);
	scmp_filter_ctx ctx = NULL;
	if (ret < 0)
		goto out;
	if (!(ctx = seccomp_init(d.def))) {
		ret = failed(AT_INIT, EINVAL);
		goto out;
	}
	/* As runc: the shim sets no_new_privs itself (this only matters to
	 * seccomp_load, which is never called). */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	for (int i = 0; i < d.narches; i++) {
		int r = seccomp_arch_add(ctx, d.arches[i]);
		if (r < 0 && r != -EEXIST) {
			ret = failed(AT_ARCH + i, r);
			goto out;
		}
	}
	if ((ret = add_rules(ctx, &d)) == 0)
		ret = export_program(ctx, out, cap);
out:
	if (ctx)
		seccomp_release(ctx);
	free(d.copy);
	return ret;
}
