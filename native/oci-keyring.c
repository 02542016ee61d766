/*
 * An OCI container's session keyring, as runc's init makes it: the process
 * joins a keyring of the container's own (_ses.ID, made where there is none
 * by that name yet) instead of keeping the session keyring of whoever ran
 * the runtime, so that keys one container adds are not another's.  create
 * then lets the container's other processes search it (exec joins it by
 * name): the owner's search bit without a user namespace, everyone's with
 * one, where the container's users are other users to the kernel.
 *
 * As runc: a kernel without keyrings (ENOSYS) is no error, since keyrings
 * isolate little that file credentials do not; any other refusal (EDQUOT
 * for a user with too many keys, EACCES ...) fails the start.
 *
 * Runs after clone: raw system calls and a stack buffer only.
 */
#define _GNU_SOURCE
#include <linux/keyctl.h>
#include <stdint.h>

#include "oci.h"
#include "sys.h"
#include "wire.h"

/* The permission field of KEYCTL_DESCRIBE's "type;uid;gid;perm;description". */
static long perm_of(const char *d, long n, uint32_t *perm)
{
	int field = 0;
	long i = 0;
	for (; i < n && field < 3; i++)
		if (d[i] == ';')
			field++;
	if (field < 3)
		return -EINVAL;
	uint32_t v = 0;
	int digits = 0;
	for (; i < n && d[i] != ';'; i++, digits++) {
		char ch = d[i];
		int x = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
		if (x < 0 || digits == 8)
			return -EINVAL;
		v = v << 4 | (uint32_t)x;
	}
	if (!digits)
		return -EINVAL;
	*perm = v;
	return 0;
}

long oci_keyring(const struct oci *o, int *stage)
{
	*stage = ST_SESSION_KEYRING;
	long id = SYS(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, o->keyring);
	if (id == -ENOSYS)
		return 0;
	if (id < 0 || !o->keyring_perm)
		return id < 0 ? id : 0;
	*stage = ST_KEYRING_PERM;
	/* The description names the keyring: room for the longest id an engine gives. */
	char d[1024];
	long n = SYS(SYS_keyctl, KEYCTL_DESCRIBE, id, d, sizeof d);
	if (n < 0)
		return n;
	if (n > (long)sizeof d)
		return -ENAMETOOLONG;
	uint32_t perm;
	long r = perm_of(d, n, &perm);
	if (r < 0)
		return r;
	return SYS(SYS_keyctl, KEYCTL_SETPERM, id, perm | o->keyring_perm);
}
