/*
 * The end of a command's cgroups (cgclean.c), for tsns-monitor: the OOM
 * kills counted, and the cgroups tsns made removed.
 */
#ifndef TSNS_CGCLEAN_H
#define TSNS_CGCLEAN_H

/* The oom_kill count in a v1 memory.oom_control or v2 memory.events; -1 if unreadable. */
long cg_oom_kills(const char *file);

/* Kill what is left in the cgroup at dir and its sub-cgroups, then remove
 * them all; 0 or -errno. */
int cg_remove(const char *dir);

/* A directory tsns made above the command's cgroup: removed when empty. */
void cg_remove_parent(const char *dir);
#endif
