/*
 * libtsns.so's API: every function src/native.ts binds, and nothing else.
 *
 * The shim is compiled with -fvisibility=hidden, so a function is exported
 * only when it is declared here: what the files of native/ share among
 * themselves stays out of the library's dynamic symbols, and a definition
 * whose signature drifts from the one ffi-rs calls does not compile.
 */
#ifndef TSNS_API_H
#define TSNS_API_H
#include <stdint.h>

#define TSNS_API __attribute__((visibility("default")))

/* parent.c: start a command from a spec (wire.h); its pid, or a failure
 * as wire.h encodes it. */
TSNS_API int64_t tsns_spawn(const uint8_t *buf, int32_t len);
TSNS_API int64_t tsns_pipe(void);
TSNS_API int32_t tsns_close(int32_t fd);

/* cgroup.c: a cgroup v2 device program (eBPF instructions) attached to a directory */
TSNS_API int32_t tsns_cgroup_devices(int32_t dirfd, const uint8_t *insns, int32_t len);

/* reap.c */
TSNS_API int32_t tsns_wait_all(uint8_t *slots, int32_t n);

/* watch.c */
TSNS_API int64_t tsns_watcher_start(int32_t notice);
TSNS_API int32_t tsns_watch(int32_t ctl, int32_t pid);

/* nsinfo.c */
TSNS_API int64_t tsns_ns_query(int32_t fd, int32_t what);
TSNS_API int64_t tsns_ns_query_via(int32_t fd, int32_t path, int32_t depth, int64_t ino, int32_t what);
TSNS_API int64_t tsns_socket_netns(int32_t pid, int32_t sockfd);
TSNS_API int64_t tsns_ns_owner_fd(int32_t fd);
TSNS_API int64_t tsns_pidfd_ino(int32_t pid);

/* handoff.c: the Node process leaves, to the monitor or as the command ended */
TSNS_API void tsns_block_monitor_signals(int32_t forward);
TSNS_API int32_t tsns_exec_monitor(int32_t pid, const char *path, int32_t forward, int32_t trace, const char *words);
TSNS_API void tsns_die_with_parent(int32_t ppid);
TSNS_API void tsns_reclaim_tty(void);
TSNS_API void tsns_die(int32_t sig);
TSNS_API void tsns_end(int32_t code, int32_t sig);
#endif
