/* bwrap's process rules for the child (lifecycle.c) and the parent (info.c). */
#ifndef TSNS_LIFECYCLE_H
#define TSNS_LIFECYCLE_H
#include <sys/prctl.h>
#include <sys/types.h>

#include "spec.h"

/* The supervisor, once the command says its sandbox is built: a read lock
 * on every --lock-file; 0, or -errno with *failed the lock's index. */
long lc_take_locks(const struct spec *s, int *failed);
/* The supervisor right after the fork: no capabilities in any set. */
void lc_drop_all_caps(const struct spec *s);
/* --userns: join it, then unshare what the spec's late_flags name but pid. */
long lc_join_userns(const struct spec *s);
/* --disable-userns, after every mount: user.max_user_namespaces = 1 and a
 * nested user namespace where uid and gid (-1: ours) map to ours;
 * procfd is the host's /proc. */
long lc_disable_userns(int procfd, long uid, long gid);
/* --assert-userns-disabled (and after --disable-userns): 0 when a new user
 * namespace cannot be made. */
long lc_userns_disabled(void);
/* --block-fd: a byte or end of file, then the fd is closed. */
void lc_block(int fd);

/* info.c, in the parent before it releases the child: --info-fd and the
 * first object of --json-status-fd, then --userns-block-fd; 0 or a failure. */
int64_t info_handshake(pid_t pid, const struct spec *s);
#endif
