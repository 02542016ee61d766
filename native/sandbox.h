/* The sandbox filesystem and hardening (bwrap's options), for the child. */
#ifndef TSNS_SANDBOX_H
#define TSNS_SANDBOX_H
#include <stdint.h>

#define SB_MAX_OPS 128

/* One filesystem operation, applied in order; paths as given by the user:
 * sources in the old root, destinations in the new one. */
struct sb_op {
	char code;      /* an OP_* of wire.h */
	char try_;      /* skip a missing source */
	long mode;      /* -1: default */
	long size;      /* tmpfs size in bytes, -1: default */
	const char *a;  /* source, target, lowers or file source (TSNS_FD_SOURCE N) */
	const char *b;  /* destination */
	const char *c;  /* an overlay's upper directory, else NULL */
	const char *d;  /* an overlay's work directory, else NULL */
};

struct sandbox {
	struct sb_op ops[SB_MAX_OPS];
	int nops;
	int userxattr;  /* overlay in a user namespace */
};

/* Builds the new root and pivots into it. 0, or -errno with *failed the
 * index of the operation (-1: the root itself). */
long sandbox_build(const struct sandbox *sb, int *failed);

/* Drops what is not in `keep` from the bounding set (needs CAP_SETPCAP, so
 * before the uid changes), then, after it, from the other sets. */
long sandbox_bound(uint64_t keep);
long sandbox_caps(uint64_t keep);

/* Brings lo up in a new network namespace. */
long sandbox_lo_up(void);

/* bwrap's starting directory without --chdir: the first of dirs ("PWD=DIR") chdir takes. */
void sandbox_wd_try(const char *const *dirs, int n, char **envp);
#endif
