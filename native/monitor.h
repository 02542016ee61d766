/* The signals tsns-monitor takes over from the CLI: the CLI blocks them
 * across its exec (native/handoff.c), the monitor waits for them
 * (native/monitor.c); one list, so that none is lost between the two. */
#ifndef TSNS_MONITOR_H
#define TSNS_MONITOR_H
#include <signal.h>

static inline void monitor_signals(sigset_t *set, int forward)
{
	/* SIGINT and SIGTERM are ignored unless forwarded, as unshare --fork does. */
	static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	for (unsigned i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		if (forward || forwarded[i] == SIGINT || forwarded[i] == SIGTERM)
			sigaddset(set, forwarded[i]);
}
#endif
